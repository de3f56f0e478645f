//! Why a sync failed: typed, classified, and free of secret values.

use crate::provider::{KubeReadError, ProviderError};

/// Why a store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store does not exist.
    #[error("{store} not found")]
    NotFound {
        /// The store, as `Kind/[namespace/]name`.
        store: String,
    },
    /// A ClusterSecretStore whose `conditions` refuse the namespace.
    #[error("{store} does not admit namespace {namespace:?}")]
    NotAllowed {
        /// The store.
        store: String,
        /// The refused namespace.
        namespace: String,
    },
    /// A ClusterSecretStore named where this instance watches none (`kuvert run --namespace`:
    /// a namespace-scoped install may not read cluster-scoped objects).
    #[error(
        "{store}: this kuvert instance serves one namespace and watches no ClusterSecretStores \
         (kuvert run --namespace; --cluster-stores turns them on)"
    )]
    ClusterStoresOff {
        /// The store.
        store: String,
    },
    /// The store's provider refused its spec or could not log in.
    #[error("{store}: {source}")]
    Provider {
        /// The store.
        store: String,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
}

/// Why syncing an ExternalSecret failed. Every variant names the field at fault (a path such as
/// `spec.data[2].remoteRef.property`) and the cause; none carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store of an entry could not be used.
    #[error("{field}: {source}")]
    Store {
        /// The field naming the store.
        field: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The store failed to return a remote secret.
    #[error("{field}: reading {key:?} from {store}: {source}")]
    Fetch {
        /// The entry.
        field: String,
        /// The store, as `Kind/[namespace/]name`.
        store: String,
        /// The remote key.
        key: String,
        /// The provider's error, with its classification.
        #[source]
        source: ProviderError,
    },
    /// The generator of a `sourceRef.generatorRef` entry made no values.
    #[error("{field}: {source}")]
    Generator {
        /// The `generatorRef` field.
        field: String,
        /// Why, with its classification.
        #[source]
        source: crate::generator::GeneratorError,
    },
    /// A ConfigMap or Secret used by `templateFrom` could not be read.
    #[error("{field}: reading {object}: {source}")]
    Kube {
        /// The entry.
        field: String,
        /// `ConfigMap namespace/name` or `Secret namespace/name`.
        object: String,
        /// The error.
        #[source]
        source: KubeReadError,
    },
    /// `property` names nothing in the remote value.
    #[error("{field}: remote secret {key:?} has no property {property:?}")]
    PropertyNotFound {
        /// The `property` field.
        field: String,
        /// The remote key.
        key: String,
        /// The property path.
        property: String,
    },
    /// `property` is not a valid path.
    #[error("{field}: invalid property path {property:?}: {problem}")]
    InvalidProperty {
        /// The `property` field.
        field: String,
        /// The path as written.
        property: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A value that must be JSON (for `property`, `extract` or `merge`) is not.
    #[error("{field}: the value of {key:?} is not {expected}")]
    NotJson {
        /// The entry.
        field: String,
        /// The remote key (or key being merged).
        key: String,
        /// What was expected, e.g. `a JSON object`.
        expected: &'static str,
    },
    /// A value is not valid for its `decodingStrategy`.
    #[error("{field}: the value of {key:?} is not valid {strategy}")]
    Decode {
        /// The `decodingStrategy` field.
        field: String,
        /// The key whose value failed.
        key: String,
        /// The strategy, e.g. `Base64`.
        strategy: &'static str,
    },
    /// A value holds NUL bytes and `nullBytePolicy` is `Fail`.
    #[error(
        "{field}: the value of {key:?} contains NUL bytes (nullBytePolicy Fail; use a text-safe form such as PEM or base64, or leave nullBytePolicy unset for binary data)"
    )]
    NullBytes {
        /// The `nullBytePolicy` field.
        field: String,
        /// The key whose value holds them.
        key: String,
    },
    /// A regular expression does not compile.
    #[error("{field}: invalid regular expression: {message}")]
    InvalidRegexp {
        /// The field holding it.
        field: String,
        /// The compiler's message (it quotes the expression, which is spec, not secret).
        message: String,
    },
    /// A template failed.
    #[error("{field}: {source}")]
    Template {
        /// The template's field, e.g. `spec.target.template.data["config.yaml"]`.
        field: String,
        /// Why (template errors never quote values).
        #[source]
        source: crate::template::TemplateError,
    },
    /// A key the Secret would get is not a valid Secret key.
    #[error("{field}: {key:?} is not a valid Secret key: {problem}")]
    InvalidKey {
        /// The field that produced it.
        field: String,
        /// The key.
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Two remote keys become the same Secret key.
    #[error("{field}: {first:?} and {second:?} both become the key {key:?}")]
    KeyCollision {
        /// The entry.
        field: String,
        /// The resulting key.
        key: String,
        /// One source key.
        first: String,
        /// The other.
        second: String,
    },
    /// A `rewrite[].merge` found fields defined by more than one value.
    #[error("{field}: fields {fields:?} are defined by more than one value (conflictPolicy Error)")]
    MergeConflict {
        /// The merge field.
        field: String,
        /// The conflicting fields.
        fields: Vec<String>,
    },
    /// A value or the Secret is too large.
    #[error("{field}: {what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The field that produced it.
        field: String,
        /// What is too large.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The spec is inconsistent in a way the CRD schema cannot catch.
    #[error("{field}: {message}")]
    InvalidSpec {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A feature kuvert does not have yet.
    #[error("{field}: {what} is not supported yet")]
    Unsupported {
        /// The field using it.
        field: String,
        /// The feature.
        what: &'static str,
    },
    /// The target Secret exists and belongs to someone else: kuvert never overwrites it.
    #[error(
        "spec.target.name: Secret {secret} already exists and is not owned by this ExternalSecret ({owner}); kuvert never overwrites a Secret it does not own"
    )]
    NotOwned {
        /// `namespace/name` of the Secret.
        secret: String,
        /// Who owns it, as far as can be told.
        owner: String,
    },
    /// `creationPolicy: Merge` and the Secret does not exist (yet).
    #[error(
        "spec.target.creationPolicy: Merge needs the Secret {secret} to exist, and it does not"
    )]
    SecretMissing {
        /// `namespace/name` of the Secret.
        secret: String,
    },
}

impl SyncError {
    /// An [`SyncError::InvalidRegexp`] on one line: the regex crate's own message spans
    /// several (the expression, a caret, the cause).
    pub fn invalid_regexp(field: String, expression: &str, error: &regex::Error) -> Self {
        let cause = error.to_string();
        let cause = cause
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("error: ");
        SyncError::InvalidRegexp {
            field,
            message: format!("{expression:?}: {cause}"),
        }
    }

    /// A stable PascalCase category: the condition reason, Event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            SyncError::Store { source, .. } => match source {
                StoreError::NotFound { .. } => "StoreNotFound",
                StoreError::NotAllowed { .. } => "StoreNotAllowed",
                StoreError::ClusterStoresOff { .. } => "ClusterStoresOff",
                StoreError::Provider { .. } => "StoreNotReady",
            },
            SyncError::Fetch { source, .. } => match source {
                ProviderError::NotFound { .. } => "RemoteSecretNotFound",
                other => other.reason(),
            },
            SyncError::Generator { source, .. } => source.reason(),
            SyncError::Kube { .. } => "TemplateSourceError",
            SyncError::PropertyNotFound { .. } => "PropertyNotFound",
            SyncError::InvalidProperty { .. } => "InvalidProperty",
            SyncError::NotJson { .. } => "NotJson",
            SyncError::Decode { .. } => "DecodingError",
            SyncError::NullBytes { .. } => "NullBytes",
            SyncError::InvalidRegexp { .. } => "InvalidRegexp",
            SyncError::Template { source, .. } => source.reason(),
            SyncError::InvalidKey { .. } => "InvalidSecretKey",
            SyncError::KeyCollision { .. } => "KeyCollision",
            SyncError::MergeConflict { .. } => "MergeConflict",
            SyncError::TooLarge { .. } => "TooLarge",
            SyncError::InvalidSpec { .. } => "InvalidSpec",
            SyncError::Unsupported { .. } => "Unsupported",
            SyncError::NotOwned { .. } => "NotOwned",
            SyncError::SecretMissing { .. } => "SecretMissing",
        }
    }

    /// Whether syncing again later may succeed without a change to the spec: store outages,
    /// and objects that may yet appear. Everything else waits for a change.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Store { source, .. } => match source {
                StoreError::Provider { source, .. } => source.is_transient(),
                StoreError::NotFound { .. }
                | StoreError::NotAllowed { .. }
                | StoreError::ClusterStoresOff { .. } => false,
            },
            // A remote secret that is missing now may be written soon: keep retrying.
            SyncError::Fetch { source, .. } => {
                source.is_transient() || matches!(source, ProviderError::NotFound { .. })
            }
            SyncError::Kube { source, .. } => source.is_transient(),
            SyncError::Generator { source, .. } => source.is_transient(),
            SyncError::SecretMissing { .. } => true,
            _ => false,
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &str {
        match self {
            SyncError::Store { field, .. }
            | SyncError::Fetch { field, .. }
            | SyncError::Kube { field, .. }
            | SyncError::Generator { field, .. }
            | SyncError::PropertyNotFound { field, .. }
            | SyncError::InvalidProperty { field, .. }
            | SyncError::NotJson { field, .. }
            | SyncError::Decode { field, .. }
            | SyncError::NullBytes { field, .. }
            | SyncError::InvalidRegexp { field, .. }
            | SyncError::Template { field, .. }
            | SyncError::InvalidKey { field, .. }
            | SyncError::KeyCollision { field, .. }
            | SyncError::MergeConflict { field, .. }
            | SyncError::TooLarge { field, .. }
            | SyncError::InvalidSpec { field, .. }
            | SyncError::Unsupported { field, .. } => field,
            SyncError::NotOwned { .. } => "spec.target.name",
            SyncError::SecretMissing { .. } => "spec.target.creationPolicy",
        }
    }
}
