//! `kuvert dev --no-operator`: serves devcluster (an in-memory Kubernetes API server) on
//! loopback with kuvert's CRDs installed, writes a kubeconfig for it, and serves until Ctrl-C or
//! SIGTERM. Plain `kuvert dev` (with the operator) comes with the operator's wiring.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kuvert_devcluster::{Config, DevCluster};

/// Flags of `kuvert dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    /// Address to listen on (default: a free loopback port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where to write the kubeconfig for the dev cluster.
    #[arg(long, default_value = "kuvert-dev.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Serve only the API server (e.g. to run `kuvert run` against it as a separate process).
    #[arg(long)]
    pub no_operator: bool,
}

/// Runs `kuvert dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.no_operator,
        "kuvert dev without --no-operator is not available yet: run `kuvert dev --no-operator` and `kuvert run` against its kubeconfig"
    );
    let mut config = Config::default();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let cluster = DevCluster::start(config).await.context("starting the dev cluster")?;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client().context("connecting to the dev cluster")?);
    for crd in kuvert_core::crds::all() {
        crds.create(&PostParams::default(), &crd).await.with_context(|| format!("installing CRD {}", crd.metadata.name.clone().unwrap_or_default()))?;
    }
    cluster
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    println!("devcluster serving at {} with kuvert's CRDs installed", cluster.url());
    println!("kubeconfig written to {}; try:", args.kubeconfig.display());
    println!("  export KUBECONFIG={}", args.kubeconfig.display());
    println!("  kubectl get crds");
    println!("Press Ctrl-C to stop (state is kept in memory only).");
    shutdown_signal().await?;
    cluster.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
