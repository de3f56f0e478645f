//! Token lifecycle against a real OpenBao server: one login shared by every user of a store,
//! renewal before expiry, re-login after a server-side revoke, no login storm on a policy
//! denial, revocation when the cache lets go, static tokens left alone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kuvert_core::api::{SecretStoreKind, VaultAppRole, VaultAuth, VaultProvider as VaultSpec};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::StoreContext;
use kuvert_provider_vault::{ConnectionCache, VaultConnection, VaultProvider};
use serde_json::json;
use support::*;

const READ_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read", "list"] }
"#;

/// Seeds a secret, a reader policy and an AppRole `app` with `role_options`; returns a spec
/// logging in with it and the Secrets it needs.
async fn approle_store(bao: &OpenBao, role_options: serde_json::Value) -> (VaultSpec, MemoryKube) {
    bao.kv2_put("secret", "app", json!({"password": "pw"}))
        .await;
    bao.policy("reader", READ_POLICY).await;
    bao.enable_auth("approle", "approle").await;
    let mut role = json!({"token_policies": ["reader"]});
    if let (Some(r), Some(o)) = (role.as_object_mut(), role_options.as_object()) {
        r.extend(o.clone());
    }
    bao.write("auth/approle/role/app", role).await;
    let role_id = bao.read("auth/approle/role/app/role-id").await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .write("auth/approle/role/app/secret-id", json!({}))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("approle", &[("secret-id", &secret_id)]));
    let spec = spec(
        bao.addr(),
        VaultAuth::AppRole(VaultAppRole {
            path: None,
            role_id: Some(role_id),
            role_ref: None,
            secret_ref: key_ref("approle", "secret-id"),
        }),
    );
    (spec, kube)
}

async fn connect(
    cache: &ConnectionCache,
    store_name: &str,
    spec: &VaultSpec,
    kube: &MemoryKube,
) -> Arc<VaultConnection> {
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: store_name,
        namespace: Some(NS),
    };
    cache.connect(&store, spec, Some(NS), kube).await.unwrap()
}

async fn accessor(conn: &VaultConnection) -> String {
    conn.lookup_self().await.unwrap()["accessor"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn accessor_ttl(bao: &OpenBao, accessor: &str) -> Option<u64> {
    bao.api_as(
        bao.root_token(),
        None,
        "POST",
        "auth/token/lookup-accessor",
        Some(json!({"accessor": accessor})),
    )
    .await
    .ok()
    .and_then(|v| v["data"]["ttl"].as_u64())
}

#[tokio::test]
async fn every_user_of_a_store_shares_one_login() {
    let bao = OpenBao::start().await;
    let (spec, kube) = approle_store(&bao, json!({})).await;
    let provider = VaultProvider::new();
    let tokens_before = bao.token_accessor_count().await;

    // Many syncs at once, of two stores with the same configuration.
    let mut syncs = Vec::new();
    for i in 0..20 {
        let provider = provider.clone();
        let spec = spec.clone();
        let kube = kube.clone();
        syncs.push(tokio::spawn(async move {
            let c = client(&provider, &spec, &kube).await.unwrap();
            let _ = i;
            get_text(c.as_ref(), "app").await.unwrap()
        }));
    }
    for sync in syncs {
        assert_eq!(json(&sync.await.unwrap()), json!({"password": "pw"}));
    }
    assert_eq!(provider.cache().len(), 1);
    assert_eq!(bao.token_accessor_count().await, tokens_before + 1);
    let conn = connect(provider.cache(), "another-store", &spec, &kube).await;
    assert_eq!(conn.logins(), 1);

    // A rotated secret ID is a new identity: a new connection with its own login.
    let new_secret_id = bao
        .write("auth/approle/role/app/secret-id", json!({}))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut rotated = kube.clone();
    rotated.add_secret(&secret("approle", &[("secret-id", &new_secret_id)]));
    let c = client(&provider, &spec, &rotated).await.unwrap();
    get_text(c.as_ref(), "app").await.unwrap();
    assert_eq!(provider.cache().len(), 2);
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let bao = OpenBao::start().await;
    let (spec, kube) =
        approle_store(&bao, json!({"token_ttl": "9s", "token_max_ttl": "10m"})).await;
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    let accessor = accessor(&conn).await;
    assert!(accessor_ttl(&bao, &accessor).await.unwrap() <= 9);

    // Past two thirds of the TTL, the next request renews first.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert!(accessor_ttl(&bao, &accessor).await.unwrap() <= 3);
    conn.request(
        kuvert_provider_vault::connection::Method::GET,
        "secret/data/app",
        None,
    )
    .await
    .unwrap();
    assert_eq!(conn.renewals(), 1);
    assert_eq!(conn.logins(), 1);
    let ttl = accessor_ttl(&bao, &accessor).await.unwrap();
    assert!(
        ttl >= 6,
        "the renewal extended the TTL to about 9s, got {ttl}"
    );
}

#[tokio::test]
async fn a_token_that_expired_while_idle_is_replaced_on_next_use() {
    let bao = OpenBao::start().await;
    let (spec, kube) =
        approle_store(&bao, json!({"token_ttl": "2s", "token_max_ttl": "10m"})).await;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        json(&get_text(c.as_ref(), "app").await.unwrap()),
        json!({"password": "pw"})
    );
    let conn = connect(provider.cache(), "vault", &spec, &kube).await;
    assert_eq!(conn.logins(), 2);
    assert_eq!(conn.renewals(), 0);
}

#[tokio::test]
async fn a_token_near_its_max_ttl_is_replaced_by_a_fresh_login() {
    let bao = OpenBao::start().await;
    let (spec, kube) = approle_store(&bao, json!({"token_ttl": "6s", "token_max_ttl": "6s"})).await;
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    let first = accessor(&conn).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    // Renewal would grant at most the ~1.5s left before the 6s max, less than half the 6s
    // TTL: a new login instead.
    let second = accessor(&conn).await;
    assert_ne!(first, second);
    assert_eq!(conn.logins(), 2);
    // The replaced token was revoked, not left to expire.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(accessor_ttl(&bao, &first).await, None);
}

#[tokio::test]
async fn a_token_revoked_server_side_is_replaced_by_a_new_login() {
    let bao = OpenBao::start().await;
    let (spec, kube) = approle_store(&bao, json!({})).await;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    let conn = connect(provider.cache(), "vault", &spec, &kube).await;
    let old = accessor(&conn).await;
    bao.write("auth/token/revoke-accessor", json!({"accessor": old}))
        .await;

    assert_eq!(
        json(&get_text(c.as_ref(), "app").await.unwrap()),
        json!({"password": "pw"})
    );
    assert_eq!(conn.logins(), 2);
    assert_ne!(accessor(&conn).await, old);
}

/// AppRole login requests OpenBao logged.
fn approle_logins(bao: &OpenBao) -> usize {
    std::fs::read_to_string(bao.audit_log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.ends_with('}'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["type"] == "request" && e["request"]["path"] == "auth/approle/login")
        .count()
}

#[tokio::test]
async fn a_refused_login_is_answered_to_every_user_without_logging_in_again_for_a_step() {
    let bao = OpenBao::start_audited().await;
    let (spec, kube) = approle_store(&bao, json!({})).await;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    let conn = connect(provider.cache(), "vault", &spec, &kube).await;
    assert_eq!(approle_logins(&bao), 1);
    // The secret-id is destroyed and its token revoked: the next login is refused.
    let listed = bao
        .api("LIST", "auth/approle/role/app/secret-id", None)
        .await;
    for accessor in listed["data"]["keys"].as_array().unwrap() {
        bao.write(
            "auth/approle/role/app/secret-id-accessor/destroy",
            json!({"secret_id_accessor": accessor}),
        )
        .await;
    }
    bao.write(
        "auth/token/revoke-accessor",
        json!({"accessor": accessor(&conn).await}),
    )
    .await;

    for _ in 0..2 {
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let c = c.clone();
            reads.spawn(async move { get_text(c.as_ref(), "app").await });
        }
        for result in reads.join_all().await {
            let err = result.unwrap_err();
            assert_eq!(err.reason(), "Unauthenticated", "{err}");
            assert!(
                err.to_string().contains("invalid role or secret ID"),
                "{err}"
            );
        }
    }
    assert_eq!(approle_logins(&bao), 2, "one refused login for forty reads");
}

#[tokio::test]
async fn a_policy_denial_is_forbidden_without_a_new_login() {
    let bao = OpenBao::start().await;
    let (mut spec, kube) = approle_store(&bao, json!({})).await;
    // Keys name their mount: `private` is outside the reader policy.
    spec.path = None;
    bao.mount("private", "kv", json!({"version": "2"})).await;
    bao.kv2_put("private", "x", json!({"k": "v"})).await;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    for _ in 0..3 {
        let err = get_text(c.as_ref(), "private/x").await.unwrap_err();
        assert_eq!(err.reason(), "Forbidden", "{err}");
        assert!(err.to_string().contains("private/data/x"), "{err}");
    }
    let conn = connect(provider.cache(), "vault", &spec, &kube).await;
    assert_eq!(conn.logins(), 1);
}

#[tokio::test]
async fn tokens_are_revoked_when_the_cache_lets_go() {
    let bao = OpenBao::start().await;
    let (spec, kube) = approle_store(&bao, json!({})).await;

    // Shutdown revokes at once.
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    let a = accessor(&conn).await;
    drop(conn);
    cache.shutdown().await;
    assert_eq!(accessor_ttl(&bao, &a).await, None, "revoked on shutdown");

    // Eviction of an idle entry revokes once the last user drops it.
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    let b = accessor(&conn).await;
    assert_eq!(cache.evict_idle(Duration::ZERO), 1);
    assert!(
        accessor_ttl(&bao, &b).await.is_some(),
        "still held by a user"
    );
    drop(conn);
    let mut revoked = false;
    for _ in 0..50 {
        if accessor_ttl(&bao, &b).await.is_none() {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        revoked,
        "revoked after the last user dropped the connection"
    );
}

#[tokio::test]
async fn a_static_token_is_never_revoked() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "pw"}))
        .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    conn.lookup_self().await.unwrap();
    assert_eq!(conn.logins(), 0);
    drop(conn);
    cache.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bao.lookup(bao.root_token()).await.is_some());
}

#[tokio::test]
async fn provider_shutdown_revokes_every_login() {
    use kuvert_core::provider::Provider;
    let bao = OpenBao::start().await;
    let (spec, kube) = approle_store(&bao, json!({})).await;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    get_text(c.as_ref(), "app").await.unwrap();
    let conn = connect(provider.cache(), "vault", &spec, &kube).await;
    let a = accessor(&conn).await;
    Provider::shutdown(&provider).await;
    assert_eq!(accessor_ttl(&bao, &a).await, None);
    assert!(provider.cache().is_empty());
}

/// A requested ServiceAccount token is short-lived: once half its life has passed, the cache
/// requests a fresh one for the next login (without logging in now), so a re-login after the
/// Vault token is lost presents a token that is still valid.
#[tokio::test]
async fn a_requested_service_account_token_is_refreshed_for_the_next_login() {
    use kuvert_core::api::{
        ServiceAccountSelector, VaultJwtAuth, VaultKubernetesServiceAccountTokenAuth,
    };
    use kuvert_testkit::{JwtSigner, unix_now};

    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "pw"}))
        .await;
    bao.policy("reader", READ_POLICY).await;
    let signer = JwtSigner::generate();
    bao.enable_auth("jwt", "jwt").await;
    bao.write(
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [signer.public_key_pem()]}),
    )
    .await;
    let role = |subject: &str| {
        json!({
            "role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
            "bound_subject": subject, "token_policies": ["reader"],
        })
    };
    bao.write("auth/jwt/role/app", role("first")).await;
    let token_for = |sub: &str| {
        let now = unix_now();
        signer.sign(&json!({"sub": sub, "aud": "vault", "iat": now, "exp": now + 3600}))
    };
    let mut kube = MemoryKube::new();
    kube.set_service_account_token(NS, "app-sa", token_for("first").into());
    let spec = spec(
        bao.addr(),
        VaultAuth::Jwt(VaultJwtAuth {
            path: None,
            role: Some("app".into()),
            secret_ref: None,
            kubernetes_service_account_token: Some(VaultKubernetesServiceAccountTokenAuth {
                service_account_ref: ServiceAccountSelector {
                    name: "app-sa".into(),
                    ..ServiceAccountSelector::default()
                },
                audiences: vec![],
                expiration_seconds: Some(600),
            }),
        }),
    );
    let cache = ConnectionCache::new();
    let conn = connect(&cache, "vault", &spec, &kube).await;
    assert_eq!(conn.logins(), 1);

    // From now on only the "second" ServiceAccount token logs in.
    bao.write("auth/jwt/role/app", role("second")).await;
    kube.set_service_account_token(NS, "app-sa", token_for("second").into());
    // Half the requested token's life later (no I/O happens while time is paused)...
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(301)).await;
    let same = connect(&cache, "vault", &spec, &kube).await;
    tokio::time::resume();
    assert!(Arc::ptr_eq(&conn, &same));
    assert_eq!(conn.logins(), 1, "refreshing the material is not a login");

    // The Vault token is lost: the re-login presents the fresh ServiceAccount token.
    let old = accessor(&conn).await;
    bao.write("auth/token/revoke-accessor", json!({"accessor": old}))
        .await;
    conn.request(
        kuvert_provider_vault::connection::Method::GET,
        "secret/data/app",
        None,
    )
    .await
    .unwrap();
    assert_eq!(conn.logins(), 2);
}
