//! Every manifest users are shown (`examples/`) or `kuvert render` reads (`tests/render/`)
//! applies with `kubectl apply --server-side` and reads back as it was sent: the spec (data for
//! Secrets and ConfigMaps), labels and annotations, nothing pruned or defaulted away.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

use super::support::{Cluster, yaml};
use super::{kubectl, repo};

/// Files in the corpus that are not YAML on purpose, and what kubectl says about each (the same
/// on both servers: kubectl parses before it sends anything).
const NOT_YAML: &[(&str, &str)] = &[(
    // kuvert render's "invalid YAML" case: an unterminated string.
    "tests/render/bad-yaml/input.yaml",
    "error converting YAML to JSON: yaml: line 9: found unexpected end of stream",
)];

/// Files among the render inputs that are not manifests at all (`kuvert render` skips them).
const NOT_MANIFESTS: &[&str] = &["tests/render/folder-input/input/notes.txt"];

/// Documents that are invalid on purpose (`kuvert render` reports them, `expected.stderr`), by
/// file, kind and name, with what `kubectl apply --server-side` prints; `None`: the API has no
/// such kind (kubectl's message differs, see devcluster/README.md, "Fidelity table").
const INVALID_ON_PURPOSE: &[(&str, &str, &str, Option<&str>)] = &[
    (
        // `kee` for `key`: an unknown field and a missing required one.
        "tests/render/bad-manifests/input.yaml",
        "ExternalSecret",
        "typo",
        Some(
            "Error from server: failed to create typed patch object (default/typo; kuvert.io/v1alpha1, Kind=ExternalSecret): .spec.data[0].remoteRef.kee: field not declared in schema\n",
        ),
    ),
    (
        // The plural as the kind.
        "tests/render/bad-manifests/input.yaml",
        "ExternalSecrets",
        "plural",
        None,
    ),
];

/// `examples/**/*.y(a)ml`, `tests/render/*/input.yaml` and `tests/render/folder-input/input/*`.
fn corpus() -> Vec<PathBuf> {
    fn yaml_under(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                yaml_under(&path, out);
            } else if is_yaml(&path) {
                out.push(path);
            }
        }
    }
    let root = repo();
    let mut files = Vec::new();
    yaml_under(&root.join("examples"), &mut files);
    for case in std::fs::read_dir(root.join("tests/render")).unwrap() {
        let case = case.unwrap().path();
        if case.join("input.yaml").is_file() {
            files.push(case.join("input.yaml"));
        }
        if case.join("input").is_dir() {
            for file in std::fs::read_dir(case.join("input")).unwrap() {
                let file = file.unwrap().path();
                let relative = file
                    .strip_prefix(&root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                if !is_yaml(&file) {
                    assert!(
                        NOT_MANIFESTS.contains(&relative.as_str()),
                        "{relative} is neither YAML nor listed in NOT_MANIFESTS"
                    );
                    continue;
                }
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// What must survive the round trip: labels, annotations and the spec, or for Secrets their
/// type and data (`stringData` folded into `data`, as the API server stores it), for
/// ConfigMaps their data, for Namespaces nothing more.
fn kept(doc: &Value, as_sent: bool) -> Value {
    let map = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let mut kept = json!({
        "labels": map(&doc["metadata"]["labels"]),
        "annotations": map(&doc["metadata"]["annotations"]),
    });
    match str_at(doc, "/kind") {
        "Secret" => {
            let mut data = map(&doc["data"]);
            if as_sent {
                for (k, v) in map(&doc["stringData"]) {
                    let text = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
            let ty = doc["type"].as_str().unwrap_or("Opaque");
            kept["type"] = json!(ty);
            kept["data"] = Value::Object(data);
        }
        "ConfigMap" => {
            kept["data"] = Value::Object(map(&doc["data"]));
            kept["binaryData"] = Value::Object(map(&doc["binaryData"]));
        }
        // A Namespace's spec is the API server's (its finalizers), and so is the label naming
        // it: the labels written are what count.
        "Namespace" => {
            if let Some(labels) = kept["labels"].as_object_mut() {
                labels.remove("kubernetes.io/metadata.name");
            }
        }
        _ => kept["spec"] = doc["spec"].clone(),
    }
    kept
}

/// What `kubectl apply` prints for a document: `externalsecret.kuvert.io/name serverside-applied`.
fn applied_line(doc: &Value) -> String {
    let group = str_at(doc, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    let kind = str_at(doc, "/kind").to_lowercase();
    let resource = if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    };
    format!(
        "{resource}/{} serverside-applied",
        str_at(doc, "/metadata/name")
    )
}

fn gvk(doc: &Value) -> GroupVersionKind {
    let (group, version) = str_at(doc, "/apiVersion")
        .rsplit_once('/')
        .unwrap_or(("", str_at(doc, "/apiVersion")));
    GroupVersionKind::gvk(group, version, str_at(doc, "/kind"))
}

/// Every valid document of the corpus applies and reads back as sent; the documents invalid
/// on purpose are refused.
pub async fn every_manifest_round_trips(cluster: &Cluster) {
    let files = corpus();
    let mut documents: Vec<(PathBuf, Vec<Value>)> = Vec::new();
    for file in &files {
        let name = relative(file);
        let text = std::fs::read_to_string(file).unwrap();
        match serde_saphyr::from_multiple::<Value>(&text) {
            Ok(docs) => {
                assert!(
                    !NOT_YAML.iter().any(|(f, _)| *f == name),
                    "{name} parses, but NOT_YAML says it should not"
                );
                documents.push((
                    file.clone(),
                    docs.into_iter().filter(|d| !d.is_null()).collect(),
                ));
            }
            Err(e) => {
                let (_, why) = NOT_YAML
                    .iter()
                    .find(|(f, _)| *f == name)
                    .unwrap_or_else(|| panic!("{name} is not YAML: {e}"));
                let path = file.to_str().unwrap();
                let out = kubectl(cluster, &["apply", "--server-side", "-f", path]).await;
                assert!(!out.ok);
                assert_eq!(out.stderr, format!("error: error parsing {path}: {why}\n"));
            }
        }
    }
    let listed: BTreeSet<String> = documents.iter().map(|(f, _)| relative(f)).collect();
    assert!(listed.contains("examples/quickstart/externalsecret.yaml"));
    assert!(listed.contains("tests/render/folder-input/input/b-first.yml"));

    // Every namespace a document names exists first.
    let namespaces: BTreeSet<&str> = documents
        .iter()
        .flat_map(|(_, docs)| docs.iter().map(|d| str_at(d, "/metadata/namespace")))
        .filter(|ns| !ns.is_empty() && *ns != "default")
        .collect();
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for ns in &namespaces {
        api.create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {ns}}}")),
        )
        .await
        .unwrap();
    }

    let discovery = Discovery::new(cluster.client.clone()).run().await.unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (index, (file, docs)) in documents.iter().enumerate() {
        let name = relative(file);
        let invalid = |d: &Value| {
            INVALID_ON_PURPOSE.iter().find(|(f, kind, n, _)| {
                *f == name && str_at(d, "/kind") == *kind && str_at(d, "/metadata/name") == *n
            })
        };
        let valid: Vec<&Value> = docs.iter().filter(|d| invalid(d).is_none()).collect();
        let sent = cluster.dir.join(format!("manifest-{index}.yaml"));
        let text: Vec<String> = valid.iter().map(|d| d.to_string()).collect();
        std::fs::write(&sent, text.join("\n---\n")).unwrap();
        let out = kubectl(
            cluster,
            &["apply", "--server-side", "-f", sent.to_str().unwrap()],
        )
        .await;
        let expected: Vec<String> = valid.iter().map(|d| applied_line(d)).collect();
        if !out.ok || out.stdout.lines().collect::<Vec<_>>() != expected {
            failures.push(format!(
                "{name}: kubectl apply printed\n{}{}expected\n{}",
                out.stdout,
                out.stderr,
                expected.join("\n")
            ));
            continue;
        }
        for doc in &valid {
            let (resource, caps) = discovery
                .resolve_gvk(&gvk(doc))
                .unwrap_or_else(|| panic!("{name}: the API serves {:?}", gvk(doc)));
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                let ns = match str_at(doc, "/metadata/namespace") {
                    "" => "default",
                    ns => ns,
                };
                Api::namespaced_with(cluster.client.clone(), ns, &resource)
            } else {
                Api::all_with(cluster.client.clone(), &resource)
            };
            let object_name = str_at(doc, "/metadata/name");
            let stored = serde_json::to_value(api.get(object_name).await.unwrap()).unwrap();
            let (want, got) = (kept(doc, true), kept(&stored, false));
            if want != got {
                failures.push(format!(
                    "{name}: {} {object_name} was sent as\n{want:#}\nand reads back as\n{got:#}",
                    str_at(doc, "/kind")
                ));
            }
            checked += 1;
        }
        for doc in docs.iter().filter_map(|d| invalid(d).map(|i| (d, i))) {
            let (doc, (_, kind, object_name, stderr)) = doc;
            let alone = cluster.dir.join(format!("invalid-{object_name}.yaml"));
            std::fs::write(&alone, doc.to_string()).unwrap();
            let out = kubectl(
                cluster,
                &["apply", "--server-side", "-f", alone.to_str().unwrap()],
            )
            .await;
            assert!(!out.ok, "{name}: {kind} {object_name} was accepted");
            match stderr {
                Some(stderr) => assert_eq!(out.stderr, *stderr, "{name}: {kind} {object_name}"),
                None => assert!(
                    discovery.resolve_gvk(&gvk(doc)).is_none(),
                    "{name}: the API serves {kind}"
                ),
            }
        }
        // The next file may reuse these names with other content. Namespaces stay: deleting
        // one is asynchronous on a real cluster, and another file may use it.
        for doc in valid
            .iter()
            .rev()
            .filter(|d| str_at(d, "/kind") != "Namespace")
        {
            let (resource, caps) = discovery.resolve_gvk(&gvk(doc)).unwrap();
            let ns = match str_at(doc, "/metadata/namespace") {
                "" => "default",
                ns => ns,
            };
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                Api::namespaced_with(cluster.client.clone(), ns, &resource)
            } else {
                Api::all_with(cluster.client.clone(), &resource)
            };
            api.delete(str_at(doc, "/metadata/name"), &DeleteParams::default())
                .await
                .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the corpus' documents did not round-trip:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // A floor, so that a corpus that silently lost its files fails.
    assert!(checked >= 80, "only {checked} documents checked");
    eprintln!(
        "{} files, {checked} documents applied and read back",
        files.len()
    );
}
