//! The scenario: keys in OpenBao, a Vault SecretStore, N ExternalSecrets reading K keys, U
//! unrelated Secrets, and the raw baseline that does the same store reads and Secret writes
//! without kuvert.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_testkit::OpenBao;
use serde_json::json;

/// Namespace of the ExternalSecrets and their Secrets.
pub const NAMESPACE: &str = "bench";
/// Namespace of the baselines' ExternalSecrets and Secrets (kuvert is not running yet, and
/// everything in it is deleted before kuvert starts).
pub const BASELINE_NAMESPACE: &str = "baseline";
/// Namespace of the Secrets kuvert has nothing to do with.
pub const UNRELATED_NAMESPACE: &str = "unrelated";
/// KV v2 mount of the dev server.
pub const MOUNT: &str = "secret";
/// Audit log path prefix of the benchmark's reads.
pub const DATA_PREFIX: &str = "secret/data/bench/";
/// Requests the benchmark itself keeps in flight when loading objects.
pub const LOAD_CONCURRENCY: usize = 32;

/// The remote key of shared key `j`.
pub fn shared_key(j: usize) -> String {
    format!("bench/key-{j}")
}

/// The remote key only probe `i` reads (latency samples must not hit the coalescing cache).
pub fn probe_key(i: usize) -> String {
    format!("bench/probe-{i}")
}

/// Writes `value` under `key` (property `value`).
pub async fn put(bao: &OpenBao, key: &str, value: &str) {
    bao.kv2_put(MOUNT, key, json!({ "value": value })).await;
}

/// Seeds the K shared keys with random values; returns them (a restarted dev server keeps
/// nothing: [`reseed`] puts them back).
pub async fn seed_keys(bao: &OpenBao, k: usize) -> Vec<String> {
    let values: Vec<String> = (0..k).map(|_| kuvert_testkit::random_hex(16)).collect();
    reseed(bao, &values).await;
    values
}

/// Writes `values` as the shared keys, key `j` holding `values[j]`.
pub async fn reseed(bao: &OpenBao, values: &[String]) {
    stream::iter(values.iter().enumerate())
        .for_each_concurrent(LOAD_CONCURRENCY, |(j, value)| async move {
            put(bao, &shared_key(j), value).await;
        })
        .await;
}

/// Installs the CRDs (unless the cluster started with them), the Vault token Secret and the
/// `vault` SecretStore.
pub async fn install(client: &kube::Client, bao: &OpenBao, crds: bool) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kuvert_core::crds::all().into_iter().filter(|_| crds) {
        api.create(&PostParams::default(), &crd)
            .await
            .context("creating a CRD")?;
    }
    let token = Secret {
        metadata: ObjectMeta {
            name: Some("vault-token".into()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            "token".to_owned(),
            bao.root_token().to_owned(),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &token)
        .await
        .context("creating the Vault token Secret")?;
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "kuvert.io/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": "vault", "namespace": NAMESPACE},
        "spec": {"provider": {"vault": {
            "server": bao.addr(),
            "path": MOUNT,
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
        }}},
    }))?;
    Api::<SecretStore>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &store)
        .await
        .context("creating the SecretStore")?;
    Ok(())
}

/// An ExternalSecret `name` reading property `value` of `key` into key `value` of a Secret of
/// the same name, refreshed every `interval`.
pub fn external_secret(name: &str, key: &str, interval: &str) -> ExternalSecret {
    external_secret_in(NAMESPACE, name, key, interval)
}

/// [`external_secret`] in `namespace`.
pub fn external_secret_in(
    namespace: &str,
    name: &str,
    key: &str,
    interval: &str,
) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "kuvert.io/v1alpha1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "refreshInterval": interval,
            "secretStoreRef": {"name": "vault"},
            "data": [{"secretKey": "value", "remoteRef": {"key": key, "property": "value"}}],
        },
    }))
    .expect("a valid ExternalSecret")
}

/// The name of ExternalSecret `i` of the N.
pub fn es_name(i: usize) -> String {
    format!("es-{i}")
}

/// Whether an ExternalSecret's Ready condition is True.
pub fn is_ready(es: &ExternalSecret) -> bool {
    es.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Creates the N ExternalSecrets in `namespace` (reading the K shared keys round-robin) as
/// fast as the API server takes them (the user's writes); `created` hears the index of each
/// once its create was answered.
pub async fn create_external_secrets(
    client: &kube::Client,
    namespace: &str,
    n: usize,
    k: usize,
    interval: &str,
    created: Option<futures::channel::mpsc::UnboundedSender<usize>>,
) -> anyhow::Result<()> {
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    stream::iter(0..n)
        .map(|i| {
            let (api, created) = (api.clone(), created.clone());
            async move {
                let es = external_secret_in(namespace, &es_name(i), &shared_key(i % k), interval);
                api.create(&PostParams::default(), &es).await?;
                if let Some(created) = created {
                    // The receiver is gone only when the operator loop failed; its error wins.
                    let _ = created.unbounded_send(i);
                }
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("creating ExternalSecrets")
}

/// Creates `count` Secrets of `size` bytes in the unrelated namespace.
pub async fn create_unrelated(
    client: &kube::Client,
    count: usize,
    size: usize,
) -> anyhow::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), UNRELATED_NAMESPACE);
    let blob = ByteString(
        kuvert_testkit::random_hex(size.div_ceil(2))
            .into_bytes()
            .into_iter()
            .take(size)
            .collect(),
    );
    stream::iter(0..count)
        .map(|i| {
            let (api, blob) = (api.clone(), blob.clone());
            async move {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(format!("unrelated-{i}")),
                        labels: Some(BTreeMap::from([("app".to_owned(), "other".to_owned())])),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("blob".to_owned(), blob)])),
                    ..Secret::default()
                };
                api.create(&PostParams::default(), &secret).await
            }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("creating unrelated Secrets")
}

/// What the raw baseline did.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct RawBaseline {
    /// Store reads made (one per distinct key, as kuvert's coalescing aims for).
    pub reads: usize,
    /// Secrets written.
    pub writes: usize,
    /// Wall time of both.
    #[serde(serialize_with = "crate::report::as_seconds")]
    pub elapsed: Duration,
}

/// The raw baseline of P1 (the figure before issue 21): a plain loop with the same client
/// libraries (reqwest to OpenBao, kube-rs to the API server) and the same concurrency as kuvert
/// reads each of the K keys once and writes the N Secrets those values make. No ExternalSecret
/// is created or written, so this is less than any operator must do: see [`baseline`].
pub async fn raw_baseline(
    bao: &OpenBao,
    client: &kube::Client,
    n: usize,
    k: usize,
    concurrency: usize,
) -> anyhow::Result<RawBaseline> {
    let started = Instant::now();
    let values: Vec<String> = stream::iter(0..k)
        .map(|j| async move {
            let path = format!("{MOUNT}/data/{}", shared_key(j));
            let out = bao
                .api_as(bao.root_token(), None, "GET", &path, None)
                .await
                .map_err(|(status, _)| anyhow::anyhow!("baseline read of {path}: {status}"))?;
            out["data"]["data"]["value"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{path} has no value"))
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let api: Api<Secret> = Api::namespaced(client.clone(), BASELINE_NAMESPACE);
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let value = values[i % k].clone();
            async move {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(es_name(i)),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([(
                        "value".to_owned(),
                        ByteString(value.into_bytes()),
                    )])),
                    ..Secret::default()
                };
                api.create(&PostParams::default(), &secret).await
            }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("baseline Secret writes")?;
    let elapsed = started.elapsed();
    // Gone again, so the scenario's cluster holds only what the figures name.
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .context("deleting the baseline's Secrets")?;
    Ok(RawBaseline {
        reads: k,
        writes: n,
        elapsed,
    })
}

/// Reads key `j` of the K shared keys from OpenBao (property `value`).
async fn read_shared(bao: &OpenBao, j: usize) -> anyhow::Result<String> {
    let path = format!("{MOUNT}/data/{}", shared_key(j));
    let out = bao
        .api_as(bao.root_token(), None, "GET", &path, None)
        .await
        .map_err(|(status, _)| anyhow::anyhow!("baseline read of {path}: {status}"))?;
    out["data"]["data"]["value"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{path} has no value"))
}

/// What the operator baseline did, counted as it went and on the servers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Baseline {
    /// First create → the last ExternalSecret Ready, seen through the watch (as kuvert's P1).
    #[serde(serialize_with = "crate::report::as_seconds")]
    pub elapsed: Duration,
    /// First create → the last create answered.
    #[serde(serialize_with = "crate::report::as_seconds")]
    pub created: Duration,
    /// ExternalSecrets created (the user's writes).
    pub creates: usize,
    /// Store reads the loop made (one per distinct key).
    pub reads: usize,
    /// Secrets created.
    pub secret_writes: usize,
    /// Status writes.
    pub status_writes: usize,
    /// Store calls, from OpenBao's audit log.
    pub store: crate::audit::Calls,
    /// Kubernetes requests, from the API server's counters.
    pub kube: crate::report::KubeCalls,
    /// When each ExternalSecret was seen Ready, seconds from the first create (for the plot).
    #[serde(skip)]
    pub ready_at: Vec<Duration>,
}

/// The operator baseline of P1 (issue 21): the least any sync operator must do, by a plain
/// loop with the same client libraries and concurrency as kuvert. The N ExternalSecrets are
/// created in [`BASELINE_NAMESPACE`] as in kuvert's run (the user's writes, 32 in flight); for
/// each one created, the loop (at `concurrency`) takes the value of its key — each distinct key
/// read from OpenBao once, concurrent takers waiting for that one read — creates the Secret
/// and writes the ExternalSecret's status Ready; a watch on the ExternalSecrets is open
/// throughout, as an operator's would be, and the time is first create → last Ready seen
/// through it. Everything it made is deleted again before kuvert starts, so kuvert never
/// serves these ExternalSecrets. The store and request counts are filled in by the caller.
pub async fn baseline(
    bao: &OpenBao,
    client: &kube::Client,
    n: usize,
    k: usize,
    concurrency: usize,
) -> anyhow::Result<Baseline> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), BASELINE_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), BASELINE_NAMESPACE);
    let from = crate::track::current_version(&ess, None).await?;
    let started = Instant::now();
    let watch = {
        let ess = ess.clone();
        tokio::spawn(async move {
            crate::track::until_each(&ess, None, from, n, crate::PHASE_TIMEOUT, is_ready).await
        })
    };
    let values: Vec<tokio::sync::OnceCell<String>> =
        (0..k).map(|_| tokio::sync::OnceCell::new()).collect();
    let reads = AtomicUsize::new(0);
    let (created_tx, created_rx) = futures::channel::mpsc::unbounded();
    let user = async {
        let result = create_external_secrets(
            client,
            BASELINE_NAMESPACE,
            n,
            k,
            crate::IDLE_INTERVAL,
            Some(created_tx),
        )
        .await;
        (result, started.elapsed())
    };
    let operator = created_rx
        .map(|i| {
            let (ess, secrets, values, reads) = (&ess, &secrets, &values, &reads);
            async move {
                let j = i % k;
                let value = values[j]
                    .get_or_try_init(|| async {
                        reads.fetch_add(1, Ordering::Relaxed);
                        read_shared(bao, j).await
                    })
                    .await?;
                let name = es_name(i);
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([(
                        "value".to_owned(),
                        ByteString(value.clone().into_bytes()),
                    )])),
                    ..Secret::default()
                };
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .context("baseline Secret create")?;
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
                ess.patch_status(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(json!({"status": {
                        "refreshTime": now,
                        "binding": {"name": name},
                        "conditions": [{
                            "type": "Ready",
                            "status": "True",
                            "reason": "SecretSynced",
                            "message": "Secret was synced",
                            "lastTransitionTime": now,
                        }],
                    }})),
                )
                .await
                .context("baseline status write")?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_fold(0usize, |done, ()| async move { Ok(done + 1) });
    let ((created, created_after), synced) = futures::join!(user, operator);
    created?;
    let synced = synced?;
    let progress = watch.await??;
    let elapsed = progress.all.duration_since(started);
    // Gone again, before kuvert starts.
    ess.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .context("deleting the baseline's ExternalSecrets")?;
    secrets
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .context("deleting the baseline's Secrets")?;
    Ok(Baseline {
        elapsed,
        created: created_after,
        creates: n,
        reads: reads.into_inner(),
        secret_writes: synced,
        status_writes: synced,
        store: crate::audit::Calls::default(),
        kube: crate::report::KubeCalls::default(),
        ready_at: progress
            .each
            .iter()
            .map(|t| t.duration_since(started))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Calls, Mark};
    use crate::cluster::{Backend, Cluster};
    use crate::report::KubeCalls;

    #[tokio::test]
    async fn the_operator_baseline_reads_each_key_once_writes_each_object_and_leaves_nothing() {
        let bao = OpenBao::start_audited().await;
        seed_keys(&bao, 3).await;
        let cluster = Cluster::start(Backend::Devcluster, &[NAMESPACE, BASELINE_NAMESPACE])
            .await
            .unwrap();
        let client = cluster.client().await.unwrap();
        install(&client, &bao, true).await.unwrap();
        let before = cluster.counts(&client).await.unwrap();
        let mark = Mark::now(bao.audit_log()).unwrap();

        let done = baseline(&bao, &client, 20, 3, 4).await.unwrap();

        let after = cluster.counts(&client).await.unwrap();
        assert_eq!(
            (
                done.creates,
                done.reads,
                done.secret_writes,
                done.status_writes,
                done.ready_at.len()
            ),
            (20, 3, 20, 20, 20)
        );
        assert!(done.elapsed >= done.created, "{done:?}");
        assert_eq!(
            mark.calls_since(DATA_PREFIX).unwrap(),
            Calls {
                reads: 3,
                distinct: 3,
                other: 0
            }
        );
        let calls = KubeCalls::between(&before, &after);
        // 20 creates and the delete of the collection; 20 status writes; no Secret read.
        assert_eq!(
            (calls.secret_writes, calls.status_writes, calls.secret_gets),
            (21, 20, 0)
        );
        let key = |v: &str, r: &str| (v.to_owned(), r.to_owned());
        assert_eq!(after.get(&key("create", "externalsecrets")), Some(&20));
        // Nothing is left for kuvert to serve.
        let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), BASELINE_NAMESPACE);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), BASELINE_NAMESPACE);
        let left = (
            ess.list_metadata(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            secrets
                .list_metadata(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
        );
        assert_eq!(left, (0, 0));
    }
}
