//! The target Secret: what `creationPolicy` lets kuvert write, and what it writes.
//!
//! - `Owner` (default): creates the Secret with a controller owner reference to the
//!   ExternalSecret, or updates the Secret that reference already marks as this one's. As ESO
//!   does, it adopts an existing Secret that no controller owns; and it adopts a Secret whose
//!   controller is ESO's ExternalSecret of the same name (a migration from ESO: the ESO owner
//!   reference is replaced, so deleting ESO's object no longer deletes the Secret). The sync's
//!   status message (and so its Event) says so. A Secret controlled by anything else is
//!   `NotOwned`: kuvert never overwrites what it does not own.
//! - `Orphan`: the same without an owner reference; it also updates a Secret kuvert wrote
//!   (labelled `kuvert.io/managed`) that no other controller owns.
//! - `Merge`: writes its keys into an existing Secret, keeping the others; a missing Secret
//!   is `SecretMissing` (retried: it may yet be created).
//! - `CreateOrMerge`: `Owner` when the Secret is missing, `Merge` when it exists.
//! - `None`: resolves everything, writes nothing.
//!
//! Merging records the keys it merged (`kuvert.io/merged-keys`) and, at the next sync, removes
//! those it no longer produces — never another key. With `deletionPolicy: Delete` and every
//! remote secret gone, [`delete`] names the Secret to delete, if kuvert may.
//!
//! Owner and Orphan replace the data and merge labels and annotations into the existing ones
//! (as ESO does, so other tools' annotations survive). Every written Secret carries
//! `kuvert.io/managed: "true"` and `kuvert.io/data-hash`, a SHA-256 of its data. A Secret that
//! is already immutable is never changed. Keys are checked as Secret keys here, once they are
//! final: a fetched key that a `Replace` template drops need not be a valid Secret key (it is
//! still reachable in templates as `data["a/b"]`). Kubernetes cannot change a Secret's
//! `type`: asking for another one is an error naming the field.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::{
    CreationPolicy, DATA_HASH_ANNOTATION, ExternalSecret, ExternalSecretStatus, MANAGED_LABEL,
    MERGED_KEYS_ANNOTATION,
};

use super::templates::Shaped;
use super::{Entries, MAX_SECRET_SIZE, SyncError, keys};

/// What the caller should do with [`SyncOutcome::secret`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// Create it.
    Create,
    /// Replace the existing Secret with it (it carries the existing `resourceVersion`).
    Update,
    /// The existing Secret is already as desired: write nothing.
    Unchanged,
    /// `creationPolicy: None`: there is no Secret to write.
    Skip,
    /// `deletionPolicy: Delete` and every remote secret is gone: delete the existing Secret
    /// (the caller deletes it on condition of its `uid` and `resourceVersion`).
    Delete,
}

/// The result of a successful sync. Its `Debug` shows the Secret's name and keys, never its
/// data (a `Secret`'s own `Debug` prints the bytes).
#[derive(Clone)]
pub struct SyncOutcome {
    /// The whole Secret as it should be after the write (`None` with `creationPolicy: None`).
    pub secret: Option<Secret>,
    /// What to do with it.
    pub action: TargetAction,
    /// The ExternalSecret's new status (the caller adds `syncedResourceVersion` after writing).
    pub status: ExternalSecretStatus,
    /// When to sync again (`None`: only on a change or a force-sync). Add jitter.
    pub requeue_after: Option<Duration>,
}

impl std::fmt::Debug for SyncOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = self.secret.as_ref().map(|s| {
            (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
                s.data
                    .iter()
                    .flatten()
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>(),
            )
        });
        f.debug_struct("SyncOutcome")
            .field("secret (namespace, name, keys)", &secret)
            .field("action", &self.action)
            .field("status", &self.status)
            .field("requeue_after", &self.requeue_after)
            .finish()
    }
}

/// The name of the target Secret.
pub fn secret_name(es: &ExternalSecret) -> String {
    es.spec
        .target
        .as_ref()
        .and_then(|t| t.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| es.metadata.name.clone().unwrap_or_default())
}

/// Builds the Secret to write. The third value is a note for the status message.
pub fn build(
    es: &ExternalSecret,
    shaped: Shaped,
    existing: Option<&Secret>,
) -> Result<(Option<Secret>, TargetAction, Option<String>), SyncError> {
    check_keys(&shaped.data)?;
    check_labels(&shaped.labels)?;
    check_metadata_keys("annotations", &shaped.annotations)?;
    let target = es.spec.target.clone().unwrap_or_default();
    let namespace = es
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let name = secret_name(es);
    let display = format!("{namespace}/{name}");
    let policy = target.creation_policy.unwrap_or_default();
    let data: BTreeMap<String, ByteString> = shaped
        .data
        .into_iter()
        .map(|(k, e)| (k, ByteString(e.value.into_inner())))
        .collect();
    if policy == CreationPolicy::None {
        check_size(&display, &data)?;
        return Ok((None, TargetAction::Skip, None));
    }
    let owner_ref = es.controller_owner_ref(&());
    // Why an existing Secret is adopted (`Owner` only), for the status message.
    let mut adopted: Option<&'static str> = None;
    let merging = match (policy, existing) {
        (CreationPolicy::Merge, None) => {
            return Err(SyncError::SecretMissing { secret: display });
        }
        (CreationPolicy::Merge | CreationPolicy::CreateOrMerge, Some(_)) => true,
        (_, None) => false,
        (CreationPolicy::Owner, Some(s)) => {
            if !owned_by(s, es) {
                adopted = Some(adoption(s, es).ok_or_else(|| not_owned(display.clone(), s))?);
            }
            false
        }
        (CreationPolicy::Orphan, Some(s)) => {
            let ours = owned_by(s, es)
                || (is_managed(s) && !s.owner_references().iter().any(is_controller));
            if !ours {
                return Err(not_owned(display, s));
            }
            false
        }
        // `None` returned above.
        (CreationPolicy::None, Some(_)) => false,
    };

    let mut secret = match existing {
        Some(s) => {
            let mut s = s.clone();
            if let Some(string_data) = s.string_data.take() {
                let d = s.data.get_or_insert_default();
                for (k, v) in string_data {
                    d.insert(k, ByteString(v.into_bytes()));
                }
            }
            s
        }
        None => Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        },
    };
    let before = secret.clone();

    // Data: merged into the existing keys, or ours alone. Merging drops the keys kuvert merged
    // last time and produces no more (a key gone from the spec, or a remote secret gone under
    // `deletionPolicy: Merge`); it never touches the Secret's other keys.
    let merged_keys = merging.then(|| data.keys().cloned().collect::<Vec<_>>().join(","));
    let mut all = if merging {
        let mut kept = secret.data.take().unwrap_or_default();
        for key in previously_merged(&secret) {
            if !data.contains_key(key) {
                kept.remove(key);
            }
        }
        kept
    } else {
        BTreeMap::new()
    };
    all.extend(data);
    check_size(&display, &all)?;

    // Type: Kubernetes never changes it.
    let existing_type = existing.map(|s| s.type_.clone().unwrap_or_else(|| "Opaque".to_owned()));
    let wanted_type = shaped
        .type_
        .clone()
        .or(existing_type.clone())
        .unwrap_or_else(|| "Opaque".to_owned());
    if let Some(current) = &existing_type
        && *current != wanted_type
    {
        return Err(SyncError::InvalidSpec {
            field: "spec.target.template.type".to_owned(),
            message: format!(
                "Secret {display} has type {current:?}; a Secret's type cannot change (delete the Secret to recreate it as {wanted_type:?})"
            ),
        });
    }
    secret.type_ = Some(wanted_type);

    let meta = &mut secret.metadata;
    if meta.deletion_timestamp.is_none() {
        for finalizer in &shaped.finalizers {
            let finalizers = meta.finalizers.get_or_insert_default();
            if !finalizers.contains(finalizer) {
                finalizers.push(finalizer.clone());
            }
        }
    }
    let labels = meta.labels.get_or_insert_default();
    labels.extend(shaped.labels);
    labels.insert(MANAGED_LABEL.to_owned(), "true".to_owned());
    let annotations = meta.annotations.get_or_insert_default();
    annotations.extend(shaped.annotations);
    annotations.insert(DATA_HASH_ANNOTATION.to_owned(), data_hash(&all));
    match merged_keys {
        Some(keys) => annotations.insert(MERGED_KEYS_ANNOTATION.to_owned(), keys),
        None => annotations.remove(MERGED_KEYS_ANNOTATION),
    };

    // Owner reference: set when kuvert creates (Owner, CreateOrMerge) or owns (Owner) the
    // Secret; dropped when the policy became Orphan; left alone when merging.
    let owns = matches!(policy, CreationPolicy::Owner)
        || (policy == CreationPolicy::CreateOrMerge && existing.is_none());
    if !merging {
        let refs = meta.owner_references.get_or_insert_default();
        let drop_esos = adopted.is_some();
        refs.retain(|r| !(refers_to(r, es) || (drop_esos && is_esos(r, es))));
        if owns && let Some(owner_ref) = owner_ref {
            refs.push(owner_ref);
        }
        if refs.is_empty() {
            meta.owner_references = None;
        }
    }
    secret.data = Some(all);
    if target.immutable == Some(true) {
        secret.immutable = Some(true);
    }

    match existing {
        None => Ok((Some(secret), TargetAction::Create, None)),
        Some(_) if secret == before => Ok((Some(secret), TargetAction::Unchanged, None)),
        Some(current) if current.immutable == Some(true) => Ok((
            Some(before),
            TargetAction::Unchanged,
            Some(format!(
                "Secret {display} is immutable and was kept as it is; delete it to write new data"
            )),
        )),
        Some(_) => Ok((
            Some(secret),
            TargetAction::Update,
            adopted.map(|why| format!("adopted the existing Secret {display}: {why}")),
        )),
    }
}

/// Why `creationPolicy: Owner` may take over an existing Secret it does not own, if it may.
fn adoption(s: &Secret, es: &ExternalSecret) -> Option<&'static str> {
    match s.owner_references().iter().find(|r| is_controller(r)) {
        None => Some("it had no controller"),
        Some(r) if is_esos(r, es) => Some("it was ESO's, from the ExternalSecret of the same name"),
        Some(_) => None,
    }
}

/// An owner reference to ESO's ExternalSecret of this ExternalSecret's name (owner references
/// are namespace-local, so it is the one in the same namespace).
fn is_esos(r: &OwnerReference, es: &ExternalSecret) -> bool {
    r.kind == "ExternalSecret"
        && r.api_version.starts_with("external-secrets.io/")
        && Some(&r.name) == es.metadata.name.as_ref()
}

/// Which keys of a Secret's data a write changes: names only, never values. Rotations leave an
/// audit trail with them (an Event and a log line), so each names what changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyChanges {
    /// Keys the Secret did not have.
    pub added: Vec<String>,
    /// Keys whose value changed.
    pub changed: Vec<String>,
    /// Keys the Secret no longer has.
    pub removed: Vec<String>,
}

impl KeyChanges {
    /// The keys `after` adds, changes or removes compared with `before`, in key order.
    pub fn between(before: &Secret, after: &Secret) -> Self {
        let empty = BTreeMap::new();
        let old = before.data.as_ref().unwrap_or(&empty);
        let new = after.data.as_ref().unwrap_or(&empty);
        let mut changes = KeyChanges::default();
        for (key, value) in new {
            match old.get(key) {
                None => changes.added.push(key.clone()),
                Some(previous) if previous != value => changes.changed.push(key.clone()),
                Some(_) => {}
            }
        }
        changes.removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        changes
    }

    /// Whether the data stays as it was.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for KeyChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [
            ("changed", &self.changed),
            ("added", &self.added),
            ("removed", &self.removed),
        ];
        let mut first = true;
        for (what, keys) in parts.into_iter().filter(|(_, keys)| !keys.is_empty()) {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            let noun = if keys.len() == 1 { "key" } else { "keys" };
            write!(f, "{what} {noun} {}", keys.join(", "))?;
        }
        Ok(())
    }
}

/// A digest of the metadata [`build`] writes into a Secret: labels, annotations (the data
/// hash among them) and owner references. Lets a cache of the Secrets kuvert manages keep one
/// number per Secret instead of its metadata.
pub fn metadata_digest(meta: &ObjectMeta) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    for r in meta.owner_references.iter().flatten() {
        (&r.api_version, &r.kind, &r.name, &r.uid).hash(&mut hasher);
        (r.controller, r.block_owner_deletion).hash(&mut hasher);
    }
    hasher.finish()
}

/// Whether [`build`] against the Secret kuvert last wrote would find nothing to change, knowing
/// that Secret only by the [`metadata_digest`] of its metadata (from a cache whose
/// `resourceVersion` shows the Secret is unchanged since kuvert wrote it). `fresh` is what
/// [`build`] made without an existing Secret. Lets a refresh that reads the same values skip
/// reading the whole Secret.
///
/// Conservative: `false` means "read the Secret and build again" (so does a label another tool
/// added). Only `Owner` and `Orphan` qualify (their data is kuvert's alone, so the data hash
/// annotation stands for it), and only at the generation last synced, so the type and
/// `immutable` kuvert would write are those it wrote.
pub fn unchanged_since_written(es: &ExternalSecret, fresh: &Secret, written: u64) -> bool {
    let policy = es.spec.creation_policy();
    let status = es.status.as_ref();
    let same_spec = es.metadata.generation.is_some()
        && status.and_then(|s| s.observed_generation) == es.metadata.generation;
    matches!(policy, CreationPolicy::Owner | CreationPolicy::Orphan)
        && same_spec
        && metadata_digest(&fresh.metadata) == written
}

/// `deletionPolicy: Delete` with every remote secret gone: the Secret to delete, if any. Only a
/// Secret kuvert may write under `creationPolicy` is deleted; any other is `NotOwned`.
pub fn delete(
    es: &ExternalSecret,
    existing: Option<&Secret>,
) -> Result<(Option<Secret>, TargetAction), SyncError> {
    let policy = es.spec.creation_policy();
    let Some(secret) = existing.filter(|_| policy != CreationPolicy::None) else {
        return Ok((None, TargetAction::Skip));
    };
    let ours = owned_by(secret, es)
        || (policy == CreationPolicy::Orphan
            && is_managed(secret)
            && !secret.owner_references().iter().any(is_controller));
    if !ours {
        let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
        return Err(not_owned(
            format!("{namespace}/{}", secret_name(es)),
            secret,
        ));
    }
    Ok((Some(secret.clone()), TargetAction::Delete))
}

/// A stable hash of a Secret's data: SHA-256 over every key and value, each length-prefixed
/// so that no two maps share an input, in hex.
pub fn data_hash(data: &BTreeMap<String, ByteString>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in data {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.0.len() as u64).to_be_bytes());
        hasher.update(&v.0);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_keys(data: &Entries) -> Result<(), SyncError> {
    for (key, entry) in data {
        keys::validate(key).map_err(|problem| SyncError::InvalidKey {
            field: entry.origin.clone(),
            key: key.clone(),
            problem,
        })?;
    }
    Ok(())
}

/// Label and annotation keys as the API server checks them (a qualified name): an optional
/// prefix, a DNS subdomain of at most 253 characters, and `/`; then a name of 1 to 63
/// letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit. Checked here
/// so that a templated key is an `InvalidSpec` naming the field, not a 422 from the API server.
fn check_metadata_keys(what: &str, map: &BTreeMap<String, String>) -> Result<(), SyncError> {
    for key in map.keys() {
        if let Err(problem) = qualified_name(key) {
            return Err(SyncError::InvalidSpec {
                field: format!("spec.target.template.metadata.{what}[{key:?}]"),
                message: format!("invalid key: {problem}"),
            });
        }
    }
    Ok(())
}

/// Why `key` is not a Kubernetes qualified name.
fn qualified_name(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(label_ok) {
            return Err(
                "the prefix before '/' must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)",
            );
        }
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(name.chars().next())
        && alnum(name.chars().last());
    if !name_ok {
        return Err(
            "the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, after an optional 'prefix/'",
        );
    }
    Ok(())
}

/// Label values as the API server checks them: at most 63 characters, alphanumerics, `-`,
/// `_` and `.`, starting and ending with an alphanumeric (or empty); and their keys.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), SyncError> {
    check_metadata_keys("labels", labels)?;
    for (key, value) in labels {
        let ok = value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value
                .chars()
                .next()
                .is_none_or(|c| c.is_ascii_alphanumeric())
            && value
                .chars()
                .last()
                .is_none_or(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(SyncError::InvalidSpec {
                field: format!("spec.target.template.metadata.labels[{key:?}]"),
                message: "a label value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit".to_owned(),
            });
        }
    }
    Ok(())
}

fn check_size(display: &str, data: &BTreeMap<String, ByteString>) -> Result<(), SyncError> {
    let size: usize = data.iter().map(|(k, v)| k.len() + v.0.len()).sum();
    if size > MAX_SECRET_SIZE {
        return Err(SyncError::TooLarge {
            field: "spec.target".to_owned(),
            what: format!("the data of Secret {display}"),
            size,
            limit: MAX_SECRET_SIZE,
        });
    }
    Ok(())
}

/// The keys kuvert merged into `secret` at its last write.
fn previously_merged(secret: &Secret) -> Vec<&str> {
    secret
        .annotations()
        .get(MERGED_KEYS_ANNOTATION)
        .map(|keys| keys.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default()
}

fn is_controller(r: &OwnerReference) -> bool {
    r.controller == Some(true)
}

fn is_managed(s: &Secret) -> bool {
    s.labels().get(MANAGED_LABEL).map(String::as_str) == Some("true")
}

/// Whether an owner reference points at this ExternalSecret (by uid when it has one).
fn refers_to(r: &OwnerReference, es: &ExternalSecret) -> bool {
    r.kind == "ExternalSecret"
        && r.api_version.starts_with("kuvert.io/")
        && Some(&r.name) == es.metadata.name.as_ref()
        && es.metadata.uid.as_ref().is_none_or(|uid| *uid == r.uid)
}

fn owned_by(s: &Secret, es: &ExternalSecret) -> bool {
    s.owner_references()
        .iter()
        .any(|r| is_controller(r) && refers_to(r, es))
}

fn not_owned(secret: String, s: &Secret) -> SyncError {
    let owner = match s.owner_references().iter().find(|r| is_controller(r)) {
        Some(r) => format!("its controller is {} {}", r.kind, r.name),
        None if is_managed(s) => "it has no owner reference to this ExternalSecret".to_owned(),
        None => "kuvert did not create it".to_owned(),
    };
    SyncError::NotOwned { secret, owner }
}
