//! A logged-in connection to a Vault or OpenBao server: the part of the provider that the
//! `VaultDynamicSecret` generator reuses.
//!
//! [`VaultConnection`] holds an HTTP client (TLS per the spec), the headers every request
//! carries (namespace, extra headers, consistency headers), and a token with its lifecycle:
//!
//! - **Login once.** A connection logs in when it is created; every request reuses the token.
//!   [`crate::ConnectionCache`] shares one connection among every ExternalSecret, store and
//!   generator with the same server, auth spec and credentials.
//! - **Renewed lazily, on use.** Before a request, a token past two thirds of its TTL is renewed
//!   (`auth/token/renew-self`) while it is renewable; when renewal fails, or the token nears its
//!   max TTL (a renewal grants less than half the TTL of the login), the connection logs in
//!   again. No background task: nothing to leak or cancel, and an idle store costs nothing. An
//!   idle connection's token may expire; its next request then logs in once — a login per idle
//!   period, never per sync.
//! - **Re-login on 401/403.** A denied request first asks `auth/token/lookup-self` whether the
//!   token is still valid. Valid: the denial is a policy decision and is returned as `Forbidden`
//!   (no login storm on a missing policy). Invalid (expired, revoked server-side): the connection
//!   logs in again and retries once. A static token cannot log in again: `Unauthenticated`.
//! - **A refused login waits a step.** When the server refuses a login (`Unauthenticated`, e.g.
//!   a destroyed AppRole secret-id), the connection answers every request needing a login with
//!   that refusal, without logging in, for 10 s, then 20 s, ... up to 10 minutes; new login
//!   material ([`VaultConnection::set_login`]) or a new connection (a changed credential is a
//!   new cache entry) logs in at once. Every ExternalSecret sharing the connection so costs one
//!   failed login per step, not one each: OpenBao locks an AppRole out after 5 failures.
//! - **Revoked when dropped.** A token from a login is revoked (`auth/token/revoke-self`) when the
//!   connection is dropped (by a task on the current Tokio runtime) or [`VaultConnection::revoke`]d,
//!   and a token replaced by a fresh login is revoked at once. Static tokens (`tokenSecretRef`)
//!   are never renewed nor revoked: they belong to whoever made them.
//! - **Kept while leases hang on it.** Vault revokes every lease a token obtained (dynamic
//!   database credentials, certificates, child tokens) together with the token. A token the
//!   `VaultDynamicSecret` generator obtained leases with is marked
//!   ([`VaultConnection::keep_for_leases`]) and is then never revoked by kuvert — not at
//!   shutdown, not when dropped or replaced — so an operator restart does not kill the
//!   credentials it handed out; it expires by its own TTL.

mod login;
mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kuvert_core::provider::ProviderError;
use kuvert_core::secret::SecretBytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::time::Instant;

use crate::errors;
pub use login::{Login, LoginRequest};
pub use reqwest::Method;
pub use tls::ClientIdentity;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to connect, resolved: no references left.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    /// Server address, `http(s)://host:port`.
    pub server: String,
    /// Vault namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// Extra headers sent on every request.
    pub headers: BTreeMap<String, String>,
    /// PEM CA bundle replacing the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate for mutual TLS (and the cert auth method).
    pub client_identity: Option<ClientIdentity>,
    /// Remember `X-Vault-Index` and send it back (read-your-writes on performance standbys).
    pub read_your_writes: bool,
    /// Send `X-Vault-Inconsistent: forward-active-node`.
    pub forward_inconsistent: bool,
    /// How to get a token.
    pub login: Login,
}

/// A lease that came with a response (dynamic secrets) or a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// `lease_id`; empty for tokens (their lease is the token itself).
    pub id: String,
    /// `lease_duration`.
    pub duration: Duration,
    /// `renewable`.
    pub renewable: bool,
}

/// A successful answer. Its body may hold secrets: `Debug` shows only status and lease.
#[derive(Clone)]
pub struct VaultResponse {
    status: u16,
    body: Value,
}

impl std::fmt::Debug for VaultResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultResponse")
            .field("status", &self.status)
            .field("lease", &self.lease())
            .field("body", &"<redacted>")
            .finish()
    }
}

impl VaultResponse {
    /// An answer with `status` and `body`, as [`VaultConnection::request`] returns it (for code
    /// that shapes answers, and its tests).
    pub fn new(status: u16, body: Value) -> Self {
        VaultResponse { status, body }
    }

    /// The HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The whole JSON body (`Null` for 204 No Content).
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The body, owned.
    pub fn into_body(self) -> Value {
        self.body
    }

    /// `data`, when present and not null.
    pub fn data(&self) -> Option<&Value> {
        self.body.get("data").filter(|d| !d.is_null())
    }

    /// `auth`, when present and not null (login answers).
    pub fn auth(&self) -> Option<&Value> {
        self.body.get("auth").filter(|d| !d.is_null())
    }

    /// The lease of a dynamic secret: `lease_id`, `lease_duration`, `renewable`; `None` when
    /// the answer carries no lease id.
    pub fn lease(&self) -> Option<Lease> {
        let id = self.body.get("lease_id")?.as_str()?;
        if id.is_empty() {
            return None;
        }
        Some(Lease {
            id: id.to_owned(),
            duration: Duration::from_secs(self.body["lease_duration"].as_u64().unwrap_or(0)),
            renewable: self.body["renewable"].as_bool().unwrap_or(false),
        })
    }

    /// `warnings`.
    pub fn warnings(&self) -> Vec<String> {
        self.body
            .get("warnings")
            .and_then(|w| serde_json::from_value(w.clone()).ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug)]
struct TokenLease {
    obtained: Instant,
    ttl: Duration,
    renewable: bool,
    /// TTL granted by the login; a renewal granting less than half of it means the max TTL is
    /// near.
    login_ttl: Duration,
}

struct TokenState {
    token: SecretBytes,
    /// Increases with every login; a denied request re-logs in only if no one else did since.
    generation: u64,
    /// `None`: the token does not expire (or is static) and is never renewed.
    lease: Option<TokenLease>,
    /// Leases were obtained with this token: revoking it would revoke them.
    leases: AtomicBool,
}

/// A refused login, remembered (see the module doc).
struct Refused {
    until: Instant,
    count: u32,
    message: String,
}

/// First wait after a refused login.
pub const REFUSED_LOGIN_FIRST_STEP: Duration = Duration::from_secs(10);
/// Longest wait between refused logins.
pub const REFUSED_LOGIN_LAST_STEP: Duration = Duration::from_secs(600);

/// A raw answer before classification.
struct Raw {
    status: StatusCode,
    body: Vec<u8>,
}

/// A connection to one Vault server with one identity. See the module doc for its lifecycle.
pub struct VaultConnection {
    http: reqwest::Client,
    base: reqwest::Url,
    headers: HeaderMap,
    read_your_writes: bool,
    index: Mutex<Option<HeaderValue>>,
    login: RwLock<Login>,
    token: RwLock<Arc<TokenState>>,
    refresh: tokio::sync::Mutex<()>,
    /// The last refused login, answered again until its step ends.
    refused: Mutex<Option<Refused>>,
    logins: AtomicU64,
    renewals: AtomicU64,
    revoked: AtomicBool,
}

impl std::fmt::Debug for VaultConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConnection")
            .field("server", &self.base.as_str())
            .field("login", &*self.login.read().expect("login lock"))
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Connects and (for every method but a static token) logs in.
pub async fn connect(settings: ConnectionSettings) -> Result<Arc<VaultConnection>, ProviderError> {
    let conn = VaultConnection::new(settings)?;
    if conn.login.read().expect("login lock").logs_in() {
        let _guard = conn.refresh.lock().await;
        conn.login_now().await?;
    }
    Ok(Arc::new(conn))
}

impl VaultConnection {
    fn new(settings: ConnectionSettings) -> Result<Self, ProviderError> {
        let mut base = reqwest::Url::parse(&settings.server)
            .map_err(|e| invalid("server", format!("{:?} is not a URL: {e}", settings.server)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("server", "the address must be http:// or https://"));
        }
        base.path_segments_mut()
            .map_err(|()| invalid("server", "the address cannot have a path"))?
            .pop_if_empty()
            .push("v1");
        let mut headers = HeaderMap::new();
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        if let Some(ns) = &settings.namespace {
            let value = HeaderValue::from_str(ns)
                .map_err(|_| invalid("namespace", "not a valid header value"))?;
            headers.insert("x-vault-namespace", value);
        }
        if settings.forward_inconsistent {
            headers.insert(
                "x-vault-inconsistent",
                HeaderValue::from_static("forward-active-node"),
            );
        }
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("headers", format!("{name:?} is not a header name")))?;
            if name == "x-vault-token" {
                return Err(invalid(
                    "headers",
                    "X-Vault-Token is set by the auth method",
                ));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                invalid(
                    "headers",
                    format!("the value of {name} is not a header value"),
                )
            })?;
            headers.insert(name, value);
        }
        let identity = settings
            .client_identity
            .as_ref()
            .map(|id| (id, "tls.certSecretRef"));
        let tls = tls::client_config(settings.ca_pem.as_deref(), "caBundle", identity)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Unavailable {
                message: "could not build the http client".to_owned(),
                source: Some(Box::new(e)),
            })?;
        let (token, lease) = match &settings.login {
            Login::Token(t) => (t.clone(), None),
            _ => (SecretBytes::default(), None),
        };
        Ok(VaultConnection {
            http,
            base,
            headers,
            read_your_writes: settings.read_your_writes,
            index: Mutex::new(None),
            login: RwLock::new(settings.login),
            token: RwLock::new(Arc::new(TokenState {
                token,
                generation: 0,
                lease,
                leases: AtomicBool::new(false),
            })),
            refresh: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        })
    }

    /// Makes an authenticated request. `path` is after `/v1/` (e.g. `database/creds/app`);
    /// `method` may be the Vault verb `LIST`. 4xx/5xx answers become classified errors.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<VaultResponse, ProviderError> {
        self.request_query(method, path, &[], body).await
    }

    /// [`VaultConnection::request`] with query parameters.
    pub async fn request_query(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<VaultResponse, ProviderError> {
        let what = format!("{method} {path}");
        let state = self.fresh_token().await?;
        let mut raw = self
            .send(&method, path, query, body, Some(&state.token))
            .await?;
        if matches!(raw.status.as_u16(), 401 | 403) && self.recover(state.generation).await? {
            let state = self.current();
            raw = self
                .send(&method, path, query, body, Some(&state.token))
                .await?;
        }
        self.finish(&what, raw)
    }

    /// `auth/token/lookup-self`: the token's own metadata (ttl, policies, accessor, ...).
    pub async fn lookup_self(&self) -> Result<Value, ProviderError> {
        let resp = self
            .request(Method::GET, "auth/token/lookup-self", None)
            .await?;
        Ok(resp.data().cloned().unwrap_or(Value::Null))
    }

    /// Number of logins this connection made (tests and metrics).
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Number of token renewals this connection made (tests and metrics).
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// The auth method's name.
    pub fn method(&self) -> &'static str {
        self.login.read().expect("login lock").method()
    }

    /// Replaces the login material (a fresher ServiceAccount token) without logging in; the
    /// next login uses it.
    pub fn set_login(&self, login: Login) {
        *self.login.write().expect("login lock") = login;
        *self.refused.lock().expect("refused lock") = None;
    }

    /// Marks the current token as one that leases were obtained with (see the module doc):
    /// kuvert no longer revokes it; it expires by its TTL. Call after a request that returned
    /// a lease.
    pub fn keep_for_leases(&self) {
        self.current().leases.store(true, Ordering::Relaxed);
    }

    /// How long the current token lives unless renewed; `None` when it does not expire (or is
    /// static, so its TTL is unknown). Leases obtained with it end with it at the latest.
    pub fn token_remaining(&self) -> Option<Duration> {
        let lease = self.current().lease?;
        Some((lease.obtained + lease.ttl).saturating_duration_since(Instant::now()))
    }

    /// Revokes a token obtained by login now (static tokens are left alone; nor is a token
    /// leases depend on, see [`VaultConnection::keep_for_leases`]). Later requests log in
    /// again.
    pub async fn revoke(&self) {
        if !self.login.read().expect("login lock").logs_in() {
            return;
        }
        let _guard = self.refresh.lock().await;
        let state = self.current();
        if state.token.is_empty() {
            return;
        }
        if state.leases.load(Ordering::Relaxed) {
            tracing::info!(
                method = self.method(),
                "vault token kept: leases of generated secrets depend on it; it expires by its TTL"
            );
        } else {
            let _ = self
                .send(
                    &Method::POST,
                    "auth/token/revoke-self",
                    &[],
                    None,
                    Some(&state.token),
                )
                .await;
        }
        self.revoked.store(true, Ordering::Relaxed);
        *self.token.write().expect("token lock") = Arc::new(TokenState {
            token: SecretBytes::default(),
            generation: state.generation,
            // An expired lease makes the next request log in.
            lease: Some(TokenLease {
                obtained: Instant::now(),
                ttl: Duration::ZERO,
                renewable: false,
                login_ttl: Duration::ZERO,
            }),
            leases: AtomicBool::new(false),
        });
    }

    fn current(&self) -> Arc<TokenState> {
        self.token.read().expect("token lock").clone()
    }

    /// The token, renewed or re-obtained first when it is due.
    async fn fresh_token(&self) -> Result<Arc<TokenState>, ProviderError> {
        let state = self.current();
        if !is_due(&state) {
            return Ok(state);
        }
        let _guard = self.refresh.lock().await;
        let state = self.current();
        if !is_due(&state) {
            return Ok(state);
        }
        let lease = state.lease.expect("a due token has a lease");
        let now = Instant::now();
        let alive = !state.token.is_empty() && now < lease.obtained + lease.ttl;
        if alive && lease.renewable {
            match self.renew(&state).await {
                Ok(Some(ttl)) if ttl * 2 >= lease.login_ttl => {
                    self.renewals.fetch_add(1, Ordering::Relaxed);
                    let renewed = Arc::new(TokenState {
                        token: state.token.clone(),
                        generation: state.generation,
                        lease: Some(TokenLease {
                            obtained: now,
                            ttl,
                            ..lease
                        }),
                        leases: AtomicBool::new(state.leases.load(Ordering::Relaxed)),
                    });
                    *self.token.write().expect("token lock") = renewed.clone();
                    return Ok(renewed);
                }
                // Near the max TTL, not renewable any more, or refused: log in afresh.
                Ok(_) | Err(_) => {}
            }
        }
        self.login_now().await?;
        Ok(self.current())
    }

    /// `renew-self`; the new TTL, or `None` when the answer carries none.
    async fn renew(&self, state: &TokenState) -> Result<Option<Duration>, ProviderError> {
        let raw = self
            .send(
                &Method::POST,
                "auth/token/renew-self",
                &[],
                Some(&serde_json::json!({})),
                Some(&state.token),
            )
            .await?;
        let resp = self.finish("POST auth/token/renew-self", raw)?;
        Ok(resp
            .auth()
            .and_then(|a| a["lease_duration"].as_u64())
            .filter(|s| *s > 0)
            .map(Duration::from_secs))
    }

    /// After a 401/403 with the token of `generation`: `Ok(true)` when a new token is there to
    /// retry with, `Ok(false)` when the token is valid (a genuine denial).
    async fn recover(&self, generation: u64) -> Result<bool, ProviderError> {
        let _guard = self.refresh.lock().await;
        let state = self.current();
        if state.generation != generation {
            return Ok(true);
        }
        let lookup = self
            .send(
                &Method::GET,
                "auth/token/lookup-self",
                &[],
                None,
                Some(&state.token),
            )
            .await?;
        if lookup.status.is_success() {
            return Ok(false);
        }
        let logs_in = self.login.read().expect("login lock").logs_in();
        if !logs_in {
            return Err(ProviderError::Unauthenticated {
                message: "the token from tokenSecretRef is invalid or expired".to_owned(),
            });
        }
        self.login_now().await?;
        Ok(true)
    }

    /// Logs in, unless a refused login's step is not over (its refusal is returned then); the
    /// caller holds the refresh lock.
    async fn login_now(&self) -> Result<(), ProviderError> {
        if let Some(refused) = self.refused.lock().expect("refused lock").as_ref()
            && Instant::now() < refused.until
        {
            return Err(ProviderError::Unauthenticated {
                message: refused.message.clone(),
            });
        }
        let result = self.login_once().await;
        let mut refused = self.refused.lock().expect("refused lock");
        match &result {
            Err(ProviderError::Unauthenticated { message }) => {
                let count = refused.as_ref().map_or(1, |r| r.count.saturating_add(1));
                let step = REFUSED_LOGIN_FIRST_STEP
                    .saturating_mul(1u32 << (count - 1).min(16))
                    .min(REFUSED_LOGIN_LAST_STEP);
                *refused = Some(Refused {
                    until: Instant::now() + step,
                    count,
                    message: message.clone(),
                });
            }
            Ok(()) => *refused = None,
            Err(_) => {}
        }
        result
    }

    /// One login request.
    async fn login_once(&self) -> Result<(), ProviderError> {
        let login = self.login.read().expect("login lock").clone();
        let Some(request) = login.request() else {
            return Ok(());
        };
        let what = format!("login with {} at {}", login.method(), request.path);
        let raw = self
            .send(&Method::POST, &request.path, &[], Some(&request.body), None)
            .await?;
        if !raw.status.is_success() {
            let text = self.error_text(&raw.body);
            return Err(errors::login_failed(&what, raw.status, &text));
        }
        let body: Value =
            serde_json::from_slice(&raw.body).map_err(|_| ProviderError::Unavailable {
                message: format!("{what}: the answer was not JSON"),
                source: None,
            })?;
        let auth = &body["auth"];
        let Some(token) = auth["client_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(ProviderError::Unauthenticated {
                message: format!("{what}: the answer held no token"),
            });
        };
        let ttl = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
        let lease = (!ttl.is_zero()).then(|| TokenLease {
            obtained: Instant::now(),
            ttl,
            renewable: auth["renewable"].as_bool().unwrap_or(false),
            login_ttl: ttl,
        });
        let previous = self.current();
        *self.token.write().expect("token lock") = Arc::new(TokenState {
            token: SecretBytes::from(token),
            generation: previous.generation + 1,
            lease,
            leases: AtomicBool::new(false),
        });
        self.logins.fetch_add(1, Ordering::Relaxed);
        self.revoked.store(false, Ordering::Relaxed);
        if !previous.token.is_empty() && !previous.leases.load(Ordering::Relaxed) {
            // The replaced token may still be valid: do not leave it behind (unless leases
            // depend on it: those would go with it).
            self.spawn_revoke(previous.token.clone());
        }
        tracing::debug!(
            method = login.method(),
            ttl_secs = ttl.as_secs(),
            "vault login"
        );
        Ok(())
    }

    fn spawn_revoke(&self, token: SecretBytes) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(url) = self.url("auth/token/revoke-self", &[]) else {
            return;
        };
        let request = self
            .http
            .post(url)
            .headers(self.headers.clone())
            .header("x-vault-token", token_header(&token));
        handle.spawn(async move {
            let _ = request.send().await;
        });
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, ProviderError> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| invalid("server", "the address cannot have a path"))?;
            for segment in path.trim_start_matches('/').split('/') {
                // `.` and `..` would be resolved by the URL and could reach other endpoints
                // (`secret/data/../../sys/...`) with this connection's token.
                if segment == "." || segment == ".." {
                    return Err(invalid(
                        "remoteRef.key",
                        format!("the path {path:?} has a '.' or '..' segment"),
                    ));
                }
                segments.push(segment);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        token: Option<&SecretBytes>,
    ) -> Result<Raw, ProviderError> {
        let what = format!("{method} {path}");
        let (method, url) = if method.as_str() == "LIST" {
            let mut q = query.to_vec();
            q.push(("list", "true"));
            (Method::GET, self.url(path, &q)?)
        } else {
            (method.clone(), self.url(path, query)?)
        };
        let mut request = self.http.request(method, url).headers(self.headers.clone());
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            request = request.header("x-vault-token", token_header(token));
        }
        if self.read_your_writes
            && let Some(index) = self.index.lock().expect("index lock").clone()
        {
            request = request.header("x-vault-index", index);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| errors::unreachable(&what, e.without_url()))?;
        let status = response.status();
        if self.read_your_writes
            && let Some(index) = response.headers().get("x-vault-index")
        {
            *self.index.lock().expect("index lock") = Some(index.clone());
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| errors::unreachable(&what, e.without_url()))?;
        Ok(Raw {
            status,
            body: body.to_vec(),
        })
    }

    fn finish(&self, what: &str, raw: Raw) -> Result<VaultResponse, ProviderError> {
        if !raw.status.is_success() {
            let text = self.error_text(&raw.body);
            return Err(errors::classify(what, raw.status, &text));
        }
        let body = if raw.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw.body).map_err(|_| ProviderError::Unavailable {
                message: format!("{what}: the answer was not JSON"),
                source: None,
            })?
        };
        Ok(VaultResponse {
            status: raw.status.as_u16(),
            body,
        })
    }

    /// Vault's error strings, scrubbed of every credential this connection knows.
    fn error_text(&self, body: &[u8]) -> String {
        let text = errors::vault_errors(body);
        let state = self.current();
        let login = self.login.read().expect("login lock");
        let mut secrets = login.secrets();
        secrets.push(state.token.expose());
        errors::scrub(&text, &secrets)
    }
}

fn is_due(state: &TokenState) -> bool {
    match state.lease {
        None => false,
        Some(lease) => Instant::now() >= lease.obtained + lease.ttl * 2 / 3,
    }
}

fn token_header(token: &SecretBytes) -> HeaderValue {
    let mut value =
        HeaderValue::from_bytes(token.expose()).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

impl Drop for VaultConnection {
    fn drop(&mut self) {
        let logs_in = self.login.read().map(|l| l.logs_in()).unwrap_or(false);
        if !logs_in || self.revoked.load(Ordering::Relaxed) {
            return;
        }
        let state = self.current();
        if !state.token.is_empty() && !state.leases.load(Ordering::Relaxed) {
            self.spawn_revoke(state.token.clone());
        }
    }
}
