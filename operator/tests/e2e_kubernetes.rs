//! `kuvert run` end to end with the kubernetes provider: an ExternalSecret in cluster A mirrors
//! a Secret of cluster B (a second API server of the same backend, over TLS), follows it on force-sync, and the
//! boundaries around stores (missing store, refused namespace) fail with clear statuses.

mod support;

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use kuvert_core::api::{ClusterSecretStore, ExternalSecret, SecretStore};
use support::{Backend, Cluster, Operator, RemoteCluster, eventually, map, secret_data, yaml};

fn secret(name: &str, namespace: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Cluster B with Secret `remote/db`; cluster A's `default` namespace holds a token that may
/// read it and a SecretStore pointing at B.
async fn two_clusters(backend: Backend) -> (Cluster, RemoteCluster) {
    let remote = RemoteCluster::start_on(backend).await;
    let remote_secrets: Api<Secret> = Api::namespaced(remote.client.clone(), "remote");
    remote_secrets
        .create(
            &PostParams::default(),
            &secret("db", "remote", &[("password", "v1")]),
        )
        .await
        .unwrap();

    let local = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(local.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &secret("cluster-b", "default", &[("token", &remote.token)]),
        )
        .await
        .unwrap();
    let store: SecretStore = yaml(&format!(
        r#"
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {{name: cluster-b, namespace: default}}
spec:
  provider:
    kubernetes:
      remoteNamespace: remote
      server:
        url: {url}
        caBundle: {ca}
      auth:
        token:
          bearerToken: {{name: cluster-b, key: token}}
"#,
        url = remote.url(),
        ca = base64::engine::general_purpose::STANDARD.encode(remote.ca_pem()),
    ));
    Api::<SecretStore>::namespaced(local.client.clone(), "default")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    (local, remote)
}

const MIRROR: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {name: mirror, namespace: default}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: cluster-b}
  data:
    - secretKey: password
      remoteRef: {key: db, property: password}
"#;

async fn a_secret_of_another_cluster_is_mirrored_and_followed_on_force_sync(backend: Backend) {
    let (local, remote) = two_clusters(backend).await;
    let operator = Operator::start(&local, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(local.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(local.client.clone(), "default");
    ess.create(&PostParams::default(), &yaml(MIRROR))
        .await
        .unwrap();
    eventually("the mirror to appear", || async {
        secret_data(&secrets, "mirror").await == map(&[("password", "v1")])
    })
    .await;

    // The remote value changes; with a 1h refresh nothing happens until a force-sync.
    let remote_secrets: Api<Secret> = Api::namespaced(remote.client.clone(), "remote");
    remote_secrets
        .replace(
            "db",
            &PostParams::default(),
            &secret("db", "remote", &[("password", "v2")]),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        secret_data(&secrets, "mirror").await,
        map(&[("password", "v1")])
    );
    // As an ESO user would: kubectl, the short name, the unprefixed annotation.
    // Off the runtime's threads: devcluster serves kubectl from this very runtime.
    let kubeconfig = local.kubeconfig();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args(["annotate", "es", "mirror", "force-sync=1", "--overwrite"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl (see scripts/install-test-deps.sh)")
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "externalsecret.kuvert.io/mirror annotated\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the mirror to follow on force-sync", || async {
        secret_data(&secrets, "mirror").await == map(&[("password", "v2")])
    })
    .await;
    eventually("status to record the force-sync value", || async {
        ess.get("mirror")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.force_sync.as_deref() == Some("1"))
    })
    .await;

    // The store is Ready, and the calls made to it are counted.
    let stores: Api<SecretStore> = Api::namespaced(local.client.clone(), "default");
    eventually("the store to be Ready", || async {
        stores
            .get("cluster-b")
            .await
            .unwrap()
            .status
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
    })
    .await;
    let (_, metrics) = operator.get("/metrics").await;
    assert!(
        metrics.contains(
            "kuvert_store_requests_total{provider=\"kubernetes\",operation=\"get\",outcome=\"ok\"} 2"
        ),
        "{metrics}"
    );
}

async fn missing_stores_and_refused_namespaces_fail_clearly(backend: Backend) {
    let local = Cluster::start_on(backend).await;
    let operator = Operator::start(&local, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(local.client.clone(), "default");

    let missing = MIRROR
        .replace("name: mirror", "name: lost")
        .replace("{name: cluster-b}", "{name: nowhere}");
    ess.create(&PostParams::default(), &yaml(&missing))
        .await
        .unwrap();

    // A ClusterSecretStore that admits only namespaces labelled team=payments.
    let css: ClusterSecretStore = yaml(
        r#"
apiVersion: kuvert.io/v1alpha1
kind: ClusterSecretStore
metadata: {name: shared}
spec:
  provider:
    fake:
      data: [{key: k, value: v}]
  conditions:
    - namespaceSelector: {matchLabels: {team: payments}}
"#,
    );
    Api::<ClusterSecretStore>::all(local.client.clone())
        .create(&PostParams::default(), &css)
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(local.client.clone());
    for (name, team) in [("payments", "payments"), ("intruder", "other")] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([("team".to_owned(), team.to_owned())])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let es: ExternalSecret = yaml(&format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: uses-shared, namespace: {name}}}\nspec:\n  secretStoreRef: {{name: shared, kind: ClusterSecretStore}}\n  data:\n    - secretKey: k\n      remoteRef: {{key: k}}\n"
        ));
        Api::<ExternalSecret>::namespaced(local.client.clone(), name)
            .create(&PostParams::default(), &es)
            .await
            .unwrap();
    }

    let ready_of = |ns: &'static str, name: &'static str| {
        let api: Api<ExternalSecret> = Api::namespaced(local.client.clone(), ns);
        async move {
            api.get(name).await.unwrap().status.and_then(|s| {
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| (c.status, c.reason, c.message))
            })
        }
    };
    eventually("the missing store to be reported", || async {
        ready_of("default", "lost").await
            == Some((
                "False".into(),
                "StoreNotFound".into(),
                "spec.secretStoreRef: SecretStore/default/nowhere not found".into(),
            ))
    })
    .await;
    eventually("the refused namespace to be reported", || async {
        ready_of("intruder", "uses-shared").await
            == Some((
                "False".into(),
                "StoreNotAllowed".into(),
                "spec.secretStoreRef: ClusterSecretStore/shared does not admit namespace \"intruder\"".into(),
            ))
    })
    .await;
    eventually("the admitted namespace to sync", || async {
        ready_of("payments", "uses-shared")
            .await
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    let intruder: Api<Secret> = Api::namespaced(local.client.clone(), "intruder");
    assert!(intruder.get_opt("uses-shared").await.unwrap().is_none());
    // Warning events name the cause.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(local.client.clone(), "intruder");
    eventually("a Warning event for the refused namespace", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("StoreNotAllowed")
            })
    })
    .await;
}

on_both_backends!(
    a_secret_of_another_cluster_is_mirrored_and_followed_on_force_sync,
    missing_stores_and_refused_namespaces_fail_clearly,
);
