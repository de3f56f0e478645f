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
            for p in params {
                match p.split_once('=') {
                    Some(("as", v)) => as_ = Some(v),
                    Some(("g", v)) => group = Some(v),
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

/// Evaluates the simple JSONPath subset used by printer columns (`.spec.a.b`, `.status.x[0]`).
fn json_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut cur = obj;
    for seg in path.trim_start_matches('.').split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = &cur[name];
        }
        if let Some(i) = index {
            cur = &cur[i];
        }
    }
    cur
}

fn table(info: &ResourceInfo, version: &str, objects: &[Value], list_meta: Option<Value>) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let custom = info
        .printer_columns
        .get(version)
        .cloned()
        .unwrap_or_default();
    for c in &custom {
        columns.push(json!({"name": c["name"], "type": c["type"].as_str().unwrap_or("string"), "format": c["format"].as_str().unwrap_or(""), "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0)}));
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
                cells.push(if path == ".metadata.creationTimestamp" {
                    json!(age(v.as_str().unwrap_or("")))
                } else if v.is_null() {
                    json!("<none>")
                } else {
                    v.clone()
                });
            }
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
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            Err(()),
            "aggregated discovery alone is not served (406)"
        );
        assert_eq!(
            Format::from_accept(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Ok(Format::Full)
        );
    }
}
