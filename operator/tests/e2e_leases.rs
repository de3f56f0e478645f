//! The lease lifecycle through `kuvert run`, against a real OpenBao database engine and
//! PostgreSQL: a lease is renewed at the configured fraction of its TTL (so it outlives its
//! first expiry), replaced by new credentials before its maximum TTL once a renewal is cut
//! short, and the replaced lease is revoked after the new Secret is written.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, GeneratorLease};
use kuvert_testkit::{OpenBao, Postgres};
use support::{
    Backend, Cluster, Operator, eventually, external_secret_events, ready, secret_data,
    vault_dynamic_secret, yaml,
};

async fn lease(ess: &Api<ExternalSecret>) -> Option<GeneratorLease> {
    ess.get("db")
        .await
        .unwrap()
        .status
        .and_then(|s| s.leases.into_iter().next())
}

async fn a_lease_is_renewed_then_replaced_before_its_max_ttl_and_the_old_one_revoked(
    backend: Backend,
) {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "8s", "18s").await;
    let cluster = Cluster::start_on(backend).await;
    vault_dynamic_secret(
        &cluster,
        bao.addr(),
        bao.root_token(),
        "db",
        "  path: database/creds/app\n",
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let operator = Operator::start(&cluster, &["--lease-renew-fraction", "0.5"]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let es: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: db, namespace: default}\nspec:\n  refreshInterval: 1h\n  dataFrom:\n  - sourceRef: {generatorRef: {kind: VaultDynamicSecret, name: db}}\n",
    );
    ess.create(&PostParams::default(), &es).await.unwrap();

    eventually("the lease in status", || async {
        lease(&ess).await.is_some()
    })
    .await;
    let issued = Instant::now();
    let first = lease(&ess).await.unwrap();
    assert_eq!(first.field, "spec.dataFrom[0]");
    assert_eq!(first.generator, "VaultDynamicSecret/default/db");
    assert!(first.renewable);
    assert_eq!(first.duration_seconds, 8);
    let creds = secret_data(&secrets, "db").await.unwrap();
    let user = creds["username"].clone();
    let status = serde_json::to_string(&ess.get("db").await.unwrap().status).unwrap();
    assert!(
        !status.contains(&creds["password"]),
        "no credential in status"
    );

    // Renewed at about half its TTL: same lease, later renewal time, still valid in OpenBao
    // after its first 8 s are over.
    eventually("the lease to be renewed", || async {
        lease(&ess)
            .await
            .is_some_and(|l| l.lease_id == first.lease_id && l.renewed_time != first.renewed_time)
    })
    .await;
    let renewed_after = issued.elapsed();
    let lookup = bao.lease_lookup(&first.lease_id).await.unwrap();
    assert!(
        lookup["last_renewal"].is_string(),
        "OpenBao saw no renewal: {lookup}"
    );
    assert!(
        renewed_after >= Duration::from_secs(3) && renewed_after < Duration::from_secs(7),
        "renewed after {renewed_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(9).saturating_sub(issued.elapsed())).await;
    if lease(&ess).await.unwrap().lease_id == first.lease_id {
        assert!(
            bao.lease_lookup(&first.lease_id).await.is_ok(),
            "the renewed lease outlived its first TTL"
        );
    }
    assert_eq!(
        secret_data(&secrets, "db").await.unwrap(),
        creds,
        "renewal keeps the credentials"
    );

    // Renewals stop short of the 18 s maximum: new credentials replace the lease before then.
    eventually("the lease to be replaced", || async {
        lease(&ess)
            .await
            .is_some_and(|l| l.lease_id != first.lease_id)
    })
    .await;
    assert!(
        issued.elapsed() < Duration::from_secs(18),
        "replaced only after {:?}, past the maximum TTL",
        issued.elapsed()
    );
    let fresh = secret_data(&secrets, "db").await.unwrap();
    assert_ne!(fresh["username"], user);
    assert_eq!(
        pg.query_as(
            &fresh["username"],
            &fresh["password"],
            "SELECT current_user"
        )
        .await,
        Ok(fresh["username"].clone())
    );
    // The replaced lease is revoked once the new Secret is written: its role is dropped.
    eventually("the replaced lease to be revoked", || async {
        bao.lease_lookup(&first.lease_id).await.is_err() && !pg.role_exists(&user).await
    })
    .await;
    assert!(
        issued.elapsed() < Duration::from_secs(18),
        "the old lease was revoked by kuvert, not expired"
    );
}

#[tokio::test]
async fn a_restarted_operator_neither_renews_nor_regenerates_a_lease_early() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "1h", "24h").await;
    let cluster = Cluster::start().await;
    vault_dynamic_secret(
        &cluster,
        bao.addr(),
        bao.root_token(),
        "db",
        "  path: database/creds/app\n",
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let es: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: db, namespace: default}\nspec:\n  refreshInterval: 1h\n  dataFrom:\n  - sourceRef: {generatorRef: {kind: VaultDynamicSecret, name: db}}\n",
    );
    ess.create(&PostParams::default(), &es).await.unwrap();

    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    eventually("the lease in status", || async {
        lease(&ess).await.is_some()
    })
    .await;
    let first = lease(&ess).await.unwrap();
    let creds = secret_data(&secrets, "db").await.unwrap();
    let kept = secrets
        .get("db.kuvert-generated")
        .await
        .unwrap()
        .metadata
        .resource_version;
    operator.stop();

    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lease(&ess).await.unwrap(), first, "the lease was touched");
    assert_eq!(secret_data(&secrets, "db").await.unwrap(), creds);
    assert_eq!(
        secrets
            .get("db.kuvert-generated")
            .await
            .unwrap()
            .metadata
            .resource_version,
        kept
    );
    let lookup = bao.lease_lookup(&first.lease_id).await.unwrap();
    assert_eq!(lookup["renewable"], true);
    assert_eq!(
        lookup["last_renewal"],
        serde_json::Value::Null,
        "OpenBao saw a renewal: {lookup}"
    );
}

/// The OpenBao policy of the generator's token: read credentials, renew and (with `revoke`)
/// revoke their leases.
fn db_policy(revoke: bool) -> String {
    let mut hcl = String::from(
        "path \"database/creds/app\" { capabilities = [\"read\"] }\npath \"sys/leases/renew\" { capabilities = [\"update\"] }\n",
    );
    if revoke {
        hcl.push_str("path \"sys/leases/revoke\" { capabilities = [\"update\"] }\n");
    }
    hcl
}

/// Deleting an ExternalSecret whose lease the store refuses to revoke: it stays (Terminating)
/// and says so — Ready false, `LeaseRevocationFailed` with the store's answer, a Warning Event —
/// until `kuvert.io/abandon-leases: "true"` lets it go, recorded in an Event, the lease left
/// valid in OpenBao to expire by its TTL.
async fn a_deletion_blocked_by_a_refused_revocation_says_so_and_the_annotation_frees_it(
    backend: Backend,
) {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "1h", "24h").await;
    bao.policy("db", &db_policy(true)).await;
    let token = bao.token(&["db"], serde_json::json!({"ttl": "1h"})).await;
    let cluster = Cluster::start_on(backend).await;
    vault_dynamic_secret(
        &cluster,
        bao.addr(),
        &token,
        "db",
        "  path: database/creds/app\n",
    )
    .await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let es: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: db, namespace: default}\nspec:\n  refreshInterval: 1h\n  dataFrom:\n  - sourceRef: {generatorRef: {kind: VaultDynamicSecret, name: db}}\n",
    );
    ess.create(&PostParams::default(), &es).await.unwrap();
    eventually("the lease in status", || async {
        lease(&ess).await.is_some()
    })
    .await;
    let held = lease(&ess).await.unwrap();

    // The token's policy loses revoke; the ExternalSecret is deleted.
    bao.policy("db", &db_policy(false)).await;
    ess.delete("db", &DeleteParams::default()).await.unwrap();
    eventually("Ready false with LeaseRevocationFailed", || async {
        ready(&ess, "db").await == Some(("False".into(), "LeaseRevocationFailed".into()))
    })
    .await;
    let status = ess.get("db").await.unwrap().status.unwrap();
    let message = &kuvert_core::conditions::find_ready(&status.conditions)
        .unwrap()
        .message;
    assert!(
        message.starts_with(
            "1 lease(s) of ExternalSecret/default/db could not be revoked (VaultDynamicSecret/default/db: permission denied: PUT sys/leases/revoke"
        ) && message.ends_with(
                "; retried with backoff. To let the deletion finish without revoking them (they expire by their TTL), annotate it kuvert.io/abandon-leases=true"
            ),
        "{message}"
    );
    eventually("a Warning Event LeaseRevocationFailed", || async {
        external_secret_events(&cluster.client, "default")
            .await
            .contains(&(
                "db".into(),
                "Warning".into(),
                "LeaseRevocationFailed".into(),
            ))
    })
    .await;
    assert!(
        ess.get("db")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some(),
        "still there, Terminating"
    );
    assert!(bao.lease_lookup(&held.lease_id).await.is_ok());

    // The escape: the leases are abandoned and the deletion finishes.
    ess.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"metadata": {"annotations": {"kuvert.io/abandon-leases": "true"}}}),
        ),
    )
    .await
    .unwrap();
    eventually("the ExternalSecret to be gone", || async {
        ess.get_opt("db").await.unwrap().is_none()
    })
    .await;
    assert!(
        external_secret_events(&cluster.client, "default")
            .await
            .contains(&("db".into(), "Warning".into(), "LeasesAbandoned".into()))
    );
    assert!(
        bao.lease_lookup(&held.lease_id).await.is_ok(),
        "abandoned, not revoked: it expires by its TTL"
    );
}

on_both_backends!(
    a_lease_is_renewed_then_replaced_before_its_max_ttl_and_the_old_one_revoked,
    a_deletion_blocked_by_a_refused_revocation_says_so_and_the_annotation_frees_it,
);
