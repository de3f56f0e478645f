//! The provider registry: which crate serves which `spec.provider`.
//!
//! Adding a provider to kuvert is one line in [`Registry::builtin`] (see `providers/README.md`).
//! Providers are created once per process, so state they keep — Vault's token cache — is shared
//! by every store and ExternalSecret.

use std::sync::Arc;

use kuvert_core::api::ProviderSpec;
use kuvert_core::provider::{Provider, ProviderError};

/// Every provider this build of kuvert knows, by name.
#[derive(Clone)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Registry {
    /// The providers built into kuvert.
    pub fn builtin() -> Self {
        Registry {
            providers: vec![
                Arc::new(kuvert_provider_kubernetes::KubernetesProvider),
                Arc::new(kuvert_provider_fake::FakeStoreProvider),
                Arc::new(kuvert_provider_vault::VaultProvider::new()),
            ],
        }
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
