//! Fixtures shared by the vault provider's tests: an OpenBao server, Secrets in memory, and
//! store specs.

#![allow(dead_code)]

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kuvert_core::api::{SecretKeySelector, SecretStoreKind, VaultAuth, VaultProvider as VaultSpec};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{GetRequest, Provider, ProviderError, SecretsClient, StoreContext};
use kuvert_provider_vault::VaultProvider;
pub use kuvert_testkit::OpenBao;

/// The namespace of the SecretStore in these tests.
pub const NS: &str = "apps";

/// A Secret in [`NS`] with string data.
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    kuvert_testkit::string_secret(NS, name, data)
}

/// A selector of key `key` of Secret `name`.
pub fn key_ref(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.to_owned(),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A spec for `server`, mount `secret` (KV v2), logging in with `auth`.
pub fn spec(server: &str, auth: VaultAuth) -> VaultSpec {
    VaultSpec {
        server: server.to_owned(),
        path: Some("secret".to_owned()),
        auth,
        ..VaultSpec::default()
    }
}

/// A spec with the root token of `bao`, read from the Secret `vault-token` (which `kube` gets).
pub fn root_spec(bao: &OpenBao, kube: &mut MemoryKube) -> VaultSpec {
    kube.add_secret(&secret("vault-token", &[("token", bao.root_token())]));
    spec(
        bao.addr(),
        VaultAuth::TokenSecretRef(key_ref("vault-token", "token")),
    )
}

/// A client of the SecretStore `NS/vault` with `spec`.
pub async fn client(
    provider: &VaultProvider,
    spec: &VaultSpec,
    kube: &MemoryKube,
) -> Result<Arc<dyn SecretsClient>, ProviderError> {
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: "vault",
        namespace: Some(NS),
    };
    provider.validate(&store, spec)?;
    provider.client(&store, spec, Some(NS), kube).await
}

/// Reads `key` (current version), returning the value as text.
pub async fn get_text(client: &dyn SecretsClient, key: &str) -> Result<String, ProviderError> {
    let secret = client
        .get(&GetRequest {
            key: key.to_owned(),
            ..GetRequest::default()
        })
        .await?;
    Ok(String::from_utf8(secret.value.into_inner()).expect("utf-8"))
}

/// Parses JSON text.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("json")
}

/// The error of making a client of `spec`; panics if it succeeds.
pub async fn client_err(
    provider: &VaultProvider,
    spec: &VaultSpec,
    kube: &MemoryKube,
) -> ProviderError {
    match client(provider, spec, kube).await {
        Ok(_) => panic!("expected the client to fail"),
        Err(e) => e,
    }
}
