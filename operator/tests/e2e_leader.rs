//! Two `kuvert run --leader-election` replicas: one leads, the other takes over when it dies
//! (SIGKILL), within the lease duration, and syncs nothing the first one synced again.

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kuvert_core::api::ExternalSecret;
use support::{Backend, Cluster, Operator, create, eventually, fake_store, yaml};

fn external_secret(name: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  secretStoreRef: {{name: demo}}\n  data: [{{secretKey: k, remoteRef: {{key: k}}}}]\n"
    ))
}

async fn one_replica_leads_and_the_other_takes_over_when_it_dies(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    create(&cluster.client, &fake_store("default", &[("k", "v")])).await;
    let flags = |id: &'static str| {
        [
            "--leader-election",
            "--leader-election-lease-duration",
            "3s",
            "--instance",
            id,
        ]
    };
    let mut a = Operator::start(&cluster, &flags("replica-a"));
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "default");
    let holder = || async {
        leases
            .get_opt("kuvert-leader")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    };
    eventually("replica-a to lead", || async {
        holder().await.as_deref() == Some("replica-a")
    })
    .await;
    let b = Operator::start(&cluster, &flags("replica-b"));
    a.wait_ready().await;

    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("first"))
        .await
        .unwrap();
    eventually("the leader to sync", || async {
        secrets.get_opt("first").await.unwrap().is_some()
    })
    .await;
    assert_eq!(
        holder().await.as_deref(),
        Some("replica-a"),
        "the follower never took the lease"
    );
    assert_eq!(
        b.get("/readyz").await.0,
        503,
        "a follower runs no controller"
    );

    // What the first leader wrote, to check the new one does not sync it again.
    let written = || async {
        (
            secrets
                .get("first")
                .await
                .unwrap()
                .metadata
                .resource_version,
            ess.get("first").await.unwrap().metadata.resource_version,
        )
    };
    eventually("the first leader's status write", || async {
        ess.get("first")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.conditions.iter().any(|c| c.status == "True"))
    })
    .await;
    let before = written().await;

    a.stop();
    eventually("replica-b to take over", || async {
        holder().await.as_deref() == Some("replica-b")
    })
    .await;
    b.wait_ready().await;
    ess.create(&PostParams::default(), &external_secret("second"))
        .await
        .unwrap();
    eventually("the new leader to sync", || async {
        secrets.get_opt("second").await.unwrap().is_some()
    })
    .await;
    assert_eq!(
        written().await,
        before,
        "the new leader neither rewrote the first Secret nor its status"
    );
}

on_both_backends!(one_replica_leads_and_the_other_takes_over_when_it_dies,);
