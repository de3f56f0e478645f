//! End-to-end harness: devcluster with kuvert's CRDs, and the real `kuvert run` binary as a
//! separate process talking to it through a kubeconfig, as it would to any cluster.

#![allow(dead_code)] // each test file uses part of the harness

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};

/// A devcluster with kuvert's CRDs installed and a kubeconfig written for it.
pub struct Cluster {
    pub handle: DevClusterHandle,
    pub client: kube::Client,
    pub dir: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let handle = DevCluster::start(Config::default()).await.unwrap();
        let client = handle.client().unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in kuvert_core::crds::all() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let dir = std::env::temp_dir().join(format!(
            "kuvert-e2e-{}-{}",
            std::process::id(),
            handle.addr().port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        handle.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Cluster {
            handle,
            client,
            dir,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `kuvert run` process; killed on drop.
pub struct Operator {
    child: Child,
    pub metrics_port: u16,
}

impl Operator {
    pub fn start(cluster: &Cluster, extra: &[&str]) -> Operator {
        let metrics_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kuvert"))
            .arg("run")
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env(
                "KUVERT_LOG",
                std::env::var("KUVERT_TEST_LOG")
                    .unwrap_or_else(|_| "info,kuvert_operator=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting kuvert run");
        Operator {
            child,
            metrics_port,
        }
    }

    /// GETs a path of the metrics endpoint: (status code, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        eventually("the operator to be ready", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
                .await
                .is_ok()
                && self.get("/readyz").await.0 == 200
        })
        .await;
    }

    /// Sends SIGTERM and waits up to 10 s for the process to exit; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` every 50 ms until it holds; panics after 30 s naming what was awaited.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fake SecretStore `demo` in `default`, holding key `shared` = `s3cr3t`.
pub const FAKE_STORE: &str = "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {name: demo, namespace: default}\nspec:\n  provider:\n    fake:\n      data: [{key: shared, value: s3cr3t}]\n";

/// An ExternalSecret `name` in `default` writing Secret `target` with key `k` = `shared` of
/// [`FAKE_STORE`], refreshed every `refresh`.
pub fn shared_key_external_secret(
    name: &str,
    refresh: &str,
    target: &str,
) -> kuvert_core::api::ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: {refresh}\n  secretStoreRef: {{name: demo}}\n  target: {{name: {target}}}\n  data: [{{secretKey: k, remoteRef: {{key: shared}}}}]\n"
    ))
}

/// [`FAKE_STORE`] and `count` ExternalSecrets `es-0`, `es-1`, … reading it every `refresh`.
pub async fn many_external_secrets(cluster: &Cluster, count: usize, refresh: &str) {
    let stores: Api<kuvert_core::api::SecretStore> =
        Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &yaml(FAKE_STORE))
        .await
        .unwrap();
    let ess: Api<kuvert_core::api::ExternalSecret> =
        Api::namespaced(cluster.client.clone(), "default");
    for i in 0..count {
        let name = format!("es-{i}");
        let es = shared_key_external_secret(&name, refresh, &name);
        ess.create(&PostParams::default(), &es).await.unwrap();
    }
}

/// Waits until namespace `default` holds `count` Secrets.
pub async fn wait_for_secrets(cluster: &Cluster, count: usize) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.client.clone(), "default");
    eventually(&format!("{count} Secrets"), || async {
        let listed = secrets.list(&Default::default()).await.unwrap();
        listed.items.len() == count
    })
    .await;
}

/// Parses YAML into any type (test fixtures).
pub fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

/// The data of Secret `name` as text, or `None` when there is no such Secret.
pub async fn secret_data(
    api: &Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let secret = api.get_opt(name).await.unwrap()?;
    Some(
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect(),
    )
}

/// Expected Secret data, to compare with [`secret_data`].
pub fn map(pairs: &[(&str, &str)]) -> Option<std::collections::BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Creates, in `default`, the Secret `vault-token` holding `token` (unless it exists) and the
/// VaultDynamicSecret `name`: `spec` (YAML lines under `spec:`, indented by two spaces) plus a
/// provider for `server` logging in with that token.
pub async fn vault_dynamic_secret(
    cluster: &Cluster,
    server: &str,
    token: &str,
    name: &str,
    spec: &str,
) {
    use k8s_openapi::api::core::v1::Secret;
    use kuvert_core::api::VaultDynamicSecret;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    if secrets.get_opt("vault-token").await.unwrap().is_none() {
        let secret: Secret = yaml(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-token, namespace: default}}\nstringData: {{token: {token}}}\n"
        ));
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let generator: VaultDynamicSecret = yaml(&format!(
        "apiVersion: generators.kuvert.io/v1alpha1\nkind: VaultDynamicSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}  provider:\n    server: {server}\n    auth:\n      tokenSecretRef: {{name: vault-token, key: token}}\n"
    ));
    Api::<VaultDynamicSecret>::namespaced(cluster.client.clone(), "default")
        .create(&PostParams::default(), &generator)
        .await
        .unwrap();
}
