//! A restarted operator reads nothing that is not due: 500 synced ExternalSecrets, a new
//! process, zero store reads and zero Secret writes.

mod support;

use kube::api::{Api, ListParams};
use kuvert_core::api::ExternalSecret;
use support::{Cluster, Operator, eventually, many_external_secrets, wait_for_secrets};

const COUNT: usize = 500;

fn metric(metrics: &str, line_prefix: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_restart_with_500_synced_objects_reads_no_store_and_writes_no_secret() {
    let cluster = Cluster::start().await;
    many_external_secrets(&cluster, COUNT, "1h").await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");

    let mut first = Operator::start(&cluster, &[]);
    first.wait_ready().await;
    wait_for_secrets(&cluster, COUNT).await;
    eventually("all ExternalSecrets to be Ready", || async {
        ess.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|es| {
                es.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.status == "True"))
            })
    })
    .await;
    // Reads are coalesced: 500 objects reading one key within the coalesce window.
    let (_, metrics) = first.get("/metrics").await;
    let reads = metric(
        &metrics,
        "kuvert_store_requests_total{provider=\"fake\",operation=\"get\"",
    );
    assert!(
        (1..20).contains(&reads),
        "{reads} store reads for 500 ExternalSecrets of one key"
    );
    first.stop();

    cluster.dev().reset_request_counts();
    let second = Operator::start(&cluster, &[]);
    second.wait_ready().await;
    // Give every object time to be reconciled once by the new process.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (_, metrics) = second.get("/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "kuvert_store_requests_total{provider=\"fake\",operation=\"get\""
        ),
        0,
        "{metrics}"
    );
    assert_eq!(
        cluster.dev().write_count("secrets"),
        0,
        "Secret writes after the restart"
    );
    assert_eq!(
        cluster.dev().write_count("externalsecrets/status"),
        0,
        "status writes after the restart"
    );
    assert_eq!(
        cluster.dev().write_count("externalsecrets"),
        0,
        "ExternalSecret writes after the restart"
    );
}
