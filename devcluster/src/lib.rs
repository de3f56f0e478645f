//! `kuvert-devcluster`: an in-memory Kubernetes API server that an unmodified kube-rs client
//! and the real `kubectl` work against.
//!
//! It serves discovery, generic storage for the built-in kinds kuvert needs and for every
//! CustomResourceDefinition created at runtime, all verbs (including watch, patch flavours and
//! server-side apply), the `status` subresource, finalizers, owner-reference garbage collection,
//! namespaces, CRD schema validation, and ServiceAccount TokenRequest / TokenReview. See the
//! crate's README for what it simplifies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kuvert_devcluster::{Config, DevCluster};
//! let cluster = DevCluster::start(Config::default()).await?;
//! let client = cluster.client()?;
//! cluster.write_kubeconfig("kuvert-dev.kubeconfig")?;
//! # let _ = client;
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```

mod discovery;
mod error;
mod events;
mod fault;
mod format;
mod gc;
mod handlers;
mod meta;
mod openapi;
mod patch;
mod protobuf;
mod registry;
mod schema;
mod selectors;
mod server;
mod store;
mod tls;
mod tokens;
mod validation;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::sync::{Notify, watch as tokio_watch};

pub use error::{ClientError, StartError};
pub use fault::Fault;

use server::{Shared, User};
use store::{State, WriteOpts};

/// A bearer token the server accepts, and who presents it.
#[derive(Debug, Clone)]
pub struct StaticToken {
    /// The token as sent in `Authorization: Bearer <token>`.
    pub token: String,
    /// The user name it authenticates as.
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// Which credential the generated kubeconfig (and [`DevClusterHandle::client`]) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credential {
    /// The generated admin bearer token.
    #[default]
    Token,
    /// A generated admin client certificate (needs TLS).
    ClientCertificate,
}

/// How to run a dev cluster. `Config::default()` is TLS on a free loopback port with a
/// generated admin token; [`Config::plain_http`] is the same over plain HTTP.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated CA (true) or plain HTTP (false; keep it on loopback).
    pub tls: bool,
    /// Accept unauthenticated requests as `system:anonymous`.
    pub anonymous: bool,
    /// Extra bearer tokens to accept besides the generated admin token.
    pub tokens: Vec<StaticToken>,
    /// The credential written into the kubeconfig.
    pub credential: Credential,
    /// How many past events watches can resume from; older resourceVersions get 410 Gone.
    pub watch_history: usize,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The `iss` claim of ServiceAccount tokens.
    pub service_account_issuer: String,
    /// Audiences accepted when a TokenReview names none (the API server's own audiences);
    /// empty means `[service_account_issuer]`.
    pub api_audiences: Vec<String>,
    /// Namespaces that exist from the start.
    pub namespaces: Vec<String>,
    /// At most this many requests served at once, like kube-apiserver's
    /// `--max-requests-inflight`: beyond it, requests get `429 Too Many Requests` with
    /// `Retry-After: 1`. Watches do not count. `None` (the default) or `Some(0)` is no limit.
    /// Unlike kube-apiserver, `system:masters` (the generated admin) is not exempt, and reads
    /// and writes share one limit.
    pub max_requests_inflight: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            anonymous: false,
            tokens: Vec::new(),
            credential: Credential::Token,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            service_account_issuer: "https://kubernetes.default.svc.cluster.local".into(),
            api_audiences: Vec::new(),
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            max_requests_inflight: None,
        }
    }
}

impl Config {
    /// Plain HTTP on a free loopback port (fast, for tests).
    pub fn plain_http() -> Self {
        Self {
            tls: false,
            ..Self::default()
        }
    }
}

/// Starts dev clusters.
#[derive(Debug)]
pub struct DevCluster;

/// A running dev cluster. Dropping it stops the server; [`DevClusterHandle::shutdown`] also
/// waits for the accept loop to end.
pub struct DevClusterHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    tls: bool,
    admin_token: String,
    client_cert: Option<(String, String)>,
    serve: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for DevClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevClusterHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl DevCluster {
    /// Binds, generates the CA and signing key, creates the initial namespaces, and serves in
    /// background tasks of the current tokio runtime.
    pub async fn start(config: Config) -> Result<DevClusterHandle, StartError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let authority = tls::Authority::generate()?;
        let tls_acceptor = if config.tls {
            Some(tokio_rustls::TlsAcceptor::from(
                authority.server_config(addr.ip())?,
            ))
        } else {
            None
        };
        let admin_token = meta::random_bytes::<24>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let admin = User {
            name: "devcluster-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        };
        let mut static_tokens: HashMap<String, User> = HashMap::new();
        static_tokens.insert(admin_token.clone(), admin);
        for t in &config.tokens {
            let mut groups = t.groups.clone();
            groups.push("system:authenticated".into());
            static_tokens.insert(
                t.token.clone(),
                User {
                    name: t.user.clone(),
                    uid: String::new(),
                    groups,
                },
            );
        }
        let client_cert = if config.tls && config.credential == Credential::ClientCertificate {
            Some(authority.client_cert("devcluster-admin", &["system:masters".to_string()])?)
        } else {
            None
        };
        let (mut state, _rx) = State::new(config.watch_history);
        if let Some(ns_info) = state.registry.find("", "v1", "namespaces") {
            for ns in &config.namespaces {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let _ = state.create(
                    &ns_info,
                    "v1",
                    "",
                    obj,
                    &WriteOpts::default(),
                    &mut Vec::new(),
                );
            }
        }
        let api_audiences = if config.api_audiences.is_empty() {
            vec![config.service_account_issuer.clone()]
        } else {
            config.api_audiences.clone()
        };
        let scheme = if config.tls { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            tokens: tokens::TokenIssuer::generate(config.service_account_issuer.clone())?,
            authority,
            static_tokens,
            anonymous: config.anonymous,
            api_audiences,
            counters: Mutex::new(BTreeMap::new()),
            gc: Notify::new(),
            bookmark_interval: config.bookmark_interval,
            watch_epoch: tokio_watch::channel(0).0,
            shutdown: tokio_watch::channel(false).0,
            server_address: addr.to_string(),
            inflight: config
                .max_requests_inflight
                .filter(|limit| *limit > 0)
                .map(|limit| Arc::new(tokio::sync::Semaphore::new(limit))),
            fault: fault::FaultSwitch::default(),
        });
        tokio::spawn(gc::run(shared.clone()));
        let serve = tokio::spawn(server::serve(listener, tls_acceptor, shared.clone()));
        tracing::info!(%url, "devcluster serving");
        Ok(DevClusterHandle {
            shared,
            addr,
            url,
            tls: config.tls,
            admin_token,
            client_cert,
            serve: Some(serve),
        })
    }
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl DevClusterHandle {
    /// The server URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generated CA certificate (PEM) that signs the server and client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.shared.authority.ca_pem
    }

    /// The generated admin bearer token (user `devcluster-admin`, group `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A kubeconfig (context `devcluster`, namespace `default`) that kubectl and kube-rs accept.
    pub fn kubeconfig_yaml(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cluster_tls = if self.tls {
            format!("\n    certificate-authority-data: {}", b64(self.ca_pem()))
        } else {
            String::new()
        };
        let user = match &self.client_cert {
            Some((cert, key)) => format!(
                "    client-certificate-data: {}\n    client-key-data: {}",
                b64(cert),
                b64(key)
            ),
            None => format!("    token: {}", yaml_quote(&self.admin_token)),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: devcluster\n  cluster:\n    server: {}{cluster_tls}\nusers:\n- name: devcluster-admin\n  user:\n{user}\ncontexts:\n- name: devcluster\n  context:\n    cluster: devcluster\n    user: devcluster-admin\n    namespace: default\ncurrent-context: devcluster\npreferences: {{}}\n",
            yaml_quote(&self.url)
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (owner-only permissions on Unix).
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path.as_ref(), self.kubeconfig_yaml())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path.as_ref(), std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// A kube-rs configuration for this cluster (admin credential, namespace `default`).
    pub fn kube_config(&self) -> Result<kube::Config, kube::config::KubeconfigError> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())?;
        let auth_info = kubeconfig.auth_infos[0]
            .auth_info
            .clone()
            .unwrap_or_default();
        let mut config = kube::Config::new(
            self.url
                .parse()
                .map_err(kube::config::KubeconfigError::ParseClusterUrl)?,
        );
        config.default_namespace = "default".into();
        config.auth_info = auth_info;
        if self.tls {
            config.root_cert = Some(vec![self.shared.authority.ca_der().to_vec()]);
        }
        Ok(config)
    }

    /// A kube-rs client for this cluster, authenticated as the admin.
    pub fn client(&self) -> Result<kube::Client, ClientError> {
        Ok(kube::Client::try_from(self.kube_config()?)?)
    }

    /// Requests served so far by verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`) and resource (plural, with `/status` or `/token` for
    /// subresources, e.g. `secrets`, `externalsecrets/status`).
    pub fn request_counts(&self) -> BTreeMap<(String, String), u64> {
        self.shared.counters.lock().expect("counters").clone()
    }

    /// Requests served so far for one verb and resource, e.g. `("update", "secrets")`.
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        self.shared
            .counters
            .lock()
            .expect("counters")
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Writes (`create`, `update`, `patch`, `delete`) to a resource, summed.
    pub fn write_count(&self, resource: &str) -> u64 {
        ["create", "update", "patch", "delete", "deletecollection"]
            .iter()
            .map(|v| self.request_count(v, resource))
            .sum()
    }

    /// Answers every request with `fault` for `duration` (`None` or zero: serve again), like
    /// `POST /devcluster/fault` (see the module `fault`).
    pub fn set_fault(&self, fault: Option<Fault>, duration: Duration) {
        self.shared.fault.set(fault, duration);
    }

    /// Requests answered with a fault so far.
    pub fn faulted_requests(&self) -> u64 {
        self.shared.fault.answered()
    }

    /// Sets every request counter back to zero.
    pub fn reset_request_counts(&self) {
        self.shared.counters.lock().expect("counters").clear();
    }

    /// Issues a client certificate (signed by the cluster CA) that authenticates as `user` in
    /// `groups`; returns (certificate PEM, private key PEM). Only useful with TLS.
    pub fn issue_client_certificate(
        &self,
        user: &str,
        groups: &[String],
    ) -> Result<(String, String), StartError> {
        self.shared.authority.client_cert(user, groups)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().expect("state").rv
    }

    /// Ends every open watch stream, as an API server restart would; clients re-watch from the
    /// last resourceVersion they saw (and re-list if it has left the history).
    pub fn end_watches(&self) {
        self.shared.watch_epoch.send_modify(|e| *e += 1);
    }

    /// Stops serving: open connections and watches end, the port is released.
    pub async fn shutdown(mut self) {
        let _ = self.shared.shutdown.send(true);
        if let Some(serve) = self.serve.take() {
            let _ = serve.await;
        }
    }
}

impl Drop for DevClusterHandle {
    fn drop(&mut self) {
        let _ = self.shared.shutdown.send(true);
    }
}
