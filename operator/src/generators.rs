//! The generator registry: which crate serves which generator kind.
//!
//! Adding a generator to kuvert is one line in [`Generators::builtin`] (see
//! `generators/README.md`). Kinds are created once per process, so state they keep — Vault
//! logins — is shared by every ExternalSecret.

use std::sync::Arc;

use kuvert_core::generator::{GeneratorKind, RandomSource};
use kuvert_core::provider::ProviderError;
use kuvert_provider_vault::ConnectionCache;

/// Every generator kind this build of kuvert knows.
#[derive(Clone)]
pub struct Generators {
    kinds: Vec<Arc<dyn GeneratorKind>>,
}

impl Generators {
    /// The generator kinds built into kuvert, drawing randomness from `random` (the operating
    /// system's CSPRNG in production, a seeded source in tests) and logging in to Vault through
    /// `vault_cache` (the Vault provider's, [`crate::providers::Registry::vault_cache`]: one
    /// login serves stores and generators alike; the provider registry's shutdown releases it).
    pub fn builtin(random: Arc<dyn RandomSource>, vault_cache: Arc<ConnectionCache>) -> Self {
        Generators {
            kinds: vec![
                Arc::new(kuvert_generator_random::PasswordKind::new(random.clone())),
                Arc::new(kuvert_generator_random::UuidKind::new(random)),
                Arc::new(kuvert_generator_fake::FakeKind),
                Arc::new(kuvert_generator_vault::VaultDynamicSecretKind::with_cache(
                    vault_cache,
                )),
            ],
        }
    }

    /// The kinds built into kuvert, with the operating system's randomness.
    pub fn system(vault_cache: Arc<ConnectionCache>) -> Self {
        Self::builtin(
            Arc::new(kuvert_generator_random::OsRandom::default()),
            vault_cache,
        )
    }

    /// The implementation of generator kind `kind`.
    pub fn kind(&self, kind: &str) -> Result<Arc<dyn GeneratorKind>, ProviderError> {
        self.kinds
            .iter()
            .find(|k| k.kind() == kind)
            .cloned()
            .ok_or_else(|| ProviderError::InvalidSpec {
                field: "kind".to_owned(),
                message: format!("this build of kuvert has no {kind} generator"),
            })
    }

    /// Lets every kind release what it holds outside the process; call once before exiting.
    pub async fn shutdown(&self) {
        for kind in &self.kinds {
            kind.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_serves_each_builtin_kind_and_names_a_missing_one() {
        let generators = Generators::system(Arc::new(ConnectionCache::new()));
        for kind in ["Password", "UUID", "Fake", "VaultDynamicSecret"] {
            assert_eq!(generators.kind(kind).unwrap().kind(), kind);
        }
        assert_eq!(
            generators.kind("Nope").err().unwrap().to_string(),
            "invalid store spec: kind: this build of kuvert has no Nope generator"
        );
    }
}
