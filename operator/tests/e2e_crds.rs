//! kuvert's CRDs on a real API server and on devcluster (issue 15), with one expectation for both:
//! - every manifest under `examples/` and every `kuvert render` input applies with
//!   `kubectl apply --server-side` and reads back as sent, nothing pruned (`manifests.rs`);
//! - one table of valid and invalid objects covers every CEL rule, enum, pattern, list limit,
//!   bound, length and one-of in the CRDs, and the answer to each row (accepted, or 422 with
//!   these field paths and messages) is the same on both servers (`table.rs` and the files it
//!   names);
//! - `kubectl get es|ss|css` prints the printer columns, and `kubectl explain` on the real
//!   server prints the field descriptions written as Rust doc comments.
//!
//! devcluster answers like kube-apiserver v1.37 here; where it cannot, the difference is listed
//! in devcluster/README.md ("Fidelity table") and shown by a test below.

mod support;

#[path = "e2e_crds/external_secret_rows.rs"]
mod external_secret_rows;
#[path = "e2e_crds/fixtures.rs"]
mod fixtures;
#[path = "e2e_crds/manifests.rs"]
mod manifests;
#[path = "e2e_crds/other_rows.rs"]
mod other_rows;
#[path = "e2e_crds/schema.rs"]
mod schema;
#[path = "e2e_crds/table.rs"]
mod table;

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Backend, Cluster, yaml};

/// What `kubectl` printed and whether it succeeded.
pub(crate) struct Kubectl {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `kubectl ARGS` as the cluster's admin, with its discovery cache inside the cluster's
/// folder (so nothing is left in `~/.kube`, and later calls reuse the discovery).
pub(crate) async fn kubectl(cluster: &Cluster, args: &[&str]) -> Kubectl {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let kubeconfig = cluster.kubeconfig();
    let cache = cluster.dir.join("kubectl-cache");
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("kubectl")
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", cache)
            .output()
            .expect("kubectl runs (it is on PATH)");
        Kubectl {
            ok: out.status.success(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// The workspace root.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn the_crds_hold_what_users_write(backend: Backend) {
    let started = std::time::Instant::now();
    let cluster = Cluster::start_on(backend).await;
    manifests::every_manifest_round_trips(&cluster).await;
    table::every_row_gets_the_expected_answer(&cluster).await;
    printer_columns_are_printed(&cluster).await;
    the_cel_cost_budget_is_enforced_only_by_the_real_server(&cluster).await;
    eprintln!(
        "{backend:?}: CRD scenario in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `kubectl get` prints the printer columns of ExternalSecrets, SecretStores and
/// ClusterSecretStores: the header, empty cells for what is not set, and the Ready condition.
async fn printer_columns_are_printed(cluster: &Cluster) {
    let client = &cluster.client;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &yaml("metadata: {name: columns}"))
        .await
        .unwrap();
    let store: kuvert_core::api::SecretStore =
        yaml("metadata: {name: demo, namespace: columns}\nspec: {provider: {fake: {data: []}}}");
    let cluster_store: kuvert_core::api::ClusterSecretStore = yaml(
        "metadata: {name: shared, labels: {columns: 'yes'}}\nspec: {provider: {fake: {data: []}}}",
    );
    let es: kuvert_core::api::ExternalSecret = yaml(
        "metadata: {name: app, namespace: columns}\nspec: {secretStoreRef: {name: demo, kind: SecretStore}}",
    );
    let pp = PostParams::default();
    Api::namespaced(client.clone(), "columns")
        .create(&pp, &store)
        .await
        .unwrap();
    Api::all(client.clone())
        .create(&pp, &cluster_store)
        .await
        .unwrap();
    let ess: Api<kuvert_core::api::ExternalSecret> = Api::namespaced(client.clone(), "columns");
    ess.create(&pp, &es).await.unwrap();

    let get = |what: &'static str| async move {
        let out = kubectl(cluster, &["get", what, "-n", "columns"]).await;
        assert!(out.ok, "kubectl get {what}: {}", out.stderr);
        out.stdout
    };
    let ss = get("ss").await;
    assert_eq!(
        header_and_cells(&ss),
        (
            "NAME   AGE   STATUS   CAPABILITIES   READY".to_owned(),
            vec![vec!["demo".to_owned(), "<age>".to_owned()]]
        ),
        "{ss}"
    );
    // ClusterSecretStores of the other checks exist too: only the labelled one is listed.
    let css = kubectl(cluster, &["get", "css", "-l", "columns=yes"]).await;
    assert!(css.ok, "{}", css.stderr);
    assert_eq!(
        header_and_cells(&css.stdout),
        (
            "NAME     AGE   STATUS   CAPABILITIES   READY".to_owned(),
            vec![vec!["shared".to_owned(), "<age>".to_owned()]]
        ),
        "{}",
        css.stdout
    );
    let before = get("es").await;
    assert_eq!(
        header_and_cells(&before),
        (
            "NAME   STORETYPE     STORE   REFRESH INTERVAL   STATUS   READY   LAST SYNC   WORKLOADS   AGE"
                .to_owned(),
            vec![vec![
                "app".to_owned(),
                "SecretStore".to_owned(),
                "demo".to_owned(),
                "<age>".to_owned()
            ]]
        ),
        "{before}"
    );

    // The Status and Ready columns read the Ready condition through a JSONPath filter; the
    // refresh interval in effect (the default here), the last sync and the workloads up to date
    // come from the status.
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    let status = json!({"status": {"refreshInterval": "1h", "refreshTime": now.to_string(), "workloadsUpToDate": "3/4", "conditions": [
        {"type": "Other", "status": "False", "reason": "NotThis", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "synced", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ]}});
    ess.patch_status("app", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let after = get("es").await;
    assert_eq!(
        header_and_cells(&after),
        (
            "NAME   STORETYPE     STORE   REFRESH INTERVAL   STATUS         READY   LAST SYNC   WORKLOADS   AGE"
                .to_owned(),
            vec![vec![
                "app".to_owned(),
                "SecretStore".to_owned(),
                "demo".to_owned(),
                "1h".to_owned(),
                "SecretSynced".to_owned(),
                "True".to_owned(),
                "<age>".to_owned(),
                "3/4".to_owned(),
                "<age>".to_owned()
            ]]
        ),
        "{after}"
    );
}

/// The header line of `kubectl get` output (trailing spaces trimmed) and the cells of each row,
/// with ages (`0s`, `12s`) replaced by `<age>` since they depend on the clock.
fn header_and_cells(out: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default().trim_end().to_owned();
    let is_age = |c: &str| {
        c.len() > 1
            && c[..c.len() - 1].chars().all(|d| d.is_ascii_digit())
            && c.ends_with(['s', 'm'])
    };
    let rows = lines
        .map(|l| {
            l.split_whitespace()
                .map(|c| if is_age(c) { "<age>" } else { c }.to_owned())
                .collect()
        })
        .collect();
    (header, rows)
}

/// kube-apiserver refuses a CRD whose CEL rules may cost more than its budget; devcluster does
/// not estimate CEL costs (devcluster/README.md, "Fidelity table"). kuvert's ExternalSecret
/// CRD without its `maxItems` limits was 7x over budget on the real server.
async fn the_cel_cost_budget_is_enforced_only_by_the_real_server(cluster: &Cluster) {
    let es = kuvert_core::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "ExternalSecret")
        .unwrap();
    let mut unbounded = serde_json::to_value(&es).unwrap();
    remove_key(&mut unbounded, "maxItems");
    unbounded["metadata"]["name"] = json!("externalsecrets.unbounded.kuvert.io");
    unbounded["spec"]["group"] = json!("unbounded.kuvert.io");
    let unbounded: CustomResourceDefinition = serde_json::from_value(unbounded).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let created = crds.create(&PostParams::default(), &unbounded).await;
    match cluster.backend() {
        Backend::ControlPlane => {
            let kube::Error::Api(status) = created.unwrap_err() else {
                panic!("expected a Status");
            };
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            let field = "spec.validation.openAPIV3Schema.properties[spec].properties[dataFrom].items.x-kubernetes-validations[0].rule";
            let over_budget = status.details.unwrap().causes.into_iter().any(|c| {
                c.field == field
                    && c.message
                        .starts_with("Forbidden: estimated rule cost exceeds budget by factor of")
            });
            assert!(over_budget, "{}", status.message);
        }
        Backend::DevCluster => {
            created.unwrap();
        }
    }
}

fn remove_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| remove_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| remove_key(v, key)),
        _ => {}
    }
}

/// `kubectl explain` reads the schemas kube-apiserver publishes; the descriptions are the Rust
/// doc comments of `core/src/api`. (devcluster publishes no schemas yet: real server only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_prints_the_doc_comments() {
    let cluster = Cluster::start_on(Backend::ControlPlane).await;
    let out = kubectl(
        &cluster,
        &["explain", "externalsecret.spec.refreshInterval"],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "GROUP:      kuvert.io\nKIND:       ExternalSecret\nVERSION:    v1alpha1\n\nFIELD: refreshInterval <string>\n\n\nDESCRIPTION:\n    How often the remote secrets are read again, as a Go duration; `0` syncs\n    once.\n    Default: `1h`.\n    \n\n"
    );
    let out = kubectl(
        &cluster,
        &["explain", "clustersecretstore.spec.provider.vault.server"],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("FIELD: server <string>\n"),
        "{}",
        out.stdout
    );
    let described = kuvert_core::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "ClusterSecretStore")
        .and_then(|c| {
            let v = serde_json::to_value(&c.spec.versions[0]).unwrap();
            v.pointer("/schema/openAPIV3Schema/properties/spec/properties/provider/properties/vault/properties/server/description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap();
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&out.stdout).contains(&words(&described)),
        "explain shows the description {described:?}: {}",
        out.stdout
    );
}

on_both_backends!(the_crds_hold_what_users_write);
