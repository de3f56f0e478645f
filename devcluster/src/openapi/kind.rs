//! The schemas kube-apiserver publishes for one version of a custom resource
//! (apiextensions-apiserver's `controller/openapi/builder`): the kind's schema as the CRD
//! declares it, keeping the keywords of a structural schema, with int-or-string fields unfolded,
//! `apiVersion`/`kind`/`metadata` added at the root and in embedded resources, and tagged with
//! its group-version-kind; and the List kind's schema.

use serde_json::{Map, Value, json};

use super::SCHEMAS;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const CONVENTIONS: &str =
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md";

/// What `/openapi/v3` publishes of one served version of a CRD, read when the CRD is written.
#[derive(Debug, Clone)]
pub(crate) struct PublishedVersion {
    /// The kind's schema.
    pub schema: Value,
    /// The version's `selectableFields` JSON paths.
    pub selectable_fields: Vec<String>,
    /// Whether the version has the status subresource (the real server publishes its paths
    /// per version).
    pub status: bool,
}

impl PublishedVersion {
    /// Reads one of the `spec.versions` of a CRD of `group` and `kind`.
    pub(crate) fn read(group: &str, kind: &str, version: &Value) -> Self {
        let selectable_fields: Vec<String> = version["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["jsonPath"].as_str().map(str::to_string))
            .collect();
        Self {
            schema: kind_schema(
                group,
                version["name"].as_str().unwrap_or_default(),
                kind,
                version["schema"].get("openAPIV3Schema"),
                &selectable_fields,
            ),
            selectable_fields,
            status: version["subresources"]["status"].is_object(),
        }
    }
}

/// The name under which the real server publishes a kind's schema: the group's labels
/// reversed, then version and kind (`kuvert.io`, `v1alpha1`, `ExternalSecret` →
/// `io.kuvert.v1alpha1.ExternalSecret`).
pub(crate) fn model_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

pub(super) fn reference(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMAS}{name}")})
}

/// A property that refers to another schema; OpenAPI v3 allows no siblings next to `$ref`, so
/// the description goes next to an `allOf` holding it, as in the real documents.
fn described_ref(description: &str, name: &str) -> Value {
    json!({"description": description, "allOf": [reference(name)]})
}

fn string_property(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

/// `apiVersion` and `kind` of a top-level object (the descriptions of meta/v1 `TypeMeta`).
fn type_meta(properties: &mut Map<String, Value>) {
    properties.insert("apiVersion".into(), string_property(&format!(
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: {CONVENTIONS}#resources"
    )));
    properties.insert("kind".into(), string_property(&format!(
        "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: {CONVENTIONS}#types-kinds"
    )));
}

fn object_meta() -> Value {
    described_ref(
        &format!("Standard object's metadata. More info: {CONVENTIONS}#metadata"),
        OBJECT_META,
    )
}

/// The schema of `kind` in `group/version` as published: `schema` is the version's
/// `openAPIV3Schema` (a version without one is published as a bare object, as upstream).
fn kind_schema(
    group: &str,
    version: &str,
    kind: &str,
    schema: Option<&Value>,
    selectable_fields: &[String],
) -> Value {
    let mut out = match schema {
        None => json!({"type": "object"}),
        Some(schema) => {
            let mut out = structural(schema);
            let properties = out
                .as_object_mut()
                .expect("structural() returns an object")
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("properties is an object");
            properties.insert("metadata".into(), object_meta());
            type_meta(properties);
            embed_resources(&mut out);
            out
        }
    };
    out["x-kubernetes-group-version-kind"] =
        json!([{"group": group, "version": version, "kind": kind}]);
    if !selectable_fields.is_empty() {
        out["x-kubernetes-selectable-fields"] = selectable(selectable_fields);
    }
    out
}

fn selectable(fields: &[String]) -> Value {
    fields
        .iter()
        .map(|f| json!({"fieldPath": f.trim_start_matches('.')}))
        .collect()
}

/// The List kind's schema.
pub(super) fn list_schema(
    group: &str,
    version: &str,
    kind: &str,
    list_kind: &str,
    plural: &str,
    selectable_fields: &[String],
) -> Value {
    let mut properties = Map::new();
    type_meta(&mut properties);
    properties.insert(
        "items".into(),
        json!({
            "description": format!("List of {}. More info: {CONVENTIONS}", plural),
            "type": "array",
            "items": reference(&model_name(group, version, kind)),
        }),
    );
    properties.insert(
        "metadata".into(),
        described_ref(
            &format!("Standard list metadata. More info: {CONVENTIONS}#types-kinds"),
            LIST_META,
        ),
    );
    let mut out = json!({
        "description": format!("{} is a list of {}", list_kind, kind),
        "type": "object",
        "required": ["items"],
        "properties": properties,
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": list_kind}],
    });
    if !selectable_fields.is_empty() {
        out["x-kubernetes-selectable-fields"] = selectable(selectable_fields);
    }
    out
}

/// Whether a keyword's value is published: `false` flags, empty strings and empty lists are
/// left out, as Go's `omitempty` does.
type Keep = fn(&Value) -> bool;

fn text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

fn list(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// The plain keywords of a published schema and when each is published.
const KEYWORDS: [(&[&str], Keep); 6] = [
    (&["type", "description", "title", "format", "pattern"], text),
    (&["default", "example"], |v| !v.is_null()),
    (
        &[
            "nullable",
            "exclusiveMaximum",
            "exclusiveMinimum",
            "uniqueItems",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
        ],
        |v| v == &Value::Bool(true),
    ),
    (
        &[
            "maximum",
            "minimum",
            "multipleOf",
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "maxProperties",
            "minProperties",
        ],
        Value::is_number,
    ),
    (&["enum", "required", "x-kubernetes-list-map-keys"], list),
    (
        &["x-kubernetes-list-type", "x-kubernetes-map-type"],
        Value::is_string,
    ),
];

/// The keywords a structural schema keeps when published (`Structural.ToKubeOpenAPI`); anything
/// else a CRD may carry is dropped.
fn structural(schema: &Value) -> Value {
    convert(schema, false)
}

/// `nested` is for the schemas under `allOf`/`anyOf`/`oneOf`/`not`, which publish no
/// `additionalProperties` and are never unfolded.
fn convert(schema: &Value, nested: bool) -> Value {
    let Some(s) = schema.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (keys, wanted) in KEYWORDS {
        for key in keys {
            if let Some(v) = s.get(*key).filter(|v| wanted(v)) {
                out.insert(key.to_string(), v.clone());
            }
        }
    }
    if let Some(Value::Object(docs)) = s.get("externalDocs") {
        let docs: Map<String, Value> = ["description", "url"]
            .into_iter()
            .filter_map(|k| {
                docs.get(k)
                    .filter(|v| text(v))
                    .map(|v| (k.into(), v.clone()))
            })
            .collect();
        out.insert("externalDocs".into(), Value::Object(docs));
    }
    if let Some(Value::Array(rules)) = s.get("x-kubernetes-validations").filter(|v| list(v)) {
        out.insert(
            "x-kubernetes-validations".into(),
            rules.iter().map(validation_rule).collect(),
        );
    }
    if let Some(items) = s.get("items").filter(|v| v.is_object()) {
        out.insert("items".into(), convert(items, nested));
    }
    if let Some(Value::Object(props)) = s.get("properties")
        && !props.is_empty()
    {
        let props = props.iter().map(|(k, v)| (k.clone(), convert(v, nested)));
        out.insert("properties".into(), Value::Object(props.collect()));
    }
    if !nested {
        match s.get("additionalProperties") {
            Some(Value::Bool(b)) => {
                out.insert("additionalProperties".into(), Value::Bool(*b));
            }
            Some(v @ Value::Object(_)) => {
                out.insert("additionalProperties".into(), convert(v, false));
            }
            _ => {}
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(all)) = s.get(key).filter(|v| list(v)) {
            out.insert(key.into(), all.iter().map(|v| convert(v, true)).collect());
        }
    }
    if let Some(not) = s.get("not").filter(|v| v.is_object()) {
        out.insert("not".into(), convert(not, true));
    }
    if !nested && out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        unfold_int_or_string(&mut out);
    }
    Value::Object(out)
}

fn validation_rule(rule: &Value) -> Value {
    let Some(rule) = rule.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for key in [
        "rule",
        "message",
        "messageExpression",
        "reason",
        "fieldPath",
    ] {
        if let Some(v) = rule
            .get(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = rule.get("optionalOldSelf").filter(|v| v.is_boolean()) {
        out.insert("optionalOldSelf".into(), v.clone());
    }
    Value::Object(out)
}

/// `Structural.Unfold`: an int-or-string field states its two types in an `anyOf` (in front of
/// its `allOf` when it has an `anyOf` of its own), which is what `kubectl explain` and client
/// validation read.
fn unfold_int_or_string(s: &mut Map<String, Value>) {
    let int_or_string = json!([{"type": "integer"}, {"type": "string"}]);
    let any_of = s.get("anyOf");
    if any_of == Some(&int_or_string)
        || s.get("allOf")
            .and_then(|a| a.get(0))
            .and_then(|a| a.get("anyOf"))
            == Some(&int_or_string)
    {
        return;
    }
    if any_of.is_none() {
        s.insert("anyOf".into(), int_or_string);
    } else {
        let mut all_of = vec![json!({"anyOf": int_or_string})];
        if let Some(Value::Array(rest)) = s.remove("allOf") {
            all_of.extend(rest);
        }
        s.insert("allOf".into(), Value::Array(all_of));
    }
}

/// `x-kubernetes-embedded-resource` objects get `apiVersion`, `kind` (both required) and
/// `metadata`, like a top-level object.
fn embed_resources(s: &mut Value) {
    let Some(obj) = s.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(embed_resources);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = obj.get_mut(key) {
            embed_resources(v);
        }
    }
    if obj.get("x-kubernetes-embedded-resource") != Some(&Value::Bool(true)) {
        return;
    }
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties is an object");
    props.insert("apiVersion".into(), string_property(&format!(
        "apiVersion defines the versioned schema of this representation of an object. More info: {CONVENTIONS}#resources"
    )));
    props.insert("kind".into(), string_property(&format!(
        "kind is a string value representing the type of this object. In CamelCase. More info: {CONVENTIONS}#types-kinds"
    )));
    props.insert("metadata".into(), object_meta());
    let required = obj
        .entry("required")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("required is a list");
    for name in ["kind", "apiVersion"] {
        if !required.iter().any(|r| r == name) {
            required.push(name.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_reverse_the_group() {
        assert_eq!(
            model_name("kuvert.io", "v1alpha1", "ExternalSecret"),
            "io.kuvert.v1alpha1.ExternalSecret"
        );
        assert_eq!(
            model_name("generators.kuvert.io", "v1alpha1", "Password"),
            "io.kuvert.generators.v1alpha1.Password"
        );
    }
}
