//! Small reference types shared by several kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A reference to one key of a Kubernetes Secret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret. Only a ClusterSecretStore may name another namespace; a
    /// SecretStore always reads from its own namespace.
    pub namespace: Option<String>,
    /// Key within the Secret's data. Required where a single value is read.
    pub key: Option<String>,
}

/// A reference to a ServiceAccount, used to request a short-lived token for it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// Name of the ServiceAccount.
    pub name: String,
    /// Namespace of the ServiceAccount. Only a ClusterSecretStore may name another namespace.
    pub namespace: Option<String>,
    /// Audiences of the requested token. Default: the audience the provider expects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

/// Where a CA certificate bundle is read from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum CaProviderType {
    /// A key of a Secret.
    Secret,
    /// A key of a ConfigMap.
    ConfigMap,
}

/// A CA certificate bundle held in a Secret or ConfigMap.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaProvider {
    /// The kind of object holding the bundle.
    #[serde(rename = "type")]
    pub type_: CaProviderType,
    /// Name of the Secret or ConfigMap.
    pub name: String,
    /// Key holding the PEM bundle.
    pub key: String,
    /// Namespace of the object. Only a ClusterSecretStore may name another namespace.
    pub namespace: Option<String>,
}

/// A reference to an object in the same namespace by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the object.
    pub name: String,
}

/// Drops a plain enum's own description from its schema, so the CRD shows the doc of the field
/// using it (which states the default) rather than the enum's.
pub(crate) fn field_docs_only(schema: &mut schemars::Schema) {
    schema.remove("description");
}
