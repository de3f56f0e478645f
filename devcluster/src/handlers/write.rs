//! The write verbs that need more than one store call: patch (all flavours, including
//! server-side apply), delete and deletecollection.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Reply, Req, after_write, parse_body};
use crate::error::ApiError;
use crate::format;
use crate::meta::{meta_mut, meta_str, now};
use crate::patch::{self, PatchKind};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{Deleted, FieldValidation, Part, Propagation};

pub(super) fn patch_object(
    shared: &Arc<Shared>,
    info: &Arc<ResourceInfo>,
    version: &str,
    ns: &str,
    name: &str,
    part: Part,
    r: &Req,
) -> Result<Reply, ApiError> {
    let kind = PatchKind::from_content_type(&r.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&r.content_type))?;
    if kind == PatchKind::Strategic && info.custom {
        return Err(ApiError::unsupported_media_type(&r.content_type));
    }
    let patch_body = parse_body(&r.body)?;
    let mut opts = r.write_opts();
    if kind == PatchKind::Apply {
        opts.field_validation = FieldValidation::Apply;
    }
    let mut warnings = Vec::new();
    let mut state = shared.state.lock().expect("state");
    let existing = state.get(info, version, ns, name);
    let obj = if kind == PatchKind::Apply {
        let manager = r
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![crate::error::Cause {
                        field: "fieldManager".into(),
                        reason: "FieldValueRequired",
                        message: "Required value: is required for apply patch".into(),
                    }],
                )
            })?;
        if !patch_body.is_object() {
            return Err(ApiError::bad_request("an apply patch must be an object"));
        }
        let mut entry = json!({
            "manager": manager,
            "operation": "Apply",
            "apiVersion": info.api_version(version),
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": patch::fields_v1(&patch_body),
        });
        if part == Part::Status {
            entry["subresource"] = json!("status");
        }
        match existing {
            Err(e) if e.code == 404 && part == Part::Main => {
                let mut created = patch_body.clone();
                strip_nulls_top(&mut created);
                meta_mut(&mut created).insert("name".into(), json!(name));
                meta_mut(&mut created).insert("managedFields".into(), json!([entry]));
                let obj = state.create(info, version, ns, created, &opts, &mut warnings)?;
                drop(state);
                after_write(shared, &obj);
                return Ok(Reply {
                    code: 201,
                    body: format::object(info, version, obj, r.format),
                    warnings,
                });
            }
            Err(e) => return Err(e),
            Ok(mut doc) => {
                let mut fields: Vec<Value> = doc["metadata"]["managedFields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                // A manager's applies to the object and to its status are separate entries.
                let is_mine = |f: &Value| {
                    f["manager"] == json!(manager)
                        && f["operation"] == "Apply"
                        && f["subresource"] == entry["subresource"]
                };
                let other_appliers: Vec<&Value> = fields
                    .iter()
                    .filter(|f| !is_mine(f) && f["operation"] == "Apply")
                    .collect();
                if !r.flag("force") {
                    let found = patch::apply_conflicts(&doc, &patch_body, &other_appliers);
                    if !found.is_empty() {
                        return Err(apply_conflict(info, name, found));
                    }
                }
                // Fields this manager applied before and no longer applies are removed, unless
                // another applier also owns them.
                if let Some(previous) = fields.iter().find(|f| is_mine(f)) {
                    let others: Vec<&Value> =
                        other_appliers.iter().map(|f| &f["fieldsV1"]).collect();
                    patch::remove_unapplied(
                        &mut doc,
                        &previous["fieldsV1"],
                        &entry["fieldsV1"],
                        &others,
                    );
                }
                patch::apply(&mut doc, &patch_body)?;
                fields.retain(|f| !is_mine(f));
                fields.push(entry);
                meta_mut(&mut doc).insert("managedFields".into(), Value::Array(fields));
                state.update(info, version, ns, name, doc, part, &opts, &mut warnings)?
            }
        }
    } else {
        let mut doc = existing?;
        let rv_before = meta_str(&doc, "resourceVersion").to_string();
        match kind {
            PatchKind::Merge => patch::merge(&mut doc, &patch_body),
            PatchKind::Json => patch::json(&mut doc, &patch_body)?,
            PatchKind::Strategic => patch::strategic(&mut doc, &patch_body)?,
            PatchKind::Apply => unreachable!("handled above"),
        }
        // A patch without a resourceVersion applies to whatever is stored; one with it is a precondition.
        if meta_str(&doc, "resourceVersion").is_empty() {
            meta_mut(&mut doc).insert("resourceVersion".into(), json!(rv_before));
        }
        state.update(info, version, ns, name, doc, part, &opts, &mut warnings)?
    };
    drop(state);
    after_write(shared, &obj);
    Ok(Reply {
        code: 200,
        body: format::object(info, version, obj, r.format),
        warnings,
    })
}

fn strip_nulls_top(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, v| !v.is_null());
        m.values_mut().for_each(strip_nulls_top);
    }
}

fn delete_options(
    r: &Req,
) -> Result<(Propagation, Option<String>, Option<String>, bool), ApiError> {
    let body = parse_body(&r.body)?;
    let policy = r
        .query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {other:?}"
            )));
        }
    };
    let propagation = if body["orphanDependents"] == json!(true) || r.flag("orphanDependents") {
        Propagation::Orphan
    } else {
        propagation
    };
    let dry_run = r.query.get("dryRun").is_some_and(|v| v == "All")
        || body["dryRun"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("All")));
    let uid = body["preconditions"]["uid"].as_str().map(str::to_string);
    let rv = body["preconditions"]["resourceVersion"]
        .as_str()
        .map(str::to_string);
    Ok((propagation, uid, rv, dry_run))
}

pub(super) fn delete_object(
    shared: &Arc<Shared>,
    info: &Arc<ResourceInfo>,
    version: &str,
    ns: &str,
    name: &str,
    r: &Req,
) -> Result<Reply, ApiError> {
    let (propagation, uid, rv, dry_run) = delete_options(r)?;
    let result = shared.state.lock().expect("state").delete(
        info,
        version,
        ns,
        name,
        propagation,
        (uid.as_deref(), rv.as_deref()),
        dry_run,
    )?;
    shared.gc.notify_one();
    Ok(match result {
        Deleted::Pending(obj) => Reply {
            code: 202,
            body: format::object(info, version, obj, r.format),
            warnings: Vec::new(),
        },
        Deleted::Gone(obj) => Reply::ok(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": info.group, "kind": info.plural, "uid": obj["metadata"]["uid"]},
        })),
    })
}

pub(super) fn delete_collection(
    shared: &Arc<Shared>,
    info: &Arc<ResourceInfo>,
    version: &str,
    ns: &str,
    r: &Req,
) -> Result<Reply, ApiError> {
    let labels = LabelSelector::parse(
        r.query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )?;
    let fields = FieldSelector::parse(
        r.query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )?;
    let (propagation, _, _, dry_run) = delete_options(r)?;
    let mut state = shared.state.lock().expect("state");
    let page = state.list(
        info,
        version,
        (!ns.is_empty()).then_some(ns),
        &labels,
        &fields,
        None,
        None,
    )?;
    for obj in &page.items {
        let (ons, oname) = (
            meta_str(obj, "namespace").to_string(),
            meta_str(obj, "name").to_string(),
        );
        state.delete(
            info,
            version,
            &ons,
            &oname,
            propagation,
            (None, None),
            dry_run,
        )?;
    }
    drop(state);
    shared.gc.notify_one();
    Ok(Reply::ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"group": info.group, "kind": info.plural}}),
    ))
}

/// The 409 a non-forced apply gets when it changes fields another applier owns.
fn apply_conflict(info: &ResourceInfo, name: &str, found: Vec<(String, String)>) -> ApiError {
    let summary: Vec<String> = found
        .iter()
        .map(|(m, p)| format!("conflict with {m:?}: {p}"))
        .collect();
    let mut err = ApiError::new(
        409,
        "Conflict",
        format!(
            "Apply failed with {} conflict{}: {}",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            summary.join("\n")
        ),
    );
    let causes: Vec<Value> = found
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m:?}"), "field": p}))
        .collect();
    err.details =
        Some(json!({"name": name, "group": info.group, "kind": info.plural, "causes": causes}));
    err
}
