//! `kuvert run` end to end against devcluster: the core sync loop with a `fake` store.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{
    APP_EXTERNAL_SECRET, Backend, Cluster, Operator, app_store, eventually, secret_data, yaml,
};

fn text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn expected(password: &str) -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([
        ("password".to_owned(), password.to_owned()),
        ("username".to_owned(), "app".to_owned()),
    ]))
}

async fn external_secret_syncs_and_follows_changes_and_drift(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &app_store("pw-1"))
        .await
        .unwrap();
    ess.create(&PostParams::default(), &yaml(APP_EXTERNAL_SECRET))
        .await
        .unwrap();

    // Created with the right data, labels and owner.
    eventually("the Secret to appear", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;
    let secret = secrets.get("app-secret").await.unwrap();
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["kuvert.io/managed"],
        "true"
    );
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ExternalSecret", "app")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(text(&secret, "password"), "pw-1");
    eventually("Ready=True SecretSynced", || async {
        let es = ess.get("app").await.unwrap();
        es.status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "SecretSynced")
                && s.binding.is_some_and(|b| b.name == "app-secret")
                && s.synced_versions
                    .iter()
                    .any(|v| v.version.as_deref() == Some("1"))
        })
    })
    .await;

    // An edit out of band is reverted.
    let edit = serde_json::json!({"data": {"password": "ZWRpdGVk"}});
    secrets
        .patch("app-secret", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the edited Secret to be restored", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;

    // A deleted Secret is recreated.
    secrets
        .delete("app-secret", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted Secret to be recreated", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;

    // A changed store is followed at once by the ExternalSecrets using it.
    let new_value = serde_json::json!({"spec": {"provider": {"fake": {"data": [
        {"key": "app/db", "value": "{\"username\":\"app\",\"password\":\"pw-2\"}", "version": "2"}
    ]}}}});
    stores
        .patch("demo", &PatchParams::default(), &Patch::Merge(&new_value))
        .await
        .unwrap();
    eventually("the Secret to follow the store", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-2")
    })
    .await;

    // Deleting the ExternalSecret garbage-collects the Secret it owns.
    ess.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the owned Secret to be deleted", || async {
        secrets.get_opt("app-secret").await.unwrap().is_none()
    })
    .await;
}

async fn a_broken_template_fails_with_a_clear_status_and_keeps_the_secret(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &["--per-object-metrics"]);
    operator.wait_ready().await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &app_store("pw-1"))
        .await
        .unwrap();
    ess.create(&PostParams::default(), &yaml(APP_EXTERNAL_SECRET))
        .await
        .unwrap();
    eventually("the Secret to appear", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;

    let broken =
        serde_json::json!({"spec": {"target": {"template": {"data": {"url": "{{ nosuchvar }}"}}}}});
    ess.patch("app", &PatchParams::default(), &Patch::Merge(&broken))
        .await
        .unwrap();
    eventually("Ready=False with the template's reason", || async {
        let es = ess.get("app").await.unwrap();
        es.status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "False"
                    && c.message.contains("spec.target.template.data")
                    && !c.message.contains("pw-1")
            })
        })
    })
    .await;
    assert_eq!(
        secret_data(&secrets, "app-secret").await,
        expected("pw-1"),
        "the Secret is untouched"
    );
    let (code, metrics) = operator.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("kuvert_sync_total{kind=\"ExternalSecret\",result=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kuvert_sync_errors_total{kind=\"ExternalSecret\""),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "kuvert_object_ready{kind=\"ExternalSecret\",namespace=\"default\",name=\"app\"} 0"
        ),
        "{metrics}"
    );
    // Who is running, and what it costs the API server and the node.
    for line in [
        format!(
            "kuvert_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "kuvert_leader 1".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    for prefix in [
        "kuvert_kube_requests_total{verb=\"list\",resource=\"externalsecrets.kuvert.io\",code=\"200\"} ",
        "kuvert_kube_requests_total{verb=\"watch\",resource=\"externalsecrets.kuvert.io\",code=\"200\"} ",
        "kuvert_kube_request_duration_seconds_bucket{verb=\"patch\",le=\"+Inf\"} ",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(prefix)),
            "{prefix} in:\n{metrics}"
        );
    }
    support::promtool_accepts(&metrics);
}

// Multi-threaded: `terminate` blocks its thread while kuvert, shutting down, may still talk
// to devcluster, which this runtime serves.
async fn sigterm_shuts_the_operator_down_cleanly(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    assert_eq!(operator.terminate(), Some(0));
}

async fn an_edited_orphan_secret_is_repaired_without_waiting_for_a_refresh(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &app_store("pw-1"))
        .await
        .unwrap();
    let orphan = APP_EXTERNAL_SECRET.replace(
        "target: {name: app-secret}",
        "target: {name: app-secret, creationPolicy: Orphan}",
    );
    ess.create(&PostParams::default(), &yaml(&orphan))
        .await
        .unwrap();
    eventually("the Secret to appear", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;
    assert!(
        secrets
            .get("app-secret")
            .await
            .unwrap()
            .metadata
            .owner_references
            .is_none()
    );
    let edit = serde_json::json!({"data": {"password": "ZWRpdGVk"}});
    secrets
        .patch("app-secret", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the orphan Secret to be restored", || async {
        secret_data(&secrets, "app-secret").await == expected("pw-1")
    })
    .await;

    // Deleting the ExternalSecret leaves an orphan Secret as it is.
    ess.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the ExternalSecret to be gone", || async {
        ess.get_opt("app").await.unwrap().is_none()
    })
    .await;
    // An owned Secret is collected at once (see above); give the operator time to act too.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(secret_data(&secrets, "app-secret").await, expected("pw-1"));
}

on_both_backends!(
    external_secret_syncs_and_follows_changes_and_drift,
    a_broken_template_fails_with_a_clear_status_and_keeps_the_secret,
    sigterm_shuts_the_operator_down_cleanly,
    an_edited_orphan_secret_is_repaired_without_waiting_for_a_refresh,
);
