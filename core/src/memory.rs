//! [`KubeAccess`] over objects held in memory: what `kuvert render` and tests use instead of a
//! cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::provider::{KubeAccess, KubeReadError};
use crate::secret::SecretBytes;

/// Secrets, ConfigMaps and ServiceAccount tokens by `(namespace, name)`.
#[derive(Clone, Debug, Default)]
pub struct MemoryKube {
    secrets: BTreeMap<(String, String), BTreeMap<String, SecretBytes>>,
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    tokens: BTreeMap<(String, String), SecretBytes>,
}

impl MemoryKube {
    /// An empty set of objects.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a Secret (`data` and `stringData` both count; namespace default `default`).
    pub fn add_secret(&mut self, secret: &Secret) {
        let mut data: BTreeMap<String, SecretBytes> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), SecretBytes::new(v.0.clone())))
            .collect();
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), SecretBytes::from(v.as_str()));
        }
        self.secrets.insert(key_of(&secret.metadata), data);
    }

    /// Adds a ConfigMap (namespace default `default`).
    pub fn add_config_map(&mut self, config_map: &ConfigMap) {
        let data = config_map.data.clone().unwrap_or_default();
        self.config_maps.insert(key_of(&config_map.metadata), data);
    }

    /// Sets the token handed out for a ServiceAccount.
    pub fn set_service_account_token(&mut self, namespace: &str, name: &str, token: SecretBytes) {
        self.tokens
            .insert((namespace.to_owned(), name.to_owned()), token);
    }
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        meta.name.clone().unwrap_or_default(),
    )
}

fn not_found(kind: &str, namespace: &str, name: &str) -> KubeReadError {
    KubeReadError::NotFound {
        object: format!("{kind} {namespace}/{name}"),
    }
}

#[async_trait]
impl KubeAccess for MemoryKube {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, SecretBytes>, KubeReadError> {
        self.secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found("Secret", namespace, name))
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, KubeReadError> {
        self.config_maps
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found("ConfigMap", namespace, name))
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        _audiences: &[String],
        _expiration: Duration,
    ) -> Result<SecretBytes, KubeReadError> {
        self.tokens
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found("ServiceAccount token for", namespace, name))
    }
}
