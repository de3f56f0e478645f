//! The ExternalSecret controller: decide → fetch and build (the core engine) → apply → status.
//!
//! - [`decide`]: whether a sync is due (refresh policy, force-sync, spec change, drift) and how
//!   fresh its remote values must be; pure.
//! - [`stores`]: resolving store references to logged-in, coalescing clients.
//! - [`generated`]: values of `sourceRef.generatorRef` entries, kept stable between syncs;
//!   [`lifecycle`]: their state around each reconcile and their leases (renewed by the rules
//!   of [`leases`], revoked on replacement and deletion).
//! - the engine (`kuvert_core::engine::sync`): every remote read and the desired Secret.
//! - [`apply`]: writing the Secret, never one kuvert does not own.
//! - [`report`]: the status and, on transitions only, an Event.

pub mod apply;
pub mod decide;
pub mod generated;
pub mod leases;
pub mod lifecycle;
pub mod report;
pub mod stores;
pub mod written;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kuvert_core::api::{ClusterSecretStore, ExternalSecret, MANAGED_LABEL, SecretStore};
use kuvert_core::engine::{self, SyncError};

use crate::context::Context;
use crate::metrics;
use decide::{Decision, Observed, decide, target_state};
use stores::{Resolver, StoreCaches, StoreKey, stores_of};

/// Metric label of this kind.
const KIND: &str = "ExternalSecret";

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
    let es_ref = ObjectRef::from_obj(es.as_ref());
    ctx.index.record(es_ref.clone(), stores_of(&es));
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
    ctx.index
        .record_target(es_ref.clone(), &namespace, &target_name);
    let existing = secrets
        .get_opt(&target_name)
        .await
        .map_err(kube_error(format!(
            "reading Secret {namespace}/{target_name}"
        )))?;
    let now = (ctx.clock)();
    let observed = Observed {
        target: target_state(&es, existing.as_ref()),
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
    let started = Instant::now();
    let fields = generated::generator_fields(&es);
    let generators = match &decision {
        Ok(Decision::Sync { why, .. }) => {
            let mut state = prepared.kept.clone();
            state.retain_fields(&fields);
            let regenerate =
                generated::Regenerate::for_sync(why, std::mem::take(&mut prepared.regenerate));
            Some(generated::ClusterGenerators::new(ctx, state, regenerate))
        }
        _ => None,
    };
    let result = match decision {
        Ok(Decision::Wait(Some(delay))) => {
            let delay = prepared.lease_wait.map_or(delay, |l| l.min(delay));
            return Ok(Action::requeue(delay));
        }
        Ok(Decision::Wait(None)) => {
            return Ok(prepared
                .lease_wait
                .map_or_else(Action::await_change, Action::requeue));
        }
        Ok(Decision::Sync { max_age, why }) => {
            tracing::debug!(%namespace, %name, why, "syncing");
            let resolver = Resolver {
                ctx,
                caches: &state.caches,
                max_age,
            };
            let generators = generators.as_ref().expect("a sync has its generators");
            engine::sync(
                &es,
                &resolver,
                generators,
                &ctx.kube,
                existing.as_ref(),
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            if let Some(generators) = &generators {
                generators.revoke_fresh().await;
            }
            metrics::sync(KIND, started.elapsed(), Some(error.reason()));
            invalidate_on_auth_failure(&state, &es, &error);
            report::failed(ctx, &es, &error, now).await?;
            return Err(Error::Sync(error));
        }
    };
    let mut outcome = outcome;
    let held = match generators {
        Some(generators) => {
            lifecycle::save_before_target(ctx, &es, &mut prepared, generators).await?
        }
        None => prepared.kept.clone(),
    };
    outcome.status.leases = held.status_leases(ctx.settings.lease_renew_fraction);
    let written = apply::write(&secrets, &outcome, existing.as_ref()).await?;
    metrics::sync(KIND, started.elapsed(), None);
    report::synced(ctx, &es, outcome.status, written.as_ref()).await?;
    // Replaced leases go only now that the Secret holding their successors is written.
    let lease_wait = lifecycle::after_target(ctx, &es, prepared.companion.as_ref(), held).await?;
    ctx.index.mark_synced(es_ref, generations);
    ctx.backoff.reset(&format!("{namespace}/{name}"));
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
            .get(&ObjectRef::new(&key.name))
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

/// Transient failures back off with jitter; anything only a change can fix waits for one.
pub fn error_policy(es: Arc<ExternalSecret>, error: &Error, state: Arc<State>) -> Action {
    tracing::warn!(
        namespace = es.namespace().unwrap_or_default(),
        name = es.name_any(),
        reason = error.reason(),
        error = %error,
        "sync failed"
    );
    if error.is_transient() {
        let key = format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any());
        Action::requeue(state.ctx.backoff.next(&key))
    } else {
        // Leases held still need renewing while the spec waits for a fix.
        leases::next_in_status(&es, (state.ctx.clock)())
            .map_or_else(Action::await_change, Action::requeue)
    }
}

/// Builds the controller: ExternalSecrets, the Secrets kuvert manages (label-selected), and
/// store changes mapped to exactly the ExternalSecrets using them.
pub fn controller(
    client: kube::Client,
    namespace: Option<&str>,
    index: Arc<stores::StoreIndex>,
) -> Controller<ExternalSecret> {
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
    Controller::new(es_api, watcher::Config::default().any_semantic())
        // Metadata only: enough to map a managed Secret to its ExternalSecret.
        .watches(secret_api, managed, move |s: PartialObjectMeta<Secret>| {
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
        )
        .watches(
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
        let mut live = std::collections::HashSet::new();
        for es in cache.state() {
            live.insert(ObjectRef::from_obj(es.as_ref()));
            let condition = es
                .status
                .as_ref()
                .and_then(|s| kuvert_core::conditions::find_ready(&s.conditions).cloned());
            match condition.as_ref().map(|c| c.status.as_str()) {
                Some("True") => ready += 1,
                Some("False") => not_ready += 1,
                _ => unknown += 1,
            }
        }
        metrics::objects(KIND, ready, not_ready, unknown);
        index.retain(&live);
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}
