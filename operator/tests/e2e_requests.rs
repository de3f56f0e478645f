//! The Kubernetes requests a sync costs, counted by devcluster: kuvert knows its target
//! Secrets from their cached metadata, so a first sync creates without reading, the reconciles
//! its own writes wake cost nothing, and a refresh that reads the same values neither reads nor
//! writes the Secret. A Secret kuvert does not manage is still found, and left as it was.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{Cluster, FAKE_STORE, Operator, eventually, shared_key_external_secret, yaml};

const COUNT: usize = 20;

/// `(status, reason)` of each ExternalSecret's Ready condition, by name.
async fn ready(ess: &Api<ExternalSecret>) -> Vec<(String, String, String)> {
    ess.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|es| {
            let name = es.metadata.name.clone()?;
            let c = es
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            Some((name, c.status, c.reason))
        })
        .collect()
}

async fn setup() -> (Cluster, Operator, Api<ExternalSecret>, Api<Secret>) {
    let cluster = Cluster::start().await;
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    stores
        .create(&PostParams::default(), &yaml(FAKE_STORE))
        .await
        .unwrap();
    // The refresh test counts refreshes at 1s, below the default 10s floor.
    let operator = Operator::start(&cluster, &["--min-refresh-interval", "1s"]);
    operator.wait_ready().await;
    let ess = Api::namespaced(cluster.client.clone(), "default");
    let secrets = Api::namespaced(cluster.client.clone(), "default");
    (cluster, operator, ess, secrets)
}

#[tokio::test]
async fn a_first_sync_creates_without_reading_and_the_wakeups_of_its_own_writes_cost_nothing() {
    let (cluster, _operator, ess, secrets) = setup().await;
    cluster.dev().reset_request_counts();
    for i in 0..COUNT {
        let es = shared_key_external_secret(&format!("es-{i}"), "1h", &format!("es-{i}"));
        ess.create(&PostParams::default(), &es).await.unwrap();
    }
    eventually("every ExternalSecret Ready", || async {
        let all = ready(&ess).await;
        all.len() == COUNT && all.iter().all(|(_, status, _)| status == "True")
    })
    .await;
    // Each sync's Secret create and status patch wake another reconcile of the object.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let handle = cluster.dev();
    assert_eq!(handle.request_count("get", "secrets"), 0, "Secret reads");
    assert_eq!(handle.request_count("create", "secrets"), COUNT as u64);
    assert_eq!(handle.request_count("update", "secrets"), 0);
    assert_eq!(
        handle.request_count("patch", "externalsecrets/status"),
        COUNT as u64,
        "one status write per object"
    );
    assert_eq!(
        handle.request_count("create", "events"),
        COUNT as u64,
        "one Event per object, for its first Ready"
    );
    let listed = secrets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), COUNT);
    assert!(
        listed
            .iter()
            .all(|s| { s.data.as_ref().is_some_and(|d| d["k"].0 == b"s3cr3t") })
    );
}

#[tokio::test]
async fn a_refresh_that_reads_the_same_values_neither_reads_nor_writes_the_secret() {
    let (cluster, _operator, ess, _secrets) = setup().await;
    ess.create(
        &PostParams::default(),
        &shared_key_external_secret("often", "1s", "often"),
    )
    .await
    .unwrap();
    eventually("Ready", || async {
        ready(&ess).await
            == [(
                "often".to_owned(),
                "True".to_owned(),
                "SecretSynced".to_owned(),
            )]
    })
    .await;
    cluster.dev().reset_request_counts();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let handle = cluster.dev();
    let refreshes = handle.request_count("patch", "externalsecrets/status");
    assert!(refreshes >= 3, "{refreshes} refreshes in 5 s at 1s");
    assert_eq!(handle.request_count("get", "secrets"), 0, "Secret reads");
    assert_eq!(handle.write_count("secrets"), 0, "Secret writes");
    assert_eq!(
        handle.request_count("create", "events"),
        0,
        "no Event per refresh"
    );
}

#[tokio::test]
async fn a_secret_kuvert_does_not_manage_is_found_when_creating_and_left_as_it_was() {
    let (cluster, _operator, ess, secrets) = setup().await;
    // Controlled by another object (a Secret with no controller would be adopted, as ESO does).
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let owner = configmaps
        .create(
            &PostParams::default(),
            &yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owner, namespace: default}\n"),
        )
        .await
        .unwrap();
    let theirs: Secret = yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: theirs, namespace: default, ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: owner, uid: {}, controller: true}}]}}\nstringData: {{k: mine}}\n",
        owner.metadata.uid.unwrap()
    ));
    let theirs = secrets
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    cluster.dev().reset_request_counts();
    ess.create(
        &PostParams::default(),
        &shared_key_external_secret("app", "1h", "theirs"),
    )
    .await
    .unwrap();
    eventually("Ready=False, NotOwned", || async {
        ready(&ess).await == [("app".to_owned(), "False".to_owned(), "NotOwned".to_owned())]
    })
    .await;
    // The failure's status write wakes one more attempt, which fails the same way.
    let handle = cluster.dev();
    let creates = handle.request_count("create", "secrets");
    assert!((1..=2).contains(&creates), "{creates} refused creates");
    assert_eq!(
        handle.request_count("get", "secrets"),
        creates,
        "each refusal read it"
    );
    assert_eq!(
        handle.write_count("secrets"),
        creates,
        "no write but the refused creates"
    );
    let now = secrets.get("theirs").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        theirs.metadata.resource_version
    );
    assert_eq!(now.data, theirs.data);
}
