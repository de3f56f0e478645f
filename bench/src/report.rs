//! The figures, their targets, the printed table and the JSON file.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::audit::Calls;
use crate::cluster::Backend;
use crate::process::Usage;
use crate::scenario::{Baseline, RawBaseline};
use crate::stats::{ms, percentile};

/// Serializes a duration as seconds with a fraction.
pub fn as_seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// What one run was given.
#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    /// ExternalSecrets.
    pub n: usize,
    /// Distinct remote keys they read.
    pub k: usize,
    /// Unrelated Secrets.
    pub u: usize,
    /// Size of each unrelated Secret, bytes.
    pub unrelated_size: usize,
    /// Refresh interval of the P3/P4 cycle.
    pub refresh_interval: String,
    /// Latency samples of P2 and P6.
    pub samples: usize,
    /// kuvert's `--concurrency`, also the baseline's.
    pub concurrency: usize,
    /// Extra flags given to `kuvert run`.
    pub kuvert_args: Vec<String>,
    /// CPU cores of the machine.
    pub cores: usize,
    /// When the run started (UTC).
    pub date: String,
}

/// Latency samples summarised.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Samples taken.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises `samples`.
    pub fn of(samples: &[Duration]) -> Latency {
        let at = |p| percentile(samples, p).map_or(f64::NAN, ms);
        Latency {
            samples: samples.len(),
            p50_ms: at(50.0),
            p99_ms: at(99.0),
            max_ms: at(100.0),
        }
    }
}

/// Kubernetes API requests of a phase, from devcluster's counters or the API server's
/// `apiserver_request_total`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct KubeCalls {
    /// Secret creates, updates, patches and deletes.
    pub secret_writes: u64,
    /// ExternalSecret status writes.
    pub status_writes: u64,
    /// Secret GETs.
    pub secret_gets: u64,
    /// Events created (kuvert's one per first sync).
    pub event_creates: u64,
    /// Every request.
    pub total: u64,
}

/// P1: initial sync.
#[derive(Clone, Debug, Serialize)]
pub struct InitialSync {
    /// Create of the first → the last Ready.
    #[serde(serialize_with = "as_seconds")]
    pub wall: Duration,
    /// Create of the first → the last create answered: how fast the API server took the N
    /// (the benchmark's own load, through the same server). Little more than `wall` means
    /// kuvert kept pace with the creates.
    #[serde(serialize_with = "as_seconds")]
    pub created: Duration,
    /// N / wall.
    pub syncs_per_second: f64,
    /// The operator baseline in the same run: the least any sync operator must do.
    pub baseline: Baseline,
    /// baseline wall / kuvert wall (the target).
    pub ratio: f64,
    /// The raw baseline (K reads, N Secret creates, no ExternalSecrets) in the same run.
    pub raw_baseline: RawBaseline,
    /// raw baseline wall / kuvert wall (the figure reported before issue 21).
    pub raw_ratio: f64,
    /// Requests kuvert made beyond the operator baseline's (its Events, watches, lists and
    /// Secret GETs), from the counters of both phases.
    pub beyond_baseline: KubeCalls,
    /// Store calls during P1.
    pub store: Calls,
    /// Kubernetes requests during P1.
    pub kube: KubeCalls,
}

/// P3 and P4: one refresh cycle with nothing changed.
#[derive(Clone, Debug, Serialize)]
pub struct RefreshCycle {
    /// The window measured (one refresh interval).
    #[serde(serialize_with = "as_seconds")]
    pub window: Duration,
    /// Store calls in the window (P3).
    pub store: Calls,
    /// Kubernetes requests in the window (P4).
    pub kube: KubeCalls,
}

/// Restart of kuvert with N synced objects.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// Start → /readyz.
    #[serde(serialize_with = "as_seconds")]
    pub ready: Duration,
    /// The window measured after the start.
    #[serde(serialize_with = "as_seconds")]
    pub window: Duration,
    /// Store calls in the window.
    pub store: Calls,
    /// Kubernetes requests in the window.
    pub kube: KubeCalls,
}

/// A store outage: OpenBao stopped for a while, then started again.
#[derive(Clone, Debug, Serialize)]
pub struct Outage {
    /// How long OpenBao was down.
    #[serde(serialize_with = "as_seconds")]
    pub down: Duration,
    /// kuvert's store requests per second while it was down (its `kuvert_store_requests_total`:
    /// a stopped server logs nothing).
    pub store_requests_per_second: f64,
    /// kuvert's resident memory at the end of the outage, MiB.
    pub kuvert_rss_mib: f64,
    /// OpenBao back → every ExternalSecret Ready again.
    #[serde(serialize_with = "as_seconds")]
    pub ready_again: Duration,
    /// Kubernetes requests from the stop until all were Ready again.
    pub kube: KubeCalls,
}

/// P5: memory of the kuvert process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Memory {
    /// Peak RSS of the first process (initial sync, P2, P6), bytes.
    pub first_peak: u64,
    /// Peak RSS of the restarted process (restart, P3/P4), bytes.
    pub restarted_peak: u64,
    /// RSS of the restarted process at the end, bytes.
    pub restarted_end: u64,
}

impl Memory {
    /// The higher of both peaks.
    pub fn peak(&self) -> u64 {
        self.first_peak.max(self.restarted_peak)
    }
}

/// CPU seconds a process spent in a phase, and its resident memory at the phase's end.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessCost {
    /// `kuvert`, `kube-apiserver`, `etcd`, or the benchmark process holding devcluster.
    pub process: String,
    /// CPU seconds (user and system) during the phase.
    pub cpu_seconds: f64,
    /// Resident memory at the phase's end, MiB.
    pub rss_mib: f64,
}

/// What each process cost during each phase: which side bounds a figure.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseCosts {
    /// The phase (`baseline`, `P1`, `P2`, `P6`, `restart`, `P3/P4`).
    pub phase: String,
    /// Its wall time, seconds.
    pub wall_seconds: f64,
    /// One entry per process.
    pub processes: Vec<ProcessCost>,
}

impl PhaseCosts {
    /// The costs between two readings of the same processes (by name); processes missing from
    /// either reading are left out.
    pub fn between(
        phase: &str,
        wall: Duration,
        before: &[(String, Usage)],
        after: &[(String, Usage)],
    ) -> PhaseCosts {
        let processes = after
            .iter()
            .filter_map(|(name, end)| {
                let start = before.iter().find(|(n, _)| n == name)?;
                Some(ProcessCost {
                    process: name.clone(),
                    cpu_seconds: ((end.cpu_seconds - start.1.cpu_seconds) * 100.0).round() / 100.0,
                    rss_mib: (end.rss as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0,
                })
            })
            .collect();
        PhaseCosts {
            phase: phase.to_owned(),
            wall_seconds: (wall.as_secs_f64() * 1000.0).round() / 1000.0,
            processes,
        }
    }
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The API server measured against.
    pub backend: Backend,
    /// What the run was given.
    pub parameters: Parameters,
    /// P1.
    pub p1_initial_sync: InitialSync,
    /// P2.
    pub p2_new_object: Latency,
    /// P3 and P4.
    pub p3_p4_refresh_cycle: RefreshCycle,
    /// P5.
    pub p5_memory: Memory,
    /// P6.
    pub p6_force_sync: Latency,
    /// Restart.
    pub restart: Restart,
    /// The store outage (with `--outage`).
    pub outage: Option<Outage>,
    /// Each target: (figure, value, target, met).
    pub targets: Vec<Target>,
    /// CPU and memory of kuvert and of the API server's processes per phase.
    pub costs: Vec<PhaseCosts>,
}

/// Every run of one invocation (one per backend), written as one JSON file.
#[derive(Clone, Debug, Serialize)]
pub struct Runs {
    /// The runs, in the order made.
    pub runs: Vec<Report>,
}

/// A target and whether the run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// The figure.
    pub figure: String,
    /// Its value this run.
    pub value: String,
    /// The target.
    pub target: String,
    /// Met or not.
    pub met: bool,
}

fn target(figure: &str, value: String, target: &str, met: bool) -> Target {
    Target {
        figure: figure.to_owned(),
        value,
        target: target.to_owned(),
        met,
    }
}

/// Judges every figure against the targets.
#[allow(clippy::too_many_arguments)]
pub fn judge(
    p: &Parameters,
    p1: &InitialSync,
    p2: &Latency,
    cycle: &RefreshCycle,
    memory: &Memory,
    p6: &Latency,
    restart: &Restart,
    outage: Option<&Outage>,
) -> Vec<Target> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut targets = vec![
        target(
            "P1 initial sync ratio to the operator baseline",
            format!(
                "{:.2} ({:.1} s, {:.0} syncs/s; creates {:.1} s; baseline {:.1} s)",
                p1.ratio,
                p1.wall.as_secs_f64(),
                p1.syncs_per_second,
                p1.created.as_secs_f64(),
                p1.baseline.elapsed.as_secs_f64()
            ),
            ">= 0.7",
            p1.ratio >= 0.7,
        ),
        target(
            "P1 ratio to the raw baseline (before issue 21)",
            format!(
                "{:.3} (raw baseline {:.2} s)",
                p1.raw_ratio,
                p1.raw_baseline.elapsed.as_secs_f64()
            ),
            "",
            true,
        ),
        target(
            "P1 kuvert's requests beyond the baseline",
            format!(
                "{} ({} Events, {} Secret GETs)",
                p1.beyond_baseline.total,
                p1.beyond_baseline.event_creates,
                p1.beyond_baseline.secret_gets
            ),
            "",
            true,
        ),
        target(
            "P1 store reads",
            format!(
                "{} of {} distinct keys (baseline {})",
                p1.store.reads, p1.store.distinct, p1.baseline.store.reads
            ),
            "= K",
            p1.store.reads == p.k as u64,
        ),
        target(
            "P2 new ExternalSecret create -> Ready p99",
            format!("p50 {} ms, p99 {} ms", p2.p50_ms, p2.p99_ms),
            "<= 100 ms",
            p2.p99_ms <= 100.0,
        ),
        target(
            "P3 store calls per refresh cycle",
            format!("{} reads (K = {}, N = {})", cycle.store.reads, p.k, p.n),
            "= K",
            cycle.store.reads <= p.k as u64,
        ),
        target(
            "P4 Secret writes per cycle, nothing changed",
            cycle.kube.secret_writes.to_string(),
            "0",
            cycle.kube.secret_writes == 0,
        ),
        target(
            "P4 status writes per cycle",
            format!("{} (N = {})", cycle.kube.status_writes, p.n),
            "<= N",
            cycle.kube.status_writes <= p.n as u64,
        ),
        target(
            "P5 peak RSS of kuvert",
            format!("{:.1} MiB", mib(memory.peak())),
            "<= 64 MiB",
            memory.peak() <= 64 * 1024 * 1024,
        ),
        target(
            "P6 force-sync -> Secret updated p99",
            format!("p50 {} ms, p99 {} ms", p6.p50_ms, p6.p99_ms),
            "<= 100 ms",
            p6.p99_ms <= 100.0,
        ),
        target(
            "Restart: Secret writes in the first window",
            restart.kube.secret_writes.to_string(),
            "0",
            restart.kube.secret_writes == 0,
        ),
        target(
            "Restart: store calls in the first window",
            format!("{} (none due)", restart.store.reads),
            "0 (only objects due)",
            restart.store.reads == 0,
        ),
    ];
    if let Some(o) = outage {
        targets.extend([
            target(
                "Outage: store requests per second while down",
                format!(
                    "{:.1} over {:.0} s (kuvert RSS {:.1} MiB)",
                    o.store_requests_per_second,
                    o.down.as_secs_f64(),
                    o.kuvert_rss_mib
                ),
                "",
                true,
            ),
            target(
                "Outage: Secret writes",
                o.kube.secret_writes.to_string(),
                "0",
                o.kube.secret_writes == 0,
            ),
            target(
                "Outage: back -> all Ready again",
                format!("{:.1} s", o.ready_again.as_secs_f64()),
                "",
                true,
            ),
        ]);
    }
    targets
}

/// The table printed at the end: one row per figure, one column per backend.
pub fn table(runs: &Runs) -> String {
    let Some(first) = runs.runs.first() else {
        return String::new();
    };
    let p = &first.parameters;
    let mut out = format!(
        "kuvert-bench {} — N = {}, K = {}, U = {} × {} B, refresh {}, {} cores, samples {}\n\n",
        p.date, p.n, p.k, p.u, p.unrelated_size, p.refresh_interval, p.cores, p.samples
    );
    let cell = |t: &Target| {
        let verdict = match (t.target.is_empty(), t.met) {
            (true, _) => "",
            (false, true) => " [met]",
            (false, false) => " [NOT MET]",
        };
        format!("{}{verdict}", t.value)
    };
    let width = first
        .targets
        .iter()
        .map(|t| t.figure.len())
        .max()
        .unwrap_or(0);
    let value_width = runs
        .runs
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| cell(t).chars().count()))
        .max()
        .unwrap_or(0)
        .max(14);
    out.push_str(&format!("{:width$}  {:<8}", "figure", "target"));
    for run in &runs.runs {
        out.push_str(&format!("  {:value_width$}", run.backend.name()));
    }
    out.push('\n');
    for (i, t) in first.targets.iter().enumerate() {
        out.push_str(&format!("{:width$}  {:<8}", t.figure, t.target));
        for run in &runs.runs {
            let value = run.targets.get(i).map(cell).unwrap_or_default();
            out.push_str(&format!("  {value:value_width$}"));
        }
        out.push('\n');
    }
    out.push_str("\nCPU seconds per phase (RSS at its end, MiB):\n");
    for run in &runs.runs {
        for phase in &run.costs {
            let parts: Vec<String> = phase
                .processes
                .iter()
                .map(|c| {
                    format!(
                        "{} {:.2} s ({:.1} MiB)",
                        c.process, c.cpu_seconds, c.rss_mib
                    )
                })
                .collect();
            out.push_str(&format!(
                "  {:<14} {:<8} {:>7.2} s wall: {}\n",
                run.backend.name(),
                phase.phase,
                phase.wall_seconds,
                parts.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu_seconds: f64, rss: u64) -> Usage {
        Usage {
            cpu_seconds,
            rss,
            peak: rss,
        }
    }

    #[test]
    fn phase_costs_are_cpu_differences_by_process_with_the_final_rss() {
        let before = vec![
            ("kuvert".to_owned(), usage(1.0, 1 << 20)),
            ("etcd".to_owned(), usage(10.0, 1 << 20)),
        ];
        let after = vec![
            ("kuvert".to_owned(), usage(3.5, 3 << 20)),
            ("etcd".to_owned(), usage(10.25, 5 << 20)),
            ("kube-apiserver".to_owned(), usage(9.0, 1 << 20)),
        ];
        let costs = PhaseCosts::between("P1", Duration::from_millis(1500), &before, &after);
        let rows: Vec<(&str, f64, f64)> = costs
            .processes
            .iter()
            .map(|c| (c.process.as_str(), c.cpu_seconds, c.rss_mib))
            .collect();
        assert_eq!(rows, vec![("kuvert", 2.5, 3.0), ("etcd", 0.25, 5.0)]);
        assert_eq!((costs.phase.as_str(), costs.wall_seconds), ("P1", 1.5));
    }

    #[test]
    fn latency_summary_reports_nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert_eq!(
            (l.samples, l.p50_ms, l.p99_ms, l.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
    }
}
