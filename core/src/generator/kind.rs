//! The generator kinds, listed once. Everything that depends on the set of kinds — the CRDs
//! `kuvert crds` prints, the manifest reader of `kuvert render` and `kuvert dev`, the API
//! resource the operator reads a generator object through, the enum of `generatorRef.kind` —
//! derives from [`Kind::ALL`] or matches [`Kind`] exhaustively, so adding a kind to the list
//! below makes the compiler name every place still to wire.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, CustomResourceExt, Resource};
use serde::de::DeserializeOwned;

use super::{GenerateError, GeneratorSpec};
use crate::api;
use crate::provider::ProviderError;

/// Declares [`Kind`] and [`Kind::ALL`] from one list: Rust cannot enumerate an enum's variants,
/// and a hand-kept array would compile with a kind left out.
macro_rules! generator_kinds {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// A generator kind of `generators.kuvert.io/v1alpha1`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// Every kind, in the order `kuvert crds` prints them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];
        }
    };
}

generator_kinds! {
    /// `Password`: a random password.
    Password,
    /// `UUID`: a random UUID.
    Uuid,
    /// `Fake`: the data in its spec.
    Fake,
    /// `VaultDynamicSecret`: credentials from a Vault secrets engine, with a lease.
    VaultDynamicSecret,
}

impl Kind {
    /// The kind as in `generatorRef.kind` and the object's `kind`; also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Password => "Password",
            Kind::Uuid => "UUID",
            Kind::Fake => "Fake",
            Kind::VaultDynamicSecret => "VaultDynamicSecret",
        }
    }

    /// The kind named `name` (as in `generatorRef.kind`), if kuvert has it.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The kinds' names, for messages: `Password, UUID, Fake, VaultDynamicSecret`.
    pub fn names() -> String {
        Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The API resource of the kind's CRD (group, version and the CRD's own plural: `uuids`,
    /// not a guessed `uuids` or `uuid`s).
    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Password => ApiResource::erase::<api::Password>(&()),
            Kind::Uuid => ApiResource::erase::<api::UUID>(&()),
            Kind::Fake => ApiResource::erase::<api::Fake>(&()),
            Kind::VaultDynamicSecret => ApiResource::erase::<api::VaultDynamicSecret>(&()),
        }
    }

    /// The kind's CustomResourceDefinition.
    pub fn crd(self) -> CustomResourceDefinition {
        match self {
            Kind::Password => api::Password::crd(),
            Kind::Uuid => api::UUID::crd(),
            Kind::Fake => api::Fake::crd(),
            Kind::VaultDynamicSecret => api::VaultDynamicSecret::crd(),
        }
    }

    /// Parses the `spec` of an object of this kind. Errors name the field path.
    pub fn parse_spec(self, spec: serde_json::Value) -> Result<GeneratorSpec, GenerateError> {
        fn parse<T: DeserializeOwned>(spec: serde_json::Value) -> Result<T, GenerateError> {
            serde_path_to_error::deserialize(spec).map_err(|e| {
                let path = e.path().to_string();
                GenerateError::from(ProviderError::InvalidSpec {
                    field: if path == "." {
                        "spec".to_owned()
                    } else {
                        format!("spec.{path}")
                    },
                    message: e.into_inner().to_string(),
                })
            })
        }
        Ok(match self {
            Kind::Password => GeneratorSpec::Password(parse(spec)?),
            Kind::Uuid => GeneratorSpec::Uuid(parse(spec)?),
            Kind::Fake => GeneratorSpec::Fake(parse(spec)?),
            Kind::VaultDynamicSecret => GeneratorSpec::VaultDynamicSecret(Box::new(parse(spec)?)),
        })
    }

    /// Reads a whole object of this kind (a manifest document) through its CRD type, so errors
    /// carry the path from the document's root (`spec.length`).
    pub fn parse_object(
        self,
        doc: serde_json::Value,
    ) -> Result<GeneratorObject, serde_path_to_error::Error<serde_json::Error>> {
        fn typed<K: Resource + DeserializeOwned>(
            doc: serde_json::Value,
            spec: impl FnOnce(K) -> (ObjectMeta, GeneratorSpec),
        ) -> Result<(ObjectMeta, GeneratorSpec), serde_path_to_error::Error<serde_json::Error>>
        {
            serde_path_to_error::deserialize(doc).map(spec)
        }
        let (metadata, spec) = match self {
            Kind::Password => typed(doc, |o: api::Password| {
                (o.metadata, GeneratorSpec::Password(o.spec))
            })?,
            Kind::Uuid => typed(doc, |o: api::UUID| {
                (o.metadata, GeneratorSpec::Uuid(o.spec))
            })?,
            Kind::Fake => typed(doc, |o: api::Fake| {
                (o.metadata, GeneratorSpec::Fake(o.spec))
            })?,
            Kind::VaultDynamicSecret => typed(doc, |o: api::VaultDynamicSecret| {
                (
                    o.metadata,
                    GeneratorSpec::VaultDynamicSecret(Box::new(o.spec)),
                )
            })?,
        };
        Ok(GeneratorObject {
            kind: self,
            metadata,
            spec,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A generator object of any kind, as read from a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorObject {
    /// Its kind.
    pub kind: Kind,
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: GeneratorSpec,
}

impl GeneratorObject {
    /// The object as JSON, as the API server takes it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": super::GENERATORS_API_VERSION,
            "kind": self.kind.as_str(),
            "metadata": self.metadata,
            "spec": self.spec,
        })
    }
}

/// The JSON schema of `generatorRef.kind`: a string, one of the kinds.
pub(crate) fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_named_and_looked_up_as_its_crd_says() {
        for &kind in Kind::ALL {
            let resource = kind.api_resource();
            assert_eq!(resource.kind, kind.as_str());
            assert_eq!(resource.group, api::GENERATORS_GROUP);
            assert_eq!(kind.crd().spec.names.plural, resource.plural);
            assert_eq!(Kind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::Uuid.api_resource().plural, "uuids");
        assert_eq!(
            Kind::VaultDynamicSecret.api_resource().plural,
            "vaultdynamicsecrets"
        );
        assert_eq!(Kind::from_name("Nope"), None);
    }
}
