//! Sync: what the decision asked for, up to the desired Secret — the finalizer in place before
//! any lease can exist, due leases renewed, then the engine's fetch (every remote read and
//! generator call) and build. Nothing is written to the target here; a sync that fails
//! revokes the leases it made, since no Secret will hold them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kuvert_core::api::{CreationPolicy, ExternalSecret};
use kuvert_core::decide::{Decision, SyncReason};
use kuvert_core::engine::{self, Fetched, SyncError, SyncOutcome};
use kuvert_core::generated::{self, GeneratedState, Regenerate};

use super::calls::{self, ClusterGenerators};
use super::companion;
use super::observe::{Observed, read_target};
use super::state::{KubeCall, State};
use super::stores::Resolver;
use super::target::Known;
use crate::references::{Recording, User};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The engine refused the spec or a read failed: the status says why.
    #[error(transparent)]
    Engine(#[from] SyncError),
    /// A Kubernetes call failed (the finalizer, reading the target).
    #[error(transparent)]
    Kube(#[from] KubeCall),
}

/// What a sync produced.
pub enum Synced<'a> {
    /// Only leases were renewed; nothing else is due for `wait`.
    Renewed {
        /// The generated state with the renewed leases.
        state: GeneratedState,
        /// How long until anything is due besides the leases (`None`: until a change).
        wait: Option<Duration>,
    },
    /// The desired Secret was built.
    Built(Box<Built<'a>>),
}

/// A built Secret and what it was built from.
pub struct Built<'a> {
    /// Why it synced.
    pub why: SyncReason,
    /// When the sync started.
    pub started: Instant,
    /// Every remote value read.
    pub fetched: Fetched,
    /// The desired Secret and status.
    pub outcome: SyncOutcome,
    /// The generators' values and leases after the sync.
    pub generators: ClusterGenerators<'a>,
}

/// Syncs `es` as `decision` asks.
pub async fn sync<'a>(
    state: &'a State,
    es: &ExternalSecret,
    observed: &mut Observed,
    decision: Decision,
    now: jiff::Timestamp,
) -> Result<Synced<'a>, SyncFailure> {
    let ctx = &state.ctx;
    let namespace = es.namespace().unwrap_or_default();
    if generated::uses_generators(es) {
        companion::ensure_finalizer(ctx, es)
            .await
            .map_err(KubeCall::doing(format!(
                "adding the finalizer to {namespace}/{}",
                es.name_any()
            )))?;
    }
    let mut kept = observed.kept.clone();
    let failed = calls::renew_leases(ctx, &namespace, &mut kept, &observed.leases.renew).await;
    let decision = if failed.is_empty() {
        decision
    } else {
        decision.after_failed_renewals(ctx.settings.coalesce_window)
    };
    let (max_age, why) = match decision {
        Decision::Wait(wait) => return Ok(Synced::Renewed { state: kept, wait }),
        Decision::Sync { max_age, why } => (max_age, why),
    };
    tracing::debug!(%namespace, name = %es.name_any(), why = why.as_str(), "syncing");
    let started = Instant::now();
    kept.retain_fields(&generated::generator_fields(es));
    let replace: BTreeSet<String> = observed.leases.replace.union(&failed).cloned().collect();
    let generators = ClusterGenerators::new(ctx, kept, Regenerate::for_sync(why, replace));
    let resolver = Resolver {
        caches: &state.caches,
        client: &ctx.client,
        registry: &ctx.registry,
        kube: &ctx.kube,
        references: &ctx.references,
        clients: &ctx.clients,
        budgets: &ctx.budgets,
        reads: &ctx.reads,
        max_age,
    };
    let secrets = observed.secrets(state);
    let built = async {
        engine::status::check_spec(es)?;
        let kube = Recording::new(&ctx.kube);
        let fetched = engine::fetch::fetch(es, &resolver, &generators, &kube).await;
        ctx.references.record(
            User::ExternalSecret(observed.es_ref.clone()),
            kube.into_reads(),
        );
        let fetched = fetched?;
        let outcome = build(es, &fetched, &mut observed.target, &secrets, now).await?;
        Ok::<_, SyncFailure>((fetched, outcome))
    }
    .await;
    match built {
        Ok((fetched, outcome)) => Ok(Synced::Built(Box::new(Built {
            why,
            started,
            fetched,
            outcome,
            generators,
        }))),
        Err(error) => {
            generators.revoke_fresh().await;
            Err(error)
        }
    }
}

/// Builds the desired Secret against the target as known. A Secret known only from the cache
/// is read when the cache cannot prove the sync changes nothing, and `known` then holds it.
pub async fn build(
    es: &ExternalSecret,
    fetched: &Fetched,
    known: &mut Known,
    secrets: &Api<Secret>,
    now: jiff::Timestamp,
) -> Result<SyncOutcome, SyncFailure> {
    // Merging needs the Secret's other keys: built against no Secret, a merge is refused
    // (`SecretMissing`), so the cache cannot prove a merged-into Secret unchanged; it is read.
    if matches!(known, Known::AsWritten(_)) && es.spec.creation_policy() == CreationPolicy::Merge {
        *known = Known::Read(read_target(secrets, &engine::target::secret_name(es)).await?);
    }
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
        *known = Known::Read(read_target(secrets, &engine::target::secret_name(es)).await?);
    }
    let existing = match known {
        Known::Read(secret) => secret.as_deref(),
        Known::AsWritten(_) | Known::ProbablyMissing => None,
    };
    Ok(engine::build(es, fetched, existing, now)?)
}
