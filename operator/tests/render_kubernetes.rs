//! `kuvert render` with a `kubernetes` store: credentials come from a Secret in the manifests,
//! values from a real (in-memory) remote API server.

use std::process::Command;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kuvert_devcluster::{Config, DevCluster};

#[tokio::test]
async fn render_reads_a_remote_cluster_with_a_token_from_the_manifests() {
    let remote = DevCluster::start(Config {
        namespaces: ["default", "team-a"].map(String::from).to_vec(),
        ..Config::default()
    })
    .await
    .unwrap();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                "password".to_owned(),
                ByteString(b"from-cluster-b".to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(remote.client().unwrap(), "team-a")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let manifests = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: cluster-b, namespace: default}}
stringData: {{token: "{token}"}}
---
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {{name: cluster-b, namespace: default}}
spec:
  provider:
    kubernetes:
      remoteNamespace: team-a
      server: {{url: "{url}", caBundle: "{ca}"}}
      auth: {{token: {{bearerToken: {{name: cluster-b, key: token}}}}}}
---
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {{name: mirror, namespace: default}}
spec:
  secretStoreRef: {{name: cluster-b}}
  data:
    - secretKey: password
      remoteRef: {{key: db, property: password}}
"#,
        token = remote.admin_token(),
        url = remote.url(),
        ca = base64::engine::general_purpose::STANDARD.encode(remote.ca_pem()),
    );
    let dir = std::env::temp_dir().join(format!("kuvert-render-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mirror.yaml");
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
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: mirror\n  namespace: default\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("stringData:\n  password: from-cluster-b\n"),
        "{stdout}"
    );
}
