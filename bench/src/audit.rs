//! Store calls counted on the server side, from OpenBao's file audit log.
//!
//! OpenBao writes one JSON line per request (`"type":"request"`) and one per response. A store
//! call is a request line whose operation is `read` on the KV data path of the benchmark mount;
//! a [`Mark`] remembers how far the log had grown, so a phase counts only its own calls.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

/// A position in the audit log.
#[derive(Clone, Debug)]
pub struct Mark {
    path: PathBuf,
    offset: u64,
}

/// Calls since a mark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Calls {
    /// Reads of secrets under the data prefix (what ExternalSecrets cost the store).
    pub reads: u64,
    /// Distinct paths among those reads: `reads` above `distinct` are second reads of a key
    /// (e.g. a first sync after the coalesce window of the key's first read had passed).
    pub distinct: u64,
    /// Every other request (logins, token lookups, health checks, writes by the benchmark).
    pub other: u64,
}

impl Mark {
    /// The current end of the log at `path` (the start when it does not exist yet).
    pub fn now(path: &Path) -> anyhow::Result<Mark> {
        let offset = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Mark {
            path: path.to_owned(),
            offset,
        })
    }

    /// Requests logged since this mark, reads counted when their path starts with
    /// `data_prefix` (e.g. `secret/data/bench/`).
    pub fn calls_since(&self, data_prefix: &str) -> anyhow::Result<Calls> {
        let text = std::fs::read(&self.path)
            .with_context(|| format!("reading the audit log {}", self.path.display()))?;
        let start = usize::try_from(self.offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        count(&text[start..], data_prefix)
    }
}

/// Counts the request lines of an audit log excerpt.
pub fn count(log: &[u8], data_prefix: &str) -> anyhow::Result<Calls> {
    let mut calls = Calls::default();
    let mut paths = std::collections::HashSet::new();
    for line in log.split(|b| *b == b'\n') {
        // The last line may still be being written: only whole lines count.
        if line.is_empty() || line.last() != Some(&b'}') {
            continue;
        }
        let entry: Value = serde_json::from_slice(line).context("an audit line is not JSON")?;
        if entry["type"] != "request" {
            continue;
        }
        let request = &entry["request"];
        let read = request["path"]
            .as_str()
            .filter(|p| request["operation"] == "read" && p.starts_with(data_prefix));
        if let Some(path) = read {
            calls.reads += 1;
            if paths.insert(path.to_owned()) {
                calls.distinct += 1;
            }
        } else {
            calls.other += 1;
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_request_lines_count_and_reads_are_those_under_the_prefix() {
        let lines = [
            json!({"type": "request", "request": {"operation": "read", "path": "secret/data/bench/key-1"}}),
            json!({"type": "response", "request": {"operation": "read", "path": "secret/data/bench/key-1"}}),
            json!({"type": "request", "request": {"operation": "read", "path": "secret/data/other"}}),
            json!({"type": "request", "request": {"operation": "update", "path": "secret/data/bench/key-1"}}),
            json!({"type": "request", "request": {"operation": "read", "path": "secret/data/bench/key-2"}}),
            json!({"type": "request", "request": {"operation": "read", "path": "secret/data/bench/key-1"}}),
        ];
        let log: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(
            count(log.as_bytes(), "secret/data/bench/").unwrap(),
            Calls {
                reads: 3,
                distinct: 2,
                other: 2
            }
        );
    }

    #[test]
    fn a_partly_written_last_line_is_not_counted_yet() {
        let log = "{\"type\":\"request\",\"request\":{\"operation\":\"read\",\"path\":\"secret/data/a\"}}\n{\"type\":\"requ";
        assert_eq!(
            count(log.as_bytes(), "secret/data/").unwrap(),
            Calls {
                reads: 1,
                distinct: 1,
                other: 0
            }
        );
    }

    #[test]
    fn a_corrupt_line_is_an_error() {
        let err = count(b"not json}\n", "secret/data/").unwrap_err();
        assert_eq!(err.to_string(), "an audit line is not JSON");
    }

    #[tokio::test]
    async fn reads_of_a_real_openbao_are_counted_from_its_audit_log() {
        let bao = kuvert_testkit::OpenBao::start_audited().await;
        bao.kv2_put("secret", "bench/a", json!({"value": "x"}))
            .await;
        let mark = Mark::now(bao.audit_log()).unwrap();
        for _ in 0..3 {
            bao.read("secret/data/bench/a").await;
        }
        // A write under the prefix is a call, not a read.
        bao.kv2_put("secret", "bench/a", json!({"value": "y"}))
            .await;
        // OpenBao writes the request line before answering: the log is complete now.
        assert_eq!(
            mark.calls_since("secret/data/bench/").unwrap(),
            Calls {
                reads: 3,
                distinct: 1,
                other: 1
            }
        );
    }
}
