//! Workloads follow their Secrets: the pure rules of rollout restarts.
//!
//! A Deployment, StatefulSet or DaemonSet follows a Secret kuvert manages when an
//! ExternalSecret names it in `spec.target.rolloutRestartTargets`, or when it carries the label
//! `kuvert.io/reload: "true"` and its pod template uses the Secret ([`secrets_used`]), narrowed
//! by the annotation `kuvert.io/reload-secrets` ([`followed`]). Its pod template then carries,
//! per Secret, the annotation [`hash_annotation`] holding the Secret's data hash (the managed
//! Secret's `kuvert.io/data-hash`). A restart is that annotation changing ([`annotations_to_set`]):
//! declarative (the workload's own controller rolls it out), idempotent (the same hash patches
//! nothing: a refresh reading the same values, or an operator restart, restarts nothing), and
//! complete after a crash (the next check finds the annotation behind and sets it).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use sha2::{Digest, Sha256};

use crate::api::{RELOAD_SECRETS_ANNOTATION, SECRET_HASH_ANNOTATION_PREFIX};

/// The longest name part of an annotation key Kubernetes accepts (the part after `kuvert.io/`).
const MAX_NAME_PART: usize = 63;

/// The pod template annotation holding `secret`'s data hash: `kuvert.io/secret-hash.<secret>`.
/// A Secret name too long for an annotation key (over 51 characters) is cut to its first 40
/// characters and ended with a hash of the whole name, so two long names never share a key.
pub fn hash_annotation(secret: &str) -> String {
    let prefix_part = SECRET_HASH_ANNOTATION_PREFIX
        .strip_prefix("kuvert.io/")
        .unwrap_or(SECRET_HASH_ANNOTATION_PREFIX);
    if prefix_part.len() + secret.len() <= MAX_NAME_PART {
        return format!("{SECRET_HASH_ANNOTATION_PREFIX}{secret}");
    }
    let digest: String = Sha256::digest(secret.as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    let kept: String = secret.chars().take(40).collect();
    format!("{SECRET_HASH_ANNOTATION_PREFIX}{kept}-{digest}")
}

/// The Secrets a pod uses, by name: volumes (`secret`, and `projected` sources), and in every
/// container (init and ephemeral ones too) `env[].valueFrom.secretKeyRef` and
/// `envFrom[].secretRef`. Image pull Secrets are not listed: the kubelet reads them once per
/// pull, a running pod never sees them change.
pub fn secrets_used(spec: &PodSpec) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for volume in spec.volumes.iter().flatten() {
        if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
            used.insert(name.clone());
        }
        let sources = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
        for source in sources.into_iter().flatten() {
            if let Some(secret) = &source.secret {
                used.insert(secret.name.clone());
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let env_of = containers
        .map(|c| (c.env.as_ref(), c.env_from.as_ref()))
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.env.as_ref(), c.env_from.as_ref())),
        );
    for (env, env_from) in env_of {
        for var in env.into_iter().flatten() {
            let secret = var
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref());
            if let Some(secret) = secret {
                used.insert(secret.name.clone());
            }
        }
        for source in env_from.into_iter().flatten() {
            if let Some(secret) = &source.secret_ref {
                used.insert(secret.name.clone());
            }
        }
    }
    used.remove("");
    used
}

/// The Secrets a workload labelled `kuvert.io/reload: "true"` follows: those its pod template
/// uses, narrowed to the ones `kuvert.io/reload-secrets` lists when the workload has that
/// annotation (a listed Secret the template does not use is not followed: it cannot affect
/// the pods). Whether kuvert manages them is the caller's to know.
pub fn followed(
    template: &PodTemplateSpec,
    workload_annotations: Option<&BTreeMap<String, String>>,
) -> BTreeSet<String> {
    let mut used = template.spec.as_ref().map(secrets_used).unwrap_or_default();
    if let Some(listed) = workload_annotations.and_then(|a| a.get(RELOAD_SECRETS_ANNOTATION)) {
        let listed: BTreeSet<&str> = listed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        used.retain(|s| listed.contains(s.as_str()));
    }
    used
}

/// The pod template annotations to set so that it carries `wanted` (Secret name → data hash):
/// only those missing or different; empty when the template is up to date (then nothing is
/// written and nothing restarts). Other annotations are never touched.
pub fn annotations_to_set(
    template_annotations: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    wanted
        .iter()
        .map(|(secret, hash)| (hash_annotation(secret), hash))
        .filter(|(key, hash)| template_annotations.and_then(|a| a.get(key)) != Some(*hash))
        .map(|(key, hash)| (key, hash.clone()))
        .collect()
}

/// The JSON merge patch setting `annotations` on a workload's pod template, and nothing else:
/// kuvert then owns only these keys and never fights another field manager.
pub fn template_patch(annotations: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"metadata": {"annotations": annotations}}}})
}

/// Whether a Deployment's rollout has finished, as `kubectl rollout status` judges it: its
/// controller observed the current generation, every replica runs the current template
/// (updated), no old replica is left, and every updated replica is available.
pub fn deployment_rolled_out(deployment: &Deployment) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    observed(deployment.metadata.generation, status.observed_generation)
        && updated >= wanted
        && status.replicas.unwrap_or(0) <= updated
        && status.available_replicas.unwrap_or(0) >= updated
}

/// Whether a StatefulSet's rollout has finished, as `kubectl rollout status` judges it: the
/// current generation observed, every replica ready, and (rolling updates) every replica above
/// the `partition` updated, the whole set on the update revision when there is no partition.
pub fn stateful_set_rolled_out(set: &StatefulSet) -> bool {
    let Some(status) = &set.status else {
        return false;
    };
    let wanted = set.spec.replicas.unwrap_or(1);
    if !observed(set.metadata.generation, status.observed_generation)
        || status.ready_replicas.unwrap_or(0) < wanted
    {
        return false;
    }
    let strategy = set.spec.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return status.updated_replicas.unwrap_or(0) >= wanted;
    }
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        return status.updated_replicas.unwrap_or(0) >= wanted - partition;
    }
    status.update_revision.is_some() && status.update_revision == status.current_revision
}

/// Whether a DaemonSet's rollout has finished, as `kubectl rollout status` judges it: the
/// current generation observed, and every scheduled pod updated and available.
pub fn daemon_set_rolled_out(set: &DaemonSet) -> bool {
    let Some(status) = &set.status else {
        return false;
    };
    observed(set.metadata.generation, status.observed_generation)
        && status.updated_number_scheduled.unwrap_or(0) >= status.desired_number_scheduled
        && status.number_available.unwrap_or(0) >= status.desired_number_scheduled
}

fn observed(generation: Option<i64>, observed: Option<i64>) -> bool {
    observed.unwrap_or(0) >= generation.unwrap_or(1)
}

/// The `workloadsUpToDate` column: how many of `workloads` are up to date, as `3/4`.
pub fn up_to_date_count(workloads: &[crate::api::WorkloadStatus]) -> Option<String> {
    if workloads.is_empty() {
        return None;
    }
    let done = workloads.iter().filter(|w| w.up_to_date).count();
    Some(format!("{done}/{}", workloads.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> PodTemplateSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    const USES_FOUR: &str = r#"
spec:
  volumes:
    - {name: tls, secret: {secretName: tls}}
    - name: bundle
      projected:
        sources:
          - secret: {name: ca}
          - configMap: {name: not-a-secret}
    - {name: cache, emptyDir: {}}
  initContainers:
    - name: migrate
      image: app
      envFrom: [{secretRef: {name: db}}]
  containers:
    - name: app
      image: app
      env:
        - {name: TOKEN, valueFrom: {secretKeyRef: {name: api, key: token}}}
        - {name: PLAIN, value: x}
        - {name: FROM_MAP, valueFrom: {configMapKeyRef: {name: settings, key: a}}}
  imagePullSecrets: [{name: registry}]
"#;

    #[test]
    fn a_pod_uses_the_secrets_of_its_volumes_projections_env_and_env_from() {
        let used = secrets_used(template(USES_FOUR).spec.as_ref().unwrap());
        assert_eq!(names(&used), ["api", "ca", "db", "tls"]);
    }

    #[test]
    fn reload_secrets_narrows_a_labelled_workload_to_the_listed_secrets_it_uses() {
        let all = followed(&template(USES_FOUR), None);
        assert_eq!(names(&all), ["api", "ca", "db", "tls"]);
        let annotations = BTreeMap::from([(
            RELOAD_SECRETS_ANNOTATION.to_owned(),
            " db, api ,unused,".to_owned(),
        )]);
        let narrowed = followed(&template(USES_FOUR), Some(&annotations));
        assert_eq!(names(&narrowed), ["api", "db"]);
        assert!(followed(&template("metadata: {}"), None).is_empty());
    }

    #[test]
    fn the_annotation_is_named_after_the_secret_and_long_names_stay_valid_keys() {
        assert_eq!(hash_annotation("db"), "kuvert.io/secret-hash.db");
        let longest = "a".repeat(51);
        assert_eq!(
            hash_annotation(&longest),
            format!("kuvert.io/secret-hash.{longest}")
        );
        let long = format!("{}.x", "b".repeat(60));
        let key = hash_annotation(&long);
        let name_part = key.strip_prefix("kuvert.io/").unwrap();
        assert_eq!(name_part.len(), 63);
        assert!(name_part.starts_with(&format!("secret-hash.{}-", "b".repeat(40))));
        assert_ne!(key, hash_annotation(&format!("{}.y", "b".repeat(60))));
    }

    #[test]
    fn only_missing_or_changed_hashes_are_set_and_an_up_to_date_template_patches_nothing() {
        let wanted = BTreeMap::from([
            ("api".to_owned(), "h2".to_owned()),
            ("db".to_owned(), "h1".to_owned()),
        ]);
        let current = BTreeMap::from([
            ("kuvert.io/secret-hash.db".to_owned(), "h1".to_owned()),
            ("kuvert.io/secret-hash.api".to_owned(), "h1".to_owned()),
            ("other.io/keep".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(
            annotations_to_set(Some(&current), &wanted),
            BTreeMap::from([("kuvert.io/secret-hash.api".to_owned(), "h2".to_owned())])
        );
        assert_eq!(annotations_to_set(None, &wanted).len(), 2);
        let mut done = current.clone();
        done.insert("kuvert.io/secret-hash.api".to_owned(), "h2".to_owned());
        assert!(annotations_to_set(Some(&done), &wanted).is_empty());
        assert!(annotations_to_set(Some(&done), &BTreeMap::new()).is_empty());
    }

    fn deployment(replicas: i32, generation: i64, status: &str) -> Deployment {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: web, generation: {generation}}}\nspec:\n  replicas: {replicas}\n  selector: {{}}\n  template: {{}}\nstatus: {status}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_deployment_has_rolled_out_once_every_replica_is_updated_and_available() {
        let done = "{observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2}";
        assert!(deployment_rolled_out(&deployment(2, 3, done)));
        let not_observed =
            "{observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2}";
        assert!(!deployment_rolled_out(&deployment(2, 3, not_observed)));
        let half = "{observedGeneration: 3, replicas: 3, updatedReplicas: 1, availableReplicas: 2}";
        assert!(!deployment_rolled_out(&deployment(2, 3, half)));
        let old_left =
            "{observedGeneration: 3, replicas: 3, updatedReplicas: 2, availableReplicas: 3}";
        assert!(!deployment_rolled_out(&deployment(2, 3, old_left)));
        let unavailable =
            "{observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 1}";
        assert!(!deployment_rolled_out(&deployment(2, 3, unavailable)));
        assert!(deployment_rolled_out(&deployment(
            0,
            2,
            "{observedGeneration: 2}"
        )));
        assert!(!deployment_rolled_out(&deployment(0, 2, "null")));
    }

    #[test]
    fn a_stateful_set_has_rolled_out_when_its_revisions_meet_or_its_partition_is_updated() {
        let set = |spec: &str, status: &str| -> StatefulSet {
            serde_saphyr::from_str(&format!(
                "metadata: {{generation: 2}}\nspec:\n  replicas: 3\n  selector: {{}}\n  template: {{}}\n{spec}status: {status}\n"
            ))
            .unwrap()
        };
        let done = "{observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentRevision: b, updateRevision: b}";
        assert!(stateful_set_rolled_out(&set("", done)));
        let rolling = "{observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 1, currentRevision: a, updateRevision: b}";
        assert!(!stateful_set_rolled_out(&set("", rolling)));
        let partitioned =
            "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}\n";
        assert!(stateful_set_rolled_out(&set(partitioned, rolling)));
        let on_delete = "  updateStrategy: {type: OnDelete}\n";
        assert!(!stateful_set_rolled_out(&set(on_delete, rolling)));
        let not_ready = "{observedGeneration: 2, replicas: 3, readyReplicas: 2, updatedReplicas: 3, currentRevision: b, updateRevision: b}";
        assert!(!stateful_set_rolled_out(&set("", not_ready)));
    }

    #[test]
    fn a_daemon_set_has_rolled_out_when_every_scheduled_pod_is_updated_and_available() {
        let set = |status: &str| -> DaemonSet {
            serde_saphyr::from_str(&format!(
                "metadata: {{generation: 4}}\nspec:\n  selector: {{}}\n  template: {{}}\nstatus: {status}\n"
            ))
            .unwrap()
        };
        let base = "currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 2";
        assert!(daemon_set_rolled_out(&set(&format!(
            "{{{base}, observedGeneration: 4, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2}}"
        ))));
        assert!(!daemon_set_rolled_out(&set(&format!(
            "{{{base}, observedGeneration: 4, desiredNumberScheduled: 2, updatedNumberScheduled: 1, numberAvailable: 2}}"
        ))));
        assert!(!daemon_set_rolled_out(&set(&format!(
            "{{{base}, observedGeneration: 3, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2}}"
        ))));
    }

    #[test]
    fn the_column_counts_the_workloads_up_to_date() {
        use crate::api::{WorkloadKind, WorkloadStatus};
        let workload = |up_to_date| WorkloadStatus {
            kind: WorkloadKind::Deployment,
            name: "web".to_owned(),
            secret_hash: None,
            up_to_date,
            observed_at: None,
        };
        assert_eq!(up_to_date_count(&[]), None);
        assert_eq!(
            up_to_date_count(&[workload(true), workload(false), workload(true)]),
            Some("2/3".to_owned())
        );
    }

    #[test]
    fn the_patch_sets_only_the_pod_template_annotations() {
        let set = BTreeMap::from([("kuvert.io/secret-hash.db".to_owned(), "h1".to_owned())]);
        assert_eq!(
            template_patch(&set),
            serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
                "kuvert.io/secret-hash.db": "h1"
            }}}}})
        );
    }
}
