//! The `kubernetes` provider: Secrets in one namespace of a Kubernetes cluster — another
//! cluster, or another namespace of this one — as a secret store.
//!
//! The provider only ever touches the store's `remoteNamespace`: a remote key is a Secret name,
//! validated as one, so no key can address another namespace or another resource.
//!
//! Shape of values (the contract of [`SecretsClient`]): a Secret is returned as a JSON object
//! of its keys (values as UTF-8 text); `property` and `dataFrom.extract` then work on it like on
//! any provider's JSON. Metadata reads return `{"labels": {...}, "annotations": {...}}`.

mod client;
mod config;
mod errors;

use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::provider::{KubeAccess, Provider, ProviderError, SecretsClient, StoreContext};

pub use client::KubernetesClient;

/// The default remote namespace, as in ESO.
pub const DEFAULT_REMOTE_NAMESPACE: &str = "default";

/// Label marking a remote Secret written by a PushSecret; its value is fixed so selectors work.
pub const PUSHED_LABEL: &str = "kuvert.io/pushed";
/// Annotation naming the PushSecret (`namespace/name`) that owns a remote Secret.
pub const PUSHED_BY_ANNOTATION: &str = "kuvert.io/pushed-by";

/// The provider: stateless; each store's client holds its own kube-rs `Client`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KubernetesProvider;

#[async_trait]
impl Provider for KubernetesProvider {
    type Spec = kuvert_core::api::KubernetesProvider;

    fn validate(&self, store: &StoreContext<'_>, spec: &Self::Spec) -> Result<(), ProviderError> {
        config::validate(store, spec)
    }

    async fn client(
        &self,
        store: &StoreContext<'_>,
        spec: &Self::Spec,
        namespace: Option<&str>,
        kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        config::validate(store, spec)?;
        let client = config::connect(store, spec, namespace, kube).await?;
        let remote_namespace = spec
            .remote_namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_REMOTE_NAMESPACE.to_owned());
        Ok(Arc::new(KubernetesClient::new(client, remote_namespace)))
    }
}
