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
//! Adding a generator: a spec type in [`crate::api`] and a variant of [`GeneratorSpec`], a crate
//! implementing [`GeneratorKind`] and [`Generator`] under `generators/`, and one line in the
//! operator's generator registry (see `generators/README.md`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::api::{
    FakeSpec, GENERATORS_GROUP, GeneratorRef, PasswordSpec, UuidSpec, VaultDynamicSecretSpec,
};
use crate::provider::{KubeAccess, ProviderError};
use crate::secret::SecretBytes;

/// The `apiVersion` of every generator kind.
pub const GENERATORS_API_VERSION: &str = "generators.kuvert.io/v1alpha1";

/// The kinds of generator, as written in `generatorRef.kind`.
pub const GENERATOR_KINDS: [&str; 4] = ["Password", "UUID", "Fake", "VaultDynamicSecret"];

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
    async fn generate(&self) -> Result<Generated, ProviderError>;

    /// Extends a lease by `increment` (the store may grant less: a shorter duration than
    /// asked means the lease has reached its maximum TTL). The default: `Unsupported`.
    async fn renew(&self, lease_id: &str, increment: Duration) -> Result<Lease, ProviderError> {
        let _ = (lease_id, increment);
        Err(ProviderError::Unsupported { operation: "renew" })
    }

    /// Revokes a lease, so the credentials stop working. Revoking a lease that is already gone
    /// succeeds. The default does nothing (values without a lease need no revoking).
    async fn revoke(&self, lease_id: &str) -> Result<(), ProviderError> {
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

/// A generator object's spec, one variant per kind (parsed from the object's `spec`).
#[derive(Clone, Debug, PartialEq)]
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
    /// The kind, as in `generatorRef.kind`; also the metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            GeneratorSpec::Password(_) => "Password",
            GeneratorSpec::Uuid(_) => "UUID",
            GeneratorSpec::Fake(_) => "Fake",
            GeneratorSpec::VaultDynamicSecret(_) => "VaultDynamicSecret",
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

    /// Parses the `spec` of a generator object of kind `kind`. Errors name the field path.
    pub fn from_json(kind: &str, spec: serde_json::Value) -> Result<Self, ProviderError> {
        fn parse<T: serde::de::DeserializeOwned>(
            spec: serde_json::Value,
        ) -> Result<T, ProviderError> {
            serde_path_to_error::deserialize(spec).map_err(|e| {
                let path = e.path().to_string();
                ProviderError::InvalidSpec {
                    field: if path == "." {
                        "spec".to_owned()
                    } else {
                        format!("spec.{path}")
                    },
                    message: e.into_inner().to_string(),
                }
            })
        }
        Ok(match kind {
            "Password" => GeneratorSpec::Password(parse(spec)?),
            "UUID" => GeneratorSpec::Uuid(parse(spec)?),
            "Fake" => GeneratorSpec::Fake(parse(spec)?),
            "VaultDynamicSecret" => GeneratorSpec::VaultDynamicSecret(Box::new(parse(spec)?)),
            other => {
                return Err(ProviderError::InvalidSpec {
                    field: "kind".to_owned(),
                    message: format!(
                        "unknown generator kind {other:?} (known: {})",
                        GENERATOR_KINDS.join(", ")
                    ),
                });
            }
        })
    }
}

/// A generator object to build a [`Generator`] from.
#[derive(Clone, Copy, Debug)]
pub struct GeneratorContext<'a> {
    /// Name of the generator object.
    pub name: &'a str,
    /// Its namespace (generators are namespaced; an ExternalSecret uses its own namespace's).
    pub namespace: &'a str,
    /// Its spec.
    pub spec: &'a GeneratorSpec,
}

impl GeneratorContext<'_> {
    /// `Kind/namespace/name`, as the generator appears in messages and status.
    pub fn display_name(&self) -> String {
        display_name(self.spec.kind(), self.namespace, self.name)
    }
}

/// One kind of generator: builds generators from objects of its kind. Created once per process
/// (state it keeps, such as Vault logins, is shared).
#[async_trait]
pub trait GeneratorKind: Send + Sync {
    /// The kind served, as in `generatorRef.kind` (`Password`).
    fn kind(&self) -> &'static str;

    /// Checks a generator object's spec without any I/O; errors name the field and the cause
    /// (`spec.digits: 30 digits and 10 symbols do not fit in a length of 24`).
    fn validate(&self, generator: &GeneratorContext<'_>) -> Result<(), ProviderError>;

    /// A generator for the object, logged in where it needs to be. `kube` reads what the
    /// object references (a Vault login's Secret or ServiceAccount token).
    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, ProviderError>;

    /// Releases what the kind holds outside the process before it exits. Called once, at
    /// shutdown; the default does nothing.
    async fn shutdown(&self) {}
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
pub fn display_name(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// Checks a `generatorRef`'s `apiVersion` and `kind`; returns the kind.
pub fn checked_kind(generator_ref: &GeneratorRef) -> Result<&'static str, GeneratorError> {
    if let Some(api_version) = &generator_ref.api_version
        && api_version != GENERATORS_API_VERSION
    {
        return Err(GeneratorError::UnknownKind {
            api_version: api_version.clone(),
            kind: generator_ref.kind.clone(),
        });
    }
    GENERATOR_KINDS
        .iter()
        .find(|k| **k == generator_ref.kind)
        .copied()
        .ok_or_else(|| GeneratorError::UnknownKind {
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
        "unknown generator kind {kind:?} of {api_version} (known: Password, UUID, Fake, VaultDynamicSecret of {GENERATORS_GROUP}/v1alpha1)"
    )]
    UnknownKind {
        /// The `apiVersion` asked for.
        api_version: String,
        /// The `kind` asked for.
        kind: String,
    },
    /// The generator object is invalid, could not log in, or failed to generate.
    #[error("{generator}: {}", shown(source))]
    Generator {
        /// `Kind/namespace/name`.
        generator: String,
        /// The generator's error, with its classification.
        #[source]
        source: ProviderError,
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

/// A provider error as a generator's: its spec is a generator spec, not a store's.
fn shown(error: &ProviderError) -> String {
    match error {
        ProviderError::InvalidSpec { field, message } => {
            format!("invalid spec: {field}: {message}")
        }
        other => other.to_string(),
    }
}

impl GeneratorError {
    /// A stable PascalCase category for condition reasons, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            GeneratorError::NotFound { .. } => "GeneratorNotFound",
            GeneratorError::UnknownKind { .. } => "InvalidSpec",
            GeneratorError::Generator { source, .. } | GeneratorError::State { source, .. } => {
                source.reason()
            }
        }
    }

    /// Whether retrying later may succeed without a spec change.
    pub fn is_transient(&self) -> bool {
        match self {
            // The generator may be created after the ExternalSecret (GitOps ordering).
            GeneratorError::NotFound { .. } => true,
            GeneratorError::UnknownKind { .. } => false,
            GeneratorError::Generator { source, .. } | GeneratorError::State { source, .. } => {
                source.is_transient()
            }
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
        assert_eq!(checked_kind(&generator_ref(None, "UUID")).unwrap(), "UUID");
        assert_eq!(
            checked_kind(&generator_ref(Some(GENERATORS_API_VERSION), "Password")).unwrap(),
            "Password"
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
            source: ProviderError::InvalidSpec {
                field: "spec.length".to_owned(),
                message: "0 is outside 1 to 4096".to_owned(),
            },
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
            },
        };
        assert_eq!(
            e.to_string(),
            "VaultDynamicSecret/ns/db: store unavailable: connection refused"
        );
        assert_eq!((e.reason(), e.is_transient()), ("Unavailable", true));
    }

    #[test]
    fn a_generator_spec_is_parsed_by_kind_and_errors_name_the_field() {
        let spec = GeneratorSpec::from_json("Password", serde_json::json!({"length": 12})).unwrap();
        assert_eq!(spec.kind(), "Password");
        assert_eq!(
            spec,
            GeneratorSpec::Password(PasswordSpec {
                length: Some(12),
                ..PasswordSpec::default()
            })
        );
        let e = GeneratorSpec::from_json("Password", serde_json::json!({"length": "long"}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid store spec: spec.length: invalid type: string \"long\", expected u32"
        );
        let e = GeneratorSpec::from_json("Nope", serde_json::json!({})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid store spec: kind: unknown generator kind \"Nope\" (known: Password, UUID, Fake, VaultDynamicSecret)"
        );
    }

    #[test]
    fn the_default_lease_operations_refuse_renewal_and_revoke_nothing() {
        struct Constant;
        #[async_trait]
        impl Generator for Constant {
            async fn generate(&self) -> Result<Generated, ProviderError> {
                Ok(Generated::default())
            }
        }
        let e = futures::executor::block_on(Constant.renew("lease", Duration::from_secs(60)))
            .unwrap_err();
        assert_eq!(e.reason(), "Unsupported");
        futures::executor::block_on(Constant.revoke("lease")).unwrap();
    }
}
