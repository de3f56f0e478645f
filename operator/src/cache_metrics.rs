//! Metrics computed from the controllers' caches each time `/metrics` is scraped: the objects
//! of every kind (ExternalSecrets, both store kinds, ClusterExternalSecrets, PushSecrets) by Ready state, each store's health, and (with `--per-object-metrics`) each
//! ExternalSecret's conditions.
//!
//! Computed at scrape time, not recorded as reconciles happen: right after a (re)start they
//! already cover every object (a restart reconciles nothing that is not due, so counters
//! set by reconciles would stay empty for up to an hour), and a deleted object's series goes
//! with it from the cache (a gauge set by a reconcile would stay, as the metrics recorder
//! never forgets a series). They appear once every cache has completed its first list, so a
//! half-listed cache never shows as missing objects.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use kuvert_core::api::{ClusterExternalSecret, Condition, ExternalSecret, PushSecret};
use kuvert_core::conditions;

use crate::context::Settings;
use crate::externalsecret::stores::StoreCaches;
use crate::metrics::{CONDITION, OBJECT_READY, OBJECTS, STORE_READY, WORKLOADS};
use crate::store::StoreObject;

/// The caches the scrape-time metrics are computed from; empty until [`CacheMetrics::set`].
#[derive(Clone, Default)]
pub struct CacheMetrics {
    caches: Arc<OnceLock<Caches>>,
    push_secrets: Arc<OnceLock<Store<PushSecret>>>,
}

struct Caches {
    external_secrets: Store<ExternalSecret>,
    stores: StoreCaches,
    /// `None` where this instance serves no ClusterExternalSecrets (`--namespace`).
    cluster_external_secrets: Option<Store<ClusterExternalSecret>>,
    settings: Settings,
}

impl CacheMetrics {
    /// Starts exporting from these caches (call once they have all listed; later calls are
    /// ignored: one process runs its controllers once).
    pub fn set(
        &self,
        external_secrets: Store<ExternalSecret>,
        stores: StoreCaches,
        cluster_external_secrets: Option<Store<ClusterExternalSecret>>,
        settings: Settings,
    ) {
        let _ = self.caches.set(Caches {
            external_secrets,
            stores,
            cluster_external_secrets,
            settings,
        });
    }

    /// Also counts the PushSecrets of this cache (call before [`CacheMetrics::set`], or with it).
    pub fn set_push_secrets(&self, push_secrets: Store<PushSecret>) {
        let _ = self.push_secrets.set(push_secrets);
    }

    /// The metrics in Prometheus' text format (empty before [`CacheMetrics::set`]).
    pub fn render(&self) -> String {
        let Some(caches) = self.caches.get() else {
            return String::new();
        };
        let external_secrets = caches.external_secrets.state();
        let mut stores = Vec::new();
        let mut counts = vec![count(
            "ExternalSecret",
            external_secrets
                .iter()
                .map(|es| ready_of(es.status.as_ref().map(|s| &s.conditions[..]))),
        )];
        collect(
            &caches.stores.stores.state(),
            &caches.settings,
            &mut counts,
            &mut stores,
        );
        if let Some(cluster_stores) = &caches.stores.cluster_stores {
            collect(
                &cluster_stores.state(),
                &caches.settings,
                &mut counts,
                &mut stores,
            );
        }

        if let Some(cluster_external_secrets) = &caches.cluster_external_secrets {
            counts.push(count(
                "ClusterExternalSecret",
                cluster_external_secrets
                    .state()
                    .iter()
                    .map(|ces| ready_of(ces.status.as_ref().map(|s| &s.conditions[..]))),
            ));
        }
        if let Some(push_secrets) = self.push_secrets.get() {
            counts.push(count(
                "PushSecret",
                push_secrets
                    .state()
                    .iter()
                    .map(|ps| ready_of(ps.status.as_ref().map(|s| &s.conditions[..]))),
            ));
        }

        let mut out = String::new();
        family(
            &mut out,
            OBJECTS,
            "Objects by kind and Ready state, from the caches.",
        );
        for (kind, [ready, not_ready, unknown]) in counts {
            for (state, n) in [("True", ready), ("False", not_ready), ("Unknown", unknown)] {
                sample(
                    &mut out,
                    OBJECTS,
                    &[("kind", kind), ("ready", state)],
                    n as f64,
                );
            }
        }
        family(
            &mut out,
            STORE_READY,
            "1 while a SecretStore or ClusterSecretStore this instance serves is Ready, else 0.",
        );
        for (kind, namespace, name, ready) in &stores {
            let labels = [("kind", *kind), ("namespace", namespace), ("name", name)];
            sample(&mut out, STORE_READY, &labels, f64::from(u8::from(*ready)));
        }
        workloads(&mut out, &external_secrets);
        if caches.settings.per_object_metrics {
            per_object(&mut out, &external_secrets);
        }
        out
    }
}

/// The workloads the ExternalSecrets' statuses list, by whether they run the current data.
fn workloads(out: &mut String, external_secrets: &[Arc<ExternalSecret>]) {
    let listed = external_secrets
        .iter()
        .filter_map(|es| es.status.as_ref())
        .flat_map(|s| &s.workloads);
    let (mut current, mut behind) = (0_u32, 0_u32);
    for workload in listed {
        *if workload.up_to_date {
            &mut current
        } else {
            &mut behind
        } += 1;
    }
    family(
        out,
        WORKLOADS,
        "Workloads following Secrets kuvert manages, by whether they run the current data.",
    );
    sample(
        out,
        WORKLOADS,
        &[("up_to_date", "true")],
        f64::from(current),
    );
    sample(
        out,
        WORKLOADS,
        &[("up_to_date", "false")],
        f64::from(behind),
    );
}

/// Counts one store kind and adds its stores this instance serves to `stores`.
fn collect<S: StoreObject>(
    cached: &[Arc<S>],
    settings: &Settings,
    counts: &mut Vec<(&'static str, [usize; 3])>,
    stores: &mut Vec<(&'static str, String, String, bool)>,
) {
    let served: Vec<&Arc<S>> = cached
        .iter()
        .filter(|s| settings.serves(s.store_spec().controller.as_deref()))
        .collect();
    let states = served
        .iter()
        .map(|s| ready_of(s.store_status().map(|st| &st.conditions[..])));
    counts.push(count(S::METRIC_KIND, states));
    for store in served {
        let ready = ready_of(store.store_status().map(|s| &s.conditions[..])) == Some(true);
        let namespace = store.namespace().unwrap_or_default();
        stores.push((S::METRIC_KIND, namespace, store.name_any(), ready));
    }
    stores.sort();
}

/// Each ExternalSecret's Ready state and, as ESO's `externalsecret_status_condition` has it,
/// one series per condition and status (`True`, `False`), 1 for the status it has.
fn per_object(out: &mut String, external_secrets: &[Arc<ExternalSecret>]) {
    let mut sorted: Vec<&Arc<ExternalSecret>> = external_secrets.iter().collect();
    sorted.sort_by_key(|es| (es.namespace(), es.name_any()));
    family(
        out,
        OBJECT_READY,
        "Ready state per object (--per-object-metrics): 1 = Ready.",
    );
    for es in &sorted {
        let conditions = es.status.as_ref().map(|s| &s.conditions[..]);
        let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
        if let Some(ready) = ready_of(conditions) {
            let labels = [
                ("kind", "ExternalSecret"),
                ("namespace", &namespace),
                ("name", &name),
            ];
            sample(out, OBJECT_READY, &labels, f64::from(u8::from(ready)));
        }
    }
    family(
        out,
        CONDITION,
        "Status of each ExternalSecret condition (--per-object-metrics): 1 for the status it has.",
    );
    for es in &sorted {
        let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
        for condition in es.status.iter().flat_map(|s| &s.conditions) {
            for status in ["True", "False"] {
                let labels = [
                    ("namespace", namespace.as_str()),
                    ("name", &name),
                    ("condition", &condition.type_),
                    ("status", status),
                ];
                let value = f64::from(u8::from(condition.status == status));
                sample(out, CONDITION, &labels, value);
            }
        }
    }
}

/// `Some(true)` when Ready is True, `Some(false)` when False, `None` when unknown or unset.
fn ready_of(conditions: Option<&[Condition]>) -> Option<bool> {
    match conditions::find_ready(conditions?)?.status.as_str() {
        "True" => Some(true),
        "False" => Some(false),
        _ => None,
    }
}

fn count(
    kind: &'static str,
    states: impl Iterator<Item = Option<bool>>,
) -> (&'static str, [usize; 3]) {
    let mut counts = [0; 3];
    for state in states {
        counts[match state {
            Some(true) => 0,
            Some(false) => 1,
            None => 2,
        }] += 1;
    }
    (kind, counts)
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = write!(out, "{name}{{");
    for (i, (label, value)) in labels.iter().enumerate() {
        let separator = if i == 0 { "" } else { "," };
        let _ = write!(out, "{separator}{label}=\"{}\"", escape(value));
    }
    let _ = writeln!(out, "}} {value}");
}

/// A label value as the text format requires: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_escapes_its_label_values() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\nw"), ("b", "")], 1.0);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 1\n");
    }

    #[test]
    fn nothing_is_exported_before_the_caches_are_set() {
        assert_eq!(CacheMetrics::default().render(), "");
    }

    fn object<K: serde::de::DeserializeOwned>(
        kind: &str,
        name: &str,
        extra: serde_json::Value,
    ) -> K {
        let mut value = serde_json::json!({
            "apiVersion": "kuvert.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"provider": {"fake": {"data": []}}},
        });
        for (key, field) in extra.as_object().unwrap() {
            value[key] = field.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    fn ready(status: &str) -> serde_json::Value {
        serde_json::json!({"conditions": [{
            "type": "Ready", "status": status, "reason": "R", "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]})
    }

    #[test]
    fn every_kind_is_counted_and_each_served_store_and_external_secret_has_its_series() {
        use kube::runtime::{reflector, watcher::Event};
        use kuvert_core::api::SecretStore;
        let (external_secrets, mut es_writer) = reflector::store::<ExternalSecret>();
        let spec = serde_json::json!({"secretStoreRef": {"name": "demo"}});
        for (name, status) in [("ok", Some("True")), ("bad", Some("False")), ("new", None)] {
            let mut extra = serde_json::json!({"spec": spec});
            if let Some(status) = status {
                extra["status"] = ready(status);
                // Two workloads run their Secret's current data, one does not yet.
                let up_to_date = status == "True";
                extra["status"]["workloads"] = serde_json::json!([
                    {"kind": "Deployment", "name": "a", "upToDate": true},
                    {"kind": "DaemonSet", "name": "b", "upToDate": up_to_date},
                ]);
            }
            es_writer.apply_watcher_event(&Event::Apply(object("ExternalSecret", name, extra)));
        }
        let (stores, mut store_writer) = reflector::store::<SecretStore>();
        let classed = serde_json::json!({"provider": {"fake": {"data": []}}, "controller": "blue"});
        for (name, extra) in [
            ("demo", serde_json::json!({"status": ready("True")})),
            ("down", serde_json::json!({"status": ready("False")})),
            (
                "theirs",
                serde_json::json!({"spec": classed, "status": ready("False")}),
            ),
        ] {
            store_writer.apply_watcher_event(&Event::Apply(object("SecretStore", name, extra)));
        }
        let (push_secrets, mut ps_writer) = reflector::store::<PushSecret>();
        let ps_spec =
            serde_json::json!({"secretStoreRefs": [], "selector": {"secret": {"name": "s"}}});
        for (name, status) in [("pushed", "True"), ("conflict", "False")] {
            let extra = serde_json::json!({"spec": ps_spec, "status": ready(status)});
            ps_writer.apply_watcher_event(&Event::Apply(object("PushSecret", name, extra)));
        }
        let metrics = CacheMetrics::default();
        metrics.set_push_secrets(push_secrets);
        let settings = Settings {
            per_object_metrics: true,
            ..Settings::default()
        };
        let caches = StoreCaches {
            stores,
            cluster_stores: None,
        };
        metrics.set(external_secrets, caches, None, settings);
        assert_eq!(
            metrics.render(),
            "# HELP kuvert_objects Objects by kind and Ready state, from the caches.
# TYPE kuvert_objects gauge
kuvert_objects{kind=\"ExternalSecret\",ready=\"True\"} 1
kuvert_objects{kind=\"ExternalSecret\",ready=\"False\"} 1
kuvert_objects{kind=\"ExternalSecret\",ready=\"Unknown\"} 1
kuvert_objects{kind=\"SecretStore\",ready=\"True\"} 1
kuvert_objects{kind=\"SecretStore\",ready=\"False\"} 1
kuvert_objects{kind=\"SecretStore\",ready=\"Unknown\"} 0
kuvert_objects{kind=\"PushSecret\",ready=\"True\"} 1
kuvert_objects{kind=\"PushSecret\",ready=\"False\"} 1
kuvert_objects{kind=\"PushSecret\",ready=\"Unknown\"} 0
# HELP kuvert_store_ready 1 while a SecretStore or ClusterSecretStore this instance serves is Ready, else 0.
# TYPE kuvert_store_ready gauge
kuvert_store_ready{kind=\"SecretStore\",namespace=\"ns\",name=\"demo\"} 1
kuvert_store_ready{kind=\"SecretStore\",namespace=\"ns\",name=\"down\"} 0
# HELP kuvert_workloads Workloads following Secrets kuvert manages, by whether they run the current data.
# TYPE kuvert_workloads gauge
kuvert_workloads{up_to_date=\"true\"} 3
kuvert_workloads{up_to_date=\"false\"} 1
# HELP kuvert_object_ready Ready state per object (--per-object-metrics): 1 = Ready.
# TYPE kuvert_object_ready gauge
kuvert_object_ready{kind=\"ExternalSecret\",namespace=\"ns\",name=\"bad\"} 0
kuvert_object_ready{kind=\"ExternalSecret\",namespace=\"ns\",name=\"ok\"} 1
# HELP kuvert_externalsecret_status_condition Status of each ExternalSecret condition (--per-object-metrics): 1 for the status it has.
# TYPE kuvert_externalsecret_status_condition gauge
kuvert_externalsecret_status_condition{namespace=\"ns\",name=\"bad\",condition=\"Ready\",status=\"True\"} 0
kuvert_externalsecret_status_condition{namespace=\"ns\",name=\"bad\",condition=\"Ready\",status=\"False\"} 1
kuvert_externalsecret_status_condition{namespace=\"ns\",name=\"ok\",condition=\"Ready\",status=\"True\"} 1
kuvert_externalsecret_status_condition{namespace=\"ns\",name=\"ok\",condition=\"Ready\",status=\"False\"} 0
"
        );
    }
}
