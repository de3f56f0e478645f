//! Apply: the sync's results written, in the order that never loses a lease or a value — the
//! companion Secret (generated values and leases) before the target Secret, replaced leases
//! revoked only after the target holding their successors is written. Never a Secret kuvert
//! does not own.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kuvert_core::api::{DATA_HASH_ANNOTATION, ExternalSecret, GeneratorLease};
use kuvert_core::decide::SyncReason;
use kuvert_core::engine::target::KeyChanges;
use kuvert_core::engine::{SyncError, SyncOutcome, TargetAction};
use kuvert_core::generated::GeneratedState;

use super::calls;
use super::companion;
use super::observe::{Observed, read_target};
use super::state::{KubeCall, State};
use super::sync::{self, Built, SyncFailure, Synced};
use super::target::Known;

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A write (or the read of a target found to exist after all) failed.
    #[error(transparent)]
    Kube(#[from] KubeCall),
    /// Rebuilt against a target found to exist after all, the sync failed: the status says why.
    #[error(transparent)]
    Rebuild(#[from] SyncError),
}

impl From<SyncFailure> for ApplyError {
    fn from(failure: SyncFailure) -> Self {
        match failure {
            SyncFailure::Engine(e) => ApplyError::Rebuild(e),
            SyncFailure::Kube(e) => ApplyError::Kube(e),
        }
    }
}

/// What was applied, for the report.
pub enum Applied {
    /// Leases renewed, nothing else: the status shows them.
    Renewed {
        /// The leases as the status shows them.
        leases: Vec<GeneratorLease>,
        /// How long until anything is due (`None`: until a change).
        wait: Option<Duration>,
    },
    /// The target Secret written as built.
    Synced {
        /// Why it synced.
        why: SyncReason,
        /// When the sync started.
        started: std::time::Instant,
        /// The engine's outcome, its status showing the leases held.
        outcome: Box<SyncOutcome>,
        /// The target Secret's `resourceVersion` as written.
        written: Option<String>,
        /// How long until the next lease needs anything.
        lease_wait: Option<Duration>,
        /// The keys an update of the existing Secret changed (`None`: created, or no data
        /// changed).
        changes: Option<KeyChanges>,
    },
}

impl Applied {
    /// The data hash of the Secret as written (`None`: nothing written, or deleted).
    pub fn data_hash(&self) -> Option<String> {
        let Applied::Synced { outcome, .. } = self else {
            return None;
        };
        if matches!(outcome.action, TargetAction::Delete | TargetAction::Skip) {
            return None;
        }
        let secret = outcome.secret.as_ref()?;
        secret.annotations().get(DATA_HASH_ANNOTATION).cloned()
    }
}

/// Applies what `synced` produced for `es`.
pub async fn apply(
    state: &State,
    es: &ExternalSecret,
    observed: &mut Observed,
    synced: Synced<'_>,
    now: jiff::Timestamp,
) -> Result<Applied, ApplyError> {
    let fraction = state.ctx.settings.lease_renew_fraction;
    match synced {
        Synced::Renewed { state: held, wait } => {
            if held != observed.kept {
                write_companion(state, es, observed.companion.as_ref(), &held).await?;
            }
            let lease_wait = held.next_lease_action(now, fraction);
            Ok(Applied::Renewed {
                leases: held.status_leases(fraction),
                wait: min(wait, lease_wait),
            })
        }
        Synced::Built(built) => {
            let Built {
                why,
                started,
                fetched,
                mut outcome,
                generators,
            } = *built;
            let (mut held, changed) = generators.into_state();
            let mut companion = observed.companion.take();
            if changed || held != observed.kept {
                companion = Some(write_companion(state, es, companion.as_ref(), &held).await?);
            }
            outcome.status.leases = held.status_leases(fraction);
            let secrets = observed.secrets(state);
            let written =
                match write_target(&secrets, &outcome, observed.target.resource_version()).await {
                    // The target exists after all, though kuvert does not manage it: build against
                    // it as read. The generated values are saved already: a failure keeps them.
                    Err(WriteError::Conflict(_))
                        if matches!(observed.target, Known::ProbablyMissing) =>
                    {
                        observed.target =
                            Known::Read(read_target(&secrets, &observed.target_name).await?);
                        let leases = std::mem::take(&mut outcome.status.leases);
                        outcome =
                            sync::build(es, &fetched, &mut observed.target, &secrets, now).await?;
                        outcome.status.leases = leases;
                        write_target(&secrets, &outcome, observed.target.resource_version()).await?
                    }
                    other => other?,
                };
            let changes = match (&observed.target, &outcome.secret, &outcome.action) {
                (Known::Read(Some(before)), Some(after), TargetAction::Update) => {
                    Some(KeyChanges::between(before, after)).filter(|c| !c.is_empty())
                }
                _ => None,
            };
            // Replaced leases go only now that the Secret holding their successors is written.
            let namespace = es.namespace().unwrap_or_default();
            if !held.revoke.is_empty()
                && calls::revoke_pending(&state.ctx, &namespace, &mut held)
                    .await
                    .changed
            {
                write_companion(state, es, companion.as_ref(), &held).await?;
            }
            Ok(Applied::Synced {
                why,
                started,
                outcome: Box::new(outcome),
                written,
                lease_wait: held.next_lease_action((state.ctx.clock)(), fraction),
                changes,
            })
        }
    }
}

/// The earlier of two optional delays.
pub fn min(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn write_companion(
    state: &State,
    es: &ExternalSecret,
    existing: Option<&Secret>,
    held: &GeneratedState,
) -> Result<Secret, KubeCall> {
    companion::write(&state.ctx, es, existing, held)
        .await
        .map_err(KubeCall::doing(format!(
            "writing the generated state of {}/{}",
            es.namespace().unwrap_or_default(),
            es.name_any()
        )))
}

/// A target write that failed.
enum WriteError {
    /// 409: the Secret exists (create) or changed (replace, delete) meanwhile.
    Conflict(KubeCall),
    /// Anything else.
    Other(KubeCall),
}

impl From<WriteError> for KubeCall {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Conflict(e) | WriteError::Other(e) => e,
        }
    }
}

impl From<WriteError> for ApplyError {
    fn from(error: WriteError) -> Self {
        ApplyError::Kube(error.into())
    }
}

fn write_error(action: String) -> impl FnOnce(kube::Error) -> WriteError {
    move |source| {
        let conflict = matches!(&source, kube::Error::Api(e) if e.code == 409);
        let call = KubeCall { action, source };
        if conflict {
            WriteError::Conflict(call)
        } else {
            WriteError::Other(call)
        }
    }
}

/// Creates, replaces or deletes the Secret as the engine decided; returns the Secret's
/// `resourceVersion` as it now is (`None` when there is none; `existing` when unchanged). A
/// replace carries the `resourceVersion` that was read, so a concurrent change makes it fail
/// (409) rather than be overwritten.
async fn write_target(
    secrets: &Api<Secret>,
    outcome: &SyncOutcome,
    existing: Option<&str>,
) -> Result<Option<String>, WriteError> {
    let Some(secret) = &outcome.secret else {
        return Ok(None);
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    let version = |s: Secret| s.metadata.resource_version;
    match outcome.action {
        TargetAction::Create => secrets
            .create(&PostParams::default(), secret)
            .await
            .map(version)
            .map_err(write_error(format!("creating Secret {name}"))),
        TargetAction::Update => secrets
            .replace(&name, &PostParams::default(), secret)
            .await
            .map(version)
            .map_err(write_error(format!("updating Secret {name}"))),
        TargetAction::Unchanged => Ok(existing.map(str::to_owned)),
        TargetAction::Skip => Ok(None),
        // Only the Secret as it was read: one changed or re-created meanwhile fails (409).
        TargetAction::Delete => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: secret.metadata.uid.clone(),
                    resource_version: secret.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&name, &params).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
                Err(e) => Err(write_error(format!("deleting Secret {name}"))(e)),
            }
        }
    }
}
