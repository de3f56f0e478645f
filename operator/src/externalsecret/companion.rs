//! The generated state's I/O: the companion Secret `<name>.kuvert-generated` holding it (see
//! [`kuvert_core::generated`]), and the finalizer that keeps an ExternalSecret until its
//! leases are revoked.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::{ABANDON_LEASES_ANNOTATION, ExternalSecret};
use kuvert_core::generated::{GeneratedState, companion_name};
use kuvert_core::generator::GeneratorError;
use kuvert_core::lease::abandons_leases;
use kuvert_core::provider::ProviderError;

use super::calls;
use crate::context::Context;

/// The finalizer on ExternalSecrets whose generators may hold leases: deleting the object
/// revokes them first.
pub const LEASES_FINALIZER: &str = "kuvert.io/generator-leases";

/// Whether `es` carries [`LEASES_FINALIZER`].
pub fn holds_finalizer(es: &ExternalSecret) -> bool {
    es.finalizers().iter().any(|f| f == LEASES_FINALIZER)
}

/// Reads the companion Secret; `None` if there is none.
pub async fn read(ctx: &Context, es: &ExternalSecret) -> Result<Option<Secret>, kube::Error> {
    let namespace = es.namespace().unwrap_or_default();
    Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&companion_name(es))
        .await
}

/// Writes `state` to the companion Secret (creating it, or replacing `existing` with its
/// `resourceVersion`, so concurrent writers conflict rather than lose a lease). Returns the
/// Secret as written.
pub async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    existing: Option<&Secret>,
    state: &GeneratedState,
) -> Result<Secret, kube::Error> {
    let namespace = es.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let secret = state.companion_secret(es, existing);
    match existing {
        Some(_) => {
            api.replace(&companion_name(es), &PostParams::default(), &secret)
                .await
        }
        None => api.create(&PostParams::default(), &secret).await,
    }
}

/// Adds [`LEASES_FINALIZER`] before any lease can exist (it is cheap to remove when none was
/// made). The patch carries the `resourceVersion` read, so it never drops another finalizer.
pub async fn ensure_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<(), kube::Error> {
    if holds_finalizer(es) {
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
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// Why a deleted ExternalSecret cannot go yet.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// The store refused or failed to revoke leases: retried with backoff until it works, or
    /// until the object is annotated to abandon them.
    #[error(
        "{count} lease(s) of {display} could not be revoked ({source}); retried with backoff. To let the deletion finish without revoking them (they expire by their TTL), annotate it {ABANDON_LEASES_ANNOTATION}=true"
    )]
    Revoke {
        /// `ExternalSecret/namespace/name`.
        display: String,
        /// How many leases are left.
        count: usize,
        /// The last revocation's failure.
        source: GeneratorError,
    },
    /// Reading the generated state or removing the finalizer failed.
    #[error(transparent)]
    State(GeneratorError),
}

impl FinalizeError {
    /// Stable category for the condition, the Event and the metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FinalizeError::Revoke { .. } => LEASE_REVOCATION_FAILED,
            FinalizeError::State(e) => e.reason(),
        }
    }

    /// Whether it is retried with the short backoff. A refused revocation is too: the deletion
    /// (and on a real cluster, its namespace's) waits on it, and the store may be fixed any time.
    pub fn is_transient(&self) -> bool {
        match self {
            FinalizeError::Revoke { .. } => true,
            FinalizeError::State(e) => e.is_transient(),
        }
    }
}

/// Reason of the `Ready` condition and Event while a deleted ExternalSecret's leases cannot be
/// revoked.
pub const LEASE_REVOCATION_FAILED: &str = "LeaseRevocationFailed";

/// Reason of the Event when leases are given up by [`ABANDON_LEASES_ANNOTATION`].
pub const LEASES_ABANDONED: &str = "LeasesAbandoned";

/// An ExternalSecret being deleted: revokes every lease its generators hold, then lets it go.
/// A lease whose revocation fails keeps the finalizer (retried with backoff; the status and an
/// Event say so) unless the object is annotated [`ABANDON_LEASES_ANNOTATION`]`=true`, which
/// gives the leases up (an Event lists them). One whose generator object is gone cannot be
/// revoked and is given up with a warning.
pub async fn finalize(ctx: &Context, es: &ExternalSecret) -> Result<(), FinalizeError> {
    if !holds_finalizer(es) {
        return Ok(());
    }
    let namespace = es.namespace().unwrap_or_default();
    let display = format!("ExternalSecret/{namespace}/{}", es.name_any());
    let state_error = |source| {
        FinalizeError::State(GeneratorError::State {
            generator: display.clone(),
            source,
        })
    };
    let companion = read(ctx, es).await.map_err(|e| {
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
    if abandons_leases(es) {
        if !state.revoke.is_empty() {
            abandoned(ctx, es, &state).await;
        }
    } else {
        let revoked = calls::revoke_pending(ctx, &namespace, &mut state).await;
        if let Some(source) = revoked.error.filter(|_| !state.revoke.is_empty()) {
            return Err(FinalizeError::Revoke {
                display,
                count: state.revoke.len(),
                source,
            });
        }
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

/// Leases given up on request: a Warning Event and a log line naming them (lease ids, never a
/// credential), so whoever abandoned them can revoke them in the store by hand.
async fn abandoned(ctx: &Context, es: &ExternalSecret, state: &GeneratedState) {
    let namespace = es.namespace().unwrap_or_default();
    let ids: Vec<&str> = state.revoke.iter().map(|p| p.lease_id.as_str()).collect();
    tracing::warn!(%namespace, name = %es.name_any(), leases = ?ids, "leases abandoned on request; they expire by their TTL");
    let note = format!(
        "{ABANDON_LEASES_ANNOTATION}=true: {} lease(s) not revoked, left to expire by their TTL: {}",
        ids.len(),
        ids.join(", ")
    );
    super::report::warn(ctx, es, LEASES_ABANDONED, note, "Delete").await;
}
