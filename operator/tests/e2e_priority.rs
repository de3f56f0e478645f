//! Refreshes never starve other work: with refreshes due six times faster than kuvert may
//! call the API server (`--kube-qps 5`), a spec change is still synced within seconds instead
//! of waiting behind every overdue refresh (300 of them: a minute).

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kuvert_core::api::ExternalSecret;
use support::{Cluster, Operator, eventually, many_external_secrets, wait_for_secrets};

/// Objects refreshing every 10 s: 30 refreshes due per second against 5 requests allowed.
const COUNT: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_is_synced_while_refreshes_exceed_what_kuvert_may_send() {
    let cluster = Cluster::start().await;
    many_external_secrets(&cluster, COUNT, "10s").await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    // A first process, unthrottled, syncs them all; a second one, allowed 5 requests a
    // second, falls behind: within one interval all 300 are due.
    let mut first = Operator::start(&cluster, &[]);
    first.wait_ready().await;
    wait_for_secrets(&cluster, COUNT).await;
    first.stop();
    let operator = Operator::start(
        &cluster,
        &["--kube-qps", "5", "--kube-burst", "1", "--concurrency", "4"],
    );
    operator.wait_ready().await;
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;

    let renamed = serde_json::json!({"spec": {"data": [{"secretKey": "renamed", "remoteRef": {"key": "shared"}}]}});
    ess.patch("es-7", &PatchParams::default(), &Patch::Merge(&renamed))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("the spec change in the Secret", || async {
        secrets
            .get("es-7")
            .await
            .unwrap()
            .data
            .is_some_and(|d| d.contains_key("renamed") && !d.contains_key("k"))
    })
    .await;
}
