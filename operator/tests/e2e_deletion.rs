//! `kuvert run` end to end against devcluster: `target.deletionPolicy` when remote secrets go
//! away (a `fake` store whose keys are removed).

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{Backend, Cluster, Operator, eventually, map, ready, secret_data, yaml};

const STORE: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {name: demo, namespace: default}
spec:
  provider:
    fake:
      data:
        - {key: app/a, value: va}
        - {key: app/b, value: vb}
"#;

fn external_secret(name: &str, deletion_policy: &str) -> ExternalSecret {
    yaml(&format!(
        r#"
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {{name: {name}, namespace: default}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: demo}}
  target: {{deletionPolicy: {deletion_policy}}}
  data:
    - {{secretKey: a, remoteRef: {{key: app/a}}}}
    - {{secretKey: b, remoteRef: {{key: app/b}}}}
"#
    ))
}

async fn set_store_keys(stores: &Api<SecretStore>, keys: &[(&str, &str)]) {
    let data: Vec<_> = keys
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect();
    let patch = serde_json::json!({"spec": {"provider": {"fake": {"data": data}}}});
    stores
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn deletion_policy_delete_removes_the_secret_once_every_remote_secret_is_gone(
    backend: Backend,
) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &yaml(STORE))
        .await
        .unwrap();
    let pp = PostParams::default();
    ess.create(&pp, &external_secret("del", "Delete"))
        .await
        .unwrap();
    ess.create(&pp, &external_secret("merge", "Merge"))
        .await
        .unwrap();
    ess.create(&pp, &external_secret("retain", "Retain"))
        .await
        .unwrap();
    for name in ["del", "merge", "retain"] {
        eventually(&format!("Secret {name} synced"), || async {
            secret_data(&secrets, name).await == map(&[("a", "va"), ("b", "vb")])
        })
        .await;
    }

    // One remote secret gone: Delete and Merge drop its key; Retain keeps the Secret as it was
    // and says why.
    set_store_keys(&stores, &[("app/a", "va")]).await;
    for name in ["del", "merge"] {
        eventually(&format!("{name} drops key b"), || async {
            secret_data(&secrets, name).await == map(&[("a", "va")])
        })
        .await;
        assert_eq!(
            ready(&ess, name).await,
            Some(("True".into(), "SecretSynced".into()))
        );
    }
    eventually("retain reports the missing key", || async {
        ready(&ess, "retain").await == Some(("False".into(), "RemoteSecretNotFound".into()))
    })
    .await;
    assert_eq!(
        secret_data(&secrets, "retain").await,
        map(&[("a", "va"), ("b", "vb")])
    );

    // Every remote secret gone: Delete deletes the Secret, Merge keeps it empty.
    set_store_keys(&stores, &[("other", "x")]).await;
    eventually("del's Secret deleted", || async {
        secret_data(&secrets, "del").await.is_none()
    })
    .await;
    eventually("del Ready SecretDeleted", || async {
        ready(&ess, "del").await == Some(("True".into(), "SecretDeleted".into()))
    })
    .await;
    eventually("merge's Secret emptied", || async {
        secret_data(&secrets, "merge").await == map(&[])
    })
    .await;
    assert_eq!(
        secret_data(&secrets, "retain").await,
        map(&[("a", "va"), ("b", "vb")])
    );

    // The remote secret back: the Secret is created again.
    set_store_keys(&stores, &[("app/a", "va2")]).await;
    eventually("del's Secret re-created", || async {
        secret_data(&secrets, "del").await == map(&[("a", "va2")])
    })
    .await;
    assert_eq!(
        ready(&ess, "del").await,
        Some(("True".into(), "SecretSynced".into()))
    );
}

on_both_backends!(deletion_policy_delete_removes_the_secret_once_every_remote_secret_is_gone,);
