//! The committed `crds/` (and the Helm chart's copy) must be exactly what the types generate, and every CRD must be a
//! structural schema the API server accepts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

/// Every folder `make generate` writes the CRDs into: `crds/` (for `kubectl apply`) and the
/// Helm chart's copy, which its `templates/crds.yaml` renders.
const CRD_DIRS: [&str; 2] = ["crds", "charts/kuvert/files/crds"];

fn repo_dir(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[test]
fn committed_crds_match_the_rust_types() {
    for dir in CRD_DIRS {
        let mut expected = BTreeSet::new();
        for crd in kuvert_core::crds::all() {
            let name = kuvert_core::crds::file_name(&crd);
            let path = repo_dir(dir).join(&name);
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; run `make generate`", path.display()));
            assert!(
                committed == kuvert_core::crds::to_yaml(&crd),
                "{dir}/{name} is stale: run `make generate` and commit the result"
            );
            expected.insert(name);
        }
        let on_disk: BTreeSet<String> = std::fs::read_dir(repo_dir(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(on_disk, expected, "{dir}/ holds files no type generates");
    }
}

#[test]
fn every_kind_has_its_short_name_and_scope() {
    let got: Vec<(String, String, Vec<String>)> = kuvert_core::crds::all()
        .into_iter()
        .map(|crd| {
            (
                crd.spec.names.kind,
                crd.spec.scope,
                crd.spec.names.short_names.unwrap_or_default(),
            )
        })
        .collect();
    let want = |k: &str, s: &str, short: &[&str]| {
        (
            k.to_owned(),
            s.to_owned(),
            short.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        got,
        vec![
            want("SecretStore", "Namespaced", &["ss"]),
            want("ClusterSecretStore", "Cluster", &["css"]),
            want("ExternalSecret", "Namespaced", &["es"]),
            want("ClusterExternalSecret", "Cluster", &["ces"]),
            want("PushSecret", "Namespaced", &["ps"]),
            want("Password", "Namespaced", &[]),
            want("UUID", "Namespaced", &[]),
            want("Fake", "Namespaced", &[]),
            want("VaultDynamicSecret", "Namespaced", &[]),
        ]
    );
}

#[test]
fn external_secret_printer_columns_are_esos_with_the_effective_refresh_interval_and_workloads() {
    let crd = kuvert_core::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "ExternalSecret")
        .unwrap();
    let columns: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        columns,
        [
            "StoreType",
            "Store",
            "Refresh Interval",
            "Status",
            "Ready",
            "Last Sync",
            "Workloads",
            "Age"
        ]
    );
    let refresh = crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .find(|c| c.name == "Refresh Interval")
        .unwrap();
    assert_eq!(
        refresh.json_path, ".status.refreshInterval",
        "shown when defaulted"
    );
}

/// Fields whose content is free-form on purpose.
const FREE_FORM: &[&str] = &[
    ".spec.data[].metadata", // PushSecret: provider-specific metadata
    ".spec.parameters",      // VaultDynamicSecret: request body of any engine
    ".status.syncedPushSecrets{}{}.metadata", // PushSecret status: a copy of the above
];

#[test]
fn every_crd_is_a_structural_schema() {
    for crd in kuvert_core::crds::all() {
        for version in &crd.spec.versions {
            let schema =
                serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            let mut problems = Vec::new();
            check_structural(&schema, "", false, &mut problems);
            assert!(
                problems.is_empty(),
                "{} is not structural:\n{}",
                crd.spec.names.kind,
                problems.join("\n")
            );
        }
    }
}

/// The rules of https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
/// that matter for generated schemas.
fn check_structural(schema: &Value, path: &str, in_junctor: bool, problems: &mut Vec<String>) {
    let obj = schema.as_object().expect("a schema is an object");
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if preserve && !FREE_FORM.contains(&path) {
        problems.push(format!(
            "{path}: x-kubernetes-preserve-unknown-fields where not intended"
        ));
    }
    if in_junctor {
        for forbidden in [
            "type",
            "description",
            "default",
            "additionalProperties",
            "nullable",
        ] {
            if obj.contains_key(forbidden) {
                problems.push(format!("{path}: `{forbidden}` inside oneOf/anyOf/allOf"));
            }
        }
    } else if !obj.contains_key("type")
        && !preserve
        && !obj.contains_key("x-kubernetes-int-or-string")
    {
        problems.push(format!("{path}: no `type`"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!(
            "{path}: both `properties` and `additionalProperties`"
        ));
    }
    if obj.contains_key("$ref") {
        problems.push(format!("{path}: `$ref` is not allowed"));
    }
    for (name, sub) in obj
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        check_structural(sub, &format!("{path}.{name}"), in_junctor, problems);
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), in_junctor, problems);
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        check_structural(additional, &format!("{path}{{}}"), in_junctor, problems);
    }
    for junctor in ["oneOf", "anyOf", "allOf"] {
        for sub in obj
            .get(junctor)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            check_structural(sub, &format!("{path}({junctor})"), true, problems);
        }
    }
}
