//! The provider interface: how kuvert reads from (and writes to) an external store.
//!
//! A provider does as little as it can: it validates its store spec, logs in, and moves raw
//! values. Everything users shape — `property` paths, `extract`, decoding, key conversion,
//! rewrites, templates — happens once, in the engine, for every provider alike.
//!
//! Adding a provider: a spec struct in [`crate::api::ProviderSpec`], a crate implementing
//! [`Provider`] and [`SecretsClient`] that passes the [`conformance`] suite, and one arm in the
//! operator's registry, whose exhaustive `match` on the spec does not compile until it is there
//! (see `providers/README.md`).

#[cfg(feature = "test-support")]
pub mod conformance;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::api::{SecretStoreKind, StoreCapabilities};
use crate::secret::SecretBytes;

/// The store a provider is asked to serve, with what it needs to resolve references. Its spec
/// is passed beside it, typed: the registry has matched it to the provider's own variant.
#[derive(Clone, Copy, Debug)]
pub struct StoreContext<'a> {
    /// Kind of the store.
    pub kind: SecretStoreKind,
    /// Name of the store.
    pub name: &'a str,
    /// Namespace of a SecretStore; `None` for a ClusterSecretStore.
    pub namespace: Option<&'a str>,
}

impl StoreContext<'_> {
    /// The namespace a reference to a Secret, ConfigMap or ServiceAccount resolves to.
    ///
    /// A SecretStore only ever reads its own namespace (a reference naming another one is an
    /// error). A ClusterSecretStore reads the namespace the reference names, or `default_ns` (the
    /// namespace of the object using the store) when it names none.
    pub fn resolve_namespace<'n>(
        &'n self,
        field: &str,
        named: Option<&'n str>,
        default_ns: Option<&'n str>,
    ) -> Result<&'n str, ProviderError> {
        match (self.kind, self.namespace, named) {
            (SecretStoreKind::SecretStore, Some(own), Some(named)) if named != own => {
                Err(ProviderError::InvalidSpec {
                    field: field.to_owned(),
                    message: format!(
                        "a SecretStore may only refer to its own namespace {own:?}, not {named:?}"
                    ),
                })
            }
            (SecretStoreKind::SecretStore, Some(own), _) => Ok(own),
            (_, _, Some(named)) => Ok(named),
            (_, _, None) => default_ns.ok_or_else(|| ProviderError::InvalidSpec {
                field: field.to_owned(),
                message: "a ClusterSecretStore must name the namespace".to_owned(),
            }),
        }
    }

    /// `Kind/name` of the store, as it appears in messages and status.
    pub fn display_name(&self) -> String {
        crate::store_key::StoreKey::new(self.kind, self.namespace.unwrap_or_default(), self.name)
            .display()
    }
}

/// What providers may read from Kubernetes: implemented by the operator with kube-rs, and by
/// `kuvert render` and tests from objects held in memory.
#[async_trait]
pub trait KubeAccess: Send + Sync {
    /// All keys of a Secret.
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, SecretBytes>, KubeReadError>;

    /// All keys of a ConfigMap.
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, KubeReadError>;

    /// A token for a ServiceAccount (TokenRequest API).
    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration: Duration,
    ) -> Result<SecretBytes, KubeReadError>;
}

/// Why [`KubeAccess`] could not read an object (or issue a token). Its own type: the object is
/// the cluster's, whichever store, generator or template asked for it. A provider's `?` turns
/// it into the [`ProviderError`] of the same class.
#[derive(Debug, thiserror::Error)]
pub enum KubeReadError {
    /// The object does not exist.
    #[error("{object} not found")]
    NotFound {
        /// `Secret namespace/name`, `ConfigMap namespace/name`, ...
        object: String,
    },
    /// kuvert may not read it.
    #[error("permission denied: {object}: {message}")]
    Forbidden {
        /// The object.
        object: String,
        /// The API server's reason.
        message: String,
    },
    /// The API server could not be reached, failed, or answered without what was asked.
    #[error("{object}: {message}")]
    Unavailable {
        /// The object.
        object: String,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl KubeReadError {
    /// Whether reading again later may succeed without a spec change: a missing object may be
    /// created (GitOps ordering), an unreachable API server may come back.
    pub fn is_transient(&self) -> bool {
        !matches!(self, KubeReadError::Forbidden { .. })
    }
}

impl From<KubeReadError> for ProviderError {
    fn from(error: KubeReadError) -> Self {
        match error {
            KubeReadError::NotFound { object } => ProviderError::NotFound { key: object },
            KubeReadError::Forbidden { object, message } => ProviderError::Forbidden {
                message: format!("{object}: {message}"),
            },
            KubeReadError::Unavailable {
                object,
                message,
                source,
            } => ProviderError::Unavailable {
                message: format!("{object}: {message}"),
                source,
            },
        }
    }
}

/// Reads one key of a Secret; a missing key is `NotFound` naming the field.
pub async fn secret_key(
    kube: &dyn KubeAccess,
    field: &str,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretBytes, ProviderError> {
    let mut data = kube.secret(namespace, name).await?;
    data.remove(key).ok_or_else(|| ProviderError::NotFound {
        key: format!("{field}: key {key:?} of Secret {namespace}/{name}"),
    })
}

/// A store implementation: validates store specs and builds clients.
///
/// A provider serves one variant of [`crate::api::ProviderSpec`], its [`Provider::Spec`]: the
/// operator's registry matches the variant and hands it over, so a provider never checks that
/// it was given the right kind of store.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The spec struct of the `ProviderSpec` variant served (`VaultProvider` for `vault`).
    type Spec: Send + Sync;

    /// Checks a store spec without any I/O: required fields, exclusive fields, references that
    /// a SecretStore may not make.
    fn validate(&self, store: &StoreContext<'_>, spec: &Self::Spec) -> Result<(), ProviderError>;

    /// Logs in and returns a client for the store. `namespace` is the namespace of the object
    /// using the store (references of a ClusterSecretStore without a namespace resolve there).
    /// Clients are cached and shared by the caller; building one may be expensive.
    async fn client(
        &self,
        store: &StoreContext<'_>,
        spec: &Self::Spec,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError>;

    /// Releases what the provider holds outside the process before it exits (Vault revokes the
    /// tokens it logged in for). Called once, at shutdown; the default does nothing.
    async fn shutdown(&self) {}
}

/// A provider with the spec it serves: what the registry's `match` on a `ProviderSpec` yields,
/// so callers hold any provider the same way.
#[async_trait]
pub trait BoundProvider: Send + Sync {
    /// [`Provider::validate`] of the bound spec.
    fn validate(&self, store: &StoreContext<'_>) -> Result<(), ProviderError>;

    /// [`Provider::client`] of the bound spec.
    async fn client(
        &self,
        store: &StoreContext<'_>,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError>;
}

/// Binds `spec` to the provider serving it (see [`BoundProvider`]).
pub fn bind<'a, P: Provider>(provider: &'a P, spec: &'a P::Spec) -> Box<dyn BoundProvider + 'a> {
    Box::new(Bound { provider, spec })
}

struct Bound<'a, P: Provider> {
    provider: &'a P,
    spec: &'a P::Spec,
}

#[async_trait]
impl<P: Provider> BoundProvider for Bound<'_, P> {
    fn validate(&self, store: &StoreContext<'_>) -> Result<(), ProviderError> {
        self.provider.validate(store, self.spec)
    }

    async fn client(
        &self,
        store: &StoreContext<'_>,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.provider
            .client(store, self.spec, namespace, kube)
            .await
    }
}

/// Which remote secret to read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GetRequest {
    /// The remote key (path or name).
    pub key: String,
    /// A version; `None` for the current one.
    pub version: Option<String>,
    /// Read the secret's metadata instead of its value.
    pub metadata: bool,
}

/// A value read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteSecret {
    /// The raw value. A store of key/value maps (Vault, Kubernetes) returns the map as a JSON
    /// object; the engine applies `property`, `extract` and decoding.
    pub value: SecretBytes,
    /// The version the store reports, if it versions secrets.
    pub version: Option<String>,
}

/// Which remote secrets to find (`dataFrom.find`).
#[derive(Clone, Debug, Default)]
pub struct FindRequest {
    /// Only under this path.
    pub path: Option<String>,
    /// Only names matching this regular expression (unanchored, like ESO's). Compiled once, by
    /// the engine, which reports an invalid one naming the ExternalSecret's field.
    pub name_regexp: Option<regex::Regex>,
    /// Only secrets carrying all these tags.
    pub tags: BTreeMap<String, String>,
}

/// A value to write (PushSecret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRequest {
    /// The remote key.
    pub key: String,
    /// A field of the remote JSON object; `None` writes the whole secret.
    pub property: Option<String>,
    /// The value.
    pub value: SecretBytes,
    /// Identity of the pushing object (`namespace/name`), recorded as the owner.
    pub owner: String,
    /// Provider-specific metadata from the PushSecret.
    pub metadata: Option<serde_json::Value>,
}

/// A client for one store, logged in. Methods a store cannot do keep their default
/// `Unsupported` answer.
#[async_trait]
pub trait SecretsClient: Send + Sync {
    /// Reads one secret: its whole value (or its metadata).
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError>;

    /// Finds secrets; returns each one's name (as the key the engine converts) and value.
    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError>;

    /// Checks the connection and credentials; returns what they allow.
    async fn validate(&self) -> Result<StoreCapabilities, ProviderError>;

    /// Writes a value. Never overwrites a remote secret kuvert does not own.
    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let _ = request;
        Err(ProviderError::Unsupported { operation: "push" })
    }

    /// Deletes what kuvert pushed to `key` (the whole secret, or one `property`). Never deletes
    /// a remote secret kuvert does not own.
    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let _ = (key, property, owner);
        Err(ProviderError::Unsupported {
            operation: "delete",
        })
    }

    /// Whether a remote secret exists.
    async fn exists(&self, key: &str) -> Result<bool, ProviderError> {
        match self
            .get(&GetRequest {
                key: key.to_owned(),
                ..GetRequest::default()
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(ProviderError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An error from a provider, classified so the operator can decide to retry or wait. Messages
/// name keys and paths, never values or tokens.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The remote secret (or a referenced Kubernetes object) does not exist.
    #[error("{key} not found")]
    NotFound {
        /// What was missing.
        key: String,
    },
    /// The credentials may not do this.
    #[error("permission denied: {message}")]
    Forbidden {
        /// What was refused.
        message: String,
    },
    /// The store could not be reached or failed; retrying may help.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The store spec is wrong; only a change of it helps.
    #[error("invalid store spec: {field}: {message}")]
    InvalidSpec {
        /// The field at fault, as a path (`spec.provider.vault.auth.appRole.secretRef`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Login failed (bad credentials, expired token).
    #[error("authentication failed: {message}")]
    Unauthenticated {
        /// What failed.
        message: String,
    },
    /// A write lost a race (check-and-set) or would overwrite a secret kuvert does not own.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// The provider cannot do this at all.
    #[error("the provider does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
    },
}

impl ProviderError {
    /// A stable PascalCase category for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::NotFound { .. } => "NotFound",
            ProviderError::Forbidden { .. } => "Forbidden",
            ProviderError::Unavailable { .. } => "Unavailable",
            ProviderError::InvalidSpec { .. } => "InvalidSpec",
            ProviderError::Unauthenticated { .. } => "Unauthenticated",
            ProviderError::Conflict { .. } => "Conflict",
            ProviderError::Unsupported { .. } => "Unsupported",
        }
    }

    /// Whether retrying the same call later may succeed without a spec change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable { .. } | ProviderError::Conflict { .. }
        )
    }
}
