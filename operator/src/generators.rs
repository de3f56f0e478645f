//! The generator registry: which crate serves which generator kind.
//!
//! Adding a generator to kuvert is one arm in [`Generators::kind`], whose `match` on
//! [`GeneratorSpec`] is exhaustive: a new kind does not compile until it is served here (see
//! `generators/README.md`). Kinds are created once per process, so state they keep — Vault
//! logins — is shared by every ExternalSecret.

use std::sync::Arc;

use kuvert_core::generator::{
    BoundGeneratorKind, GeneratorKind, GeneratorSpec, RandomSource, bind,
};
use kuvert_generator_fake::FakeKind;
use kuvert_generator_random::{PasswordKind, UuidKind};
use kuvert_generator_vault::VaultDynamicSecretKind;
use kuvert_provider_vault::ConnectionCache;

/// Every generator kind this build of kuvert knows, one field each.
#[derive(Clone)]
pub struct Generators {
    password: Arc<PasswordKind>,
    uuid: Arc<UuidKind>,
    fake: FakeKind,
    vault_dynamic_secret: VaultDynamicSecretKind,
}

impl Generators {
    /// The generator kinds built into kuvert, drawing randomness from `random` (the operating
    /// system's CSPRNG in production, a seeded source in tests) and logging in to Vault through
    /// `vault_cache` (the Vault provider's, [`crate::providers::Registry::vault_cache`]: one
    /// login serves stores and generators alike; the provider registry's shutdown releases it).
    pub fn builtin(random: Arc<dyn RandomSource>, vault_cache: Arc<ConnectionCache>) -> Self {
        Generators {
            password: Arc::new(PasswordKind::new(random.clone())),
            uuid: Arc::new(UuidKind::new(random)),
            fake: FakeKind,
            vault_dynamic_secret: VaultDynamicSecretKind::with_cache(vault_cache),
        }
    }

    /// The kinds built into kuvert, with the operating system's randomness.
    pub fn system(vault_cache: Arc<ConnectionCache>) -> Self {
        Self::builtin(
            Arc::new(kuvert_generator_random::OsRandom::default()),
            vault_cache,
        )
    }

    /// The kind serving a generator spec, with the spec's own variant bound to it.
    pub fn kind<'a>(&'a self, spec: &'a GeneratorSpec) -> Box<dyn BoundGeneratorKind + 'a> {
        match spec {
            GeneratorSpec::Password(spec) => bind(&*self.password, spec),
            GeneratorSpec::Uuid(spec) => bind(&*self.uuid, spec),
            GeneratorSpec::Fake(spec) => bind(&self.fake, spec),
            GeneratorSpec::VaultDynamicSecret(spec) => bind(&self.vault_dynamic_secret, &**spec),
        }
    }

    /// Lets every kind release what it holds outside the process; call once before exiting.
    pub async fn shutdown(&self) {
        // Destructured so that a kind added to the registry is not forgotten here.
        let Generators {
            password,
            uuid,
            fake,
            vault_dynamic_secret,
        } = self;
        password.shutdown().await;
        uuid.shutdown().await;
        fake.shutdown().await;
        vault_dynamic_secret.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use kuvert_core::generator::{GeneratorContext, Kind};

    use super::*;

    /// The smallest valid spec of each kind.
    fn minimal(kind: Kind) -> serde_json::Value {
        match kind {
            Kind::VaultDynamicSecret => serde_json::json!({
                "path": "database/creds/app",
                "provider": {
                    "server": "https://vault.example:8200",
                    "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}
                }
            }),
            _ => serde_json::json!({}),
        }
    }

    #[test]
    fn the_registry_serves_every_kind_with_its_own_spec() {
        let generators = Generators::system(Arc::new(ConnectionCache::new()));
        for &kind in Kind::ALL {
            let spec = kind.parse_spec(minimal(kind)).unwrap();
            let context = GeneratorContext {
                kind,
                name: "g",
                namespace: "apps",
            };
            generators
                .kind(&spec)
                .validate(&context)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
    }

    #[test]
    fn the_charts_rbac_lets_kuvert_read_every_kind() {
        let plurals: Vec<String> = Kind::ALL.iter().map(|k| k.api_resource().plural).collect();
        for file in ["cluster.yaml", "namespaced.yaml"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/kuvert/files/rbac/");
            let text = std::fs::read_to_string(format!("{path}{file}")).unwrap();
            let rules: Vec<serde_json::Value> = serde_saphyr::from_str(&text).unwrap();
            let readable: Vec<String> = rules
                .iter()
                .filter(|r| r["apiGroups"][0] == kuvert_core::api::GENERATORS_GROUP)
                .filter(|r| r["verbs"].as_array().unwrap().contains(&"get".into()))
                .flat_map(|r| r["resources"].as_array().unwrap().clone())
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(readable, plurals, "{file}");
        }
    }
}
