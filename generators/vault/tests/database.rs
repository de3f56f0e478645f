//! VaultDynamicSecret with OpenBao's database engine against a real PostgreSQL: credentials
//! that log in, leases that renew (up to their max TTL) and revoke, and the errors a user meets.

mod support;

use std::time::{Duration, Instant};

use kuvert_core::provider::ProviderError;
use kuvert_generator_vault::VaultDynamicSecretKind;
use kuvert_testkit::Postgres;
use serde_json::json;
use support::*;

#[tokio::test]
async fn database_credentials_log_in_renew_up_to_the_max_ttl_and_stop_working_once_revoked() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "5m", "1h").await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    let spec = spec(&bao, json!({"path": "database/creds/app"}));
    let generator = generator(&kind, &spec, &kube).await.unwrap();

    let generated = generator.generate().await.unwrap();
    let values = text(&generated.values);
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        ["password", "username"],
        "the keys are the answer's data"
    );
    let (user, password) = (&values["username"], &values["password"]);
    assert_eq!(
        pg.query_as(user, password, "SELECT current_user").await,
        Ok(user.clone()),
        "the generated credentials log in to PostgreSQL"
    );
    let lease = generated.lease.expect("database credentials have a lease");
    assert!(lease.id.starts_with("database/creds/app/"), "{}", lease.id);
    assert_eq!(lease.duration, Duration::from_secs(300));
    assert!(lease.renewable);
    let ttl = |v: serde_json::Value| v["ttl"].as_u64().expect("ttl");
    assert!(ttl(bao.lease_lookup(&lease.id).await.unwrap()) <= 300);

    let renewed = generator
        .renew(&lease.id, Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(renewed.id, lease.id);
    assert_eq!(renewed.duration, Duration::from_secs(1800));
    assert!(renewed.renewable);
    let after = ttl(bao.lease_lookup(&lease.id).await.unwrap());
    assert!(
        (1790..=1800).contains(&after),
        "sys/leases/lookup shows the extended TTL, got {after}"
    );

    // Past the role's max TTL (1h from issue) Vault grants less than asked: the caller sees a
    // shorter duration and knows to generate anew before it ends.
    let truncated = generator
        .renew(&lease.id, Duration::from_secs(7200))
        .await
        .unwrap();
    assert!(
        truncated.duration <= Duration::from_secs(3600)
            && truncated.duration >= Duration::from_secs(3500),
        "capped at the max TTL: {:?}",
        truncated.duration
    );

    generator.revoke(&lease.id).await.unwrap();
    assert!(!pg.role_exists(user).await, "the role is dropped");
    let refused = pg.query_as(user, password, "SELECT 1").await.unwrap_err();
    assert!(
        refused.contains(&format!(
            "password authentication failed for user \"{user}\""
        )),
        "{refused}"
    );
    let (status, body) = bao.lease_lookup(&lease.id).await.unwrap_err();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid lease"), "{body}");

    assert_lease_gone(generator.as_ref(), &lease.id).await;
}

#[tokio::test]
async fn each_generation_makes_new_credentials_with_one_login_and_a_lease_each() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "5m", "1h").await;
    let (kube, role_id) = approle(
        &bao,
        r#"
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#,
        "1h",
    )
    .await;
    let spec = approle_spec(&bao, &role_id, json!({"path": "database/creds/app"}));
    let kind = VaultDynamicSecretKind::new();
    let tokens_before = bao.token_accessor_count().await;

    let mut users = Vec::new();
    for _ in 0..3 {
        // As the operator does: a generator per sync, from the shared kind.
        let generator = generator(&kind, &spec, &kube).await.unwrap();
        let generated = generator.generate().await.unwrap();
        let values = text(&generated.values);
        assert_eq!(
            pg.query_as(&values["username"], &values["password"], "SELECT 1")
                .await,
            Ok("1".to_owned())
        );
        users.push((values["username"].clone(), generated.lease.unwrap().id));
    }
    assert_eq!(
        bao.token_accessor_count().await,
        tokens_before + 1,
        "three generations, one AppRole login"
    );
    let mut names: Vec<&String> = users.iter().map(|(u, _)| u).collect();
    names.dedup();
    assert_eq!(names.len(), 3, "every generation makes a new role");

    let generator = generator(&kind, &spec, &kube).await.unwrap();
    for (user, lease) in &users {
        generator.revoke(lease).await.unwrap();
        assert!(!pg.role_exists(user).await, "{user} is dropped");
    }
}

#[tokio::test]
async fn an_answer_without_data_is_refused_unless_allow_empty_response() {
    let bao = OpenBao::start().await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    // Writing a policy answers 204 No Content: nothing to generate.
    let fields = |allow: bool| {
        json!({
            "path": "sys/policies/acl/generated",
            "method": "PUT",
            "parameters": {"policy": "path \"secret/*\" { capabilities = [\"read\"] }"},
            "allowEmptyResponse": allow
        })
    };
    let refused = generator(&kind, &spec(&bao, fields(false)), &kube)
        .await
        .unwrap()
        .generate()
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid spec: spec.allowEmptyResponse: PUT sys/policies/acl/generated answered \
         without data; set allowEmptyResponse: true to accept an empty result"
    );
    let accepted = generator(&kind, &spec(&bao, fields(true)), &kube)
        .await
        .unwrap()
        .generate()
        .await
        .unwrap();
    assert!(accepted.values.is_empty());
    assert_eq!(accepted.lease, None);
    // The call was made: the policy exists.
    assert!(
        bao.read("sys/policies/acl/generated").await["data"]["policy"]
            .as_str()
            .unwrap()
            .contains("secret/*")
    );
}

#[tokio::test]
async fn bad_paths_and_references_are_clear_errors_naming_the_field() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "5m", "1h").await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();

    let unknown_role =
        generation_error(&kind, &bao, &kube, json!({"path": "database/creds/nope"})).await;
    assert_eq!(unknown_role.reason(), "InvalidSpec");
    assert_eq!(
        unknown_role.to_string(),
        "invalid spec: GET database/creds/nope: vault refused the request (400 Bad \
         Request): unknown role: nope"
    );

    let no_mount = generation_error(&kind, &bao, &kube, json!({"path": "nosuch/creds/app"})).await;
    assert_eq!(no_mount.reason(), "NotFound");
    assert_eq!(
        no_mount.to_string(),
        "vault path GET nosuch/creds/app not found"
    );

    let escape = connect_error(
        &kind,
        &bao,
        &kube,
        json!({"path": "database/creds/../../sys/raw"}),
    )
    .await;
    assert_eq!(
        escape.to_string(),
        "invalid spec: spec.path: \"database/creds/../../sys/raw\" is not a Vault path \
         (empty, '.' or '..' segments, '?' or '#')"
    );

    let auth = |reference: serde_json::Value| {
        json!({
            "path": "database/creds/app",
            "provider": {"server": bao.addr(), "auth": {"tokenSecretRef": reference}}
        })
    };
    let missing_secret = connect_error(
        &kind,
        &bao,
        &kube,
        auth(json!({"name": "absent", "key": "token"})),
    )
    .await;
    assert_eq!(
        missing_secret.to_string(),
        "spec.provider.auth.tokenSecretRef: Secret apps/absent not found"
    );

    let other_namespace = connect_error(
        &kind,
        &bao,
        &kube,
        auth(json!({"name": "vault-token", "key": "token", "namespace": "kube-system"})),
    )
    .await;
    assert_eq!(
        other_namespace.to_string(),
        "invalid spec: spec.provider.auth.tokenSecretRef: a SecretStore may only refer \
         to its own namespace \"apps\", not \"kube-system\""
    );

    let root = bao.root_token().to_owned();
    for e in [
        &unknown_role,
        &no_mount,
        &escape,
        &missing_secret,
        &other_namespace,
    ] {
        assert!(!e.to_string().contains(&root), "{e}");
    }
}

#[tokio::test]
async fn an_auth_result_is_a_token_whose_lease_is_renewed_and_revoked_by_accessor() {
    let bao = OpenBao::start().await;
    bao.policy("reader", "path \"secret/*\" { capabilities = [\"read\"] }")
        .await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    let spec = spec(
        &bao,
        json!({
            "path": "auth/token/create",
            "method": "POST",
            "parameters": {"policies": ["reader"], "ttl": "10m", "explicit_max_ttl": "1h"},
            "resultType": "Auth"
        }),
    );
    let generator = generator(&kind, &spec, &kube).await.unwrap();
    let generated = generator.generate().await.unwrap();
    let values = text(&generated.values);
    let token = &values["client_token"];
    let accessor = &values["accessor"];
    assert_eq!(values["policies"], r#"["default","reader"]"#);
    assert_eq!(values["lease_duration"], "600");
    let looked_up = bao.lookup(token).await.expect("the token is valid");
    assert_eq!(looked_up["accessor"], json!(accessor));

    let lease = generated.lease.expect("a token has a lease");
    assert_eq!(lease.id, format!("token-accessor:{accessor}"));
    assert!(
        !lease.id.contains(token.as_str()),
        "the token never names its lease"
    );
    assert_eq!(lease.duration, Duration::from_secs(600));
    assert!(lease.renewable);

    let renewed = generator
        .renew(&lease.id, Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(renewed.id, lease.id);
    assert_eq!(renewed.duration, Duration::from_secs(1800));
    let ttl = bao.lookup(token).await.unwrap()["ttl"].as_u64().unwrap();
    assert!((1790..=1800).contains(&ttl), "ttl {ttl}");

    generator.revoke(&lease.id).await.unwrap();
    assert_eq!(bao.lookup(token).await, None, "the token is revoked");
    assert_lease_gone(generator.as_ref(), &lease.id).await;
}

#[tokio::test]
async fn retry_settings_ride_out_a_restarting_server() {
    let mut bao = OpenBao::start().await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    // sys/tools/random needs nothing seeded, so it answers the same after a dev restart.
    let fields = |retries: i32| {
        json!({
            "path": "sys/tools/random/16",
            "method": "POST",
            "parameters": {"format": "hex"},
            "retrySettings": {"maxRetries": retries, "retryInterval": "300ms"}
        })
    };
    let without = generator(&kind, &spec(&bao, fields(0)), &kube)
        .await
        .unwrap();
    let with = generator(&kind, &spec(&bao, fields(20)), &kube)
        .await
        .unwrap();
    assert_eq!(
        text(&with.generate().await.unwrap().values)["random_bytes"].len(),
        32
    );

    bao.stop().await;
    let started = Instant::now();
    let e = without.generate().await.unwrap_err();
    assert!(
        matches!(e.classified(), ProviderError::Unavailable { .. }),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let generating = tokio::spawn({
        let with = with.clone();
        async move { with.generate().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    bao.start_again().await;
    let generated = generating.await.unwrap().unwrap();
    assert_eq!(text(&generated.values)["random_bytes"].len(), 32);

    // Revocations ride it out too (a lease the fresh dev server does not know is revoked).
    bao.stop().await;
    let e = without.revoke("database/creds/app/x").await.unwrap_err();
    assert!(
        matches!(e.classified(), ProviderError::Unavailable { .. }),
        "{e}"
    );
    let revoking = tokio::spawn(async move { with.revoke("database/creds/app/x").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    bao.start_again().await;
    revoking.await.unwrap().unwrap();
}

/// An AppRole `gen` with `policy` and a token TTL of `token_ttl`; objects holding its
/// secret ID, and its role ID.
async fn approle(
    bao: &OpenBao,
    policy: &str,
    token_ttl: &str,
) -> (kuvert_core::memory::MemoryKube, String) {
    bao.policy("gen", policy).await;
    let (role_id, secret_id) = bao
        .approle(
            "gen",
            json!({"token_policies": ["gen"], "token_ttl": token_ttl, "token_max_ttl": "1h"}),
        )
        .await;
    let mut kube = kuvert_core::memory::MemoryKube::new();
    kube.add_secret(&secret("approle", &[("secret-id", &secret_id)]));
    (kube, role_id)
}

fn approle_spec(
    bao: &OpenBao,
    role_id: &str,
    fields: serde_json::Value,
) -> kuvert_core::api::VaultDynamicSecretSpec {
    let mut fields = fields;
    fields["provider"] = json!({
        "server": bao.addr(),
        "auth": {"appRole": {"roleId": role_id, "secretRef": {"name": "approle", "key": "secret-id"}}}
    });
    spec(bao, fields)
}

#[tokio::test]
async fn the_login_token_leases_depend_on_outlives_shutdown_and_bounds_the_lease_duration() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "5m", "1h").await;
    let (kube, role_id) = approle(
        &bao,
        r#"
path "database/creds/app" { capabilities = ["read"] }
path "sys/tools/random/*" { capabilities = ["update"] }
"#,
        "2m",
    )
    .await;

    // No lease: the login token is revoked at shutdown, as for stores.
    let plain = VaultDynamicSecretKind::new();
    let random = approle_spec(
        &bao,
        &role_id,
        json!({"path": "sys/tools/random/8", "method": "POST"}),
    );
    let before = bao.token_accessor_count().await;
    generator(&plain, &random, &kube)
        .await
        .unwrap()
        .generate()
        .await
        .unwrap();
    assert_eq!(bao.token_accessor_count().await, before + 1);
    plain.cache().shutdown().await;
    assert_eq!(
        bao.token_accessor_count().await,
        before,
        "revoked at shutdown"
    );

    // A lease: revoking the token would revoke the credentials with it, so it is kept.
    let kind = VaultDynamicSecretKind::new();
    let creds = approle_spec(&bao, &role_id, json!({"path": "database/creds/app"}));
    let generator = generator(&kind, &creds, &kube).await.unwrap();
    let generated = generator.generate().await.unwrap();
    let lease = generated.lease.unwrap();
    assert!(
        lease.duration <= Duration::from_secs(120) && lease.duration >= Duration::from_secs(110),
        "the 5m lease ends with the 2m token at the latest: {:?}",
        lease.duration
    );
    let renewed = generator
        .renew(&lease.id, Duration::from_secs(1800))
        .await
        .unwrap();
    assert!(
        renewed.duration <= Duration::from_secs(120),
        "{:?}",
        renewed.duration
    );
    drop(generator);
    kind.cache().shutdown().await;
    assert_eq!(
        bao.token_accessor_count().await,
        before + 1,
        "the token is kept"
    );
    let values = text(&generated.values);
    assert_eq!(
        pg.query_as(&values["username"], &values["password"], "SELECT 1")
            .await,
        Ok("1".to_owned()),
        "the credentials still work after the operator's shutdown"
    );
    assert!(bao.lease_lookup(&lease.id).await.is_ok());
}
