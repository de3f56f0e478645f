//! `kuvert run`: the operator process.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use kube::Api;
use kube::runtime::controller::Controller;
use kuvert_core::api::{ClusterSecretStore, SecretStore};

use crate::cache_metrics::CacheMetrics;
use crate::clusterexternalsecret;
use crate::context::{Context, Settings};
use crate::externalsecret::stores::StoreCaches;
use crate::externalsecret::{self, State};
use crate::health::{self, Readiness};
use crate::{metrics, pushsecret, store};

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `kuvert run`.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Objects reconciled at once, per kind.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Watch only this namespace (default: all namespaces). A namespace-scoped install's Role
    /// cannot read cluster-scoped objects, so ClusterSecretStores are then off unless
    /// `--cluster-stores` turns them on.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Watch ClusterSecretStores (and read namespace labels for their `conditions`).
    /// Default: on, except with `--namespace`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub cluster_stores: Option<bool>,
    /// Serve only objects whose `spec.controller` is this class.
    #[arg(long)]
    pub controller_class: Option<String>,
    /// How old a store read shared with other ExternalSecrets a first sync accepts.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub coalesce_window: Duration,
    /// Also label metrics with object names (unbounded cardinality: small clusters only).
    #[arg(long)]
    pub per_object_metrics: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `kuvert_operator=debug,info`.
    #[arg(long, default_value = "info", env = "KUVERT_LOG")]
    pub log_level: String,
    /// This instance's name in Events and the leader Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// A fixed limit on Kubernetes API requests per second, on average (0: no fixed rate;
    /// the API server's 429 Retry-After is honoured by every request either way).
    #[arg(long, default_value_t = 0.0)]
    pub kube_qps: f64,
    /// Kubernetes API requests allowed at once above the average rate (with `--kube-qps`).
    #[arg(long, default_value_t = 400)]
    pub kube_burst: u32,
    /// Run the controllers only while holding a Lease, so several replicas can run.
    #[arg(long)]
    pub leader_election: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// How long a leader's Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// Fraction of a generated credential's lease (VaultDynamicSecret) after which it is renewed
    /// or, if it cannot be renewed, replaced; jittered per lease by up to a tenth earlier.
    #[arg(long, default_value = "0.667", value_parser = kuvert_core::lease::parse_fraction)]
    pub lease_renew_fraction: f64,
    /// How long a workload to restart waits for more of its Secrets to change, so Secrets
    /// changing together cause one rollout.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub rollout_window: Duration,
    /// How long a workload's rollout may run before a Warning Event says it is behind.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub rollout_behind_threshold: Duration,
    /// The refresh floor and the store-call budgets per namespace.
    #[command(flatten)]
    pub limits: crate::budget::LimitArgs,
}

/// Parses a Go-style duration such as `5s` or `1m30s` (the engine's parser, for one syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    kuvert_core::engine::status::parse_go_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 5s or 1m30s"))
}

/// Installs the log subscriber: colours only on a terminal; as JSON, one object per line with
/// the event's fields at the top level (`level`, `msg`, `namespace`, `name`, `reason`, ...) and
/// no copy of span fields. An invalid filter is an error, never a silent `info`.
pub fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|e| anyhow::anyhow!("--log-level {filter:?} is not a log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// A client for `config`. After any `429 Too Many Requests`, every new request of the process
/// waits out the response's `Retry-After` ([`crate::ratelimit`]); `--kube-qps` adds a fixed rate.
pub fn client(mut config: kube::Config, args: &RunArgs) -> anyhow::Result<kube::Client> {
    use kube::client::retry::RetryPolicy;
    use tower::{buffer::BufferLayer, retry::RetryLayer};
    // kube's default retry (429, 503, 504; each request waits its own Retry-After) sits below
    // `with_layer`'s layers and would hide the 429s from the process-wide hold. So it is turned
    // off there and the same policy added above the limit: callers still see a 429 only after
    // kube's retries, and every attempt, retries included, waits out the hold.
    config.default_retry = false;
    Ok(kube::client::ClientBuilder::try_from(config)?
        // Innermost: every attempt counted, its latency without the time held back above.
        .with_layer(&crate::kube_metrics::KubeMetricsLayer)
        .with_layer(&crate::ratelimit::layer(args.kube_qps, args.kube_burst))
        // Retry clones its inner service; kube's stack is a BoxService, so buffer it.
        .with_layer(&BufferLayer::new(1024))
        .with_layer(&RetryLayer::new(RetryPolicy::server_retry()))
        .build())
}

impl RunArgs {
    /// Whether ClusterSecretStores are watched: `--cluster-stores`, else only when every
    /// namespace is.
    pub fn watches_cluster_stores(&self) -> bool {
        self.cluster_stores.unwrap_or(self.namespace.is_none())
    }
}

/// Runs the operator against the cluster of `client` until SIGTERM / Ctrl-C.
pub async fn run(args: RunArgs, client: kube::Client) -> anyhow::Result<()> {
    let prometheus = metrics::install()?;
    let upkeep = tokio::spawn(metrics::upkeep(prometheus.clone()));
    let readiness = Readiness::default();
    let cache_metrics = CacheMetrics::default();
    let scrape = health::Scrape {
        recorded: prometheus,
        cached: cache_metrics.clone(),
    };
    let (bound, serving) = health::serve(args.metrics_addr, scrape, readiness.clone())
        .await
        .with_context(|| format!("serving --metrics-addr {}", args.metrics_addr))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        cluster_stores = args.watches_cluster_stores(),
        controller_class = args.controller_class.as_deref().unwrap_or("(any)"),
        concurrency = args.concurrency,
        leader_election = args.leader_election,
        coalesce_window = ?args.coalesce_window,
        lease_renew_fraction = args.lease_renew_fraction,
        kube_qps = args.kube_qps,
        per_object_metrics = args.per_object_metrics,
        limits = ?args.limits,
        "kuvert starting"
    );
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    let health = tokio::spawn(serving);
    // A missing CRD or RBAC rule is said at error level, and SIGTERM still ends the wait.
    tokio::select! {
        _ = crate::startup::wait_for_apis(&client, args.namespace.as_deref(), args.watches_cluster_stores()) => {}
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shut down before starting");
            health.abort();
            return Ok(());
        }
    }

    let settings = Settings {
        controller_class: args.controller_class.clone(),
        namespace: args.namespace.clone(),
        coalesce_window: args.coalesce_window,
        per_object_metrics: args.per_object_metrics,
        instance: args.instance.clone(),
        lease_renew_fraction: args.lease_renew_fraction,
        limits: args.limits.clone(),
    };
    let elector = if args.leader_election {
        let identity = args.instance.clone().unwrap_or_else(|| {
            format!(
                "kuvert-{}-{}",
                std::process::id(),
                jiff::Timestamp::now().as_millisecond()
            )
        });
        let lease = match &args.controller_class {
            Some(class) => format!("kuvert-leader-{class}"),
            None => "kuvert-leader".to_owned(),
        };
        let elector = std::sync::Arc::new(crate::leader::Elector::new(
            client.clone(),
            &args.leader_election_namespace,
            &lease,
            &identity,
            args.leader_election_lease_duration,
        ));
        // A standby replica is ready once it reaches the API server: readiness must not
        // depend on leadership, or a Deployment of two replicas never becomes available.
        let standing_by = || readiness.set_ready();
        tokio::select! {
            acquired = elector.acquire(standing_by) => acquired?,
            signal = shutdown_signal() => {
                signal?;
                tracing::info!("shut down while waiting for leadership");
                health.abort();
                return Ok(());
            }
        }
        // Losing the lease ends the process: a restarted replica queues for leadership again,
        // and no two replicas ever write at once.
        let holder = elector.clone();
        let holding = tokio::spawn(async move {
            holder.hold().await;
            std::process::exit(1);
        });
        Some((elector, holding))
    } else {
        ::metrics::gauge!(metrics::LEADER).set(1.0);
        None
    };
    let ctx = Context::new(client.clone(), settings);
    let stores: Api<SecretStore> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Wakes from changed credentials, CA bundles, ServiceAccounts and template sources, and
    // of stores their ExternalSecrets found failing.
    let woken = ctx.wakes.take_receivers().expect("taken once");
    let cluster_store_controller = args.watches_cluster_stores().then(|| {
        let cluster_stores: Api<ClusterSecretStore> = Api::all(client.clone());
        store::controller(cluster_stores, ctx.clone()).reconcile_on(woken.cluster_stores)
    });

    let store_controller = store::controller(stores, ctx.clone()).reconcile_on(woken.stores);
    let caches = StoreCaches {
        stores: store_controller.store(),
        cluster_stores: cluster_store_controller.as_ref().map(Controller::store),
    };
    let (es_controller, targets) =
        externalsecret::controller::controller(ctx.clone(), args.namespace.as_deref(), &caches);
    let es_controller = es_controller.reconcile_on(woken.external_secrets);
    let es_cache = es_controller.store();
    let (ps_controller, ps_cache) =
        pushsecret::controller(ctx.clone(), args.namespace.as_deref(), &caches);
    let ps_controller = ps_controller.reconcile_on(woken.push_secrets);
    cache_metrics.set_push_secrets(ps_cache.clone());
    // ClusterExternalSecrets and namespaces are cluster-scoped: a namespace-scoped install's
    // Role can read neither.
    let ces_controller = match &args.namespace {
        None => {
            let (controller, state) = clusterexternalsecret::controller(ctx.clone());
            Some((controller, state))
        }
        Some(ns) => {
            tracing::info!(
                namespace = %ns,
                "ClusterExternalSecrets are not served with --namespace (they are cluster-scoped)"
            );
            None
        }
    };
    {
        let (caches, targets, es_cache) = (caches.clone(), targets.clone(), es_cache.clone());
        let ces_caches = ces_controller
            .as_ref()
            .map(|(c, state)| (c.store(), state.clone()));
        let settings = ctx.settings.clone();
        let ps_cache = ps_cache.clone();
        tokio::spawn(async move {
            caches.wait_until_ready().await;
            targets.wait_until_ready().await;
            externalsecret::stores::wait_until_ready(&es_cache).await;
            externalsecret::stores::wait_until_ready(&ps_cache).await;
            if let Some((ces_cache, state)) = &ces_caches {
                externalsecret::stores::wait_until_ready(ces_cache).await;
                externalsecret::stores::wait_until_ready(&state.namespaces).await;
                externalsecret::stores::wait_until_ready(&state.stamped).await;
            }
            let ces_cache = ces_caches.map(|(cache, _)| cache);
            cache_metrics.set(es_cache, caches, ces_cache, settings);
            readiness.set_ready();
            tracing::info!("caches synced; ready");
        });
    }
    let ps_state = std::sync::Arc::new(pushsecret::State {
        ctx: ctx.clone(),
        caches: caches.clone(),
    });
    let objects = tokio::spawn(externalsecret::controller::forget_deleted(
        es_cache.clone(),
        caches.clone(),
        ctx.clone(),
    ));
    let sweeper = tokio::spawn(sweep_reads(ctx.clone()));
    let follower = tokio::spawn(crate::wakes::follow(ctx.clone(), args.namespace.clone()));
    let rollouts = crate::rollout::Rollouts::new(
        ctx.clone(),
        targets.clone(),
        args.rollout_window,
        args.rollout_behind_threshold,
    );
    let restarts = tokio::spawn(rollouts.clone().run());
    let behind = tokio::spawn(rollouts.clone().warn_behind());
    let forget = tokio::spawn(rollouts.clone().forget_deleted(es_cache.clone()));
    let labelled = tokio::spawn(crate::rollout::watch::labelled(
        rollouts.clone(),
        client.clone(),
        args.namespace.clone(),
    ));
    let state = std::sync::Arc::new(State {
        ctx: ctx.clone(),
        caches,
        targets,
        background: externalsecret::priority::BackgroundSlots::new(args.concurrency),
        rollouts,
    });

    tokio::join!(
        store::run_controller(store_controller, ctx.clone(), args.concurrency),
        async {
            if let Some(controller) = cluster_store_controller {
                store::run_controller(controller, ctx.clone(), args.concurrency).await;
            }
        },
        externalsecret::controller::run(es_controller, state, args.concurrency),
        async {
            if let Some((controller, state)) = ces_controller {
                clusterexternalsecret::run(controller, state, args.concurrency).await;
            }
        },
        pushsecret::run(ps_controller, ps_cache, ps_state, args.concurrency),
    );
    objects.abort();
    sweeper.abort();
    follower.abort();
    restarts.abort();
    behind.abort();
    forget.abort();
    labelled.abort();
    upkeep.abort();
    // Revoke what providers logged in with (Vault tokens), so a restart leaves no leases.
    ctx.registry.shutdown().await;
    ctx.generators.shutdown().await;
    if let Some((elector, holding)) = elector {
        holding.abort();
        elector.release().await;
    }
    health.abort();
    tracing::info!("shut down");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            r = tokio::signal::ctrl_c() => r,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

/// Drops coalesced reads no sync would accept any more, and refilled store budgets, once a
/// minute.
async fn sweep_reads(ctx: std::sync::Arc<Context>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        ctx.reads.sweep();
        ctx.budgets.sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }
}
