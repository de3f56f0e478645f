//! The `vault` provider: the KV secrets engine (v1 and v2) of HashiCorp Vault and OpenBao, with
//! every auth method of ESO's Vault provider.
//!
//! # Reads
//! Per the [`SecretsClient`] contract the provider moves raw values; the engine applies
//! `property`, `extract`, decoding and rewrites.
//! - A KV v2 read returns the secret's `data` map as a JSON object and its version (the current
//!   one, or `remoteRef.version`). With `metadataPolicy: Fetch` it returns, as ESO does, a JSON
//!   object of strings: `created_time`, `current_version`, `delete_version_after` and every
//!   `custom_metadata` entry (a custom entry of the same name wins).
//! - A KV v1 read returns the `data` map; KV v1 has neither versions nor metadata (asking for
//!   either is an `InvalidSpec` error naming the field).
//! - Vault's KV engines only store JSON objects, so every secret is a map. A secret written as a
//!   plain value (`bao kv put secret/x value=text`) is the map `{"value": "text"}`, returned as
//!   such — as ESO does; `property: value` then yields `text` byte for byte. (Should a key point
//!   at an endpoint whose `data` is a bare string, that string is returned as is.)
//! - **Key rule** (ESO's): the store's `path` is the mount. A key starting with `<mount>/` is a
//!   full path and the mount is not prepended again (`secret/app` and `app` read the same secret
//!   of a store with `path: secret`); a `data/` right after the mount of a KV v2 store is
//!   dropped (`secret/data/app` works too). Without a store `path`, a key's first segment is the
//!   mount. Keys with `.` or `..` segments are refused: resolved by the URL they could reach
//!   other endpoints with the store's token.
//! - `dataFrom.find` lists recursively under `find.path` (KV v2 `metadata` LIST, or KV v1 LIST),
//!   keeps the names matching `name.regexp` (unanchored) and — KV v2 only — whose
//!   `custom_metadata` holds every `tags` entry, and returns each secret's map keyed by its name
//!   as ESO gives it: `find.path` as written, then the path below it (e.g. `app/db`); the engine
//!   converts the characters. With both `name` and `tags`, both filters apply.
//!
//! # Writes (PushSecret)
//! KV v2: the secret's `custom_metadata` carries `managed-by: kuvert` and `kuvert-owner: <namespace/name>` of the
//! pushing object. A push or delete of a secret that exists without that marker, or with another
//! owner, is refused with `Conflict`. Writes use check-and-set (`cas` = the version read, `0` to
//! create) unless `checkAndSet.required: false`, so a concurrent change is never overwritten.
//! Delete removes the pushed property (and the secret once no property is left) or the whole
//! secret with all its versions. Ownership is marked before the first version is written, so
//! a failure between the two writes leaves a secret kuvert still recognises as its own.
//!
//! KV v1 has no metadata: the owner is a key of the secret itself, `kuvert.io/pushed-by`
//! ([`KV1_OWNER_KEY`]), visible to readers; the same `Conflict` rules apply, but KV v1 has no
//! check-and-set, so a write racing kuvert's between its read and its write can be lost (see
//! `kv1.rs`).
//!
//! # Connections, tokens, caching
//! See [`connection`] (login, lazy renewal, re-login on 403, revocation) and [`ConnectionCache`]
//! (one login per distinct server + auth configuration + credentials, shared by every store and
//! ExternalSecret). [`VaultProvider`] holds the cache; the operator creates the provider once per
//! process, and the `VaultDynamicSecret` generator shares the same cache through
//! [`VaultProvider::cache`] (or makes its own) and calls
//! [`VaultConnection::request`] for any engine, leases included.
//!
//! # Why not vaultrs
//! The HTTP layer is `reqwest` with a rustls configuration of our own, not `vaultrs`, because
//! vaultrs (0.8) cannot do what the spec asks: it reads CA bundles only from files (`caBundle`
//! and `caProvider` are in-memory PEM), has no extra request headers (`headers`,
//! `X-Vault-Inconsistent`, `X-Vault-Index`), gives no generic request that returns the whole
//! answer with its lease (the generator needs one), and pulls reqwest's default rustls
//! provider (aws-lc-rs, a C build) where kuvert uses ring throughout. Its errors also carry
//! response bodies verbatim, which for KV reads are secret values. The Vault endpoints used here
//! are few (KV data/metadata, seven logins, token lookup/renew/revoke, capabilities) and
//! each is exercised against a real OpenBao server in `tests/`.

//!
//! # Testing
//! Every test runs against a real OpenBao (`kuvert-testkit` starts `bao server -dev`). Two auth
//! methods cannot be exercised directly here: OpenBao 2.7 ships no LDAP method (and no directory
//! can run), and the Kubernetes method needs an API server answering TokenReview. Their login
//! requests are checked by a method with the same request shape mounted at their path
//! (userpass for LDAP, JWT for Kubernetes); the Kubernetes method end to end, against
//! devcluster, is `operator/tests/e2e_vault.rs`.

pub mod cache;
mod config;
pub mod connection;
mod errors;
mod kv;
mod kv1;

use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::api::VaultProvider as VaultSpec;
use kuvert_core::provider::{KubeAccess, Provider, ProviderError, SecretsClient, StoreContext};

pub use cache::ConnectionCache;
pub use connection::{VaultConnection, VaultResponse};
pub use kv::VaultClient;
pub use kv1::KV1_OWNER_KEY;

/// Custom-metadata key marking a secret written by kuvert.
pub const MANAGED_BY_KEY: &str = "managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "kuvert";
/// Custom-metadata key naming the pushing object (`namespace/name`).
pub const OWNER_KEY: &str = "kuvert-owner";

/// The provider. Holds the connection cache: create it once per process.
#[derive(Clone, Debug, Default)]
pub struct VaultProvider {
    cache: Arc<ConnectionCache>,
}

impl VaultProvider {
    /// A provider with a fresh cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider using `cache` (e.g. one shared with the VaultDynamicSecret generator).
    pub fn with_cache(cache: Arc<ConnectionCache>) -> Self {
        VaultProvider { cache }
    }

    /// The connection cache.
    pub fn cache(&self) -> &Arc<ConnectionCache> {
        &self.cache
    }
}

#[async_trait]
impl Provider for VaultProvider {
    type Spec = VaultSpec;

    fn validate(&self, store: &StoreContext<'_>, spec: &VaultSpec) -> Result<(), ProviderError> {
        config::validate(store, spec)
    }

    async fn client(
        &self,
        store: &StoreContext<'_>,
        spec: &VaultSpec,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let conn = self.cache.connect(store, spec, namespace, kube).await?;
        let cas_required = spec
            .check_and_set
            .as_ref()
            .and_then(|c| c.required)
            .unwrap_or(true);
        Ok(Arc::new(VaultClient::new(
            conn,
            spec.path.clone(),
            spec.version.unwrap_or_default(),
            cas_required,
        )))
    }

    async fn shutdown(&self) {
        self.cache.shutdown().await;
    }
}
