//! Patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (simplified: lists merge by the Kubernetes merge keys of the built-in kinds, `$patch`
//! directives honoured), and server-side apply (merge semantics).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch flavours, from the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Merge keys of the lists that strategic merge patch merges element-wise in the built-in kinds.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates"
        | "resourceClaims" => match field {
            "hostAliases" => "ip",
            "readinessGates" => "conditionType",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars that strategic merge treats as sets (merged, not replaced).
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a JSON merge patch.
pub(crate) fn merge(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// Applies an RFC 6902 JSON patch. As on the real server, a `test` for `null` passes when the
/// path is missing (kube-runtime's finalizer helper relies on it when adding the first finalizer).
pub(crate) fn json(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("the json patch is malformed: {e}")))?;
    let mut work = doc.clone();
    for op in &ops.0 {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
            && work.pointer(t.path.as_str()).is_none_or(Value::is_null)
        {
            continue;
        }
        json_patch::patch(&mut work, std::slice::from_ref(op)).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?;
    }
    *doc = work;
    Ok(())
}

/// Applies a strategic merge patch.
pub(crate) fn strategic(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Value::Object(p) = patch else {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    strategic_object(doc.as_object_mut().expect("object"), p);
    Ok(())
}

fn strategic_object(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *doc = patch.clone();
        doc.remove("$patch");
        return;
    }
    let retain: Option<Vec<String>> = patch.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    for (k, pv) in patch {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (doc.get_mut(field), pv) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match pv {
            Value::Null => {
                doc.remove(k);
            }
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    doc.remove(k);
                    continue;
                }
                let entry = doc
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                strategic_object(entry.as_object_mut().expect("object"), po);
            }
            Value::Array(pa) => {
                let merged = match (merge_key(k), doc.get(k)) {
                    (Some(key), Some(Value::Array(da))) => merge_list_by_key(da, pa, key),
                    (None, Some(Value::Array(da))) if is_set_list(k) => {
                        let mut out = da.clone();
                        out.extend(pa.iter().filter(|v| !da.contains(v)).cloned());
                        out
                    }
                    _ => pa
                        .iter()
                        .filter(|v| v.get("$patch").is_none())
                        .cloned()
                        .collect(),
                };
                doc.insert(k.clone(), Value::Array(merged));
            }
            other => {
                doc.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(keep) = retain {
        doc.retain(|k, _| keep.contains(k));
    }
}

fn merge_list_by_key(doc: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = doc.to_vec();
    for item in patch {
        let Some(obj) = item.as_object() else {
            out.push(item.clone());
            continue;
        };
        let directive = obj.get("$patch").and_then(Value::as_str);
        if directive == Some("replace") {
            return patch
                .iter()
                .filter(|v| v.get("$patch").is_none())
                .cloned()
                .collect();
        }
        let id = obj.get(key);
        let pos = out.iter().position(|d| id.is_some() && d.get(key) == id);
        match (directive, pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                if let Some(target) = out[i].as_object_mut() {
                    strategic_object(target, obj);
                }
            }
            (_, None) => out.push(item.clone()),
        }
    }
    out
}

/// Server-side apply with merge semantics: maps merge recursively, keyed lists merge by key,
/// other lists are replaced. Fields the manager stopped applying are not removed.
pub(crate) fn apply(doc: &mut Value, applied: &Value) -> Result<(), ApiError> {
    let mut cleaned = applied.clone();
    strip_nulls(&mut cleaned);
    strategic(doc, &cleaned)
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The `fieldsV1` set describing which fields an applied configuration names.
pub(crate) fn fields_v1(v: &Value) -> Value {
    fn walk(v: &Value, parent: Option<&str>) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, child) in m {
                    if matches!(k.as_str(), "apiVersion" | "kind") && parent.is_none() {
                        continue;
                    }
                    if parent.is_none() && k == "metadata" {
                        let mut meta = Map::new();
                        for sub in ["labels", "annotations"] {
                            if let Some(Value::Object(items)) = child.get(sub) {
                                let inner: Map<String, Value> = items
                                    .keys()
                                    .map(|key| (format!("f:{key}"), Value::Object(Map::new())))
                                    .collect();
                                meta.insert(format!("f:{sub}"), Value::Object(inner));
                            }
                        }
                        if !meta.is_empty() {
                            out.insert("f:metadata".into(), Value::Object(meta));
                        }
                        continue;
                    }
                    out.insert(format!("f:{k}"), walk(child, Some(k)));
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Map::new();
                if let Some(key) = parent.and_then(merge_key) {
                    for item in items {
                        if let Some(id) = item.get(key) {
                            let mut sel = Map::new();
                            sel.insert(key.to_string(), id.clone());
                            out.insert(
                                format!("k:{}", Value::Object(sel)),
                                walk(item, None)
                                    .as_object()
                                    .map(|m| {
                                        let mut m = m.clone();
                                        m.insert(".".into(), Value::Object(Map::new()));
                                        Value::Object(m)
                                    })
                                    .unwrap_or_default(),
                            );
                        }
                    }
                }
                Value::Object(out)
            }
            _ => Value::Object(Map::new()),
        }
    }
    walk(v, None)
}

/// Fields of `applied` that one of the `others` (managedFields entries of other appliers) owns
/// and that `applied` would change: (manager, `.dotted.path`). Keyed-list items are not compared.
pub(crate) fn apply_conflicts(
    doc: &Value,
    applied: &Value,
    others: &[&Value],
) -> Vec<(String, String)> {
    fn walk(
        set: &Value,
        doc: &Value,
        applied: &Value,
        path: &str,
        owner: &str,
        out: &mut Vec<(String, String)>,
    ) {
        let Some(m) = set.as_object() else { return };
        for (k, sub) in m {
            let Some(field) = k.strip_prefix("f:") else {
                continue;
            };
            let (Some(new), cur) = (applied.get(field), doc.get(field)) else {
                continue;
            };
            let p = format!("{path}.{field}");
            if sub.as_object().is_some_and(|s| !s.is_empty()) {
                walk(sub, cur.unwrap_or(&Value::Null), new, &p, owner, out);
            } else if cur != Some(new) {
                out.push((owner.to_string(), p));
            }
        }
    }
    let mut out = Vec::new();
    for f in others {
        walk(
            &f["fieldsV1"],
            doc,
            applied,
            "",
            f["manager"].as_str().unwrap_or(""),
            &mut out,
        );
    }
    out
}

/// Removes from `doc` the fields present in the `previous` field set and absent from `current`
/// (both `fieldsV1`), skipping fields that one of `others` also names.
pub(crate) fn remove_unapplied(
    doc: &mut Value,
    previous: &Value,
    current: &Value,
    others: &[&Value],
) {
    let (Some(prev), Some(doc_map)) = (previous.as_object(), doc.as_object_mut()) else {
        return;
    };
    for (key, prev_sub) in prev {
        if key == "." {
            continue;
        }
        let cur_sub = current.get(key);
        let other_subs: Vec<&Value> = others.iter().filter_map(|o| o.get(key)).collect();
        if let Some(field) = key.strip_prefix("f:") {
            match cur_sub {
                None if other_subs.is_empty() => {
                    doc_map.remove(field);
                }
                Some(cur) if prev_sub.as_object().is_some_and(|m| !m.is_empty()) => {
                    if let Some(child) = doc_map.get_mut(field) {
                        remove_unapplied(child, prev_sub, cur, &other_subs);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let mut doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "containers": [{"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}]}]
        }}}});
        strategic(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "side", "image": "s:1"}
            ]}}}})
        );
    }

    #[test]
    fn strategic_merge_honours_delete_directives_and_nulls() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "app"}, {"name": "gone"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}, "$deleteFromPrimitiveList/finalizers": ["x"]},
            "spec": {"containers": [{"name": "gone", "$patch": "delete"}]}});
        strategic(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["y"]}, "spec": {"containers": [{"name": "app"}]}})
        );
    }

    #[test]
    fn json_patch_errors_are_reported() {
        let mut doc = json!({"a": 1});
        json(
            &mut doc,
            &json!([{"op": "replace", "path": "/a", "value": 2}]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": 2}));
        assert_eq!(
            json(&mut doc, &json!([{"op": "remove", "path": "/missing"}]))
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            json(&mut doc, &json!({"op": "nonsense"})).unwrap_err().code,
            400
        );
    }

    #[test]
    fn apply_merges_maps_and_keeps_fields_it_does_not_name() {
        let mut doc = json!({"metadata": {"labels": {"keep": "1"}}, "data": {"a": "1"}});
        apply(
            &mut doc,
            &json!({"metadata": {"labels": {"new": "2"}}, "data": {"b": "2"}}),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"keep": "1", "new": "2"}}, "data": {"a": "1", "b": "2"}})
        );
        let f = fields_v1(
            &json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}}),
        );
        assert_eq!(
            f,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k": {}}})
        );
    }

    #[test]
    fn reapplying_without_a_field_removes_it_unless_another_manager_applies_it() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}, "data": {"x": "1", "y": "2"}});
        let previous = fields_v1(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}}),
        );
        let current = fields_v1(&json!({"metadata": {"labels": {"a": "1"}}, "data": {"x": "1"}}));
        let other = fields_v1(&json!({"data": {"y": "2"}}));
        remove_unapplied(&mut doc, &previous, &current, &[&other]);
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "data": {"x": "1", "y": "2"}})
        );
    }
}
