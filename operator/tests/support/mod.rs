//! End-to-end harness: a Kubernetes API server with kuvert's CRDs, and the real `kuvert run`
//! binary as a separate process talking to it through a kubeconfig, as it would to any cluster.
//!
//! The API server is one of two [`Backend`]s: devcluster (kuvert's in-memory server, in this
//! process) or the real control plane (kube-apiserver, etcd and kube-controller-manager built
//! from Go modules, `kuvert_testkit::ControlPlane`). [`on_both_backends!`] runs one scenario on
//! each. On the real control plane kuvert runs as the ServiceAccount `kuvert-system/kuvert`
//! bound to `charts/kuvert/files/rbac/cluster.yaml`, never as admin, so a missing permission fails a test.

#![allow(dead_code)] // each test file uses part of the harness

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ObjectMeta;
use kube::api::{Api, PostParams};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_testkit::ControlPlane;

/// Which API server a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// devcluster, in this process.
    DevCluster,
    /// kube-apiserver + etcd + kube-controller-manager, as processes.
    ControlPlane,
}

/// Runs `async fn NAME(backend: Backend)` once per backend, as the tests `NAME::devcluster` and
/// `NAME::control_plane` (`cargo test control_plane` runs only the real server's).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn devcluster() {
                super::$name(super::support::Backend::DevCluster).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn control_plane() {
                super::$name(super::support::Backend::ControlPlane).await
            }
        }
    )+};
}

enum Server {
    Dev(DevClusterHandle),
    Real(ControlPlane),
}

impl Server {
    fn url(&self) -> String {
        match self {
            Server::Dev(handle) => handle.url().to_owned(),
            Server::Real(plane) => plane.url().to_owned(),
        }
    }

    fn ca_pem(&self) -> String {
        match self {
            Server::Dev(handle) => handle.ca_pem().to_owned(),
            Server::Real(plane) => plane.ca_pem().to_owned(),
        }
    }
}

/// An API server with kuvert's CRDs installed and kubeconfigs written for it.
pub struct Cluster {
    server: Server,
    /// An admin client (the test's own hands).
    pub client: kube::Client,
    pub dir: PathBuf,
    /// Set by a test that takes a permission away on purpose: the refusals are then its to check.
    pub refusals_expected: std::sync::atomic::AtomicBool,
}

impl Cluster {
    /// A devcluster.
    pub async fn start() -> Cluster {
        Self::start_on(Backend::DevCluster).await
    }

    /// An API server of `backend`, with kuvert's CRDs established and, on the real control
    /// plane, kuvert's ServiceAccount bound to its ClusterRole (`charts/kuvert/files/rbac/cluster.yaml`).
    pub async fn start_on(backend: Backend) -> Cluster {
        Self::start_with(backend, None).await
    }

    /// Like [`Cluster::start_on`] for a namespace-scoped install: `namespace` is created and,
    /// on the real control plane, kuvert's ServiceAccount is bound to the Role of
    /// `charts/kuvert/files/rbac/namespaced.yaml` there and has no other permission.
    pub async fn start_scoped_on(backend: Backend, namespace: &str) -> Cluster {
        Self::start_with(backend, Some(namespace)).await
    }

    async fn start_with(backend: Backend, scope: Option<&str>) -> Cluster {
        let (server, dir) = match backend {
            Backend::DevCluster => {
                let handle = DevCluster::start(Config::default()).await.unwrap();
                let dir = std::env::temp_dir().join(format!(
                    "kuvert-e2e-{}-{}",
                    std::process::id(),
                    handle.addr().port()
                ));
                std::fs::create_dir_all(&dir).unwrap();
                handle.write_kubeconfig(dir.join("kubeconfig")).unwrap();
                (Server::Dev(handle), dir)
            }
            Backend::ControlPlane => {
                let crds: Vec<serde_json::Value> = kuvert_core::crds::all()
                    .iter()
                    .map(|crd| serde_json::to_value(crd).unwrap())
                    .collect();
                let plane = ControlPlane::start_with_crds(&crds).await;
                eprintln!(
                    "control plane at {} ready in {:.1} s",
                    plane.url(),
                    plane.startup().as_secs_f64()
                );
                let dir = plane.dir().join("e2e");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::copy(plane.admin_kubeconfig(), dir.join("kubeconfig")).unwrap();
                (Server::Real(plane), dir)
            }
        };
        let client = kube_client(&dir.join("kubeconfig")).await;
        let cluster = Cluster {
            server,
            client,
            dir,
            refusals_expected: false.into(),
        };
        if cluster.backend() == Backend::DevCluster {
            cluster.install_crds().await;
            if let Some(namespace) = scope {
                cluster.create_namespace(namespace).await;
            }
        }
        if let Server::Real(plane) = &cluster.server {
            let token = cluster.operator_token(scope).await;
            std::fs::write(
                cluster.dir.join("operator.kubeconfig"),
                plane.kubeconfig_with_token(&token),
            )
            .unwrap();
        }
        cluster
    }

    async fn install_crds(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in kuvert_core::crds::all() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        for crd in kuvert_core::crds::all() {
            let name = crd.metadata.name.unwrap();
            eventually(&format!("CRD {name} to be established"), || async {
                crds.get(&name).await.unwrap().status.is_some_and(|s| {
                    s.conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
            })
            .await;
        }
    }

    async fn create_namespace(&self, name: &str) {
        Api::<Namespace>::all(self.client.clone())
            .create(
                &PostParams::default(),
                &yaml(&format!("metadata: {{name: {name}}}")),
            )
            .await
            .unwrap();
    }

    /// Creates kuvert's ServiceAccount and its RBAC: cluster-wide (`charts/kuvert/files/rbac/cluster.yaml`),
    /// or in `scope` only (`charts/kuvert/files/rbac/namespaced.yaml`); returns a token for it.
    async fn operator_token(&self, scope: Option<&str>) -> String {
        self.create_namespace("kuvert-system").await;
        // The chart's rule files: the one source of kuvert's permissions.
        let subject =
            "subjects: [{kind: ServiceAccount, name: kuvert, namespace: kuvert-system}]\n";
        match scope {
            None => {
                let rules: Vec<PolicyRule> = yaml(include_str!(
                    "../../../charts/kuvert/files/rbac/cluster.yaml"
                ));
                let role = ClusterRole {
                    metadata: ObjectMeta {
                        name: Some("kuvert".into()),
                        ..ObjectMeta::default()
                    },
                    rules: Some(rules),
                    ..ClusterRole::default()
                };
                let binding: ClusterRoleBinding = yaml(&format!(
                    "metadata: {{name: kuvert}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kuvert}}\n{subject}"
                ));
                Api::<ClusterRole>::all(self.client.clone())
                    .create(&PostParams::default(), &role)
                    .await
                    .unwrap();
                Api::<ClusterRoleBinding>::all(self.client.clone())
                    .create(&PostParams::default(), &binding)
                    .await
                    .unwrap();
            }
            Some(namespace) => {
                self.create_namespace(namespace).await;
                let rules: Vec<PolicyRule> = yaml(include_str!(
                    "../../../charts/kuvert/files/rbac/namespaced.yaml"
                ));
                let role = Role {
                    metadata: ObjectMeta {
                        name: Some("kuvert".into()),
                        namespace: Some(namespace.into()),
                        ..ObjectMeta::default()
                    },
                    rules: Some(rules),
                };
                let binding: RoleBinding = yaml(&format!(
                    "metadata: {{name: kuvert, namespace: {namespace}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: kuvert}}\n{subject}"
                ));
                Api::<Role>::namespaced(self.client.clone(), namespace)
                    .create(&PostParams::default(), &role)
                    .await
                    .unwrap();
                Api::<RoleBinding>::namespaced(self.client.clone(), namespace)
                    .create(&PostParams::default(), &binding)
                    .await
                    .unwrap();
            }
        }
        // The leader Lease's Role, in the namespace `kuvert run` defaults it to.
        let lease_namespace = scope.unwrap_or("default");
        let role = Role {
            metadata: ObjectMeta {
                name: Some("kuvert-leader-election".into()),
                namespace: Some(lease_namespace.into()),
                ..ObjectMeta::default()
            },
            rules: Some(yaml(include_str!(
                "../../../charts/kuvert/files/rbac/leader-election.yaml"
            ))),
        };
        let binding: RoleBinding = yaml(&format!(
            "metadata: {{name: kuvert-leader-election, namespace: {lease_namespace}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: kuvert-leader-election}}\n{subject}"
        ));
        Api::<Role>::namespaced(self.client.clone(), lease_namespace)
            .create(&PostParams::default(), &role)
            .await
            .unwrap();
        Api::<RoleBinding>::namespaced(self.client.clone(), lease_namespace)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        service_account_token(&self.client, "kuvert-system", "kuvert").await
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.server {
            Server::Dev(_) => Backend::DevCluster,
            Server::Real(_) => Backend::ControlPlane,
        }
    }

    /// The devcluster handle (request counters, fault switches): only devcluster has one.
    pub fn dev(&self) -> &DevClusterHandle {
        match &self.server {
            Server::Dev(handle) => handle,
            Server::Real(_) => panic!("this check needs devcluster's request counters"),
        }
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The cluster CA (PEM).
    pub fn ca_pem(&self) -> String {
        self.server.ca_pem()
    }

    /// An admin kubeconfig (for kubectl and the tests' own clients).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The kubeconfig `kuvert run` uses: on the real control plane, the token of kuvert's
    /// ServiceAccount, limited to its RBAC; on devcluster (no authorization), the admin's.
    pub fn operator_kubeconfig(&self) -> PathBuf {
        match self.server {
            Server::Dev(_) => self.kubeconfig(),
            Server::Real(_) => self.dir.join("operator.kubeconfig"),
        }
    }
}

/// kuvert's identity on the real control plane.
const OPERATOR_USER: &str = "system:serviceaccount:kuvert-system:kuvert";

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // A missing permission fails the test even where kuvert recovered or the scenario did
        // not look: the API server's audit log shows every request of kuvert it refused.
        if let Server::Real(plane) = &self.server
            && !std::thread::panicking()
            && !self
                .refusals_expected
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            let refused = plane.refused(OPERATOR_USER);
            assert!(
                refused.is_empty(),
                "the API server refused kuvert (charts/kuvert/files/rbac lacks a rule):\n{}",
                refused.join("\n")
            );
        }
    }
}

/// A second cluster that the Kubernetes provider reads from: namespace `remote`, and a bearer
/// token that may read Secrets there (devcluster: its admin token; the real control plane: a
/// ServiceAccount `remote/reader` bound to a Role allowing get, list and watch on Secrets in
/// `remote` and nothing else).
pub struct RemoteCluster {
    server: Server,
    /// An admin client.
    pub client: kube::Client,
    pub token: String,
}

impl RemoteCluster {
    pub async fn start_on(backend: Backend) -> RemoteCluster {
        match backend {
            Backend::DevCluster => {
                let handle = DevCluster::start(Config {
                    namespaces: ["default", "remote"].map(String::from).to_vec(),
                    ..Config::default()
                })
                .await
                .unwrap();
                RemoteCluster {
                    client: handle.client().unwrap(),
                    token: handle.admin_token().to_owned(),
                    server: Server::Dev(handle),
                }
            }
            Backend::ControlPlane => {
                let plane = ControlPlane::start().await;
                let client = kube_client(&plane.admin_kubeconfig()).await;
                Api::<Namespace>::all(client.clone())
                    .create(&PostParams::default(), &yaml("metadata: {name: remote}"))
                    .await
                    .unwrap();
                let rbac = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader, namespace: remote}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get, list, watch]}]\n";
                Api::<Role>::namespaced(client.clone(), "remote")
                    .create(&PostParams::default(), &yaml(rbac))
                    .await
                    .unwrap();
                let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: reader, namespace: remote}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\nsubjects: [{kind: ServiceAccount, name: reader, namespace: remote}]\n";
                Api::<RoleBinding>::namespaced(client.clone(), "remote")
                    .create(&PostParams::default(), &yaml(binding))
                    .await
                    .unwrap();
                let token = service_account_token(&client, "remote", "reader").await;
                RemoteCluster {
                    client,
                    token,
                    server: Server::Real(plane),
                }
            }
        }
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The cluster CA (PEM).
    pub fn ca_pem(&self) -> String {
        self.server.ca_pem()
    }
}

/// Creates ServiceAccount `namespace/name` (unless it exists) and returns a token for it
/// (TokenRequest, valid for a day).
pub async fn service_account_token(client: &kube::Client, namespace: &str, name: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    if sas.get_opt(name).await.unwrap().is_none() {
        sas.create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {name}}}")),
        )
        .await
        .unwrap();
    }
    let request: TokenRequest = yaml("spec: {expirationSeconds: 86400}");
    sas.create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap()
}

/// A kube-rs client from a kubeconfig file.
pub async fn kube_client(path: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
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
        Self::start_logging(cluster, extra, Stdio::inherit())
    }

    /// Like [`Operator::start`], its log lines (stderr) going to `log`.
    pub fn start_logging(cluster: &Cluster, extra: &[&str], log: impl Into<Stdio>) -> Operator {
        let filter = std::env::var("KUVERT_TEST_LOG")
            .unwrap_or_else(|_| "info,kuvert_operator=debug".into());
        Self::spawn(cluster, extra, Some(&filter), Stdio::null(), log.into())
    }

    /// Like [`Operator::start`], everything it prints (stdout and stderr) going to the file
    /// `path`, its log filter only what `extra` says (e.g. `--log-level trace`).
    pub fn start_captured(cluster: &Cluster, extra: &[&str], path: &std::path::Path) -> Operator {
        let log = std::fs::File::create(path).unwrap();
        Self::spawn(
            cluster,
            extra,
            None,
            log.try_clone().unwrap().into(),
            log.into(),
        )
    }

    fn spawn(
        cluster: &Cluster,
        extra: &[&str],
        filter: Option<&str>,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Operator {
        let metrics_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kuvert"));
        command
            .arg("run")
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", cluster.operator_kubeconfig())
            .env_remove("KUVERT_LOG")
            .stdout(stdout)
            .stderr(stderr);
        if let Some(filter) = filter {
            command.env("KUVERT_LOG", filter);
        }
        let child = command.spawn().expect("starting kuvert run");
        Operator {
            child,
            metrics_port,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// The Secret `vault-token` holding `token` and the SecretStore `vault` reading the KV v2 mount
/// `secret` of the OpenBao at `server` with it, both in `default`.
pub async fn vault_token_store(cluster: &Cluster, server: &str, token: &str) {
    create(
        &cluster.client,
        &kuvert_testkit::string_secret("default", "vault-token", &[("token", token)]),
    )
    .await;
    let store: kuvert_core::api::SecretStore = yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: vault, namespace: default}}\nspec:\n  provider:\n    vault:\n      server: {server}\n      path: secret\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n"
    ));
    create(&cluster.client, &store).await;
}

/// The SecretStore `demo` of `namespace`, of the fake provider, holding `entries` (key, value),
/// each at version "1": what most scenarios read from.
pub fn fake_store(namespace: &str, entries: &[(&str, &str)]) -> kuvert_core::api::SecretStore {
    let data: Vec<serde_json::Value> = entries
        .iter()
        .map(|(key, value)| serde_json::json!({"key": key, "value": value, "version": "1"}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kuvert.io/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {"provider": {"fake": {"data": data}}},
    }))
    .unwrap()
}

/// The ExternalSecret `name` of `namespace` copying key `k` of the store `store_ref` (YAML,
/// e.g. `{name: demo}`) into the Secret `name`.
pub fn reading_k(namespace: &str, name: &str, store_ref: &str) -> kuvert_core::api::ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  secretStoreRef: {store_ref}\n  data: [{{secretKey: k, remoteRef: {{key: k}}}}]\n"
    ))
}

/// Creates `object` in its namespace.
pub async fn create<K>(client: &kube::Client, object: &K) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), object)
        .await
        .unwrap()
}

/// The `Ready` condition of the ExternalSecret `name`: its status and reason.
pub async fn ready(
    api: &Api<kuvert_core::api::ExternalSecret>,
    name: &str,
) -> Option<(String, String)> {
    let status = api.get(name).await.unwrap().status?;
    let c = kuvert_core::conditions::find_ready(&status.conditions)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// The store most scenarios start from: `app/db` holds the app's credentials as JSON.
pub fn app_store(password: &str) -> kuvert_core::api::SecretStore {
    let credentials = format!(r#"{{"username":"app","password":"{password}"}}"#);
    fake_store("default", &[("app/db", &credentials)])
}

/// The ExternalSecret most scenarios start from: `app` copies `app/db` of [`app_store`] (the
/// whole JSON, and its `password` again) into the Secret `app-secret`, refreshed hourly.
pub const APP_EXTERNAL_SECRET: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {name: app, namespace: default}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: demo}
  target: {name: app-secret}
  data:
    - secretKey: password
      remoteRef: {key: app/db, property: password}
  dataFrom:
    - extract: {key: app/db}
"#;

/// The sum of the samples of metric `name` in Prometheus text `metrics` whose labels include
/// every `(label, value)` of `labels` (0 when there is none).
pub fn metric_sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(label, value)| rest.contains(&format!("{label}=\"{value}\"")))
        })
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// `promtool check metrics` (Debian's `prometheus` package, installed by
/// scripts/install-test-deps.sh) finds the exposition valid and lint-free.
pub fn promtool_accepts(metrics: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; see scripts/install-test-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Events about ExternalSecrets in `namespace`, as (object name, type, reason), sorted.
pub async fn external_secret_events(
    client: &kube::Client,
    namespace: &str,
) -> Vec<(String, String, String)> {
    use k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut about: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("ExternalSecret"))
        .map(|e| {
            let name = e.regarding.and_then(|r| r.name).unwrap_or_default();
            let (type_, reason) = (e.type_.unwrap_or_default(), e.reason.unwrap_or_default());
            (name, type_, reason)
        })
        .collect();
    about.sort();
    about
}
