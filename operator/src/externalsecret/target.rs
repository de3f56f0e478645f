//! What kuvert knows of an ExternalSecret's target Secret without reading it.
//!
//! The controller watches the Secrets it manages (label-selected, metadata only) into a
//! cache. The status records the `resourceVersion` of the Secret as kuvert last wrote it, and
//! any change to a Secret changes its `resourceVersion`: a cached Secret at that version is
//! exactly what kuvert wrote, so it is in sync and need not be read. A reconcile woken by
//! kuvert's own writes, or due for a refresh that reads the same values, then costs no
//! Kubernetes request. Anything the cache cannot prove (it is not filled yet, another
//! version, a Secret kuvert merges into) is read from the API server as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kuvert_core::api::{CreationPolicy, DATA_HASH_ANNOTATION, ExternalSecret};
use kuvert_core::engine::target::metadata_digest;

use kuvert_core::decide::{TargetState, target_state};

/// What the cache keeps of a managed Secret: enough to know it is as kuvert wrote it, in about
/// a hundred bytes (its metadata would take over a kilobyte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    /// Its `resourceVersion`.
    pub resource_version: String,
    /// [`metadata_digest`] of its metadata.
    pub digest: u64,
    /// Its `kuvert.io/data-hash` (SHA-256, hex-decoded to save 32 bytes), for rollout restarts.
    pub data_hash: Option<[u8; 32]>,
}

impl Cached {
    fn of(secret: &PartialObjectMeta<Secret>) -> Self {
        Cached {
            resource_version: secret.resource_version().unwrap_or_default(),
            digest: metadata_digest(&secret.metadata),
            data_hash: secret
                .annotations()
                .get(DATA_HASH_ANNOTATION)
                .and_then(|h| decode_hash(h)),
        }
    }

    /// Its data hash as the annotation holds it.
    pub fn data_hash(&self) -> Option<String> {
        self.data_hash.map(|h| encode_hash(&h))
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn encode_hash(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The managed Secrets by `namespace/name`, filled from the controller's watch of them.
#[derive(Clone)]
pub struct TargetCache {
    secrets: Arc<Mutex<Secrets>>,
    /// Turns true when the first list completes (never back: a relist keeps the old view).
    listed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for TargetCache {
    fn default() -> Self {
        TargetCache {
            secrets: Arc::default(),
            listed: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

#[derive(Default)]
struct Secrets {
    current: HashMap<String, Cached>,
    /// A (re)list in progress; replaces `current` when complete.
    listing: Option<HashMap<String, Cached>>,
    /// A first list has completed: absences mean something.
    ready: bool,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn key_of(secret: &PartialObjectMeta<Secret>) -> String {
    key(&secret.namespace().unwrap_or_default(), &secret.name_any())
}

impl TargetCache {
    /// Applies one event of the managed Secrets' watch.
    pub fn apply(&self, event: &watcher::Event<PartialObjectMeta<Secret>>) {
        let mut secrets = self.secrets.lock().expect("target cache lock");
        match event {
            watcher::Event::Apply(s) => {
                secrets.current.insert(key_of(s), Cached::of(s));
            }
            watcher::Event::Delete(s) => {
                secrets.current.remove(&key_of(s));
            }
            watcher::Event::Init => secrets.listing = Some(HashMap::new()),
            watcher::Event::InitApply(s) => {
                if let Some(listing) = secrets.listing.as_mut() {
                    listing.insert(key_of(s), Cached::of(s));
                }
            }
            watcher::Event::InitDone => {
                if let Some(mut listed) = secrets.listing.take() {
                    listed.shrink_to_fit();
                    secrets.current = listed;
                }
                secrets.ready = true;
                self.listed.send_replace(true);
            }
        }
    }

    /// The data hash of the managed Secret `namespace/name`, as cached.
    pub fn data_hash(&self, namespace: &str, name: &str) -> Option<String> {
        let secrets = self.secrets.lock().expect("target cache lock");
        secrets.current.get(&key(namespace, name))?.data_hash()
    }

    /// Resolves once the first list of the managed Secrets completed.
    pub async fn wait_until_ready(&self) {
        let mut listed = self.listed.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = listed.wait_for(|listed| *listed).await;
    }

    /// What the cache proves of `es`'s target Secret `namespace/name`; `None`: read it.
    pub fn known(&self, es: &ExternalSecret, namespace: &str, name: &str) -> Option<Known> {
        let secrets = self.secrets.lock().expect("target cache lock");
        let cached = secrets
            .ready
            .then(|| secrets.current.get(&key(namespace, name)).cloned())
            .flatten();
        known(es, secrets.ready, cached)
    }
}

/// The target Secret as far as a reconcile knows it. No `Debug`: `Read` holds the whole
/// Secret, whose `Debug` prints its data.
pub enum Known {
    /// Read from the API server (`None`: there is none).
    Read(Option<Box<Secret>>),
    /// Exactly as kuvert last wrote it, known from the cache.
    AsWritten(Cached),
    /// Not needed (`creationPolicy: None`), or most likely missing: no managed Secret is
    /// cached and kuvert never wrote one. A Secret kuvert does not manage may still exist;
    /// creating the target then fails with AlreadyExists and the Secret is read.
    ProbablyMissing,
}

impl Known {
    /// The target's state for [`kuvert_core::decide::decide`].
    pub fn state(&self, es: &ExternalSecret) -> TargetState {
        match self {
            Known::Read(secret) => target_state(es, secret.as_deref()),
            Known::AsWritten(_) => TargetState::InSync,
            Known::ProbablyMissing => target_state(es, None),
        }
    }

    /// The data hash of the Secret as known (`kuvert.io/data-hash`).
    pub fn data_hash(&self) -> Option<String> {
        match self {
            Known::Read(secret) => secret
                .as_ref()?
                .annotations()
                .get(DATA_HASH_ANNOTATION)
                .cloned(),
            Known::AsWritten(cached) => cached.data_hash(),
            Known::ProbablyMissing => None,
        }
    }

    /// The `resourceVersion` of the Secret as known.
    pub fn resource_version(&self) -> Option<&str> {
        match self {
            Known::Read(secret) => secret.as_ref()?.metadata.resource_version.as_deref(),
            Known::AsWritten(cached) => Some(&cached.resource_version),
            Known::ProbablyMissing => None,
        }
    }
}

/// The rule behind [`TargetCache::known`]: `cached` is the managed Secret the cache holds
/// under the target's name, meaningful only once the cache is `ready`.
pub fn known(es: &ExternalSecret, ready: bool, cached: Option<Cached>) -> Option<Known> {
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
        (Some(cached), Some(written)) if cached.resource_version == written => {
            Some(Known::AsWritten(cached))
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

    fn cached(resource_version: &str) -> Option<Cached> {
        Some(Cached {
            resource_version: resource_version.to_owned(),
            digest: 1,
            data_hash: None,
        })
    }

    fn secret(name: &str, resource_version: &str) -> PartialObjectMeta<Secret> {
        let mut meta = PartialObjectMeta::<Secret>::default();
        meta.metadata.name = Some(name.to_owned());
        meta.metadata.namespace = Some("ns".to_owned());
        meta.metadata.resource_version = Some(resource_version.to_owned());
        meta
    }

    #[tokio::test]
    async fn the_cache_is_ready_once_its_first_list_completes() {
        use futures::FutureExt;
        use watcher::Event;
        let cache = TargetCache::default();
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(secret("a", "2")));
        assert!(cache.wait_until_ready().now_or_never().is_none(), "listing");
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.wait_until_ready().await }
        });
        cache.apply(&Event::InitDone);
        waiting.await.unwrap();
        cache.apply(&Event::Init);
        assert_eq!(
            cache.wait_until_ready().now_or_never(),
            Some(()),
            "a relist keeps it ready"
        );
    }

    #[test]
    fn the_cache_follows_the_watch_and_a_relist_replaces_it() {
        use watcher::Event;
        let cache = TargetCache::default();
        let owner = es(CreationPolicy::Owner, Some("2"));
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(secret("a", "2")));
        assert_eq!(
            name(cache.known(&owner, "ns", "a")),
            "read",
            "list not complete"
        );
        cache.apply(&Event::InitDone);
        assert_eq!(name(cache.known(&owner, "ns", "a")), "AsWritten");
        cache.apply(&Event::Apply(secret("a", "3")));
        assert_eq!(
            name(cache.known(&owner, "ns", "a")),
            "read",
            "changed since"
        );
        cache.apply(&Event::Apply(secret("b", "2")));
        cache.apply(&Event::Delete(secret("a", "3")));
        assert_eq!(name(cache.known(&owner, "ns", "a")), "read", "deleted");
        // A relist (after a watch error) drops what it no longer lists.
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(secret("a", "2")));
        assert_eq!(
            name(cache.known(&owner, "ns", "b")),
            "AsWritten",
            "until it completes"
        );
        cache.apply(&Event::InitDone);
        assert_eq!(name(cache.known(&owner, "ns", "a")), "AsWritten");
        assert_eq!(name(cache.known(&owner, "ns", "b")), "read");
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
    fn the_cache_keeps_the_data_hash_and_gives_it_back_as_written() {
        use watcher::Event;
        let hash = kuvert_core::engine::target::data_hash(&Default::default());
        let mut written = secret("a", "2");
        written.metadata.annotations =
            Some([(DATA_HASH_ANNOTATION.to_owned(), hash.clone())].into());
        let mut foreign = secret("b", "2");
        foreign.metadata.annotations =
            Some([(DATA_HASH_ANNOTATION.to_owned(), "zz".to_owned())].into());
        let cache = TargetCache::default();
        cache.apply(&Event::Apply(written));
        cache.apply(&Event::Apply(foreign));
        assert_eq!(cache.data_hash("ns", "a"), Some(hash));
        assert_eq!(cache.data_hash("ns", "b"), None, "not a hash kuvert wrote");
        assert_eq!(cache.data_hash("ns", "c"), None);
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
