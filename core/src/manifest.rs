//! Reading kuvert manifests from YAML: every kuvert kind, plus the Secrets and ConfigMaps they
//! refer to and the Namespaces whose labels admit them to stores. Used by `kuvert render`, `kuvert dev` and the tests of `examples/`.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use serde::de::DeserializeOwned;

use crate::api;
use crate::generator::{GeneratorObject, Kind};

/// One object read from a manifest.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // read once per file; boxing would only add noise
pub enum Manifest {
    /// A SecretStore.
    SecretStore(api::SecretStore),
    /// A ClusterSecretStore.
    ClusterSecretStore(api::ClusterSecretStore),
    /// An ExternalSecret.
    ExternalSecret(api::ExternalSecret),
    /// A ClusterExternalSecret.
    ClusterExternalSecret(api::ClusterExternalSecret),
    /// A PushSecret.
    PushSecret(api::PushSecret),
    /// A generator, of any [`Kind`].
    Generator(GeneratorObject),
    /// A Secret (e.g. credentials a store refers to).
    Secret(Secret),
    /// A ConfigMap (e.g. templates used by `templateFrom`).
    ConfigMap(ConfigMap),
    /// A Namespace: its labels admit it to ClusterSecretStores with a `namespaceSelector`.
    Namespace(Namespace),
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The text is not YAML.
    #[error("{source_name}: invalid YAML: {message}")]
    Yaml {
        /// File (or other source) name.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A document lacks `apiVersion` or `kind`.
    #[error("{source_name}: document {index} has no apiVersion or kind")]
    MissingKind {
        /// File (or other source) name.
        source_name: String,
        /// Position of the document in the file, from 1.
        index: usize,
    },
    /// A document has a kind kuvert does not read.
    #[error("{source_name}: document {index}: unsupported kind {api_version}/{kind}")]
    UnsupportedKind {
        /// File (or other source) name.
        source_name: String,
        /// Position of the document in the file, from 1.
        index: usize,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// A document has fields kuvert does not know (a real API server would prune them
    /// silently; `render` and `dev` name them instead).
    #[error("{source_name}: {kind} {name:?}: unknown field{} {}", if fields.len() == 1 { "" } else { "s" }, fields.join(", "))]
    UnknownFields {
        /// File (or other source) name.
        source_name: String,
        /// The document's kind.
        kind: String,
        /// The document's `metadata.name`, if any.
        name: String,
        /// The unknown fields' paths, e.g. `spec.target.template.engineVersion`.
        fields: Vec<String>,
    },
    /// A document does not match its kind's schema.
    #[error("{source_name}: {kind} {name:?}: {message}")]
    Invalid {
        /// File (or other source) name.
        source_name: String,
        /// The document's kind.
        kind: String,
        /// The document's `metadata.name`, if any.
        name: String,
        /// What is wrong. For a Secret the parser's message is withheld, since it may quote
        /// the Secret's data.
        message: String,
    },
}

impl Manifest {
    /// Reads every document of a multi-document YAML text. `source_name` names the input in
    /// errors. Empty documents are skipped.
    pub fn parse_all(source_name: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
                source_name: source_name.to_owned(),
                message: e.to_string(),
            })?;
        docs.into_iter()
            .filter(|doc| !doc.is_null())
            .enumerate()
            .map(|(i, doc)| Manifest::from_value(source_name, i + 1, doc))
            .collect()
    }

    /// Reads one document already parsed into JSON.
    pub fn from_value(
        source_name: &str,
        index: usize,
        doc: serde_json::Value,
    ) -> Result<Manifest, ManifestError> {
        let field = |f: &str| doc.get(f).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(ManifestError::MissingKind {
                source_name: source_name.to_owned(),
                index,
            });
        };
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        fn typed<T: DeserializeOwned + serde::Serialize>(
            doc: serde_json::Value,
            cx: (&str, &str, &str),
        ) -> Result<T, ManifestError> {
            let input = (cx.1 != "Secret" && cx.1 != "ConfigMap").then(|| doc.clone());
            let object: T = serde_path_to_error::deserialize(doc).map_err(|e| invalid(e, cx))?;
            if let Some(input) = input {
                all_known(
                    &input,
                    &serde_json::to_value(&object).unwrap_or_default(),
                    cx,
                )?;
            }
            Ok(object)
        }
        fn invalid(
            e: serde_path_to_error::Error<serde_json::Error>,
            (source_name, kind, name): (&str, &str, &str),
        ) -> ManifestError {
            // The path names fields and keys, never values; serde's own message may quote a
            // value, which for a Secret could be secret data.
            let field = e.path().to_string();
            let cause = if kind == "Secret" {
                "does not match the Secret schema (data must be base64)".to_owned()
            } else {
                e.into_inner().to_string()
            };
            ManifestError::Invalid {
                source_name: source_name.to_owned(),
                kind: kind.to_owned(),
                name: name.to_owned(),
                message: if field == "." {
                    cause
                } else {
                    format!("{field}: {cause}")
                },
            }
        }
        /// Fails naming every field of `input` that kuvert's types dropped (`known`).
        fn all_known(
            input: &serde_json::Value,
            known: &serde_json::Value,
            (source_name, kind, name): (&str, &str, &str),
        ) -> Result<(), ManifestError> {
            let mut fields = Vec::new();
            unknown_fields(input, known, "", &mut fields);
            if fields.is_empty() {
                return Ok(());
            }
            Err(ManifestError::UnknownFields {
                source_name: source_name.to_owned(),
                kind: kind.to_owned(),
                name: name.to_owned(),
                fields,
            })
        }
        let (group, _version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let cx = (source_name, kind.as_str(), name.as_str());
        let manifest = match (group, kind.as_str()) {
            (api::GROUP, "SecretStore") => Manifest::SecretStore(typed(doc, cx)?),
            (api::GROUP, "ClusterSecretStore") => Manifest::ClusterSecretStore(typed(doc, cx)?),
            (api::GROUP, "ExternalSecret") => Manifest::ExternalSecret(typed(doc, cx)?),
            (api::GROUP, "ClusterExternalSecret") => {
                Manifest::ClusterExternalSecret(typed(doc, cx)?)
            }
            (api::GROUP, "PushSecret") => Manifest::PushSecret(typed(doc, cx)?),
            (api::GENERATORS_GROUP, name) if let Some(kind) = Kind::from_name(name) => {
                let input = doc.clone();
                let object = kind.parse_object(doc).map_err(|e| invalid(e, cx))?;
                all_known(&input, &object.to_json(), cx)?;
                Manifest::Generator(object)
            }
            ("", "Secret") => Manifest::Secret(typed(doc, cx)?),
            ("", "ConfigMap") => Manifest::ConfigMap(typed(doc, cx)?),
            ("", "Namespace") => Manifest::Namespace(typed(doc, cx)?),
            _ => {
                return Err(ManifestError::UnsupportedKind {
                    source_name: source_name.to_owned(),
                    index,
                    api_version,
                    kind,
                });
            }
        };
        Ok(manifest)
    }
}

/// The fields of `input` that did not survive a round trip through kuvert's types (`known` is
/// the typed object written back). A field whose value is empty (`null`, `false`, `0`, `""`,
/// `[]`, `{}`) is not reported: kuvert's types omit such values when writing.
fn unknown_fields(
    input: &serde_json::Value,
    known: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, value) in i {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(value, kv, &here, out),
                    None if empty(value) => {}
                    None => out.push(here),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}
