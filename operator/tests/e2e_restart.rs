//! A restarted operator reads nothing that is not due: 500 synced ExternalSecrets, a new
//! process, zero store reads and zero Secret writes. And a restart or a leader change changes
//! nothing anyone can see: no condition, no Event, no status write, on both backends.

mod support;

use kube::api::{Api, ListParams};
use kuvert_core::api::ExternalSecret;
use support::{
    Backend, Cluster, Operator, create, eventually, fake_store, many_external_secrets, metric_sum,
    reading_k, wait_for_secrets,
};

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

/// Ready ExternalSecrets of the restart scenarios, beside one that fails.
const HEALTHY: usize = 40;

/// A condition as shown: type, status, reason, lastTransitionTime.
type Shown = (String, String, String, String);

/// What anyone can see of the ExternalSecrets: per object its resourceVersion (any status
/// write changes it) and its conditions with their transition times; the Events about them;
/// the Secrets' resourceVersions.
#[derive(Debug, PartialEq)]
struct Visible {
    objects: Vec<(String, String, Vec<Shown>)>,
    events: Vec<(String, String, String)>,
    secrets: Vec<(String, String)>,
}

async fn visible(client: &kube::Client) -> Visible {
    use k8s_openapi::api::core::v1::Secret;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    let mut objects: Vec<_> = ess
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|es| {
            let conditions = es
                .status
                .map(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let since = c.last_transition_time.0.to_string();
                    (c.type_, c.status, c.reason, since)
                })
                .collect();
            let name = es.metadata.name.unwrap_or_default();
            (
                name,
                es.metadata.resource_version.unwrap_or_default(),
                conditions,
            )
        })
        .collect();
    objects.sort();
    let events = support::external_secret_events(client, "default").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let mut secrets: Vec<_> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("ok-"))
        })
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    secrets.sort();
    Visible {
        objects,
        events,
        secrets,
    }
}

/// [`HEALTHY`] ExternalSecrets `ok-N` reading the fake store `demo`, and `broken`, reading a
/// key the store does not hold, all created before `start` starts the operator(s); returns
/// what is visible once all of them reported.
async fn healthy_and_broken<T>(cluster: &Cluster, start: impl FnOnce() -> T) -> (T, Visible) {
    create(&cluster.client, &fake_store("default", &[("k", "v")])).await;
    for i in 0..HEALTHY {
        create(
            &cluster.client,
            &reading_k("default", &format!("ok-{i}"), "{name: demo}"),
        )
        .await;
    }
    let broken: ExternalSecret = support::yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: broken, namespace: default}\nspec:\n  secretStoreRef: {name: demo}\n  data: [{secretKey: k, remoteRef: {key: nowhere}}]\n",
    );
    create(&cluster.client, &broken).await;
    let started = start();
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("every ExternalSecret to report", || async {
        let mut ready = 0;
        for i in 0..HEALTHY {
            if support::ready(&ess, &format!("ok-{i}"))
                .await
                .is_some_and(|(s, _)| s == "True")
            {
                ready += 1;
            }
        }
        ready == HEALTHY
            && support::ready(&ess, "broken")
                .await
                .is_some_and(|(s, _)| s == "False")
    })
    .await;
    let before = visible(&cluster.client).await;
    let failing: Vec<_> = before.events.iter().filter(|e| e.1 == "Warning").collect();
    assert_eq!(failing.len(), 1, "one Warning, about broken: {failing:?}");
    (started, before)
}

/// Waits until `operator` reconciled every ExternalSecret once, and asserts what that cost:
/// no Secret read, no status write, no Event, and store reads only for the retries of the
/// failing object (the only sync due).
async fn assert_restart_cost_nothing(operator: &Operator) {
    // Every reconcile started is counted in the queue-wait histogram; each of the failing
    // object's is a failed sync. With none running, the difference is the healthy objects'.
    let last = std::sync::Mutex::new(String::new());
    let last = &last;
    eventually("every object to be reconciled once", || async move {
        let metrics = operator.get("/metrics").await.1;
        *last.lock().unwrap() = metrics.clone();
        let es = [("kind", "ExternalSecret")];
        let started = metric_sum(&metrics, "kuvert_reconcile_queue_wait_seconds_count", &es);
        let running = metric_sum(&metrics, "kuvert_reconcile_queue_depth", &es);
        let failed = metric_sum(&metrics, "kuvert_sync_errors_total", &es);
        running == 0.0 && failed >= 1.0 && started - failed == HEALTHY as f64
    })
    .await;
    let metrics = last.lock().unwrap().clone();
    let kube = |verb: &str, resource: &str| {
        metric_sum(
            &metrics,
            "kuvert_kube_requests_total",
            &[("verb", verb), ("resource", resource)],
        )
    };
    assert_eq!(kube("get", "secrets"), 0.0, "Secret reads\n{metrics}");
    assert_eq!(
        kube("patch", "externalsecrets.kuvert.io/status"),
        0.0,
        "status writes"
    );
    assert_eq!(kube("create", "events.events.k8s.io"), 0.0, "Events");
    let synced = |result: &str| {
        metric_sum(
            &metrics,
            "kuvert_sync_total",
            &[("kind", "ExternalSecret"), ("result", result)],
        )
    };
    assert_eq!(synced("success"), 0.0, "no healthy object synced again");
    let retries = synced("error");
    assert!(retries >= 1.0);
    assert_eq!(
        metric_sum(
            &metrics,
            "kuvert_store_requests_total",
            &[("operation", "get")]
        ),
        retries,
        "one store read per retry of the failing object, none for the healthy ones"
    );
}

async fn a_restart_changes_no_condition_and_writes_no_event(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let (mut first, before) = healthy_and_broken(&cluster, || Operator::start(&cluster, &[])).await;
    first.stop();

    let second = Operator::start(&cluster, &[]);
    second.wait_ready().await;
    assert_restart_cost_nothing(&second).await;
    assert_eq!(visible(&cluster.client).await, before);
}

async fn a_leader_change_changes_no_condition_and_writes_no_event(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let flags = |id: &'static str| {
        [
            "--leader-election",
            "--leader-election-lease-duration",
            "120s",
            "--instance",
            id,
        ]
    };
    let (mut leader, before) =
        healthy_and_broken(&cluster, || Operator::start(&cluster, &flags("replica-a"))).await;
    let standby = Operator::start(&cluster, &flags("replica-b"));
    standby.wait_ready().await;
    assert_eq!(leader.terminate(), Some(0), "SIGTERM hands the lease over");
    eventually("replica-b to lead", || async {
        let (_, metrics) = standby.get("/metrics").await;
        metric_sum(&metrics, "kuvert_leader", &[]) == 1.0
    })
    .await;
    assert_restart_cost_nothing(&standby).await;
    assert_eq!(visible(&cluster.client).await, before);
}

/// Right after a restart, before any reconcile, `/metrics` already has every object: the
/// failing one's condition series, the store's health, the counts of every kind; an object
/// deleted while no operator ran has no series, nor one deleted later.
async fn metrics_after_a_restart_cover_every_object_and_no_deleted_one(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let flags = ["--per-object-metrics"];
    let (mut first, _) = healthy_and_broken(&cluster, || Operator::start(&cluster, &flags)).await;
    first.stop();
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.delete("ok-0", &Default::default()).await.unwrap();

    let second = Operator::start(&cluster, &flags);
    second.wait_ready().await;
    let (_, metrics) = second.get("/metrics").await;
    support::promtool_accepts(&metrics);
    let docs = include_str!("../../docs/metrics.md");
    for family in metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap();
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/metrics.md lacks {name}"
        );
    }
    let series = |name: &str| -> Vec<&str> {
        let mut lines: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| !l.contains("name=\"ok-"))
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        series("kuvert_externalsecret_status_condition"),
        [
            r#"kuvert_externalsecret_status_condition{namespace="default",name="broken",condition="Ready",status="False"} 1"#,
            r#"kuvert_externalsecret_status_condition{namespace="default",name="broken",condition="Ready",status="True"} 0"#,
        ]
    );
    let conditions_of = |name: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("kuvert_externalsecret_status_condition{"))
            .filter(|l| l.contains(&format!("name=\"{name}\"")))
            .count()
    };
    assert_eq!(conditions_of("ok-1"), 2, "a healthy one has its series");
    assert_eq!(conditions_of("ok-0"), 0, "deleted before the restart");
    assert_eq!(
        series("kuvert_store_ready"),
        [r#"kuvert_store_ready{kind="SecretStore",namespace="default",name="demo"} 1"#]
    );
    let objects = |kind: &str, ready: &str| {
        metric_sum(
            &metrics,
            "kuvert_objects",
            &[("kind", kind), ("ready", ready)],
        )
    };
    assert_eq!(objects("ExternalSecret", "True"), (HEALTHY - 1) as f64);
    assert_eq!(objects("ExternalSecret", "False"), 1.0);
    assert_eq!(objects("SecretStore", "True"), 1.0);
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("kuvert_objects{kind=\"ClusterSecretStore\""))
            .count(),
        3,
        "every kind counted, none of it or not"
    );

    ess.delete("ok-1", &Default::default()).await.unwrap();
    eventually("a deleted object's series to go", || async {
        let (_, metrics) = second.get("/metrics").await;
        !metrics.contains("name=\"ok-1\"")
    })
    .await;
}

on_both_backends!(
    a_restart_changes_no_condition_and_writes_no_event,
    a_leader_change_changes_no_condition_and_writes_no_event,
    metrics_after_a_restart_cover_every_object_and_no_deleted_one,
);
