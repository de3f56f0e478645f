//! The `Fake` generator: returns the data written in its spec, the same on every run.
//!
//! For tests and demos (ESO has the same kind): it shows how an ExternalSecret uses a generator
//! without any randomness or store, so what the operator does with generated values — keeping
//! them stable, rebuilding the Secret from them — can be checked exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::generator::{
    Generated, Generator, GeneratorContext, GeneratorKind, GeneratorSpec,
};
use kuvert_core::provider::{KubeAccess, ProviderError};
use kuvert_core::secret::SecretBytes;

/// `GeneratorKind` for `Fake`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeKind;

#[async_trait]
impl GeneratorKind for FakeKind {
    fn kind(&self) -> &'static str {
        "Fake"
    }

    fn validate(&self, generator: &GeneratorContext<'_>) -> Result<(), ProviderError> {
        data(generator).map(|_| ())
    }

    async fn generator(
        &self,
        generator: &GeneratorContext<'_>,
        _kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, ProviderError> {
        Ok(Arc::new(FakeGenerator {
            values: data(generator)?
                .iter()
                .map(|(k, v)| (k.clone(), SecretBytes::from(v.as_str())))
                .collect(),
        }))
    }
}

fn data<'a>(
    generator: &GeneratorContext<'a>,
) -> Result<&'a BTreeMap<String, String>, ProviderError> {
    match generator.spec {
        GeneratorSpec::Fake(spec) => Ok(&spec.data),
        other => Err(ProviderError::InvalidSpec {
            field: "kind".to_owned(),
            message: format!("the Fake generator cannot serve a {}", other.kind()),
        }),
    }
}

/// One `Fake` object: its data.
pub struct FakeGenerator {
    values: BTreeMap<String, SecretBytes>,
}

#[async_trait]
impl Generator for FakeGenerator {
    async fn generate(&self) -> Result<Generated, ProviderError> {
        Ok(Generated {
            values: self.values.clone(),
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use kuvert_core::api::{FakeSpec, UuidSpec};
    use kuvert_core::memory::MemoryKube;

    use super::*;

    #[test]
    fn a_fake_generator_returns_its_data_on_every_run() {
        let spec = GeneratorSpec::Fake(FakeSpec {
            controller: None,
            data: [
                ("user".to_owned(), "app".to_owned()),
                ("pass".to_owned(), "s3cret".to_owned()),
            ]
            .into(),
        });
        let ctx = GeneratorContext {
            name: "f",
            namespace: "apps",
            spec: &spec,
        };
        let generator = block_on(FakeKind.generator(&ctx, &MemoryKube::default())).unwrap();
        for _ in 0..2 {
            let got = block_on(generator.generate()).unwrap();
            assert_eq!(got.values["user"].expose(), b"app");
            assert_eq!(got.values["pass"].expose(), b"s3cret");
            assert_eq!(got.values.len(), 2);
            assert_eq!(got.lease, None);
        }
        block_on(generator.revoke("anything")).unwrap();
    }

    #[test]
    fn a_fake_kind_refuses_another_kind_of_spec() {
        let spec = GeneratorSpec::Uuid(UuidSpec {});
        let ctx = GeneratorContext {
            name: "f",
            namespace: "apps",
            spec: &spec,
        };
        assert_eq!(
            FakeKind.validate(&ctx).unwrap_err().to_string(),
            "invalid store spec: kind: the Fake generator cannot serve a UUID"
        );
    }
}
