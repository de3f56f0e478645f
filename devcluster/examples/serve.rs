//! Serves a dev cluster over TLS until Ctrl-C and writes its kubeconfig: `cargo run -p
//! kuvert-devcluster --example serve -- PATH`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "kuvert-dev.kubeconfig".into());
    let plain = std::env::args().any(|a| a == "--plain");
    let config = if plain {
        kuvert_devcluster::Config::plain_http()
    } else {
        kuvert_devcluster::Config::default()
    };
    let cluster = kuvert_devcluster::DevCluster::start(config).await?;
    cluster.write_kubeconfig(&path)?;
    println!("serving {} ; kubeconfig {path}", cluster.url());
    tokio::signal::ctrl_c().await?;
    cluster.shutdown().await;
    Ok(())
}
