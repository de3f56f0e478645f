//! Observe: everything the decision needs, read and nothing written — the target Secret (from
//! the cache of managed Secrets when it proves enough), the generated state with what its
//! leases need, and whether a store changed since the last sync.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kuvert_core::api::ExternalSecret;
use kuvert_core::decide::{self, Decision};
use kuvert_core::engine::{self, SyncError};
use kuvert_core::generated::{self, GeneratedState, LeaseNeeds};
use kuvert_core::generator::GeneratorError;

use super::companion;
use super::state::{KubeCall, State};
use super::stores::StoreGenerations;
use super::target::Known;

/// Why observing failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// A read from the API server failed.
    #[error(transparent)]
    Kube(#[from] KubeCall),
    /// The companion Secret's state cannot be used.
    #[error(transparent)]
    State(#[from] GeneratorError),
}

/// What a reconcile observed of an ExternalSecret.
pub struct Observed {
    /// The object's reference.
    pub es_ref: ObjectRef<ExternalSecret>,
    /// The target Secret's name.
    pub target_name: String,
    /// The target Secret as far as known.
    pub target: Known,
    /// The generation of each store it uses now.
    pub generations: StoreGenerations,
    /// Whether a store changed since this process last synced it, or an object its last sync
    /// read (a `templateFrom` source) changed since.
    pub store_changed: bool,
    /// The wake of a changed referenced object this reconcile serves (see
    /// [`crate::references`]).
    pub references_changed: Option<u64>,
    /// The companion Secret as read (for generator users, and former ones still holding
    /// leases).
    pub companion: Option<Secret>,
    /// The generated state it holds.
    pub kept: GeneratedState,
    /// What the held leases need now.
    pub leases: LeaseNeeds,
}

impl Observed {
    /// The decision on what was observed (pure: [`kuvert_core::decide`]).
    pub fn decide(
        &self,
        es: &ExternalSecret,
        now: jiff::Timestamp,
        state: &State,
    ) -> Result<Decision, SyncError> {
        let facts = decide::Observed {
            target: self.target.state(es),
            store_changed: self.store_changed,
            leases: self.leases.summary(),
        };
        let settings = &state.ctx.settings;
        let timing = decide::Timing {
            coalesce: settings.coalesce_window,
            min_refresh: settings.limits.min_refresh_interval,
        };
        decide::decide(es, facts, now, timing)
    }

    /// The Secrets API of the object's namespace.
    pub fn secrets(&self, state: &State) -> Api<Secret> {
        Api::namespaced(
            state.ctx.client.clone(),
            self.es_ref.namespace.as_deref().unwrap_or_default(),
        )
    }
}

/// Observes `es` at `now`. Besides the reads, the in-process index learns which target Secret
/// the object writes (so its changes requeue it): bookkeeping, no API write.
pub async fn observe(
    state: &State,
    es: &ExternalSecret,
    now: jiff::Timestamp,
) -> Result<Observed, ObserveError> {
    let ctx = &state.ctx;
    let namespace = es.namespace().unwrap_or_default();
    let es_ref = ObjectRef::new(&es.name_any()).within(&namespace);
    let generations = state.caches.generations(es);
    let references_changed = ctx.references.pending(&es_ref);
    let store_changed =
        ctx.index.stores_changed(&es_ref, &generations) || references_changed.is_some();

    let (companion, kept) = read_generated(state, es).await?;
    let leases = kept.lease_needs(now, ctx.settings.lease_renew_fraction);

    let target_name = engine::target::secret_name(es);
    ctx.index.record_target(&es_ref, &namespace, &target_name);
    let secrets = Api::namespaced(ctx.client.clone(), &namespace);
    let target = match state.targets.known(es, &namespace, &target_name) {
        Some(known) => known,
        None => Known::Read(read_target(&secrets, &target_name).await?),
    };
    Ok(Observed {
        es_ref,
        target_name,
        target,
        generations,
        store_changed,
        references_changed,
        companion,
        kept,
        leases,
    })
}

/// The companion Secret and its state, for an ExternalSecret using generators or still
/// holding leases of ones it used (nothing is read for the others).
async fn read_generated(
    state: &State,
    es: &ExternalSecret,
) -> Result<(Option<Secret>, GeneratedState), ObserveError> {
    if !generated::uses_generators(es) && !companion::holds_finalizer(es) {
        return Ok((None, GeneratedState::default()));
    }
    let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
    let secret = companion::read(&state.ctx, es)
        .await
        .map_err(KubeCall::doing(format!(
            "reading the generated state of {namespace}/{name}"
        )))?;
    let kept = GeneratedState::from_secret(es, secret.as_ref()).map_err(|source| {
        GeneratorError::State {
            generator: format!("ExternalSecret/{namespace}/{name}"),
            source,
        }
    })?;
    Ok((secret, kept))
}

/// Reads the target Secret from the API server.
pub async fn read_target(
    secrets: &Api<Secret>,
    name: &str,
) -> Result<Option<Box<Secret>>, KubeCall> {
    secrets
        .get_opt(name)
        .await
        .map(|s| s.map(Box::new))
        .map_err(KubeCall::doing(format!("reading Secret {name}")))
}
