//! The `VaultDynamicSecret` generator: credentials from any Vault or OpenBao secrets engine
//! (database, PKI, AWS, ...), with their leases renewed and revoked.
//!
//! # A request, its keys, its lease
//! A generator makes one call: `method` (`GET`, default; `POST`; `PUT`) on `path` (after `/v1/`,
//! e.g. `database/creds/app` or `pki/issue/web`). `parameters` are the JSON body of a `POST` or
//! `PUT` and the query of a `GET` (strings, numbers and booleans only there).
//!
//! - `resultType: Data` (default): the keys are the answer's `data` map; `Auth`: its `auth` map
//!   (`client_token`, `accessor`, `policies`, ... of engines that return a token).
//! - Values: strings as they are (a PEM certificate is its text); every other value — numbers,
//!   booleans, arrays such as PKI's `ca_chain`, maps — as compact JSON text (`["-----BEGIN...",
//!   "..."]`), which a template can read with `fromjson`.
//! - An answer without keys is an error naming `spec.allowEmptyResponse`, unless that is `true`.
//! - `retrySettings` retries a call — generating, renewing, revoking — that failed transiently
//!   (unreachable server, 5xx) up to `maxRetries` times, `retryInterval` apart (default `1s`). A refused call (4xx) is not
//!   retried: only a spec or policy change helps.
//!
//! # Leases
//! A `Data` answer's lease (`lease_id`, `lease_duration`, `renewable`) becomes the
//! [`Lease`](kuvert_core::generator::Lease) of what was generated; an `Auth` answer's lease is
//! the token, recorded by accessor (see [`lease`]). [`Generator::renew`] and
//! [`Generator::revoke`] act on a recorded id alone, so a lease made before an operator restart
//! is renewed and revoked after it.
//!
//! Vault ties every lease to the token that obtained it: revoking or letting that token expire
//! revokes the lease, whatever its own TTL. So the login token a lease was obtained with is
//! kept ([`VaultConnection::keep_for_leases`]: kuvert does not revoke it at shutdown, when it
//! drops or replaces it; it expires by its TTL), and a lease's reported duration is cut to the
//! token's remaining life (where the connection knows it), so the caller renews — which renews
//! the token too — or generates anew in time. A lease renewed by a later process, with another
//! token, still ends with the token that obtained it at the latest; its renewal then answers
//! `NotFound` and the caller generates anew. Give the login a token TTL (and max TTL) at least as
//! long as the leases (for AppRole, `token_ttl`/`token_max_ttl`).
//!
//! # Connections: one login, shared
//! The generator's `provider` has the shape of a SecretStore's `vault` and goes through the
//! same code: [`kuvert_provider_vault::ConnectionCache`] logs in once per distinct server,
//! identity and credentials, renews the token lazily and re-logs in only when it must. Give
//! [`VaultDynamicSecretKind::with_cache`] the Vault provider's cache and a store and a
//! generator with the same server and auth share one token: no login per reconcile (ESO's
//! flaw), none per generator. Errors name fields of the generator object (`spec.path`,
//! `spec.provider.auth.appRole.secretRef`); the engine adds which generator it was.

pub mod lease;
mod request;
mod result;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kuvert_core::api::{SecretStoreKind, VaultDynamicSecretSpec};
use kuvert_core::generator::{
    GenerateError, Generated, Generator, GeneratorContext, GeneratorKind, Lease as CoreLease,
};
use kuvert_core::provider::{KubeAccess, Provider as _, ProviderError, StoreContext};
use kuvert_provider_vault::{ConnectionCache, VaultConnection};

use crate::request::Request;

/// Where the connection code names the vault spec of a store; a generator's is `spec.provider`.
const STORE_FIELD: &str = "spec.provider.vault";
const GENERATOR_FIELD: &str = "spec.provider";

/// The `VaultDynamicSecret` kind. Create it once per process, sharing the Vault provider's
/// connection cache.
#[derive(Clone, Debug, Default)]
pub struct VaultDynamicSecretKind {
    cache: Arc<ConnectionCache>,
}

impl VaultDynamicSecretKind {
    /// A kind with a cache of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// A kind using `cache` (the Vault provider's, so stores and generators share logins).
    pub fn with_cache(cache: Arc<ConnectionCache>) -> Self {
        VaultDynamicSecretKind { cache }
    }

    /// The connection cache.
    pub fn cache(&self) -> &Arc<ConnectionCache> {
        &self.cache
    }
}

/// The connection code's field paths (`spec.provider.vault.auth...`) as the generator object
/// has them (`spec.provider.auth...`).
fn generator_fields(error: ProviderError) -> ProviderError {
    let rename = |text: String| match text.strip_prefix(STORE_FIELD) {
        Some(rest) => format!("{GENERATOR_FIELD}{rest}"),
        None => text,
    };
    match error {
        ProviderError::InvalidSpec { field, message } => ProviderError::InvalidSpec {
            field: rename(field),
            message,
        },
        ProviderError::NotFound { key } => ProviderError::NotFound { key: rename(key) },
        other => other,
    }
}

#[async_trait]
impl GeneratorKind for VaultDynamicSecretKind {
    type Spec = VaultDynamicSecretSpec;

    fn validate(
        &self,
        generator: &GeneratorContext<'_>,
        spec: &VaultDynamicSecretSpec,
    ) -> Result<(), GenerateError> {
        request::build(spec)?;
        // The vault settings get the vault provider's own checks, as a SecretStore's would (a
        // namespaced generator may only refer to its own namespace, like a SecretStore).
        kuvert_provider_vault::VaultProvider::with_cache(self.cache.clone())
            .validate(&store_context(generator), &spec.provider)
            .map_err(|e| generator_fields(e).into())
    }

    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        spec: &VaultDynamicSecretSpec,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError> {
        let request = request::build(spec)?;
        let store = store_context(generator);
        let conn = self
            .cache
            .connect(&store, &spec.provider, Some(generator.namespace), kube)
            .await
            .map_err(generator_fields)?;
        Ok(Arc::new(DynamicSecret {
            conn,
            request,
            result_type: spec.result_type.unwrap_or_default(),
            allow_empty: spec.allow_empty_response.unwrap_or(false),
        }))
    }

    async fn shutdown(&self) {
        // The cache is the Vault provider's too; whoever created it shuts it down once.
    }
}

/// A generator is namespaced: its references resolve like a SecretStore's (own namespace only).
fn store_context<'a>(generator: &GeneratorContext<'a>) -> StoreContext<'a> {
    StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: generator.name,
        namespace: Some(generator.namespace),
    }
}

/// One `VaultDynamicSecret` object, connected.
pub struct DynamicSecret {
    conn: Arc<VaultConnection>,
    request: Request,
    result_type: kuvert_core::api::VaultDynamicSecretResultType,
    allow_empty: bool,
}

impl std::fmt::Debug for DynamicSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSecret")
            .field("request", &self.request.what())
            .finish_non_exhaustive()
    }
}

impl DynamicSecret {
    /// The connection (shared through the cache).
    pub fn connection(&self) -> &Arc<VaultConnection> {
        &self.conn
    }

    /// Runs `call` again while it fails transiently, up to `retrySettings.maxRetries` times.
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.request.retries => {
                    attempt += 1;
                    tracing::debug!(
                        call = what,
                        attempt,
                        reason = e.reason(),
                        "vault dynamic secret call failed; retrying"
                    );
                    tokio::time::sleep(self.request.retry_interval).await;
                }
                other => return other,
            }
        }
    }

    async fn call(&self) -> Result<kuvert_provider_vault::VaultResponse, ProviderError> {
        let r = &self.request;
        let query: Vec<(&str, &str)> = r
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.retrying("generate", || {
            self.conn
                .request_query(r.method.clone(), &r.path, &query, r.body.as_ref())
        })
        .await
    }
}

impl DynamicSecret {
    /// The lease as recorded, its duration cut to the login token's remaining life: Vault
    /// revokes a token's leases when the token expires, whatever their own TTL, so the caller
    /// must renew (which renews the token too) or generate anew before then.
    fn within_token(&self, lease: lease::Lease) -> CoreLease {
        let duration = match self.conn.token_remaining() {
            Some(left) => lease.duration.min(left),
            None => lease.duration,
        };
        CoreLease {
            id: lease.recorded_id(),
            duration,
            renewable: lease.renewable,
        }
    }
}

#[async_trait]
impl Generator for DynamicSecret {
    async fn generate(&self) -> Result<Generated, GenerateError> {
        let response = self.call().await?;
        let shaped = result::shape(
            &self.request.what(),
            &response,
            self.result_type,
            self.allow_empty,
        )?;
        if shaped.lease.is_some() {
            // Vault revokes a token's leases with the token: keep it alive for them.
            self.conn.keep_for_leases();
        }
        Ok(Generated {
            values: shaped.values,
            lease: shaped.lease.map(|l| self.within_token(l)),
        })
    }

    async fn renew(&self, lease_id: &str, increment: Duration) -> Result<CoreLease, GenerateError> {
        let renewed = self
            .retrying("renew", || {
                lease::renew(&self.conn, lease_id, Some(increment))
            })
            .await?;
        Ok(self.within_token(renewed))
    }

    async fn revoke(&self, lease_id: &str) -> Result<(), GenerateError> {
        Ok(self
            .retrying("revoke", || lease::revoke(&self.conn, lease_id))
            .await?)
    }
}
