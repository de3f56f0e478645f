//! One store resolver and one generator resolver, shared by `kuvert run` and `kuvert render`:
//! where the objects come from differs (the controllers' caches and the API server, or the
//! manifests read), what is done with them does not — the ClusterSecretStore admission, the
//! provider's validation and login, the generator's validation.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::admission;
use kuvert_core::api::{ClusterSecretStoreCondition, SecretStoreRef, SecretStoreSpec};
use kuvert_core::engine::StoreError;
use kuvert_core::generator::{
    GenerateError, Generator, GeneratorContext, GeneratorError, GeneratorSpec, Kind,
};
use kuvert_core::provider::{KubeAccess, ProviderError, SecretsClient, StoreContext};
use kuvert_core::store_key::StoreKey;

use crate::generators::Generators;
use crate::providers::Registry;

/// A store object as a resolver needs it.
pub struct FoundStore {
    /// Its spec (a ClusterSecretStore's inner store spec).
    pub spec: SecretStoreSpec,
    /// A ClusterSecretStore's `conditions` (empty for a SecretStore).
    pub conditions: Vec<ClusterSecretStoreCondition>,
    /// Its `metadata.generation` (0 where there is none).
    pub generation: i64,
}

/// Where store objects and namespace labels come from.
#[async_trait]
pub trait StoreObjects: Send + Sync {
    /// The store `key` names; `Ok(None)`: there is none.
    fn store(&self, key: &StoreKey) -> Result<Option<FoundStore>, StoreError>;
    /// The labels of `namespace`, for conditions selecting namespaces by label.
    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, StoreError>;
}

/// The store `store_ref` names from `namespace`, checked to admit that namespace.
pub async fn lookup(
    objects: &dyn StoreObjects,
    namespace: &str,
    store_ref: &SecretStoreRef,
) -> Result<(StoreKey, FoundStore), StoreError> {
    let key = StoreKey::of(namespace, store_ref);
    let found = objects.store(&key)?.ok_or_else(|| StoreError::NotFound {
        store: key.display(),
    })?;
    let conditions = &found.conditions;
    let labels = if admission::needs_labels(conditions) {
        objects.namespace_labels(namespace).await?
    } else {
        BTreeMap::new()
    };
    if !admission::admits(conditions, namespace, &labels) {
        return Err(StoreError::NotAllowed {
            store: key.display(),
            namespace: namespace.to_owned(),
        });
    }
    Ok((key, found))
}

/// A logged-in client of the store `key` with `spec`, used from `namespace`, and its
/// provider's name (the metric label).
pub async fn connect(
    registry: &Registry,
    kube: &dyn KubeAccess,
    key: &StoreKey,
    spec: &SecretStoreSpec,
    namespace: Option<&str>,
) -> Result<(&'static str, Arc<dyn SecretsClient>), ProviderError> {
    let store = StoreContext {
        kind: key.kind,
        name: &key.name,
        namespace: (!key.namespace.is_empty()).then_some(key.namespace.as_str()),
    };
    let provider = registry.provider(&spec.provider);
    provider.validate(&store)?;
    let client = provider.client(&store, namespace, kube).await?;
    Ok((spec.provider.name(), client))
}

/// Where generator objects come from.
#[async_trait]
pub trait GeneratorObjects: Send + Sync {
    /// The spec of the generator of `kind` named `name` in `namespace`; `Ok(None)`: none.
    async fn spec(
        &self,
        namespace: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Option<GeneratorSpec>, GenerateError>;
    /// Refuses a generator this kuvert does not serve (another controller class).
    fn check_serves(&self, spec: &GeneratorSpec) -> Result<(), GenerateError>;
}

/// The generator of `kind` named `name` in `namespace`, validated and ready to call, with its
/// display name.
pub async fn generator(
    kinds: &Generators,
    objects: &dyn GeneratorObjects,
    kube: &dyn KubeAccess,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<(String, Arc<dyn Generator>), GeneratorError> {
    let display = kuvert_core::generator::display_name(kind, namespace, name);
    let fail = |source| GeneratorError::Generator {
        generator: display.clone(),
        source,
    };
    let Some(spec) = objects.spec(namespace, kind, name).await.map_err(fail)? else {
        return Err(GeneratorError::NotFound { generator: display });
    };
    objects.check_serves(&spec).map_err(fail)?;
    let implementation = kinds.kind(&spec);
    let context = GeneratorContext {
        kind,
        name,
        namespace,
    };
    implementation.validate(&context).map_err(fail)?;
    let generator = implementation
        .generator(&context, kube)
        .await
        .map_err(fail)?;
    Ok((display, generator))
}
