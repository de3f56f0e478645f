//! Workloads follow their Secrets, end to end on both backends: an ExternalSecret's
//! `rolloutRestartTargets`, and workloads labelled `kuvert.io/reload: "true"`, get the pod
//! template annotation `kuvert.io/secret-hash.NAME` when (and only when) the Secret's data
//! changes. On the real control plane kube-controller-manager then really rolls a new
//! ReplicaSet; devcluster runs no workload controllers, so there the template is the evidence.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{
    Backend, Cluster, Operator, create, eventually, external_secret_events, fake_store, yaml,
};

/// The store `demo` of `default` holding `entries` (key, value) at `version`.
fn store_data(entries: &[(&str, &str)], version: &str) -> serde_json::Value {
    let data: Vec<serde_json::Value> = entries
        .iter()
        .map(|(key, value)| serde_json::json!({"key": key, "value": value, "version": version}))
        .collect();
    serde_json::json!({"spec": {"provider": {"fake": {"data": data}}}})
}

async fn set_store(cluster: &Cluster, entries: &[(&str, &str)], version: &str) {
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(&store_data(entries, version)),
        )
        .await
        .unwrap();
}

/// The ExternalSecret `name` copying store key `key` into the Secret `name`, restarting
/// `targets` (YAML flow list).
fn external_secret(name: &str, key: &str, targets: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  secretStoreRef: {{name: demo}}\n  target: {{rolloutRestartTargets: {targets}}}\n  data: [{{secretKey: k, remoteRef: {{key: {key}}}}}]\n"
    ))
}

/// A one-replica Deployment `name` (labels `labels`, YAML flow map) whose pod spec has
/// `containers` and `volumes` (YAML flow lists).
fn deployment(name: &str, labels: &str, containers: &str, volumes: &str) -> Deployment {
    yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default, labels: {labels}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: {containers}\n      volumes: {volumes}\n"
    ))
}

const PLAIN_CONTAINER: &str = "[{name: app, image: registry.invalid/app}]";

/// The `kuvert.io/secret-hash.*` annotations of a Deployment's pod template.
async fn hashes(api: &Api<Deployment>, name: &str) -> BTreeMap<String, String> {
    let deployment = api.get(name).await.unwrap();
    deployment
        .spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("kuvert.io/secret-hash."))
        .collect()
}

/// The `kuvert.io/data-hash` of Secret `name` (`None` until it exists).
async fn data_hash(cluster: &Cluster, name: &str) -> Option<String> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let secret = secrets.get_opt(name).await.unwrap()?;
    secret
        .metadata
        .annotations?
        .get("kuvert.io/data-hash")
        .cloned()
}

/// Waits until Deployment `name`'s pod template carries exactly `secrets`' current hashes.
async fn wait_for_hashes(
    cluster: &Cluster,
    name: &str,
    secrets: &[&str],
) -> BTreeMap<String, String> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    let expected = std::sync::Mutex::new(BTreeMap::new());
    eventually(
        &format!("{name} to carry the hashes of {secrets:?}"),
        || {
            let (api, expected) = (&api, &expected);
            async move {
                let mut wanted = BTreeMap::new();
                for secret in secrets {
                    let Some(hash) = data_hash(cluster, secret).await else {
                        return false;
                    };
                    wanted.insert(format!("kuvert.io/secret-hash.{secret}"), hash);
                }
                let done = hashes(api, name).await == wanted;
                *expected.lock().unwrap() = wanted;
                done
            }
        },
    )
    .await;
    expected.into_inner().unwrap()
}

/// Waits until Secret `name`'s data hash is no longer `old`.
async fn wait_for_changed_secret(cluster: &Cluster, name: &str, old: &str) {
    eventually(&format!("Secret {name} to change"), || async {
        data_hash(cluster, name).await.is_some_and(|h| h != old)
    })
    .await;
}

async fn generation(cluster: &Cluster, name: &str) -> i64 {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    api.get(name).await.unwrap().metadata.generation.unwrap()
}

/// The ReplicaSets of Deployment `name` (its pods are labelled `app: NAME`).
async fn replica_sets(cluster: &Cluster, name: &str) -> usize {
    let api: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "default");
    api.list(&ListParams::default().labels(&format!("app={name}")))
        .await
        .unwrap()
        .items
        .len()
}

/// On the real control plane, waits for kube-controller-manager to have rolled `count`
/// ReplicaSets of `name`; devcluster runs no Deployment controller.
async fn wait_for_replica_sets(cluster: &Cluster, name: &str, count: usize) {
    if cluster.backend() == Backend::ControlPlane {
        eventually(&format!("{count} ReplicaSets of {name}"), || async {
            replica_sets(cluster, name).await == count
        })
        .await;
    }
}

async fn force_sync(cluster: &Cluster, name: &str, value: &str) {
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let patch = serde_json::json!({"metadata": {"annotations": {"kuvert.io/force-sync": value}}});
    ess.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(&format!("{name} to act on force-sync {value}"), || async {
        let es = ess.get(name).await.unwrap();
        es.status.and_then(|s| s.force_sync).as_deref() == Some(value)
    })
    .await;
}

async fn a_changed_value_restarts_the_named_deployment_and_a_refresh_restarts_nothing(
    backend: Backend,
) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    create(&cluster.client, &fake_store("default", &[("db", "pw-1")])).await;
    create(
        &cluster.client,
        &deployment("web", "{}", PLAIN_CONTAINER, "[]"),
    )
    .await;
    wait_for_replica_sets(&cluster, "web", 1).await;
    create(
        &cluster.client,
        &external_secret("app", "db", "[{kind: Deployment, name: web}]"),
    )
    .await;

    // The first Secret is recorded in the template (one rollout).
    let first = wait_for_hashes(&cluster, "web", &["app"]).await;
    wait_for_replica_sets(&cluster, "web", 2).await;
    let before = generation(&cluster, "web").await;

    // A refresh reading the same values changes nothing.
    force_sync(&cluster, "app", "1").await;
    assert_eq!(
        hashes(&Api::namespaced(cluster.client.clone(), "default"), "web").await,
        first
    );

    // A changed remote value rolls the Deployment out once, with the new hash.
    set_store(&cluster, &[("db", "pw-2")], "2").await;
    wait_for_changed_secret(&cluster, "app", &first["kuvert.io/secret-hash.app"]).await;
    let second = wait_for_hashes(&cluster, "web", &["app"]).await;
    assert_ne!(second, first);
    assert_eq!(
        generation(&cluster, "web").await,
        before + 1,
        "one template change since the first: the refresh patched nothing"
    );
    wait_for_replica_sets(&cluster, "web", 3).await;
}

async fn two_secrets_changed_together_roll_the_deployment_out_once(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &["--rollout-window", "3s"]);
    operator.wait_ready().await;
    create(
        &cluster.client,
        &fake_store("default", &[("db", "pw-1"), ("api", "token-1")]),
    )
    .await;
    create(
        &cluster.client,
        &deployment("web", "{}", PLAIN_CONTAINER, "[]"),
    )
    .await;
    let web = "[{kind: Deployment, name: web}]";
    create(&cluster.client, &external_secret("db", "db", web)).await;
    create(&cluster.client, &external_secret("api", "api", web)).await;
    let first = wait_for_hashes(&cluster, "web", &["api", "db"]).await;
    let before = generation(&cluster, "web").await;
    // Each template the Deployment had is one ReplicaSet.
    let sets = usize::try_from(before).unwrap();
    wait_for_replica_sets(&cluster, "web", sets).await;

    set_store(&cluster, &[("db", "pw-2"), ("api", "token-2")], "2").await;
    wait_for_changed_secret(&cluster, "db", &first["kuvert.io/secret-hash.db"]).await;
    wait_for_changed_secret(&cluster, "api", &first["kuvert.io/secret-hash.api"]).await;
    wait_for_hashes(&cluster, "web", &["api", "db"]).await;
    assert_eq!(generation(&cluster, "web").await, before + 1, "one rollout");
    wait_for_replica_sets(&cluster, "web", sets + 1).await;
}

async fn labelled_workloads_follow_the_secrets_their_pods_use(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    create(
        &cluster.client,
        &fake_store("default", &[("db", "pw-1"), ("tls", "cert-1")]),
    )
    .await;
    create(&cluster.client, &external_secret("db", "db", "[]")).await;
    create(&cluster.client, &external_secret("tls", "tls", "[]")).await;
    let env_and_volume = "[{name: app, image: registry.invalid/app, env: [{name: DB, valueFrom: {secretKeyRef: {name: db, key: k}}}], volumeMounts: [{name: tls, mountPath: /tls}]}]";
    let tls_volume = "[{name: tls, secret: {secretName: tls}}]";
    create(
        &cluster.client,
        &deployment(
            "labelled",
            "{kuvert.io/reload: \"true\"}",
            env_and_volume,
            tls_volume,
        ),
    )
    .await;
    create(
        &cluster.client,
        &deployment("unlabelled", "{}", env_and_volume, tls_volume),
    )
    .await;
    let narrowed: DaemonSet = yaml(&format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: default\n  labels: {{kuvert.io/reload: \"true\"}}\n  annotations: {{kuvert.io/reload-secrets: tls}}\nspec:\n  selector: {{matchLabels: {{app: agent}}}}\n  template:\n    metadata: {{labels: {{app: agent}}}}\n    spec:\n      containers: {env_and_volume}\n      volumes: {tls_volume}\n"
    ));
    create(&cluster.client, &narrowed).await;

    let first = wait_for_hashes(&cluster, "labelled", &["db", "tls"]).await;
    set_store(&cluster, &[("db", "pw-2"), ("tls", "cert-1")], "2").await;
    wait_for_changed_secret(&cluster, "db", &first["kuvert.io/secret-hash.db"]).await;
    let second = wait_for_hashes(&cluster, "labelled", &["db", "tls"]).await;
    assert_ne!(
        second["kuvert.io/secret-hash.db"],
        first["kuvert.io/secret-hash.db"]
    );
    assert_eq!(
        second["kuvert.io/secret-hash.tls"],
        first["kuvert.io/secret-hash.tls"]
    );

    // The DaemonSet follows only the Secret its annotation lists; the unlabelled Deployment
    // was never touched.
    let daemon_sets: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), "default");
    let agent = daemon_sets.get("agent").await.unwrap();
    let agent_hashes: Vec<String> = agent
        .spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k.starts_with("kuvert.io/secret-hash."))
        .collect();
    assert_eq!(agent_hashes, ["kuvert.io/secret-hash.tls"]);
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    assert_eq!(hashes(&deployments, "unlabelled").await, BTreeMap::new());
    assert_eq!(generation(&cluster, "unlabelled").await, 1);
}

async fn a_restart_lost_to_a_crash_happens_when_kuvert_comes_back(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    create(&cluster.client, &fake_store("default", &[("db", "pw-1")])).await;
    create(
        &cluster.client,
        &deployment("web", "{}", PLAIN_CONTAINER, "[]"),
    )
    .await;
    create(
        &cluster.client,
        &external_secret("app", "db", "[{kind: Deployment, name: web}]"),
    )
    .await;
    // A window longer than the test: the process dies after writing the Secret and before
    // patching the Deployment.
    let mut first = Operator::start(&cluster, &["--rollout-window", "1h"]);
    first.wait_ready().await;
    eventually("the Secret to be written", || async {
        data_hash(&cluster, "app").await.is_some()
    })
    .await;
    first.stop();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    assert_eq!(hashes(&deployments, "web").await, BTreeMap::new());

    let second = Operator::start(&cluster, &[]);
    second.wait_ready().await;
    wait_for_hashes(&cluster, "web", &["app"]).await;
    wait_for_replica_sets(&cluster, "web", 2).await;
}

/// Waits for a Warning Event `reason` about ExternalSecret `name` in `default`.
async fn until_warning(client: &kube::Client, name: &str, reason: &str) {
    let want = (name.to_owned(), "Warning".to_owned(), reason.to_owned());
    eventually(&format!("a {reason} Warning"), || async {
        external_secret_events(client, "default")
            .await
            .contains(&want)
    })
    .await;
}

async fn a_missing_target_is_reported_on_the_external_secret(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    create(&cluster.client, &fake_store("default", &[("db", "pw-1")])).await;
    create(
        &cluster.client,
        &external_secret("app", "db", "[{kind: StatefulSet, name: missing}]"),
    )
    .await;
    until_warning(&cluster.client, "app", "RolloutTargetNotFound").await;
}

/// `status.workloads` of ExternalSecret `name` as (name, secretHash, upToDate), and the
/// `workloadsUpToDate` column.
async fn workloads(
    cluster: &Cluster,
    name: &str,
) -> (Vec<(String, Option<String>, bool)>, Option<String>) {
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let status = ess.get(name).await.unwrap().status.unwrap_or_default();
    let listed = status
        .workloads
        .into_iter()
        .map(|w| (w.name, w.secret_hash, w.up_to_date))
        .collect();
    (listed, status.workloads_up_to_date)
}

async fn the_status_lists_the_workloads_and_which_run_the_current_data(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let operator = Operator::start(&cluster, &["--rollout-behind-threshold", "3s"]);
    operator.wait_ready().await;
    create(&cluster.client, &fake_store("default", &[("db", "pw-1")])).await;
    // No Pod is ever scheduled: a Deployment of one replica never finishes its rollout, one of
    // none finishes as soon as its controller observes the new template.
    let mut idle = deployment("idle", "{}", PLAIN_CONTAINER, "[]");
    idle.spec.replicas = Some(0);
    create(&cluster.client, &idle).await;
    create(
        &cluster.client,
        &deployment("busy", "{}", PLAIN_CONTAINER, "[]"),
    )
    .await;
    create(
        &cluster.client,
        &external_secret(
            "app",
            "db",
            "[{kind: Deployment, name: idle}, {kind: Deployment, name: busy}]",
        ),
    )
    .await;
    wait_for_hashes(&cluster, "idle", &["app"]).await;
    let hash = data_hash(&cluster, "app").await.unwrap();

    if backend == Backend::DevCluster {
        // devcluster runs no Deployment controller: the test writes what it would.
        let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
        let generation = generation(&cluster, "idle").await;
        let status =
            serde_json::json!({"status": {"observedGeneration": generation, "replicas": 0}});
        deployments
            .patch_status("idle", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let expected = (
        vec![
            ("busy".to_owned(), Some(hash.clone()), false),
            ("idle".to_owned(), Some(hash.clone()), true),
        ],
        Some("1/2".to_owned()),
    );
    eventually("the status to show idle rolled out, busy not", || async {
        workloads(&cluster, "app").await == expected
    })
    .await;

    if backend == Backend::ControlPlane {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["get", "externalsecret", "app", "-n", "default"])
            .output()
            .unwrap();
        let table = String::from_utf8(out.stdout).unwrap();
        // Columns are aligned; some headers and cells are empty or hold spaces.
        let mut lines = table.lines();
        let column = lines.next().unwrap().find("WORKLOADS").unwrap();
        let row = lines.next().unwrap();
        let cell = row[column..].split_whitespace().next();
        assert_eq!(cell, Some("1/2"), "{table}");
    }

    // The Deployment whose rollout cannot finish is reported behind.
    until_warning(&cluster.client, "app", "RolloutBehind").await;

    // No longer named: no longer listed.
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let patch = serde_json::json!({"spec": {"target": {"rolloutRestartTargets": null}}});
    ess.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the status to list no workload", || async {
        workloads(&cluster, "app").await == (vec![], None)
    })
    .await;
}

on_both_backends!(
    the_status_lists_the_workloads_and_which_run_the_current_data,
    a_changed_value_restarts_the_named_deployment_and_a_refresh_restarts_nothing,
    two_secrets_changed_together_roll_the_deployment_out_once,
    labelled_workloads_follow_the_secrets_their_pods_use,
    a_restart_lost_to_a_crash_happens_when_kuvert_comes_back,
    a_missing_target_is_reported_on_the_external_secret,
);
