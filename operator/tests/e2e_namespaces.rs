//! A namespace deleted while it holds ExternalSecrets, one of them holding a database lease
//! behind kuvert's finalizer: the namespace goes away completely (nothing stuck on kuvert's
//! finalizer, whichever order the namespace controller deletes things in), and the operator
//! keeps serving the rest of the cluster. A namespace relabelled to match a
//! ClusterSecretStore's `namespaceSelector` re-admits its waiting ExternalSecret at once.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, VaultDynamicSecret};
use kuvert_testkit::{OpenBao, Postgres, string_secret};
use support::{
    Backend, Cluster, Operator, create, eventually, fake_store, map, ready, secret_data, yaml,
};

const NS: &str = "doomed";

async fn a_deleted_namespace_goes_away_with_its_external_secrets_and_leases(backend: Backend) {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "10m", "1h").await;
    let cluster = Cluster::start_on(backend).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {NS}}}")),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;

    // A fake store with one ExternalSecret, and a database generator with another.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &string_secret(NS, "vault-token", &[("token", bao.root_token())]),
        )
        .await
        .unwrap();
    let generator: VaultDynamicSecret = yaml(&format!(
        "apiVersion: generators.kuvert.io/v1alpha1\nkind: VaultDynamicSecret\nmetadata: {{name: db, namespace: {NS}}}\nspec:\n  path: database/creds/app\n  provider:\n    server: {}\n    auth:\n      tokenSecretRef: {{name: vault-token, key: token}}\n",
        bao.addr()
    ));
    Api::<VaultDynamicSecret>::namespaced(cluster.client.clone(), NS)
        .create(&PostParams::default(), &generator)
        .await
        .unwrap();
    create(&cluster.client, &fake_store(NS, &[("k", "v")])).await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), NS);
    for es in [
        format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: plain, namespace: {NS}}}\nspec:\n  secretStoreRef: {{name: demo}}\n  data: [{{secretKey: k, remoteRef: {{key: k}}}}]\n"
        ),
        format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: db, namespace: {NS}}}\nspec:\n  refreshInterval: 1h\n  dataFrom:\n    - sourceRef: {{generatorRef: {{kind: VaultDynamicSecret, name: db}}}}\n"
        ),
    ] {
        ess.create(&PostParams::default(), &yaml(&es))
            .await
            .unwrap();
    }
    eventually("both Secrets", || async {
        secret_data(&secrets, "plain").await == map(&[("k", "v")])
            && secret_data(&secrets, "db").await.is_some()
    })
    .await;
    let user = secret_data(&secrets, "db").await.unwrap()["username"].clone();
    assert!(pg.role_exists(&user).await);
    assert!(
        ess.get("db")
            .await
            .unwrap()
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kuvert.io/generator-leases".to_owned())
    );

    namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace to be gone", || async {
        namespaces.get_opt(NS).await.unwrap().is_none()
    })
    .await;

    // The operator still serves the rest of the cluster.
    create(&cluster.client, &fake_store("default", &[("k", "v")])).await;
    Api::<ExternalSecret>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &yaml(
                "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: after, namespace: default}\nspec:\n  secretStoreRef: {name: demo}\n  data: [{secretKey: k, remoteRef: {key: k}}]\n",
            ),
        )
        .await
        .unwrap();
    let default_secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("a Secret in another namespace afterwards", || async {
        secret_data(&default_secrets, "after").await == map(&[("k", "v")])
    })
    .await;
    // Not asserted: whether the lease was revoked. That needs the generator and its credential
    // Secret, which the namespace controller may delete before kuvert's finalizer runs (the
    // real one did not in our runs, devcluster did); kuvert then gives up on the lease, which
    // expires by itself, rather than block the namespace.
}

on_both_backends!(a_deleted_namespace_goes_away_with_its_external_secrets_and_leases);

async fn a_relabelled_namespace_is_admitted_without_waiting_for_a_retry(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(&PostParams::default(), &yaml("metadata: {name: team}"))
        .await
        .unwrap();
    let store: kuvert_core::api::ClusterSecretStore = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ClusterSecretStore\nmetadata: {name: shared}\nspec:\n  provider: {fake: {data: [{key: k, value: v}]}}\n  conditions: [{namespaceSelector: {matchLabels: {team: a}}}]\n",
    );
    Api::all(cluster.client.clone())
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "team");
    ess.create(
        &PostParams::default(),
        &yaml("apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: team}\nspec:\n  secretStoreRef: {name: shared, kind: ClusterSecretStore}\n  data: [{secretKey: k, remoteRef: {key: k}}]\n"),
    )
    .await
    .unwrap();
    eventually("Ready=False StoreNotAllowed", || async {
        ready(&ess, "app").await == Some(("False".into(), "StoreNotAllowed".into()))
    })
    .await;

    let labelled = tokio::time::Instant::now();
    let label = serde_json::json!({"metadata": {"labels": {"team": "a"}}});
    namespaces
        .patch("team", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team");
    eventually("the Secret once the namespace is labelled", || async {
        secret_data(&secrets, "app").await == map(&[("k", "v")])
    })
    .await;
    // The first retry of a refused ExternalSecret is 10 s away: only the namespace watch
    // explains a sync before it.
    let took = labelled.elapsed();
    assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
}

on_both_backends!(a_relabelled_namespace_is_admitted_without_waiting_for_a_retry);
