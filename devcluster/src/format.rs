//! Response shapes asked for through `Accept`: plain objects, `PartialObjectMetadata[List]`
//! (metadata-only, as kube-rs `metadata_watcher` asks), and `Table` (as `kubectl get` asks).

use serde_json::{Value, json};

use crate::registry::ResourceInfo;

/// The representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Full,
    Metadata,
    Table,
}

impl Format {
    /// Picks the first representation of the `Accept` header that the server serves.
    pub fn from_accept(accept: &str) -> Result<Self, ()> {
        if accept.trim().is_empty() {
            return Ok(Self::Full);
        }
        for alt in accept.split(',') {
            let mut params = alt.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            let mut as_ = None;
            let mut group = None;
            let mut version = None;
            for p in params {
                match p.split_once('=') {
                    Some(("as", v)) => as_ = Some(v),
                    Some(("g", v)) => group = Some(v),
                    Some(("v", v)) => version = Some(v),
                    _ => {}
                }
            }
            if !matches!(
                media,
                "application/json" | "application/*" | "*/*" | "application/yaml"
            ) {
                continue;
            }
            match (as_, group) {
                (None, _) => return Ok(Self::Full),
                (
                    Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                    Some("meta.k8s.io"),
                ) => return Ok(Self::Metadata),
                (Some("Table"), Some("meta.k8s.io")) => return Ok(Self::Table),
                // Aggregated discovery: only `/api` and `/apis` serve it (see discovery.rs).
                (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"))
                    if version == Some("v2") =>
                {
                    return Ok(Self::Full);
                }
                _ => continue,
            }
        }
        Err(())
    }
}

fn partial(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"].clone()})
}

/// Renders one object in the requested representation.
pub(crate) fn object(info: &ResourceInfo, version: &str, obj: Value, format: Format) -> Value {
    match format {
        Format::Full => obj,
        Format::Metadata => partial(&obj),
        Format::Table => table(info, version, &[obj], None),
    }
}

/// Renders a list object (as built by the store) in the requested representation.
pub(crate) fn list(info: &ResourceInfo, version: &str, list: Value, format: Format) -> Value {
    match format {
        Format::Full => list,
        Format::Metadata => {
            let items: Vec<Value> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(partial)
                .collect();
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": list["metadata"].clone(), "items": items})
        }
        Format::Table => {
            let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
            table(info, version, &items, Some(list["metadata"].clone()))
        }
    }
}

/// Human age as kubectl prints it: `42s`, `5m`, `3h`, `2d`.
fn age(created: &str) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

static NULL: Value = Value::Null;

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[0]`, and filters such as
/// `.status.conditions[?(@.type=="Ready")].status` (first match).
fn json_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut cur = obj;
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let (inner, after) = if r.starts_with("?(") {
                match r.find(")]") {
                    Some(end) => (&r[..end + 1], &r[end + 2..]),
                    None => return &NULL,
                }
            } else {
                match r.find(']') {
                    Some(end) => (&r[..end], &r[end + 1..]),
                    None => return &NULL,
                }
            };
            rest = after;
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, value)) = filter.split_once("==") else {
                    return &NULL;
                };
                let wanted = value.trim().trim_matches(|c| c == '"' || c == '\'');
                let matches = |item: &Value| json_path(item, field.trim()).as_str() == Some(wanted);
                cur = cur
                    .as_array()
                    .and_then(|a| a.iter().find(|i| matches(i)))
                    .unwrap_or(&NULL);
            } else if let Ok(i) = inner.parse::<usize>() {
                cur = &cur[i];
            }
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                cur = &cur[&r[..end]];
            }
            rest = &r[end..];
        }
    }
    cur
}

type Cell = fn(&Value) -> Value;

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

/// The columns `kubectl get` shows for the built-in kinds beyond NAME and AGE.
fn builtin_columns(info: &ResourceInfo) -> Vec<(&'static str, &'static str, Cell)> {
    if info.custom {
        return Vec::new();
    }
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "secrets") => vec![
            ("Type", "string", |o| o["type"].clone()),
            ("Data", "integer", |o| json!(count(&o["data"]))),
        ],
        ("", "configmaps") => vec![("Data", "integer", |o| {
            json!(count(&o["data"]) + count(&o["binaryData"]))
        })],
        ("", "namespaces") => vec![("Status", "string", |o| o["status"]["phase"].clone())],
        ("apps", "deployments" | "statefulsets" | "replicasets") => {
            vec![("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            })]
        }
        ("", "events") => vec![
            ("Type", "string", |o| o["type"].clone()),
            ("Reason", "string", |o| o["reason"].clone()),
            ("Object", "string", |o| {
                let r = &o["involvedObject"];
                json!(format!(
                    "{}/{}",
                    r["kind"].as_str().unwrap_or("").to_lowercase(),
                    r["name"].as_str().unwrap_or("")
                ))
            }),
            ("Message", "string", |o| o["message"].clone()),
        ],
        ("coordination.k8s.io", "leases") => {
            vec![("Holder", "string", |o| o["spec"]["holderIdentity"].clone())]
        }
        _ => Vec::new(),
    }
}

/// The `Name` column's description, as kube-apiserver words it (ObjectMeta's `name`).
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

fn table(info: &ResourceInfo, version: &str, objects: &[Value], list_meta: Option<Value>) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
    ];
    let custom = info
        .printer_columns
        .get(version)
        .cloned()
        .unwrap_or_default();
    for c in &custom {
        // kube-apiserver's default description of a printer column.
        let description = c["description"].as_str().map_or_else(
            || {
                format!(
                    "Custom resource definition column (in JSONPath format): {}",
                    c["jsonPath"].as_str().unwrap_or("")
                )
            },
            str::to_string,
        );
        columns.push(json!({"name": c["name"], "type": c["type"].as_str().unwrap_or("string"), "format": c["format"].as_str().unwrap_or(""), "description": description, "priority": c["priority"].as_i64().unwrap_or(0)}));
    }
    let builtin = builtin_columns(info);
    for (name, ty, _) in &builtin {
        columns.push(
            json!({"name": name, "type": ty, "format": "", "description": "", "priority": 0}),
        );
    }
    let has_age_column = custom
        .iter()
        .any(|c| c["jsonPath"] == ".metadata.creationTimestamp");
    if !has_age_column {
        columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &custom {
                let path = c["jsonPath"].as_str().unwrap_or("");
                let v = json_path(o, path);
                // A path matching nothing is a null cell, which kubectl prints as blank; a
                // `date` column holding a timestamp is shown as its age, as kube-apiserver does.
                cells.push(match v.as_str() {
                    Some(time) if c["type"] == "date" => json!(age(time)),
                    _ => v.clone(),
                });
            }
            cells.extend(builtin.iter().map(|(_, _, cell)| cell(o)));
            if !has_age_column {
                cells.push(json!(age(o["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or(""))));
            }
            json!({"cells": cells, "object": partial(o)})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.unwrap_or_else(|| json!({"resourceVersion": objects.first().map(|o| o["metadata"]["resourceVersion"].clone()).unwrap_or_default()})),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths_support_indexes_and_filters() {
        let obj = serde_json::json!({"spec": {"a": {"b": 1}}, "status": {"conditions": [
            {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True", "reason": "SecretSynced"}
        ], "list": [5, 6]}});
        assert_eq!(json_path(&obj, ".spec.a.b"), &serde_json::json!(1));
        assert_eq!(json_path(&obj, ".status.list[1]"), &serde_json::json!(6));
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].reason"),
            "SecretSynced"
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type=='Synced')].status"),
            "False"
        );
        assert!(json_path(&obj, ".status.conditions[?(@.type==\"Nope\")].status").is_null());
        assert!(json_path(&obj, ".missing.path").is_null());
    }

    #[test]
    fn accept_headers_select_the_representation() {
        assert_eq!(Format::from_accept("application/json"), Ok(Format::Full));
        assert_eq!(Format::from_accept(""), Ok(Format::Full));
        assert_eq!(
            Format::from_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Ok(Format::Metadata)
        );
        assert_eq!(
            Format::from_accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Ok(Format::Table)
        );
        assert_eq!(
            Format::from_accept("application/vnd.kubernetes.protobuf,application/json"),
            Ok(Format::Full)
        );
        assert_eq!(
            Format::from_accept("application/vnd.kubernetes.protobuf"),
            Err(())
        );
        assert_eq!(
            Format::from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Err(()),
            "aggregated discovery v2beta1 alone is not served (406)"
        );
        assert_eq!(
            Format::from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Ok(Format::Full)
        );
    }
}
