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
/// Namespace of the raw baseline's Secrets.
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

/// Seeds the K shared keys.
pub async fn seed_keys(bao: &OpenBao, k: usize) {
    stream::iter(0..k)
        .for_each_concurrent(LOAD_CONCURRENCY, |j| async move {
            put(bao, &shared_key(j), &kuvert_testkit::random_hex(16)).await;
        })
        .await;
}

/// Installs the CRDs, the Vault token Secret and the `vault` SecretStore.
pub async fn install(client: &kube::Client, bao: &OpenBao) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kuvert_core::crds::all() {
        crds.create(&PostParams::default(), &crd)
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
    serde_json::from_value(json!({
        "apiVersion": "kuvert.io/v1alpha1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": NAMESPACE},
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

/// Creates ExternalSecrets `range` (reading the K shared keys round-robin) as fast as the API
/// server takes them.
pub async fn create_external_secrets(
    client: &kube::Client,
    n: usize,
    k: usize,
    interval: &str,
) -> anyhow::Result<()> {
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), NAMESPACE);
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let es = external_secret(&es_name(i), &shared_key(i % k), interval);
                api.create(&PostParams::default(), &es).await
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
pub struct Baseline {
    /// Store reads made (one per distinct key, as kuvert's coalescing aims for).
    pub reads: usize,
    /// Secrets written.
    pub writes: usize,
    /// Wall time of both.
    #[serde(serialize_with = "crate::report::as_seconds")]
    pub elapsed: Duration,
}

/// The raw baseline of P1: a plain loop with the same client libraries (reqwest to OpenBao,
/// kube-rs to the API server) and the same concurrency as kuvert reads each of the K keys once
/// and writes the N Secrets those values make. kuvert does this and more (it first reads each
/// target Secret, and writes each status), so the ratio is the operator's overhead.
pub async fn baseline(
    bao: &OpenBao,
    client: &kube::Client,
    n: usize,
    k: usize,
    concurrency: usize,
) -> anyhow::Result<Baseline> {
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
    Ok(Baseline {
        reads: k,
        writes: n,
        elapsed,
    })
}
