//! A ClusterExternalSecret through `kuvert run`: its ExternalSecret stamped into the namespaces
//! it selects (by label and by name) and not the others; a namespace relabelled, or created,
//! acted on at once; an ExternalSecret of the same name it did not create left untouched, its
//! namespace failed with the reason; a hand-edited ExternalSecret (its spec or its stamp label)
//! put back; a spec change
//! reaching every stamped ExternalSecret; the ClusterExternalSecret deleted, its ExternalSecrets
//! gone with it (owner references) and the foreign one kept.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{
    ClusterExternalSecret, ClusterExternalSecretNamespaceFailure, ClusterSecretStore,
    ExternalSecret,
};
use support::{Backend, Cluster, Operator, eventually, map, secret_data, yaml};

const CES: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: ClusterExternalSecret
metadata: {name: shared}
spec:
  externalSecretMetadata:
    labels: {app: web}
  namespaceSelectors:
    - matchLabels: {team: a}
  namespaces: [listed]
  refreshTime: 1h
  externalSecretSpec:
    refreshInterval: 1h
    secretStoreRef: {name: shared, kind: ClusterSecretStore}
    target: {name: shared}
    data: [{secretKey: k, remoteRef: {key: k}}]
"#;

async fn namespace(client: &kube::Client, name: &str, labels: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {name}, labels: {labels}}}")),
        )
        .await
        .unwrap();
}

async fn label(client: &kube::Client, name: &str, team: &str) {
    Api::<Namespace>::all(client.clone())
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": team}}})),
        )
        .await
        .unwrap();
}

/// The fake ClusterSecretStore `shared` the ClusterExternalSecret's ExternalSecrets read.
async fn shared_store(client: &kube::Client) {
    let store: ClusterSecretStore = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ClusterSecretStore\nmetadata: {name: shared}\nspec:\n  provider:\n    fake:\n      data: [{key: k, value: v, version: \"1\"}]\n",
    );
    Api::<ClusterSecretStore>::all(client.clone())
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
}

fn ess(client: &kube::Client, namespace: &str) -> Api<ExternalSecret> {
    Api::namespaced(client.clone(), namespace)
}

async fn status_of(api: &Api<ClusterExternalSecret>) -> (Vec<String>, Vec<String>, Option<u32>) {
    let status = api.get("shared").await.unwrap().status.unwrap_or_default();
    let failed = status
        .failed_namespaces
        .iter()
        .map(|f| f.namespace.clone())
        .collect();
    (
        status.provisioned_namespaces,
        failed,
        status.ready_external_secrets,
    )
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn a_cluster_external_secret_is_stamped_kept_in_step_and_removed(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    namespace(&client, "team-a", "{team: a}").await;
    namespace(&client, "team-b", "{team: b}").await;
    namespace(&client, "listed", "{}").await;
    namespace(&client, "taken", "{team: a}").await;
    shared_store(&client).await;
    // Someone else's ExternalSecret of the name the ClusterExternalSecret stamps.
    let foreign: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: shared, namespace: taken, labels: {owner: me}}\nspec:\n  refreshInterval: 5m\n  secretStoreRef: {name: shared, kind: ClusterSecretStore}\n  target: {name: mine}\n  data: [{secretKey: mine, remoteRef: {key: k}}]\n",
    );
    let foreign = ess(&client, "taken")
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();

    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let cess: Api<ClusterExternalSecret> = Api::all(client.clone());
    cess.create(&PostParams::default(), &yaml(CES))
        .await
        .unwrap();

    // Stamped where selected, by label or by name; `taken` failed; both ExternalSecrets Ready.
    eventually(
        "listed and team-a provisioned, taken failed, 2 Ready",
        || async {
            status_of(&cess).await == (names(&["listed", "team-a"]), names(&["taken"]), Some(2))
        },
    )
    .await;
    let status = cess.get("shared").await.unwrap().status.unwrap();
    assert_eq!(status.external_secret_name.as_deref(), Some("shared"));
    assert_eq!(
        status.failed_namespaces,
        vec![ClusterExternalSecretNamespaceFailure {
            namespace: "taken".to_owned(),
            reason: Some(
                "ExternalSecret shared exists and was not created by this \
                 ClusterExternalSecret; it is left untouched"
                    .to_owned()
            ),
        }]
    );
    let ready = kuvert_core::conditions::find_ready(&status.conditions).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NamespacesFailed")
    );
    // A Warning Event names the failure (a cluster-scoped object's Events are in `default`).
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    eventually("a Warning NamespacesFailed Event", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("NamespacesFailed")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref())
                        == Some("ClusterExternalSecret")
            })
    })
    .await;
    eventually("the not-Ready ClusterExternalSecret counted", || async {
        operator
            .get("/metrics")
            .await
            .1
            .contains("kuvert_objects{kind=\"ClusterExternalSecret\",ready=\"False\"} 1")
    })
    .await;
    for ns in ["listed", "team-a"] {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        assert_eq!(secret_data(&secrets, "shared").await, map(&[("k", "v")]));
        let es = ess(&client, ns).get("shared").await.unwrap();
        assert_eq!(es.labels().get("app").map(String::as_str), Some("web"));
        assert_eq!(
            es.labels()
                .get("kuvert.io/cluster-external-secret")
                .map(String::as_str),
            Some("shared")
        );
        assert_eq!(es.owner_references()[0].kind, "ClusterExternalSecret");
    }
    assert!(
        ess(&client, "team-b")
            .get_opt("shared")
            .await
            .unwrap()
            .is_none()
    );
    let untouched = ess(&client, "taken").get("shared").await.unwrap();
    assert_eq!(untouched.spec, foreign.spec);
    assert_eq!(untouched.labels(), foreign.labels());
    assert!(untouched.owner_references().is_empty());

    // team-b relabelled in, team-a out, a new namespace created selected.
    label(&client, "team-b", "a").await;
    label(&client, "team-a", "c").await;
    namespace(&client, "team-new", "{team: a}").await;
    eventually("team-b and team-new stamped, team-a's removed", || async {
        status_of(&cess).await.0 == names(&["listed", "team-b", "team-new"])
            && ess(&client, "team-a")
                .get_opt("shared")
                .await
                .unwrap()
                .is_none()
            && ess(&client, "team-b")
                .get_opt("shared")
                .await
                .unwrap()
                .is_some()
            && ess(&client, "team-new")
                .get_opt("shared")
                .await
                .unwrap()
                .is_some()
    })
    .await;

    // A hand edit is put back.
    ess(&client, "team-b")
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"refreshInterval": "5m"}})),
        )
        .await
        .unwrap();
    eventually("the hand edit put back", || async {
        let es = ess(&client, "team-b").get("shared").await.unwrap();
        es.spec.refresh_interval.as_deref() == Some("1h")
    })
    .await;

    // The stamp label removed by hand is put back (the ExternalSecret leaves the label-selected
    // watch; its owner reference still leads to the ClusterExternalSecret).
    ess(&client, "team-b")
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"labels": {"kuvert.io/cluster-external-secret": null}}}),
            ),
        )
        .await
        .unwrap();
    eventually("the stamp label put back", || async {
        let es = ess(&client, "team-b").get("shared").await.unwrap();
        es.labels()
            .get("kuvert.io/cluster-external-secret")
            .map(String::as_str)
            == Some("shared")
    })
    .await;
    assert_eq!(
        status_of(&cess).await.0,
        names(&["listed", "team-b", "team-new"])
    );

    // A spec change reaches every stamped ExternalSecret.
    cess.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"spec": {"externalSecretMetadata": {"labels": {"app": "api"}}}}),
        ),
    )
    .await
    .unwrap();
    eventually("the new label on every stamped ExternalSecret", || async {
        let mut all = true;
        for ns in ["listed", "team-b", "team-new"] {
            let es = ess(&client, ns).get("shared").await.unwrap();
            all &= es.labels().get("app").map(String::as_str) == Some("api");
        }
        all
    })
    .await;

    // Deleted: every stamped ExternalSecret goes, the foreign one stays.
    cess.delete("shared", &DeleteParams::default())
        .await
        .unwrap();
    eventually("every stamped ExternalSecret gone", || async {
        let mut gone = true;
        for ns in ["listed", "team-b", "team-new"] {
            gone &= ess(&client, ns).get_opt("shared").await.unwrap().is_none();
        }
        gone
    })
    .await;
    let kept = ess(&client, "taken").get("shared").await.unwrap();
    assert_eq!(kept.uid(), foreign.uid());
    assert_eq!(kept.spec, foreign.spec);
}

on_both_backends!(a_cluster_external_secret_is_stamped_kept_in_step_and_removed);

/// A restart while ExternalSecrets are stamped in many namespaces writes nothing: no stamped
/// ExternalSecret created, replaced or deleted (a plan made before the namespace cache listed
/// would delete them), and the ClusterExternalSecret's status unchanged.
async fn a_restart_rewrites_no_stamped_external_secret(backend: Backend) {
    const NAMESPACES: usize = 20;
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    for i in 0..NAMESPACES {
        namespace(&client, &format!("team-{i}"), "{team: a}").await;
    }
    namespace(&client, "listed", "{}").await;
    shared_store(&client).await;
    let cess: Api<ClusterExternalSecret> = Api::all(client.clone());
    cess.create(&PostParams::default(), &yaml(CES))
        .await
        .unwrap();
    let mut first = Operator::start(&cluster, &[]);
    eventually("every namespace stamped and Ready", || async {
        status_of(&cess).await.2 == Some(NAMESPACES as u32 + 1)
    })
    .await;
    let seen = || async {
        let mut stamped = Vec::new();
        for i in 0..NAMESPACES {
            let es = ess(&client, &format!("team-{i}"))
                .get("shared")
                .await
                .unwrap();
            stamped.push((es.uid(), es.resource_version()));
        }
        let ces = cess.get("shared").await.unwrap();
        (stamped, ces.resource_version())
    };
    let before = seen().await;
    first.stop();

    let second = Operator::start(&cluster, &[]);
    second.wait_ready().await;
    let ces = [("kind", "ClusterExternalSecret")];
    let last = std::sync::Mutex::new(String::new());
    eventually("the ClusterExternalSecret reconciled once", || async {
        let metrics = second.get("/metrics").await.1;
        let done = support::metric_sum(&metrics, "kuvert_sync_total", &ces) >= 1.0
            && support::metric_sum(&metrics, "kuvert_reconcile_queue_depth", &ces) == 0.0;
        *last.lock().unwrap() = metrics;
        done
    })
    .await;
    let metrics = last.lock().unwrap().clone();
    for verb in ["create", "update", "delete"] {
        assert_eq!(
            support::metric_sum(
                &metrics,
                "kuvert_kube_requests_total",
                &[("verb", verb), ("resource", "externalsecrets.kuvert.io")]
            ),
            0.0,
            "{verb} of ExternalSecrets after the restart\n{metrics}"
        );
    }
    assert_eq!(seen().await, before);
}

on_both_backends!(a_restart_rewrites_no_stamped_external_secret);
