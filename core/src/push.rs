//! PushSecret: the pure rules. From the source Secret's data and the spec, what goes where
//! ([`desired`]); from the previous status, what to take back ([`removals`]); and the status
//! that says what happened ([`status`]). The operator's controller only does the I/O around
//! them (read the source, call each store's `push` / `delete`, write the status).
//!
//! - **Values.** The source keys (with `conversionStrategy: Unicode`, `_Uxxxx_` sequences
//!   turned back into their characters, as ESO's `ReverseUnicode`) go through `spec.template`
//!   (the ExternalSecret engine's templates, `templateFrom` ConfigMaps and Secrets read by the
//!   operator as for ExternalSecrets; fields named `spec.template...`), then each
//!   `data[]` entry takes its `match.secretKey`, or, without one, the whole Secret as one JSON
//!   object of text values.
//! - **Ownership.** Every push carries the owner `namespace/name`; providers refuse to write or
//!   delete what another owner (or no kuvert at all) wrote, answering `Conflict`.
//! - **Status.** `syncedPushSecrets` maps each store to the remote keys (`remoteKey`, or
//!   `remoteKey/property`) kuvert holds there for this PushSecret, with the entry that put them
//!   there: never a value. What is listed there is what `deletionPolicy: Delete` removes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ConversionStrategy, PushSecret, PushSecretData, PushSecretDeletionPolicy, PushSecretStatus,
    PushSecretUpdatePolicy,
};
use crate::engine::fetch::FetchedTemplateSource;
use crate::engine::{Entries, Entry, SyncError};
use crate::secret::SecretBytes;

/// The finalizer of a PushSecret whose `deletionPolicy` is `Delete`: it stays until what was
/// pushed is removed.
pub const FINALIZER: &str = "kuvert.io/push-secret";

/// `refreshInterval` when none is set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// Where pushed things are listed in the status: one store's remote keys.
pub type Synced = BTreeMap<String, BTreeMap<String, PushSecretData>>;

/// Why a push failed, with a stable reason.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The spec is wrong; only a change helps.
    #[error("{field}: {message}")]
    InvalidSpec {
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The source Secret has no such key.
    #[error("{field}: the source Secret has no key {key:?}")]
    KeyNotFound {
        /// The `secretKey` field.
        field: String,
        /// The key.
        key: String,
    },
    /// A template failed.
    #[error(transparent)]
    Template(#[from] SyncError),
}

impl PushError {
    /// A stable PascalCase category: the condition and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::InvalidSpec { .. } => "InvalidSpec",
            PushError::KeyNotFound { .. } => "SecretKeyNotFound",
            PushError::Template(_) => "TemplateError",
        }
    }
}

/// One value to write: where, and the entry it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The remote key.
    pub remote_key: String,
    /// The property of the remote secret; `None`: the whole secret.
    pub property: Option<String>,
    /// The value.
    pub value: SecretBytes,
    /// The `data[]` entry, as recorded in the status.
    pub data: PushSecretData,
}

impl Desired {
    /// Its key in `syncedPushSecrets`.
    pub fn status_key(&self) -> String {
        status_key(&self.remote_key, self.property.as_deref())
    }
}

/// A remote key in `syncedPushSecrets`: `remoteKey`, or `remoteKey/property` (as ESO lists it).
pub fn status_key(remote_key: &str, property: Option<&str>) -> String {
    match property {
        Some(p) if !p.is_empty() => format!("{remote_key}/{p}"),
        _ => remote_key.to_owned(),
    }
}

/// The owner recorded with every push: `namespace/name` of the PushSecret.
pub fn owner(ps: &PushSecret) -> String {
    format!(
        "{}/{}",
        ps.metadata.namespace.as_deref().unwrap_or_default(),
        ps.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `updatePolicy`, defaulted.
pub fn update_policy(ps: &PushSecret) -> PushSecretUpdatePolicy {
    ps.spec.update_policy.unwrap_or_default()
}

/// Whether removed entries (and everything, on deletion) are deleted from the stores.
pub fn deletes(ps: &PushSecret) -> bool {
    ps.spec.deletion_policy.unwrap_or_default() == PushSecretDeletionPolicy::Delete
}

/// How long until the next push: `refreshInterval` (default 1h); `None` for `0` (push on
/// changes only).
pub fn refresh_interval(ps: &PushSecret) -> Result<Option<Duration>, PushError> {
    let Some(text) = ps.spec.refresh_interval.as_deref() else {
        return Ok(Some(DEFAULT_REFRESH));
    };
    let interval =
        crate::engine::status::parse_go_duration(text).ok_or_else(|| PushError::InvalidSpec {
            field: "spec.refreshInterval".to_owned(),
            message: format!("{text:?} is not a duration such as 1h or 30m"),
        })?;
    Ok((!interval.is_zero()).then_some(interval))
}

/// Turns `_Uxxxx_` sequences (what `conversionStrategy: Unicode` makes of a character) back into
/// the character; anything else is kept as written.
pub fn reverse_unicode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(at) = rest.find("_U") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let decoded = tail.find('_').and_then(|end| {
            let hex = &tail[..end];
            (hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
                .flatten()
                .map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str("_U");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What to write, in `data[]` order, from the source Secret's `data`. `sources` are what
/// `spec.template.templateFrom[]` read ([`crate::engine::fetch::template_sources`]); `now` is
/// the templates' `now()`.
pub fn desired(
    ps: &PushSecret,
    source: &BTreeMap<String, SecretBytes>,
    sources: &[FetchedTemplateSource],
    now: jiff::Timestamp,
) -> Result<Vec<Desired>, PushError> {
    let mut out: Vec<Desired> = Vec::with_capacity(ps.spec.data.len());
    let mut shaped_by_strategy: BTreeMap<bool, BTreeMap<String, SecretBytes>> = BTreeMap::new();
    for (i, data) in ps.spec.data.iter().enumerate() {
        let field = format!("spec.data[{i}]");
        let reverse = data.conversion_strategy == Some(ConversionStrategy::Unicode);
        let values = match shaped_by_strategy.get(&reverse) {
            Some(values) => values,
            None => {
                let shaped = shape(ps, source, sources, reverse, now)?;
                shaped_by_strategy.entry(reverse).or_insert(shaped)
            }
        };
        let remote = &data.match_.remote_ref;
        if remote.remote_key.is_empty() {
            return Err(PushError::InvalidSpec {
                field: format!("{field}.match.remoteRef.remoteKey"),
                message: "the remote key may not be empty".to_owned(),
            });
        }
        let property = remote.property.clone().filter(|p| !p.is_empty());
        let value = match &data.match_.secret_key {
            Some(key) => values
                .get(key)
                .cloned()
                .ok_or_else(|| PushError::KeyNotFound {
                    field: format!("{field}.match.secretKey"),
                    key: key.clone(),
                })?,
            None => whole(&field, values)?,
        };
        let next = Desired {
            remote_key: remote.remote_key.clone(),
            property,
            value,
            data: data.clone(),
        };
        if let Some(j) = out.iter().position(|d| d.status_key() == next.status_key()) {
            return Err(PushError::InvalidSpec {
                field: format!("{field}.match.remoteRef"),
                message: format!(
                    "{:?} is already written by spec.data[{j}]",
                    next.status_key()
                ),
            });
        }
        out.push(next);
    }
    Ok(out)
}

/// The source keys, reversed if asked, through `spec.template`.
fn shape(
    ps: &PushSecret,
    source: &BTreeMap<String, SecretBytes>,
    sources: &[FetchedTemplateSource],
    reverse: bool,
    now: jiff::Timestamp,
) -> Result<BTreeMap<String, SecretBytes>, PushError> {
    let entries: Entries = source
        .iter()
        .map(|(k, v)| {
            let key = if reverse {
                reverse_unicode(k)
            } else {
                k.clone()
            };
            (
                key,
                Entry {
                    value: v.clone(),
                    origin: "spec.selector.secret".to_owned(),
                },
            )
        })
        .collect();
    let shaped = crate::engine::templates::apply_at(
        "spec.template",
        ps.spec.template.as_ref(),
        &entries,
        sources,
        now,
    )?;
    Ok(shaped.data.into_iter().map(|(k, e)| (k, e.value)).collect())
}

/// The whole Secret as one JSON object of text values.
fn whole(field: &str, values: &BTreeMap<String, SecretBytes>) -> Result<SecretBytes, PushError> {
    let mut object = serde_json::Map::new();
    for (key, value) in values {
        let text = value.expose_str().ok_or_else(|| PushError::InvalidSpec {
            field: format!("{field}.match.secretKey"),
            message: format!(
                "key {key:?} is binary; pushing the whole Secret as JSON needs text values (name the key in secretKey)"
            ),
        })?;
        object.insert(key.clone(), serde_json::Value::String(text.to_owned()));
    }
    Ok(SecretBytes::new(
        serde_json::to_vec(&object).expect("a map of strings serialises"),
    ))
}

/// One remote key to take back: in store `store` (display name), `remote_key` and `property`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Removal {
    /// The store, as in `syncedPushSecrets`.
    pub store: String,
    /// The remote key.
    pub remote_key: String,
    /// The property; `None`: the whole secret.
    pub property: Option<String>,
}

/// What was pushed before (`previous`) and is no longer wanted: in a store not in `stores`, or
/// at a remote key no entry of `desired` writes. Empty unless `deletionPolicy` is `Delete`; on
/// deletion of the PushSecret pass no stores.
pub fn removals(
    ps: &PushSecret,
    previous: &Synced,
    stores: &[String],
    desired: &[Desired],
) -> Vec<Removal> {
    if !deletes(ps) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (store, keys) in previous {
        let store_kept = stores.contains(store);
        for (key, data) in keys {
            if store_kept && desired.iter().any(|d| d.status_key() == *key) {
                continue;
            }
            let remote = &data.match_.remote_ref;
            out.push(Removal {
                store: store.clone(),
                remote_key: remote.remote_key.clone(),
                property: remote.property.clone().filter(|p| !p.is_empty()),
            });
        }
    }
    out
}

/// The condition reasons a PushSecret reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Everything was pushed (or, with `IfNotExists`, already there).
    Synced,
    /// A remote secret belongs to someone else; it was left untouched.
    Conflict,
    /// A store is missing, refused this namespace, could not be logged in to, or could not be
    /// reached.
    StoreNotReady,
    /// The source Secret does not exist.
    SecretNotFound,
    /// A store refused or failed a write or a delete.
    PushFailed,
    /// The spec, a key or a template is wrong.
    Errored,
}

impl Reason {
    /// The reason as written in the condition and the Event.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Conflict => "Conflict",
            Reason::StoreNotReady => "StoreNotReady",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::PushFailed => "PushFailed",
            Reason::Errored => "Errored",
        }
    }
}

/// The status after a reconcile: `synced` lists what kuvert holds now, `failure` is the first
/// problem (none: `Synced`); `refreshTime` is `now`.
pub fn status(
    ps: &PushSecret,
    synced: Synced,
    failure: Option<(Reason, String)>,
    source_version: Option<String>,
    now: jiff::Timestamp,
) -> PushSecretStatus {
    let previous = ps.status.clone().unwrap_or_default();
    let (ready, reason, message) = match failure {
        None => {
            let count: usize = synced.values().map(BTreeMap::len).sum();
            (
                true,
                Reason::Synced,
                format!(
                    "{count} remote secret{} pushed to {} store{}",
                    if count == 1 { "" } else { "s" },
                    synced.len(),
                    if synced.len() == 1 { "" } else { "s" }
                ),
            )
        }
        Some((reason, message)) => (false, reason, message),
    };
    let condition = crate::conditions::ready(
        &previous.conditions,
        ready,
        reason.as_str(),
        &message,
        ps.metadata.generation,
        now,
    );
    PushSecretStatus {
        conditions: vec![condition],
        refresh_time: Some(Time(now)),
        synced_resource_version: source_version.or(previous.synced_resource_version),
        synced_push_secrets: synced.into_iter().filter(|(_, k)| !k.is_empty()).collect(),
    }
}

#[cfg(test)]
mod tests;
