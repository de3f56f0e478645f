//! `kuvert run` end to end with VaultDynamicSecret generators, against a real OpenBao, a real
//! PostgreSQL and devcluster: database credentials that log in and are revoked with their
//! ExternalSecret, and a PKI certificate shaped into a `kubernetes.io/tls` Secret.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use kuvert_core::api::{ExternalSecret, VaultDynamicSecret};
use kuvert_testkit::{OpenBao, Postgres};
use support::{Backend, Cluster, Operator, eventually, secret_data, vault_dynamic_secret, yaml};

/// An ExternalSecret `name` whose data all come from the VaultDynamicSecret `generator`,
/// shaped by `target` (YAML under `spec.target`, indented by four spaces).
fn generated_external_secret(name: &str, generator: &str, target: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: 1h\n  target:\n    name: {name}\n{target}  dataFrom:\n    - sourceRef:\n        generatorRef: {{apiVersion: generators.kuvert.io/v1alpha1, kind: VaultDynamicSecret, name: {generator}}}\n"
    ))
}

async fn a_database_generator_yields_credentials_that_log_in_and_are_revoked_with_the_external_secret(
    backend: Backend,
) {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "10m", "1h").await;
    let cluster = Cluster::start_on(backend).await;
    vault_dynamic_secret(
        &cluster,
        bao.addr(),
        bao.root_token(),
        "db",
        "  path: database/creds/app\n",
    )
    .await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;

    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(
        &PostParams::default(),
        &generated_external_secret("db", "db", ""),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("the credential Secret", || async {
        secret_data(&secrets, "db").await.is_some()
    })
    .await;
    let data = secret_data(&secrets, "db").await.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["password", "username"]);
    let (user, password) = (&data["username"], &data["password"]);
    assert_eq!(
        pg.query_as(user, password, "SELECT current_user").await,
        Ok(user.clone()),
        "the synced credentials log in to PostgreSQL"
    );

    let leases = ess.get("db").await.unwrap().status.unwrap().leases;
    assert_eq!(leases.len(), 1, "one lease recorded in status");
    let lease_id = leases[0].lease_id.clone();
    assert!(lease_id.starts_with("database/creds/app/"), "{lease_id}");
    assert_eq!(leases[0].duration_seconds, 600);
    assert!(bao.lease_lookup(&lease_id).await.is_ok());

    ess.delete("db", &DeleteParams::default()).await.unwrap();
    eventually("the ExternalSecret to be gone", || async {
        ess.get_opt("db").await.unwrap().is_none()
    })
    .await;
    assert!(
        !pg.role_exists(user).await,
        "deleting the ExternalSecret revoked the lease: the role is dropped"
    );
    let refused = pg.query_as(user, password, "SELECT 1").await.unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    let (status, body) = bao.lease_lookup(&lease_id).await.unwrap_err();
    assert_eq!(
        (status, body.contains("invalid lease")),
        (400, true),
        "{body}"
    );
}

// Multi-threaded: `terminate` blocks its thread while kuvert, shutting down, still talks to
// devcluster, which this runtime serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_obtained_through_an_approle_login_outlive_the_operators_shutdown() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "10m", "1h").await;
    bao.policy(
        "creds",
        r#"path "database/creds/app" { capabilities = ["read"] }"#,
    )
    .await;
    let (role_id, secret_id) = bao
        .approle(
            "kuvert",
            serde_json::json!({"token_policies": ["creds"], "token_ttl": "1h"}),
        )
        .await;
    let cluster = Cluster::start().await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let approle: Secret = yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: approle, namespace: default}}\nstringData: {{secret-id: {secret_id}}}\n"
    ));
    secrets
        .create(&PostParams::default(), &approle)
        .await
        .unwrap();
    let generator: VaultDynamicSecret = yaml(&format!(
        "apiVersion: generators.kuvert.io/v1alpha1\nkind: VaultDynamicSecret\nmetadata: {{name: db, namespace: default}}\nspec:\n  path: database/creds/app\n  provider:\n    server: {server}\n    auth:\n      appRole: {{roleId: {role_id}, secretRef: {{name: approle, key: secret-id}}}}\n",
        server = bao.addr(),
    ));
    Api::<VaultDynamicSecret>::namespaced(cluster.client.clone(), "default")
        .create(&PostParams::default(), &generator)
        .await
        .unwrap();
    let tokens_before = bao.token_accessor_count().await;
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    Api::<ExternalSecret>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &generated_external_secret("db", "db", ""),
        )
        .await
        .unwrap();
    eventually("the credential Secret", || async {
        secret_data(&secrets, "db").await.is_some()
    })
    .await;
    let data = secret_data(&secrets, "db").await.unwrap();
    assert_eq!(
        bao.token_accessor_count().await,
        tokens_before + 1,
        "one login"
    );

    // SIGTERM: kuvert revokes the logins it made, but not one that leases hang on (Vault would
    // revoke the credentials with it).
    assert_eq!(operator.terminate(), Some(0));
    assert_eq!(
        bao.token_accessor_count().await,
        tokens_before + 1,
        "the token is kept"
    );
    assert_eq!(
        pg.query_as(&data["username"], &data["password"], "SELECT 1")
            .await,
        Ok("1".to_owned()),
        "the credentials still log in after the operator stopped"
    );
}

#[tokio::test]
async fn a_pki_generator_with_a_template_yields_a_tls_secret_that_verifies_against_the_ca() {
    let bao = OpenBao::start().await;
    let root = bao.pki_engine("web", "example.com").await;
    let cluster = Cluster::start().await;
    vault_dynamic_secret(&cluster, bao.addr(), bao.root_token(), "cert",
        "  path: pki/issue/web\n  method: POST\n  parameters: {common_name: app.example.com, alt_names: www.example.com, ttl: 1h}\n",
    )
    .await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;

    let target = "    template:\n      type: kubernetes.io/tls\n      data:\n        tls.crt: \"{{ certificate }}\"\n        tls.key: \"{{ private_key }}\"\n        ca.crt: \"{{ issuing_ca }}\"\n";
    Api::<ExternalSecret>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &generated_external_secret("web-tls", "cert", target),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("the TLS Secret", || async {
        secret_data(&secrets, "web-tls").await.is_some()
    })
    .await;
    let secret = secrets.get("web-tls").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret_data(&secrets, "web-tls").await.unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    assert_eq!(data["ca.crt"].trim(), root.trim());
    assert!(data["tls.key"].starts_with("-----BEGIN EC PRIVATE KEY-----"));

    let dir = cluster.dir.join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &root).unwrap();
    std::fs::write(dir.join("tls.crt"), &data["tls.crt"]).unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("the openssl CLI");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        openssl(&["verify", "-CAfile", "ca.pem", "tls.crt"]).trim(),
        "tls.crt: OK"
    );
    let sans = openssl(&["x509", "-in", "tls.crt", "-noout", "-ext", "subjectAltName"]);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:app.example.com, DNS:www.example.com")
    );
}

on_both_backends!(
    a_database_generator_yields_credentials_that_log_in_and_are_revoked_with_the_external_secret,
);
