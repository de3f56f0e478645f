//! Two `kuvert run --leader-election` replicas: one leads, the other stands by (ready, so a
//! Deployment of two becomes available) and takes over when the leader dies (SIGKILL: once the
//! lease expires) or shuts down (SIGTERM: at once, the lease released), and syncs nothing the
//! first one synced again.

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

/// How the leader goes away.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exit {
    Killed,
    Terminated,
}

async fn one_replica_leads_and_the_other_takes_over_when_it_dies(backend: Backend) {
    failover(backend, Exit::Killed).await;
}

async fn a_leader_shutting_down_hands_over_at_once(backend: Backend) {
    failover(backend, Exit::Terminated).await;
}

async fn failover(backend: Backend, exit: Exit) {
    let cluster = Cluster::start_on(backend).await;
    create(&cluster.client, &fake_store("default", &[("k", "v")])).await;
    // A SIGTERM must hand over without waiting for expiry: the lease then outlasts the test.
    let duration = match exit {
        Exit::Killed => "3s",
        Exit::Terminated => "120s",
    };
    let flags = |id: &'static str| {
        [
            "--leader-election",
            "--leader-election-lease-duration",
            duration,
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
    // Ready while standing by: readiness does not depend on leadership.
    b.wait_ready().await;

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
    let (_, metrics) = b.get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "kuvert_leader 0"),
        "the standby says it does not lead:\n{metrics}"
    );
    let (_, metrics) = a.get("/metrics").await;
    assert!(metrics.lines().any(|l| l == "kuvert_leader 1"));

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

    let stopped = std::time::Instant::now();
    match exit {
        Exit::Killed => a.stop(),
        Exit::Terminated => {
            assert_eq!(a.terminate(), Some(0), "SIGTERM ends the leader cleanly");
        }
    }
    eventually("replica-b to take over", || async {
        holder().await.as_deref() == Some("replica-b")
    })
    .await;
    eprintln!("failover took {:?}", stopped.elapsed());
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

on_both_backends!(
    one_replica_leads_and_the_other_takes_over_when_it_dies,
    a_leader_shutting_down_hands_over_at_once,
);

/// A replica waiting for leadership still ends on SIGTERM, at once.
async fn a_standby_replica_ends_on_sigterm(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let flags = |id: &'static str| ["--leader-election", "--instance", id];
    let a = Operator::start(&cluster, &flags("replica-a"));
    a.wait_ready().await;
    let mut b = Operator::start(&cluster, &flags("replica-b"));
    b.wait_ready().await;
    assert_eq!(b.terminate(), Some(0));
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "default");
    assert_eq!(
        leases
            .get("kuvert-leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("replica-a"),
        "a standby shutting down leaves the leader's lease alone"
    );
}

on_both_backends!(a_standby_replica_ends_on_sigterm,);
