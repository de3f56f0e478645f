//! `dataFrom[].rewrite[]`: rewrites of the keys an entry produced, applied in order.
//!
//! - `regexp {source, target}` replaces every match of `source` in each key with `target`,
//!   where `$1` and `${name}` refer to capture groups (Go's and ESO's syntax).
//! - `transform {template}` renders each key through a Jinja template in which it is `value`.
//! - `merge` combines the values (each a JSON object) into one map: with strategy `Extract`
//!   one key per field, with `JSON` the map as JSON under `into`, next to the input keys.
//!   Values merge in name order, then the `priority` keys in their order, so the last one
//!   listed wins (ESO's order); a `priority` key that is not there is an error unless
//!   `priorityPolicy: IgnoreNotFound`. A field defined
//!   twice is an error with `conflictPolicy: Error` (the default); with `Ignore` the later value
//!   wins.
//!
//! Two keys rewritten to the same key are an error naming both.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::api::{
    ExternalSecretRewrite, MergeConflictPolicy, MergePriorityPolicy, MergeStrategy, RewriteMerge,
};
use crate::secret::SecretBytes;

use super::tpl;
use super::{MAX_TEMPLATE_OUTPUT, SyncError, property};

/// Applies `rewrites` in order. `field` is the `rewrite` list's path, e.g.
/// `spec.dataFrom[0].rewrite`.
pub fn apply(
    rewrites: &[ExternalSecretRewrite],
    field: &str,
    mut map: BTreeMap<String, SecretBytes>,
) -> Result<BTreeMap<String, SecretBytes>, SyncError> {
    for (j, op) in rewrites.iter().enumerate() {
        let field = format!("{field}[{j}]");
        map = match (&op.regexp, &op.transform, &op.merge) {
            (Some(re), None, None) => {
                let compiled = Regex::new(&re.source).map_err(|e| {
                    SyncError::invalid_regexp(format!("{field}.regexp.source"), &re.source, &e)
                })?;
                rename(&field, map, |key| {
                    Ok(compiled.replace_all(key, re.target.as_str()).into_owned())
                })?
            }
            (None, Some(t), None) => rename(&field, map, |key| {
                transform(&format!("{field}.transform.template"), &t.template, key)
            })?,
            (None, None, Some(m)) => merge(&format!("{field}.merge"), m, &map)?,
            _ => {
                return Err(SyncError::InvalidSpec {
                    field,
                    message: "exactly one of regexp, transform and merge must be set".to_owned(),
                });
            }
        };
    }
    Ok(map)
}

/// Renames every key; two keys becoming one is an error.
fn rename(
    field: &str,
    map: BTreeMap<String, SecretBytes>,
    mut new_key: impl FnMut(&str) -> Result<String, SyncError>,
) -> Result<BTreeMap<String, SecretBytes>, SyncError> {
    let mut out = BTreeMap::new();
    let mut from: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in map {
        let renamed = new_key(&key)?;
        if let Some(first) = from.get(&renamed) {
            return Err(SyncError::KeyCollision {
                field: field.to_owned(),
                key: renamed,
                first: first.clone(),
                second: key,
            });
        }
        from.insert(renamed.clone(), key);
        out.insert(renamed, value);
    }
    Ok(out)
}

/// Renders a transform template for one key.
pub fn transform(field: &str, template: &str, key: &str) -> Result<String, SyncError> {
    let out =
        tpl::render(template, &tpl::TemplateContext::for_rewrite(key), None).map_err(|source| {
            SyncError::Template {
                field: field.to_owned(),
                source,
            }
        })?;
    if out.len() > MAX_TEMPLATE_OUTPUT {
        return Err(SyncError::TooLarge {
            field: field.to_owned(),
            what: format!("the key rendered for {key:?}"),
            size: out.len(),
            limit: MAX_TEMPLATE_OUTPUT,
        });
    }
    String::from_utf8(out.into_inner()).map_err(|_| SyncError::InvalidSpec {
        field: field.to_owned(),
        message: format!("the key rendered for {key:?} is not UTF-8"),
    })
}

/// `merge`: combines JSON objects into one map.
fn merge(
    field: &str,
    spec: &RewriteMerge,
    map: &BTreeMap<String, SecretBytes>,
) -> Result<BTreeMap<String, SecretBytes>, SyncError> {
    // Name order first, then the priority keys as listed: the last write wins (ESO's order).
    let mut order: Vec<&String> = map.keys().filter(|k| !spec.priority.contains(k)).collect();
    for key in &spec.priority {
        if map.contains_key(key) {
            order.push(key);
        } else if spec.priority_policy.unwrap_or_default() == MergePriorityPolicy::Strict {
            return Err(SyncError::InvalidSpec {
                field: format!("{field}.priority"),
                message: format!(
                    "{key:?} is not among the merged keys (priorityPolicy Strict; IgnoreNotFound skips it)"
                ),
            });
        }
    }
    let mut merged = Map::new();
    let mut conflicts = Vec::new();
    for key in order {
        let object = serde_json::from_slice::<Value>(map[key].expose())
            .ok()
            .and_then(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .ok_or_else(|| SyncError::NotJson {
                field: field.to_owned(),
                key: key.clone(),
                expected: "a JSON object",
            })?;
        for (k, v) in object {
            if merged.insert(k.clone(), v).is_some() && !conflicts.contains(&k) {
                conflicts.push(k);
            }
        }
    }
    if !conflicts.is_empty()
        && spec.conflict_policy.unwrap_or_default() == MergeConflictPolicy::Error
    {
        conflicts.sort();
        return Err(SyncError::MergeConflict {
            field: field.to_owned(),
            fields: conflicts,
        });
    }
    match spec.strategy.unwrap_or_default() {
        MergeStrategy::Extract => Ok(merged
            .iter()
            .map(|(k, v)| (k.clone(), SecretBytes::new(property::leaf_bytes(v))))
            .collect()),
        MergeStrategy::Json => {
            let into = spec
                .into
                .as_deref()
                .filter(|i| !i.is_empty())
                .ok_or_else(|| SyncError::InvalidSpec {
                    field: format!("{field}.into"),
                    message: "strategy JSON needs the key to write the merged map into".to_owned(),
                })?;
            let json = Value::Object(merged).to_string();
            // ESO keeps the input keys next to the merged one, so a later merge can still
            // read them (chained merges give ESO's result).
            let mut out = map.clone();
            out.insert(into.to_owned(), SecretBytes::from(json));
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RewriteRegexp, RewriteTransform};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretBytes> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretBytes::from(*v)))
            .collect()
    }

    fn shown(m: &BTreeMap<String, SecretBytes>) -> Vec<(String, String)> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.expose_str().unwrap().to_owned()))
            .collect()
    }

    fn regexp(source: &str, target: &str) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source: source.to_owned(),
                target: target.to_owned(),
            }),
            ..Default::default()
        }
    }

    fn merge_op(m: RewriteMerge) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            merge: Some(m),
            ..Default::default()
        }
    }

    #[test]
    fn regexp_rewrites_apply_in_order_with_capture_groups() {
        let out = apply(
            &[
                regexp("^services/billing/(.*)$", "$1"),
                regexp("(?P<word>[a-z]+)-(?P<rest>.*)", "${rest}_${word}"),
            ],
            "spec.dataFrom[0].rewrite",
            map(&[
                ("services/billing/db-password", "p"),
                ("services/billing/token", "t"),
            ]),
        )
        .unwrap();
        assert_eq!(
            shown(&out),
            [
                ("password_db".into(), "p".into()),
                ("token".into(), "t".into())
            ]
        );
    }

    #[test]
    fn a_bad_regexp_names_its_field() {
        let err = apply(
            &[regexp("(", "x")],
            "spec.dataFrom[1].rewrite",
            map(&[("a", "1")]),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "InvalidRegexp");
        assert!(
            err.to_string().starts_with(
                "spec.dataFrom[1].rewrite[0].regexp.source: invalid regular expression:"
            ),
            "{err}"
        );
    }

    #[test]
    fn rewriting_two_keys_into_one_is_an_error() {
        let err = apply(&[regexp(".*", "same")], "r", map(&[("a", "1"), ("b", "2")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"r[0]: "a" and "b" both become the key "same""#
        );
    }

    #[test]
    fn an_operation_with_two_kinds_is_an_error() {
        let op = ExternalSecretRewrite {
            regexp: Some(RewriteRegexp::default()),
            transform: Some(RewriteTransform::default()),
            merge: None,
        };
        let err = apply(&[op], "r", map(&[])).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
    }

    #[test]
    fn merge_extract_combines_objects_one_key_per_field() {
        let out = apply(
            &[merge_op(RewriteMerge::default())],
            "r",
            map(&[
                ("a", r#"{"user":"u","port":5432}"#),
                ("b", r#"{"host":"h"}"#),
            ]),
        )
        .unwrap();
        assert_eq!(
            shown(&out),
            [
                ("host".into(), "h".into()),
                ("port".into(), "5432".into()),
                ("user".into(), "u".into())
            ]
        );
    }

    #[test]
    fn merge_conflicts_are_errors_by_default() {
        let err = apply(
            &[merge_op(RewriteMerge::default())],
            "spec.dataFrom[0].rewrite",
            map(&[("a", r#"{"x":"1","y":"1"}"#), ("b", r#"{"x":"2"}"#)]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"spec.dataFrom[0].rewrite[0].merge: fields ["x"] are defined by more than one value (conflictPolicy Error)"#
        );
        assert_eq!(err.reason(), "MergeConflict");
    }

    #[test]
    fn merge_priority_decides_conflicts_when_ignored() {
        let values = map(&[
            ("a", r#"{"x":"from-a"}"#),
            ("b", r#"{"x":"from-b"}"#),
            ("c", r#"{"x":"from-c"}"#),
        ]);
        let spec = |priority: &[&str]| RewriteMerge {
            priority: priority.iter().map(|s| s.to_string()).collect(),
            conflict_policy: Some(MergeConflictPolicy::Ignore),
            ..Default::default()
        };
        let out = apply(&[merge_op(spec(&[]))], "r", values.clone()).unwrap();
        assert_eq!(
            shown(&out),
            [("x".into(), "from-c".into())],
            "name order: last wins"
        );
        // ESO: "processed last in the order they appear", so the last listed wins.
        let out = apply(&[merge_op(spec(&["b", "a"]))], "r", values.clone()).unwrap();
        assert_eq!(
            shown(&out),
            [("x".into(), "from-a".into())],
            "the last priority key wins"
        );
        let err = apply(&[merge_op(spec(&["b", "missing"]))], "r", values.clone()).unwrap_err();
        assert_eq!(err.field(), "r[0].merge.priority", "Strict is the default");
        let ignore = RewriteMerge {
            priority_policy: Some(MergePriorityPolicy::IgnoreNotFound),
            ..spec(&["b", "missing"])
        };
        let out = apply(&[merge_op(ignore)], "r", values).unwrap();
        assert_eq!(shown(&out), [("x".into(), "from-b".into())]);
    }

    #[test]
    fn merge_json_writes_the_map_under_into() {
        let m = RewriteMerge {
            into: Some("config.json".to_owned()),
            strategy: Some(MergeStrategy::Json),
            ..Default::default()
        };
        let out = apply(
            &[merge_op(m)],
            "r",
            map(&[("a", r#"{"n":{"deep":true}}"#), ("b", r#"{"m":"v"}"#)]),
        )
        .unwrap();
        assert_eq!(
            shown(&out),
            [
                ("a".into(), r#"{"n":{"deep":true}}"#.into()),
                ("b".into(), r#"{"m":"v"}"#.into()),
                (
                    "config.json".into(),
                    r#"{"m":"v","n":{"deep":true}}"#.into()
                ),
            ],
            "the input keys stay, as ESO keeps them"
        );
        let m = RewriteMerge {
            strategy: Some(MergeStrategy::Json),
            ..Default::default()
        };
        let err = apply(&[merge_op(m)], "r", map(&[])).unwrap_err();
        assert_eq!(err.field(), "r[0].merge.into");
    }

    #[test]
    fn merge_of_a_value_that_is_not_an_object_names_the_key() {
        let err = apply(
            &[merge_op(RewriteMerge::default())],
            "r",
            map(&[("k", "s3cret")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"r[0].merge: the value of "k" is not a JSON object"#
        );
    }

    proptest::proptest! {
        #[test]
        fn regexp_rewrites_never_panic(source in ".{0,12}", target in ".{0,12}", key in ".{0,20}") {
            let _ = apply(&[regexp(&source, &target)], "r", map(&[(&key, "v")]));
        }

        #[test]
        fn merges_never_panic(a in ".{0,30}", b in ".{0,30}") {
            let _ = apply(&[merge_op(RewriteMerge::default())], "r", map(&[("a", &a), ("b", &b)]));
        }
    }
}
