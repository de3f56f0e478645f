//! The ExternalSecret controller: decide → fetch and build (the core engine) → apply → status.
//!
//! - [`decide`]: whether a sync is due (refresh policy, force-sync, spec change, drift) and how
//!   fresh its remote values must be; pure.
//! - [`stores`]: resolving store references to logged-in, coalescing clients.
//! - [`generated`]: values of `sourceRef.generatorRef` entries, kept stable between syncs;
//!   [`lifecycle`]: their state around each reconcile and their leases (renewed by the rules
//!   of [`leases`], revoked on replacement and deletion).
//! - the engine (`kuvert_core::engine::sync`): every remote read and the desired Secret.
//! - [`target`]: what the cache of managed Secrets proves of the target without reading it.
//! - [`priority`]: refreshes step back when they would take the last free reconciles.
//! - [`apply`]: writing the Secret, never one kuvert does not own.
//! - [`report`]: the status and, on transitions only, an Event.

pub mod apply;
pub mod decide;
pub mod generated;
pub mod leases;
pub mod lifecycle;
pub mod priority;
pub mod report;
pub mod stores;
pub mod target;
pub mod written;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kuvert_core::api::{ClusterSecretStore, ExternalSecret, MANAGED_LABEL, SecretStore};
use kuvert_core::engine::{self, SyncError};

use crate::context::Context;
use crate::metrics;
use decide::{Decision, Observed, decide};
use stores::{Resolver, StoreCaches, StoreKey, stores_of};
use target::{Known, TargetCache};

/// Metric label of this kind.
const KIND: &str = "ExternalSecret";

/// kubectl's copy of the manifest it last applied: a second spec on every object it applies.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why an ExternalSecret reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sync failed; the status says why and the Secret was left as it was.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Generated values or their leases could not be kept, renewed or revoked.
    #[error(transparent)]
    Generated(#[from] kuvert_core::generator::GeneratorError),
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Stable category for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Sync(e) => e.reason(),
            Error::Generated(e) => e.reason(),
            Error::Kube { .. } => "KubernetesApiError",
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            Error::Sync(e) => e.is_transient(),
            Error::Generated(e) => e.is_transient(),
            Error::Kube { .. } => true,
        }
    }
}

/// What the ExternalSecret controller shares beyond [`Context`].
pub struct State {
    /// The operator-wide dependencies.
    pub ctx: Arc<Context>,
    /// Store objects, from the store controllers' caches.
    pub caches: StoreCaches,
    /// The managed Secrets' metadata, from this controller's watch.
    pub targets: TargetCache,
    /// The reconciles refreshes may take.
    pub background: priority::BackgroundSlots,
}

fn kube_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// One reconcile of an ExternalSecret.
pub async fn reconcile(es: Arc<ExternalSecret>, state: Arc<State>) -> Result<Action, Error> {
    let _queued = metrics::InQueue::enter(KIND);
    let ctx = &state.ctx;
    let es = match ctx.statuses.latest(&es) {
        Some(newer) => Arc::new(newer),
        None => es,
    };
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    let es_ref = ObjectRef::new(&name).within(&namespace);
    ctx.index.record(&es_ref, stores_of(&es));
    let generations = state.caches.generations(&es);
    if !serves(&state, &es, &namespace) {
        return Ok(Action::await_change());
    }
    if es.metadata.deletion_timestamp.is_some() {
        lifecycle::finalize(ctx, &es).await?;
        return Ok(Action::await_change());
    }
    let mut prepared = lifecycle::prepare(ctx, &es).await?;

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let target_name = engine::target::secret_name(&es);
    ctx.index.record_target(&es_ref, &namespace, &target_name);
    let mut known = match state.targets.known(&es, &namespace, &target_name) {
        Some(known) => known,
        None => Known::Read(read_target(&secrets, &target_name).await?),
    };
    let now = (ctx.clock)();
    let observed = Observed {
        target: known.state(&es),
        store_changed: ctx.index.stores_changed(&es_ref, &generations),
    };
    let decision = match decide(&es, observed, now, ctx.settings.coalesce_window) {
        // Credentials whose lease cannot be renewed (further) are replaced before they expire.
        Ok(Decision::Wait(_)) if !prepared.regenerate.is_empty() => Ok(Decision::Sync {
            max_age: ctx.settings.coalesce_window,
            why: "LeaseExpiring",
        }),
        other => other,
    };
    let (max_age, why) = match decision {
        Ok(Decision::Wait(Some(delay))) => {
            let delay = prepared.lease_wait.map_or(delay, |l| l.min(delay));
            return Ok(Action::requeue(delay));
        }
        Ok(Decision::Wait(None)) => {
            return Ok(prepared
                .lease_wait
                .map_or_else(Action::await_change, Action::requeue));
        }
        Ok(Decision::Sync { max_age, why }) => (max_age, why),
        Err(error) => return Err(failed(&state, &es, error, Instant::now(), now).await),
    };
    let _slot = if priority::is_background(why) {
        let Some(slot) = state.background.try_take() else {
            let attempt = now.as_second().unsigned_abs();
            let key = format!("{namespace}/{name}");
            return Ok(Action::requeue(priority::step_back(&key, attempt)));
        };
        Some(slot)
    } else {
        None
    };
    tracing::debug!(%namespace, %name, why, "syncing");
    let started = Instant::now();
    let generators = {
        let mut kept = prepared.kept.clone();
        kept.retain_fields(&generated::generator_fields(&es));
        let regenerate =
            generated::Regenerate::for_sync(why, std::mem::take(&mut prepared.regenerate));
        generated::ClusterGenerators::new(ctx, kept, regenerate)
    };
    let resolver = Resolver {
        ctx,
        caches: &state.caches,
        max_age,
    };
    let fetched = match fetch(&es, &resolver, &generators, &ctx.kube).await {
        Ok(fetched) => fetched,
        Err(error) => return Err(sync_failed(&state, &es, &generators, error, started, now).await),
    };
    let built = build(&es, &fetched, &mut known, &secrets, &target_name, now).await;
    let mut outcome = match built {
        Ok(outcome) => outcome,
        Err(Error::Sync(error)) => {
            return Err(sync_failed(&state, &es, &generators, error, started, now).await);
        }
        Err(other) => {
            generators.revoke_fresh().await;
            return Err(other);
        }
    };
    let held = lifecycle::save_before_target(ctx, &es, &mut prepared, generators).await?;
    outcome.status.leases = held.status_leases(ctx.settings.lease_renew_fraction);
    let written = match apply::write(&secrets, &outcome, known.resource_version()).await {
        // The target exists after all, though kuvert does not manage it: decide on it as read.
        Err(Error::Kube {
            source: kube::Error::Api(e),
            ..
        }) if e.code == 409 && matches!(known, Known::ProbablyMissing) => {
            known = Known::Read(read_target(&secrets, &target_name).await?);
            let leases = std::mem::take(&mut outcome.status.leases);
            // The generated values are saved already: a failure keeps them for the next sync.
            outcome = match build(&es, &fetched, &mut known, &secrets, &target_name, now).await {
                Ok(outcome) => outcome,
                Err(Error::Sync(error)) => {
                    return Err(failed(&state, &es, error, started, now).await);
                }
                Err(other) => return Err(other),
            };
            outcome.status.leases = leases;
            apply::write(&secrets, &outcome, known.resource_version()).await?
        }
        other => other?,
    };
    metrics::sync(KIND, started.elapsed(), None);
    report::synced(ctx, &es, outcome.status, written).await?;
    // Replaced leases go only now that the Secret holding their successors is written.
    let lease_wait = lifecycle::after_target(ctx, &es, prepared.companion.as_ref(), held).await?;
    ctx.index.mark_synced(&es_ref, &generations);
    let key = format!("{namespace}/{name}");
    ctx.backoff.reset(&key);
    ctx.retry.reset(&key);
    Ok(
        match (
            outcome
                .requeue_after
                .map(|i| decide::spread_interval(&es, i)),
            lease_wait,
        ) {
            (Some(a), Some(b)) => Action::requeue(a.min(b)),
            (Some(d), None) | (None, Some(d)) => Action::requeue(d),
            (None, None) => Action::await_change(),
        },
    )
}

/// Reads the target Secret from the API server.
async fn read_target(secrets: &Api<Secret>, name: &str) -> Result<Option<Box<Secret>>, Error> {
    secrets
        .get_opt(name)
        .await
        .map(|s| s.map(Box::new))
        .map_err(kube_error(format!("reading Secret {name}")))
}

/// Checks the spec and reads every remote value (the engine's fetch).
async fn fetch(
    es: &ExternalSecret,
    resolver: &Resolver<'_>,
    generators: &generated::ClusterGenerators<'_>,
    kube: &dyn kuvert_core::provider::KubeAccess,
) -> Result<engine::fetch::Fetched, SyncError> {
    engine::status::check_spec(es)?;
    engine::fetch::fetch(es, resolver, generators, kube).await
}

/// Builds the desired Secret against the target as known. A Secret known only from the cache
/// is read when the cache cannot prove the sync changes nothing, and `known` then holds it.
async fn build(
    es: &ExternalSecret,
    fetched: &engine::fetch::Fetched,
    known: &mut Known,
    secrets: &Api<Secret>,
    target_name: &str,
    now: jiff::Timestamp,
) -> Result<engine::SyncOutcome, Error> {
    if let Known::AsWritten(cached) = known {
        let mut fresh = engine::build(es, fetched, None, now)?;
        let unchanged = fresh.action == engine::target::TargetAction::Create
            && fresh
                .secret
                .as_ref()
                .is_some_and(|s| engine::target::unchanged_since_written(es, s, cached.digest));
        if unchanged {
            fresh.action = engine::target::TargetAction::Unchanged;
            return Ok(fresh);
        }
        *known = Known::Read(read_target(secrets, target_name).await?);
    }
    let existing = match known {
        Known::Read(secret) => secret.as_deref(),
        Known::AsWritten(_) | Known::ProbablyMissing => None,
    };
    Ok(engine::build(es, fetched, existing, now)?)
}

/// A failed sync before its generated values were saved: they are revoked, then [`failed`].
async fn sync_failed(
    state: &State,
    es: &ExternalSecret,
    generators: &generated::ClusterGenerators<'_>,
    error: SyncError,
    started: Instant,
    now: jiff::Timestamp,
) -> Error {
    generators.revoke_fresh().await;
    failed(state, es, error, started, now).await
}

/// A failed sync: counted, the status and an Event say why, the Secret stays as it was.
async fn failed(
    state: &State,
    es: &ExternalSecret,
    error: SyncError,
    started: Instant,
    now: jiff::Timestamp,
) -> Error {
    metrics::sync(KIND, started.elapsed(), Some(error.reason()));
    invalidate_on_auth_failure(state, es, &error);
    match report::failed(&state.ctx, es, &error, now).await {
        Ok(()) => Error::Sync(error),
        Err(e) => e,
    }
}

/// An ExternalSecret is served by the instance serving the class of its store: its
/// `secretStoreRef`, else the first store an entry's `sourceRef.storeRef` names. One whose
/// store is not known yet is served (the sync then reports the missing store). One reading no
/// store at all (generators only) is served by the instance without a class only: two
/// instances would otherwise both generate its values.
fn serves(state: &State, es: &ExternalSecret, namespace: &str) -> bool {
    let entry_stores = es
        .spec
        .data_from
        .iter()
        .map(|d| d.source_ref.as_ref())
        .chain(es.spec.data.iter().map(|d| d.source_ref.as_ref()))
        .filter_map(|s| s?.store_ref.as_ref());
    let Some(store_ref) = es.spec.secret_store_ref.iter().chain(entry_stores).next() else {
        return state.ctx.settings.serves(None);
    };
    let key = StoreKey::of(namespace, store_ref);
    let class = match key.kind {
        kuvert_core::api::SecretStoreKind::SecretStore => state
            .caches
            .stores
            .get(&ObjectRef::new(&key.name).within(namespace))
            .map(|s| s.spec.controller.clone()),
        kuvert_core::api::SecretStoreKind::ClusterSecretStore => state
            .caches
            .cluster_stores
            .as_ref()
            .and_then(|stores| stores.get(&ObjectRef::new(&key.name)))
            .map(|s| s.spec.store.controller.clone()),
    };
    match class {
        Some(class) => state.ctx.settings.serves(class.as_deref()),
        None => true,
    }
}

/// Credentials refused by a store may have been rotated: the next sync logs in again.
fn invalidate_on_auth_failure(state: &State, es: &ExternalSecret, error: &SyncError) {
    use kuvert_core::provider::ProviderError::{Forbidden, Unauthenticated};
    let provider_error = match error {
        SyncError::Fetch { source, .. } => Some(source),
        SyncError::Store {
            source: engine::StoreError::Provider { source, .. },
            ..
        } => Some(source),
        _ => None,
    };
    if matches!(
        provider_error,
        Some(Unauthenticated { .. } | Forbidden { .. })
    ) {
        for key in stores_of(es) {
            state.ctx.clients.invalidate(&key);
        }
    }
}

/// Transient failures back off with jitter from 1 s; anything only a change can fix is retried
/// too, from 10 s up to 10 minutes, since that change may be outside the object (a rotated
/// credential, a restored policy). Held leases are renewed meanwhile.
pub fn error_policy(es: Arc<ExternalSecret>, error: &Error, state: Arc<State>) -> Action {
    tracing::warn!(
        namespace = es.namespace().unwrap_or_default(),
        name = es.name_any(),
        reason = error.reason(),
        error = %error,
        "sync failed"
    );
    let key = format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any());
    let retry = if error.is_transient() {
        state.ctx.backoff.next(&key)
    } else {
        state.ctx.retry.next(&key)
    };
    let renew = leases::next_in_status(&es, (state.ctx.clock)());
    Action::requeue(renew.map_or(retry, |renew| renew.min(retry)))
}

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
                index_a.users(&StoreKey {
                    kind: kuvert_core::api::SecretStoreKind::SecretStore,
                    namespace: s.namespace().unwrap_or_default(),
                    name: s.name_any(),
                })
            },
        );
    let controller = if cluster_stores {
        controller.watches(
            cluster_store_api,
            watcher::Config::default().any_semantic(),
            move |s: ClusterSecretStore| {
                index_b.users(&StoreKey {
                    kind: kuvert_core::api::SecretStoreKind::ClusterSecretStore,
                    namespace: String::new(),
                    name: s.name_any(),
                })
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
/// and drops deleted ones from the store index.
pub async fn report_objects(
    cache: kube::runtime::reflector::Store<ExternalSecret>,
    index: Arc<stores::StoreIndex>,
) {
    loop {
        let (mut ready, mut not_ready, mut unknown) = (0, 0, 0);
        for es in cache.state() {
            let status = es.status.as_ref();
            let condition = status.and_then(|s| kuvert_core::conditions::find_ready(&s.conditions));
            match condition.map(|c| c.status.as_str()) {
                Some("True") => ready += 1,
                Some("False") => not_ready += 1,
                _ => unknown += 1,
            }
        }
        metrics::objects(KIND, ready, not_ready, unknown);
        index.retain(|es| cache.get(es).is_some());
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
