//! The fake provider keeps the provider contract (`kuvert_core::provider::conformance`): the
//! reference a new provider's `tests/conformance.rs` copies.

use std::sync::Arc;

use async_trait::async_trait;
use futures::executor::block_on;
use kuvert_core::api::{FakeProvider, FakeProviderData, SecretStoreKind};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::conformance::{self, Features, Harness, Seed};
use kuvert_core::provider::{Provider, SecretsClient, StoreContext};
use kuvert_provider_fake::FakeStoreProvider;

/// The fake store's data lives in its spec: each seed version is one entry.
struct Fake;

#[async_trait]
impl Harness for Fake {
    fn features(&self) -> Features {
        Features {
            versions: true,
            paths: true,
            // The fake store has no credentials to refuse.
            auth: false,
            push: true,
        }
    }

    async fn client(&self, seeds: &[Seed]) -> Arc<dyn SecretsClient> {
        let mut data = Vec::new();
        for seed in seeds {
            let versioned = seed.versions.len() > 1;
            for (i, values) in seed.versions.iter().enumerate() {
                data.push(FakeProviderData {
                    key: seed.key.clone(),
                    version: versioned.then(|| (i + 1).to_string()),
                    value_map: values.clone(),
                    tags: seed.tags.clone(),
                    ..FakeProviderData::default()
                });
            }
        }
        let store = StoreContext {
            kind: SecretStoreKind::SecretStore,
            name: "fake",
            namespace: Some("default"),
        };
        let spec = FakeProvider { data };
        FakeStoreProvider.validate(&store, &spec).unwrap();
        FakeStoreProvider
            .client(&store, &spec, Some("default"), &MemoryKube::new())
            .await
            .unwrap()
    }
}

#[test]
fn the_fake_provider_keeps_the_provider_contract() {
    block_on(conformance::run(&Fake));
}
