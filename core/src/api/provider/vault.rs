//! The `vault` provider's store spec (HashiCorp Vault and OpenBao), shaped like ESO's.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::{CaProvider, SecretKeySelector, ServiceAccountSelector};

/// Connection and authentication for a Vault or OpenBao server.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    /// Address of the server, e.g. `https://vault.example.com:8200`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub server: String,
    /// Mount path of the KV secrets engine, e.g. `secret`. Without it, `remoteRef.key` must carry
    /// the mount as its first segment.
    pub path: Option<String>,
    /// Version of the KV secrets engine. Default: `v2`.
    pub version: Option<VaultKvVersion>,
    /// Vault Enterprise / OpenBao namespace sent as `X-Vault-Namespace` on every request.
    pub namespace: Option<String>,
    /// Base64-encoded PEM CA bundle used to verify the server's certificate.
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap key holding the CA bundle, instead of `caBundle`.
    pub ca_provider: Option<CaProvider>,
    /// Client certificate presented on every TLS connection (mutual TLS).
    pub tls: Option<VaultClientTls>,
    /// Sends `X-Vault-Index` to read-your-writes on performance standbys. Default: false.
    pub read_your_writes: Option<bool>,
    /// Sends `X-Vault-Inconsistent: forward-active-node` so standbys forward stale reads.
    /// Default: false.
    pub forward_inconsistent: Option<bool>,
    /// Extra HTTP headers sent on every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Check-and-set behaviour of writes (PushSecret).
    pub check_and_set: Option<VaultCheckAndSet>,
    /// How kuvert logs in. Required.
    pub auth: VaultAuth,
}

/// KV secrets engine version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::api::common::field_docs_only)]
pub enum VaultKvVersion {
    /// KV version 1: no versions, no metadata.
    #[serde(rename = "v1")]
    V1,
    /// KV version 2: versioned secrets with custom metadata.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// Client certificate and key for mutual TLS with the server.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientTls {
    /// Secret holding the PEM client certificate (key default `tls.crt`).
    pub cert_secret_ref: Option<SecretKeySelector>,
    /// Secret holding the PEM private key (key default `tls.key`).
    pub key_secret_ref: Option<SecretKeySelector>,
}

/// Check-and-set settings for KV v2 writes.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct VaultCheckAndSet {
    /// Always write with `cas`, so a concurrent change is never overwritten. Default: true.
    pub required: Option<bool>,
}

/// How kuvert authenticates to Vault: exactly one method.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuth {
    /// A static token read from a Secret.
    TokenSecretRef(SecretKeySelector),
    /// The AppRole method.
    AppRole(VaultAppRole),
    /// The Kubernetes method: a ServiceAccount token exchanged for a Vault token.
    Kubernetes(VaultKubernetesAuth),
    /// The JWT/OIDC method with a JWT from a Secret or a ServiceAccount token.
    Jwt(VaultJwtAuth),
    /// The userpass method.
    UserPass(VaultUserPassAuth),
    /// The LDAP method.
    Ldap(VaultLdapAuth),
    /// The TLS certificate method.
    Cert(VaultCertAuth),
}

impl Default for VaultAuth {
    fn default() -> Self {
        VaultAuth::TokenSecretRef(SecretKeySelector::default())
    }
}

/// AppRole login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Mount path of the AppRole method. Default: `approle`.
    pub path: Option<String>,
    /// The role ID, inline. One of `roleId` and `roleRef` is required.
    pub role_id: Option<String>,
    /// A Secret key holding the role ID.
    pub role_ref: Option<SecretKeySelector>,
    /// A Secret key holding the secret ID.
    pub secret_ref: SecretKeySelector,
}

/// Kubernetes auth login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesAuth {
    /// Mount path of the Kubernetes method. Default: `kubernetes`.
    pub mount_path: Option<String>,
    /// Vault role to log in as.
    pub role: String,
    /// ServiceAccount whose token is requested (TokenRequest API) and presented. Default when
    /// neither this nor `secretRef` is set: the operator's own ServiceAccount token.
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// A Secret key holding a ServiceAccount token, instead of requesting one.
    pub secret_ref: Option<SecretKeySelector>,
}

/// JWT/OIDC login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultJwtAuth {
    /// Mount path of the JWT method. Default: `jwt`.
    pub path: Option<String>,
    /// Vault role to log in as.
    pub role: Option<String>,
    /// A Secret key holding the JWT.
    pub secret_ref: Option<SecretKeySelector>,
    /// Request a ServiceAccount token and present it as the JWT, instead of `secretRef`.
    pub kubernetes_service_account_token: Option<VaultKubernetesServiceAccountTokenAuth>,
}

/// A ServiceAccount token requested for JWT login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesServiceAccountTokenAuth {
    /// The ServiceAccount.
    pub service_account_ref: ServiceAccountSelector,
    /// Audiences of the token. Default: `vault`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Lifetime of the token in seconds. Default: 600.
    pub expiration_seconds: Option<i64>,
}

/// Userpass login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultUserPassAuth {
    /// Mount path of the userpass method. Default: `userpass`.
    pub path: Option<String>,
    /// The user name.
    pub username: String,
    /// A Secret key holding the password.
    pub secret_ref: SecretKeySelector,
}

/// LDAP login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultLdapAuth {
    /// Mount path of the LDAP method. Default: `ldap`.
    pub path: Option<String>,
    /// The user name.
    pub username: String,
    /// A Secret key holding the password.
    pub secret_ref: SecretKeySelector,
}

/// TLS certificate login.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCertAuth {
    /// Mount path of the cert method. Default: `cert`.
    pub path: Option<String>,
    /// Name of the certificate role to log in as. Default: any role that matches.
    pub name: Option<String>,
    /// A Secret key holding the PEM client certificate.
    pub client_cert: SecretKeySelector,
    /// A Secret key holding the PEM private key.
    pub secret_ref: SecretKeySelector,
}
