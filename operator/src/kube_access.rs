//! [`KubeAccess`] through kube-rs: what providers read from the cluster the operator runs in.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};
use kuvert_core::provider::{KubeAccess, KubeReadError};
use kuvert_core::secret::SecretBytes;

/// Reads Secrets and ConfigMaps and requests ServiceAccount tokens with the operator's client.
#[derive(Clone)]
pub struct ClusterAccess {
    client: Client,
}

impl ClusterAccess {
    /// Wraps the operator's client.
    pub fn new(client: Client) -> Self {
        ClusterAccess { client }
    }

    /// All keys of a Secret, and the `resourceVersion` read.
    pub async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, SecretBytes>, Option<String>), KubeReadError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| classify(format!("Secret {namespace}/{name}"), e))?;
        let mut data: BTreeMap<String, SecretBytes> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v.0)))
            .collect();
        for (k, v) in secret.string_data.unwrap_or_default() {
            data.insert(k, SecretBytes::from(v));
        }
        Ok((data, secret.metadata.resource_version))
    }

    /// All keys of a ConfigMap, and the `resourceVersion` read.
    pub async fn read_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, String>, Option<String>), KubeReadError> {
        let config_map = Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| classify(format!("ConfigMap {namespace}/{name}"), e))?;
        Ok((
            config_map.data.unwrap_or_default(),
            config_map.metadata.resource_version,
        ))
    }
}

fn classify(object: String, error: kube::Error) -> KubeReadError {
    match error {
        kube::Error::Api(status) if status.code == 404 => KubeReadError::NotFound { object },
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            KubeReadError::Forbidden {
                object,
                message: status.message,
            }
        }
        other => KubeReadError::Unavailable {
            object,
            message: "the Kubernetes API call failed".to_owned(),
            source: Some(Box::new(other)),
        },
    }
}

#[async_trait]
impl KubeAccess for ClusterAccess {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, SecretBytes>, KubeReadError> {
        self.read_secret(namespace, name)
            .await
            .map(|(data, _)| data)
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, KubeReadError> {
        self.read_config_map(namespace, name)
            .await
            .map(|(data, _)| data)
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration: Duration,
    ) -> Result<SecretBytes, KubeReadError> {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
                expiration_seconds: Some(expiration.as_secs() as i64),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let what = format!("token for ServiceAccount {namespace}/{name}");
        let issued = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| classify(what.clone(), e))?;
        issued
            .status
            .and_then(|s| s.token)
            .map(SecretBytes::from)
            .ok_or_else(|| KubeReadError::Unavailable {
                object: what,
                message: "the API server returned no token".to_owned(),
                source: None,
            })
    }
}
