//! The Kubernetes side of a run: devcluster (in this process) or the real control plane
//! (kube-apiserver, etcd and kube-controller-manager as separate processes, from
//! `kuvert_testkit::ControlPlane`), behind one interface: a client, a kubeconfig for kuvert,
//! request counters and the processes whose CPU and memory are reported.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_testkit::ControlPlane;

use crate::report::KubeCalls;

/// Which API server a run measures against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// devcluster, the in-memory API server, inside the benchmark's process.
    Devcluster,
    /// kube-apiserver with etcd (and kube-controller-manager for garbage collection).
    ControlPlane,
}

impl Backend {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Devcluster => "devcluster",
            Backend::ControlPlane => "control-plane",
        }
    }
}

/// Requests served so far, by (verb, resource), verbs as devcluster names them (`create`,
/// `update`, `patch`, `delete`, `get`, `list`, `watch`) and a subresource after a slash
/// (`externalsecrets/status`).
pub type Counts = BTreeMap<(String, String), u64>;

/// A running API server.
pub enum Cluster {
    /// devcluster.
    Dev(DevClusterHandle),
    /// The real control plane.
    Plane(Box<ControlPlane>),
}

impl Cluster {
    /// Starts `backend` with `namespaces` (created if the backend does not have them).
    pub async fn start(backend: Backend, namespaces: &[&str]) -> anyhow::Result<Cluster> {
        match backend {
            Backend::Devcluster => {
                let mut config = Config::default();
                config
                    .namespaces
                    .extend(namespaces.iter().map(|n| (*n).to_owned()));
                Ok(Cluster::Dev(DevCluster::start(config).await?))
            }
            Backend::ControlPlane => {
                let crds: Vec<serde_json::Value> = kuvert_core::crds::all()
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?;
                let plane = ControlPlane::start_with_crds(&crds).await;
                let cluster = Cluster::Plane(Box::new(plane));
                let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                    kube::Api::all(cluster.client().await?);
                for name in namespaces {
                    let ns =
                        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
                    api.create(&Default::default(), &ns)
                        .await
                        .with_context(|| format!("creating namespace {name}"))?;
                }
                Ok(cluster)
            }
        }
    }

    /// Whether the CRDs still have to be created (the control plane starts with them).
    pub fn needs_crds(&self) -> bool {
        matches!(self, Cluster::Dev(_))
    }

    /// An admin client.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        match self {
            Cluster::Dev(dev) => Ok(dev.client()?),
            Cluster::Plane(plane) => {
                let config = kube::config::Kubeconfig::read_from(plane.admin_kubeconfig())?;
                let config = kube::Config::from_custom_kubeconfig(
                    config,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?;
                Ok(kube::Client::try_from(config)?)
            }
        }
    }

    /// Writes an admin kubeconfig for kuvert to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        match self {
            Cluster::Dev(dev) => Ok(dev.write_kubeconfig(path)?),
            Cluster::Plane(plane) => {
                std::fs::copy(plane.admin_kubeconfig(), path)
                    .context("copying the control plane's kubeconfig")?;
                Ok(())
            }
        }
    }

    /// Requests served so far: devcluster's own counters, or the API server's
    /// `apiserver_request_total` (which also counts the controller manager's requests and
    /// this scrape).
    pub async fn counts(&self, client: &kube::Client) -> anyhow::Result<Counts> {
        match self {
            Cluster::Dev(dev) => Ok(dev.request_counts()),
            Cluster::Plane(_) => {
                let request = http::Request::get("/metrics").body(Vec::new())?;
                let text = client
                    .request_text(request)
                    .await
                    .context("reading the API server's /metrics")?;
                Ok(parse_apiserver_requests(&text))
            }
        }
    }

    /// The processes that serve the API, by name, for their CPU and memory. devcluster runs in
    /// the benchmark's own process, so its figures include the harness's.
    pub fn processes(&self) -> Vec<(String, u32)> {
        match self {
            Cluster::Dev(_) => vec![(
                "kuvert-bench (devcluster and the harness)".to_owned(),
                std::process::id(),
            )],
            Cluster::Plane(plane) => ["kube-apiserver", "etcd"]
                .into_iter()
                .filter_map(|name| plane.pid(name).map(|pid| (name.to_owned(), pid)))
                .collect(),
        }
    }
}

/// The verb names of `apiserver_request_total` as devcluster's counters name them.
fn verb(metric_verb: &str) -> String {
    match metric_verb {
        "POST" => "create".to_owned(),
        "PUT" => "update".to_owned(),
        "PATCH" | "APPLY" => "patch".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// Sums `apiserver_request_total` of a Prometheus text exposition by (verb, resource
/// [/subresource]).
pub fn parse_apiserver_requests(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let labels = parse_labels(labels);
        let get = |name: &str| labels.get(name).map(String::as_str).unwrap_or_default();
        let mut resource = get("resource").to_owned();
        if !get("subresource").is_empty() {
            resource = format!("{resource}/{}", get("subresource"));
        }
        *counts.entry((verb(get("verb")), resource)).or_default() += value as u64;
    }
    counts
}

/// `name="value",…` of a Prometheus sample (values with `\"` and `\\` escapes).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

impl KubeCalls {
    /// What these requests are beyond `other`'s, kind by kind (none below zero).
    pub fn beyond(&self, other: &KubeCalls) -> KubeCalls {
        KubeCalls {
            secret_writes: self.secret_writes.saturating_sub(other.secret_writes),
            status_writes: self.status_writes.saturating_sub(other.status_writes),
            secret_gets: self.secret_gets.saturating_sub(other.secret_gets),
            event_creates: self.event_creates.saturating_sub(other.event_creates),
            total: self.total.saturating_sub(other.total),
        }
    }

    /// The requests served between two readings of the counters.
    pub fn between(before: &Counts, after: &Counts) -> KubeCalls {
        let delta = |verb: &str, resource: &str| {
            let key = (verb.to_owned(), resource.to_owned());
            after
                .get(&key)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(&key).copied().unwrap_or(0))
        };
        let writes = |resource: &str| -> u64 {
            ["create", "update", "patch", "delete", "deletecollection"]
                .iter()
                .map(|v| delta(v, resource))
                .sum()
        };
        KubeCalls {
            secret_writes: writes("secrets"),
            status_writes: writes("externalsecrets/status"),
            secret_gets: delta("get", "secrets"),
            event_creates: delta("create", "events"),
            total: after.keys().map(|(v, r)| delta(v, r)).sum::<u64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_request_total_is_summed_by_verb_and_resource() {
        let text = r#"# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 7
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="kuvert.io",resource="externalsecrets",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="namespace",subresource="",verb="LIST",version="v1"} 1
apiserver_request_seconds_count{verb="POST"} 99
"#;
        let counts = parse_apiserver_requests(text);
        let key = |v: &str, r: &str| (v.to_owned(), r.to_owned());
        assert_eq!(
            counts,
            Counts::from([
                (key("create", "secrets"), 9),
                (key("list", "secrets"), 1),
                (key("patch", "externalsecrets/status"), 5),
            ])
        );
    }

    #[test]
    fn escaped_label_values_are_read_whole() {
        let labels = parse_labels(r#"a="x\"y,z",b="",c="\\""#);
        assert_eq!(
            labels,
            BTreeMap::from([
                ("a".to_owned(), "x\"y,z".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "\\".to_owned()),
            ])
        );
    }

    #[test]
    fn calls_between_two_readings_are_the_differences() {
        let key = |v: &str, r: &str| (v.to_owned(), r.to_owned());
        let before = Counts::from([(key("create", "secrets"), 3), (key("get", "secrets"), 1)]);
        let after = Counts::from([
            (key("create", "secrets"), 10),
            (key("get", "secrets"), 1),
            (key("patch", "externalsecrets/status"), 4),
            (key("create", "events"), 2),
        ]);
        let calls = KubeCalls::between(&before, &after);
        assert_eq!(
            (
                calls.secret_writes,
                calls.status_writes,
                calls.secret_gets,
                calls.event_creates,
                calls.total
            ),
            (7, 4, 0, 2, 13)
        );
    }
}
