//! The provider registry: which crate serves which `spec.provider`.
//!
//! Adding a provider to kuvert is one arm in [`Registry::provider`], whose `match` on
//! [`ProviderSpec`] is exhaustive: a new variant does not compile until it is served here (see
//! `providers/README.md`). Providers are created once per process, so state they keep — Vault's
//! token cache — is shared by every store and ExternalSecret (and, through
//! [`Registry::vault_cache`], with the VaultDynamicSecret generator).

use std::sync::Arc;

use kuvert_core::api::ProviderSpec;
use kuvert_core::provider::{BoundProvider, Provider, bind};
use kuvert_provider_fake::FakeStoreProvider;
use kuvert_provider_kubernetes::KubernetesProvider;
use kuvert_provider_vault::{ConnectionCache, VaultProvider};

/// Every provider this build of kuvert knows, one field each.
#[derive(Clone)]
pub struct Registry {
    vault: VaultProvider,
    kubernetes: KubernetesProvider,
    fake: FakeStoreProvider,
}

impl Registry {
    /// The providers built into kuvert.
    pub fn builtin() -> Self {
        Registry {
            vault: VaultProvider::with_cache(Arc::new(ConnectionCache::new())),
            kubernetes: KubernetesProvider,
            fake: FakeStoreProvider,
        }
    }

    /// The Vault provider's connection cache: give it to the VaultDynamicSecret generator
    /// ([`crate::generators::Generators::builtin`]) so a store and a generator with the same
    /// server and identity share one login. [`Registry::shutdown`] releases it.
    pub fn vault_cache(&self) -> &Arc<ConnectionCache> {
        self.vault.cache()
    }

    /// The provider serving a store spec, with the spec's own variant bound to it.
    pub fn provider<'a>(&'a self, spec: &'a ProviderSpec) -> Box<dyn BoundProvider + 'a> {
        match spec {
            ProviderSpec::Vault(spec) => bind(&self.vault, spec),
            ProviderSpec::Kubernetes(spec) => bind(&self.kubernetes, spec),
            ProviderSpec::Fake(spec) => bind(&self.fake, spec),
        }
    }

    /// Lets every provider release what it holds outside the process (Vault revokes the tokens
    /// it logged in for); call once before exiting.
    pub async fn shutdown(&self) {
        // Destructured so that a provider added to the registry is not forgotten here.
        let Registry {
            vault,
            kubernetes,
            fake,
        } = self;
        vault.shutdown().await;
        kubernetes.shutdown().await;
        fake.shutdown().await;
    }
}
