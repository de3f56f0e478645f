//! Generator calls: finding a generator object, generating (or reusing what was kept),
//! renewing and revoking leases — each counted in the metrics by outcome.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use kube::api::{Api, DynamicObject};
use kuvert_core::api::GeneratorRef;
use kuvert_core::generated::{
    EntryState, GeneratedState, PendingRevoke, Regenerate, decode_values,
};
use kuvert_core::generator::{
    GenerateError, GeneratedValues, Generator, GeneratorError, GeneratorResolver, GeneratorSpec,
    Kind, checked_kind,
};
use kuvert_core::lease::HeldLease;
use kuvert_core::provider::ProviderError;

use crate::context::Context;
use crate::resolve::{self, GeneratorObjects};

/// Generator objects as the API server holds them.
struct ClusterGeneratorObjects<'a>(&'a Context);

#[async_trait]
impl GeneratorObjects for ClusterGeneratorObjects<'_> {
    async fn spec(
        &self,
        namespace: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Option<GeneratorSpec>, GenerateError> {
        let api = Api::<DynamicObject>::namespaced_with(
            self.0.client.clone(),
            namespace,
            &kind.api_resource(),
        );
        let display = kuvert_core::generator::display_name(kind, namespace, name);
        let object = api.get_opt(name).await.map_err(|e| {
            GenerateError::from(ProviderError::Unavailable {
                message: format!("reading {display}: the Kubernetes API call failed"),
                source: Some(Box::new(e)),
            })
        })?;
        let Some(object) = object else {
            return Ok(None);
        };
        let spec_json = object.data.get("spec").cloned().unwrap_or_default();
        kind.parse_spec(spec_json).map(Some)
    }

    fn check_serves(&self, spec: &GeneratorSpec) -> Result<(), GenerateError> {
        let settings = &self.0.settings;
        if settings.serves(spec.controller()) {
            return Ok(());
        }
        Err(GenerateError::invalid_spec(
            "spec.controller",
            format!(
                "the generator belongs to controller class {:?}, and this kuvert serves {:?}",
                spec.controller().unwrap_or_default(),
                settings.controller_class.as_deref().unwrap_or_default()
            ),
        ))
    }
}

/// The generator object a reference names, built by its kind.
pub async fn generator_for(
    ctx: &Context,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<(String, Arc<dyn Generator>), GeneratorError> {
    let objects = ClusterGeneratorObjects(ctx);
    resolve::generator(&ctx.generators, &objects, &ctx.kube, namespace, kind, name).await
}

/// The generator a kept entry or lease names (`Kind/namespace/name`). A generator object
/// that is gone is `NotFound` (the caller decides whether to give up on its lease).
async fn generator_named(
    ctx: &Context,
    namespace: &str,
    generator: &str,
) -> Result<(Kind, String, Arc<dyn Generator>), GeneratorError> {
    let (kind, name) = kuvert_core::generator::parse_display_name(generator).ok_or_else(|| {
        GeneratorError::NotFound {
            generator: generator.to_owned(),
        }
    })?;
    let (display, implementation) = generator_for(ctx, namespace, kind, name).await?;
    Ok((kind, display, implementation))
}

/// Revokes one lease through its generator.
pub async fn revoke(
    ctx: &Context,
    namespace: &str,
    generator: &str,
    lease_id: &str,
) -> Result<(), GeneratorError> {
    let (kind, display, implementation) = generator_named(ctx, namespace, generator).await?;
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
async fn renew(
    ctx: &Context,
    namespace: &str,
    generator: &str,
    lease: &HeldLease,
) -> Result<HeldLease, GeneratorError> {
    let (kind, display, implementation) = generator_named(ctx, namespace, generator).await?;
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

/// Renews the leases of the entries `fields` (the state updated in place). Returns the
/// entries whose renewal failed: their credentials are replaced instead.
pub async fn renew_leases(
    ctx: &Context,
    namespace: &str,
    state: &mut GeneratedState,
    fields: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    for field in fields {
        let Some(entry) = state.entries.get_mut(field) else {
            continue;
        };
        let Some(lease) = &entry.lease else { continue };
        match renew(ctx, namespace, &entry.generator, lease).await {
            Ok(fresh) => entry.lease = Some(fresh),
            Err(e) => {
                tracing::warn!(%namespace, %field, error = %e, "renewing a lease failed; new credentials are generated");
                failed.insert(field.clone());
            }
        }
    }
    failed
}

/// What [`revoke_pending`] did.
#[derive(Debug)]
pub struct Revoked {
    /// Whether the list of leases to revoke changed.
    pub changed: bool,
    /// The last revocation that failed (its lease stays in the list).
    pub error: Option<GeneratorError>,
}

/// Revokes the leases waiting in `state.revoke`; those revoked (or whose generator is gone)
/// leave the list.
pub async fn revoke_pending(ctx: &Context, namespace: &str, state: &mut GeneratedState) -> Revoked {
    let before = state.revoke.len();
    let mut kept = Vec::new();
    let mut error = None;
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
                error = Some(e);
            }
        }
    }
    state.revoke = kept;
    Revoked {
        changed: state.revoke.len() != before,
        error,
    }
}

/// The operator's [`GeneratorResolver`]: runs a generator when its entry is due to regenerate
/// (or has nothing kept), and otherwise returns the values kept in the state.
pub struct ClusterGenerators<'a> {
    ctx: &'a Context,
    regenerate: Regenerate,
    state: Mutex<GeneratedState>,
    changed: Mutex<bool>,
    /// Leases made in this sync: revoked if the sync fails (nothing uses them then).
    fresh: Mutex<Vec<(String, String, String)>>,
}

impl<'a> ClusterGenerators<'a> {
    /// A resolver over `state`.
    pub fn new(ctx: &'a Context, state: GeneratedState, regenerate: Regenerate) -> Self {
        ClusterGenerators {
            ctx,
            regenerate,
            state: Mutex::new(state),
            changed: Mutex::new(false),
            fresh: Mutex::default(),
        }
    }

    /// The state after the sync, and whether it changed.
    pub fn into_state(self) -> (GeneratedState, bool) {
        let changed = *self.changed.lock().expect("lock");
        (self.state.into_inner().expect("lock"), changed)
    }

    /// Revokes the leases made in this sync (it failed, so no Secret holds them).
    pub async fn revoke_fresh(&self) {
        let fresh = std::mem::take(&mut *self.fresh.lock().expect("lock"));
        for (namespace, generator, lease_id) in fresh {
            revoke(self.ctx, &namespace, &generator, &lease_id)
                .await
                .ok();
        }
    }
}

#[async_trait]
impl GeneratorResolver for ClusterGenerators<'_> {
    async fn generate(
        &self,
        namespace: &str,
        field: &str,
        generator_ref: &GeneratorRef,
    ) -> Result<GeneratedValues, GeneratorError> {
        let kind = checked_kind(generator_ref)?;
        let display = kuvert_core::generator::display_name(kind, namespace, &generator_ref.name);
        if !self.regenerate.includes(field) {
            let state = self.state.lock().expect("lock");
            if let Some(kept) = state.entries.get(field).filter(|e| e.generator == display) {
                return decode_values(&display, kept);
            }
        }
        let (display, generator) =
            generator_for(self.ctx, namespace, kind, &generator_ref.name).await?;
        let generated =
            counted(kind, "generate", generator.generate().await).map_err(|source| {
                GeneratorError::Generator {
                    generator: display.clone(),
                    source,
                }
            })?;
        let now = (self.ctx.clock)();
        let lease = generated.lease.as_ref().map(|l| HeldLease::issued(l, now));
        if let Some(lease) = &lease {
            self.fresh.lock().expect("lock").push((
                namespace.to_owned(),
                display.clone(),
                lease.id.clone(),
            ));
        }
        let entry = EntryState {
            generator: display.clone(),
            values: generated
                .values
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        base64::engine::general_purpose::STANDARD.encode(v.expose()),
                    )
                })
                .collect(),
            lease,
        };
        let mut state = self.state.lock().expect("lock");
        if let Some(old) = state.entries.insert(field.to_owned(), entry)
            && let Some(old_lease) = old.lease
        {
            state.revoke.push(PendingRevoke {
                generator: old.generator,
                lease_id: old_lease.id,
            });
        }
        *self.changed.lock().expect("lock") = true;
        Ok(GeneratedValues {
            generator: display,
            values: generated.values,
        })
    }
}

/// Counts a generator call in the metrics, by outcome.
fn counted<T>(
    kind: Kind,
    operation: &'static str,
    result: Result<T, GenerateError>,
) -> Result<T, GenerateError> {
    let outcome = result.as_ref().map_or_else(|e| e.reason(), |_| "ok");
    crate::metrics::generator_request(kind.as_str(), operation, outcome);
    result
}
