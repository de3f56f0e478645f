//! The kubernetes provider against a real (in-memory) remote API server: devcluster over TLS,
//! reached with each auth method through an unmodified kube-rs client.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use kuvert_core::api::{
    KubernetesAuth, KubernetesCertAuth, KubernetesProvider as Spec, KubernetesServer,
    KubernetesTokenAuth, SecretKeySelector, SecretStoreKind, ServiceAccountSelector,
};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{
    FindRequest, GetRequest, Provider, ProviderError, PushRequest, SecretsClient, StoreContext,
};
use kuvert_core::secret::SecretBytes;
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle, StaticToken};
use kuvert_provider_kubernetes::KubernetesProvider;

const READER_TOKEN: &str = "reader-token-0123456789";

struct Remote {
    handle: DevClusterHandle,
    admin: Client,
}

async fn remote_cluster() -> Remote {
    let handle = DevCluster::start(Config {
        tokens: vec![StaticToken {
            token: READER_TOKEN.to_owned(),
            user: "reader".to_owned(),
            groups: Vec::new(),
        }],
        namespaces: ["default", "remote", "other"].map(String::from).to_vec(),
        ..Config::default()
    })
    .await
    .unwrap();
    let admin = handle.client().unwrap();
    let remote = Remote { handle, admin };
    remote
        .put_secret(
            "remote",
            "db",
            &[("username", "app"), ("password", "pw-remote-1")],
            &[("team", "a")],
        )
        .await;
    remote
        .put_secret(
            "remote",
            "api",
            &[("token", "tok-remote-2")],
            &[("team", "b")],
        )
        .await;
    remote
        .put_secret("other", "db", &[("password", "pw-other-namespace")], &[])
        .await;
    remote
}

impl Remote {
    async fn put_secret(
        &self,
        ns: &str,
        name: &str,
        data: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                annotations: Some([("note".to_owned(), "hello".to_owned())].into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(self.admin.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    fn server(&self) -> KubernetesServer {
        KubernetesServer {
            url: Some(self.handle.url().to_owned()),
            ca_bundle: Some(STANDARD.encode(self.handle.ca_pem())),
            ca_provider: None,
        }
    }
}

/// Credentials the "local" cluster holds, as the operator would read them.
fn local_secret(kube: &mut MemoryKube, name: &str, data: &[(&str, &str)]) {
    kube.add_secret(&Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("app".to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    });
}

fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.to_owned(),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

async fn connect(
    spec: Spec,
    kube: &MemoryKube,
) -> Result<std::sync::Arc<dyn SecretsClient>, ProviderError> {
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: "remote",
        namespace: Some("app"),
    };
    KubernetesProvider
        .client(&store, &spec, Some("app"), kube)
        .await
}

fn token_spec(remote: &Remote) -> Spec {
    Spec {
        remote_namespace: Some("remote".to_owned()),
        server: Some(remote.server()),
        auth: Some(KubernetesAuth::Token(KubernetesTokenAuth {
            bearer_token: selector("remote-creds", "token"),
        })),
        auth_ref: None,
    }
}

fn get(key: &str) -> GetRequest {
    GetRequest {
        key: key.to_owned(),
        ..GetRequest::default()
    }
}

fn text(v: &SecretBytes) -> &str {
    v.expose_str().unwrap()
}

#[tokio::test]
async fn token_auth_reads_a_whole_secret_as_json() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    let got = client.get(&get("db")).await.unwrap();
    assert_eq!(
        text(&got.value),
        r#"{"password":"pw-remote-1","username":"app"}"#
    );
    assert!(
        got.version.is_some(),
        "the resourceVersion is reported as the version"
    );
}

#[tokio::test]
async fn metadata_policy_fetch_returns_labels_and_annotations() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    let got = client
        .get(&GetRequest {
            key: "db".to_owned(),
            version: None,
            metadata: true,
        })
        .await
        .unwrap();
    assert_eq!(
        text(&got.value),
        r#"{"annotations":{"note":"hello"},"labels":{"team":"a"}}"#
    );
}

#[tokio::test]
async fn find_by_name_regexp_and_by_labels() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let client = connect(token_spec(&remote), &kube).await.unwrap();

    let by_name = client
        .find(&FindRequest {
            name_regexp: Some(regex::Regex::new("^d").unwrap()),
            ..FindRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.keys().collect::<Vec<_>>(), ["db"]);

    let by_label = client
        .find(&FindRequest {
            tags: BTreeMap::from([("team".to_owned(), "b".to_owned())]),
            ..FindRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(by_label.keys().collect::<Vec<_>>(), ["api"]);
    assert_eq!(text(&by_label["api"].value), r#"{"token":"tok-remote-2"}"#);
}

#[tokio::test]
async fn keys_cannot_escape_the_remote_namespace() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    for crafted in [
        "../other/db",
        "other/db",
        "..",
        "/api/v1/namespaces/other/secrets/db",
    ] {
        let err = client.get(&get(crafted)).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::InvalidSpec { .. }),
            "{crafted}: {err}"
        );
        assert!(!err.to_string().contains("pw-other-namespace"));
    }
    let err = client.get(&get("missing")).await.unwrap_err();
    assert_eq!(err.to_string(), "Secret remote/missing not found");
}

#[tokio::test]
async fn client_certificate_auth_reads() {
    let remote = remote_cluster().await;
    let (cert, key) = remote
        .handle
        .issue_client_certificate("cert-user", &[])
        .unwrap();
    let mut kube = MemoryKube::new();
    local_secret(
        &mut kube,
        "remote-cert",
        &[("tls.crt", &cert), ("tls.key", &key)],
    );
    let spec = Spec {
        auth: Some(KubernetesAuth::Cert(KubernetesCertAuth {
            client_cert: selector("remote-cert", "tls.crt"),
            client_key: selector("remote-cert", "tls.key"),
        })),
        ..token_spec(&remote)
    };
    let client = connect(spec, &kube).await.unwrap();
    let got = client.get(&get("api")).await.unwrap();
    assert_eq!(text(&got.value), r#"{"token":"tok-remote-2"}"#);
}

#[tokio::test]
async fn service_account_token_issued_by_the_remote_cluster_reads() {
    let remote = remote_cluster().await;
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("mirror".to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let sas: Api<ServiceAccount> = Api::namespaced(remote.admin.clone(), "remote");
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued = sas
        .create_token_request("mirror", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = issued.status.unwrap().token.unwrap();
    let mut kube = MemoryKube::new();
    kube.set_service_account_token("app", "mirror", SecretBytes::from(token));
    let spec = Spec {
        auth: Some(KubernetesAuth::ServiceAccount(ServiceAccountSelector {
            name: "mirror".to_owned(),
            namespace: None,
            audiences: Vec::new(),
        })),
        ..token_spec(&remote)
    };
    let client = connect(spec, &kube).await.unwrap();
    assert_eq!(
        text(&client.get(&get("db")).await.unwrap().value),
        r#"{"password":"pw-remote-1","username":"app"}"#
    );
}

#[tokio::test]
async fn kubeconfig_secret_auth_reads() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(
        &mut kube,
        "remote-kubeconfig",
        &[("value", &remote.handle.kubeconfig_yaml())],
    );
    let spec = Spec {
        remote_namespace: Some("remote".to_owned()),
        server: None,
        auth: None,
        auth_ref: Some(selector("remote-kubeconfig", "value")),
    };
    let client = connect(spec, &kube).await.unwrap();
    assert_eq!(
        text(&client.get(&get("api")).await.unwrap().value),
        r#"{"token":"tok-remote-2"}"#
    );
}

#[tokio::test]
async fn wrong_token_is_unauthenticated_and_never_quoted() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(
        &mut kube,
        "remote-creds",
        &[("token", "wrong-token-planted")],
    );
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    let err = client.get(&get("db")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unauthenticated { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "authentication failed: Secret remote/db: the remote API server rejected the credentials"
    );
    assert!(!format!("{err:?}").contains("wrong-token-planted"));
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut spec = token_spec(&remote);
    spec.server.as_mut().unwrap().url = Some(format!("https://127.0.0.1:{port}"));
    let client = connect(spec, &kube).await.unwrap();
    let err = client.get(&get("db")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_secret_store_cannot_read_credentials_from_another_namespace() {
    let remote = remote_cluster().await;
    let kube = MemoryKube::new();
    let mut spec = token_spec(&remote);
    if let Some(KubernetesAuth::Token(t)) = spec.auth.as_mut() {
        t.bearer_token.namespace = Some("kube-system".to_owned());
    }
    let err = connect(spec, &kube).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "invalid store spec: spec.provider.kubernetes.auth.token.bearerToken: a SecretStore may only refer to its own namespace \"app\", not \"kube-system\""
    );
}

#[tokio::test]
async fn push_writes_owned_secrets_and_refuses_foreign_ones() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(
        &mut kube,
        "remote-creds",
        &[("token", remote.handle.admin_token())],
    );
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    let push = |key: &str, property: Option<&str>, value: &str| PushRequest {
        key: key.to_owned(),
        property: property.map(str::to_owned),
        value: SecretBytes::from(value),
        owner: "app/pusher".to_owned(),
        metadata: None,
    };
    client.push(&push("pushed", Some("a"), "1")).await.unwrap();
    client.push(&push("pushed", Some("b"), "2")).await.unwrap();
    assert_eq!(
        text(&client.get(&get("pushed")).await.unwrap().value),
        r#"{"a":"1","b":"2"}"#
    );

    let err = client
        .push(&push("db", Some("password"), "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "conflict: Secret remote/db was not written by kuvert; it is never overwritten or deleted"
    );
    let err = client.delete("db", None, "app/pusher").await.unwrap_err();
    assert!(matches!(err, ProviderError::Conflict { .. }));
    assert_eq!(
        text(&client.get(&get("db")).await.unwrap().value),
        r#"{"password":"pw-remote-1","username":"app"}"#,
        "a foreign Secret is untouched"
    );

    client
        .delete("pushed", Some("a"), "app/pusher")
        .await
        .unwrap();
    assert_eq!(
        text(&client.get(&get("pushed")).await.unwrap().value),
        r#"{"b":"2"}"#
    );
    client.delete("pushed", None, "app/pusher").await.unwrap();
    assert!(!client.exists("pushed").await.unwrap());
}

#[tokio::test]
async fn validate_reports_what_the_credentials_may_do() {
    let remote = remote_cluster().await;
    let mut kube = MemoryKube::new();
    local_secret(&mut kube, "remote-creds", &[("token", READER_TOKEN)]);
    let client = connect(token_spec(&remote), &kube).await.unwrap();
    // devcluster authorizes every authenticated user (it has no RBAC): read and write.
    assert_eq!(
        client.validate().await.unwrap(),
        kuvert_core::api::StoreCapabilities::ReadWrite
    );
    let mut wrong = MemoryKube::new();
    local_secret(&mut wrong, "remote-creds", &[("token", "not-a-token")]);
    let client = connect(token_spec(&remote), &wrong).await.unwrap();
    let err = client.validate().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "authentication failed: SelfSubjectAccessReview: the remote API server rejected the credentials"
    );
}
