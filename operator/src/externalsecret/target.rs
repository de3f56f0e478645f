//! What kuvert knows of an ExternalSecret's target Secret without reading it.
//!
//! The controller watches the Secrets it manages (label-selected, metadata only) into a
//! cache. The status records the `resourceVersion` of the Secret as kuvert last wrote it, and
//! any change to a Secret changes its `resourceVersion`: a cached Secret at that version is
//! exactly what kuvert wrote, so it is in sync and need not be read. A reconcile woken by
//! kuvert's own writes, or due for a refresh that reads the same values, then costs no
//! Kubernetes request. Anything the cache cannot prove (it is not filled yet, another
//! version, a Secret kuvert merges into) is read from the API server as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kuvert_core::api::{CreationPolicy, ExternalSecret};

use super::decide::{TargetState, target_state};

/// The managed Secrets' metadata, and whether the cache has been filled yet.
#[derive(Clone)]
pub struct TargetCache {
    store: Store<PartialObjectMeta<Secret>>,
    ready: Arc<AtomicBool>,
}

impl TargetCache {
    /// A cache over `store`, not trusted until [`TargetCache::set_ready`].
    pub fn new(store: Store<PartialObjectMeta<Secret>>) -> Self {
        TargetCache {
            store,
            ready: Arc::default(),
        }
    }

    /// The store behind the cache (to wait for it to fill).
    pub fn store(&self) -> &Store<PartialObjectMeta<Secret>> {
        &self.store
    }

    /// The store has been filled: its absences mean something from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// What the cache proves of `es`'s target Secret `namespace/name`; `None`: read it.
    pub fn known(&self, es: &ExternalSecret, namespace: &str, name: &str) -> Option<Known> {
        let ready = self.ready.load(Ordering::Acquire);
        let cached = ready
            .then(|| self.store.get(&ObjectRef::new(name).within(namespace)))
            .flatten();
        known(es, ready, cached)
    }
}

/// The target Secret as far as a reconcile knows it.
#[derive(Clone, Debug)]
pub enum Known {
    /// Read from the API server (`None`: there is none).
    Read(Option<Box<Secret>>),
    /// Exactly as kuvert last wrote it, known by its cached metadata.
    AsWritten(Arc<PartialObjectMeta<Secret>>),
    /// Not needed (`creationPolicy: None`), or most likely missing: no managed Secret is
    /// cached and kuvert never wrote one. A Secret kuvert does not manage may still exist;
    /// creating the target then fails with AlreadyExists and the Secret is read.
    ProbablyMissing,
}

impl Known {
    /// The target's state for [`super::decide::decide`].
    pub fn state(&self, es: &ExternalSecret) -> TargetState {
        match self {
            Known::Read(secret) => target_state(es, secret.as_deref()),
            Known::AsWritten(_) => TargetState::InSync,
            Known::ProbablyMissing => target_state(es, None),
        }
    }

    /// The `resourceVersion` of the Secret as known.
    pub fn resource_version(&self) -> Option<&str> {
        match self {
            Known::Read(secret) => secret.as_ref()?.metadata.resource_version.as_deref(),
            Known::AsWritten(meta) => meta.metadata.resource_version.as_deref(),
            Known::ProbablyMissing => None,
        }
    }
}

/// The rule behind [`TargetCache::known`]: `cached` is the managed Secret the cache holds
/// under the target's name, meaningful only once the cache is `ready`.
pub fn known(
    es: &ExternalSecret,
    ready: bool,
    cached: Option<Arc<PartialObjectMeta<Secret>>>,
) -> Option<Known> {
    let policy = es.spec.creation_policy();
    if policy == CreationPolicy::None {
        return Some(Known::ProbablyMissing);
    }
    if !ready {
        return None;
    }
    let written = es
        .status
        .as_ref()
        .and_then(|s| s.synced_resource_version.as_deref());
    match (cached, written) {
        (Some(meta), Some(written))
            if meta.metadata.resource_version.as_deref() == Some(written) =>
        {
            Some(Known::AsWritten(meta))
        }
        // Merging needs the Secret's other keys; a first Owner/Orphan sync creates it.
        (None, None) if matches!(policy, CreationPolicy::Owner | CreationPolicy::Orphan) => {
            Some(Known::ProbablyMissing)
        }
        // Changed by someone, or the cache has not seen kuvert's last write yet.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use kuvert_core::api::{ExternalSecretSpec, ExternalSecretStatus, ExternalSecretTarget};

    use super::*;

    fn es(policy: CreationPolicy, written: Option<&str>) -> ExternalSecret {
        let mut es = ExternalSecret::new(
            "app",
            ExternalSecretSpec {
                target: Some(ExternalSecretTarget {
                    creation_policy: Some(policy),
                    ..ExternalSecretTarget::default()
                }),
                ..ExternalSecretSpec::default()
            },
        );
        es.status = Some(ExternalSecretStatus {
            synced_resource_version: written.map(str::to_owned),
            ..ExternalSecretStatus::default()
        });
        es
    }

    fn cached(resource_version: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        let mut meta = PartialObjectMeta::<Secret>::default();
        meta.metadata.resource_version = Some(resource_version.to_owned());
        Some(Arc::new(meta))
    }

    fn name(known: Option<Known>) -> &'static str {
        match known {
            None => "read",
            Some(Known::Read(_)) => "Read",
            Some(Known::AsWritten(_)) => "AsWritten",
            Some(Known::ProbablyMissing) => "ProbablyMissing",
        }
    }

    #[test]
    fn a_cached_secret_at_the_version_kuvert_wrote_is_in_sync_without_a_read() {
        let owner = es(CreationPolicy::Owner, Some("7"));
        let found = known(&owner, true, cached("7")).expect("known from the cache");
        assert_eq!(found.state(&owner), TargetState::InSync);
        assert_eq!(found.resource_version(), Some("7"));
        // Merging policies too: deciding needs no read, building still does.
        let merge = es(CreationPolicy::Merge, Some("7"));
        assert_eq!(name(known(&merge, true, cached("7"))), "AsWritten");
    }

    #[test]
    fn another_version_or_a_missing_cache_entry_after_a_write_is_read() {
        let owner = es(CreationPolicy::Owner, Some("7"));
        assert_eq!(
            name(known(&owner, true, cached("8"))),
            "read",
            "changed by someone"
        );
        assert_eq!(
            name(known(&owner, true, None)),
            "read",
            "deleted, or not seen yet"
        );
        assert_eq!(
            name(known(&owner, false, cached("7"))),
            "read",
            "cache not filled"
        );
    }

    #[test]
    fn a_never_written_owner_or_orphan_target_is_probably_missing_once_the_cache_is_filled() {
        for policy in [CreationPolicy::Owner, CreationPolicy::Orphan] {
            let object = es(policy, None);
            let found = known(&object, true, None).expect("known from the cache");
            assert_eq!(found.state(&object), TargetState::Missing);
            assert_eq!(found.resource_version(), None);
            assert_eq!(name(known(&object, false, None)), "read");
            assert_eq!(name(known(&object, true, cached("3"))), "read");
        }
        for policy in [CreationPolicy::Merge, CreationPolicy::CreateOrMerge] {
            assert_eq!(name(known(&es(policy, None), true, None)), "read");
        }
    }

    #[test]
    fn creation_policy_none_never_reads_the_secret() {
        let object = es(CreationPolicy::None, None);
        let found = known(&object, false, None).expect("nothing to read");
        assert_eq!(found.state(&object), TargetState::InSync);
    }
}
