//! The `kubernetes` provider's store spec: Secrets of another cluster or namespace.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::api::common::{CaProvider, SecretKeySelector, ServiceAccountSelector};

/// Reads Secrets from one namespace of a Kubernetes cluster.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesProvider {
    /// The namespace read from; the provider never touches any other. Default: `default`.
    pub remote_namespace: Option<String>,
    /// The API server. Default: the cluster kuvert runs in.
    pub server: Option<KubernetesServer>,
    /// Credentials. One of `auth` and `authRef` is required.
    pub auth: Option<KubernetesAuth>,
    /// A Secret key holding a kubeconfig, instead of `server` and `auth`.
    pub auth_ref: Option<SecretKeySelector>,
}

/// The remote API server.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServer {
    /// URL of the API server. Default: `https://kubernetes.default`.
    pub url: Option<String>,
    /// Base64-encoded PEM CA bundle verifying the server.
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap key holding the CA bundle.
    pub ca_provider: Option<CaProvider>,
}

/// How kuvert authenticates to the remote API server: exactly one method.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KubernetesAuth {
    /// A bearer token read from a Secret.
    Token(KubernetesTokenAuth),
    /// A client certificate and key read from Secrets.
    Cert(KubernetesCertAuth),
    /// A token requested for a ServiceAccount in the store's namespace.
    ServiceAccount(ServiceAccountSelector),
}

/// Bearer token authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesTokenAuth {
    /// A Secret key holding the token.
    pub bearer_token: SecretKeySelector,
}

/// Client certificate authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCertAuth {
    /// A Secret key holding the PEM client certificate.
    pub client_cert: SecretKeySelector,
    /// A Secret key holding the PEM private key.
    pub client_key: SecretKeySelector,
}
