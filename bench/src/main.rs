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
mod cluster;
mod plot;
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
use kuvert_testkit::OpenBao;
use serde_json::json;

use cluster::{Backend, Cluster};
use process::{Kuvert, Sampler};
use report::{InitialSync, KubeCalls, Latency, PhaseCosts, RefreshCycle, Report, Restart, Runs};
use scenario::{DATA_PREFIX, LOAD_CONCURRENCY, NAMESPACE, is_ready};

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
    /// The API server to measure against: devcluster, the real control plane
    /// (kube-apiserver + etcd), or both one after the other into one report.
    #[arg(long, value_enum, default_value_t = Backends::Devcluster)]
    backend: Backends,
    /// Stop OpenBao this long after the refresh cycle, then start it again (0: no outage
    /// phase); Go syntax.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    outage: Duration,
}

/// The `--backend` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Backends {
    Devcluster,
    ControlPlane,
    Both,
}

impl Backends {
    fn list(self) -> Vec<Backend> {
        match self {
            Backends::Devcluster => vec![Backend::Devcluster],
            Backends::ControlPlane => vec![Backend::ControlPlane],
            Backends::Both => vec![Backend::Devcluster, Backend::ControlPlane],
        }
    }
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
pub(crate) const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long a single latency sample may take.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Refresh interval of the N outside the refresh-cycle phase: idle.
pub(crate) const IDLE_INTERVAL: &str = "1h";

fn log(phase: &str, text: impl std::fmt::Display) {
    eprintln!(
        "[{}] {phase}: {text}",
        jiff::Timestamp::now().strftime("%H:%M:%S")
    );
}

/// The API server's request counters and the processes' /proc figures at one moment, so a
/// phase reports what it cost.
struct Reading {
    at: Instant,
    counts: cluster::Counts,
    usage: Vec<(String, process::Usage)>,
}

/// kuvert's counter of store calls (`operator/src/metrics.rs`).
const STORE_REQUESTS: &str = "kuvert_store_requests_total";

/// What one backend's run measures with.
struct Meters<'a> {
    cluster: &'a Cluster,
    client: kube::Client,
    kuvert_pid: Option<u32>,
}

impl Meters<'_> {
    async fn read(&self) -> anyhow::Result<Reading> {
        let mut processes = self.cluster.processes();
        if let Some(pid) = self.kuvert_pid {
            processes.insert(0, ("kuvert".to_owned(), pid));
        }
        let usage = processes
            .into_iter()
            .filter_map(|(name, pid)| process::usage(pid).ok().map(|u| (name, u)))
            .collect();
        Ok(Reading {
            at: Instant::now(),
            counts: self.cluster.counts(&self.client).await?,
            usage,
        })
    }

    /// Requests and process costs since `before`, the phase's costs pushed to `costs`.
    async fn since(
        &self,
        phase: &str,
        before: &Reading,
        costs: &mut Vec<PhaseCosts>,
    ) -> anyhow::Result<KubeCalls> {
        let after = self.read().await?;
        costs.push(PhaseCosts::between(
            phase,
            after.at.duration_since(before.at),
            &before.usage,
            &after.usage,
        ));
        Ok(KubeCalls::between(&before.counts, &after.counts))
    }
}

/// What the plots are drawn from, beyond the report.
struct Traces {
    kuvert_ready: Vec<Duration>,
    baseline_ready: Vec<Duration>,
    p2: Vec<Duration>,
    p6: Vec<Duration>,
    rss: std::collections::BTreeMap<String, Vec<(f64, f64)>>,
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
    let mut runs = Runs { runs: Vec::new() };
    let mut traces = Vec::new();
    for backend in args.backend.list() {
        let logs = log_dir.join(backend.name());
        std::fs::create_dir_all(&logs)?;
        let result = run(&args, backend, &binary, &work, &logs).await;
        let (report, trace) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(e.context(format!("the run against {}", backend.name())));
            }
        };
        runs.runs.push(report);
        traces.push((backend, trace));
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", report::table(&runs));
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&runs)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    log("done", format!("report written to {}", args.out.display()));
    for path in write_plots(&args.out, &traces)? {
        log("done", format!("plot written to {}", path.display()));
    }
    Ok(())
}

/// The PNG plots next to the report `out` (`NAME-ready.png`, `NAME-latency.png`,
/// `NAME-memory.png` for `NAME.json`).
fn write_plots(
    out: &std::path::Path,
    traces: &[(Backend, Traces)],
) -> anyhow::Result<Vec<PathBuf>> {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kuvert-bench".to_owned());
    let path = |suffix: &str| out.with_file_name(format!("{stem}-{suffix}.png"));
    let mut ready = Vec::new();
    let mut latency = Vec::new();
    let mut memory = Vec::new();
    for (backend, t) in traces {
        let b = backend.name();
        ready.push(plot::cumulative(&format!("kuvert ({b})"), &t.kuvert_ready));
        ready.push(plot::cumulative(
            &format!("baseline ({b})"),
            &t.baseline_ready,
        ));
        latency.push(plot::distribution(
            &format!("P2 create -> Ready ({b})"),
            &t.p2,
        ));
        latency.push(plot::distribution(&format!("P6 force-sync ({b})"), &t.p6));
        for (name, points) in &t.rss {
            memory.push(plot::Series {
                name: format!("{name} ({b})"),
                points: points.clone(),
            });
        }
    }
    let charts = [
        (
            path("ready"),
            plot::Chart {
                title: "P1: ExternalSecrets Ready over time",
                x_label: "seconds since the first create",
                y_label: "Ready",
                series: ready,
            },
        ),
        (
            path("latency"),
            plot::Chart {
                title: "P2 and P6 latency distribution",
                x_label: "ms",
                y_label: "% of samples at or below",
                series: latency,
            },
        ),
        (
            path("memory"),
            plot::Chart {
                title: "Resident memory over the run",
                x_label: "seconds since the run started",
                y_label: "RSS, MiB",
                series: memory,
            },
        ),
    ];
    let mut written = Vec::new();
    for (path, chart) in charts {
        plot::write(&path, &chart)?;
        written.push(path);
    }
    Ok(written)
}

async fn run(
    args: &Args,
    backend: Backend,
    binary: &std::path::Path,
    work: &std::path::Path,
    log_dir: &std::path::Path,
) -> anyhow::Result<(Report, Traces)> {
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
    let sampler = Sampler::start(Duration::from_millis(250));
    let mut costs = Vec::new();

    log(backend.name(), "starting OpenBao with a file audit device");
    let mut bao = OpenBao::start_audited().await;
    let values = scenario::seed_keys(&bao, args.keys).await;
    for i in 0..args.samples {
        scenario::put(&bao, &scenario::probe_key(i), "initial").await;
    }
    log(backend.name(), "starting the API server");
    let cluster = Cluster::start(
        backend,
        &[
            NAMESPACE,
            scenario::BASELINE_NAMESPACE,
            scenario::UNRELATED_NAMESPACE,
        ],
    )
    .await?;
    for (name, pid) in cluster.processes() {
        sampler.watch(&name, pid);
    }
    let client = cluster.client().await?;
    let kubeconfig = work.join(format!("kubeconfig-{}", backend.name()));
    cluster.write_kubeconfig(&kubeconfig)?;
    scenario::install(&client, &bao, cluster.needs_crds()).await?;
    log(
        "setup",
        format!(
            "creating {} unrelated Secrets of {} bytes",
            args.unrelated, args.unrelated_size
        ),
    );
    scenario::create_unrelated(&client, args.unrelated, args.unrelated_size).await?;
    let mut meters = Meters {
        cluster: &cluster,
        client: client.clone(),
        kuvert_pid: None,
    };

    log("P1", "raw baseline (K reads, N Secret creates)");
    let raw_baseline =
        scenario::raw_baseline(&bao, &client, args.n, args.keys, args.concurrency).await?;
    log("P1", format!("raw baseline {:?}", raw_baseline.elapsed));
    log(
        "P1",
        "operator baseline (N ExternalSecrets, K reads, N Secrets, N statuses, a watch)",
    );
    let mark = audit::Mark::now(bao.audit_log())?;
    let before = meters.read().await?;
    let mut baseline =
        scenario::baseline(&bao, &client, args.n, args.keys, args.concurrency).await?;
    baseline.store = mark.calls_since(DATA_PREFIX)?;
    baseline.kube = meters.since("baseline", &before, &mut costs).await?;
    log(
        "P1",
        format!(
            "baseline {:?} ({} store reads)",
            baseline.elapsed, baseline.store.reads
        ),
    );

    let mut first = Kuvert::start(
        binary,
        &kubeconfig,
        &log_dir.join("kuvert-1.log"),
        &kuvert_args,
    )?;
    sampler.watch("kuvert", first.pid());
    meters.kuvert_pid = Some(first.pid());
    first.wait_ready(Duration::from_secs(120)).await?;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);

    log("P1", format!("creating {} ExternalSecrets", args.n));
    let mark = audit::Mark::now(bao.audit_log())?;
    let before = meters.read().await?;
    let from = track::current_version(&ess, None).await?;
    let started = Instant::now();
    let all_ready = {
        let ess = ess.clone();
        let n = args.n;
        tokio::spawn(async move {
            track::until_each(&ess, None, from, n, PHASE_TIMEOUT, is_ready).await
        })
    };
    scenario::create_external_secrets(&client, NAMESPACE, args.n, args.keys, IDLE_INTERVAL, None)
        .await?;
    let created = started.elapsed();
    let progress = all_ready.await??;
    let wall = progress.all.duration_since(started);
    let kube = meters.since("P1", &before, &mut costs).await?;
    let p1 = InitialSync {
        wall,
        created,
        syncs_per_second: args.n as f64 / wall.as_secs_f64(),
        ratio: baseline.elapsed.as_secs_f64() / wall.as_secs_f64(),
        raw_ratio: raw_baseline.elapsed.as_secs_f64() / wall.as_secs_f64(),
        beyond_baseline: kube.beyond(&baseline.kube),
        baseline,
        raw_baseline,
        store: mark.calls_since(DATA_PREFIX)?,
        kube,
    };
    log("P1", format!("{:?}", p1));
    let kuvert_ready = progress
        .each
        .iter()
        .map(|t| t.duration_since(started))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    log(
        "P2",
        format!("{} new ExternalSecrets, one at a time", args.samples),
    );
    let before = meters.read().await?;
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
    meters.since("P2", &before, &mut costs).await?;
    let p2 = Latency::of(&p2_samples);
    log("P2", format!("{p2:?}"));

    log("P6", format!("{} force-syncs, one at a time", args.samples));
    let before = meters.read().await?;
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
    meters.since("P6", &before, &mut costs).await?;
    let p6 = Latency::of(&p6_samples);
    log("P6", format!("{p6:?}"));

    let first_peak = first.memory()?.peak;
    first.kill().await?;
    meters.kuvert_pid = None;
    // The probes leave; their Secrets follow by owner reference. The N remain.
    for i in 0..args.samples {
        ess.delete(&format!("probe-{i}"), &DeleteParams::default())
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    log("restart", "kuvert killed; starting it again");
    let mark = audit::Mark::now(bao.audit_log())?;
    let mut second = Kuvert::start(
        binary,
        &kubeconfig,
        &log_dir.join("kuvert-2.log"),
        &kuvert_args,
    )?;
    sampler.watch("kuvert", second.pid());
    meters.kuvert_pid = Some(second.pid());
    // kuvert's CPU from its start: the reading holds zero for it.
    let mut before = meters.read().await?;
    for (name, usage) in &mut before.usage {
        if name == "kuvert" {
            usage.cpu_seconds = 0.0;
        }
    }
    let ready = second.wait_ready(Duration::from_secs(120)).await?;
    tokio::time::sleep(args.restart_window.saturating_sub(ready)).await;
    let restart = Restart {
        ready,
        window: args.restart_window,
        store: mark.calls_since(DATA_PREFIX)?,
        kube: meters.since("restart", &before, &mut costs).await?,
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
    let before = meters.read().await?;
    tokio::time::sleep(args.refresh_interval).await;
    let cycle = RefreshCycle {
        window: args.refresh_interval,
        store: mark.calls_since(DATA_PREFIX)?,
        kube: meters.since("P3/P4", &before, &mut costs).await?,
    };
    log("P3/P4", format!("{cycle:?}"));

    let outage = if args.outage.is_zero() {
        None
    } else {
        log("outage", format!("OpenBao stopped for {:?}", args.outage));
        let before = meters.read().await?;
        let calls_before = second.counter(STORE_REQUESTS).await?;
        bao.stop().await;
        tokio::time::sleep(args.outage).await;
        let calls = second.counter(STORE_REQUESTS).await? - calls_before;
        let rss = second.memory()?.rss;
        bao.start_again().await;
        // A dev server keeps nothing: the same values again, so no Secret has cause to change.
        scenario::reseed(&bao, &values).await;
        let back = Instant::now();
        track::until(&ess, None, String::new(), args.n, PHASE_TIMEOUT, is_ready).await?;
        let outage = report::Outage {
            down: args.outage,
            store_requests_per_second: calls / args.outage.as_secs_f64(),
            kuvert_rss_mib: rss as f64 / (1024.0 * 1024.0),
            ready_again: back.elapsed(),
            kube: meters.since("outage", &before, &mut costs).await?,
        };
        log("outage", format!("{outage:?}"));
        Some(outage)
    };
    let end = second.memory()?;
    let memory = report::Memory {
        first_peak,
        restarted_peak: end.peak,
        restarted_end: end.rss,
    };
    second.kill().await?;
    sampler.stop();
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

    let targets = report::judge(
        &parameters,
        &p1,
        &p2,
        &cycle,
        &memory,
        &p6,
        &restart,
        outage.as_ref(),
    );
    let traces = Traces {
        kuvert_ready,
        baseline_ready: p1.baseline.ready_at.clone(),
        p2: p2_samples,
        p6: p6_samples,
        rss: sampler.series(),
    };
    Ok((
        Report {
            backend,
            parameters,
            p1_initial_sync: p1,
            p2_new_object: p2,
            p3_p4_refresh_cycle: cycle,
            p5_memory: memory,
            p6_force_sync: p6,
            restart,
            outage,
            targets,
            costs,
        },
        traces,
    ))
}
