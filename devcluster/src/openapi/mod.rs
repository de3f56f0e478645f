//! `/openapi/v3`: the index of OpenAPI v3 documents, one per group-version, each addressed
//! with a hash of its content (kubectl caches a document by that address for a year), and the
//! documents themselves.
//!
//! A custom resource's group-version gets what kube-apiserver serves for it: every kind's
//! schema from its CRD and the List kinds ([`kind`]), the operations on their paths
//! ([`paths`]) and the `meta/v1` schemas they refer to, so `kubectl explain` prints the CRD's
//! descriptions and kubectl knows the server validates fields itself. The built-in group-versions get no schemas, only
//! each kind's PATCH operation, which is all kubectl needs to leave field validation to the
//! server; `kubectl explain` of a built-in kind fails with kubectl's "not found in OpenAPI
//! schema".
//!
//! The documents are built when first asked for after the served resources changed
//! ([`Registry::openapi`]) and kept, serialised, with their hash.

mod kind;
mod paths;

pub(crate) use kind::PublishedVersion;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::registry::{Registry, Special};

/// Where a document's schemas are, for `$ref`.
const SCHEMAS: &str = "#/components/schemas/";

/// What kube-apiserver v1.37.2 serves for the CRDs in `reference-crds.yaml` (pretty-printed).
/// The `meta/v1` schemas and the query parameters' descriptions are taken from it; the tests
/// check that devcluster builds all the rest of it from the CRDs.
const RECORDED: &str = include_str!("kube-apiserver-v1.37.2.json");

/// The parts of a custom resource's document that are the same for every CRD.
struct Reference {
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.*`: what the operations and the kinds refer to.
    meta_schemas: Map<String, Value>,
    pretty: Value,
    namespace: Value,
    /// The query parameters of each action (`get`, `list`, `post`, `put`, `patch`, `delete`).
    options: HashMap<&'static str, Vec<Value>>,
}

static REFERENCE: LazyLock<Reference> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(RECORDED).expect("the recorded document is JSON");
    let base = "/apis/reference.example.com/v1/namespaces/{namespace}/widgets";
    let collection = &doc["paths"][base];
    let item = &doc["paths"][format!("{base}/{{name}}")];
    let path_param = |name: &str| {
        collection["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("the recorded document has the {name} parameter"))
    };
    let params = |op: &Value| op["parameters"].as_array().cloned().unwrap_or_default();
    Reference {
        meta_schemas: doc["components"]["schemas"]
            .as_object()
            .expect("the recorded document has schemas")
            .iter()
            .filter(|(name, _)| name.starts_with("io.k8s.apimachinery.pkg.apis.meta.v1."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        pretty: path_param("pretty"),
        namespace: path_param("namespace"),
        options: HashMap::from([
            ("get", params(&item["get"])),
            ("put", params(&item["put"])),
            ("patch", params(&item["patch"])),
            ("delete", params(&item["delete"])),
            ("list", params(&collection["get"])),
            ("post", params(&collection["post"])),
        ]),
    }
});

/// One served document: its JSON and the hash kubectl addresses it by (SHA-512, upper-case
/// hex, as kube-openapi's `handler3` computes it).
#[derive(Debug)]
pub(crate) struct Document {
    pub body: Bytes,
    pub hash: String,
}

impl Document {
    fn new(doc: &Value) -> Self {
        let body = Bytes::from(serde_json::to_vec(doc).expect("a Value serialises"));
        let digest = ring::digest::digest(&ring::digest::SHA512, &body);
        let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Self { body, hash }
    }
}

/// Every document at one state of the served resources.
#[derive(Debug)]
pub(crate) struct Published {
    /// `/openapi/v3`.
    pub index: Document,
    /// By path below `/openapi/v3/`: `api/v1`, `apis/{group}/{version}`.
    pub documents: BTreeMap<String, Document>,
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Builds every document for the resources `registry` serves.
pub(crate) fn publish(registry: &Registry) -> Published {
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".into())];
    for (g, vs) in registry.groups() {
        gvs.extend(vs.into_iter().map(|v| (g.clone(), v)));
    }
    let mut documents = BTreeMap::new();
    for (group, version) in gvs {
        let doc = if registry
            .resources_in(&group, &version)
            .iter()
            .any(|r| r.custom)
        {
            custom_document(registry, &group, &version)
        } else {
            builtin_document(registry, &group, &version)
        };
        documents.insert(gv_path(&group, &version), Document::new(&doc));
    }
    let paths: Map<String, Value> = documents
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({"serverRelativeURL": url}))
        })
        .collect();
    Published {
        index: Document::new(&json!({"paths": paths})),
        documents,
    }
}

/// The document of a group-version of custom resources, as the real server merges the ones of
/// its CRDs.
fn custom_document(registry: &Registry, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = REFERENCE.meta_schemas.clone();
    for r in registry.resources_in(group, version) {
        let Some(published) = r.openapi.get(version) else {
            continue;
        };
        paths::CrdVersion {
            group,
            version,
            kind: &r.kind,
            list_kind: &r.list_kind,
            plural: &r.plural,
            namespaced: r.namespaced,
            published,
        }
        .add_to(&mut paths, &mut schemas);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The document of a built-in group-version: per kind, only a PATCH operation tagged with its
/// group-version-kind that accepts `fieldValidation`, from which kubectl learns that the server
/// validates fields itself. No schemas.
fn builtin_document(registry: &Registry, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .into_iter()
        .filter_map(|name| {
            REFERENCE.options["patch"]
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
        })
        .collect();
    for r in registry
        .resources_in(group, version)
        .iter()
        .filter(|r| r.special == Special::None)
    {
        let gv = gv_path(group, version);
        let path = if r.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{gv}/{}/{{name}}", r.plural)
        };
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                    "parameters": params,
                    "responses": {"200": {"description": "OK"}}
                }
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-devcluster"},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRDs of `reference-crds.yaml`, served by a registry as devcluster serves them.
    fn reference_registry() -> Registry {
        let mut registry = Registry::with_builtins();
        let yaml = include_str!("reference-crds.yaml");
        for doc in yaml.split("\n---\n") {
            let crd: Value = serde_saphyr::from_str(doc).expect("reference CRD is YAML");
            let info = crate::registry::from_crd(&crd).expect("reference CRD is valid");
            registry.set_custom(
                crd["metadata"]["name"].as_str().unwrap(),
                std::sync::Arc::new(info),
            );
        }
        registry
    }

    fn served(published: &Published, path: &str) -> Value {
        serde_json::from_slice(&published.documents[path].body).unwrap()
    }

    #[test]
    fn a_custom_resource_document_is_what_kube_apiserver_serves() {
        let published = publish(&reference_registry());
        let ours = served(&published, "apis/reference.example.com/v1");
        let real: Value = serde_json::from_str(RECORDED).unwrap();
        for (path, item) in real["paths"].as_object().unwrap() {
            assert_eq!(ours["paths"][path], *item, "path {path}");
        }
        for (name, schema) in real["components"]["schemas"].as_object().unwrap() {
            assert_eq!(
                ours["components"]["schemas"][name], *schema,
                "schema {name}"
            );
        }
        assert_eq!(ours, real);
    }

    #[test]
    fn the_index_addresses_each_document_by_its_hash() {
        let published = publish(&reference_registry());
        let index: Value = serde_json::from_slice(&published.index.body).unwrap();
        let doc = &published.documents["apis/reference.example.com/v1"];
        assert_eq!(doc.hash.len(), 128);
        assert_eq!(
            index["paths"]["apis/reference.example.com/v1"]["serverRelativeURL"],
            format!(
                "/openapi/v3/apis/reference.example.com/v1?hash={}",
                doc.hash
            )
        );
        assert!(index["paths"]["api/v1"].is_object());
        assert!(index["paths"]["apis/apps/v1"].is_object());
    }

    #[test]
    fn a_version_that_is_not_served_is_not_published() {
        let published = publish(&reference_registry());
        assert!(
            !published
                .documents
                .contains_key("apis/reference.example.com/v1beta1")
        );
    }
}
