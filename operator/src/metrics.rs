//! Prometheus metrics. Labels are bounded: kind, provider, operation, outcome and reason —
//! never an object's name, unless `--per-object-metrics` asks for it.

use std::time::Duration;

use kuvert_core::provider::{
    FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient,
};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Seconds a sync takes, from fetch to status write.
pub const SYNC_DURATION: &str = "kuvert_sync_duration_seconds";
/// Syncs run, by kind and result (`success`, `error`).
pub const SYNC_TOTAL: &str = "kuvert_sync_total";
/// Failed syncs by kind and reason.
pub const SYNC_ERRORS: &str = "kuvert_sync_errors_total";
/// Calls to external stores, by provider, operation and outcome (`ok` or an error reason).
pub const STORE_REQUESTS: &str = "kuvert_store_requests_total";
/// Generator calls, by generator kind, operation (`generate`, `renew`, `revoke`) and outcome
/// (`ok` or an error reason).
pub const GENERATOR_REQUESTS: &str = "kuvert_generator_requests_total";
/// Objects by kind and Ready state (`True`, `False`, `Unknown`), from the caches
/// ([`crate::cache_metrics`]).
pub const OBJECTS: &str = "kuvert_objects";
/// 1 while a store (`kind`, `namespace`, `name`) is Ready, else 0, from the caches.
pub const STORE_READY: &str = "kuvert_store_ready";
/// Reconciles running, by kind.
pub const QUEUE_DEPTH: &str = "kuvert_reconcile_queue_depth";
/// Seconds from an object being queued (a watch event, or its requeue falling due) to its
/// reconcile starting, by kind.
pub const QUEUE_WAIT: &str = "kuvert_reconcile_queue_wait_seconds";
/// Ready state of each ExternalSecret, when `--per-object-metrics` is set (1 = Ready), from the
/// cache.
pub const OBJECT_READY: &str = "kuvert_object_ready";
/// Each ExternalSecret condition's status (ESO's `externalsecret_status_condition`), when
/// `--per-object-metrics` is set, from the cache.
pub const CONDITION: &str = "kuvert_externalsecret_status_condition";
/// Syncs put off because their namespace had overspent its store-call budget
/// (`--store-qps-per-namespace`).
pub const STORE_BUDGET_WAITS: &str = "kuvert_store_budget_waits_total";
/// 1, labelled with the version kuvert was built as.
pub const BUILD_INFO: &str = "kuvert_build_info";
/// 1 while this replica leads (always, without `--leader-election`), else 0.
pub const LEADER: &str = "kuvert_leader";
/// Workloads listed in ExternalSecrets' `status.workloads`, by `up_to_date` (`true`, `false`),
/// from the cache.
pub const WORKLOADS: &str = "kuvert_workloads";
/// Workload pod templates kuvert patched because their Secrets changed, and checks that failed,
/// by workload kind and result (`restarted`, `RolloutTargetNotFound`, `RolloutFailed`).
pub const WORKLOAD_RESTARTS: &str = "kuvert_workload_restarts_total";

/// Installs the process-wide recorder and returns the handle that renders `/metrics`.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(SYNC_DURATION.to_owned()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                crate::kube_metrics::REQUEST_DURATION.to_owned(),
            ),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(QUEUE_WAIT.to_owned()),
            &[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
            ],
        )?
        .install_recorder()?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The process's CPU, memory, file descriptors and threads (`process_*`, as Prometheus'
/// client libraries name them), read when `/metrics` is scraped.
pub fn collect_process() {
    static COLLECTOR: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
}

/// Drains histogram samples into their buckets every few seconds. The exporter otherwise
/// keeps every sample until `/metrics` is scraped: memory that grows with each sync when
/// nobody scrapes (10,000 syncs held about 2 MB).
pub async fn upkeep(handle: PrometheusHandle) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        handle.run_upkeep();
    }
}

fn describe() {
    metrics::describe_histogram!(
        SYNC_DURATION,
        metrics::Unit::Seconds,
        "Duration of one sync."
    );
    metrics::describe_counter!(SYNC_TOTAL, "Syncs run, by kind and result.");
    metrics::describe_counter!(SYNC_ERRORS, "Failed syncs, by kind and reason.");
    metrics::describe_counter!(
        STORE_REQUESTS,
        "Calls to external stores, by provider, operation and outcome."
    );
    metrics::describe_counter!(
        STORE_BUDGET_WAITS,
        "Syncs put off because their namespace had overspent its store-call budget."
    );
    metrics::describe_counter!(
        GENERATOR_REQUESTS,
        "Generator calls, by generator kind, operation and outcome."
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Reconciles running, by kind.");
    metrics::describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "Time from an object being queued to its reconcile starting, by kind."
    );
    metrics::describe_gauge!(BUILD_INFO, "1, labelled with kuvert's version.");
    metrics::describe_gauge!(
        LEADER,
        "1 while this replica leads (always without --leader-election)."
    );
    metrics::describe_counter!(
        WORKLOAD_RESTARTS,
        "Workloads restarted because their Secrets changed, and failed restarts, by kind and result."
    );
    crate::kube_metrics::describe();
}

/// Records one finished sync.
pub fn sync(kind: &'static str, took: Duration, error_reason: Option<&'static str>) {
    histogram!(SYNC_DURATION, "kind" => kind).record(took.as_secs_f64());
    let result = if error_reason.is_some() {
        "error"
    } else {
        "success"
    };
    counter!(SYNC_TOTAL, "kind" => kind, "result" => result).increment(1);
    if let Some(reason) = error_reason {
        counter!(SYNC_ERRORS, "kind" => kind, "reason" => reason).increment(1);
    }
}

/// Records one store call.
pub fn store_request(provider: &'static str, operation: &'static str, outcome: &'static str) {
    counter!(STORE_REQUESTS, "provider" => provider, "operation" => operation, "outcome" => outcome)
        .increment(1);
}

/// Records one sync put off by a store-call budget.
pub fn store_budget_wait() {
    counter!(STORE_BUDGET_WAITS).increment(1);
}

/// Records one generator call.
pub fn generator_request(kind: &'static str, operation: &'static str, outcome: &'static str) {
    counter!(GENERATOR_REQUESTS, "kind" => kind, "operation" => operation, "outcome" => outcome)
        .increment(1);
}

/// Tracks a reconcile from queueing to completion in the queue-depth gauge.
pub struct InQueue(&'static str);

impl InQueue {
    /// Counts one reconcile of `kind` in.
    pub fn enter(kind: &'static str) -> Self {
        gauge!(QUEUE_DEPTH, "kind" => kind).increment(1.0);
        InQueue(kind)
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        gauge!(QUEUE_DEPTH, "kind" => self.0).decrement(1.0);
    }
}

/// A store client that counts its calls in [`STORE_REQUESTS`].
pub struct InstrumentedClient {
    provider: &'static str,
    inner: std::sync::Arc<dyn SecretsClient>,
}

impl InstrumentedClient {
    /// Wraps the client of a `provider` store.
    pub fn wrap(
        provider: &'static str,
        inner: std::sync::Arc<dyn SecretsClient>,
    ) -> std::sync::Arc<dyn SecretsClient> {
        std::sync::Arc::new(InstrumentedClient { provider, inner })
    }

    fn record<T>(&self, operation: &'static str, result: &Result<T, ProviderError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        store_request(self.provider, operation, outcome);
    }
}

#[async_trait::async_trait]
impl SecretsClient for InstrumentedClient {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        let result = self.inner.get(request).await;
        self.record("get", &result);
        result
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<std::collections::BTreeMap<String, RemoteSecret>, ProviderError> {
        let result = self.inner.find(request).await;
        self.record("find", &result);
        result
    }

    async fn validate(&self) -> Result<kuvert_core::api::StoreCapabilities, ProviderError> {
        let result = self.inner.validate().await;
        self.record("validate", &result);
        result
    }

    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let result = self.inner.push(request).await;
        self.record("push", &result);
        result
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let result = self.inner.delete(key, property, owner).await;
        self.record("delete", &result);
        result
    }

    async fn exists(&self, key: &str) -> Result<bool, ProviderError> {
        let result = self.inner.exists(key).await;
        self.record("exists", &result);
        result
    }
}
