//! The ExternalSecret controller's wiring: what it watches (ExternalSecrets, the Secrets kuvert
//! manages, the stores), how it runs, and the periodic upkeep of its per-object state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kuvert_core::api::{
    ClusterSecretStore, ExternalSecret, MANAGED_LABEL, SecretStore, SecretStoreKind,
};
use kuvert_core::decide::change_key;
use kuvert_core::store_key::StoreKey;

use super::state::{KIND, State};
use super::stores::{self, StoreCaches};
use super::target::TargetCache;
use super::{error_policy, reconcile};
use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::references::User;

/// kubectl's copy of the manifest it last applied: a second spec on every object it applies.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Builds the controller: ExternalSecrets, the Secrets kuvert manages (label-selected,
/// metadata only, cached for [`target`]), and store changes mapped to exactly the
/// ExternalSecrets using them (ClusterSecretStores only where `caches` has them).
///
/// Reconciles read the store caches and the managed Secrets' cache, so none starts before
/// every one of them has completed its first list: the ExternalSecrets' own watch starts only
/// then, and the controller holds its reconciles until that watch has listed too. Otherwise a
/// restart would find no store (`StoreNotFound`, a Warning, a status write, for every healthy
/// object) and read every target Secret the empty cache cannot vouch for.
pub fn controller(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    caches: &StoreCaches,
) -> (Controller<ExternalSecret>, TargetCache) {
    let cluster_stores = caches.cluster_stores.is_some();
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
    let namespace_api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    let cluster_store_api: Api<ClusterSecretStore> = Api::all(client);
    let managed = watcher::Config::default()
        .labels(&format!("{MANAGED_LABEL}=true"))
        .any_semantic();
    let (index_a, index_b, index_c) = (index.clone(), index.clone(), index);
    // Every trigger marks the objects it queues, for the queue-wait histogram.
    let (queue_es, queue_a, queue_b, queue_c) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx);
    let queued = |ctx: &Context, es: ObjectRef<ExternalSecret>| {
        ctx.queue.queued(&es_key(&es));
        es
    };
    let targets = TargetCache::default();
    let cache = targets.clone();
    // Metadata only: enough to map a managed Secret to its ExternalSecret, and to know it is
    // as kuvert wrote it.
    let managed_secrets = watcher(secret_api, managed)
        .default_backoff()
        .inspect_ok(move |event| cache.apply(event))
        .touched_objects();
    let (ess, es_writer) = reflector::store();
    let listed = {
        let (caches, targets) = (caches.clone(), targets.clone());
        async move {
            caches.wait_until_ready().await;
            targets.wait_until_ready().await;
            tracing::debug!("store and managed Secret caches listed; watching ExternalSecrets");
        }
    };
    let es_watch = watcher(es_api, watcher::Config::default().any_semantic());
    let mut wakes = Wakes::default();
    let external_secrets = futures::stream::once(listed.map(move |()| es_watch))
        .flatten()
        .modify(trim)
        .reflect(es_writer)
        .try_filter_map(move |event| {
            let woken = wakes.wake(event);
            if let Some(es) = &woken {
                queue_es.queue.queued(&ObjectKey::of(es));
            }
            futures::future::ready(Ok(woken))
        });
    let controller = Controller::for_stream(external_secrets, ess)
        .watches_stream(managed_secrets, move |s: PartialObjectMeta<Secret>| {
            writer_of(&index_c, &s).map(|es| queued(&queue_c, es))
        })
        .watches(
            store_api,
            watcher::Config::default().any_semantic(),
            move |s: SecretStore| {
                let key = StoreKey::new(
                    SecretStoreKind::SecretStore,
                    &s.namespace().unwrap_or_default(),
                    &s.name_any(),
                );
                let users = index_a.users(&key);
                users
                    .into_iter()
                    .map(|es| queued(&queue_a, es))
                    .collect::<Vec<_>>()
            },
        );
    let controller = if cluster_stores {
        // A namespace relabelled to match (or no longer match) a ClusterSecretStore's
        // `namespaceSelector` re-admits (or refuses) its waiting ExternalSecrets at once.
        let (index_d, queue_d) = (index_b.clone(), queue_b.clone());
        controller
            .watches_stream(
                watcher(namespace_api, watcher::Config::default().any_semantic())
                    .default_backoff()
                    .touched_objects(),
                move |ns: PartialObjectMeta<Namespace>| {
                    let users = index_d.cluster_store_users_in(&ns.name_any());
                    users
                        .into_iter()
                        .map(|es| queued(&queue_d, es))
                        .collect::<Vec<_>>()
                },
            )
            .watches(
                cluster_store_api,
                watcher::Config::default().any_semantic(),
                move |s: ClusterSecretStore| {
                    let key = StoreKey::new(SecretStoreKind::ClusterSecretStore, "", &s.name_any());
                    let users = index_b.users(&key);
                    users
                        .into_iter()
                        .map(|es| queued(&queue_b, es))
                        .collect::<Vec<_>>()
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

/// Which watch events wake the reconciler: an ExternalSecret new to this process, or changed in
/// what [`change_key`] covers. kuvert's own status writes come back as watch events and wake
/// nothing. Keyed by a hash of namespace and name; a relist drops what it no longer lists.
#[derive(Default)]
struct Wakes {
    seen: HashMap<u64, u64>,
    /// What the relist in progress has listed so far.
    relisted: HashMap<u64, u64>,
}

impl Wakes {
    fn wake(&mut self, event: watcher::Event<ExternalSecret>) -> Option<ExternalSecret> {
        match event {
            watcher::Event::Apply(es) => {
                let key = change_key(&es);
                (self.seen.insert(name_key(&es), key) != Some(key)).then(|| trigger(&es))
            }
            watcher::Event::InitApply(es) => {
                let (name, key) = (name_key(&es), change_key(&es));
                self.relisted.insert(name, key);
                (self.seen.get(&name) != Some(&key)).then(|| trigger(&es))
            }
            watcher::Event::Delete(es) => {
                self.seen.remove(&name_key(&es));
                None
            }
            watcher::Event::Init => {
                self.relisted.clear();
                None
            }
            watcher::Event::InitDone => {
                self.seen = std::mem::take(&mut self.relisted);
                None
            }
        }
    }
}

fn name_key(es: &ExternalSecret) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        es.metadata.namespace.as_deref(),
        es.metadata.name.as_deref(),
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// The per-object key of an ExternalSecret reference.
fn es_key(es: &ObjectRef<ExternalSecret>) -> ObjectKey {
    ObjectKey {
        kind: KIND.to_owned(),
        namespace: es.namespace.clone().unwrap_or_default(),
        name: es.name.clone(),
    }
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

/// Periodically drops what the process keeps of deleted objects: ExternalSecrets from the
/// store index, deleted objects' failure counts and queue times, deleted stores' clients.
pub async fn forget_deleted(
    cache: kube::runtime::reflector::Store<ExternalSecret>,
    stores: StoreCaches,
    ctx: Arc<Context>,
) {
    loop {
        let objects: HashMap<String, Arc<ExternalSecret>> = cache
            .state()
            .into_iter()
            .filter_map(|es| Some((es.uid()?, es)))
            .collect();
        ctx.index.retain(|es| cache.get(es).is_some());
        // A record is dropped once its object is deleted or the cache shows its status.
        ctx.statuses.retain(|uid, recorded| {
            objects
                .get(uid)
                .is_some_and(|es| es.status.as_ref() != Some(recorded))
        });
        drop(objects);
        let live = |key: &ObjectKey| match key.kind.as_str() {
            KIND => cache
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
                .is_some(),
            "SecretStore" | "ClusterSecretStore" => stores.contains(&key.store()),
            _ => true,
        };
        ctx.backoff.retain(live);
        ctx.retry.retain(live);
        let mut queued: Vec<ObjectKey> = cache
            .state()
            .iter()
            .map(|es| ObjectKey::of(&**es))
            .collect();
        queued.extend(stores.stores.state().iter().map(|s| ObjectKey::of(&**s)));
        if let Some(cluster_stores) = &stores.cluster_stores {
            queued.extend(cluster_stores.state().iter().map(|s| ObjectKey::of(&**s)));
        }
        ctx.queue.retain(&queued);
        ctx.clients.retain(|store| stores.contains(store));
        ctx.references.retain(|user| match user {
            User::ExternalSecret(es) => cache.get(es).is_some(),
            User::Store(store, _) => stores.contains(store),
            // The PushSecret controller forgets its own (see `pushsecret`).
            User::PushSecret(_) => true,
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ExternalSecret {
        let mut es = ExternalSecret::new(name, Default::default());
        es.metadata.namespace = Some("ns".to_owned());
        es.metadata.uid = Some(format!("uid-{name}"));
        es
    }

    #[test]
    fn kuverts_own_status_writes_wake_no_reconcile() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let mut wakes = Wakes::default();
        let woken = |es: Option<ExternalSecret>| es.map(|es| es.name_any());
        let app = named("app");
        assert_eq!(woken(wakes.wake(Apply(app.clone()))), Some("app".into()));

        let mut failed = app.clone();
        failed.status = Some(Default::default());
        assert_eq!(woken(wakes.wake(Apply(failed.clone()))), None);

        let mut forced = failed.clone();
        forced.metadata.annotations =
            Some([("kuvert.io/force-sync".to_owned(), "1".to_owned())].into());
        assert_eq!(woken(wakes.wake(Apply(forced.clone()))), Some("app".into()));

        // A relist wakes what changed meanwhile and forgets what it no longer lists.
        let other = named("other");
        assert_eq!(
            woken(wakes.wake(Apply(other.clone()))),
            Some("other".into())
        );
        assert_eq!(woken(wakes.wake(Init)), None);
        assert_eq!(woken(wakes.wake(InitApply(forced.clone()))), None);
        assert_eq!(woken(wakes.wake(InitDone)), None);
        assert_eq!(woken(wakes.wake(Apply(other))), Some("other".into()));

        assert_eq!(woken(wakes.wake(Delete(forced.clone()))), None);
        assert_eq!(woken(wakes.wake(Apply(forced))), Some("app".into()));
    }

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
