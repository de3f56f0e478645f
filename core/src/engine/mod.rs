//! The sync engine: from an ExternalSecret and what its stores hold, the exact Secret a user
//! expects, and the status that says so.
//!
//! The pipeline, one file per step:
//!
//! 1. [`fetch`] — the only I/O: resolve stores ([`StoreResolver`]), read every remote value
//!    once (`data[]`, `dataFrom[].extract`, `dataFrom[].find`) and the ConfigMaps and Secrets
//!    of `templateFrom` ([`KubeAccess`]), then take the values of `sourceRef.generatorRef`
//!    entries ([`GeneratorResolver`]). Produces [`Fetched`].
//! 2. [`build`] — pure from here on, unit-tested without async:
//!    - [`values`] — what each `data[]` and `dataFrom[]` entry contributes;
//!    - [`property`] — `remoteRef.property` paths into JSON values;
//!    - [`decode`] — `decodingStrategy`;
//!    - [`keys`] — `conversionStrategy` and the Secret key rules;
//!    - [`rewrite`] — `dataFrom[].rewrite[]` (regexp, transform, merge);
//!    - [`templates`] — `target.template` (data, metadata, templateFrom, mergePolicy);
//!    - [`target`] — the Secret itself — name, type, labels, hash, owner, creationPolicy;
//!    - [`status`] — the `Ready` condition, synced versions and when to sync again.
//!
//! Errors are [`SyncError`]s: each names the field at fault and the cause, carries a stable
//! `reason()` and says whether retrying can help. No secret value ever appears in one.

pub mod decode;
mod error;
pub mod fetch;
pub mod keys;
pub mod property;
pub mod rewrite;
pub mod status;
pub mod target;
pub mod templates;
pub mod values;

use std::collections::BTreeMap;

// The template module, under a short name the engine uses throughout.
pub(crate) use crate::template as tpl;

use k8s_openapi::api::core::v1::Secret;

use crate::api::{DeletionPolicy, ExternalSecret};
use crate::generator::GeneratorResolver;
use crate::provider::KubeAccess;
use crate::secret::SecretBytes;

pub use error::{StoreError, SyncError};
pub use fetch::{
    Fetched, FetchedDataFrom, FetchedTemplateSource, FetchedValue, ResolvedStore, StoreResolver,
    fetch,
};
pub use status::{failed_status, refresh_interval};
pub use target::{SyncOutcome, TargetAction};

/// Largest Secret kuvert writes: the sum of its keys and values, in bytes. Kubernetes refuses
/// bigger Secrets; failing here names the cause instead of an opaque API error.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Largest value one template may produce, in bytes.
pub const MAX_TEMPLATE_OUTPUT: usize = crate::template::MAX_OUTPUT_BYTES;

/// One key on its way to the Secret: its value and the field it came from (for errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: SecretBytes,
    /// The spec field that produced the key, e.g. `spec.dataFrom[1]`.
    pub origin: String,
}

/// Keys on their way to the Secret.
pub type Entries = BTreeMap<String, Entry>;

/// Syncs an ExternalSecret once: fetches through `stores`, `generators` and `kube`, then
/// [`build`]s.
///
/// `existing` is the target Secret as it is now (if any); `now` stamps the status.
pub async fn sync(
    es: &ExternalSecret,
    stores: &dyn StoreResolver,
    generators: &dyn GeneratorResolver,
    kube: &dyn KubeAccess,
    existing: Option<&Secret>,
    now: jiff::Timestamp,
) -> Result<SyncOutcome, SyncError> {
    status::check_spec(es)?;
    let fetched = fetch(es, stores, generators, kube).await?;
    build(es, &fetched, existing, now)
}

/// The pure middle of [`sync`]: given what was fetched, the desired Secret and status.
pub fn build(
    es: &ExternalSecret,
    fetched: &Fetched,
    existing: Option<&Secret>,
    now: jiff::Timestamp,
) -> Result<SyncOutcome, SyncError> {
    status::check_spec(es)?;
    let sourced = !es.spec.data.is_empty() || !es.spec.data_from.is_empty();
    if es.spec.deletion_policy() == DeletionPolicy::Delete && sourced && fetched.all_gone() {
        let (secret, action) = target::delete(es, existing)?;
        let status = status::deleted(es, fetched, secret.as_ref(), now);
        return Ok(SyncOutcome {
            secret,
            action,
            status,
            requeue_after: refresh_interval(es)?,
        });
    }
    let entries = collect(es, fetched)?;
    let template = es.spec.target.as_ref().and_then(|t| t.template.as_ref());
    let shaped = templates::apply(template, &entries, &fetched.template_from, now)?;
    let (secret, action, note) = target::build(es, shaped, existing)?;
    let status = status::synced(es, fetched, secret.as_ref(), note.as_deref(), now);
    Ok(SyncOutcome {
        secret,
        action,
        status,
        requeue_after: refresh_interval(es)?,
    })
}

/// `dataFrom[]` in order, then `data[]`: later keys win (ESO's rule). Entries whose remote
/// secret is gone (tolerated by `deletionPolicy`) contribute nothing.
fn collect(es: &ExternalSecret, fetched: &Fetched) -> Result<Entries, SyncError> {
    let mut out = Entries::new();
    for (i, (spec, got)) in es.spec.data_from.iter().zip(&fetched.data_from).enumerate() {
        if fetched.gone_data_from.contains(&i) {
            continue;
        }
        out.extend(values::expand_data_from(i, spec, got)?);
    }
    for (i, (spec, got)) in es.spec.data.iter().zip(&fetched.data).enumerate() {
        if fetched.gone_data.contains(&i) {
            continue;
        }
        let (key, entry) = values::shape_data(i, spec, got)?;
        out.insert(key, entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
