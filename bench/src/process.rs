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

    /// Resident memory now and at its peak (`VmRSS`, `VmHWM` of /proc/PID/status), in bytes.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading /proc of kuvert")?;
        parse_memory(&status)
    }

    /// Kills the process (SIGKILL: a crash, not a graceful stop) and waits for it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
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
    fn this_process_has_a_peak_at_least_its_current_size() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let memory = parse_memory(&status).unwrap();
        assert!(memory.rss > 0 && memory.peak >= memory.rss, "{memory:?}");
    }
}
