//! Follows the objects stores and ExternalSecrets read (Secrets, ConfigMaps, ServiceAccounts;
//! metadata only, nothing cached) and wakes exactly their users through the
//! [`ReferenceIndex`](crate::references::ReferenceIndex): a rotated credential reaches the
//! store and its ExternalSecrets in about a second instead of at their next retry. Also the
//! wake of a store whose ExternalSecrets found it failing, so its status stays true.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{
    ClusterSecretStore, ExternalSecret, PushSecret, SecretStore, SecretStoreKind,
};
use kuvert_core::store_key::StoreKey;

use crate::context::Context;
use crate::references::{RefKind, Reference, Woken};

/// How often failures seen by its ExternalSecrets may re-validate one store: with a thousand
/// ExternalSecrets failing at once, the store is checked once, not a thousand times.
const STORE_CHECK_SPACING: Duration = Duration::from_secs(10);

/// Wakes for the controllers, as `reconcile_on` streams: from changed referenced objects (see
/// [`follow`]) and from ExternalSecrets that saw their store fail.
pub struct Wakes {
    external_secrets: UnboundedSender<ObjectRef<ExternalSecret>>,
    stores: UnboundedSender<ObjectRef<SecretStore>>,
    cluster_stores: UnboundedSender<ObjectRef<ClusterSecretStore>>,
    push_secrets: UnboundedSender<ObjectRef<PushSecret>>,
    receivers: Mutex<Option<Receivers>>,
    store_checks: Mutex<HashMap<StoreKey, Instant>>,
}

/// The controllers' ends of [`Wakes`], taken once by `kuvert run`.
pub struct Receivers {
    /// For the ExternalSecret controller.
    pub external_secrets: UnboundedReceiver<ObjectRef<ExternalSecret>>,
    /// For the SecretStore controller.
    pub stores: UnboundedReceiver<ObjectRef<SecretStore>>,
    /// For the ClusterSecretStore controller (dropped where none runs: wakes then go nowhere).
    pub cluster_stores: UnboundedReceiver<ObjectRef<ClusterSecretStore>>,
    /// For the PushSecret controller (a changed source Secret).
    pub push_secrets: UnboundedReceiver<ObjectRef<PushSecret>>,
}

impl Default for Wakes {
    fn default() -> Self {
        let (external_secrets, es_rx) = unbounded();
        let (stores, stores_rx) = unbounded();
        let (cluster_stores, cluster_rx) = unbounded();
        let (push_secrets, push_rx) = unbounded();
        Wakes {
            external_secrets,
            stores,
            cluster_stores,
            push_secrets,
            receivers: Mutex::new(Some(Receivers {
                external_secrets: es_rx,
                stores: stores_rx,
                cluster_stores: cluster_rx,
                push_secrets: push_rx,
            })),
            store_checks: Mutex::new(HashMap::new()),
        }
    }
}

impl Wakes {
    /// The receiving ends; `None` after the first call.
    pub fn take_receivers(&self) -> Option<Receivers> {
        self.receivers.lock().expect("wakes lock").take()
    }

    /// Re-queues an ExternalSecret.
    pub fn external_secret(&self, es: ObjectRef<ExternalSecret>) {
        let _ = self.external_secrets.unbounded_send(es);
    }

    /// Re-validates a store.
    pub fn store(&self, store: &StoreKey) {
        // A send fails only once the controller is gone (shutdown, or no ClusterSecretStore
        // controller runs): nothing is left to wake.
        let _ = match store.kind {
            SecretStoreKind::SecretStore => self
                .stores
                .unbounded_send(ObjectRef::new(&store.name).within(&store.namespace))
                .is_ok(),
            SecretStoreKind::ClusterSecretStore => self
                .cluster_stores
                .unbounded_send(ObjectRef::new(&store.name))
                .is_ok(),
        };
    }

    /// An ExternalSecret found `store` unreachable: re-validate the
    /// store so that its status says so, at most once per [`STORE_CHECK_SPACING`]. Returns
    /// whether a check was asked for.
    pub fn store_failing(&self, store: &StoreKey, now: Instant) -> bool {
        let mut checks = self.store_checks.lock().expect("wakes lock");
        checks.retain(|_, at| now.duration_since(*at) < STORE_CHECK_SPACING);
        if checks.contains_key(store) {
            return false;
        }
        checks.insert(store.clone(), now);
        drop(checks);
        self.store(store);
        true
    }
}

/// Follows Secrets, ConfigMaps and ServiceAccounts (in `namespace`, or all) until the process
/// ends, waking the users of each one that changed.
pub async fn follow(ctx: Arc<Context>, namespace: Option<String>) {
    let ns = namespace.as_deref();
    let mut changes = futures::stream::select_all([
        changes::<Secret>(&ctx.client, ns, RefKind::Secret),
        changes::<ConfigMap>(&ctx.client, ns, RefKind::ConfigMap),
        changes::<ServiceAccount>(&ctx.client, ns, RefKind::ServiceAccount),
    ]);
    while let Some((reference, version)) = changes.next().await {
        let woken = ctx.references.observed(&reference, version.as_deref());
        wake(&ctx, &reference, woken);
    }
}

/// Each object of kind `K` as watched: its reference and version (`None`: deleted).
fn changes<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    kind: RefKind,
) -> BoxStream<'static, (Reference, Option<String>)>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<PartialObjectMeta<K>> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let reference = move |o: &PartialObjectMeta<K>| {
        Reference::new(kind, &o.namespace().unwrap_or_default(), &o.name_any())
    };
    // Paginated lists (500 at a time), not `any_semantic`: an API server answers a list at
    // resourceVersion 0 from its cache in one response whatever the limit, and these watches
    // cover every Secret, ConfigMap and ServiceAccount of the cluster. (At the benchmark's
    // 30,000 unrelated Secrets this did not change kuvert's peak memory: bench/README.md, run I.)
    watcher(api, watcher::Config::default().page_size(500))
        .default_backoff()
        .map_ok(move |event| match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                Some((reference(&o), o.resource_version()))
            }
            watcher::Event::Delete(o) => Some((reference(&o), None)),
            watcher::Event::Init | watcher::Event::InitDone => None,
        })
        .filter_map(move |event| async move {
            match event {
                Ok(change) => change,
                Err(error) => {
                    tracing::warn!(?kind, %error, "watching referenced objects failed; retrying");
                    None
                }
            }
        })
        .boxed()
}

/// Sends the wakes: a store whose login read the object logs in again (its clients are
/// dropped), is re-validated, and its ExternalSecrets are re-queued.
fn wake(ctx: &Context, reference: &Reference, woken: Woken) {
    let Woken {
        external_secrets,
        stores,
        push_secrets,
    } = woken;
    for ps in push_secrets {
        tracing::debug!(namespace = ?ps.namespace, name = %ps.name, ?reference, "the PushSecret's source changed");
        let _ = ctx.wakes.push_secrets.unbounded_send(ps);
    }
    for es in external_secrets {
        tracing::debug!(namespace = ?es.namespace, name = %es.name, ?reference, "an object the ExternalSecret read changed");
        ctx.wakes.external_secret(es);
    }
    for store in stores {
        tracing::info!(store = %store.display(), kind = ?reference.kind, namespace = %reference.namespace, name = %reference.name, "an object the store's login read changed; logging in again");
        ctx.clients.credentials_changed(&store);
        ctx.wakes.store(&store);
        for es in ctx.index.users(&store) {
            ctx.wakes.external_secret(es);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_seen_by_many_external_secrets_check_their_store_once_per_spacing() {
        let wakes = Wakes::default();
        let mut receivers = wakes.take_receivers().expect("first take");
        assert!(wakes.take_receivers().is_none());
        let store = StoreKey::new(SecretStoreKind::SecretStore, "ns", "vault");
        let other = StoreKey::new(SecretStoreKind::ClusterSecretStore, "", "shared");
        let t0 = Instant::now();
        assert!(wakes.store_failing(&store, t0));
        assert!(!wakes.store_failing(&store, t0 + Duration::from_secs(9)));
        assert!(wakes.store_failing(&other, t0 + Duration::from_secs(9)));
        assert!(wakes.store_failing(&store, t0 + Duration::from_secs(10)));
        let mut sent = Vec::new();
        while let Ok(r) = receivers.stores.try_recv() {
            sent.push(r);
        }
        assert_eq!(sent, vec![ObjectRef::new("vault").within("ns"); 2]);
        assert_eq!(
            receivers.cluster_stores.try_recv().unwrap(),
            ObjectRef::new("shared")
        );
    }
}
