//! The ExternalSecret controller's wiring: what it watches (ExternalSecrets, the Secrets kuvert
//! manages, the stores), how it runs, and the periodic upkeep of its per-object state.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kuvert_core::api::{
    ClusterSecretStore, ExternalSecret, MANAGED_LABEL, SecretStore, SecretStoreKind,
};
use kuvert_core::store_key::StoreKey;

use super::state::{KIND, State};
use super::stores::{self, StoreCaches};
use super::target::TargetCache;
use super::{error_policy, reconcile};
use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::metrics;
use crate::references::User;

/// kubectl's copy of the manifest it last applied: a second spec on every object it applies.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Builds the controller: ExternalSecrets, the Secrets kuvert manages (label-selected,
/// metadata only, cached for [`target`]), and store changes mapped to exactly the
/// ExternalSecrets using them (ClusterSecretStores only with `cluster_stores`).
pub fn controller(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    cluster_stores: bool,
) -> (Controller<ExternalSecret>, TargetCache) {
    let (client, index) = (ctx.client.clone(), ctx.index.clone());
    let es_api: Api<ExternalSecret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secret_api: Api<PartialObjectMeta<Secret>> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let store_api: Api<SecretStore> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let cluster_store_api: Api<ClusterSecretStore> = Api::all(client);
    let managed = watcher::Config::default()
        .labels(&format!("{MANAGED_LABEL}=true"))
        .any_semantic();
    let (index_a, index_b, index_c) = (index.clone(), index.clone(), index);
    let targets = TargetCache::default();
    let cache = targets.clone();
    // Metadata only: enough to map a managed Secret to its ExternalSecret, and to know it is
    // as kuvert wrote it.
    let managed_secrets = watcher(secret_api, managed)
        .default_backoff()
        .inspect_ok(move |event| cache.apply(event))
        .touched_objects();
    let (ess, es_writer) = reflector::store();
    let external_secrets = watcher(es_api, watcher::Config::default().any_semantic())
        .modify(trim)
        .reflect(es_writer)
        .applied_objects()
        .map_ok(|es| trigger(&es));
    let controller = Controller::for_stream(external_secrets, ess)
        .watches_stream(managed_secrets, move |s: PartialObjectMeta<Secret>| {
            writer_of(&index_c, &s)
        })
        .watches(
            store_api,
            watcher::Config::default().any_semantic(),
            move |s: SecretStore| {
                index_a.users(&StoreKey::new(
                    SecretStoreKind::SecretStore,
                    &s.namespace().unwrap_or_default(),
                    &s.name_any(),
                ))
            },
        );
    let controller = if cluster_stores {
        controller.watches(
            cluster_store_api,
            watcher::Config::default().any_semantic(),
            move |s: ClusterSecretStore| {
                index_b.users(&StoreKey::new(
                    SecretStoreKind::ClusterSecretStore,
                    "",
                    &s.name_any(),
                ))
            },
        )
    } else {
        controller
    };
    (controller, targets)
}

/// What the cache keeps of an ExternalSecret: not what no reconcile reads and real API
/// servers add to every object, managedFields and kubectl's copy of the last applied manifest.
fn trim(es: &mut ExternalSecret) {
    es.metadata.managed_fields = None;
    if let Some(annotations) = es.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// What the controller is triggered with: the object's name alone. The controller keeps a
/// reference to every object it schedules (each waiting for its refresh), made from the
/// trigger; from the cached object that reference also carries its uid and resourceVersion,
/// which nothing reads (the reconcile gets the object from the cache by name).
fn trigger(es: &ExternalSecret) -> ExternalSecret {
    let mut named = ExternalSecret::new(&es.name_any(), Default::default());
    named.metadata.namespace = es.metadata.namespace.clone();
    named
}

/// The ExternalSecret a managed Secret belongs to: its controlling owner, or (for Secrets kuvert
/// writes without an owner reference) the one that last wrote it.
fn writer_of(
    index: &stores::StoreIndex,
    secret: &PartialObjectMeta<Secret>,
) -> Option<ObjectRef<ExternalSecret>> {
    let namespace = secret.namespace().unwrap_or_default();
    let owner = secret.owner_references().iter().find(|o| {
        o.controller == Some(true)
            && o.kind == "ExternalSecret"
            && o.api_version.starts_with("kuvert.io/")
    });
    match owner {
        Some(o) => Some(ObjectRef::new(&o.name).within(&namespace)),
        None => index.writer_of(&namespace, &secret.name_any()),
    }
}

/// Runs the controller until shutdown.
pub async fn run(controller: Controller<ExternalSecret>, state: Arc<State>, concurrency: u16) {
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, state)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Periodically publishes how many ExternalSecrets are Ready, not Ready, or not yet synced,
/// and drops what the process keeps of deleted objects: ExternalSecrets from the store index,
/// deleted objects' failure counts, deleted stores' clients.
pub async fn report_objects(
    cache: kube::runtime::reflector::Store<ExternalSecret>,
    stores: StoreCaches,
    ctx: Arc<Context>,
) {
    loop {
        let (mut ready, mut not_ready, mut unknown) = (0, 0, 0);
        let mut uids = std::collections::HashSet::new();
        for es in cache.state() {
            uids.extend(es.uid());
            let status = es.status.as_ref();
            let condition = status.and_then(|s| kuvert_core::conditions::find_ready(&s.conditions));
            match condition.map(|c| c.status.as_str()) {
                Some("True") => ready += 1,
                Some("False") => not_ready += 1,
                _ => unknown += 1,
            }
        }
        metrics::objects(KIND, ready, not_ready, unknown);
        ctx.index.retain(|es| cache.get(es).is_some());
        ctx.statuses.retain(|uid| uids.contains(uid));
        let live = |key: &ObjectKey| match key.kind.as_str() {
            KIND => cache
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
                .is_some(),
            "SecretStore" | "ClusterSecretStore" => stores.contains(&key.store()),
            _ => true,
        };
        ctx.backoff.retain(live);
        ctx.retry.retain(live);
        ctx.clients.retain(|store| stores.contains(store));
        ctx.references.retain(|user| match user {
            User::ExternalSecret(es) => cache.get(es).is_some(),
            User::Store(store, _) => stores.contains(store),
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_and_the_scheduler_keep_only_what_reconciles_read() {
        let mut es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "kuvert.io/v1alpha1",
            "kind": "ExternalSecret",
            "metadata": {
                "name": "app",
                "annotations": {
                    LAST_APPLIED_ANNOTATION: "{\"spec\":{}}",
                    "kuvert.io/force-sync": "1",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
            },
            "spec": {},
        }))
        .unwrap();
        trim(&mut es);
        assert_eq!(es.metadata.managed_fields, None);
        es.metadata.namespace = Some("ns".to_owned());
        es.metadata.uid = Some("0b4e7c2a".to_owned());
        es.metadata.resource_version = Some("42".to_owned());
        let scheduled = ObjectRef::from_obj(&trigger(&es));
        assert_eq!(scheduled, ObjectRef::new("app").within("ns"));
        assert_eq!(scheduled.extra.uid, None);
        assert_eq!(scheduled.extra.resource_version, None);
        assert_eq!(
            es.metadata.annotations,
            Some([("kuvert.io/force-sync".to_owned(), "1".to_owned())].into())
        );
    }
}
