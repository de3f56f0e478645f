//! Reads and writes of Secrets in the remote namespace.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use kuvert_core::api::StoreCapabilities;
use kuvert_core::provider::{
    FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient,
};
use kuvert_core::secret::SecretBytes;
use serde_json::{Map, Value};

use crate::errors::classify;
use crate::{PUSHED_BY_ANNOTATION, PUSHED_LABEL};

/// A client for the Secrets of one remote namespace.
pub struct KubernetesClient {
    client: Client,
    secrets: Api<Secret>,
    namespace: String,
}

impl KubernetesClient {
    /// A client confined to `namespace`.
    pub fn new(client: Client, namespace: String) -> Self {
        KubernetesClient {
            secrets: Api::namespaced(client.clone(), &namespace),
            client,
            namespace,
        }
    }

    fn what(&self, name: &str) -> String {
        format!("Secret {}/{name}", self.namespace)
    }

    /// Checks a remote key is a Secret name, so it cannot address anything else.
    fn secret_name<'k>(&self, key: &'k str) -> Result<&'k str, ProviderError> {
        if is_dns_subdomain(key) {
            Ok(key)
        } else {
            Err(ProviderError::InvalidSpec {
                field: "remoteRef.key".to_owned(),
                message: format!(
                    "{key:?} is not a Secret name: the kubernetes provider reads Secrets of namespace {:?} by name only",
                    self.namespace
                ),
            })
        }
    }

    async fn read(&self, name: &str) -> Result<Secret, ProviderError> {
        self.secrets
            .get(name)
            .await
            .map_err(|e| classify(&self.what(name), e))
    }

    async fn can(&self, verb: &str) -> Result<bool, ProviderError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some(verb.to_owned()),
                    resource: Some("secrets".to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| classify("SelfSubjectAccessReview", e))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

/// A Secret's data as the JSON object the engine reads.
fn as_json(name: &str, secret: &Secret) -> Result<SecretBytes, ProviderError> {
    let mut map = Map::new();
    for (key, value) in secret.data.iter().flatten() {
        let text = String::from_utf8(value.0.clone()).map_err(|_| ProviderError::InvalidSpec {
            field: "remoteRef.key".to_owned(),
            message: format!(
                "key {key:?} of Secret {name} is binary; only text values can be read"
            ),
        })?;
        map.insert(key.clone(), Value::String(text));
    }
    Ok(SecretBytes::new(
        serde_json::to_vec(&map).expect("a map serialises"),
    ))
}

fn metadata_json(secret: &Secret) -> SecretBytes {
    let value = serde_json::json!({
        "labels": secret.metadata.labels.clone().unwrap_or_default(),
        "annotations": secret.metadata.annotations.clone().unwrap_or_default(),
    });
    SecretBytes::new(serde_json::to_vec(&value).expect("a map serialises"))
}

fn remote(secret: &Secret, value: SecretBytes) -> RemoteSecret {
    RemoteSecret {
        value,
        version: secret.metadata.resource_version.clone(),
    }
}

#[async_trait]
impl SecretsClient for KubernetesClient {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        let name = self.secret_name(&request.key)?;
        if let Some(version) = &request.version {
            return Err(ProviderError::InvalidSpec {
                field: "remoteRef.version".to_owned(),
                message: format!("Secrets are not versioned; remove version {version:?}"),
            });
        }
        let secret = self.read(name).await?;
        let value = if request.metadata {
            metadata_json(&secret)
        } else {
            as_json(name, &secret)?
        };
        Ok(remote(&secret, value))
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
        if let Some(path) = &request.path {
            return Err(ProviderError::InvalidSpec {
                field: "find.path".to_owned(),
                message: format!(
                    "Secrets have no paths; remove path {path:?} and use name or tags"
                ),
            });
        }
        let name = request.name_regexp.as_ref();
        let selector = request
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = self
            .secrets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| classify(&format!("Secrets of namespace {}", self.namespace), e))?;
        let mut found = BTreeMap::new();
        for secret in list.items {
            let secret_name = secret.metadata.name.clone().unwrap_or_default();
            if name.as_ref().is_some_and(|re| !re.is_match(&secret_name)) {
                continue;
            }
            let value = as_json(&secret_name, &secret)?;
            found.insert(secret_name, remote(&secret, value));
        }
        Ok(found)
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        let read = self.can("get").await?;
        let write = self.can("update").await? && self.can("create").await?;
        match (read, write) {
            (true, true) => Ok(StoreCapabilities::ReadWrite),
            (true, false) => Ok(StoreCapabilities::ReadOnly),
            (false, true) => Ok(StoreCapabilities::WriteOnly),
            (false, false) => Err(ProviderError::Forbidden {
                message: format!(
                    "the credentials may neither read nor write Secrets in namespace {}",
                    self.namespace
                ),
            }),
        }
    }

    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let name = self.secret_name(&request.key)?;
        let existing = match self.read(name).await {
            Ok(secret) => Some(secret),
            Err(ProviderError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(secret) = &existing {
            ensure_owned(secret, &self.what(name), &request.owner)?;
        }
        let mut data = existing
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        match &request.property {
            Some(property) => {
                data.insert(
                    property.clone(),
                    ByteString(request.value.expose().to_vec()),
                );
            }
            None => {
                let map: BTreeMap<String, Value> = serde_json::from_slice(request.value.expose())
                    .map_err(|_| ProviderError::InvalidSpec {
                    field: "remoteRef.property".to_owned(),
                    message: "without a property the pushed value must be a JSON object of keys"
                        .to_owned(),
                })?;
                data = map
                    .into_iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, ByteString(text.into_bytes()))
                    })
                    .collect();
            }
        }
        if existing.as_ref().and_then(|s| s.data.as_ref()) == Some(&data) {
            // Owned (checked above) and holding these values: nothing to write.
            return Ok(());
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(self.namespace.clone()),
                labels: Some([(PUSHED_LABEL.to_owned(), "true".to_owned())].into()),
                annotations: Some(
                    [(PUSHED_BY_ANNOTATION.to_owned(), request.owner.clone())].into(),
                ),
                resource_version: existing
                    .as_ref()
                    .and_then(|s| s.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            type_: existing.as_ref().and_then(|s| s.type_.clone()),
            ..Secret::default()
        };
        let result = match existing {
            // The resourceVersion makes this a compare-and-swap: a concurrent writer gets 409.
            Some(_) => {
                self.secrets
                    .replace(name, &PostParams::default(), &secret)
                    .await
            }
            None => self.secrets.create(&PostParams::default(), &secret).await,
        };
        result
            .map(|_| ())
            .map_err(|e| classify(&self.what(name), e))
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let name = self.secret_name(key)?;
        let mut secret = match self.read(name).await {
            Ok(secret) => secret,
            Err(ProviderError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        ensure_owned(&secret, &self.what(name), owner)?;
        let remaining = match property {
            Some(property) => {
                let data = secret.data.get_or_insert_with(BTreeMap::new);
                data.remove(property);
                data.len()
            }
            None => 0,
        };
        let result = if remaining == 0 {
            self.secrets
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ())
        } else {
            self.secrets
                .replace(name, &PostParams::default(), &secret)
                .await
                .map(|_| ())
        };
        match result {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            other => other.map_err(|e| classify(&self.what(name), e)),
        }
    }
}

/// A remote Secret may be written only by the PushSecret that created it.
fn ensure_owned(secret: &Secret, what: &str, owner: &str) -> Result<(), ProviderError> {
    let pushed_by = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUSHED_BY_ANNOTATION));
    match pushed_by {
        Some(by) if by == owner => Ok(()),
        Some(by) => Err(ProviderError::Conflict {
            message: format!("{what} belongs to PushSecret {by}, not {owner}"),
        }),
        None => Err(ProviderError::Conflict {
            message: format!(
                "{what} was not written by kuvert; it is never overwritten or deleted"
            ),
        }),
    }
}

/// An RFC 1123 subdomain: what a Secret name must be (no `/`, no `..`).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_cannot_escape_the_namespace() {
        assert!(is_dns_subdomain("db-credentials"));
        assert!(is_dns_subdomain("tls.example.com"));
        for bad in [
            "",
            "../kube-system/x",
            "a/b",
            "..",
            ".a",
            "a..b",
            "A",
            "ns/secret",
            "%2e%2e",
        ] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn secret_data_becomes_a_json_object_of_text_values() {
        let secret = Secret {
            data: Some(
                [
                    ("user".to_owned(), ByteString(b"app".to_vec())),
                    ("config".to_owned(), ByteString(br#"{"a":1}"#.to_vec())),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        let json = as_json("s", &secret).unwrap();
        assert_eq!(json.expose(), br#"{"config":"{\"a\":1}","user":"app"}"#);
    }

    #[test]
    fn binary_values_are_refused_without_quoting_them() {
        let secret = Secret {
            data: Some([("p12".to_owned(), ByteString(vec![0xff, 0xfe, 0x00]))].into()),
            ..Secret::default()
        };
        let err = as_json("keystore", &secret).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid store spec: remoteRef.key: key \"p12\" of Secret keystore is binary; only text values can be read"
        );
    }

    #[test]
    fn only_the_pushing_object_may_overwrite() {
        let mut secret = Secret::default();
        let err = ensure_owned(&secret, "Secret r/x", "ns/ps")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "conflict: Secret r/x was not written by kuvert; it is never overwritten or deleted"
        );
        secret.metadata.annotations =
            Some([(PUSHED_BY_ANNOTATION.to_owned(), "ns/other".to_owned())].into());
        let err = ensure_owned(&secret, "Secret r/x", "ns/ps")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "conflict: Secret r/x belongs to PushSecret ns/other, not ns/ps"
        );
        assert!(ensure_owned(&secret, "Secret r/x", "ns/other").is_ok());
    }
}
