//! Coalesced store reads: many ExternalSecrets reading the same remote key of the same store
//! within one refresh window cost one store call.
//!
//! Each sync states how old a value it accepts (`max_age`, decided in core's
//! `kuvert_core::decide`): a tenth of its refresh interval for a periodic refresh (so a synced
//! value is at most 1.1 intervals old when it is replaced; accepting a whole interval let it be
//! about two), a few seconds for a first sync (so objects created together share reads), and
//! zero for a force-sync (always fresh).
//! Reads already in flight are joined when they started recently enough (single-flight).
//! Errors are never cached: the next sync asks the store again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kuvert_core::api::StoreCapabilities;
use kuvert_core::provider::{
    FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient,
};
use tokio::time::Instant;

type SharedRead = Shared<BoxFuture<'static, Result<RemoteSecret, Arc<ProviderError>>>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ReadKey {
    store: String,
    request: GetRequest,
}

enum Entry {
    Done { at: Instant, value: RemoteSecret },
    InFlight { started: Instant, read: SharedRead },
}

/// The cache of recent reads, shared by every sync of the process.
#[derive(Default)]
pub struct ReadCache {
    entries: Mutex<HashMap<ReadKey, Entry>>,
    /// Entries older than this are dropped when the cache is swept.
    retention: Mutex<Duration>,
}

impl ReadCache {
    /// An empty cache.
    pub fn new() -> Arc<Self> {
        Arc::new(ReadCache::default())
    }

    /// A client that reads through this cache. `store` identifies the store *and* its
    /// configuration (e.g. `ClusterSecretStore/vault@7` with the generation), so a changed store
    /// never serves values read with its old spec.
    pub fn client(
        self: &Arc<Self>,
        store: String,
        inner: Arc<dyn SecretsClient>,
        max_age: Duration,
    ) -> Arc<dyn SecretsClient> {
        {
            let mut retention = self.retention.lock().expect("cache lock");
            *retention = (*retention).max(max_age);
        }
        Arc::new(CachedClient {
            cache: self.clone(),
            store,
            inner,
            max_age,
        })
    }

    /// Number of values held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops values no sync would accept any more.
    pub fn sweep(&self) {
        let retention = *self.retention.lock().expect("cache lock");
        let now = Instant::now();
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|_, entry| match entry {
                Entry::Done { at, .. } => now.duration_since(*at) <= retention,
                Entry::InFlight { .. } => true,
            });
    }

    async fn get(
        self: &Arc<Self>,
        key: ReadKey,
        inner: Arc<dyn SecretsClient>,
        max_age: Duration,
    ) -> Result<RemoteSecret, ProviderError> {
        let asked = Instant::now();
        let fresh_enough = |t: Instant| asked.saturating_duration_since(t) <= max_age;
        let read = {
            let mut entries = self.entries.lock().expect("cache lock");
            match entries.get(&key) {
                Some(Entry::Done { at, value }) if fresh_enough(*at) => return Ok(value.clone()),
                Some(Entry::InFlight { started, read }) if fresh_enough(*started) => read.clone(),
                _ => {
                    let request = key.request.clone();
                    let read: SharedRead =
                        async move { inner.get(&request).await.map_err(Arc::new) }
                            .boxed()
                            .shared();
                    entries.insert(
                        key.clone(),
                        Entry::InFlight {
                            started: asked,
                            read: read.clone(),
                        },
                    );
                    read
                }
            }
        };
        let result = read.clone().await;
        let mut entries = self.entries.lock().expect("cache lock");
        // Only the read that is still the current entry may settle it.
        if let Some(Entry::InFlight { read: current, .. }) = entries.get(&key)
            && current.ptr_eq(&read)
        {
            match &result {
                Ok(value) => {
                    entries.insert(
                        key,
                        Entry::Done {
                            at: Instant::now(),
                            value: value.clone(),
                        },
                    );
                }
                Err(_) => {
                    entries.remove(&key);
                }
            }
        }
        result.map_err(|e| copy_error(&e))
    }
}

/// A shared error handed to each waiting sync as its own value, keeping its classification.
fn copy_error(error: &ProviderError) -> ProviderError {
    match error {
        ProviderError::NotFound { key } => ProviderError::NotFound { key: key.clone() },
        ProviderError::Forbidden { message } => ProviderError::Forbidden {
            message: message.clone(),
        },
        ProviderError::Unavailable { message, source } => ProviderError::Unavailable {
            message: match source {
                Some(source) => format!("{message}: {source}"),
                None => message.clone(),
            },
            source: None,
        },
        ProviderError::InvalidSpec { field, message } => ProviderError::InvalidSpec {
            field: field.clone(),
            message: message.clone(),
        },
        ProviderError::Unauthenticated { message } => ProviderError::Unauthenticated {
            message: message.clone(),
        },
        ProviderError::Conflict { message } => ProviderError::Conflict {
            message: message.clone(),
        },
        ProviderError::Unsupported { operation } => ProviderError::Unsupported { operation },
    }
}

struct CachedClient {
    cache: Arc<ReadCache>,
    store: String,
    inner: Arc<dyn SecretsClient>,
    max_age: Duration,
}

#[async_trait]
impl SecretsClient for CachedClient {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        let key = ReadKey {
            store: self.store.clone(),
            request: request.clone(),
        };
        self.cache.get(key, self.inner.clone(), self.max_age).await
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
        self.inner.find(request).await
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        self.inner.validate().await
    }

    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        self.inner.push(request).await
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        self.inner.delete(key, property, owner).await
    }

    async fn exists(&self, key: &str) -> Result<bool, ProviderError> {
        self.inner.exists(key).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kuvert_core::secret::SecretBytes;

    use super::*;

    /// A store that counts its reads, answers after a delay, and can be made to fail.
    #[derive(Default)]
    struct CountingStore {
        reads: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl SecretsClient for CountingStore {
        async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(ProviderError::Unavailable {
                    message: "down".to_owned(),
                    source: None,
                });
            }
            Ok(RemoteSecret {
                value: SecretBytes::from(format!("{}#{n}", request.key)),
                version: Some(n.to_string()),
            })
        }
        async fn find(
            &self,
            _: &FindRequest,
        ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
            Ok(StoreCapabilities::ReadOnly)
        }
    }

    fn get(key: &str) -> GetRequest {
        GetRequest {
            key: key.to_owned(),
            ..GetRequest::default()
        }
    }

    fn value(r: &RemoteSecret) -> &str {
        r.value.expose_str().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_of_one_key_cost_one_store_call() {
        let store = Arc::new(CountingStore::default());
        let cache = ReadCache::new();
        let reads = (0..100).map(|_| {
            let client = cache.client(
                "SecretStore/ns/s@1".into(),
                store.clone(),
                Duration::from_secs(5),
            );
            async move { client.get(&get("db")).await.unwrap() }
        });
        let values = futures::future::join_all(reads).await;
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        assert!(values.iter().all(|v| value(v) == "db#1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_is_reused_within_max_age_and_reread_after() {
        let store = Arc::new(CountingStore::default());
        let cache = ReadCache::new();
        let hourly = cache.client("s".into(), store.clone(), Duration::from_secs(3600));
        assert_eq!(value(&hourly.get(&get("db")).await.unwrap()), "db#1");
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(value(&hourly.get(&get("db")).await.unwrap()), "db#1");
        tokio::time::advance(Duration::from_secs(1801)).await;
        assert_eq!(value(&hourly.get(&get("db")).await.unwrap()), "db#2");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn force_sync_reads_fresh_even_with_a_cached_value() {
        let store = Arc::new(CountingStore::default());
        let cache = ReadCache::new();
        let hourly = cache.client("s".into(), store.clone(), Duration::from_secs(3600));
        hourly.get(&get("db")).await.unwrap();
        tokio::time::advance(Duration::from_millis(1)).await;
        let forced = cache.client("s".into(), store.clone(), Duration::ZERO);
        assert_eq!(value(&forced.get(&get("db")).await.unwrap()), "db#2");
        // ... and the fresh value now serves the others too.
        assert_eq!(value(&hourly.get(&get("db")).await.unwrap()), "db#2");
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn different_stores_keys_and_versions_are_read_separately() {
        let store = Arc::new(CountingStore::default());
        let cache = ReadCache::new();
        let a = cache.client("a".into(), store.clone(), Duration::from_secs(60));
        let b = cache.client("b".into(), store.clone(), Duration::from_secs(60));
        a.get(&get("db")).await.unwrap();
        b.get(&get("db")).await.unwrap();
        a.get(&get("api")).await.unwrap();
        a.get(&GetRequest {
            key: "db".into(),
            version: Some("3".into()),
            metadata: false,
        })
        .await
        .unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 4);
        assert_eq!(cache.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_shared_by_waiters_but_never_cached() {
        let store = Arc::new(CountingStore::default());
        store.fail.store(true, Ordering::SeqCst);
        let cache = ReadCache::new();
        let client = cache.client("s".into(), store.clone(), Duration::from_secs(60));
        let db = get("db");
        let (x, y) = tokio::join!(client.get(&db), client.get(&db));
        assert_eq!(x.unwrap_err().to_string(), "store unavailable: down");
        assert!(matches!(y.unwrap_err(), ProviderError::Unavailable { .. }));
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        store.fail.store(false, Ordering::SeqCst);
        assert_eq!(value(&client.get(&get("db")).await.unwrap()), "db#2");
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_drops_values_older_than_any_sync_accepts() {
        let store = Arc::new(CountingStore::default());
        let cache = ReadCache::new();
        let client = cache.client("s".into(), store.clone(), Duration::from_secs(60));
        client.get(&get("db")).await.unwrap();
        cache.sweep();
        assert_eq!(cache.len(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        cache.sweep();
        assert_eq!(cache.len(), 0);
    }
}
