//! Which namespaces a ClusterSecretStore admits (`spec.conditions`): a security boundary, so
//! every rule is strict — names match exactly, regular expressions match the whole name.

use std::collections::BTreeMap;

use crate::api::ClusterSecretStoreCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

/// Whether a ClusterSecretStore with `conditions` admits `namespace` (with `labels`): one
/// with no conditions admits every namespace, otherwise any one condition must admit it.
pub fn admits(
    conditions: &[ClusterSecretStoreCondition],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    conditions.is_empty()
        || conditions
            .iter()
            .any(|c| condition_admits(c, namespace, labels))
}

/// Whether any condition selects by namespace labels (only then are they read).
pub fn needs_labels(conditions: &[ClusterSecretStoreCondition]) -> bool {
    conditions.iter().any(|c| c.namespace_selector.is_some())
}

/// Whether one condition admits `namespace` (with `labels`): every part it sets must match.
pub fn condition_admits(
    condition: &ClusterSecretStoreCondition,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let by_name =
        condition.namespaces.is_empty() || condition.namespaces.iter().any(|n| n == namespace);
    let by_regex = condition.namespace_regexes.is_empty()
        || condition.namespace_regexes.iter().any(|re| {
            // Anchored, and an invalid expression admits nothing.
            regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|re| re.is_match(namespace))
        });
    let by_labels = condition
        .namespace_selector
        .as_ref()
        .is_none_or(|sel| selector_matches(sel, labels));
    by_name && by_regex && by_labels
}

/// Whether a label selector matches a set of labels (`matchLabels` and `matchExpressions`), by
/// kube's own selector. A selector the API server would refuse (an unknown operator, `In` or
/// `NotIn` without values) matches nothing: this is a security boundary.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(selector.clone()).is_ok_and(|selector| selector.matches(labels))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_must_match_exactly() {
        let c = ClusterSecretStoreCondition {
            namespaces: vec!["payments".into()],
            ..Default::default()
        };
        assert!(condition_admits(&c, "payments", &labels(&[])));
        assert!(!condition_admits(&c, "payments-evil", &labels(&[])));
    }

    #[test]
    fn regexes_match_the_whole_name() {
        let c = ClusterSecretStoreCondition {
            namespace_regexes: vec!["team-.*".into()],
            ..Default::default()
        };
        assert!(condition_admits(&c, "team-a", &labels(&[])));
        assert!(!condition_admits(&c, "evil-team-a", &labels(&[])));
        let broken = ClusterSecretStoreCondition {
            namespace_regexes: vec!["(".into()],
            ..Default::default()
        };
        assert!(!condition_admits(&broken, "anything", &labels(&[])));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("team", "payments")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "In".into(),
                values: Some(vec!["prod".into(), "staging".into()]),
            }]),
        };
        assert!(selector_matches(
            &sel,
            &labels(&[("team", "payments"), ("env", "prod")])
        ));
        assert!(!selector_matches(
            &sel,
            &labels(&[("team", "payments"), ("env", "dev")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("env", "prod")])));
        let exists = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(selector_matches(&exists, &labels(&[])));
        assert!(!selector_matches(&exists, &labels(&[("x", "1")])));
    }

    #[test]
    fn every_part_of_a_condition_must_match() {
        let c = ClusterSecretStoreCondition {
            namespaces: vec!["a".into()],
            namespace_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("ok", "yes")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(condition_admits(&c, "a", &labels(&[("ok", "yes")])));
        assert!(!condition_admits(&c, "a", &labels(&[])));
        assert!(!condition_admits(&c, "b", &labels(&[("ok", "yes")])));
    }

    fn condition(yaml: &str) -> ClusterSecretStoreCondition {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn an_invalid_expression_admits_nothing_and_no_condition_admits_all() {
        let none = labels(&[]);
        assert!(!admits(&[condition("namespaceRegexes: ['(']")], "(", &none));
        assert!(admits(&[], "anything", &none));
        let two = [condition("namespaces: [a]"), condition("namespaces: [b]")];
        assert!(admits(&two, "b", &none));
        assert!(!needs_labels(&two));
    }

    #[test]
    fn without_labels_only_selectors_that_require_none_admit() {
        let none = labels(&[]);
        let prod = condition("namespaceSelector: {matchLabels: {env: prod}}");
        assert!(needs_labels(std::slice::from_ref(&prod)));
        assert!(!admits(&[prod], "a", &none));
        let absent = condition(
            "namespaceSelector: {matchExpressions: [{key: env, operator: DoesNotExist}]}",
        );
        assert!(admits(&[absent], "a", &none));
    }
}
