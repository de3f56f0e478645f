//! Generated state around a reconcile, with the I/O it takes: before the sync (the finalizer,
//! the kept state, leases renewed or marked for replacement), after it (the state written
//! before the target Secret, replaced leases revoked after it), and at deletion (every lease
//! revoked before the finalizer goes). When leases are due is decided by [`super::leases`].

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kuvert_core::api::ExternalSecret;
use kuvert_core::generator::GeneratorError;
use kuvert_core::provider::ProviderError;

use super::generated::{
    ClusterGenerators, GeneratedState, counted, generator_for, read_companion, write_companion,
};
use super::leases::HeldLease;
use super::{Error, kube_error, report};
use crate::context::Context;

/// Revokes one lease through its generator. A generator object that is gone cannot revoke:
/// that is reported as `NotFound` (the caller decides whether to give up on the lease).
pub async fn revoke(
    ctx: &Context,
    namespace: &str,
    generator: &str,
    lease_id: &str,
) -> Result<(), GeneratorError> {
    let (kind, name) = kuvert_core::generator::parse_display_name(generator).ok_or_else(|| {
        GeneratorError::NotFound {
            generator: generator.to_owned(),
        }
    })?;
    let (display, implementation) = generator_for(ctx, namespace, kind, name).await?;
    counted(kind, "revoke", implementation.revoke(lease_id).await).map_err(|source| {
        GeneratorError::Generator {
            generator: display,
            source,
        }
    })?;
    tracing::info!(%namespace, %generator, %lease_id, "lease revoked");
    Ok(())
}

/// Renews one lease through its generator.
pub async fn renew(
    ctx: &Context,
    namespace: &str,
    generator: &str,
    lease: &HeldLease,
) -> Result<HeldLease, GeneratorError> {
    let (kind, name) = kuvert_core::generator::parse_display_name(generator).ok_or_else(|| {
        GeneratorError::NotFound {
            generator: generator.to_owned(),
        }
    })?;
    let (display, implementation) = generator_for(ctx, namespace, kind, name).await?;
    let asked = lease.duration();
    let granted =
        counted(kind, "renew", implementation.renew(&lease.id, asked).await).map_err(|source| {
            GeneratorError::Generator {
                generator: display,
                source,
            }
        })?;
    let now = (ctx.clock)();
    tracing::info!(%namespace, %generator, lease_id = %lease.id, granted = granted.duration.as_secs(), "lease renewed");
    Ok(lease.renewed(&granted, asked, now))
}

/// Revokes the leases waiting in `state.revoke`; those revoked (or whose generator is gone)
/// leave the list. Returns whether the list changed.
pub async fn revoke_pending(ctx: &Context, namespace: &str, state: &mut GeneratedState) -> bool {
    let before = state.revoke.len();
    let mut kept = Vec::new();
    for pending in std::mem::take(&mut state.revoke) {
        match revoke(ctx, namespace, &pending.generator, &pending.lease_id).await {
            Ok(()) => {}
            Err(GeneratorError::NotFound { .. }) => {
                tracing::warn!(%namespace, generator = %pending.generator, lease_id = %pending.lease_id,
                    "the generator is gone: its lease cannot be revoked and expires by itself");
            }
            Err(e) => {
                tracing::warn!(%namespace, error = %e, lease_id = %pending.lease_id, "revoking a lease failed; retried later");
                kept.push(pending);
            }
        }
    }
    state.revoke = kept;
    state.revoke.len() != before
}

/// The finalizer on ExternalSecrets whose generators may hold leases: deleting the object
/// revokes them first.
pub const LEASES_FINALIZER: &str = "kuvert.io/generator-leases";

/// Adds [`LEASES_FINALIZER`] before any lease can exist (it is cheap to remove when none was
/// made). The patch carries the `resourceVersion` read, so it never drops another finalizer.
pub async fn ensure_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<(), kube::Error> {
    if es.finalizers().iter().any(|f| f == LEASES_FINALIZER) {
        return Ok(());
    }
    let mut finalizers = es.finalizers().to_vec();
    finalizers.push(LEASES_FINALIZER.to_owned());
    patch_finalizers(ctx, es, finalizers).await
}

async fn patch_finalizers(
    ctx: &Context,
    es: &ExternalSecret,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    let namespace = es.namespace().unwrap_or_default();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": es.resource_version()}
    });
    api.patch(
        &es.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// An ExternalSecret being deleted: revokes every lease its generators hold, then lets it go.
/// A lease whose revocation fails transiently keeps the finalizer (retried with backoff); one
/// whose generator object is gone cannot be revoked and is given up with a warning.
pub async fn finalize(ctx: &Context, es: &ExternalSecret) -> Result<(), GeneratorError> {
    if !es.finalizers().iter().any(|f| f == LEASES_FINALIZER) {
        return Ok(());
    }
    let namespace = es.namespace().unwrap_or_default();
    let display = format!("ExternalSecret/{namespace}/{}", es.name_any());
    let state_error = |source| GeneratorError::State {
        generator: display.clone(),
        source,
    };
    let companion = read_companion(ctx, es).await.map_err(|e| {
        state_error(ProviderError::Unavailable {
            message: "reading the generated state failed".to_owned(),
            source: Some(Box::new(e)),
        })
    })?;
    // A companion that is not this object's holds none of its leases; an unreadable one
    // cannot say which: either way the deletion must not hang on it.
    let mut state = GeneratedState::from_secret(es, companion.as_ref()).unwrap_or_else(|e| {
        tracing::warn!(%namespace, name = %es.name_any(), error = %e, "no lease to revoke can be read");
        GeneratedState::default()
    });
    state.retain_fields(&BTreeSet::new());
    revoke_pending(ctx, &namespace, &mut state).await;
    if !state.revoke.is_empty() {
        return Err(state_error(ProviderError::Unavailable {
            message: format!("{} lease(s) could not be revoked yet", state.revoke.len()),
            source: None,
        }));
    }
    let finalizers = es
        .finalizers()
        .iter()
        .filter(|f| *f != LEASES_FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(ctx, es, finalizers).await.map_err(|e| {
        state_error(ProviderError::Unavailable {
            message: "removing the finalizer failed".to_owned(),
            source: Some(Box::new(e)),
        })
    })
}

/// What the held leases need at `now`: renewals are made here (the state updated in place);
/// returns the entries whose credentials must be replaced, and how long until the next lease
/// needs anything.
pub async fn tend_leases(
    ctx: &Context,
    namespace: &str,
    state: &mut GeneratedState,
    now: jiff::Timestamp,
) -> (BTreeSet<String>, Option<std::time::Duration>, bool) {
    use super::leases::LeaseAction;
    let fraction = ctx.settings.lease_renew_fraction;
    let mut regenerate = BTreeSet::new();
    let mut renewed = false;
    for (field, entry) in state.entries.iter_mut() {
        let Some(lease) = &entry.lease else { continue };
        match lease.action(now, fraction) {
            LeaseAction::Wait(_) => {}
            LeaseAction::Regenerate => {
                regenerate.insert(field.clone());
            }
            LeaseAction::Renew => match renew(ctx, namespace, &entry.generator, lease).await {
                Ok(fresh) => {
                    entry.lease = Some(fresh);
                    renewed = true;
                }
                Err(e) => {
                    tracing::warn!(%namespace, %field, error = %e, "renewing a lease failed; new credentials are generated");
                    regenerate.insert(field.clone());
                }
            },
        }
    }
    let next = state
        .entries
        .values()
        .filter_map(|e| e.lease.as_ref())
        .filter_map(|l| match l.action(now, fraction) {
            LeaseAction::Wait(d) => Some(d),
            _ => None,
        })
        .min();
    (regenerate, next, renewed)
}

/// What a reconcile knows of an ExternalSecret's generated state before it decides.
#[derive(Default)]
pub struct Prepared {
    /// The companion Secret as read (or last written).
    pub companion: Option<Secret>,
    /// The state it holds, leases renewed as due.
    pub kept: GeneratedState,
    /// Entries whose lease cannot be renewed (further): their credentials are replaced now.
    pub regenerate: BTreeSet<String>,
    /// How long until the next lease needs anything.
    pub lease_wait: Option<Duration>,
}

/// Before deciding: for an ExternalSecret using generators (or that did), the finalizer is in
/// place, the kept state read, due leases renewed (state and status written at once).
pub async fn prepare(ctx: &Context, es: &ExternalSecret) -> Result<Prepared, Error> {
    let generating = super::generated::uses_generators(es);
    let held_before = es.finalizers().iter().any(|f| f == LEASES_FINALIZER);
    if !generating && !held_before {
        return Ok(Prepared::default());
    }
    let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
    if generating {
        ensure_finalizer(ctx, es).await.map_err(kube_error(format!(
            "adding the finalizer to {namespace}/{name}"
        )))?;
    }
    let mut companion = read_companion(ctx, es).await.map_err(kube_error(format!(
        "reading the generated state of {namespace}/{name}"
    )))?;
    let mut kept = GeneratedState::from_secret(es, companion.as_ref()).map_err(|source| {
        GeneratorError::State {
            generator: format!("ExternalSecret/{namespace}/{name}"),
            source,
        }
    })?;
    let (regenerate, lease_wait, renewed) =
        tend_leases(ctx, &namespace, &mut kept, (ctx.clock)()).await;
    if renewed {
        companion = Some(write_state(ctx, es, companion.as_ref(), &kept).await?);
        let leases = kept.status_leases(ctx.settings.lease_renew_fraction);
        report::leases(ctx, es, leases).await?;
    }
    Ok(Prepared {
        companion,
        kept,
        regenerate,
        lease_wait,
    })
}

/// After a successful sync, before the target Secret is written: the state the sync left,
/// written if it changed (so a crash after this never loses a value or a lease).
pub async fn save_before_target(
    ctx: &Context,
    es: &ExternalSecret,
    prepared: &mut Prepared,
    generators: ClusterGenerators<'_>,
) -> Result<GeneratedState, Error> {
    let (held, changed) = generators.into_state();
    if changed || held != prepared.kept {
        prepared.companion = Some(write_state(ctx, es, prepared.companion.as_ref(), &held).await?);
    }
    Ok(held)
}

/// After the target Secret is written: the leases it no longer uses are revoked (and the state
/// written without them). Returns how long until the next lease needs anything.
pub async fn after_target(
    ctx: &Context,
    es: &ExternalSecret,
    companion: Option<&Secret>,
    mut held: GeneratedState,
) -> Result<Option<Duration>, Error> {
    let namespace = es.namespace().unwrap_or_default();
    if !held.revoke.is_empty() && revoke_pending(ctx, &namespace, &mut held).await {
        write_state(ctx, es, companion, &held).await?;
    }
    let now = (ctx.clock)();
    Ok(held
        .entries
        .values()
        .filter_map(|e| e.lease.as_ref())
        .map(|l| {
            now.duration_until(l.next_action_at(ctx.settings.lease_renew_fraction))
                .try_into()
                .unwrap_or(Duration::ZERO)
        })
        .min())
}

async fn write_state(
    ctx: &Context,
    es: &ExternalSecret,
    companion: Option<&Secret>,
    state: &GeneratedState,
) -> Result<Secret, Error> {
    write_companion(ctx, es, companion, state)
        .await
        .map_err(kube_error(format!(
            "writing the generated state of {}/{}",
            es.namespace().unwrap_or_default(),
            es.name_any()
        )))
}
