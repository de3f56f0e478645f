//! The generated state's I/O: the companion Secret `<name>.kuvert-generated` holding it (see
//! [`kuvert_core::generated`]), and the finalizer that keeps an ExternalSecret until its
//! leases are revoked.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::ExternalSecret;
use kuvert_core::generated::{GeneratedState, companion_name};
use kuvert_core::generator::GeneratorError;
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

/// An ExternalSecret being deleted: revokes every lease its generators hold, then lets it go.
/// A lease whose revocation fails transiently keeps the finalizer (retried with backoff); one
/// whose generator object is gone cannot be revoked and is given up with a warning.
pub async fn finalize(ctx: &Context, es: &ExternalSecret) -> Result<(), GeneratorError> {
    if !holds_finalizer(es) {
        return Ok(());
    }
    let namespace = es.namespace().unwrap_or_default();
    let display = format!("ExternalSecret/{namespace}/{}", es.name_any());
    let state_error = |source| GeneratorError::State {
        generator: display.clone(),
        source,
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
    calls::revoke_pending(ctx, &namespace, &mut state).await;
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
