//! A namespace-scoped install (`kuvert run --namespace team-a`, on the real control plane with
//! only the Role of `charts/kuvert/files/rbac/namespaced.yaml` in `team-a`): its namespace syncs, another
//! namespace is left alone, and a ClusterSecretStore, which a scoped instance cannot watch,
//! fails with a clear condition instead of a silent 403.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{
    Backend, Cluster, Operator, eventually, fake_store, map, reading_k, secret_data, yaml,
};

async fn ready(api: &Api<ExternalSecret>, name: &str) -> Option<(String, String, String)> {
    let status = api.get(name).await.unwrap().status?;
    let c = status.conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason, c.message))
}

async fn a_namespace_scoped_install_serves_its_namespace_only(backend: Backend) {
    let cluster = Cluster::start_scoped_on(backend, "team-a").await;
    Api::<Namespace>::all(cluster.client.clone())
        .create(&PostParams::default(), &yaml("metadata: {name: team-b}"))
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &["--namespace", "team-a"]);
    // Ready means every watch listed: none was refused by the Role.
    operator.wait_ready().await;

    for namespace in ["team-a", "team-b"] {
        Api::<SecretStore>::namespaced(cluster.client.clone(), namespace)
            .create(
                &PostParams::default(),
                &fake_store(namespace, &[("k", "v")]),
            )
            .await
            .unwrap();
        Api::<ExternalSecret>::namespaced(cluster.client.clone(), namespace)
            .create(
                &PostParams::default(),
                &reading_k(namespace, "app", "{name: demo}"),
            )
            .await
            .unwrap();
    }
    let team_a: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "team-a");
    team_a
        .create(
            &PostParams::default(),
            &reading_k(
                "team-a",
                "uses-cluster-store",
                "{name: shared, kind: ClusterSecretStore}",
            ),
        )
        .await
        .unwrap();

    let secrets_a: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    eventually("team-a's Secret", || async {
        secret_data(&secrets_a, "app").await == map(&[("k", "v")])
    })
    .await;
    eventually(
        "the ClusterSecretStore reference to be refused clearly",
        || async {
            ready(&team_a, "uses-cluster-store").await
            == Some((
                "False".into(),
                "ClusterStoresOff".into(),
                "spec.secretStoreRef: ClusterSecretStore/shared: this kuvert instance serves one \
                 namespace and watches no ClusterSecretStores (kuvert run --namespace; \
                 --cluster-stores turns them on)"
                    .into(),
            ))
        },
    )
    .await;

    // team-b is not this instance's: no Secret, no status, ever.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let team_b: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "team-b");
    assert_eq!(ready(&team_b, "app").await, None);
    let secrets_b: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-b");
    assert_eq!(secret_data(&secrets_b, "app").await, None);
}

on_both_backends!(a_namespace_scoped_install_serves_its_namespace_only);
