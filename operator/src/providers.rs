//! The provider registry: which crate serves which `spec.provider`.
//!
//! Adding a provider to kuvert is one line in [`Registry::builtin`] (see `providers/README.md`).
//! Providers are created once per process, so state they keep — Vault's token cache — is shared
//! by every store and ExternalSecret (and, through [`Registry::vault_cache`], with the
//! VaultDynamicSecret generator).

use std::sync::Arc;

use kuvert_core::api::ProviderSpec;
use kuvert_core::provider::{Provider, ProviderError};
use kuvert_provider_vault::ConnectionCache;

/// Every provider this build of kuvert knows, by name.
#[derive(Clone)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    vault_cache: Arc<ConnectionCache>,
}

impl Registry {
    /// The providers built into kuvert.
    pub fn builtin() -> Self {
        let vault_cache = Arc::new(ConnectionCache::new());
        Registry {
            providers: vec![
                Arc::new(kuvert_provider_kubernetes::KubernetesProvider),
                Arc::new(kuvert_provider_fake::FakeStoreProvider),
                Arc::new(kuvert_provider_vault::VaultProvider::with_cache(
                    vault_cache.clone(),
                )),
            ],
            vault_cache,
        }
    }

    /// The Vault provider's connection cache: give it to the VaultDynamicSecret generator
    /// ([`crate::generators::Generators::builtin`]) so a store and a generator with the same
    /// server and identity share one login. [`Registry::shutdown`] releases it.
    pub fn vault_cache(&self) -> &Arc<ConnectionCache> {
        &self.vault_cache
    }

    /// The provider serving a store spec.
    pub fn provider(&self, spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ProviderError> {
        self.providers
            .iter()
            .find(|p| p.name() == spec.name())
            .cloned()
            .ok_or_else(|| ProviderError::InvalidSpec {
                field: "spec.provider".to_owned(),
                message: format!("this build of kuvert has no {} provider", spec.name()),
            })
    }

    /// Lets every provider release what it holds outside the process (Vault revokes the tokens
    /// it logged in for); call once before exiting.
    pub async fn shutdown(&self) {
        for provider in &self.providers {
            provider.shutdown().await;
        }
    }
}
