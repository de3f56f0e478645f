//! The connection API the VaultDynamicSecret generator builds on: arbitrary authenticated
//! requests to any engine, answers with their lease, and leases looked up and revoked through the
//! same connection — against a real OpenBao server (PKI with `generate_lease`, which needs no
//! outside service).

mod support;

use kuvert_core::api::SecretStoreKind;
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::StoreContext;
use kuvert_provider_vault::ConnectionCache;
use kuvert_provider_vault::connection::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_dynamic_secret_comes_with_a_lease_that_can_be_looked_up_and_revoked() {
    let bao = OpenBao::start().await;
    bao.mount("pki", "pki", json!({"max_lease_ttl": "24h"}))
        .await;
    bao.write(
        "pki/root/generate/internal",
        json!({"common_name": "kuvert test root", "ttl": "24h"}),
    )
    .await;
    bao.write(
        "pki/roles/web",
        json!({"allow_any_name": true, "generate_lease": true, "ttl": "1h"}),
    )
    .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    // A generator builds a context of its own namespace around its `provider` field.
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: "VaultDynamicSecret/web-cert",
        namespace: Some(NS),
    };
    let cache = ConnectionCache::new();
    let conn = cache.connect(&store, &spec, Some(NS), &kube).await.unwrap();

    let issued = conn
        .request(
            Method::POST,
            "pki/issue/web",
            Some(&json!({"common_name": "web.example.com"})),
        )
        .await
        .unwrap();
    let lease = issued.lease().expect("a lease");
    assert!(lease.id.starts_with("pki/issue/web/"), "{}", lease.id);
    assert!(lease.duration.as_secs() > 0);
    let data = issued.data().unwrap();
    assert!(
        data["certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // The answer's Debug shows the lease, never the body.
    let debug = format!("{issued:?}");
    assert!(
        debug.contains(&lease.id) && !debug.contains("BEGIN"),
        "{debug}"
    );

    // PKI leases exist to be revoked, not renewed: the refusal is Vault's, passed on.
    assert!(!lease.renewable);
    let refused = conn
        .request(
            Method::PUT,
            "sys/leases/renew",
            Some(&json!({"lease_id": lease.id, "increment": 600})),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not renewable"), "{refused}");
    let looked_up = conn
        .request(
            Method::PUT,
            "sys/leases/lookup",
            Some(&json!({"lease_id": lease.id})),
        )
        .await
        .unwrap();
    assert_eq!(looked_up.data().unwrap()["id"], json!(lease.id));

    conn.request(
        Method::PUT,
        "sys/leases/revoke",
        Some(&json!({"lease_id": lease.id})),
    )
    .await
    .unwrap();
    let gone = conn
        .request(
            Method::PUT,
            "sys/leases/lookup",
            Some(&json!({"lease_id": lease.id})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(gone.reason(), "InvalidSpec" | "NotFound"),
        "{gone}"
    );
}

#[tokio::test]
async fn list_is_a_verb_of_its_own() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "a/b", json!({"k": "v"})).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: "vault",
        namespace: Some(NS),
    };
    let conn = ConnectionCache::new()
        .connect(&store, &spec, Some(NS), &kube)
        .await
        .unwrap();
    let listed = conn
        .request(
            Method::from_bytes(b"LIST").unwrap(),
            "secret/metadata/a",
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.data().unwrap()["keys"], json!(["b"]));
}
