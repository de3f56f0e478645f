//! Starting up: a missing CRD or RBAC rule is said at error level, naming the resource and the
//! remedy, kuvert is unready meanwhile, recovers by itself once it is fixed, and a SIGTERM ends
//! the wait. JSON log lines carry the event's fields at the top level; a bad filter is an error.

mod support;

use std::path::Path;

use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::Value;
use support::{Backend, Cluster, Operator, eventually};

/// The JSON log lines written so far; panics on a line that is not a JSON object.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

/// The error lines naming `resource`.
fn errors_naming(path: &Path, resource: &str) -> Vec<Value> {
    log_lines(path)
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["resource"] == resource)
        .collect()
}

fn start_json(cluster: &Cluster, log: &Path) -> Operator {
    let file = std::fs::File::create(log).unwrap();
    Operator::start_logging(cluster, &["--log-format", "json"], file)
}

async fn a_missing_crd_is_named_and_installing_it_recovers(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let name = "externalsecrets.kuvert.io";
    let crd = crds.get(name).await.unwrap();
    crds.delete(name, &DeleteParams::default()).await.unwrap();
    eventually("the CRD to be gone", || async {
        crds.get_opt(name).await.unwrap().is_none()
    })
    .await;

    let log = cluster.dir.join("kuvert.log");
    let operator = start_json(&cluster, &log);
    eventually("an error line naming the CRD", || async {
        !errors_naming(&log, name).is_empty()
    })
    .await;
    let line = &errors_naming(&log, name)[0];
    assert_eq!(line["code"], 404);
    assert_eq!(
        line["message"],
        "cannot start: the CRD externalsecrets.kuvert.io is not installed: apply kuvert's CRDs \
         (kubectl apply --server-side -f crds/, or the Helm chart with crds.install=true)"
    );
    assert_eq!(operator.get("/readyz").await.0, 503);
    assert_eq!(operator.get("/healthz").await.0, 200);

    let mut fresh = crd.clone();
    fresh.metadata = kube::api::ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };
    fresh.status = None;
    crds.create(&PostParams::default(), &fresh).await.unwrap();
    operator.wait_ready().await;
    assert!(
        log_lines(&log)
            .iter()
            .any(|l| l["message"] == "every API kuvert watches answers now; starting"),
        "the recovery is said"
    );
}

async fn sigterm_ends_the_wait_for_a_missing_crd(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    crds.delete("secretstores.kuvert.io", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD to be gone", || async {
        crds.get_opt("secretstores.kuvert.io")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let log = cluster.dir.join("kuvert.log");
    let mut operator = start_json(&cluster, &log);
    eventually("an error line naming the CRD", || async {
        !errors_naming(&log, "secretstores.kuvert.io").is_empty()
    })
    .await;
    assert_eq!(operator.terminate(), Some(0), "the first SIGTERM ends it");
}

on_both_backends!(
    a_missing_crd_is_named_and_installing_it_recovers,
    sigterm_ends_the_wait_for_a_missing_crd,
);

/// On the real control plane (devcluster does not authorize): the ClusterRole without
/// `secretstores`, then with it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rbac_rule_is_named_and_granting_it_recovers() {
    let cluster = Cluster::start_on(Backend::ControlPlane).await;
    cluster
        .refusals_expected
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let granted = roles.get("kuvert").await.unwrap();
    let mut narrowed = granted.clone();
    for rule in narrowed.rules.iter_mut().flatten() {
        if let Some(resources) = &mut rule.resources {
            resources.retain(|r| r != "secretstores");
        }
    }
    roles
        .replace("kuvert", &PostParams::default(), &narrowed)
        .await
        .unwrap();

    let log = cluster.dir.join("kuvert.log");
    let operator = start_json(&cluster, &log);
    eventually("an error line naming secretstores", || async {
        !errors_naming(&log, "secretstores.kuvert.io").is_empty()
    })
    .await;
    let line = &errors_naming(&log, "secretstores.kuvert.io")[0];
    assert_eq!(line["code"], 403);
    let message = line["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "cannot start: kuvert's ServiceAccount may not list secretstores.kuvert.io; grant it \
             the rules of charts/kuvert/files/rbac/ (the API server said: "
        ) && message.contains(r#"cannot list resource "secretstores" in API group "kuvert.io""#),
        "{message}"
    );
    assert_eq!(operator.get("/readyz").await.0, 503);

    let mut restored = roles.get("kuvert").await.unwrap();
    restored.rules = granted.rules;
    roles
        .replace("kuvert", &PostParams::default(), &restored)
        .await
        .unwrap();
    operator.wait_ready().await;
}

#[test]
fn an_invalid_log_level_is_an_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .args(["run", "--log-level", "info,kuvert=loud"])
        .env_remove("KUVERT_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("Error: --log-level \"info,kuvert=loud\" is not a log filter: "),
        "{stderr}"
    );
}
