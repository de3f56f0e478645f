//! One login per distinct configuration: the process-wide cache of [`VaultConnection`]s.
//!
//! An entry is keyed by a SHA-256 digest of the store's vault spec (which holds only references)
//! and of everything its references resolved to (CA, client certificate, credentials), so:
//! every ExternalSecret of every store with the same server and identity shares one token; a
//! rotated credential (a new secret ID in its Secret) makes a new entry and a new login; the
//! digest itself is never shown anywhere.
//!
//! Connecting is single-flight: a hundred syncs of a new store at once make one login.
//! Entries unused for longer than the idle timeout are dropped on the next lookup (or by
//! [`ConnectionCache::evict_idle`]), which revokes their token once the last user lets go.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuvert_core::api::VaultProvider as VaultSpec;
use kuvert_core::provider::{KubeAccess, ProviderError, StoreContext};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::{self, RequestedToken};
use crate::connection::{self, Login, VaultConnection};

/// Where a pod finds its own ServiceAccount token.
pub const IN_CLUSTER_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Default idle timeout: longer than the default refresh interval (1h), so a store used once an
/// hour keeps its token.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

struct Entry {
    cell: Arc<OnceCell<Arc<VaultConnection>>>,
    last_used: Instant,
    /// When the ServiceAccount token in the connection's login was requested.
    token_requested: Option<Instant>,
}

/// The connection cache. Held once per process (by the provider, and shared with the
/// VaultDynamicSecret generator through [`crate::VaultProvider::cache`]).
pub struct ConnectionCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    idle_timeout: Duration,
    own_token_path: PathBuf,
}

impl std::fmt::Debug for ConnectionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCache")
            .field("entries", &self.len())
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ConnectionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionCache {
    /// An empty cache with the default idle timeout.
    pub fn new() -> Self {
        ConnectionCache {
            entries: Mutex::new(HashMap::new()),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            own_token_path: PathBuf::from(IN_CLUSTER_TOKEN_PATH),
        }
    }

    /// Sets how long an unused connection is kept.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets where the operator's own ServiceAccount token is read from (Kubernetes auth with
    /// neither `serviceAccountRef` nor `secretRef`).
    pub fn with_own_token_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.own_token_path = path.into();
        self
    }

    /// Number of connections held.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connection for a vault spec, as used by an object in `namespace`: cached, or made
    /// (and logged in) now. `store` resolves reference namespaces and names the store in errors.
    pub async fn connect(
        &self,
        store: &StoreContext<'_>,
        spec: &VaultSpec,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<VaultConnection>, ProviderError> {
        config::validate(store, spec)?;
        let resolved = config::resolve(store, spec, namespace, kube, &self.own_token_path).await?;
        let now = Instant::now();
        let (cell, token_requested) = {
            let mut entries = self.entries.lock().expect("cache lock");
            let idle = self.idle_timeout;
            entries.retain(|_, e| now.duration_since(e.last_used) < idle);
            let entry = entries.entry(resolved.key).or_insert_with(|| Entry {
                cell: Arc::new(OnceCell::new()),
                last_used: now,
                token_requested: None,
            });
            entry.last_used = now;
            (entry.cell.clone(), entry.token_requested)
        };
        let requested = resolved.requested_token.clone();
        let conn = cell
            .get_or_try_init(|| async {
                let mut settings = resolved.settings.clone();
                if let Some(req) = &requested {
                    settings.login = with_token(settings.login, kube, req).await?;
                }
                connection::connect(settings).await
            })
            .await?
            .clone();
        match (requested, token_requested) {
            (Some(_), None) => self.mark_requested(&resolved.key, now),
            // A requested ServiceAccount token is short-lived: refresh the material the next
            // login will present once half its life has passed (no login happens now).
            (Some(req), Some(at)) if now.duration_since(at) > req.lifetime / 2 => {
                let login = with_token(resolved.settings.login, kube, &req).await?;
                conn.set_login(login);
                self.mark_requested(&resolved.key, now);
            }
            _ => {}
        }
        Ok(conn)
    }

    fn mark_requested(&self, key: &[u8; 32], at: Instant) {
        if let Some(e) = self.entries.lock().expect("cache lock").get_mut(key) {
            e.token_requested = Some(at);
        }
    }

    /// Drops connections unused for longer than `idle`; returns how many. Their tokens are
    /// revoked once no client holds them any more.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        let before = entries.len();
        entries.retain(|_, e| now.duration_since(e.last_used) < idle);
        before - entries.len()
    }

    /// Revokes every token obtained by login and empties the cache (operator shutdown).
    pub async fn shutdown(&self) {
        let conns: Vec<Arc<VaultConnection>> = {
            let mut entries = self.entries.lock().expect("cache lock");
            entries
                .drain()
                .filter_map(|(_, e)| e.cell.get().cloned())
                .collect()
        };
        for conn in conns {
            conn.revoke().await;
        }
    }
}

/// The login with a freshly requested ServiceAccount token as its JWT.
async fn with_token(
    login: Login,
    kube: &dyn KubeAccess,
    req: &RequestedToken,
) -> Result<Login, ProviderError> {
    let jwt = config::request_token(kube, req).await?;
    Ok(match login {
        Login::Kubernetes { mount, role, .. } => Login::Kubernetes { mount, role, jwt },
        Login::Jwt { mount, role, .. } => Login::Jwt { mount, role, jwt },
        other => other,
    })
}
