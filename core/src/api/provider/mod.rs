//! The store provider union: which external store a SecretStore talks to.
//!
//! Adding a provider starts here: one spec struct in its own module and one variant below.

mod fake;
mod kubernetes;
mod vault;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use fake::*;
pub use kubernetes::*;
pub use vault::*;

/// The external store: exactly one provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::large_enum_variant)] // one per store, read-mostly: boxing would only add noise
pub enum ProviderSpec {
    /// HashiCorp Vault or OpenBao (KV secrets engine).
    Vault(VaultProvider),
    /// Secrets of a Kubernetes cluster (this one or another).
    Kubernetes(KubernetesProvider),
    /// Static data written in the store itself.
    Fake(FakeProvider),
}

impl ProviderSpec {
    /// The provider's name as written in YAML (`vault`, `kubernetes`, `fake`); also the metric label.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderSpec::Vault(_) => "vault",
            ProviderSpec::Kubernetes(_) => "kubernetes",
            ProviderSpec::Fake(_) => "fake",
        }
    }
}
