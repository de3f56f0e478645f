//! The `Fake` generator: returns the data written in its spec, the same on every run.
//!
//! For tests and demos (ESO has the same kind): it shows how an ExternalSecret uses a generator
//! without any randomness or store, so what the operator does with generated values — keeping
//! them stable, rebuilding the Secret from them — can be checked exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::api::FakeSpec;
use kuvert_core::generator::{
    GenerateError, Generated, Generator, GeneratorContext, GeneratorKind,
};
use kuvert_core::provider::KubeAccess;
use kuvert_core::secret::SecretBytes;

/// `GeneratorKind` for `Fake`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeKind;

#[async_trait]
impl GeneratorKind for FakeKind {
    type Spec = FakeSpec;

    /// Any data is valid.
    fn validate(&self, _: &GeneratorContext<'_>, _: &FakeSpec) -> Result<(), GenerateError> {
        Ok(())
    }

    async fn generator(
        &self,
        _generator: &GeneratorContext<'_>,
        spec: &FakeSpec,
        _kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError> {
        Ok(Arc::new(FakeGenerator {
            values: spec
                .data
                .iter()
                .map(|(k, v)| (k.clone(), SecretBytes::from(v.as_str())))
                .collect(),
        }))
    }
}

/// One `Fake` object: its data.
pub struct FakeGenerator {
    values: BTreeMap<String, SecretBytes>,
}

#[async_trait]
impl Generator for FakeGenerator {
    async fn generate(&self) -> Result<Generated, GenerateError> {
        Ok(Generated {
            values: self.values.clone(),
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use kuvert_core::generator::Kind;
    use kuvert_core::memory::MemoryKube;

    use super::*;

    #[test]
    fn a_fake_generator_returns_its_data_on_every_run() {
        let spec = FakeSpec {
            controller: None,
            data: [
                ("user".to_owned(), "app".to_owned()),
                ("pass".to_owned(), "s3cret".to_owned()),
            ]
            .into(),
        };
        let ctx = GeneratorContext {
            kind: Kind::Fake,
            name: "f",
            namespace: "apps",
        };
        let generator = block_on(FakeKind.generator(&ctx, &spec, &MemoryKube::default())).unwrap();
        for _ in 0..2 {
            let got = block_on(generator.generate()).unwrap();
            assert_eq!(got.values["user"].expose(), b"app");
            assert_eq!(got.values["pass"].expose(), b"s3cret");
            assert_eq!(got.values.len(), 2);
            assert_eq!(got.lease, None);
        }
        block_on(generator.revoke("anything")).unwrap();
    }
}
