//! The `Password` and `UUID` generators: random values from a cryptographically secure source.
//!
//! Randomness comes in as a [`RandomSource`]: the operator passes [`OsRandom`] (the operating
//! system's CSPRNG), tests a [`SeededRandom`]. Every random choice is uniform: indexes are drawn
//! by rejection sampling ([`uniform`]), never by a biased `% n`.
//!
//! - [`password`] — `Password`: exact counts of digits and symbols, letters for the rest, no
//!   repeated character unless `allowRepeat`; impossible specs are refused naming the field.
//! - [`uuid`] — `UUID`: a version 4 UUID.

pub mod password;
pub mod uuid;

use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::api::{PasswordSpec, UuidSpec};
use kuvert_core::generator::{
    GenerateError, Generated, Generator, GeneratorContext, GeneratorKind, RandomSource,
};
use kuvert_core::provider::KubeAccess;
use sha2::{Digest, Sha256};

pub use password::PasswordPlan;

/// The operating system's CSPRNG.
#[derive(Debug)]
pub struct OsRandom(ring::rand::SystemRandom);

impl Default for OsRandom {
    fn default() -> Self {
        OsRandom(ring::rand::SystemRandom::new())
    }
}

impl RandomSource for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        // The system source only fails where no OS randomness exists at all; generating
        // guessable passwords then would be worse than stopping.
        ring::rand::SecureRandom::fill(&self.0, dest)
            .expect("the operating system's random source failed");
    }
}

/// A deterministic source for tests: SHA-256 of a seed and a counter. Two sources with the same
/// seed produce the same bytes.
#[derive(Debug)]
pub struct SeededRandom {
    seed: [u8; 32],
    counter: std::sync::Mutex<u64>,
}

impl SeededRandom {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom {
            seed: Sha256::digest(seed.to_le_bytes()).into(),
            counter: std::sync::Mutex::new(0),
        }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in dest.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(counter.to_le_bytes())
                .finalize();
            *counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// A uniform integer in `0..n` (`n > 0`), by rejection sampling of 32-bit draws.
pub fn uniform(random: &dyn RandomSource, n: u32) -> u32 {
    assert!(n > 0, "uniform needs a non-empty range");
    // The largest multiple of n that fits in u32's range; draws at or above it are redrawn.
    let zone = u32::MAX - (u32::MAX % n + 1) % n;
    loop {
        let mut bytes = [0u8; 4];
        random.fill(&mut bytes);
        let draw = u32::from_le_bytes(bytes);
        if draw <= zone {
            return draw % n;
        }
    }
}

/// `GeneratorKind` for `Password`.
pub struct PasswordKind {
    random: Arc<dyn RandomSource>,
}

impl PasswordKind {
    /// Passwords drawn from `random`.
    pub fn new(random: Arc<dyn RandomSource>) -> Self {
        PasswordKind { random }
    }
}

#[async_trait]
impl GeneratorKind for PasswordKind {
    type Spec = PasswordSpec;

    fn validate(&self, _: &GeneratorContext<'_>, spec: &PasswordSpec) -> Result<(), GenerateError> {
        PasswordPlan::new(spec).map(|_| ())
    }

    async fn generator(
        &self,
        _generator: &GeneratorContext<'_>,
        spec: &PasswordSpec,
        _kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError> {
        Ok(Arc::new(PasswordGenerator {
            plan: PasswordPlan::new(spec)?,
            random: self.random.clone(),
        }))
    }
}

/// One `Password` object, ready to generate.
pub struct PasswordGenerator {
    plan: PasswordPlan,
    random: Arc<dyn RandomSource>,
}

#[async_trait]
impl Generator for PasswordGenerator {
    async fn generate(&self) -> Result<Generated, GenerateError> {
        let password = self.plan.generate(self.random.as_ref());
        Ok(Generated {
            values: [("password".to_owned(), password.into())].into(),
            lease: None,
        })
    }
}

/// `GeneratorKind` for `UUID`.
pub struct UuidKind {
    random: Arc<dyn RandomSource>,
}

impl UuidKind {
    /// UUIDs drawn from `random`.
    pub fn new(random: Arc<dyn RandomSource>) -> Self {
        UuidKind { random }
    }
}

#[async_trait]
impl GeneratorKind for UuidKind {
    type Spec = UuidSpec;

    /// A UUID has nothing to configure.
    fn validate(&self, _: &GeneratorContext<'_>, _: &UuidSpec) -> Result<(), GenerateError> {
        Ok(())
    }

    async fn generator(
        &self,
        _generator: &GeneratorContext<'_>,
        _spec: &UuidSpec,
        _kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn Generator>, GenerateError> {
        Ok(Arc::new(UuidGenerator {
            random: self.random.clone(),
        }))
    }
}

/// One `UUID` object, ready to generate.
pub struct UuidGenerator {
    random: Arc<dyn RandomSource>,
}

#[async_trait]
impl Generator for UuidGenerator {
    async fn generate(&self) -> Result<Generated, GenerateError> {
        Ok(Generated {
            values: [("uuid".to_owned(), uuid::v4(self.random.as_ref()).into())].into(),
            lease: None,
        })
    }
}

#[cfg(test)]
mod tests;
