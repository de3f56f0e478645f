//! The real Kubernetes control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager, built from their Go modules (`tests/control-plane`,
//! `scripts/control-plane.sh bin`).
//!
//! [`ControlPlane::start`] generates a CA, the API server's serving certificate, client
//! certificates for an admin (`system:masters`) and for the controller manager, and a
//! ServiceAccount signing key, then starts:
//! - etcd on free loopback ports (no fsync: a test cluster keeps nothing worth a disk flush);
//! - kube-apiserver with RBAC and Node authorization, the default admission plugins and a
//!   ServiceAccount issuer, so TokenRequest and TokenReview work for real;
//! - kube-controller-manager with the garbage collector, namespace and ServiceAccount
//!   controllers, each under its own ServiceAccount's credentials as on a kubeadm cluster.
//!
//! No kubelet and no scheduler: Pods are never run. [`ControlPlane::start`] returns once the API
//! server is ready and the controller manager has created the `default` ServiceAccount in
//! `default` (so garbage collection and namespace deletion work from the first request). Every
//! process is killed and the folder removed when the value is dropped.
//!
//! The binaries are found in `$KUVERT_CONTROL_PLANE_BIN`, else `scripts/control-plane.sh bin`
//! builds them (once, into a cache) and names the folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};

use crate::{TestCa, free_port, random_hex};

/// How long etcd and the API server get to become ready. Cold, on 2 busy cores, the API server
/// took up to 20 s; the limit leaves room for a loaded CI machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The controllers kube-controller-manager runs: what owner references, namespace deletion and
/// ServiceAccounts need, and the workload controllers, so a changed pod template really rolls a
/// new ReplicaSet (rollout restarts). Nothing that schedules, runs or routes Pods: the Pods the
/// ReplicaSets create stay Pending, and a DaemonSet without Nodes has none.
const CONTROLLERS: &str = "garbage-collector-controller,namespace-controller,serviceaccount-controller,\
     deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller";

/// Audit: every request's metadata (user, verb, resource, response code), except those of the
/// control plane's own components, so a test can see what a client was refused
/// ([`ControlPlane::refused`]).
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    userGroups: [\"system:serviceaccounts:kube-system\", \"system:nodes\"]
  - level: None
    users: [\"system:kube-controller-manager\", \"system:apiserver\"]
  - level: Metadata
";

/// The file `up` writes the process ids into and `down` reads them from.
const PIDS: &str = "pids";

/// A running control plane; everything stops and its folder is removed on drop.
pub struct ControlPlane {
    dir: PathBuf,
    remove_dir: bool,
    children: Vec<Child>,
    /// The program name of each child, in the same order.
    names: Vec<String>,
    url: String,
    ca: Arc<TestCa>,
    startup: Duration,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The folder holding `etcd`, `kube-apiserver`, `kube-controller-manager` and `helm`.
pub fn control_plane_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KUVERT_CONTROL_PLANE_BIN") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/control-plane.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("bin")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "`scripts/control-plane.sh bin` failed: the control plane is built from Go modules \
         (Go 1.26 and the Go module proxy are needed once)"
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 path");
    PathBuf::from(text.lines().last().expect("a folder").trim())
}

impl ControlPlane {
    /// Starts a control plane in a fresh temporary folder.
    pub async fn start() -> ControlPlane {
        Self::start_with_crds(&[]).await
    }

    /// Starts a control plane in a fresh temporary folder with `crds` (CustomResourceDefinition
    /// objects as JSON) established before the controller manager starts. kube-controller-
    /// manager's garbage collector learns of kinds created later only at its next discovery
    /// sync, up to 30 s on; a cluster whose CRDs were installed first collects dependents of
    /// their objects at once, as a real install does.
    pub async fn start_with_crds(crds: &[serde_json::Value]) -> ControlPlane {
        let dir = std::env::temp_dir().join(format!(
            "kuvert-control-plane-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        let mut plane = Self::launch(&dir, crds).await;
        plane.remove_dir = true;
        plane
    }

    /// Starts a control plane keeping its state, logs and kubeconfig in `dir` (created if
    /// missing). The folder is left in place on drop.
    pub async fn start_in(dir: &Path) -> ControlPlane {
        Self::launch(dir, &[]).await
    }

    async fn launch(dir: &Path, crds: &[serde_json::Value]) -> ControlPlane {
        let started = Instant::now();
        let bin = control_plane_bin_dir();
        std::fs::create_dir_all(dir).expect("create the control plane's folder");
        let dir = dir.canonicalize().expect("control plane folder");
        let ca = Arc::new(TestCa::generate());
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
            path.display().to_string()
        };
        let ca_file = file("ca.crt", ca.pem());
        let (serving_cert, serving_key) = ca.server_cert();
        let serving_cert = file("apiserver.crt", &serving_cert);
        let serving_key = file("apiserver.key", &serving_key);
        let sa_key = KeyPair::generate().expect("service account key");
        let sa_private = file("sa.key", &sa_key.serialize_pem());
        let sa_public = file("sa.pub", &sa_key.public_key_pem());

        let audit_policy = file("audit-policy.yaml", AUDIT_POLICY);
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let url = format!("https://127.0.0.1:{api_port}");
        let mut plane = ControlPlane {
            dir: dir.clone(),
            remove_dir: false,
            children: Vec::new(),
            names: Vec::new(),
            url: url.clone(),
            ca: ca.clone(),
            startup: Duration::ZERO,
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        plane.spawn(
            &bin,
            "etcd",
            &[
                "--name=default".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        );

        plane.spawn(
            &bin,
            "kube-apiserver",
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={serving_cert}"),
                format!("--tls-private-key-file={serving_key}"),
                format!("--client-ca-file={ca_file}"),
                "--authorization-mode=Node,RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={sa_public}"),
                format!("--service-account-signing-key-file={sa_private}"),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                // No Endpoints for the API server's own Service: nothing in-cluster calls it.
                "--endpoint-reconciler-type=none".into(),
                "--profiling=false".into(),
                format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                format!("--audit-policy-file={audit_policy}"),
                format!("--audit-log-path={}", dir.join("audit.log").display()),
                "--audit-log-format=json".into(),
            ],
        );

        let admin = plane.client_identity("kuvert-admin", "system:masters");
        std::fs::write(dir.join("admin.kubeconfig"), plane.kubeconfig_with(&admin))
            .expect("write admin kubeconfig");
        let kcm_identity = plane.client_identity("system:kube-controller-manager", "");
        let kcm_kubeconfig = file(
            "kube-controller-manager.kubeconfig",
            &plane.kubeconfig_with(&kcm_identity),
        );

        let http = admin_http(&ca, &admin);
        plane
            .wait_for(&http, "/readyz", "kube-apiserver to be ready")
            .await;
        for crd in crds {
            let name = crd["metadata"]["name"].as_str().expect("a CRD's name");
            let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
            let response = http
                .post(format!("{url}{path}"))
                .json(crd)
                .send()
                .await
                .expect("create a CRD");
            let status = response.status();
            assert!(
                status.is_success(),
                "creating CRD {name}: {status} {}",
                response.text().await.unwrap_or_default()
            );
            plane
                .wait_for_json(&http, &format!("{path}/{name}"), |crd| {
                    crd["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                })
                .await;
        }

        plane.spawn(
            &bin,
            "kube-controller-manager",
            &[
                format!("--kubeconfig={kcm_kubeconfig}"),
                format!("--controllers={CONTROLLERS}"),
                "--use-service-account-credentials=true".into(),
                format!("--root-ca-file={ca_file}"),
                "--leader-elect=false".into(),
                // No serving port: nothing scrapes it, and a fixed one would collide.
                "--secure-port=0".into(),
                "--profiling=false".into(),
            ],
        );
        plane
            .wait_for(
                &http,
                "/api/v1/namespaces/default/serviceaccounts/default",
                "kube-controller-manager to create the default ServiceAccount",
            )
            .await;
        plane.startup = started.elapsed();
        plane
    }

    fn spawn(&mut self, bin: &Path, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .unwrap_or_else(|e| panic!("create {name}.log: {e}"));
        let child = Command::new(bin.join(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.join(name).display()));
        self.children.push(child);
        self.names.push(name.to_owned());
    }

    /// The process id of `name` (`etcd`, `kube-apiserver` or `kube-controller-manager`), for
    /// reading its CPU time and memory from /proc.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let i = self.names.iter().position(|n| n == name)?;
        self.children.get(i).map(Child::id)
    }

    /// Polls `path` with the admin identity until it answers 200; panics with the log's tail
    /// when a process exits or the time is up.
    async fn wait_for(&mut self, http: &reqwest::Client, path: &str, what: &str) {
        self.poll(http, path, what, |_| true).await;
    }

    /// Polls `path` until its JSON satisfies `check`.
    async fn wait_for_json(
        &mut self,
        http: &reqwest::Client,
        path: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) {
        let what = format!("{path} to be ready");
        self.poll(http, path, &what, |body| {
            serde_json::from_str(body).is_ok_and(|json| check(&json))
        })
        .await;
    }

    async fn poll(
        &mut self,
        http: &reqwest::Client,
        path: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let response = http.get(format!("{}{path}", self.url)).send().await;
            if let Ok(response) = response
                && response.status().is_success()
                && response.text().await.is_ok_and(|body| check(&body))
            {
                return;
            }
            let exited = self
                .children
                .iter_mut()
                .position(|c| c.try_wait().ok().flatten().is_some());
            if exited.is_some() || Instant::now() > deadline {
                let mut tails = String::new();
                for name in ["etcd", "kube-apiserver", "kube-controller-manager"] {
                    let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                        .unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                    tails.push_str(&format!("\n--- {name}.log (tail)\n{tail}"));
                }
                panic!("timed out waiting for {what} (or a process exited){tails}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The API server's URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cluster CA certificate (PEM): it signed the serving and client certificates.
    pub fn ca_pem(&self) -> &str {
        self.ca.pem()
    }

    /// The admin kubeconfig (`system:masters`): `DIR/admin.kubeconfig`.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The requests of `user` the API server's authorizer (RBAC) refused, each as
    /// `verb group/resource[/subresource] namespace/name`, from the audit log.
    pub fn refused(&self, user: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| {
                // An authorizer's refusal, not another 403 (such as a write into a
                // terminating namespace, which no permission allows).
                event["user"]["username"] == user
                    && event["annotations"]["authorization.k8s.io/decision"] == "forbid"
            })
            .map(|event| {
                let o = &event["objectRef"];
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                let mut resource = format!("{}/{}", text(&o["apiGroup"]), text(&o["resource"]));
                if let Some(sub) = o["subresource"].as_str() {
                    resource = format!("{resource}/{sub}");
                }
                format!(
                    "{} {resource} {}/{}",
                    text(&event["verb"]),
                    text(&o["namespace"]),
                    text(&o["name"])
                )
            })
            .collect()
    }

    /// The folder holding the logs, etcd's data and the kubeconfig.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long [`ControlPlane::start`] took, until the controller manager was working.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// A kubeconfig for this cluster that authenticates with a bearer `token` (for a
    /// ServiceAccount token from TokenRequest).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        self.kubeconfig_with(&Identity::Token(token.to_owned()))
    }

    fn client_identity(&self, user: &str, group: &str) -> Identity {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, user);
        if !group.is_empty() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = self.ca.sign(params, &key);
        Identity::Certificate {
            cert,
            key: key.serialize_pem(),
        }
    }

    fn kubeconfig_with(&self, identity: &Identity) -> String {
        let user = match identity {
            Identity::Token(token) => format!("    token: {token}\n"),
            Identity::Certificate { cert, key } => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                B64.encode(cert),
                B64.encode(key)
            ),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: control-plane\n  cluster:\n    \
             server: {}\n    certificate-authority-data: {}\nusers:\n- name: user\n  user:\n{user}\
             contexts:\n- name: control-plane\n  context:\n    cluster: control-plane\n    \
             user: user\n    namespace: default\ncurrent-context: control-plane\n",
            self.url,
            B64.encode(self.ca.pem()),
        )
    }

    /// Leaves the processes running and the folder in place (for `scripts/control-plane.sh
    /// up`), recording the process ids for [`ControlPlane::stop_detached`].
    pub fn detach(mut self) {
        let pids: Vec<String> = self.children.iter().map(|c| c.id().to_string()).collect();
        std::fs::write(self.dir.join(PIDS), pids.join("\n") + "\n").expect("write pids");
        self.children.clear();
        self.names.clear();
        self.remove_dir = false;
    }

    /// Stops the processes a detached control plane in `dir` runs (newest first, SIGTERM,
    /// then SIGKILL after 10 s) and removes `dir`.
    pub fn stop_detached(dir: &Path) {
        let pids = std::fs::read_to_string(dir.join(PIDS)).unwrap_or_default();
        for pid in pids.lines().rev().filter(|p| !p.is_empty()) {
            let alive = || {
                Command::new("kill")
                    .args(["-0", pid])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let _ = Command::new("kill").args(["-TERM", pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How a kubeconfig user authenticates.
enum Identity {
    Token(String),
    Certificate { cert: String, key: String },
}

/// An HTTP client trusting `ca` and presenting the admin certificate.
fn admin_http(ca: &TestCa, admin: &Identity) -> reqwest::Client {
    let Identity::Certificate { cert, key } = admin else {
        unreachable!("the admin authenticates with a certificate")
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).expect("add CA");
    let cert = rustls::pki_types::CertificateDer::from(
        pem_der(cert, "CERTIFICATE").expect("certificate PEM"),
    );
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
        pem_der(key, "PRIVATE KEY").expect("key PEM").into(),
    );
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)
        .expect("client certificate");
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// The DER bytes of the first PEM block labelled `label`.
fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let body: String = pem[start..stop].split_whitespace().collect();
    B64.decode(body).ok()
}
