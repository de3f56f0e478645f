//! `kuvert dev --once`, the README's main-job command, run as a black box.

mod support;

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

/// The quickstart folder lists `externalsecret.yaml` before `store.yaml`: the ExternalSecret
/// still syncs at the first attempt, never reporting its store missing.
#[tokio::test]
async fn a_folder_listing_the_external_secret_before_its_store_syncs_without_a_warning() {
    use kube::api::Api;
    let dir = std::env::temp_dir().join(format!("kuvert-dev-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart");
    let mut dev = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .arg("dev")
        .args(["-f", examples, "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--listen", &format!("127.0.0.1:{}", support::free_port())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::eventually("the kubeconfig", || async { kubeconfig.exists() }).await;
    let client = support::kube_client(&kubeconfig).await;
    let ess = Api::namespaced(client.clone(), "default");
    support::eventually("app-credentials to be Ready", || async {
        matches!(ess.get_opt("app-credentials").await, Ok(Some(_)))
            && support::ready(&ess, "app-credentials").await
                == Some(("True".to_owned(), "SecretSynced".to_owned()))
    })
    .await;
    let about_it = support::external_secret_events(&client, "default").await;
    let _ = dev.kill();
    let _ = dev.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let synced = ("app-credentials", "Normal", "SecretSynced");
    assert_eq!(
        about_it,
        [synced].map(|(a, b, c)| (a.into(), b.into(), c.into()))
    );
}
