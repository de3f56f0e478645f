//! The kubernetes provider keeps the provider contract (`kuvert_core::provider::conformance`)
//! against devcluster as the remote cluster: Secrets of one namespace, tags as labels, no
//! versions and no paths (a key is a Secret name).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kuvert_core::api::{
    KubernetesAuth, KubernetesProvider as Spec, KubernetesServer, KubernetesTokenAuth,
    SecretKeySelector, SecretStoreKind,
};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::conformance::{self, Features, Harness, Seed};
use kuvert_core::provider::{Provider, ProviderError, SecretsClient, StoreContext};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_provider_kubernetes::KubernetesProvider;

/// The namespace the store serves in the remote cluster.
const REMOTE: &str = "remote";

struct Remote {
    cluster: DevClusterHandle,
}

impl Remote {
    /// A client logging in to the remote cluster with `token`.
    async fn connect(&self, token: &str) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let mut kube = MemoryKube::new();
        kube.add_secret(&Secret {
            metadata: ObjectMeta {
                name: Some("remote-creds".to_owned()),
                namespace: Some("app".to_owned()),
                ..ObjectMeta::default()
            },
            data: Some([("token".to_owned(), ByteString(token.as_bytes().to_vec()))].into()),
            ..Secret::default()
        });
        let spec = Spec {
            remote_namespace: Some(REMOTE.to_owned()),
            server: Some(KubernetesServer {
                url: Some(self.cluster.url().to_owned()),
                ca_bundle: Some(
                    base64::engine::general_purpose::STANDARD.encode(self.cluster.ca_pem()),
                ),
                ca_provider: None,
            }),
            auth: Some(KubernetesAuth::Token(KubernetesTokenAuth {
                bearer_token: SecretKeySelector {
                    name: "remote-creds".to_owned(),
                    namespace: None,
                    key: Some("token".to_owned()),
                },
            })),
            auth_ref: None,
        };
        let store = StoreContext {
            kind: SecretStoreKind::SecretStore,
            name: "remote",
            namespace: Some("app"),
        };
        KubernetesProvider.validate(&store, &spec)?;
        KubernetesProvider
            .client(&store, &spec, Some("app"), &kube)
            .await
    }
}

#[async_trait]
impl Harness for Remote {
    fn features(&self) -> Features {
        Features {
            versions: false,
            paths: false,
            auth: true,
            push: true,
        }
    }

    async fn client(&self, seeds: &[Seed]) -> Arc<dyn SecretsClient> {
        let secrets = Api::<Secret>::namespaced(self.cluster.client().unwrap(), REMOTE);
        for seed in seeds {
            let values = seed.versions.last().expect("a seed has a version");
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(seed.key.clone()),
                    labels: Some(seed.tags.clone()),
                    ..ObjectMeta::default()
                },
                data: Some(
                    values
                        .iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                        .collect(),
                ),
                ..Secret::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .unwrap();
        }
        self.connect(self.cluster.admin_token()).await.unwrap()
    }

    async fn refused(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.connect("a-token-the-remote-cluster-never-issued")
            .await
    }
}

#[tokio::test]
async fn the_kubernetes_provider_keeps_the_provider_contract() {
    let cluster = DevCluster::start(Config {
        namespaces: ["default", REMOTE].map(String::from).to_vec(),
        ..Config::default()
    })
    .await
    .unwrap();
    conformance::run(&Remote { cluster }).await;
}
