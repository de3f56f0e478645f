//! `kuvert dev --once`, the README's main-job command, run as a black box.

use std::process::Command;

fn kuvert_dev(args: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!(
        "kuvert-dev-test-{}-{}",
        std::process::id(),
        args.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .current_dir(&dir)
        .arg("dev")
        .args(args.iter().map(|a| a.replace("$EXAMPLES", examples)))
        .arg("--once")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn quickstart_syncs_and_prints_the_decoded_secret() {
    let (code, out) = kuvert_dev(&["-f", "$EXAMPLES/quickstart"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(
        "---\n# ExternalSecret default/app-credentials: Ready=True (SecretSynced) Secret default/app-credentials is in sync (4 keys)\napiVersion: v1\nkind: Secret\n"
    ), "{out}");
    assert!(
        out.ends_with(
            "stringData:\n  api-token: tok-1234567890\n  host: db.internal\n  password: s3cr3t-from-the-store\n  username: app\n"
        ),
        "{out}"
    );
}

#[test]
fn a_failing_external_secret_is_reported_and_exits_non_zero() {
    // The AppRole example with its Vault unreachable: nothing listens on port 1.
    let dir = std::env::temp_dir().join(format!("kuvert-dev-failing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/vault-approle/clustersecretstore.yaml"
    );
    let shipped = std::fs::read_to_string(example).unwrap();
    std::fs::write(
        dir.join("store.yaml"),
        shipped.replace("https://vault.example.com:8200", "http://127.0.0.1:1"),
    )
    .unwrap();
    let path = dir.display().to_string();
    let (code, out) = kuvert_dev(&["-f", &path, "--timeout", "10s"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        "---\n# ExternalSecret payments/payments-db: Ready=False (StoreNotReady) spec.secretStoreRef: ClusterSecretStore/vault: store unavailable: POST auth/approle/login: the request to vault could not connect\n"
    );
}
