//! ClusterExternalSecret: one ExternalSecret stamped into many namespaces.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::Condition;
use crate::api::external_secret::{DURATION_PATTERN, ExternalSecretSpec};

/// Creates an ExternalSecret in every selected namespace and keeps them in step.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "Creates an ExternalSecret in every selected namespace and keeps them in step.",
    group = "kuvert.io",
    version = "v1alpha1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    shortname = "ces",
    category = "kuvert",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Provisioned","type":"integer","jsonPath":".status.provisionedNamespaceCount"}"#,
    printcolumn = r#"{"name":"Synced","type":"integer","jsonPath":".status.readyExternalSecrets"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of every ExternalSecret created.
    pub external_secret_spec: ExternalSecretSpec,
    /// Name of the ExternalSecrets created. Default: the ClusterExternalSecret's name.
    pub external_secret_name: Option<String>,
    /// Labels and annotations of the ExternalSecrets created.
    pub external_secret_metadata: Option<ExternalSecretMetadata>,
    /// Namespaces whose labels match any of these selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// How often the selected namespaces are re-evaluated, as a Go duration. Default: `1m`.
    /// Namespaces are watched, so a change is acted on at once; this is only a resync period.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub refresh_time: Option<String>,
}

/// Metadata of a created ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ExternalSecretMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Observed state of a ClusterExternalSecret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// Name of the ExternalSecrets created.
    pub external_secret_name: Option<String>,
    /// Namespaces where the ExternalSecret could not be created or is not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterExternalSecretNamespaceFailure>,
    /// Namespaces where the ExternalSecret exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// How many namespaces are provisioned (the length of `provisionedNamespaces`, for
    /// `kubectl get`).
    // `int32`, not schemars' `uint32`, which the API server does not know (see PasswordSpec).
    #[schemars(extend("format" = "int32"))]
    pub provisioned_namespace_count: Option<u32>,
    /// How many of the created ExternalSecrets are Ready: below the provisioned count, some
    /// namespaces are not in sync (their ExternalSecrets' conditions say why).
    #[schemars(extend("format" = "int32"))]
    pub ready_external_secrets: Option<u32>,
    /// Provisioned namespaces whose ExternalSecret is not Ready (not yet synced, or failing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_namespaces: Vec<String>,
    /// `Ready`: every selected namespace is provisioned (whether each ExternalSecret synced is
    /// `readyExternalSecrets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A namespace that failed.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ClusterExternalSecretNamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// Why it failed.
    pub reason: Option<String>,
}
