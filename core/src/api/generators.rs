//! Generators (`generators.kuvert.io/v1alpha1`): values made rather than read, used by
//! ExternalSecrets through `sourceRef.generatorRef`.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::provider::VaultProvider;
use crate::api::store::RetrySettings;

/// The API group of generators.
pub const GENERATORS_GROUP: &str = "generators.kuvert.io";

/// Generates a random password under the key `password`.
#[skip_serializing_none]
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    doc = "Generates a random password under the key `password`.",
    group = "generators.kuvert.io",
    version = "v1alpha1",
    kind = "Password",
    namespaced,
    category = "kuvert-generators"
)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSpec {
    /// Length of the password. Default: 24.
    // `int32`, not schemars' `uint32`: the API server knows only OpenAPI's integer formats and
    // warns on every apply of the CRD.
    #[schemars(range(min = 1, max = 4096), extend("format" = "int32"))]
    pub length: Option<u32>,
    /// Exactly this many digits. Default: a quarter of the length.
    #[schemars(extend("format" = "int32"))]
    pub digits: Option<u32>,
    /// Exactly this many symbols. Default: a quarter of the length.
    #[schemars(extend("format" = "int32"))]
    pub symbols: Option<u32>,
    /// The symbols chosen from. Default: ``~!@#$%^&*()_+-={}|[]\:"<>?,./``.
    pub symbol_characters: Option<String>,
    /// No upper-case letters. Default: false.
    pub no_upper: Option<bool>,
    /// Characters may repeat. Default: false.
    pub allow_repeat: Option<bool>,
}

/// Generates a random (version 4) UUID under the key `uuid`.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    doc = "Generates a random (version 4) UUID under the key `uuid`.",
    group = "generators.kuvert.io",
    version = "v1alpha1",
    kind = "UUID",
    plural = "uuids",
    namespaced,
    category = "kuvert-generators"
)]
pub struct UuidSpec {}

/// Returns static data, for tests and demos.
#[skip_serializing_none]
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    doc = "Returns static data, for tests and demos.",
    group = "generators.kuvert.io",
    version = "v1alpha1",
    kind = "Fake",
    namespaced,
    category = "kuvert-generators"
)]
pub struct FakeSpec {
    /// Controller class serving this generator. Default: empty.
    pub controller: Option<String>,
    /// The generated keys and values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// Requests credentials from any Vault secrets engine (database, PKI, AWS, ...), with leases
/// renewed and revoked along with the ExternalSecret using them.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    doc = "Requests credentials from any Vault secrets engine (database, PKI, AWS, ...), with leases renewed and revoked along with the ExternalSecret using them.",
    group = "generators.kuvert.io",
    version = "v1alpha1",
    kind = "VaultDynamicSecret",
    namespaced,
    category = "kuvert-generators"
)]
#[serde(rename_all = "camelCase")]
pub struct VaultDynamicSecretSpec {
    /// Controller class serving this generator. Default: empty.
    pub controller: Option<String>,
    /// Vault path called, e.g. `database/creds/app` or `pki/issue/web`.
    #[schemars(length(min = 1))]
    pub path: String,
    /// HTTP method. Default: `GET`.
    pub method: Option<VaultDynamicSecretMethod>,
    /// Request parameters: the JSON body of a `POST`/`PUT` (e.g. `{common_name: app.example.com}`),
    /// the query of a `GET` (strings, numbers and booleans only).
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub parameters: Option<serde_json::Value>,
    /// Which part of the response becomes the keys. Default: `Data`. String values are used as
    /// they are; numbers, booleans, arrays (PKI's `ca_chain`) and maps become JSON text.
    pub result_type: Option<VaultDynamicSecretResultType>,
    /// Accept a response without data. Default: false.
    pub allow_empty_response: Option<bool>,
    /// Retries of calls (generating, renewing, revoking) that fail transiently: unreachable
    /// server, 5xx. Default: none.
    pub retry_settings: Option<RetrySettings>,
    /// The Vault server and how to log in (the same shape as a SecretStore's `vault`).
    pub provider: VaultProvider,
}

/// HTTP method of a dynamic secret request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum VaultDynamicSecretMethod {
    /// Read.
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// Create.
    #[serde(rename = "POST")]
    Post,
    /// Update.
    #[serde(rename = "PUT")]
    Put,
}

/// Which part of a Vault response becomes the generated keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum VaultDynamicSecretResultType {
    /// The response's `data`.
    #[default]
    Data,
    /// The response's `auth` (for engines that return a token).
    Auth,
}
