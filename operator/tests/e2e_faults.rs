//! `kuvert run` while the API server answers every request `429 Too Many Requests` (with
//! `Retry-After`) and then `503 Service Unavailable` for a while — devcluster's fault switch
//! (the real control plane has none): no Secret is lost or rewritten, no Ready condition flips,
//! kuvert's requests during the fault stay few (it waits out `Retry-After` and backs off, no hot
//! loop), and everything converges by itself once the API server serves again. Every watch
//! connection cut at once: kuvert watches again and later changes still reach it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kuvert_core::api::ExternalSecret;
use kuvert_devcluster::Fault;
use support::{Backend, Cluster, Operator, eventually, many_external_secrets, wait_for_secrets};

const COUNT: usize = 5;

/// Each Secret's resourceVersion and data.
async fn secrets_as_they_are(
    secrets: &Api<Secret>,
) -> BTreeMap<
    String,
    (
        Option<String>,
        Option<BTreeMap<String, k8s_openapi::ByteString>>,
    ),
> {
    secrets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| {
            let name = s.metadata.name.clone().unwrap_or_default();
            (name, (s.metadata.resource_version, s.data))
        })
        .collect()
}

/// Each ExternalSecret's Ready status and when it last changed.
async fn ready_conditions(ess: &Api<ExternalSecret>) -> BTreeMap<String, (String, String)> {
    ess.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|es| {
            let name = es.metadata.name.clone().unwrap_or_default();
            let status = es.status.unwrap_or_default();
            let ready = kuvert_core::conditions::find_ready(&status.conditions)
                .map(|c| (c.status.clone(), format!("{:?}", c.last_transition_time)))
                .unwrap_or_default();
            (name, ready)
        })
        .collect()
}

/// The latest refresh time of any ExternalSecret.
async fn latest_refresh(ess: &Api<ExternalSecret>) -> Option<jiff::Timestamp> {
    ess.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|es| es.status?.refresh_time.map(|t| t.0))
        .max()
}

/// devcluster, `kuvert run` with `flags`, and [`COUNT`] ExternalSecrets refreshing every
/// `refresh`, all Ready.
async fn all_ready(
    flags: &[&str],
    refresh: &str,
) -> (Cluster, Operator, Api<Secret>, Api<ExternalSecret>) {
    let cluster = Cluster::start_on(Backend::DevCluster).await;
    let operator = Operator::start(&cluster, flags);
    operator.wait_ready().await;
    many_external_secrets(&cluster, COUNT, refresh).await;
    wait_for_secrets(&cluster, COUNT).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("every ExternalSecret Ready", || async {
        let ready = ready_conditions(&ess).await;
        ready.len() == COUNT && ready.values().all(|(status, _)| status == "True")
    })
    .await;
    (cluster, operator, secrets, ess)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_answering_429_then_503_loses_nothing_and_kuvert_converges_after() {
    let (cluster, operator, secrets, ess) =
        all_ready(&["--min-refresh-interval", "1s"], "1s").await;
    let secrets_before = secrets_as_they_are(&secrets).await;
    let ready_before = ready_conditions(&ess).await;
    let dev = cluster.dev();

    for (fault, seconds) in [
        (Fault::TooManyRequests { retry_after: 2 }, 6),
        (Fault::Unavailable, 6),
    ] {
        let answered_before = dev.faulted_requests();
        dev.set_fault(Some(fault), Duration::from_secs(seconds));
        // The fault answers the test's own requests too: it only waits here.
        tokio::time::sleep(Duration::from_secs(seconds + 1)).await;
        let answered = dev.faulted_requests() - answered_before;
        eprintln!("measured: {fault:?} for {seconds} s answered {answered} requests");
        // Five objects refreshing every second, their watches and leader-less controllers:
        // a hot loop would make thousands; waiting and backing off makes few.
        assert!(
            answered <= 150,
            "{answered} requests during {seconds} s of {fault:?}: a hot loop"
        );

        // Nothing was lost, rewritten or flipped, and refreshes go on once it serves again.
        let refreshed_before = latest_refresh(&ess).await;
        eventually("refreshes after the fault", || async {
            latest_refresh(&ess).await > refreshed_before
        })
        .await;
        assert_eq!(secrets_as_they_are(&secrets).await, secrets_before);
        assert_eq!(ready_conditions(&ess).await, ready_before);
    }

    // The same switch over HTTP, as `kuvert dev` users reach it (`kubectl create --raw`).
    let switch = |query: &str| {
        http::Request::post(format!("/devcluster/fault?{query}"))
            .body(Vec::new())
            .unwrap()
    };
    let on: serde_json::Value = cluster
        .client
        .request(switch("status=503&seconds=60"))
        .await
        .unwrap();
    assert_eq!(on, serde_json::json!({"fault": true, "seconds": 60}));
    // kube's client retries a 503 by itself: within 2 s it gets no list.
    let listed = tokio::time::timeout(Duration::from_secs(2), ess.list(&Default::default())).await;
    assert!(!matches!(listed, Ok(Ok(_))), "served during the fault");
    let off: serde_json::Value = cluster.client.request(switch("seconds=0")).await.unwrap();
    assert_eq!(off, serde_json::json!({"fault": false, "seconds": 0}));
    assert_eq!(
        ess.list(&Default::default()).await.unwrap().items.len(),
        COUNT
    );
    drop(operator);
}

/// Every watch connection the API server holds is cut at once (devcluster ends them, as a
/// restarted API server or a dropped load balancer would): kuvert watches again without
/// rewriting anything, and changes made after the cut still reach it — a new ExternalSecret is
/// synced, a managed Secret deleted by hand is written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_watch_connections_are_resumed_and_later_changes_still_arrive() {
    let (cluster, operator, secrets, ess) = all_ready(&[], "1h").await;
    let secrets_before = secrets_as_they_are(&secrets).await;
    let ready_before = ready_conditions(&ess).await;

    cluster.dev().end_watches();

    // A new ExternalSecret reaches kuvert only through a watch opened after the cut.
    ess.create(
        &kube::api::PostParams::default(),
        &support::shared_key_external_secret("after-cut", "1h", "after-cut"),
    )
    .await
    .unwrap();
    eventually(
        "the ExternalSecret created after the cut synced",
        || async { support::secret_data(&secrets, "after-cut").await.is_some() },
    )
    .await;
    // A managed Secret deleted by hand is written again (its watch resumed too).
    secrets.delete("es-0", &Default::default()).await.unwrap();
    eventually("the deleted Secret written again", || async {
        support::secret_data(&secrets, "es-0").await.is_some()
    })
    .await;
    let after = secrets_as_they_are(&secrets).await;
    for (name, before) in &secrets_before {
        if name != "es-0" {
            assert_eq!(
                after.get(name),
                Some(before),
                "{name} rewritten after the cut"
            );
        }
    }
    assert_eq!(after["es-0"].1, secrets_before["es-0"].1);
    let mut ready = ready_conditions(&ess).await;
    ready.remove("after-cut");
    assert_eq!(ready, ready_before, "a condition changed after the cut");
    drop(operator);
}
