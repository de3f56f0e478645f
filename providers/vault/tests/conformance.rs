//! The vault provider keeps the provider contract (`kuvert_core::provider::conformance`)
//! against a real OpenBao: KV v2 numbers versions itself, tags are custom metadata.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::api::VaultAuth;
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::conformance::{self, Features, Harness, Seed};
use kuvert_core::provider::{ProviderError, SecretsClient};
use kuvert_provider_vault::VaultProvider;
use support::*;

struct Vault {
    bao: OpenBao,
}

#[async_trait]
impl Harness for Vault {
    fn features(&self) -> Features {
        Features {
            versions: true,
            paths: true,
            auth: true,
            push: true,
        }
    }

    async fn client(&self, seeds: &[Seed]) -> Arc<dyn SecretsClient> {
        for seed in seeds {
            for values in &seed.versions {
                self.bao
                    .kv2_put("secret", &seed.key, serde_json::to_value(values).unwrap())
                    .await;
            }
            if !seed.tags.is_empty() {
                let tags = serde_json::to_value(&seed.tags).unwrap();
                self.bao.kv2_metadata("secret", &seed.key, tags).await;
            }
        }
        let mut kube = MemoryKube::new();
        let spec = root_spec(&self.bao, &mut kube);
        client(&VaultProvider::new(), &spec, &kube).await.unwrap()
    }

    async fn refused(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let mut kube = MemoryKube::new();
        kube.add_secret(&secret(
            "vault-token",
            &[("token", "s.not-a-token-of-this-server")],
        ));
        let spec = spec(
            self.bao.addr(),
            VaultAuth::TokenSecretRef(key_ref("vault-token", "token")),
        );
        client(&VaultProvider::new(), &spec, &kube).await
    }
}

#[tokio::test]
async fn the_vault_provider_keeps_the_provider_contract() {
    let vault = Vault {
        bao: OpenBao::start().await,
    };
    conformance::run(&vault).await;
}
