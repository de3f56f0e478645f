//! `kuvert-bench`: the performance figures of issue 9, from one run against real servers.
//!
//! Starts OpenBao (`bao server -dev` with a file audit device, so store calls are counted by
//! the server), devcluster, and the release `kuvert run` binary as a separate process; loads
//! the scenario; measures P1–P6 and a restart; prints a table and writes a JSON file. Speed and
//! memory are judged here against the targets, never by timed assertions in tests.
//!
//! Run with `make bench` or `cargo build --release -p kuvert-operator -p kuvert-bench &&
//! target/release/kuvert-bench --help`.

mod audit;
mod process;
mod report;
mod scenario;
mod stats;
mod track;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kuvert_core::api::{ExternalSecret, FORCE_SYNC_ANNOTATION};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_testkit::OpenBao;
use serde_json::json;

use process::Kuvert;
use report::{InitialSync, KubeCalls, Latency, RefreshCycle, Report, Restart};
use scenario::{DATA_PREFIX, LOAD_CONCURRENCY, NAMESPACE};

/// The allocator `kuvert` runs with, so devcluster (in this process) is measured as `kuvert dev`
/// runs it; with glibc's malloc a third of devcluster's time in P1 went to malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark kuvert against OpenBao and devcluster (see bench/README.md).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// ExternalSecrets (N).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Distinct remote keys the N read (K).
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Unrelated Secrets in the cluster (U).
    #[arg(long, default_value_t = 30_000)]
    unrelated: usize,
    /// Size of each unrelated Secret, bytes.
    #[arg(long, default_value_t = 100 * 1024)]
    unrelated_size: usize,
    /// Refresh interval of the measured refresh cycle (P3, P4); Go syntax. With a fixed
    /// `--kube-qps` it must leave kuvert room: a refresh costs one API request (its status
    /// write), so N = 10,000 at `--kube-qps 200` need 50 s.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    refresh_interval: Duration,
    /// Latency samples of P2 and P6.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// kuvert's `--concurrency`, and the raw baseline's.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long the restarted process is watched.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    restart_window: Duration,
    /// Extra flag for `kuvert run` (repeat it), e.g. `--kuvert-arg=--kube-qps=500`.
    #[arg(long = "kuvert-arg", allow_hyphen_values = true)]
    kuvert_args: Vec<String>,
    /// Where the JSON report goes (`bench/results/` is git-ignored).
    #[arg(long, default_value = "bench/results/kuvert-bench.json")]
    out: PathBuf,
    /// Where kuvert's logs go (default: a temporary directory, removed at the end).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    kuvert_core::engine::status::parse_go_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s or 2m"))
}

/// Go syntax for a whole number of seconds, as the CRD takes it.
fn go_duration(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// How long any awaited state may take before the run gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long a single latency sample may take.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Refresh interval of the N outside the refresh-cycle phase: idle.
const IDLE_INTERVAL: &str = "1h";

fn log(phase: &str, text: impl std::fmt::Display) {
    eprintln!(
        "[{}] {phase}: {text}",
        jiff::Timestamp::now().strftime("%H:%M:%S")
    );
}

fn kube_calls(cluster: &DevClusterHandle) -> KubeCalls {
    KubeCalls {
        secret_writes: cluster.write_count("secrets"),
        status_writes: cluster.write_count("externalsecrets/status"),
        secret_gets: cluster.request_count("get", "secrets"),
        total: cluster.request_counts().values().sum(),
    }
}

fn is_ready(es: &ExternalSecret) -> bool {
    es.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.n > 0 && args.keys > 0,
        "--n and --keys must be at least 1"
    );
    let binary = process::kuvert_binary()?;
    let work = std::env::temp_dir().join(format!("kuvert-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let log_dir = args.log_dir.clone().unwrap_or_else(|| work.clone());
    std::fs::create_dir_all(&log_dir)?;
    let result = run(&args, &binary, &work, &log_dir).await;
    let _ = std::fs::remove_dir_all(&work);
    let report = result?;
    println!("{}", report::table(&report));
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    log("done", format!("report written to {}", args.out.display()));
    Ok(())
}

async fn run(
    args: &Args,
    binary: &std::path::Path,
    work: &std::path::Path,
    log_dir: &std::path::Path,
) -> anyhow::Result<Report> {
    let parameters = report::Parameters {
        n: args.n,
        k: args.keys,
        u: args.unrelated,
        unrelated_size: args.unrelated_size,
        refresh_interval: go_duration(args.refresh_interval),
        samples: args.samples,
        concurrency: args.concurrency,
        kuvert_args: args.kuvert_args.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        date: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
    };
    let mut kuvert_args = vec![
        "--concurrency".to_owned(),
        args.concurrency.to_string(),
        "--log-format".to_owned(),
        "json".to_owned(),
    ];
    kuvert_args.extend(args.kuvert_args.iter().cloned());

    log("setup", "starting OpenBao with a file audit device");
    let bao = OpenBao::start_audited().await;
    scenario::seed_keys(&bao, args.keys).await;
    for i in 0..args.samples {
        scenario::put(&bao, &scenario::probe_key(i), "initial").await;
    }
    log("setup", "starting devcluster");
    let mut config = Config::default();
    config.namespaces.extend(
        [
            NAMESPACE,
            scenario::BASELINE_NAMESPACE,
            scenario::UNRELATED_NAMESPACE,
        ]
        .map(String::from),
    );
    let cluster = DevCluster::start(config).await?;
    let client = cluster.client()?;
    let kubeconfig = work.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig)?;
    scenario::install(&client, &bao).await?;
    log(
        "setup",
        format!(
            "creating {} unrelated Secrets of {} bytes",
            args.unrelated, args.unrelated_size
        ),
    );
    scenario::create_unrelated(&client, args.unrelated, args.unrelated_size).await?;

    log("P1", "raw baseline");
    let baseline = scenario::baseline(&bao, &client, args.n, args.keys, args.concurrency).await?;
    log("P1", format!("baseline {:?}", baseline.elapsed));

    let mut first = Kuvert::start(
        binary,
        &kubeconfig,
        &log_dir.join("kuvert-1.log"),
        &kuvert_args,
    )?;
    first.wait_ready(Duration::from_secs(120)).await?;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);

    log("P1", format!("creating {} ExternalSecrets", args.n));
    let mark = audit::Mark::now(bao.audit_log())?;
    cluster.reset_request_counts();
    let from = track::current_version(&ess, None).await?;
    let started = Instant::now();
    let all_ready = {
        let ess = ess.clone();
        let n = args.n;
        tokio::spawn(
            async move { track::until(&ess, None, from, n, PHASE_TIMEOUT, is_ready).await },
        )
    };
    scenario::create_external_secrets(&client, args.n, args.keys, IDLE_INTERVAL).await?;
    let created = started.elapsed();
    let wall = all_ready.await??.duration_since(started);
    let p1 = InitialSync {
        wall,
        created,
        syncs_per_second: args.n as f64 / wall.as_secs_f64(),
        ratio: baseline.elapsed.as_secs_f64() / wall.as_secs_f64(),
        baseline,
        store: mark.calls_since(DATA_PREFIX)?,
        kube: kube_calls(&cluster),
    };
    log("P1", format!("{:?}", p1));
    tokio::time::sleep(Duration::from_secs(2)).await;

    log(
        "P2",
        format!("{} new ExternalSecrets, one at a time", args.samples),
    );
    let mut p2_samples = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let name = format!("probe-{i}");
        let fields = format!("metadata.name={name}");
        let from = track::current_version(&ess, Some(&fields)).await?;
        let es = scenario::external_secret(&name, &scenario::probe_key(i), IDLE_INTERVAL);
        let started = Instant::now();
        ess.create(&Default::default(), &es).await?;
        let ready = track::until(&ess, Some(&fields), from, 1, SAMPLE_TIMEOUT, is_ready).await?;
        p2_samples.push(ready.duration_since(started));
    }
    let p2 = Latency::of(&p2_samples);
    log("P2", format!("{p2:?}"));

    log("P6", format!("{} force-syncs, one at a time", args.samples));
    let mut p6_samples = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let name = format!("probe-{i}");
        let fields = format!("metadata.name={name}");
        let value = kuvert_testkit::random_hex(16);
        scenario::put(&bao, &scenario::probe_key(i), &value).await;
        let from = track::current_version(&secrets, Some(&fields)).await?;
        let started = Instant::now();
        ess.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                FORCE_SYNC_ANNOTATION: format!("{}", jiff::Timestamp::now().as_millisecond())
            }}})),
        )
        .await?;
        let updated = track::until(&secrets, Some(&fields), from, 1, SAMPLE_TIMEOUT, |s| {
            s.data
                .as_ref()
                .and_then(|d| d.get("value"))
                .is_some_and(|v| v.0 == value.as_bytes())
        })
        .await?;
        p6_samples.push(updated.duration_since(started));
    }
    let p6 = Latency::of(&p6_samples);
    log("P6", format!("{p6:?}"));

    let first_peak = first.memory()?.peak;
    first.kill().await?;
    // The probes leave; their Secrets follow by owner reference. The N remain.
    for i in 0..args.samples {
        ess.delete(&format!("probe-{i}"), &DeleteParams::default())
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    log("restart", "kuvert killed; starting it again");
    let mark = audit::Mark::now(bao.audit_log())?;
    cluster.reset_request_counts();
    let mut second = Kuvert::start(
        binary,
        &kubeconfig,
        &log_dir.join("kuvert-2.log"),
        &kuvert_args,
    )?;
    let ready = second.wait_ready(Duration::from_secs(120)).await?;
    tokio::time::sleep(args.restart_window.saturating_sub(ready)).await;
    let restart = Restart {
        ready,
        window: args.restart_window,
        store: mark.calls_since(DATA_PREFIX)?,
        kube: kube_calls(&cluster),
    };
    log("restart", format!("{restart:?}"));

    log(
        "P3/P4",
        format!(
            "refresh interval of the N set to {}",
            go_duration(args.refresh_interval)
        ),
    );
    let from = track::current_version(&ess, None).await?;
    let interval = go_duration(args.refresh_interval);
    stream::iter(0..args.n)
        .map(|i| {
            let (ess, interval) = (ess.clone(), interval.clone());
            async move {
                ess.patch(
                    &scenario::es_name(i),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"refreshInterval": interval}})),
                )
                .await
            }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("changing the refresh interval")?;
    track::until(&ess, None, from, args.n, PHASE_TIMEOUT, |es| {
        is_ready(es)
            && es.status.as_ref().and_then(|s| s.observed_generation) == es.metadata.generation
    })
    .await?;
    log(
        "P3/P4",
        "every ExternalSecret synced its new interval; measuring one cycle",
    );
    let mark = audit::Mark::now(bao.audit_log())?;
    cluster.reset_request_counts();
    tokio::time::sleep(args.refresh_interval).await;
    let cycle = RefreshCycle {
        window: args.refresh_interval,
        store: mark.calls_since(DATA_PREFIX)?,
        kube: kube_calls(&cluster),
    };
    log("P3/P4", format!("{cycle:?}"));
    let end = second.memory()?;
    let memory = report::Memory {
        first_peak,
        restarted_peak: end.peak,
        restarted_end: end.rss,
    };
    second.kill().await?;
    // Sanity: every Secret is still there.
    let managed = secrets
        .list_metadata(&ListParams::default().labels(kuvert_core::api::MANAGED_LABEL))
        .await?
        .items
        .len();
    anyhow::ensure!(
        managed == args.n,
        "{managed} managed Secrets at the end, not {}",
        args.n
    );

    let targets = report::judge(&parameters, &p1, &p2, &cycle, &memory, &p6, &restart);
    Ok(Report {
        parameters,
        p1_initial_sync: p1,
        p2_new_object: p2,
        p3_p4_refresh_cycle: cycle,
        p5_memory: memory,
        p6_force_sync: p6,
        restart,
        targets,
    })
}
