//! The `kuvert run` process under test: started from the release build next to this binary,
//! measured through /proc and its /metrics endpoint, killed at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `kuvert` binary: `$KUVERT_BIN`, else the one built next to this benchmark
/// (`cargo build --release -p kuvert-operator` puts both in `target/release`).
pub fn kuvert_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("KUVERT_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let candidate = exe.with_file_name("kuvert");
    if !candidate.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p kuvert-operator` \
             (`make bench` does), or name a binary with KUVERT_BIN",
            candidate.display()
        );
    }
    Ok(candidate)
}

/// A running `kuvert run`.
pub struct Kuvert {
    child: tokio::process::Child,
    pid: u32,
    metrics_port: u16,
}

impl Kuvert {
    /// Starts `kuvert run` against `kubeconfig`, logging to `log`, with `extra` flags.
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        log: &Path,
        extra: &[String],
    ) -> anyhow::Result<Kuvert> {
        let metrics_port = kuvert_testkit::free_port();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = tokio::process::Command::new(binary)
            .arg("run")
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("kuvert exited at once")?;
        Ok(Kuvert {
            child,
            pid,
            metrics_port,
        })
    }

    /// Waits until `/readyz` answers 200 (its caches are synced); returns how long that took.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("kuvert exited before it was ready: {status}");
            }
            if matches!(self.get("/readyz").await, Ok((200, _))) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("kuvert was not ready after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GETs a path of the metrics endpoint: (status code, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let status = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .context("not an HTTP response")?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The sum of the counter `name` (every label set) on kuvert's /metrics.
    pub async fn counter(&self, name: &str) -> anyhow::Result<f64> {
        let (status, body) = self.get("/metrics").await?;
        anyhow::ensure!(status == 200, "kuvert's /metrics answered {status}");
        Ok(sum_counter(&body, name))
    }

    /// Resident memory now and at its peak (`VmRSS`, `VmHWM` of /proc/PID/status), in bytes.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading /proc of kuvert")?;
        parse_memory(&status)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process (SIGKILL: a crash, not a graceful stop) and waits for it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// CPU time (user and system, since the process started) and memory of any process, from
/// `/proc/PID/stat` and `/proc/PID/status`: kuvert, the API server, etcd.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Usage {
    /// CPU seconds used so far.
    pub cpu_seconds: f64,
    /// Resident now, bytes.
    pub rss: u64,
    /// Peak resident, bytes.
    pub peak: u64,
}

/// The kernel's clock ticks per second in /proc (`USER_HZ`): 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// CPU time and memory of process `pid`.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let memory = parse_memory(&status)?;
    Ok(Usage {
        cpu_seconds: parse_cpu_seconds(&stat)?,
        rss: memory.rss,
        peak: memory.peak,
    })
}

/// `utime` + `stime` (fields 14 and 15) of a `/proc/PID/stat` line, in seconds. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn parse_cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc stat has no command name")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("/proc stat field {} is not a tick count", i + 3))
    };
    Ok((tick(11)? + tick(12)?) as f64 / USER_HZ)
}

/// Samples the resident memory of a changing set of processes (kuvert is restarted) every
/// `period`, for the plot of memory over the whole run.
#[derive(Clone)]
pub struct Sampler {
    watched: std::sync::Arc<std::sync::Mutex<Vec<(String, u32)>>>,
    samples: std::sync::Arc<std::sync::Mutex<Vec<(Duration, String, u64)>>>,
}

impl Sampler {
    /// Starts sampling (nothing, until [`Sampler::watch`]) from now.
    pub fn start(period: Duration) -> Sampler {
        let sampler = Sampler {
            watched: Default::default(),
            samples: Default::default(),
        };
        let started = Instant::now();
        let task = sampler.clone();
        tokio::spawn(async move {
            loop {
                let watched = task.watched.lock().expect("sampler lock").clone();
                for (name, pid) in watched {
                    // A process that just exited has no /proc entry: no sample.
                    if let Ok(u) = usage(pid) {
                        task.samples.lock().expect("sampler lock").push((
                            started.elapsed(),
                            name,
                            u.rss,
                        ));
                    }
                }
                // Ends with the runtime; the samples stay with the other clones.
                tokio::time::sleep(period).await;
            }
        });
        sampler
    }

    /// Samples `pid` under `name` from now on, in place of a process of that name before.
    pub fn watch(&self, name: &str, pid: u32) {
        let mut watched = self.watched.lock().expect("sampler lock");
        watched.retain(|(n, _)| n != name);
        watched.push((name.to_owned(), pid));
    }

    /// Stops sampling (the samples stay).
    pub fn stop(&self) {
        self.watched.lock().expect("sampler lock").clear();
    }

    /// The samples so far, by process name: (seconds since start, MiB).
    pub fn series(&self) -> std::collections::BTreeMap<String, Vec<(f64, f64)>> {
        let mut by_name: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
        for (at, name, rss) in self.samples.lock().expect("sampler lock").iter() {
            by_name
                .entry(name.clone())
                .or_default()
                .push((at.as_secs_f64(), *rss as f64 / (1024.0 * 1024.0)));
        }
        by_name
    }
}

/// The sum of every sample of counter `name` in a Prometheus text exposition.
fn sum_counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Resident set sizes of a process, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Resident now.
    pub rss: u64,
    /// The highest resident size the process ever had.
    pub peak: u64,
}

fn parse_memory(status: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("/proc status has no {name}"))?;
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("/proc status {name} is not a number of kB: {line:?}"))?;
        Ok(kib * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_summed_over_its_label_sets_only() {
        let text = "# TYPE kuvert_store_requests_total counter\n\
            kuvert_store_requests_total{provider=\"vault\",outcome=\"ok\"} 7\n\
            kuvert_store_requests_total{provider=\"vault\",outcome=\"unavailable\"} 5\n\
            kuvert_store_requests_total_other 100\n\
            kuvert_sync_total{kind=\"x\"} 3\n";
        assert_eq!(sum_counter(text, "kuvert_store_requests_total"), 12.0);
        assert_eq!(sum_counter(text, "kuvert_missing"), 0.0);
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm_in_kib() {
        let status =
            "Name:\tkuvert\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(
            parse_memory(status).unwrap(),
            Memory {
                rss: 20 * 1024 * 1024,
                peak: 40 * 1024 * 1024
            }
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_memory("VmRSS:\t1 kB\n").unwrap_err();
        assert_eq!(err.to_string(), "/proc status has no VmHWM:");
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may choose.
        let stat = "4242 (kube apiserver) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    12 0 900 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_seconds(stat).unwrap(), 3.25);
        let err = parse_cpu_seconds("1 (x) S 1").unwrap_err();
        assert_eq!(err.to_string(), "/proc stat field 14 is not a tick count");
    }

    #[test]
    fn a_child_process_usage_is_read_from_proc() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let read = usage(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        let read = read.unwrap();
        assert!(read.rss > 0 && read.peak >= read.rss, "{read:?}");
        assert!(
            read.cpu_seconds >= 0.0 && read.cpu_seconds < 5.0,
            "{read:?}"
        );
        let gone = usage(child.id()).unwrap_err();
        assert_eq!(
            gone.to_string(),
            format!("reading /proc/{}/stat", child.id())
        );
    }

    #[tokio::test]
    async fn the_sampler_records_the_memory_of_the_watched_process() {
        let sampler = Sampler::start(Duration::from_millis(10));
        sampler.watch("self", std::process::id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while sampler.series().get("self").is_none_or(|s| s.len() < 2) && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let series = sampler.series();
        let samples = &series["self"];
        assert!(samples.len() >= 2, "{samples:?}");
        assert!(samples.windows(2).all(|w| w[0].0 <= w[1].0), "{samples:?}");
        assert!(samples.iter().all(|(_, mib)| *mib > 0.0), "{samples:?}");
        assert_eq!(series.keys().collect::<Vec<_>>(), vec!["self"]);
    }

    #[test]
    fn this_process_has_a_peak_at_least_its_current_size() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let memory = parse_memory(&status).unwrap();
        assert!(memory.rss > 0 && memory.peak >= memory.rss, "{memory:?}");
    }
}
