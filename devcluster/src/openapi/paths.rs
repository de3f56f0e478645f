//! The operations kube-apiserver publishes on the paths of one version of a custom resource
//! (apiextensions-apiserver's `controller/openapi/builder`, laid out by kube-openapi's
//! `builder3`): list, create, deletecollection, read, replace, delete, patch, and the status
//! subresource's read, replace and patch, with the real operation ids, descriptions, parameters
//! and responses. kubectl reads the PATCH operation's `fieldValidation` parameter to leave
//! field validation to the server, and the `x-kubernetes-group-version-kind` of the operations
//! to find a resource's schema for `kubectl explain`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::REFERENCE;
use super::kind::{PublishedVersion, list_schema, model_name, reference};

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// One served version of a custom resource, as the document builder needs it.
pub(super) struct CrdVersion<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub list_kind: &'a str,
    pub plural: &'a str,
    pub namespaced: bool,
    pub published: &'a PublishedVersion,
}

/// What an operation returns (or reads).
#[derive(Clone, Copy)]
enum Sample {
    Kind,
    List,
    Status,
    DeleteOptions,
    Patch,
}

/// One route of the builder's web service: method, action (`x-kubernetes-action`), the
/// operation verb its id and description start with, and what it reads and returns.
struct Route {
    path: String,
    method: &'static str,
    action: &'static str,
    verb: &'static str,
    operation: String,
    returns: Sample,
    reads: Option<Sample>,
    subresource: &'static str,
}

impl CrdVersion<'_> {
    /// Adds this version's paths and its kind and List schemas to a document.
    pub(super) fn add_to(&self, paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
        schemas.insert(
            model_name(self.group, self.version, self.kind),
            self.published.schema.clone(),
        );
        schemas.insert(
            model_name(self.group, self.version, self.list_kind),
            list_schema(
                self.group,
                self.version,
                self.kind,
                self.list_kind,
                self.plural,
                &self.published.selectable_fields,
            ),
        );
        let mut by_path: BTreeMap<String, Vec<Route>> = BTreeMap::new();
        for route in self.routes() {
            by_path.entry(route.path.clone()).or_default().push(route);
        }
        for (path, routes) in by_path {
            paths.insert(path, self.path_item(&routes));
        }
    }

    fn routes(&self) -> Vec<Route> {
        let namespaced = if self.namespaced { "Namespaced" } else { "" };
        let kind = self.kind;
        let route = |root: &str,
                     sub: &'static str,
                     method: &'static str,
                     action: &'static str,
                     verb: &'static str,
                     returns: Sample,
                     reads: Option<Sample>| {
            let path = match sub {
                "" => root.to_string(),
                "{name}" => format!("{root}/{{name}}"),
                sub => format!("{root}/{{name}}/{sub}"),
            };
            let subresource = if sub == "{name}" { "" } else { sub };
            Route {
                path,
                method,
                action,
                verb,
                operation: format!("{verb}{namespaced}{kind}{}", title(subresource)),
                returns,
                reads,
                subresource,
            }
        };
        let gv = format!("/apis/{}/{}", self.group, self.version);
        let mut root = format!("{gv}/{}", self.plural);
        let mut routes = Vec::new();
        if self.namespaced {
            let mut all = route(&root, "", "GET", "list", "list", Sample::List, None);
            all.operation = format!("list{kind}ForAllNamespaces");
            routes.push(all);
            root = format!("{gv}/namespaces/{{namespace}}/{}", self.plural);
        }
        use Sample::*;
        routes.extend([
            route(&root, "", "GET", "list", "list", List, None),
            route(&root, "", "POST", "post", "create", Kind, Some(Kind)),
            route(
                &root,
                "",
                "DELETE",
                "deletecollection",
                "deletecollection",
                Status,
                None,
            ),
            route(&root, "{name}", "GET", "get", "read", Kind, None),
            route(&root, "{name}", "PUT", "put", "replace", Kind, Some(Kind)),
            route(
                &root,
                "{name}",
                "DELETE",
                "delete",
                "delete",
                Status,
                Some(DeleteOptions),
            ),
            route(
                &root,
                "{name}",
                "PATCH",
                "patch",
                "patch",
                Kind,
                Some(Patch),
            ),
        ]);
        if self.published.status {
            routes.extend([
                route(&root, "status", "GET", "get", "read", Kind, None),
                route(&root, "status", "PUT", "put", "replace", Kind, Some(Kind)),
                route(
                    &root,
                    "status",
                    "PATCH",
                    "patch",
                    "patch",
                    Kind,
                    Some(Patch),
                ),
            ]);
        }
        routes
    }

    fn schema_ref(&self, sample: Sample) -> Value {
        match sample {
            Sample::Kind => reference(&model_name(self.group, self.version, self.kind)),
            Sample::List => reference(&model_name(self.group, self.version, self.list_kind)),
            Sample::Status => reference(STATUS),
            Sample::DeleteOptions => reference(DELETE_OPTIONS),
            Sample::Patch => reference(PATCH),
        }
    }

    /// A path's operations; parameters every operation takes are stated once for the path
    /// (kube-openapi's `builder3`), both lists sorted by name.
    fn path_item(&self, routes: &[Route]) -> Value {
        let params: Vec<Vec<Value>> = routes.iter().map(|r| self.parameters(r)).collect();
        let key = |p: &Value| (p["name"].to_string(), p["in"].to_string());
        let common: Vec<Value> = params[0]
            .iter()
            .filter(|p| params.iter().all(|ps| ps.iter().any(|q| key(q) == key(p))))
            .cloned()
            .collect();
        let mut item = Map::new();
        for (route, params) in routes.iter().zip(params) {
            let own: Vec<Value> = params
                .into_iter()
                .filter(|p| !common.iter().any(|c| key(c) == key(p)))
                .collect();
            item.insert(
                route.method.to_lowercase(),
                self.operation(route, sorted(own)),
            );
        }
        item.insert("parameters".into(), Value::Array(sorted(common)));
        Value::Object(item)
    }

    fn parameters(&self, route: &Route) -> Vec<Value> {
        let mut params = vec![REFERENCE.pretty.clone()];
        if route.path.contains("{namespace}") {
            params.push(REFERENCE.namespace.clone());
        }
        if route.path.contains("{name}") {
            params.push(json!({
                "name": "name",
                "in": "path",
                "description": format!("name of the {}", self.kind),
                "required": true,
                "schema": {"type": "string", "uniqueItems": true},
            }));
        }
        let options = match route.action {
            "deletecollection" => "list",
            action => action,
        };
        params.extend(REFERENCE.options[options].iter().cloned());
        params
    }

    fn operation(&self, route: &Route, parameters: Vec<Value>) -> Value {
        let content = |sample: Sample, types: &[&str]| -> Value {
            types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": self.schema_ref(sample)})))
                .collect::<Map<_, _>>()
                .into()
        };
        let produces = ["application/json", "application/yaml"];
        let response = |description: &str| json!({"description": description, "content": content(route.returns, &produces)});
        let mut responses = json!({"200": response("OK"), "401": {"description": "Unauthorized"}});
        match route.action {
            "post" => {
                responses["201"] = response("Created");
                responses["202"] = response("Accepted");
            }
            "put" => responses["201"] = response("Created"),
            "delete" => responses["202"] = response("Accepted"),
            _ => {}
        }
        let mut op = json!({
            "tags": [tag(self.group, self.version)],
            "description": self.description(route),
            "operationId": operation_id(&route.operation, self.group, self.version),
            "responses": responses,
            "x-kubernetes-action": route.action,
            "x-kubernetes-group-version-kind": {"group": self.group, "version": self.version, "kind": self.kind},
        });
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(reads) = route.reads {
            let consumes: &[&str] = if route.method == "PATCH" {
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]
            } else {
                &produces
            };
            op["requestBody"] = json!({"content": content(reads, consumes)});
            // The DeleteOptions body of a delete is optional.
            if route.action != "delete" {
                op["requestBody"]["required"] = json!(true);
            }
        }
        op
    }

    /// `builder.descriptionFor`.
    fn description(&self, route: &Route) -> String {
        let kind = self.kind;
        let sub = match route.subresource {
            "" => String::new(),
            sub => format!(" {sub} of"),
        };
        match route.verb {
            "list" => format!("list{sub} objects of kind {kind}"),
            "read" | "replace" => format!("{}{sub} the specified {kind}", route.verb),
            "patch" => format!("partially update{sub} the specified {kind}"),
            "create" | "delete" => format!("{}{sub}{}{kind}", route.verb, article(kind)),
            "deletecollection" if !sub.is_empty() => format!("delete collection of{sub} a {kind}"),
            "deletecollection" => format!("delete collection of {kind}"),
            verb => format!("{verb}{sub}{kind}"),
        }
    }
}

fn sorted(mut params: Vec<Value>) -> Vec<Value> {
    params.sort_by(|a, b| {
        let key = |p: &Value| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["in"].as_str().unwrap_or("").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    params
}

/// `cases.Title` of a subresource name (`status` → `Status`).
fn title(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `endpoints.GetArticleForNoun(kind, " ")`: plurals take none.
fn article(noun: &str) -> &'static str {
    if noun.ends_with('s') && !noun.ends_with("ss") {
        " "
    } else if noun
        .chars()
        .next()
        .is_some_and(|c| "aeiou".contains(c.to_ascii_lowercase()))
    {
        " an "
    } else {
        " a "
    }
}

/// `openapi.ToValidOperationID`: letters, `_` and (not first) digits kept, every other
/// character dropped and the letter after it capitalised.
fn valid_operation_id(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_numeric()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

fn tag(group: &str, version: &str) -> String {
    let group = group.strip_suffix(".k8s.io").unwrap_or(group);
    format!(
        "{}_{}",
        valid_operation_id(group, false),
        valid_operation_id(version, false)
    )
}

/// `openapi.GetOperationIDAndTags`: the operation's verb (the shortest that prefixes it, so
/// `deletecollection…` becomes `delete…Collection…`), then group, version and the rest.
fn operation_id(operation: &str, group: &str, version: &str) -> String {
    const VERBS: [&str; 12] = [
        "get",
        "log",
        "read",
        "replace",
        "patch",
        "delete",
        "deletecollection",
        "watch",
        "connect",
        "proxy",
        "list",
        "create",
    ];
    let verb = VERBS
        .iter()
        .filter(|v| operation.starts_with(*v))
        .min_by_key(|v| v.len())
        .copied()
        .unwrap_or("");
    let group = group.strip_suffix(".k8s.io").unwrap_or(group);
    format!(
        "{verb}{}{}{}",
        valid_operation_id(group, true),
        valid_operation_id(version, true),
        valid_operation_id(&operation[verb.len()..], true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_real_server() {
        assert_eq!(
            operation_id("deletecollectionNamespacedWidget", "kuvert.io", "v1alpha1"),
            "deleteKuvertIoV1alpha1CollectionNamespacedWidget"
        );
        assert_eq!(
            operation_id(
                "replaceNamespacedWidgetStatus",
                "my-group.example.com",
                "v2"
            ),
            "replaceMyGroupExampleComV2NamespacedWidgetStatus"
        );
        assert_eq!(
            tag("generators.kuvert.io", "v1alpha1"),
            "generatorsKuvertIo_v1alpha1"
        );
    }

    #[test]
    fn articles_follow_the_real_server() {
        assert_eq!(article("ExternalSecret"), " an ");
        assert_eq!(article("Widget"), " a ");
        assert_eq!(article("Settings"), " ");
        assert_eq!(article("StorageClass"), " a ");
    }
}
