//! The generator interface: values made rather than read (`generators.kuvert.io`).
//!
//! Three traits, one per role:
//!
//! - [`GeneratorKind`] — one per kind (`Password`, `UUID`, `Fake`, `VaultDynamicSecret`), created
//!   once per process by the operator's registry; builds a [`Generator`] from a generator object.
//! - [`Generator`] — one generator object, ready to run: [`Generator::generate`] makes values
//!   (and, for dynamic secrets, a [`Lease`]); [`Generator::renew`] and [`Generator::revoke`]
//!   manage that lease later, possibly in another process, from its id alone.
//! - [`GeneratorResolver`] — what the engine calls for an entry with `sourceRef.generatorRef`.
//!   The operator implements it so that values stay stable: it runs the generator only when the
//!   ExternalSecret is created, refreshed or force-synced, and otherwise returns the values it
//!   kept. `kuvert render` implements it over the generators in its manifests.
//!
//! Randomness is never taken from a global: kinds that need it get a [`RandomSource`] when they
//! are created, so tests control it.
//!
//! Adding a generator: a CRD type in [`crate::api`], a variant of [`Kind`] and of
//! [`GeneratorSpec`] (the compiler then lists what else to wire), a crate implementing
//! [`GeneratorKind`] and [`Generator`] under `generators/`, and one arm in the operator's
//! generator registry (see `generators/README.md`).

mod kind;

pub(crate) use kind::kind_schema;
pub use kind::{GeneratorObject, Kind};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::api::{FakeSpec, GeneratorRef, PasswordSpec, UuidSpec, VaultDynamicSecretSpec};
use crate::provider::{KubeAccess, ProviderError};
use crate::secret::SecretBytes;

/// The `apiVersion` of every generator kind.
pub const GENERATORS_API_VERSION: &str = "generators.kuvert.io/v1alpha1";

/// What one run of a generator made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    /// The keys and values made (a Password makes `password`, a UUID `uuid`).
    pub values: BTreeMap<String, SecretBytes>,
    /// The lease the values are bound to, for dynamic secrets; `None` for values that never
    /// expire.
    pub lease: Option<Lease>,
}

/// A lease on generated credentials (a Vault lease). Its id is not a secret: it can only be
/// renewed or revoked with the generator's own credentials, so it may appear in status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (`database/creds/app/AbCd...`).
    pub id: String,
    /// How long the lease is valid from when it was issued or last renewed.
    pub duration: Duration,
    /// Whether it can be renewed.
    pub renewable: bool,
}

/// One generator object, ready to run.
#[async_trait]
pub trait Generator: Send + Sync {
    /// Makes fresh values. Every call makes new ones (and, for dynamic secrets, a new lease):
    /// callers decide when values are to change.
    async fn generate(&self) -> Result<Generated, GenerateError>;

    /// Extends a lease by `increment` (the store may grant less: a shorter duration than
    /// asked means the lease has reached its maximum TTL). The default: `Unsupported`.
    async fn renew(&self, lease_id: &str, increment: Duration) -> Result<Lease, GenerateError> {
        let _ = (lease_id, increment);
        Err(ProviderError::Unsupported { operation: "renew" }.into())
    }

    /// Revokes a lease, so the credentials stop working. Revoking a lease that is already gone
    /// succeeds. The default does nothing (values without a lease need no revoking).
    async fn revoke(&self, lease_id: &str) -> Result<(), GenerateError> {
        let _ = lease_id;
        Ok(())
    }
}

/// Cryptographically secure random bytes. The operator passes the operating system's source;
/// tests pass a seeded one.
pub trait RandomSource: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);
}

/// A generator object's spec, one variant per [`Kind`] (parsed by [`Kind::parse_spec`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum GeneratorSpec {
    /// `Password`.
    Password(PasswordSpec),
    /// `UUID`.
    Uuid(UuidSpec),
    /// `Fake`.
    Fake(FakeSpec),
    /// `VaultDynamicSecret`.
    VaultDynamicSecret(Box<VaultDynamicSecretSpec>),
}

impl GeneratorSpec {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            GeneratorSpec::Password(_) => Kind::Password,
            GeneratorSpec::Uuid(_) => Kind::Uuid,
            GeneratorSpec::Fake(_) => Kind::Fake,
            GeneratorSpec::VaultDynamicSecret(_) => Kind::VaultDynamicSecret,
        }
    }

    /// The controller class of the generator object (for the kinds that have one).
    pub fn controller(&self) -> Option<&str> {
        match self {
            GeneratorSpec::Fake(spec) => spec.controller.as_deref(),
            GeneratorSpec::VaultDynamicSecret(spec) => spec.controller.as_deref(),
            GeneratorSpec::Password(_) | GeneratorSpec::Uuid(_) => None,
        }
    }
}

/// A generator object to build a [`Generator`] from.
#[derive(Clone, Copy, Debug)]
pub struct GeneratorContext<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Name of the generator object.
    pub name: &'a str,
    /// Its namespace (generators are namespaced; an ExternalSecret uses its own namespace's).
    pub namespace: &'a str,
}

impl GeneratorContext<'_> {
    /// `Kind/namespace/name`, as the generator appears in messages and status.
    pub fn display_name(&self) -> String {
        display_name(self.kind, self.namespace, self.name)
    }
}

/// One kind of generator: builds generators from objects of its kind. Created once per process
/// (state it keeps, such as Vault logins, is shared).
///
/// A kind serves one variant of [`GeneratorSpec`], its [`GeneratorKind::Spec`]: the operator's
/// registry matches the variant and hands it over, so a kind never checks it was given its own.
#[async_trait]
pub trait GeneratorKind: Send + Sync {
    /// The spec type of the kind served (`PasswordSpec`).
    type Spec: Send + Sync;

    /// Checks a generator object's spec without any I/O; errors name the field and the cause
    /// (`spec.digits: 30 digits and 10 symbols do not fit in a length of 24`).
    fn validate(
        &self,
        generator: &GeneratorContext<'_>,
        spec: &Self::Spec,
    ) -> Result<(), GenerateError>;

    /// A generator for the object, logged in where it needs to be. `kube` reads what the
    /// object references (a Vault login's Secret or ServiceAccount token).
    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        spec: &Self::Spec,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError>;

    /// Releases what the kind holds outside the process before it exits. Called once, at
    /// shutdown; the default does nothing.
    async fn shutdown(&self) {}
}

/// A generator kind with the spec it serves: what the registry's `match` on a [`GeneratorSpec`]
/// yields, so callers hold any kind the same way.
#[async_trait]
pub trait BoundGeneratorKind: Send + Sync {
    /// [`GeneratorKind::validate`] of the bound spec.
    fn validate(&self, generator: &GeneratorContext<'_>) -> Result<(), GenerateError>;

    /// [`GeneratorKind::generator`] of the bound spec.
    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError>;
}

/// Binds `spec` to the kind serving it (see [`BoundGeneratorKind`]).
pub fn bind<'a, K: GeneratorKind>(
    kind: &'a K,
    spec: &'a K::Spec,
) -> Box<dyn BoundGeneratorKind + 'a> {
    Box::new(Bound { kind, spec })
}

struct Bound<'a, K: GeneratorKind> {
    kind: &'a K,
    spec: &'a K::Spec,
}

#[async_trait]
impl<K: GeneratorKind> BoundGeneratorKind for Bound<'_, K> {
    fn validate(&self, generator: &GeneratorContext<'_>) -> Result<(), GenerateError> {
        self.kind.validate(generator, self.spec)
    }

    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError> {
        self.kind.generator(generator, self.spec, kube).await
    }
}

/// An error of a generator kind or generator, classified like a provider's (the Vault
/// generator shares the Vault provider's code, and the operator retries by the same rules), but
/// about a generator object: its spec is a generator spec, not a store's.
/// [`GeneratorError::Generator`] adds which object it was.
#[derive(Debug)]
pub struct GenerateError(ProviderError);

impl GenerateError {
    /// A spec error naming the field (`spec.length`).
    pub fn invalid_spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        GenerateError(ProviderError::InvalidSpec {
            field: field.into(),
            message: message.into(),
        })
    }

    /// The classification, as a provider's: what the operator should do.
    pub fn classified(&self) -> &ProviderError {
        &self.0
    }

    /// A stable PascalCase category for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        self.0.reason()
    }

    /// Whether retrying the same call later may succeed without a spec change.
    pub fn is_transient(&self) -> bool {
        self.0.is_transient()
    }
}

impl From<ProviderError> for GenerateError {
    fn from(error: ProviderError) -> Self {
        GenerateError(error)
    }
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        describe(&self.0, f)
    }
}

/// A classified error as a generator's: "invalid spec", never "invalid store spec".
fn describe(error: &ProviderError, out: &mut dyn std::fmt::Write) -> std::fmt::Result {
    match error {
        ProviderError::InvalidSpec { field, message } => {
            write!(out, "invalid spec: {field}: {message}")
        }
        other => write!(out, "{other}"),
    }
}

impl std::error::Error for GenerateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The values one `generatorRef` entry contributes to a sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneratedValues {
    /// The generator, as `Kind/namespace/name` (see [`GeneratorContext::display_name`]).
    pub generator: String,
    /// The keys and values.
    pub values: BTreeMap<String, SecretBytes>,
}

/// What the engine calls for an entry with `sourceRef.generatorRef`. The implementation
/// decides whether the generator runs or values kept from an earlier run are returned.
#[async_trait]
pub trait GeneratorResolver: Send + Sync {
    /// The values for the entry at `field` (`spec.data[0]`, `spec.dataFrom[1]`) of an
    /// ExternalSecret in `namespace`, made by the generator `generator_ref` names.
    async fn generate(
        &self,
        namespace: &str,
        field: &str,
        generator_ref: &GeneratorRef,
    ) -> Result<GeneratedValues, GeneratorError>;
}

/// `Kind/namespace/name`: how a generator object appears in messages, status and kept state.
pub fn display_name(kind: Kind, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// The kind and name of `Kind/namespace/name` (see [`display_name`]).
pub fn parse_display_name(generator: &str) -> Option<(Kind, &str)> {
    let mut parts = generator.splitn(3, '/');
    let (kind, _namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some((Kind::from_name(kind)?, name))
}

/// Checks a `generatorRef`'s `apiVersion` and `kind`; returns the kind.
pub fn checked_kind(generator_ref: &GeneratorRef) -> Result<Kind, GeneratorError> {
    if let Some(api_version) = &generator_ref.api_version
        && api_version != GENERATORS_API_VERSION
    {
        return Err(GeneratorError::UnknownKind {
            api_version: api_version.clone(),
            kind: generator_ref.kind.clone(),
        });
    }
    Kind::from_name(&generator_ref.kind).ok_or_else(|| GeneratorError::UnknownKind {
        api_version: GENERATORS_API_VERSION.to_owned(),
        kind: generator_ref.kind.clone(),
    })
}

/// Why a `generatorRef` produced no values.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The generator object does not exist.
    #[error("{generator} not found")]
    NotFound {
        /// `Kind/namespace/name`.
        generator: String,
    },
    /// `apiVersion`/`kind` name no generator kind kuvert has.
    #[error(
        "unknown generator kind {kind:?} of {api_version} (known: {} of {GENERATORS_API_VERSION})",
        Kind::names()
    )]
    UnknownKind {
        /// The `apiVersion` asked for.
        api_version: String,
        /// The `kind` asked for.
        kind: String,
    },
    /// The generator object is invalid, could not log in, or failed to generate.
    #[error("{generator}: {source}")]
    Generator {
        /// `Kind/namespace/name`.
        generator: String,
        /// The generator's error, with its classification.
        #[source]
        source: GenerateError,
    },
    /// Values kept from an earlier run could not be read or written (the operator's store of
    /// generated values).
    #[error("{generator}: generated values: {}", shown(source))]
    State {
        /// `Kind/namespace/name`.
        generator: String,
        /// What failed.
        #[source]
        source: ProviderError,
    },
}

/// The operator's own error about kept values, worded as a generator's.
fn shown(error: &ProviderError) -> String {
    let mut out = String::new();
    let _ = describe(error, &mut out);
    out
}

impl GeneratorError {
    /// A stable PascalCase category for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            GeneratorError::NotFound { .. } => "GeneratorNotFound",
            GeneratorError::UnknownKind { .. } => "InvalidSpec",
            GeneratorError::Generator { source, .. } => source.reason(),
            GeneratorError::State { source, .. } => source.reason(),
        }
    }

    /// Whether retrying later may succeed without a spec change.
    pub fn is_transient(&self) -> bool {
        match self {
            // The generator may be created after the ExternalSecret (GitOps ordering).
            GeneratorError::NotFound { .. } => true,
            GeneratorError::UnknownKind { .. } => false,
            GeneratorError::Generator { source, .. } => source.is_transient(),
            GeneratorError::State { source, .. } => source.is_transient(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator_ref(api_version: Option<&str>, kind: &str) -> GeneratorRef {
        GeneratorRef {
            api_version: api_version.map(str::to_owned),
            kind: kind.to_owned(),
            name: "pw".to_owned(),
        }
    }

    #[test]
    fn a_generator_ref_names_a_known_kind_of_the_generators_group() {
        assert_eq!(
            checked_kind(&generator_ref(None, "UUID")).unwrap(),
            Kind::Uuid
        );
        assert_eq!(
            checked_kind(&generator_ref(Some(GENERATORS_API_VERSION), "Password")).unwrap(),
            Kind::Password
        );
        assert_eq!(
            checked_kind(&generator_ref(None, "ACRAccessToken"))
                .unwrap_err()
                .to_string(),
            "unknown generator kind \"ACRAccessToken\" of generators.kuvert.io/v1alpha1 (known: Password, UUID, Fake, VaultDynamicSecret of generators.kuvert.io/v1alpha1)"
        );
        assert_eq!(
            checked_kind(&generator_ref(
                Some("generators.external-secrets.io/v1alpha1"),
                "Password"
            ))
            .unwrap_err()
            .to_string(),
            "unknown generator kind \"Password\" of generators.external-secrets.io/v1alpha1 (known: Password, UUID, Fake, VaultDynamicSecret of generators.kuvert.io/v1alpha1)"
        );
    }

    #[test]
    fn a_generator_error_names_the_generator_and_calls_its_spec_a_generator_spec() {
        let e = GeneratorError::Generator {
            generator: "Password/ns/pw".to_owned(),
            source: GenerateError::invalid_spec("spec.length", "0 is outside 1 to 4096"),
        };
        assert_eq!(
            e.to_string(),
            "Password/ns/pw: invalid spec: spec.length: 0 is outside 1 to 4096"
        );
        assert_eq!((e.reason(), e.is_transient()), ("InvalidSpec", false));
        let e = GeneratorError::Generator {
            generator: "VaultDynamicSecret/ns/db".to_owned(),
            source: ProviderError::Unavailable {
                message: "connection refused".to_owned(),
                source: None,
            }
            .into(),
        };
        assert_eq!(
            e.to_string(),
            "VaultDynamicSecret/ns/db: store unavailable: connection refused"
        );
        assert_eq!((e.reason(), e.is_transient()), ("Unavailable", true));
    }

    #[test]
    fn a_generator_spec_is_parsed_by_kind_and_errors_name_the_field() {
        let spec = Kind::Password
            .parse_spec(serde_json::json!({"length": 12}))
            .unwrap();
        assert_eq!(spec.kind(), Kind::Password);
        assert_eq!(
            spec,
            GeneratorSpec::Password(PasswordSpec {
                length: Some(12),
                ..PasswordSpec::default()
            })
        );
        let e = Kind::Password
            .parse_spec(serde_json::json!({"length": "long"}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid spec: spec.length: invalid type: string \"long\", expected u32"
        );
    }

    #[test]
    fn the_default_lease_operations_refuse_renewal_and_revoke_nothing() {
        struct Constant;
        #[async_trait]
        impl Generator for Constant {
            async fn generate(&self) -> Result<Generated, GenerateError> {
                Ok(Generated::default())
            }
        }
        let e = futures::executor::block_on(Constant.renew("lease", Duration::from_secs(60)))
            .unwrap_err();
        assert_eq!(e.reason(), "Unsupported");
        futures::executor::block_on(Constant.revoke("lease")).unwrap();
    }
}
