//! SecretStore and ClusterSecretStore: where secrets come from and how to log in there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::Condition;
use crate::api::provider::ProviderSpec;

/// A store of secrets usable by ExternalSecrets in its own namespace.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "A store of secrets usable by ExternalSecrets in its own namespace.",
    group = "kuvert.io",
    version = "v1alpha1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "ss",
    category = "kuvert",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Controller class: only a kuvert instance started with the same `--controller-class` serves
    /// this store. Default: empty, served by instances without a class.
    pub controller: Option<String>,
    /// The external store. Exactly one provider.
    pub provider: ProviderSpec,
    /// How often a failing store call is retried before the sync fails.
    pub retry_settings: Option<RetrySettings>,
    /// Seconds between re-validations of the store's connection and credentials. Default: 300;
    /// 0: validated only when the store or a credential it reads changes, or when an
    /// ExternalSecret finds the store unreachable.
    #[schemars(range(min = 0))]
    pub refresh_interval: Option<i64>,
}

/// Retries of failing store calls within one sync.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// How many times a call is retried. Default: 0.
    #[schemars(range(min = 0))]
    pub max_retries: Option<i32>,
    /// Wait between retries, as a Go duration (e.g. `5s`). Default: `1s`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub retry_interval: Option<String>,
}

/// A store of secrets usable from many namespaces.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "A store of secrets usable from many namespaces.",
    group = "kuvert.io",
    version = "v1alpha1",
    kind = "ClusterSecretStore",
    status = "SecretStoreStatus",
    shortname = "css",
    category = "kuvert",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreSpec {
    /// Everything a namespaced SecretStore has.
    #[serde(flatten)]
    pub store: SecretStoreSpec,
    /// The namespaces allowed to use this store: a namespace matching any one condition may.
    /// Default: every namespace. A refused namespace gets a `StoreNotAllowed` error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// One rule admitting namespaces to a ClusterSecretStore; its parts must all match.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces whose labels match this selector.
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces whose name matches one of these regular expressions (anchored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// What a store can do with its credentials.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum StoreCapabilities {
    /// Secrets can be read only.
    ReadOnly,
    /// Secrets can be written only.
    WriteOnly,
    /// Secrets can be read and written.
    ReadWrite,
}

/// Observed state of a SecretStore or ClusterSecretStore.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// `Ready`: whether the store's spec and connection were validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the store can do, as found at validation.
    pub capabilities: Option<StoreCapabilities>,
    /// The `metadata.generation` last validated.
    pub observed_generation: Option<i64>,
}
