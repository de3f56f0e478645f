//! `kuvert render` with `vault` stores against a real OpenBao server: a token and an AppRole
//! secret ID come from Secrets in the manifests; a wrong token fails with one line naming the
//! ExternalSecret and never the token; a VaultDynamicSecret makes database credentials that
//! outlive the render.

use std::path::PathBuf;
use std::process::{Command, Output};

use kuvert_testkit::{OpenBao, Postgres};
use serde_json::json;

async fn render(name: &str, manifests: String) -> Output {
    let dir =
        std::env::temp_dir().join(format!("kuvert-render-vault-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("manifests.yaml");
    std::fs::write(&file, manifests).unwrap();
    let kuvert = env!("CARGO_BIN_EXE_kuvert");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(kuvert)
            .args(["render", "--decode", "-f"])
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    output
}

fn store(name: &str, server: &str, auth: &str) -> String {
    format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  provider:\n    vault:\n      server: {server}\n      path: secret\n      auth: {auth}\n"
    )
}

fn external_secret(name: &str, store: &str) -> String {
    format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  secretStoreRef: {{name: {store}}}\n  data:\n    - secretKey: password\n      \
         remoteRef: {{key: app/db, property: password}}\n  dataFrom:\n    - extract: {{key: secret/app/config}}\n"
    )
}

#[tokio::test]
async fn render_reads_vault_with_a_token_and_an_approle_from_the_manifests() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app/db", json!({"password": "from-openbao"}))
        .await;
    bao.kv2_put(
        "secret",
        "app/config",
        json!({"mode": "prod", "port": "5432"}),
    )
    .await;
    bao.policy(
        "reader",
        r#"path "secret/data/*" { capabilities = ["read"] }"#,
    )
    .await;
    let token = bao.token(&["reader"], json!({})).await;
    let (role_id, secret_id) = bao
        .approle("render", json!({"token_policies": ["reader"]}))
        .await;

    let manifests = [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-creds, namespace: default}}\n\
             stringData: {{token: \"{token}\", role-id: \"{role_id}\", secret-id: \"{secret_id}\"}}\n"
        ),
        store(
            "by-token",
            bao.addr(),
            "{tokenSecretRef: {name: vault-creds, key: token}}",
        ),
        store(
            "by-approle",
            bao.addr(),
            "{appRole: {roleRef: {name: vault-creds, key: role-id}, secretRef: {name: vault-creds, key: secret-id}}}",
        ),
        external_secret("app-token", "by-token"),
        external_secret("app-approle", "by-approle"),
    ]
    .join("---\n");
    let output = render("ok", manifests).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["app-token", "app-approle"] {
        let doc = stdout
            .split("---\n")
            .find(|d| d.contains(&format!("name: {name}\n")))
            .unwrap_or_else(|| panic!("no Secret {name} in {stdout}"));
        assert!(doc.contains("password: from-openbao"), "{doc}");
        assert!(doc.contains("mode: prod"), "{doc}");
        assert!(
            doc.contains("port: '5432'") || doc.contains("port: \"5432\""),
            "{doc}"
        );
    }
    assert!(!stdout.contains(&token) && !stdout.contains(&secret_id));

    // The AppRole login's token was revoked at exit: only the root and reader tokens are left.
    assert_eq!(bao.token_accessor_count().await, 2);
}

#[tokio::test]
async fn render_fails_in_one_line_on_a_wrong_token() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app/db", json!({"password": "x"}))
        .await;
    let manifests = [
        "apiVersion: v1\nkind: Secret\nmetadata: {name: vault-creds, namespace: default}\n\
         stringData: {token: \"s.planted-wrong-token\"}\n"
            .to_owned(),
        store(
            "by-token",
            bao.addr(),
            "{tokenSecretRef: {name: vault-creds, key: token}}",
        ),
        external_secret("app", "by-token"),
    ]
    .join("---\n");
    let output = render("bad", manifests).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("app"), "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("planted-wrong-token"), "{stderr}");
}

#[tokio::test]
async fn render_generates_database_credentials_that_keep_working_after_it_exits() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    bao.database_engine(&pg, "app", "10m", "1h").await;
    bao.policy(
        "creds",
        r#"path "database/creds/app" { capabilities = ["read"] }"#,
    )
    .await;
    let (role_id, secret_id) = bao
        .approle(
            "render",
            json!({"token_policies": ["creds"], "token_ttl": "1h"}),
        )
        .await;
    let manifests = [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-creds, namespace: default}}\n\
             stringData: {{secret-id: \"{secret_id}\"}}\n"
        ),
        format!(
            "apiVersion: generators.kuvert.io/v1alpha1\nkind: VaultDynamicSecret\n\
             metadata: {{name: db, namespace: default}}\nspec:\n  path: database/creds/app\n  \
             provider:\n    server: {}\n    auth: {{appRole: {{roleId: {role_id}, \
             secretRef: {{name: vault-creds, key: secret-id}}}}}}\n",
            bao.addr()
        ),
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: db, namespace: default}\n\
         spec:\n  dataFrom:\n    - sourceRef: {generatorRef: {kind: VaultDynamicSecret, name: db}}\n"
            .to_owned(),
    ]
    .join("---\n");
    let output = render("dynamic", manifests).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let secret: serde_json::Value =
        serde_saphyr::from_str(stdout.trim_start_matches("---\n")).unwrap();
    let data = &secret["stringData"];
    let (user, password) = (
        data["username"].as_str().unwrap(),
        data["password"].as_str().unwrap(),
    );
    // The login's token was kept at exit (the credentials' lease hangs on it): the root token
    // and it are left, and the credentials work.
    assert_eq!(bao.token_accessor_count().await, 2);
    assert_eq!(
        pg.query_as(user, password, "SELECT current_user").await,
        Ok(user.to_owned())
    );
}
