//! The ExternalSecret controller. One reconcile is its pipeline, one step per file:
//!
//! 1. [`observe`] — every read the decision needs (the target Secret, the generated state and
//!    its leases, store changes); nothing is written.
//! 2. decide — pure, in core ([`kuvert_core::decide`]): sync now (and why, and how fresh its
//!    values must be), or wait.
//! 3. [`sync`] — the finalizer before any lease exists, due leases renewed, then the engine's
//!    fetch and build: the desired Secret and status.
//! 4. [`apply`] — the companion Secret (generated values and leases), the target Secret,
//!    replaced leases revoked.
//! 5. [`report`] — the status, an Event on transitions, the metrics, when to look again.
//!
//! Any step's failure takes one path ([`failed`]): counted, the status and an Event say why
//! when the sync itself failed, and [`error_policy`] retries with backoff.
//!
//! Around it: [`stores`] resolves store references to logged-in, coalescing clients;
//! [`calls`] and [`companion`] are the generators' I/O (calls to generators, and the Secret
//! keeping their state); [`target`] is what the cache of managed Secrets proves of a target;
//! [`priority`] lets refreshes step back when they would take the last free reconciles;
//! [`controller`] wires the watches; [`state`] is what every step shares.

pub mod apply;
pub mod calls;
pub mod companion;
pub mod controller;
pub mod observe;
pub mod priority;
pub mod report;
pub mod state;
pub mod stores;
pub mod sync;
pub mod target;
pub mod written;

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kuvert_core::api::ExternalSecret;
use kuvert_core::decide::Decision;
use kuvert_core::engine::{self, SyncError};
use kuvert_core::store_key::{StoreKey, store_refs, stores_of};

pub use state::{KubeCall, State};

use crate::backoff::ObjectKey;
use crate::metrics;
use apply::ApplyError;
use observe::ObserveError;
use state::KIND;
use sync::SyncFailure;

/// Why an ExternalSecret reconcile failed: one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading what the decision needs failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The object cannot be decided on (an invalid refresh interval).
    #[error(transparent)]
    Decide(SyncError),
    /// The sync failed; the Secret was left as it was.
    #[error(transparent)]
    Sync(#[from] SyncFailure),
    /// Writing the results failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Writing the status failed.
    #[error(transparent)]
    Report(#[from] KubeCall),
    /// A deleted object's leases could not be revoked yet.
    #[error(transparent)]
    Finalize(companion::FinalizeError),
}

impl Error {
    /// The engine's error, where the sync itself failed (the status then says why).
    pub fn sync_error(&self) -> Option<&SyncError> {
        match self {
            Error::Decide(e)
            | Error::Sync(SyncFailure::Engine(e))
            | Error::Apply(ApplyError::Rebuild(e)) => Some(e),
            _ => None,
        }
    }

    /// A failed Kubernetes call of a step (not the status write itself).
    fn kube_call(&self) -> Option<&KubeCall> {
        match self {
            Error::Observe(ObserveError::Kube(call))
            | Error::Sync(SyncFailure::Kube(call))
            | Error::Apply(ApplyError::Kube(call)) => Some(call),
            _ => None,
        }
    }

    /// Stable category for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Observe(ObserveError::State(e)) => e.reason(),
            Error::Finalize(e) => e.reason(),
            Error::Report(call) => call.reason(),
            _ => match (self.sync_error(), self.kube_call()) {
                (Some(e), _) => e.reason(),
                (None, Some(call)) => call.reason(),
                (None, None) => "KubernetesApiError",
            },
        }
    }

    /// What the status and the Event say: every failure but the status write itself (which
    /// would fail again) and a write conflict (another writer was first: retried within a
    /// second, no condition to flap).
    pub fn status_message(&self) -> Option<String> {
        match self {
            Error::Observe(ObserveError::State(e)) => Some(e.to_string()),
            Error::Finalize(e) => Some(e.to_string()),
            _ if self
                .kube_call()
                .is_some_and(|c| c.reason() == "KubernetesConflict") =>
            {
                None
            }
            _ => match (self.sync_error(), self.kube_call()) {
                (Some(e), _) => Some(e.to_string()),
                (None, Some(call)) => Some(call.message()),
                (None, None) => None,
            },
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            Error::Observe(ObserveError::State(e)) => e.is_transient(),
            Error::Finalize(e) => e.is_transient(),
            _ => self.sync_error().is_none_or(SyncError::is_transient),
        }
    }
}

/// One reconcile of an ExternalSecret.
pub async fn reconcile(es: Arc<ExternalSecret>, state: Arc<State>) -> Result<Action, Error> {
    let _queued = metrics::InQueue::enter(KIND);
    let ctx = &state.ctx;
    ctx.queue.started(KIND, &ObjectKey::of(es.as_ref()));
    let es = ctx.statuses.latest(&es).map_or(es, Arc::new);
    // Recorded even for an object this instance does not serve: a change of its store (to
    // this instance's class) must wake it.
    ctx.index
        .record(&ObjectRef::from_obj(es.as_ref()), stores_of(&es));
    if !serves(&state, &es) {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let now = (ctx.clock)();
    if es.metadata.deletion_timestamp.is_some() {
        // A deletion blocked on leases says so (Ready false, an Event) instead of hanging
        // silently in Terminating.
        return match companion::finalize(ctx, &es).await {
            Ok(()) => Ok(Action::await_change()),
            Err(e) => Err(failed(&state, &es, Error::Finalize(e), started, now).await),
        };
    }
    match pipeline(&state, &es, now).await {
        Ok(action) => Ok(action),
        Err(error) => Err(failed(&state, &es, error, started, now).await),
    }
}

/// observe → decide → sync → apply → report.
async fn pipeline(
    state: &State,
    es: &ExternalSecret,
    now: jiff::Timestamp,
) -> Result<Action, Error> {
    let mut observed = observe::observe(state, es, now).await?;
    let decision = observed.decide(es, now, state).map_err(Error::Decide)?;
    if let Decision::Wait(wait) = decision
        && observed.leases.renew.is_empty()
    {
        let hash = observed.target.data_hash();
        let rollouts = &state.rollouts;
        rollouts.es_synced(es, &observed.target_name, hash.as_deref());
        let workloads = rollouts.statuses(es, &observed.target_name, hash.as_deref());
        report::workloads(&state.ctx, es, workloads).await?;
        return Ok(state.ctx.queue.next(&ObjectKey::of(es), wait));
    }
    if let Decision::Sync { why, .. } = decision
        && let Some(delay) = over_budget(state, es)
    {
        tracing::debug!(namespace = ?es.namespace(), name = %es.name_any(), why = why.as_str(), ?delay, "the namespace is over its store budget: syncing later");
        metrics::store_budget_wait();
        return Ok(state.ctx.queue.next(&ObjectKey::of(es), Some(delay)));
    }
    let _slot = match decision {
        Decision::Sync { why, .. } if why.is_background() => match state.background.try_take() {
            Some(slot) => Some(slot),
            None => {
                let attempt = now.as_second().unsigned_abs();
                let delay = priority::step_back(&ObjectKey::of(es), attempt);
                return Ok(state.ctx.queue.next(&ObjectKey::of(es), Some(delay)));
            }
        },
        _ => None,
    };
    let synced = sync::sync(state, es, &mut observed, decision, now).await?;
    let mut applied = apply::apply(state, es, &mut observed, synced, now).await?;
    let hash = applied.data_hash().or_else(|| observed.target.data_hash());
    // After the Secret is written: a crash before this is finished by the next reconcile.
    let rollouts = &state.rollouts;
    rollouts.es_synced(es, &observed.target_name, hash.as_deref());
    if let apply::Applied::Synced { outcome, .. } = &mut applied {
        let workloads = rollouts.statuses(es, &observed.target_name, hash.as_deref());
        outcome.status.workloads_up_to_date = kuvert_core::rollout::up_to_date_count(&workloads);
        outcome.status.workloads = workloads;
    }
    Ok(report::report(state, es, &observed, applied).await?)
}

/// How long `es` waits because its namespace overspent a store it uses (see
/// [`crate::budget`]); `None` when it may sync now.
fn over_budget(state: &State, es: &ExternalSecret) -> Option<std::time::Duration> {
    let namespace = es.namespace().unwrap_or_default();
    state.ctx.budgets.wait(&namespace, &stores_of(es))
}

/// The one failure path: counted; a failed sync is reported in the status and an Event (the
/// Secret stays as it was) and, if a store refused its credentials, logs in again next time.
async fn failed(
    state: &State,
    es: &ExternalSecret,
    error: Error,
    started: Instant,
    now: jiff::Timestamp,
) -> Error {
    let sync_error = error.sync_error();
    if let Some(sync_error) = sync_error {
        store_failed(state, es, sync_error);
    }
    let message = error.status_message();
    match report::failed(&state.ctx, es, error.reason(), message, started, now).await {
        Ok(()) => error,
        Err(e) => Error::Report(e),
    }
}

/// An ExternalSecret is served by the instance serving the class of its store: its
/// `secretStoreRef`, else the first store an entry's `sourceRef.storeRef` names. One whose
/// store is not known yet is served (the sync then reports the missing store). One reading no
/// store at all (generators only) is served by the instance without a class only: two
/// instances would otherwise both generate its values.
fn serves(state: &State, es: &ExternalSecret) -> bool {
    let Some(store_ref) = store_refs(es).next() else {
        return state.ctx.settings.serves(None);
    };
    let key = StoreKey::of(&es.namespace().unwrap_or_default(), store_ref);
    match state.caches.class(&key) {
        Some(class) => state.ctx.settings.serves(class.as_deref()),
        None => true,
    }
}

/// What a store's failure means beyond this object. Credentials refused by a store may have
/// been rotated: the next sync logs in again. An unreachable store is re-validated, so that
/// its own status says so (and recovers with it). A refused login is not: the check would be
/// one more failed login with the same credential, and OpenBao's user lockout (on by default
/// for AppRole: 5 failures lock the role for 15 minutes) then refused even the rotated one.
fn store_failed(state: &State, es: &ExternalSecret, error: &SyncError) {
    use kuvert_core::provider::ProviderError::{Forbidden, Unauthenticated, Unavailable};

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
    if matches!(provider_error, Some(Unavailable { .. })) {
        let now = Instant::now();
        for key in stores_of(es) {
            state.ctx.wakes.store_failing(&key, now);
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
    let key = ObjectKey::of(es.as_ref());
    let retry = if error.is_transient() {
        state.ctx.backoff.next(&key)
    } else {
        state.ctx.retry.next(&key)
    };
    let renew = kuvert_core::lease::next_in_status(&es, (state.ctx.clock)());
    let after = renew.map_or(retry, |renew| renew.min(retry));
    state.ctx.queue.next(&key, Some(after))
}
