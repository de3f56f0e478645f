//! A target Secret the API server refuses to write: the ExternalSecret says so in its status
//! and an Event, with the API server's own message, and never the Secret's values.

mod support;

use k8s_openapi::api::core::v1::{ResourceQuota, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{Backend, Cluster, Operator, eventually, fake_store, yaml};

/// The Ready condition's status, reason and message.
async fn ready(ess: &Api<ExternalSecret>, name: &str) -> Option<(String, String, String)> {
    let status = ess.get(name).await.unwrap().status?;
    let c = kuvert_core::conditions::find_ready(&status.conditions)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The Warning Events of ExternalSecret `name`: (reason, note).
/// Waits for `name` to be Ready=False with `reason`; returns the condition's message.
async fn failed_with(ess: &Api<ExternalSecret>, name: &str, reason: &str) -> String {
    eventually(&format!("Ready=False {reason}"), || async {
        ready(ess, name)
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == reason)
    })
    .await;
    ready(ess, name).await.unwrap().2
}

async fn warnings(client: &kube::Client, namespace: &str, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// A template makes the target's annotations larger than the API server allows (256 KiB in
/// all; kuvert does not check that size itself): Ready=False `TargetInvalid` with the API
/// server's message, and a Warning Event saying it.
async fn a_write_the_api_server_refuses_is_reported_with_its_message(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &fake_store("default", &[("k", "s3cret-value")]),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    let es: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: default}\nspec:\n  secretStoreRef: {name: demo}\n  target:\n    template:\n      metadata:\n        annotations: {big: '{{ k }}{% for i in range(27000) %}xxxxxxxxxx{% endfor %}'}\n  data: [{secretKey: k, remoteRef: {key: k}}]\n",
    );
    ess.create(&PostParams::default(), &es).await.unwrap();
    let message = failed_with(&ess, "app", "TargetInvalid").await;
    assert!(
        message.starts_with("creating Secret app: the API server answered 422 Invalid: "),
        "{message}"
    );
    assert!(message.contains("metadata.annotations"), "{message}");
    assert!(message.contains("262144"), "{message}");
    assert!(!message.contains("s3cret-value"), "{message}");
    assert!(
        Api::<Secret>::namespaced(client.clone(), "default")
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
    );
    eventually("a Warning Event with the message", || async {
        warnings(&client, "default", "app")
            .await
            .contains(&("TargetInvalid".to_owned(), message.clone()))
    })
    .await;
}

on_both_backends!(a_write_the_api_server_refuses_is_reported_with_its_message);

/// A ResourceQuota allows no Secret in the namespace (enforced by the real API server's
/// admission; devcluster has no quotas): the ExternalSecret is Ready=False `QuotaExceeded`
/// with the API server's message, and a Warning Event says it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refusing_the_target_is_reported_with_its_message() {
    let cluster = Cluster::start_on(Backend::ControlPlane).await;
    let client = cluster.client.clone();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    quotas
        .create(
            &PostParams::default(),
            &yaml(
                "metadata: {name: no-secrets, namespace: default}\nspec: {hard: {secrets: '0'}}\n",
            ),
        )
        .await
        .unwrap();
    // The quota's usage, as kube-controller-manager's quota controller (not run by the test
    // control plane) would record it: admission enforces a quota only once it has a status.
    let usage = serde_json::json!({"status": {"hard": {"secrets": "0"}, "used": {"secrets": "0"}}});
    quotas
        .patch_status("no-secrets", &PatchParams::default(), &Patch::Merge(&usage))
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &fake_store("default", &[("k", "s3cret-value")]),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    ess.create(
        &PostParams::default(),
        &support::reading_k("default", "app", "{name: demo}"),
    )
    .await
    .unwrap();
    let message = failed_with(&ess, "app", "QuotaExceeded").await;
    assert!(
        message.starts_with("creating Secret app: the API server answered 403 Forbidden: "),
        "{message}"
    );
    assert!(message.contains("exceeded quota: no-secrets"), "{message}");
    assert!(!message.contains("s3cret-value"), "{message}");
    eventually("a Warning Event with the message", || async {
        warnings(&client, "default", "app")
            .await
            .contains(&("QuotaExceeded".to_owned(), message.clone()))
    })
    .await;
}
