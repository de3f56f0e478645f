//! A budget of store calls per store and namespace, so that no namespace user can overload a
//! store or starve the other namespaces using it (issue 22).
//!
//! Every store call a sync really makes (a login, a read the [`crate::reads`] cache could not
//! serve) is charged to the bucket of its store and the ExternalSecret's namespace; reads served
//! from the cache cost nothing. A bucket refills at `qps` per second up to `burst`, and a charge
//! may take it below zero. A namespace whose bucket is below zero for a store does not sync
//! through that store until it is paid back: its syncs are requeued for then, without a store
//! call, a status change or an Event ([`StoreBudgets::wait`]).
//!
//! Charging never waits, and a sync refused for now holds no reconcile slot: an over-budget
//! namespace cannot fill the controller's concurrency with syncs that sleep on a limiter, so
//! other namespaces keep syncing at once. A sync admitted while its bucket is positive may take
//! it below zero by the calls it makes; the namespace then waits that much longer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kuvert_core::api::StoreCapabilities;
use kuvert_core::provider::{
    FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient,
};
use kuvert_core::store_key::StoreKey;
use tokio::time::Instant;

/// Flags of `kuvert run` bounding what one namespace user can ask of a store.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct LimitArgs {
    /// The shortest refresh interval honoured: an ExternalSecret asking for less is refreshed
    /// this often, and its status says so.
    #[arg(long, default_value = "10s", value_parser = crate::run::parse_duration)]
    pub min_refresh_interval: Duration,
    /// Store calls per second each namespace may make to each store, on average (0: no limit).
    #[arg(long, default_value_t = DEFAULT_STORE_QPS)]
    pub store_qps_per_namespace: f64,
    /// Store calls each namespace may make to each store at once above the average rate.
    #[arg(long, default_value_t = DEFAULT_STORE_BURST)]
    pub store_burst_per_namespace: u32,
}

/// Default of `--store-qps-per-namespace`.
pub const DEFAULT_STORE_QPS: f64 = 50.0;
/// Default of `--store-burst-per-namespace`.
pub const DEFAULT_STORE_BURST: u32 = 500;
/// Default of `--min-refresh-interval`.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            store_qps_per_namespace: DEFAULT_STORE_QPS,
            store_burst_per_namespace: DEFAULT_STORE_BURST,
        }
    }
}

/// Store calls charged per store and namespace, refilled at a fixed rate.
pub struct StoreBudgets {
    qps: f64,
    burst: f64,
    buckets: Mutex<HashMap<(StoreKey, String), Bucket>>,
}

/// Tokens and when they were last refilled.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl StoreBudgets {
    /// Budgets of `qps` calls per second on average with bursts of `burst`, per store and
    /// namespace; `qps <= 0` turns budgets off.
    pub fn new(qps: f64, burst: u32) -> Self {
        StoreBudgets {
            qps,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.qps > 0.0
    }

    /// The bucket of `key` refilled to `now` (a full one if it was never charged).
    fn refilled(&self, bucket: Option<&Bucket>, now: Instant) -> Bucket {
        match bucket {
            None => Bucket {
                tokens: self.burst,
                at: now,
            },
            Some(b) => Bucket {
                tokens: (b.tokens + now.duration_since(b.at).as_secs_f64() * self.qps)
                    .min(self.burst),
                at: now,
            },
        }
    }

    /// How long a sync in `namespace` through `stores` must wait until its namespace has paid
    /// back what it overspent on each of them; `None` when it may sync now.
    pub fn wait(&self, namespace: &str, stores: &[StoreKey]) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let now = Instant::now();
        let buckets = self.buckets.lock().expect("budget lock");
        stores
            .iter()
            .filter_map(|store| buckets.get(&(store.clone(), namespace.to_owned())))
            .map(|bucket| self.refilled(Some(bucket), now).tokens)
            .filter(|tokens| *tokens < 0.0)
            .map(|tokens| Duration::from_secs_f64(-tokens / self.qps))
            .max()
    }

    /// Charges one store call of `namespace` to `store`.
    pub fn charge(&self, store: &StoreKey, namespace: &str) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("budget lock");
        let key = (store.clone(), namespace.to_owned());
        let mut bucket = self.refilled(buckets.get(&key), now);
        bucket.tokens -= 1.0;
        buckets.insert(key, bucket);
    }

    /// Forgets buckets that have refilled completely (they equal a new one), so the map holds
    /// only namespaces that called a store within about `burst / qps` seconds.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("budget lock");
        buckets.retain(|_, bucket| self.refilled(Some(bucket), now).tokens < self.burst);
    }

    /// Number of buckets held (for tests).
    pub fn len(&self) -> usize {
        self.buckets.lock().expect("budget lock").len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A client charging each call of `inner` to `store` and `namespace`.
    pub fn charged(
        self: &Arc<Self>,
        store: StoreKey,
        namespace: &str,
        inner: Arc<dyn SecretsClient>,
    ) -> Arc<dyn SecretsClient> {
        if !self.enabled() {
            return inner;
        }
        Arc::new(Charged {
            budgets: self.clone(),
            store,
            namespace: namespace.to_owned(),
            inner,
        })
    }
}

/// A store client whose every call is charged to one store and namespace.
struct Charged {
    budgets: Arc<StoreBudgets>,
    store: StoreKey,
    namespace: String,
    inner: Arc<dyn SecretsClient>,
}

impl Charged {
    fn charge(&self) {
        self.budgets.charge(&self.store, &self.namespace);
    }
}

#[async_trait]
impl SecretsClient for Charged {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        self.charge();
        self.inner.get(request).await
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<std::collections::BTreeMap<String, RemoteSecret>, ProviderError> {
        self.charge();
        self.inner.find(request).await
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        self.charge();
        self.inner.validate().await
    }

    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        self.charge();
        self.inner.push(request).await
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        self.charge();
        self.inner.delete(key, property, owner).await
    }

    async fn exists(&self, key: &str) -> Result<bool, ProviderError> {
        self.charge();
        self.inner.exists(key).await
    }
}

#[cfg(test)]
mod tests {
    use kuvert_core::api::SecretStoreKind;

    use super::*;

    fn shared() -> StoreKey {
        StoreKey::new(SecretStoreKind::ClusterSecretStore, "", "vault")
    }

    fn other() -> StoreKey {
        StoreKey::new(SecretStoreKind::SecretStore, "team-a", "own")
    }

    #[tokio::test(start_paused = true)]
    async fn a_namespace_within_its_burst_syncs_at_once() {
        let budgets = StoreBudgets::new(2.0, 5);
        for _ in 0..5 {
            assert_eq!(budgets.wait("team-a", &[shared()]), None);
            budgets.charge(&shared(), "team-a");
        }
        assert_eq!(
            budgets.wait("team-a", &[shared()]),
            None,
            "the bucket is empty, not overdrawn"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_overdrawn_namespace_waits_until_it_has_paid_back_at_the_rate() {
        let budgets = StoreBudgets::new(2.0, 5);
        for _ in 0..9 {
            budgets.charge(&shared(), "team-a");
        }
        // 5 - 9 = -4 tokens at 2 per second: 2 s.
        assert_eq!(
            budgets.wait("team-a", &[shared()]),
            Some(Duration::from_secs(2))
        );
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(
            budgets.wait("team-a", &[shared()]),
            Some(Duration::from_millis(500))
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(budgets.wait("team-a", &[shared()]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn one_namespace_overdrawing_a_store_leaves_other_namespaces_and_stores_alone() {
        let budgets = StoreBudgets::new(1.0, 1);
        for _ in 0..100 {
            budgets.charge(&shared(), "flood");
        }
        assert_eq!(
            budgets.wait("flood", &[other(), shared()]),
            Some(Duration::from_secs(99)),
            "the longest wait of the stores it uses"
        );
        assert_eq!(budgets.wait("team-a", &[shared()]), None);
        assert_eq!(budgets.wait("flood", &[other()]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_nothing_is_counted_or_held() {
        let budgets = StoreBudgets::new(0.0, 1);
        for _ in 0..100 {
            budgets.charge(&shared(), "flood");
        }
        assert_eq!(budgets.wait("flood", &[shared()]), None);
        assert!(budgets.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_forgets_only_buckets_that_refilled() {
        let budgets = StoreBudgets::new(1.0, 10);
        budgets.charge(&shared(), "a");
        budgets.charge(&shared(), "b");
        tokio::time::advance(Duration::from_millis(500)).await;
        budgets.charge(&shared(), "b");
        tokio::time::advance(Duration::from_millis(500)).await;
        budgets.sweep();
        assert_eq!(budgets.len(), 1, "a refilled, b is still 0.5 short");
        assert_eq!(budgets.wait("b", &[shared()]), None);
    }

    /// A store answering every read.
    struct Answering;

    #[async_trait]
    impl SecretsClient for Answering {
        async fn get(&self, _: &GetRequest) -> Result<RemoteSecret, ProviderError> {
            Ok(RemoteSecret {
                value: kuvert_core::secret::SecretBytes::from("v".to_owned()),
                version: None,
            })
        }
        async fn find(
            &self,
            _: &FindRequest,
        ) -> Result<std::collections::BTreeMap<String, RemoteSecret>, ProviderError> {
            Ok(Default::default())
        }
        async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
            Ok(StoreCapabilities::ReadOnly)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_through_a_charged_client_costs_one_token() {
        let budgets = Arc::new(StoreBudgets::new(1.0, 2));
        let client = budgets.charged(shared(), "team-a", Arc::new(Answering));
        client.get(&GetRequest::default()).await.unwrap();
        client.find(&FindRequest::default()).await.unwrap();
        client.validate().await.unwrap();
        assert_eq!(
            budgets.wait("team-a", &[shared()]),
            Some(Duration::from_secs(1))
        );
    }
}
