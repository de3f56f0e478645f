//! ExternalSecret: which remote secrets to read and how to shape the Secret they become.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::{Condition, LocalObjectReference};

/// A Go duration such as `1h`, `30m`, `1h30m` or `0`.
pub(crate) const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// Keeps a Kubernetes Secret in sync with secrets held in an external store.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    doc = "Keeps a Kubernetes Secret in sync with secrets held in an external store.",
    group = "kuvert.io",
    version = "v1alpha1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "es",
    category = "kuvert",
    printcolumn = r#"{"name":"StoreType","type":"string","jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".status.refreshInterval"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#,
    printcolumn = r#"{"name":"Workloads","type":"string","jsonPath":".status.workloadsUpToDate"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// The store read by every entry without its own `sourceRef`.
    pub secret_store_ref: Option<SecretStoreRef>,
    /// The Secret to write. Default: a Secret named like the ExternalSecret, owned by it.
    pub target: Option<ExternalSecretTarget>,
    /// How often the remote secrets are read again, as a Go duration; `0` syncs once.
    /// Default: `1h`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub refresh_interval: Option<String>,
    /// When the Secret is refreshed. Default: `Periodic`.
    pub refresh_policy: Option<RefreshPolicy>,
    /// Single remote values, each written to one key of the Secret. At most 1,000 entries.
    #[schemars(length(max = 1000))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Remote secrets expanded into many keys. Applied in order before `data`; later keys win. At most 100 entries.
    #[schemars(length(max = 100))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

/// A reference to a SecretStore (in the same namespace) or a ClusterSecretStore.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretStoreRef {
    /// Name of the store.
    pub name: String,
    /// Kind of the store. Default: `SecretStore`.
    pub kind: Option<SecretStoreKind>,
}

/// The kinds of store.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum SecretStoreKind {
    /// A SecretStore in the ExternalSecret's namespace.
    #[default]
    SecretStore,
    /// A ClusterSecretStore that admits the ExternalSecret's namespace.
    ClusterSecretStore,
}

/// When a synced Secret is refreshed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum RefreshPolicy {
    /// Every `refreshInterval`.
    #[default]
    Periodic,
    /// Once, when the Secret is created; later only on a force-sync.
    CreatedOnce,
    /// When the ExternalSecret's spec changes, and on a force-sync.
    OnChange,
}

/// The Secret an ExternalSecret writes.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Name of the Secret. Default: the ExternalSecret's name.
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// Who owns the Secret and whether kuvert creates it. Default: `Owner`.
    pub creation_policy: Option<CreationPolicy>,
    /// What happens to the Secret when every remote secret it came from is gone.
    /// Default: `Retain`.
    pub deletion_policy: Option<DeletionPolicy>,
    /// Marks the Secret immutable once written; it is then never updated. Default: false.
    pub immutable: Option<bool>,
    /// Shapes the Secret with Jinja templates.
    pub template: Option<ExternalSecretTemplate>,
    /// Workloads in this namespace restarted when the Secret's data changes: each one's pod
    /// template gets the annotation `kuvert.io/secret-hash.<secret>` holding the data hash, so
    /// a change rolls it out once (and a refresh reading the same values changes nothing).
    /// Field name as Vault Secrets Operator's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
}

/// A workload restarted when the target Secret's data changes.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRestartTarget {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name, in the ExternalSecret's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The workloads kuvert restarts.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum WorkloadKind {
    /// An `apps/v1` Deployment.
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
    /// An `apps/v1` DaemonSet.
    DaemonSet,
}

/// Who owns the target Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum CreationPolicy {
    /// kuvert creates the Secret with an owner reference to the ExternalSecret, which deletes it
    /// along with the ExternalSecret.
    #[default]
    Owner,
    /// kuvert creates the Secret without an owner reference; it outlives the ExternalSecret.
    Orphan,
    /// kuvert only merges keys into a Secret that already exists; it never creates one.
    Merge,
    /// Create the Secret if missing (owned), else merge into the existing one.
    CreateOrMerge,
    /// kuvert writes no Secret; useful to check that remote secrets resolve.
    None,
}

/// What happens to the target Secret when the remote secrets are gone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum DeletionPolicy {
    /// Keep the Secret as last synced.
    #[default]
    Retain,
    /// Delete the Secret.
    Delete,
    /// Remove the keys kuvert wrote, keep the Secret and its other keys.
    Merge,
}

impl ExternalSecretSpec {
    /// `target.creationPolicy`, defaulted.
    pub fn creation_policy(&self) -> CreationPolicy {
        self.target
            .as_ref()
            .and_then(|t| t.creation_policy)
            .unwrap_or_default()
    }

    /// `target.deletionPolicy`, defaulted.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.target
            .as_ref()
            .and_then(|t| t.deletion_policy)
            .unwrap_or_default()
    }
}

/// Jinja templates shaping the target Secret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// The Secret's `type`. Default: `Opaque`, or the existing Secret's type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Labels and annotations of the Secret; their values are templates too.
    pub metadata: Option<TemplateMetadata>,
    /// Whether fetched keys are kept beside templated ones (`Merge`) or dropped (`Replace`).
    /// Default: `Replace`.
    pub merge_policy: Option<TemplateMergePolicy>,
    /// Secret keys and the Jinja template producing each value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates read from ConfigMaps, Secrets or literals. At most 50 entries.
    #[schemars(length(max = 50))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
    /// Template delimiters, for templates kept inside Helm charts whose `{{ }}` collide with
    /// Jinja's. Default: `{{ }}`, `{% %}`, `{# #}`.
    pub delimiters: Option<TemplateDelimiters>,
}

/// Labels and annotations written on the target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Finalizers added to the Secret (as ESO does; never removed by kuvert, and not added to
    /// a Secret that is being deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// How templated keys combine with fetched keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum TemplateMergePolicy {
    /// Only templated keys are written.
    #[default]
    Replace,
    /// Fetched keys are written too; templated keys win.
    Merge,
}

/// Jinja delimiters; each pair must differ from the others.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDelimiters {
    /// Start of an expression. Default: `{{`; e.g. `[[` inside Helm charts.
    pub variable_start: Option<String>,
    /// End of an expression. Default: `}}`.
    pub variable_end: Option<String>,
    /// Start of a statement. Default: `{%`.
    pub block_start: Option<String>,
    /// End of a statement. Default: `%}`.
    pub block_end: Option<String>,
    /// Start of a comment. Default: `{#`.
    pub comment_start: Option<String>,
    /// End of a comment. Default: `#}`.
    pub comment_end: Option<String>,
}

/// A source of templates.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.configMap), has(self.secret), has(self.literal)].filter(x, x).size() == 1").message("exactly one of configMap, secret and literal must be set"))]
pub struct TemplateFrom {
    /// Keys of a ConfigMap in the ExternalSecret's namespace.
    pub config_map: Option<TemplateRef>,
    /// Keys of a Secret in the ExternalSecret's namespace.
    pub secret: Option<TemplateRef>,
    /// A template written inline.
    pub literal: Option<String>,
    /// What the rendered output becomes. Default: `Data`.
    pub target: Option<TemplateTarget>,
    /// How each rendered value is decoded before it is stored (ESO's field): `None` (default),
    /// `Base64`, `Base64URL` or `Auto`. Keys are never decoded. Lets a template pick base64
    /// text out of structured data and store its bytes, without raw bytes passing through YAML.
    pub values_decoding_strategy: Option<DecodingStrategy>,
}

/// Keys of a ConfigMap or Secret used as templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TemplateRef {
    /// Name of the object.
    pub name: String,
    /// The keys used.
    pub items: Vec<TemplateRefItem>,
}

/// One key used as a template.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// The key.
    pub key: String,
    /// `Values`: the key's value is a template for the key of the same name. `KeysAndValues`:
    /// the value is a template whose output is a YAML map of keys to values. Default: `Values`.
    pub template_as: Option<TemplateScope>,
}

/// How a template's output is read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum TemplateScope {
    /// The output is one value.
    #[default]
    Values,
    /// The output is a YAML map of keys to values.
    KeysAndValues,
}

/// Where a template's output goes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum TemplateTarget {
    /// The Secret's data.
    #[default]
    Data,
    /// The Secret's annotations.
    Annotations,
    /// The Secret's labels.
    Labels,
}

/// One value of the target Secret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// The key written in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_key: String,
    /// The remote value read.
    pub remote_ref: Option<ExternalSecretDataRemoteRef>,
    /// A store or generator other than `secretStoreRef` for this entry.
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// Which remote value to read.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataRemoteRef {
    /// The remote secret's key (its path or name in the store).
    #[schemars(length(min = 1))]
    pub key: String,
    /// A field of a JSON value: a dotted path such as `a.b.c`. A key that itself contains dots is
    /// written in brackets and quotes: `a.["tls.crt"]` (or `a["tls.crt"]`, `a['tls.crt']`); a
    /// number indexes a list (`hosts.0`, `hosts[0]`). A property that is literally a top-level
    /// key (`tls.crt`) selects that key first, as in ESO. Strings are written as they are, other
    /// JSON values as JSON text. Default: the whole value.
    pub property: Option<String>,
    /// The remote version to read. Default: the current one.
    pub version: Option<String>,
    /// `Fetch` reads the remote secret's metadata (e.g. Vault custom_metadata) instead of its
    /// value. Default: `None`.
    pub metadata_policy: Option<MetadataPolicy>,
    /// How keys of an extracted map are made valid Secret keys. Default: `Default`.
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How the value is decoded before it is written. Default: `None`.
    pub decoding_strategy: Option<DecodingStrategy>,
    /// `Fail` refuses a value holding NUL bytes once decoded (text expected); `Ignore`
    /// (default) keeps binary data.
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// What a fetched value holding NUL bytes is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum NullBytePolicy {
    /// Kept (binary data).
    #[default]
    Ignore,
    /// An error naming the key.
    Fail,
}

/// Whether the value or the metadata of a remote secret is read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum MetadataPolicy {
    /// The value.
    #[default]
    None,
    /// The metadata.
    Fetch,
}

/// How invalid characters in remote key names are converted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum ConversionStrategy {
    /// Every character outside letters, digits, `-`, `.` and `_` becomes `_`.
    #[default]
    Default,
    /// Every such character becomes `_Uxxxx_`, its Unicode code point in hex.
    Unicode,
}

/// How a remote value is decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum DecodingStrategy {
    /// Written as read.
    #[default]
    None,
    /// Standard base64; invalid input is an error.
    Base64,
    /// URL-safe base64; invalid input is an error.
    #[serde(rename = "Base64URL")]
    Base64Url,
    /// Standard base64, else URL-safe base64, else written as read.
    Auto,
}

/// A store or generator as the source of one entry.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storeRef) != has(self.generatorRef)").message("exactly one of storeRef and generatorRef must be set"))]
pub struct StoreGeneratorSourceRef {
    /// A store other than the ExternalSecret's `secretStoreRef`.
    pub store_ref: Option<SecretStoreRef>,
    /// A generator producing the values.
    pub generator_ref: Option<GeneratorRef>,
}

/// A reference to a generator in the ExternalSecret's namespace.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// API version of the generator. Default: `generators.kuvert.io/v1alpha1`.
    pub api_version: Option<String>,
    /// Kind of the generator: `Password`, `UUID`, `Fake` or `VaultDynamicSecret`.
    #[schemars(schema_with = "crate::generator::kind_schema")]
    pub kind: String,
    /// Name of the generator.
    pub name: String,
}

/// Remote secrets expanded into many keys: exactly one of `extract`, `find`, or a generator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.extract), has(self.find), has(self.sourceRef) && has(self.sourceRef.generatorRef)].filter(x, x).size() == 1").message("exactly one of extract, find and sourceRef.generatorRef must be set"))]
pub struct ExternalSecretDataFromRemoteRef {
    /// One remote secret whose JSON object becomes one key per field.
    pub extract: Option<ExternalSecretDataRemoteRef>,
    /// Every remote secret matching a path, name pattern or tags, one key each.
    pub find: Option<ExternalSecretFind>,
    /// Rewrites of the resulting keys, applied in order. At most 50 entries.
    #[schemars(length(max = 50))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
    /// A store or generator other than `secretStoreRef` for this entry.
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// Which remote secrets to find.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// Only secrets under this path.
    pub path: Option<String>,
    /// Only secrets whose name matches.
    pub name: Option<FindName>,
    /// Only secrets carrying all of these tags (metadata).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How key names are made valid Secret keys when there is no `rewrite`. Default: `Default`.
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How each value is decoded. Default: `None`.
    pub decoding_strategy: Option<DecodingStrategy>,
    /// `Fail` refuses a value holding NUL bytes once decoded; `Ignore` (default) keeps it.
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// A name pattern.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct FindName {
    /// A regular expression the secret's name must match (unanchored, like ESO's).
    pub regexp: String,
}

/// One rewrite of keys: exactly one of `regexp`, `transform` and `merge`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.regexp), has(self.transform), has(self.merge)].filter(x, x).size() == 1").message("exactly one of regexp, transform and merge must be set"))]
pub struct ExternalSecretRewrite {
    /// Replaces what a regular expression matches in each key.
    pub regexp: Option<RewriteRegexp>,
    /// Renders each key through a Jinja template in which the key is `value`.
    pub transform: Option<RewriteTransform>,
    /// Combines several JSON values into one map.
    pub merge: Option<RewriteMerge>,
}

/// A regular-expression rewrite of keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RewriteRegexp {
    /// The expression matched in each key.
    pub source: String,
    /// The replacement; `$1` or `${name}` refer to capture groups.
    pub target: String,
}

/// A template rewrite of keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RewriteTransform {
    /// A Jinja template whose output is the new key; the old key is `value`.
    pub template: String,
}

/// Combines the entry's values (each a JSON object) into one map.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// The key the merged map is written under, as JSON. Required with strategy `JSON`;
    /// ignored with `Extract` (as in ESO).
    pub into: Option<String>,
    /// Keys merged last, in this order (so the last one listed wins a conflict, as in ESO);
    /// the other keys merge before them, in name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// What a `priority` key missing from the merged keys is: `Strict` (default, an error) or
    /// `IgnoreNotFound`.
    pub priority_policy: Option<MergePriorityPolicy>,
    /// What a field defined by two values is. Default: `Error`.
    pub conflict_policy: Option<MergeConflictPolicy>,
    /// Values (JSON objects) are merged field by field; `Extract` writes one key per field,
    /// `JSON` the merged map as one JSON value under `into`. Default: `Extract`.
    pub strategy: Option<MergeStrategy>,
}

/// What a `priority` key that is not among the merged keys is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum MergePriorityPolicy {
    /// An error naming the key.
    #[default]
    Strict,
    /// The key is skipped.
    IgnoreNotFound,
}

/// What a conflicting field in a merge is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum MergeConflictPolicy {
    /// An error naming the field.
    #[default]
    Error,
    /// The value merged last wins: a `priority` key's over the others', else the later name's.
    Ignore,
}

/// How merged values are read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum MergeStrategy {
    /// One key per field of the merged map.
    #[default]
    Extract,
    /// The merged map, as JSON, under `into`.
    #[serde(rename = "JSON")]
    Json,
}

/// Observed state of an ExternalSecret.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// `Ready`, with reasons such as `SecretSynced`, `SecretSyncedError`, `StoreNotReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the remote secrets were last read.
    pub refresh_time: Option<Time>,
    /// The refresh interval in effect: `spec.refreshInterval`, or its default `1h` when unset
    /// (kuvert does not write defaults into the spec). Absent when nothing refreshes
    /// periodically (`refreshPolicy` other than `Periodic`, or an interval of `0`).
    pub refresh_interval: Option<String>,
    /// The `resourceVersion` of the target Secret as last written.
    pub synced_resource_version: Option<String>,
    /// The target Secret.
    pub binding: Option<LocalObjectReference>,
    /// The `metadata.generation` of the spec last synced.
    pub observed_generation: Option<i64>,
    /// The value of the `kuvert.io/force-sync` (or `force-sync`) annotation last acted on.
    pub force_sync: Option<String>,
    /// The remote version of each value read in the last sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synced_versions: Vec<SyncedVersion>,
    /// The leases of credentials generators made for this ExternalSecret (dynamic secrets),
    /// which kuvert renews, replaces before they expire, and revokes when the ExternalSecret
    /// is deleted. Lease ids only: never the credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<GeneratorLease>,
    /// The workloads following the target Secret (named in `target.rolloutRestartTargets`, or
    /// labelled `kuvert.io/reload: "true"` and using it), and whether each runs its current data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadStatus>,
    /// How many of `workloads` are up to date, as `3/4` (the `Workloads` printer column).
    pub workloads_up_to_date: Option<String>,
}

/// A workload following the target Secret, as kuvert last observed it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name, in the ExternalSecret's namespace.
    pub name: String,
    /// The data hash its pod template carries for the Secret (`kuvert.io/secret-hash.NAME`);
    /// absent while it carries none (or it was not observed yet, or does not exist).
    pub secret_hash: Option<String>,
    /// Its pod template carries the Secret's current data hash and its rollout has finished
    /// (every replica updated and available, as `kubectl rollout status` judges it).
    pub up_to_date: bool,
    /// When kuvert observed it in this state.
    pub observed_at: Option<Time>,
}

/// A lease held for one `sourceRef.generatorRef` entry.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorLease {
    /// The entry (`spec.dataFrom[0]`, `spec.data[1]`).
    pub field: String,
    /// The generator, as `Kind/namespace/name`.
    pub generator: String,
    /// The lease id.
    pub lease_id: String,
    /// Seconds the lease was valid for when it was issued or last renewed.
    pub duration_seconds: i64,
    /// Whether the lease can be renewed.
    pub renewable: bool,
    /// When the lease was issued or last renewed.
    pub renewed_time: Option<Time>,
    /// When kuvert renews the lease next or, if it cannot be renewed (any further), replaces
    /// the credentials.
    pub next_action_time: Option<Time>,
}

/// The remote version of one value read.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedVersion {
    /// The remote key read.
    pub remote_key: String,
    /// The store it was read from (`Kind/name`).
    pub store: String,
    /// The version the store reported, if it versions secrets.
    pub version: Option<String>,
}
