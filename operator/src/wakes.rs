//! Follows the objects stores and ExternalSecrets read (Secrets, ConfigMaps, ServiceAccounts;
//! metadata only, nothing cached) and wakes exactly their users through the
//! [`ReferenceIndex`](crate::references::ReferenceIndex): a rotated credential reaches the
//! store and its ExternalSecrets in about a second instead of at their next retry.

use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ClusterSecretStore, ExternalSecret, SecretStore, SecretStoreKind};

use crate::context::Context;
use crate::references::{RefKind, Reference, Woken};

/// Where wakes go: the controllers' `reconcile_on` streams.
pub struct Triggers {
    /// The ExternalSecret controller.
    pub external_secrets: UnboundedSender<ObjectRef<ExternalSecret>>,
    /// The SecretStore controller.
    pub stores: UnboundedSender<ObjectRef<SecretStore>>,
    /// The ClusterSecretStore controller, where one runs.
    pub cluster_stores: Option<UnboundedSender<ObjectRef<ClusterSecretStore>>>,
}

/// Follows Secrets, ConfigMaps and ServiceAccounts (in `namespace`, or all) until the process
/// ends, waking the users of each one that changed.
pub async fn follow(ctx: Arc<Context>, namespace: Option<String>, triggers: Triggers) {
    let ns = namespace.as_deref();
    let mut changes = futures::stream::select_all([
        changes::<Secret>(&ctx.client, ns, RefKind::Secret),
        changes::<ConfigMap>(&ctx.client, ns, RefKind::ConfigMap),
        changes::<ServiceAccount>(&ctx.client, ns, RefKind::ServiceAccount),
    ]);
    while let Some((reference, version)) = changes.next().await {
        let woken = ctx.references.observed(&reference, version.as_deref());
        wake(&ctx, &triggers, &reference, woken);
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
    watcher(api, watcher::Config::default().any_semantic())
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
fn wake(ctx: &Context, triggers: &Triggers, reference: &Reference, woken: Woken) {
    let Woken {
        external_secrets,
        stores,
    } = woken;
    for es in external_secrets {
        tracing::debug!(namespace = ?es.namespace, name = %es.name, ?reference, "an object the ExternalSecret read changed");
        let _ = triggers.external_secrets.unbounded_send(es);
    }
    for store in stores {
        tracing::info!(store = %store.display(), kind = ?reference.kind, namespace = %reference.namespace, name = %reference.name, "an object the store's login read changed; logging in again");
        ctx.clients.invalidate(&store);
        match store.kind {
            SecretStoreKind::SecretStore => {
                let _ = triggers
                    .stores
                    .unbounded_send(ObjectRef::new(&store.name).within(&store.namespace));
            }
            SecretStoreKind::ClusterSecretStore => {
                if let Some(cluster_stores) = &triggers.cluster_stores {
                    let _ = cluster_stores.unbounded_send(ObjectRef::new(&store.name));
                }
            }
        }
        for es in ctx.index.users(&store) {
            let _ = triggers.external_secrets.unbounded_send(es);
        }
    }
}
