//! PushSecret: writes keys of a Kubernetes Secret into external stores.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::Condition;
use crate::api::external_secret::{
    ConversionStrategy, DURATION_PATTERN, ExternalSecretTemplate, GeneratorRef, SecretStoreKind,
};

/// Pushes keys of a Secret (or a generator's output) to one or more stores.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "Pushes keys of a Secret (or a generator's output) to one or more stores.",
    group = "kuvert.io",
    version = "v1alpha1",
    kind = "PushSecret",
    namespaced,
    status = "PushSecretStatus",
    shortname = "ps",
    category = "kuvert",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSpec {
    /// How often the Secret is pushed again, as a Go duration. Default: `1h`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub refresh_interval: Option<String>,
    /// The stores written to. At most 50 entries.
    #[schemars(length(max = 50))]
    pub secret_store_refs: Vec<PushSecretStoreRef>,
    /// `Replace` overwrites remote secrets kuvert owns; `IfNotExists` never overwrites.
    /// Default: `Replace`.
    pub update_policy: Option<PushSecretUpdatePolicy>,
    /// `Delete` removes pushed remote secrets when the PushSecret or a match is removed.
    /// Default: `None`.
    pub deletion_policy: Option<PushSecretDeletionPolicy>,
    /// The source of the pushed values.
    pub selector: PushSecretSelector,
    /// Which keys go where. At most 1,000 entries.
    #[schemars(length(max = 1000))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PushSecretData>,
    /// Shapes the pushed values with Jinja templates before they are written.
    pub template: Option<ExternalSecretTemplate>,
}

/// A store written to: by name, or every store matching labels.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) != has(self.labelSelector)").message("exactly one of name and labelSelector must be set"))]
pub struct PushSecretStoreRef {
    /// Name of the store.
    pub name: Option<String>,
    /// Kind of the store. Default: `SecretStore`.
    pub kind: Option<SecretStoreKind>,
    /// Every store of `kind` whose labels match.
    pub label_selector: Option<LabelSelector>,
}

/// Whether an existing remote secret is overwritten.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum PushSecretUpdatePolicy {
    /// Overwrite it (only if kuvert owns it).
    #[default]
    Replace,
    /// Never overwrite it.
    IfNotExists,
}

/// What happens to pushed remote secrets on deletion.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum PushSecretDeletionPolicy {
    /// Delete what kuvert pushed (never what it does not own).
    Delete,
    /// Leave them.
    #[default]
    None,
}

/// The source of pushed values: exactly one of a Secret and a generator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secret) != has(self.generatorRef)").message("exactly one of secret and generatorRef must be set"))]
pub struct PushSecretSelector {
    /// A Secret in the PushSecret's namespace.
    pub secret: Option<PushSecretSecret>,
    /// A generator whose output is pushed.
    pub generator_ref: Option<GeneratorRef>,
}

/// The Secret pushed.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretSecret {
    /// Name of the Secret.
    pub name: Option<String>,
    /// Every Secret whose labels match, instead of `name`.
    pub selector: Option<LabelSelector>,
}

/// One pushed key.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretData {
    /// The key and where it goes.
    #[serde(rename = "match")]
    pub match_: PushSecretMatch,
    /// Provider-specific metadata written with the remote secret.
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub metadata: Option<serde_json::Value>,
    /// How the key name is converted. Default: `None`.
    pub conversion_strategy: Option<ConversionStrategy>,
}

/// A key of the source and its remote destination.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMatch {
    /// The Secret key pushed. Default: the whole Secret, as a JSON object.
    pub secret_key: Option<String>,
    /// The remote destination.
    pub remote_ref: PushSecretRemoteRef,
}

/// A remote destination.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRemoteRef {
    /// The remote secret's key.
    #[schemars(length(min = 1))]
    pub remote_key: String,
    /// A field of the remote secret's JSON object; default: the whole secret.
    pub property: Option<String>,
}

/// Observed state of a PushSecret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStatus {
    /// `Ready`, with reasons such as `Synced`, `Errored`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the values were last pushed.
    pub refresh_time: Option<Time>,
    /// The `resourceVersion` of the source Secret last pushed.
    pub synced_resource_version: Option<String>,
    /// What was pushed where: store (`Kind/name`) → remote key → the match pushed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced_push_secrets: BTreeMap<String, BTreeMap<String, PushSecretData>>,
}
