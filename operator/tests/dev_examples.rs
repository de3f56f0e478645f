//! Every example runs with `kuvert dev -f DIR --once`: those that need no store as shipped, the
//! Vault ones against a real OpenBao set up as their comments describe (only the server address,
//! and for the PKI one the token, differ). `generators-vault` needs Vault's Kubernetes auth and
//! PostgreSQL: its README says so, and `vault-pki-token` is its PKI example with a token.

use std::path::Path;
use std::process::Command;

use kuvert_testkit::OpenBao;
use serde_json::json;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// Runs `kuvert dev -f DIR --once` in a scratch directory; returns its exit code and stdout.
fn dev_once(dir: &Path) -> (i32, String) {
    let scratch = std::env::temp_dir().join(format!(
        "kuvert-dev-examples-{}-{}",
        std::process::id(),
        kuvert_testkit::random_hex(4)
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .current_dir(&scratch)
        .args(["dev", "-f"])
        .arg(dir)
        .args(["--once", "--timeout", "60s"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// Runs one example file with `kuvert dev -f --once` after replacing each `(shipped, local)`
/// pair in it (each shipped text must be there); returns the exit code and stdout.
async fn dev_once_edited(example: &str, replacements: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!(
        "kuvert-example-{}-{}",
        std::process::id(),
        kuvert_testkit::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = std::fs::read_to_string(Path::new(EXAMPLES).join(example)).unwrap();
    for (shipped, local) in replacements {
        assert!(text.contains(shipped), "{example} lacks {shipped:?}");
        text = text.replace(shipped, local);
    }
    std::fs::write(dir.join("example.yaml"), text).unwrap();
    let (code, out) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || dev_once(&dir)
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (code, out)
}

/// Runs a Vault example that uses token auth against `bao`, with a token of `policy`.
async fn dev_once_with_token(bao: &OpenBao, example: &str, policy: &str) -> (i32, String) {
    let token = bao.token(&[policy], json!({})).await;
    let token_line = format!("token: {token}");
    dev_once_edited(
        example,
        &[
            ("https://vault.example.com:8200", bao.addr()),
            ("token: replace-me", &token_line),
        ],
    )
    .await
}

/// The `# ExternalSecret ...` lines of the output, one per ExternalSecret.
fn reports(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("# ExternalSecret "))
        .collect()
}

#[test]
fn the_examples_without_a_store_server_sync_as_shipped() {
    for (example, external_secrets) in [("quickstart", 1), ("templating", 1), ("generators", 1)] {
        let (code, out) = dev_once(&Path::new(EXAMPLES).join(example));
        assert_eq!(code, 0, "{example}: {out}");
        let reports = reports(&out);
        assert_eq!(reports.len(), external_secrets, "{example}: {out}");
        for report in reports {
            assert!(
                report.contains(": Ready=True (SecretSynced) "),
                "{example}: {report}"
            );
        }
    }
}

#[test]
fn the_cluster_external_secret_example_stamps_the_selected_namespaces() {
    let (code, out) = dev_once(&Path::new(EXAMPLES).join("cluster-external-secret"));
    assert_eq!(code, 0, "{out}");
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        headers,
        [
            "# ExternalSecret ci/registry-credentials: Ready=True (SecretSynced) Secret \
             ci/registry-credentials is in sync (2 keys)",
            "# ExternalSecret team-a/registry-credentials: Ready=True (SecretSynced) Secret \
             team-a/registry-credentials is in sync (2 keys)",
            "# ClusterExternalSecret registry: Ready=True (Provisioned) ExternalSecret \
             registry-credentials is in 2 namespace(s), 2 Ready",
        ],
        "{out}"
    );
}

#[tokio::test]
async fn the_vault_approle_example_syncs_against_openbao_set_up_as_it_describes() {
    let bao = OpenBao::start().await;
    bao.kv2_put(
        "secret",
        "payments/database",
        json!({"password": "pay-db-1"}),
    )
    .await;
    bao.policy(
        "payments",
        r#"path "secret/data/payments/*" { capabilities = ["read"] }"#,
    )
    .await;
    bao.enable_auth("approle", "approle").await;
    bao.write(
        "auth/approle/role/kuvert",
        json!({"token_policies": ["payments"]}),
    )
    .await;
    // The role and secret ids the example ships with.
    bao.write(
        "auth/approle/role/kuvert/role-id",
        json!({"role_id": "4d5b6e2c-1111-2222-3333-444455556666"}),
    )
    .await;
    bao.write(
        "auth/approle/role/kuvert/custom-secret-id",
        json!({"secret_id": "replace-me"}),
    )
    .await;

    let (code, out) = dev_once_edited(
        "vault-approle/clustersecretstore.yaml",
        &[("https://vault.example.com:8200", bao.addr())],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        reports(&out),
        [
            "# ExternalSecret payments/payments-db: Ready=True (SecretSynced) Secret payments/payments-db is in sync (1 key)"
        ]
    );
    assert!(
        out.ends_with("stringData:\n  password: pay-db-1\n"),
        "{out}"
    );
}

#[tokio::test]
async fn the_vault_pki_token_example_issues_a_certificate_from_openbao() {
    let bao = OpenBao::start().await;
    bao.mount("pki", "pki", json!({})).await;
    bao.write(
        "pki/root/generate/internal",
        json!({"common_name": "Example CA", "ttl": "87600h"}),
    )
    .await;
    bao.write(
        "pki/roles/web",
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h"}),
    )
    .await;
    bao.policy(
        "issue-web",
        r#"path "pki/issue/web" { capabilities = ["update"] }"#,
    )
    .await;
    let (code, out) = dev_once_with_token(&bao, "vault-pki-token/pki.yaml", "issue-web").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        reports(&out),
        [
            "# ExternalSecret web/web-tls: Ready=True (SecretSynced) Secret web/web-tls is in sync (3 keys)"
        ]
    );
    assert!(out.contains("type: kubernetes.io/tls\n"), "{out}");
    assert!(out.contains("-----BEGIN CERTIFICATE-----"), "{out}");
}

#[tokio::test]
async fn the_push_secret_example_pushes_to_openbao_and_reads_it_back() {
    let bao = OpenBao::start().await;
    bao.policy(
        "push-app",
        r#"path "secret/data/app/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/app/*" { capabilities = ["create", "read", "update", "delete"] }"#,
    )
    .await;
    let (code, out) = dev_once_with_token(&bao, "push-secret/push-secret.yaml", "push-app").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        reports(&out),
        [
            "# ExternalSecret default/database-from-vault: Ready=True (SecretSynced) Secret default/database-from-vault is in sync (2 keys)"
        ]
    );
    let pushed = bao.read("secret/data/app/database").await;
    assert_eq!(
        pushed["data"]["data"],
        json!({"password": "s3cret-from-the-cluster", "username": "app"})
    );
    assert_eq!(
        pushed["data"]["metadata"]["custom_metadata"]["kuvert-owner"],
        json!("default/push-database")
    );
}
