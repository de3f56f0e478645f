//! Throughput of devcluster itself (not a timed test): creates, gets, lists and watch delivery
//! through an unmodified kube-rs client over plain HTTP and over TLS. Later performance figures
//! subtract this cost. Run with `cargo bench -p kuvert-devcluster` (`DEVCLUSTER_BENCH_N` sets
//! the object count, default 2000).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kuvert_devcluster::{Config, DevCluster};
use serde_json::json;

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n:>6} in {:>7.1} ms = {:>8.0}/s",
        d.as_secs_f64() * 1000.0,
        n as f64 / d.as_secs_f64()
    )
}

async fn run(label: &str, config: Config, n: usize) -> anyhow::Result<()> {
    let dc = DevCluster::start(config).await?;
    let secrets: Api<Secret> = Api::namespaced(dc.client()?, "default");

    let watcher_api = secrets.clone();
    let start_rv = dc.resource_version().to_string();
    let watch = tokio::spawn(async move {
        let mut stream = watcher_api
            .watch(&WatchParams::default().timeout(290), &start_rv)
            .await?
            .boxed();
        let mut seen = 0usize;
        let mut first = None;
        while let Some(e) = stream.try_next().await? {
            if let WatchEvent::Added(_) = e {
                first.get_or_insert_with(Instant::now);
                seen += 1;
                if seen == n {
                    break;
                }
            }
        }
        anyhow::Ok((seen, Instant::now()))
    });

    let t = Instant::now();
    let t0 = t;
    for i in 0..n {
        let s: Secret = serde_json::from_value(
            json!({"metadata": {"name": format!("s{i}"), "labels": {"bench": "yes"}}, "stringData": {"k": "v"}}),
        )?;
        secrets.create(&PostParams::default(), &s).await?;
    }
    let create = t.elapsed();
    let (seen, watch_done) = tokio::time::timeout(Duration::from_secs(120), watch).await???;
    let watch_lag = watch_done.saturating_duration_since(t + create);

    let t = Instant::now();
    for i in 0..n {
        secrets.get(&format!("s{i}")).await?;
    }
    let get = t.elapsed();

    let t = Instant::now();
    let lists = 20;
    for _ in 0..lists {
        secrets
            .list(&ListParams::default().labels("bench=yes"))
            .await?;
    }
    let list = t.elapsed();

    let concurrent = 8;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrent {
        let api = secrets.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(concurrent) {
                api.get(&format!("s{i}")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let get_parallel = t.elapsed();

    println!("devcluster throughput ({label}, sequential kube-rs client unless noted)");
    println!("  create          {}", rate(n, create));
    println!(
        "  watch           {}   (streamed while the creates ran; last event {:.1} ms after the last create returned)",
        rate(seen, watch_done.duration_since(t0)),
        watch_lag.as_secs_f64() * 1000.0
    );
    println!("  get             {}", rate(n, get));
    println!("  get x{concurrent} tasks    {}", rate(n, get_parallel));
    println!("  list ({n} items) {}", rate(lists, list));
    dc.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = std::env::var("DEVCLUSTER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    run("plain HTTP", Config::plain_http(), n).await?;
    run("TLS", Config::default(), n).await?;
    Ok(())
}
