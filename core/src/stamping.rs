//! What a ClusterExternalSecret stamps, and where: the pure middle of its controller.
//!
//! The operator observes the namespaces and the ExternalSecrets labelled as stamped, asks
//! [`plan`] what to create, update and delete, applies that, and writes [`status`]. Nothing here
//! talks to Kubernetes.
//!
//! Ownership: an ExternalSecret is this ClusterExternalSecret's only when it carries a controller
//! owner reference with its uid (the [`STAMPED_BY_LABEL`] only selects what the operator
//! watches: a label is easily copied, and one removed by hand is put back). Anything else of the
//! same name is never written: its namespace is reported as failed. The owner reference also
//! lets the garbage collector delete every stamped ExternalSecret with the ClusterExternalSecret
//! (a namespaced object may be owned by a cluster-scoped one, not the reverse), so deletion
//! needs no finalizer; a namespace that stops matching is cleaned up by [`plan`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use crate::admission::selector_matches;
use crate::api::{
    ClusterExternalSecret, ClusterExternalSecretNamespaceFailure, ClusterExternalSecretStatus,
    ExternalSecret,
};
use crate::conditions;

/// Label on every ExternalSecret a ClusterExternalSecret created: the ClusterExternalSecret's
/// name. The operator watches only ExternalSecrets carrying it.
pub const STAMPED_BY_LABEL: &str = "kuvert.io/cluster-external-secret";

/// Resync period when `refreshTime` is not set (ESO's default).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// A namespace as the selectors see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceView {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Being deleted: nothing can be created in it, so it is never selected.
    pub terminating: bool,
}

/// The name of the ExternalSecrets `ces` creates: `spec.externalSecretName`, else its own name.
pub fn external_secret_name(ces: &ClusterExternalSecret) -> String {
    ces.spec
        .external_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ces.name_any())
}

/// The resync period: `spec.refreshTime`, else [`DEFAULT_REFRESH`]. The CRD's pattern refuses
/// what does not parse; a zero duration would spin, so it is the default too.
pub fn refresh(ces: &ClusterExternalSecret) -> Duration {
    ces.spec
        .refresh_time
        .as_deref()
        .and_then(crate::engine::status::parse_go_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_REFRESH)
}

/// Whether `ces` selects `namespace`: listed in `spec.namespaces`, or its labels matched by any
/// of `spec.namespaceSelectors`. A terminating namespace is never selected.
pub fn selects(ces: &ClusterExternalSecret, namespace: &NamespaceView) -> bool {
    !namespace.terminating
        && (ces.spec.namespaces.contains(&namespace.name)
            || ces
                .spec
                .namespace_selectors
                .iter()
                .any(|s| selector_matches(s, &namespace.labels)))
}

/// The ExternalSecret `ces` wants in `namespace`.
pub fn desired(ces: &ClusterExternalSecret, namespace: &str) -> ExternalSecret {
    let mut es = ExternalSecret::new(
        &external_secret_name(ces),
        ces.spec.external_secret_spec.clone(),
    );
    es.metadata.namespace = Some(namespace.to_owned());
    let (labels, annotations) = desired_metadata(ces);
    es.metadata.labels = Some(labels);
    es.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    es.metadata.owner_references = Some(vec![owner_reference(ces)]);
    es
}

/// Labels (the user's, then the stamp label, which the user cannot override) and annotations.
fn desired_metadata(
    ces: &ClusterExternalSecret,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let metadata = ces
        .spec
        .external_secret_metadata
        .clone()
        .unwrap_or_default();
    let mut labels = metadata.labels;
    labels.insert(STAMPED_BY_LABEL.to_owned(), ces.name_any());
    (labels, metadata.annotations)
}

/// The controller owner reference to `ces`. `blockOwnerDeletion` is left unset: setting it needs
/// permission to update the owner's finalizers, and nothing waits for the dependents.
fn owner_reference(ces: &ClusterExternalSecret) -> OwnerReference {
    OwnerReference {
        api_version: ClusterExternalSecret::api_version(&()).into_owned(),
        kind: ClusterExternalSecret::kind(&()).into_owned(),
        name: ces.name_any(),
        uid: ces.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Whether `es` was created by `ces`: its controller owner reference carries `ces`'s uid (a
/// ClusterExternalSecret deleted and created again under the same name is another owner).
pub fn stamped_by(es: &ExternalSecret, ces: &ClusterExternalSecret) -> bool {
    es.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && o.kind == ClusterExternalSecret::kind(&())
            && ces.uid().is_some_and(|uid| o.uid == uid)
    })
}

/// Whether `es` (stamped) already is what `ces` wants: the same spec, labels and annotations.
/// Labels and annotations are compared exactly, so a hand edit of either is put back; the ones
/// kuvert itself adds to ExternalSecrets are none (it adds only a finalizer).
pub fn in_step(es: &ExternalSecret, ces: &ClusterExternalSecret) -> bool {
    let (labels, annotations) = desired_metadata(ces);
    es.spec == ces.spec.external_secret_spec
        && es.labels() == &labels
        && es.annotations() == &annotations
}

/// `es` (stamped) brought back in step with `ces`, keeping its identity (resourceVersion,
/// finalizers, owner references) so the write is a checked update.
pub fn restored(es: &ExternalSecret, ces: &ClusterExternalSecret) -> ExternalSecret {
    let mut es = es.clone();
    let (labels, annotations) = desired_metadata(ces);
    es.spec = ces.spec.external_secret_spec.clone();
    es.metadata.labels = Some(labels);
    es.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    es.metadata.managed_fields = None;
    es.status = None;
    es
}

/// Why a selected namespace holds no ExternalSecret of this ClusterExternalSecret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceFailure {
    /// An ExternalSecret of the name exists that this ClusterExternalSecret did not create.
    NotOwned {
        /// The ExternalSecret's name.
        name: String,
    },
    /// The API server refused the write.
    Refused {
        /// What was done: `creating` or `updating`.
        action: &'static str,
        /// The ExternalSecret's name.
        name: String,
        /// The API server's message (it never holds Secret values: the object is a spec).
        message: String,
    },
}

impl std::fmt::Display for NamespaceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamespaceFailure::NotOwned { name } => write!(
                f,
                "ExternalSecret {name} exists and was not created by this ClusterExternalSecret; \
                 it is left untouched"
            ),
            NamespaceFailure::Refused {
                action,
                name,
                message,
            } => write!(f, "{action} ExternalSecret {name} failed: {message}"),
        }
    }
}

/// One write the controller makes.
#[derive(Clone, Debug, serde::Serialize)]
pub enum Step {
    /// Create this ExternalSecret (a 409 means one not ours exists: [`NamespaceFailure::NotOwned`]).
    Create(ExternalSecret),
    /// Replace a stamped ExternalSecret that drifted with this.
    Update(ExternalSecret),
    /// Delete the stamped ExternalSecret `name` of `namespace`: the namespace is no longer
    /// selected, or the name changed.
    Delete {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// What to do for one ClusterExternalSecret.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Writes, in namespace order.
    pub steps: Vec<Step>,
    /// Selected namespaces whose ExternalSecret is already in step.
    pub in_step: Vec<String>,
    /// Selected namespaces that fail without any write.
    pub failed: Vec<(String, NamespaceFailure)>,
}

/// What `ces` must write, given every namespace and the ExternalSecrets labelled as stamped by
/// a ClusterExternalSecret of its name (`labelled`, from any namespace).
pub fn plan(
    ces: &ClusterExternalSecret,
    namespaces: &[NamespaceView],
    labelled: &[ExternalSecret],
) -> Plan {
    let name = external_secret_name(ces);
    let selected: BTreeSet<&str> = namespaces
        .iter()
        .filter(|n| selects(ces, n))
        .map(|n| n.name.as_str())
        .collect();
    let mut plan = Plan::default();
    for namespace in &selected {
        let existing = labelled
            .iter()
            .find(|es| es.namespace().as_deref() == Some(namespace) && es.name_any() == name);
        match existing {
            Some(es) if !stamped_by(es, ces) => plan.failed.push((
                (*namespace).to_owned(),
                NamespaceFailure::NotOwned { name: name.clone() },
            )),
            Some(es) if in_step(es, ces) => plan.in_step.push((*namespace).to_owned()),
            Some(es) => plan.steps.push(Step::Update(restored(es, ces))),
            None => plan.steps.push(Step::Create(desired(ces, namespace))),
        }
    }
    let mut stale: Vec<Step> = labelled
        .iter()
        .filter(|es| stamped_by(es, ces))
        .filter(|es| {
            let namespace = es.namespace().unwrap_or_default();
            !selected.contains(namespace.as_str()) || es.name_any() != name
        })
        .map(|es| Step::Delete {
            namespace: es.namespace().unwrap_or_default(),
            name: es.name_any(),
        })
        .collect();
    stale.sort_by_key(|s| match s {
        Step::Delete { namespace, name } => (namespace.clone(), name.clone()),
        _ => Default::default(),
    });
    plan.steps.extend(stale);
    plan
}

/// The status after a reconcile: `provisioned` (namespaces holding the ExternalSecret in
/// step), `failed`, and `not_ready` (provisioned namespaces whose ExternalSecret is not Ready).
/// `Ready` is True when no selected namespace failed, as in ESO; whether the stamped
/// ExternalSecrets synced is counted beside it.
pub fn status(
    ces: &ClusterExternalSecret,
    mut provisioned: Vec<String>,
    mut failed: Vec<(String, NamespaceFailure)>,
    mut not_ready: Vec<String>,
    now: jiff::Timestamp,
) -> ClusterExternalSecretStatus {
    provisioned.sort();
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    not_ready.retain(|n| provisioned.contains(n));
    not_ready.sort();
    let ready_external_secrets = count(provisioned.len() - not_ready.len());
    let name = external_secret_name(ces);
    let previous = ces
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let condition = if failed.is_empty() {
        conditions::ready(
            previous,
            true,
            PROVISIONED,
            &format!(
                "ExternalSecret {name} is in {} namespace(s), {ready_external_secrets} Ready",
                provisioned.len()
            ),
            ces.metadata.generation,
            now,
        )
    } else {
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        conditions::ready(
            previous,
            false,
            NAMESPACES_FAILED,
            &format!(
                "ExternalSecret {name} could not be provisioned in {} namespace(s): {}",
                failed.len(),
                names.join(", ")
            ),
            ces.metadata.generation,
            now,
        )
    };
    ClusterExternalSecretStatus {
        external_secret_name: Some(name),
        failed_namespaces: failed
            .into_iter()
            .map(
                |(namespace, reason)| ClusterExternalSecretNamespaceFailure {
                    namespace,
                    reason: Some(reason.to_string()),
                },
            )
            .collect(),
        provisioned_namespace_count: Some(count(provisioned.len())),
        provisioned_namespaces: provisioned,
        ready_external_secrets: Some(ready_external_secrets),
        not_ready_namespaces: not_ready,
        conditions: vec![condition],
    }
}

/// Reason of `Ready=True`: every selected namespace holds the ExternalSecret.
pub const PROVISIONED: &str = "Provisioned";
/// Reason of `Ready=False`: some selected namespaces could not be provisioned.
pub const NAMESPACES_FAILED: &str = "NamespacesFailed";

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether a stamped ExternalSecret reports `Ready=True`.
pub fn is_ready(es: &ExternalSecret) -> bool {
    es.status
        .as_ref()
        .and_then(|s| conditions::find_ready(&s.conditions))
        .is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ces(extra: &str) -> ClusterExternalSecret {
        serde_saphyr::from_str(&format!(
            "apiVersion: kuvert.io/v1alpha1
kind: ClusterExternalSecret
metadata: {{name: team-db, uid: u-1, generation: 3}}
spec:
  externalSecretSpec:
    secretStoreRef: {{name: vault, kind: ClusterSecretStore}}
    data: [{{secretKey: password, remoteRef: {{key: db, property: password}}}}]
{extra}"
        ))
        .unwrap()
    }

    fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceView {
        NamespaceView {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            terminating: false,
        }
    }

    /// Steps as comparable values: the action and the whole object written.
    fn steps(steps: &[Step]) -> Vec<(&'static str, serde_json::Value)> {
        steps
            .iter()
            .map(|s| match s {
                Step::Create(es) => ("create", serde_json::to_value(es).unwrap()),
                Step::Update(es) => ("update", serde_json::to_value(es).unwrap()),
                Step::Delete { namespace, name } => {
                    ("delete", serde_json::json!([namespace, name]))
                }
            })
            .collect()
    }

    fn create(es: ExternalSecret) -> (&'static str, serde_json::Value) {
        ("create", serde_json::to_value(es).unwrap())
    }

    fn delete(namespace: &str, name: &str) -> (&'static str, serde_json::Value) {
        ("delete", serde_json::json!([namespace, name]))
    }

    fn team_selector() -> &'static str {
        "  namespaceSelectors: [{matchLabels: {team: a}}, {matchExpressions: [{key: env, operator: In, values: [prod]}]}]\n"
    }

    #[test]
    fn namespaces_are_selected_by_any_selector_or_by_name_never_while_terminating() {
        let c = ces(&format!("{}  namespaces: [listed]\n", team_selector()));
        assert!(selects(&c, &ns("a1", &[("team", "a")])));
        assert!(selects(&c, &ns("p1", &[("env", "prod")])));
        assert!(selects(&c, &ns("listed", &[])));
        assert!(!selects(&c, &ns("b1", &[("team", "b")])));
        let mut dying = ns("a2", &[("team", "a")]);
        dying.terminating = true;
        assert!(!selects(&c, &dying));
    }

    #[test]
    fn no_selector_and_no_name_selects_nothing() {
        assert!(!selects(&ces(""), &ns("default", &[])));
    }

    #[test]
    fn the_stamped_external_secret_carries_the_spec_metadata_stamp_label_and_owner() {
        let c = ces(
            "  externalSecretName: db\n  externalSecretMetadata: {labels: {app: web, kuvert.io/cluster-external-secret: forged}, annotations: {note: hi}}\n",
        );
        let es = desired(&c, "a1");
        assert_eq!(es.name_any(), "db");
        assert_eq!(es.namespace().as_deref(), Some("a1"));
        assert_eq!(es.spec, c.spec.external_secret_spec);
        assert_eq!(
            es.labels(),
            &BTreeMap::from([
                ("app".to_owned(), "web".to_owned()),
                (STAMPED_BY_LABEL.to_owned(), "team-db".to_owned()),
            ])
        );
        assert_eq!(
            es.annotations(),
            &BTreeMap::from([("note".to_owned(), "hi".to_owned())])
        );
        assert_eq!(
            es.owner_references(),
            &[OwnerReference {
                api_version: "kuvert.io/v1alpha1".to_owned(),
                kind: "ClusterExternalSecret".to_owned(),
                name: "team-db".to_owned(),
                uid: "u-1".to_owned(),
                controller: Some(true),
                block_owner_deletion: None,
            }]
        );
        assert!(stamped_by(&es, &c));
        assert!(in_step(&es, &c));
    }

    #[test]
    fn the_name_defaults_to_the_cluster_external_secrets_and_refresh_to_a_minute() {
        let c = ces("");
        assert_eq!(external_secret_name(&c), "team-db");
        assert_eq!(refresh(&c), Duration::from_secs(60));
        assert_eq!(
            refresh(&ces("  refreshTime: 5m\n")),
            Duration::from_secs(300)
        );
        assert_eq!(refresh(&ces("  refreshTime: 0s\n")), DEFAULT_REFRESH);
    }

    #[test]
    fn a_same_named_external_secret_without_our_uid_is_not_ours() {
        let c = ces("");
        let mut other = desired(&c, "a1");
        other.metadata.owner_references.as_mut().unwrap()[0].uid = "u-old".to_owned();
        assert!(!stamped_by(&other, &c));
        let mut labelled_only = desired(&c, "a1");
        labelled_only.metadata.owner_references = None;
        assert!(!stamped_by(&labelled_only, &c));
        let mut unlabelled = desired(&c, "a1");
        unlabelled.metadata.labels = None;
        assert!(stamped_by(&unlabelled, &c), "the label alone never decides");
        assert!(!in_step(&unlabelled, &c), "a removed label is put back");
    }

    #[test]
    fn missing_namespaces_get_a_create_and_in_step_ones_nothing() {
        let c = ces(team_selector());
        let namespaces = [
            ns("a1", &[("team", "a")]),
            ns("a2", &[("team", "a")]),
            ns("b1", &[("team", "b")]),
        ];
        let existing = [desired(&c, "a2")];
        let p = plan(&c, &namespaces, &existing);
        assert_eq!(steps(&p.steps), vec![create(desired(&c, "a1"))]);
        assert_eq!(p.in_step, vec!["a2".to_owned()]);
        assert_eq!(p.failed, vec![]);
    }

    #[test]
    fn a_hand_edited_external_secret_is_put_back_keeping_its_identity() {
        let c = ces(team_selector());
        let mut edited = desired(&c, "a1");
        edited.metadata.resource_version = Some("7".to_owned());
        edited.metadata.finalizers = Some(vec!["kuvert.io/generator-leases".to_owned()]);
        edited.spec.refresh_interval = Some("1s".to_owned());
        edited
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("extra".to_owned(), "x".to_owned());
        assert!(!in_step(&edited, &c));
        let p = plan(&c, &[ns("a1", &[("team", "a")])], &[edited.clone()]);
        let Step::Update(put_back) = &p.steps[0] else {
            panic!("expected an update, got {:?}", p.steps)
        };
        assert_eq!(p.steps.len(), 1);
        assert!(in_step(put_back, &c));
        assert_eq!(put_back.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(put_back.metadata.finalizers, edited.metadata.finalizers);
    }

    #[test]
    fn a_namespace_no_longer_selected_or_a_renamed_external_secret_is_deleted() {
        let c = ces(&format!("{}  externalSecretName: db2\n", team_selector()));
        let old = ces(team_selector());
        let mut renamed = desired(&old, "a1");
        renamed.metadata.owner_references = desired(&c, "a1").metadata.owner_references;
        let left = desired(&c, "b1");
        let p = plan(
            &c,
            &[ns("a1", &[("team", "a")]), ns("b1", &[("team", "b")])],
            &[renamed, left],
        );
        assert_eq!(
            steps(&p.steps),
            vec![
                create(desired(&c, "a1")),
                delete("a1", "team-db"),
                delete("b1", "db2"),
            ]
        );
    }

    #[test]
    fn a_labelled_external_secret_not_ours_fails_its_namespace_and_is_never_written() {
        let c = ces(team_selector());
        let mut foreign = desired(&c, "a1");
        foreign.metadata.owner_references = None;
        let mut elsewhere = desired(&c, "b1");
        elsewhere.metadata.owner_references = None;
        let p = plan(
            &c,
            &[ns("a1", &[("team", "a")]), ns("b1", &[])],
            &[foreign, elsewhere],
        );
        assert_eq!(steps(&p.steps), vec![]);
        assert_eq!(
            p.failed,
            vec![(
                "a1".to_owned(),
                NamespaceFailure::NotOwned {
                    name: "team-db".to_owned()
                }
            )]
        );
    }

    #[test]
    fn status_lists_namespaces_sorted_and_is_ready_only_without_failures() {
        let at = jiff::Timestamp::from_second(1000).unwrap();
        let c = ces("");
        let ok = status(
            &c,
            vec!["b".to_owned(), "a".to_owned()],
            vec![],
            vec!["b".to_owned(), "gone".to_owned()],
            at,
        );
        assert_eq!(ok.external_secret_name.as_deref(), Some("team-db"));
        assert_eq!(ok.provisioned_namespaces, vec!["a", "b"]);
        assert_eq!(ok.provisioned_namespace_count, Some(2));
        assert_eq!(ok.ready_external_secrets, Some(1));
        assert_eq!(ok.not_ready_namespaces, vec!["b"]);
        assert_eq!(ok.failed_namespaces, vec![]);
        let ready = &ok.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "True", "Provisioned")
        );
        assert_eq!(
            ready.message,
            "ExternalSecret team-db is in 2 namespace(s), 1 Ready"
        );
        assert_eq!(ready.observed_generation, Some(3));

        let failed = status(
            &c,
            vec!["a".to_owned()],
            vec![(
                "z".to_owned(),
                NamespaceFailure::NotOwned {
                    name: "team-db".to_owned(),
                },
            )],
            vec!["a".to_owned()],
            at,
        );
        assert_eq!(failed.ready_external_secrets, Some(0));
        assert_eq!(
            failed.failed_namespaces,
            vec![ClusterExternalSecretNamespaceFailure {
                namespace: "z".to_owned(),
                reason: Some(
                    "ExternalSecret team-db exists and was not created by this \
                     ClusterExternalSecret; it is left untouched"
                        .to_owned()
                ),
            }]
        );
        let ready = &failed.conditions[0];
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            (
                "False",
                "NamespacesFailed",
                "ExternalSecret team-db could not be provisioned in 1 namespace(s): z"
            )
        );
    }

    #[test]
    fn a_refused_write_names_the_action_and_the_servers_message() {
        let failure = NamespaceFailure::Refused {
            action: "creating",
            name: "db".to_owned(),
            message: "namespace x is being terminated".to_owned(),
        };
        assert_eq!(
            failure.to_string(),
            "creating ExternalSecret db failed: namespace x is being terminated"
        );
    }
}
