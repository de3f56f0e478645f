//! Request routing and the verbs: get, list, watch, create, update, patch, delete,
//! deletecollection, plus the TokenRequest and TokenReview endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::format::{self, Format};
use crate::meta::{meta_mut, meta_str, now};
use crate::patch::{self, PatchKind};
use crate::registry::{ResourceInfo, Special};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{Body, Shared};
use crate::store::{Deleted, FieldValidation, Part, Propagation, WriteOpts, list_object};
use crate::{discovery, watch};

/// A response in the making: status, JSON body, `Warning` headers.
pub(crate) struct Reply {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            code: 200,
            body,
            warnings: Vec::new(),
        }
    }
}

pub(crate) fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private");
    for w in warnings {
        b = b.header("Warning", format!("299 - {}", Value::String(w.clone())));
    }
    b.body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), &[])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Reads a JSON or YAML request body.
fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).or_else(|_| {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
        serde_saphyr::from_str::<Value>(text).map_err(|e| {
            ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
        })
    })
}

/// Everything about one request the verb handlers need.
struct Req {
    method: Method,
    query: HashMap<String, String>,
    content_type: String,
    format: Format,
    body: Bytes,
}

impl Req {
    fn flag(&self, k: &str) -> bool {
        matches!(self.query.get(k).map(String::as_str), Some("true" | "1"))
    }

    fn write_opts(&self) -> WriteOpts {
        WriteOpts {
            dry_run: self.query.get("dryRun").is_some_and(|v| v == "All"),
            field_validation: match self.query.get("fieldValidation").map(String::as_str) {
                Some("Strict") => FieldValidation::Strict,
                Some("Ignore") => FieldValidation::Ignore,
                _ => FieldValidation::Warn,
            },
        }
    }
}

/// Serves one HTTP request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
    cert: Option<&[u8]>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let Some(_user) = shared.authenticate(
        parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        cert,
    ) else {
        return error_response(&ApiError::unauthorized());
    };
    let format = match Format::from_accept(&header("accept")) {
        Ok(f) => f,
        Err(()) => return error_response(&ApiError::not_acceptable()),
    };
    let content_type = header("content-type");
    if content_type.contains("cbor") {
        return error_response(&ApiError::unsupported_media_type(&content_type));
    }
    let body = match body.collect().await {
        // client-go's typed clientsets (kubectl create secret|configmap|namespace|...) send
        // protobuf; the kinds they create are translated to JSON, others refused.
        Ok(b) if content_type.contains("protobuf") => {
            match crate::protobuf::decode(&b.to_bytes(), &content_type) {
                Ok(v) => Bytes::from(v.to_string()),
                Err(e) => return error_response(&e),
            }
        }
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "cannot read the request body: {e}"
            )));
        }
    };
    let path = parts.uri.path().to_string();
    let r = Req {
        method: parts.method.clone(),
        query: parse_query(parts.uri.query()),
        content_type,
        format,
        body,
    };
    match route(&shared, &path, &r) {
        Ok(Routed::Reply(reply)) => json_response(reply.code, &reply.body, &reply.warnings),
        Ok(Routed::Watch(resp)) => resp,
        Err(e) => error_response(&e),
    }
}

enum Routed {
    Reply(Reply),
    Watch(Response<Body>),
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn route(shared: &Arc<Shared>, path: &str, r: &Req) -> Result<Routed, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get_only = |v: Value| -> Result<Routed, ApiError> {
        if r.method == Method::GET {
            Ok(Routed::Reply(Reply::ok(v)))
        } else {
            Err(ApiError::method_not_allowed("only GET is allowed here"))
        }
    };
    match segs.as_slice() {
        ["version"] => get_only(discovery::version()),
        ["healthz" | "livez" | "readyz"] => Ok(Routed::Watch(
            Response::builder()
                .header("Content-Type", "text/plain")
                .body(Full::new(Bytes::from_static(b"ok")).boxed())
                .expect("response"),
        )),
        ["api"] => get_only(discovery::api_versions(&shared.server_address)),
        ["apis"] => get_only(discovery::api_groups(
            &shared.state.lock().expect("state").registry,
        )),
        ["api", "v1"] => get_only(
            discovery::resource_list(&shared.state.lock().expect("state").registry, "", "v1")
                .ok_or_else(not_found_path)?,
        ),
        ["apis", group] => get_only(
            discovery::api_group(&shared.state.lock().expect("state").registry, group)
                .ok_or_else(not_found_path)?,
        ),
        ["apis", group, version] => get_only(
            discovery::resource_list(
                &shared.state.lock().expect("state").registry,
                group,
                version,
            )
            .ok_or_else(not_found_path)?,
        ),
        ["openapi", "v3"] => get_only(discovery::openapi_v3_root(
            &shared.state.lock().expect("state").registry,
        )),
        ["openapi", "v3", "api", "v1"] => get_only(
            discovery::openapi_v3_doc(&shared.state.lock().expect("state").registry, "", "v1")
                .ok_or_else(not_found_path)?,
        ),
        ["openapi", "v3", "apis", group, version] => get_only(
            discovery::openapi_v3_doc(
                &shared.state.lock().expect("state").registry,
                group,
                version,
            )
            .ok_or_else(not_found_path)?,
        ),
        ["api", "v1", rest @ ..] => resource(shared, "", "v1", rest, r),
        ["apis", group, version, rest @ ..] => resource(shared, group, version, rest, r),
        _ => Err(not_found_path()),
    }
}

fn resource(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &[&str],
    r: &Req,
) -> Result<Routed, ApiError> {
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (ns, rest) = if namespaced_path {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest.len() > 3 {
        return Err(not_found_path());
    }
    let (plural, name, sub) = (rest[0], rest.get(1).copied(), rest.get(2).copied());
    let info = shared
        .state
        .lock()
        .expect("state")
        .registry
        .find(group, version, plural)
        .ok_or_else(not_found_path)?;
    if (info.namespaced && ns.is_none() && name.is_some()) || (!info.namespaced && ns.is_some()) {
        return Err(not_found_path());
    }
    let ns = ns.unwrap_or("");
    let counted = |verb: &str| {
        shared.count(
            verb,
            &match sub {
                Some(s) => format!("{plural}/{s}"),
                None => plural.to_string(),
            },
        )
    };
    if info.special == Special::TokenReview {
        return match (&r.method, name) {
            (&Method::POST, None) => {
                counted("create");
                token_review(shared, r).map(Routed::Reply)
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "{plural} only supports create"
            ))),
        };
    }
    let part = match sub {
        None => Part::Main,
        Some("status") if info.status_subresource => Part::Status,
        Some("token")
            if group.is_empty() && plural == "serviceaccounts" && r.method == Method::POST =>
        {
            counted("create");
            return token_request(shared, ns, name.unwrap_or(""), r).map(Routed::Reply);
        }
        Some(_) => return Err(not_found_path()),
    };
    match (&r.method, name) {
        (&Method::GET, Some(name)) => {
            counted("get");
            let obj = shared
                .state
                .lock()
                .expect("state")
                .get(&info, version, ns, name)?;
            Ok(Routed::Reply(Reply::ok(format::object(
                &info, version, obj, r.format,
            ))))
        }
        (&Method::GET, None) => {
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
            let ns_filter = (!ns.is_empty()).then_some(ns);
            if r.flag("watch") {
                counted("watch");
                return watch::start(
                    shared,
                    &info,
                    version,
                    ns_filter,
                    labels,
                    fields,
                    r.query.clone(),
                    r.format,
                )
                .map(Routed::Watch);
            }
            counted("list");
            let limit = r
                .query
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            let page = shared.state.lock().expect("state").list(
                &info,
                version,
                ns_filter,
                &labels,
                &fields,
                limit,
                r.query.get("continue").map(String::as_str),
            )?;
            Ok(Routed::Reply(Reply::ok(format::list(
                &info,
                version,
                list_object(&info, version, page),
                r.format,
            ))))
        }
        (&Method::POST, None) if info.namespaced && ns.is_empty() => Err(
            ApiError::method_not_allowed("create a namespaced object through its namespace's path"),
        ),
        (&Method::POST, None) => {
            counted("create");
            let body = parse_body(&r.body)?;
            let mut warnings = Vec::new();
            let obj = shared.state.lock().expect("state").create(
                &info,
                version,
                ns,
                body,
                &r.write_opts(),
                &mut warnings,
            )?;
            after_write(shared, &obj);
            Ok(Routed::Reply(Reply {
                code: 201,
                body: format::object(&info, version, obj, r.format),
                warnings,
            }))
        }
        (&Method::PUT, Some(name)) => {
            counted("update");
            let body = parse_body(&r.body)?;
            let mut warnings = Vec::new();
            let obj = shared.state.lock().expect("state").update(
                &info,
                version,
                ns,
                name,
                body,
                part,
                &r.write_opts(),
                &mut warnings,
            )?;
            after_write(shared, &obj);
            Ok(Routed::Reply(Reply {
                code: 200,
                body: format::object(&info, version, obj, r.format),
                warnings,
            }))
        }
        (&Method::PATCH, Some(name)) => {
            counted("patch");
            patch_object(shared, &info, version, ns, name, part, r).map(Routed::Reply)
        }
        (&Method::DELETE, Some(name)) => {
            counted("delete");
            delete_object(shared, &info, version, ns, name, r).map(Routed::Reply)
        }
        (&Method::DELETE, None) => {
            counted("deletecollection");
            delete_collection(shared, &info, version, ns, r).map(Routed::Reply)
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} is not supported here",
            r.method
        ))),
    }
}

/// Wakes the garbage collector when a write may have orphaned or released something.
fn after_write(shared: &Shared, obj: &Value) {
    let meta = &obj["metadata"];
    if meta["ownerReferences"].is_array() || !meta["deletionTimestamp"].is_null() {
        shared.gc.notify_one();
    }
}

fn patch_object(
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
    let opts = r.write_opts();
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
        let entry = json!({
            "manager": manager,
            "operation": "Apply",
            "apiVersion": info.api_version(version),
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": patch::fields_v1(&patch_body),
        });
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
                let is_mine =
                    |f: &Value| f["manager"] == json!(manager) && f["operation"] == "Apply";
                // Fields this manager applied before and no longer applies are removed, unless
                // another applier also owns them.
                if let Some(previous) = fields.iter().find(|f| is_mine(f)) {
                    let others: Vec<&Value> = fields
                        .iter()
                        .filter(|f| !is_mine(f) && f["operation"] == "Apply")
                        .map(|f| &f["fieldsV1"])
                        .collect();
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

fn delete_object(
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

fn delete_collection(
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

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`.
fn token_request(shared: &Arc<Shared>, ns: &str, name: &str, r: &Req) -> Result<Reply, ApiError> {
    let body = parse_body(&r.body)?;
    let spec = &body["spec"];
    let lifetime = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if lifetime < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            vec![crate::error::Cause {
                field: "spec.expirationSeconds".into(),
                reason: "FieldValueInvalid",
                message: format!(
                    "Invalid value: {lifetime}: may not specify a duration less than 10 minutes"
                ),
            }],
        ));
    }
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => shared.api_audiences.clone(),
    };
    let uid = {
        let state = shared.state.lock().expect("state");
        let sa_info = state
            .registry
            .find("", "v1", "serviceaccounts")
            .ok_or_else(not_found_path)?;
        let sa = state
            .stored(&sa_info, ns, name)
            .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
        meta_str(sa, "uid").to_string()
    };
    let now_s = jiff::Timestamp::now().as_second();
    let (token, exp) = shared
        .tokens
        .issue(ns, name, &uid, &audiences, lifetime, now_s);
    let expires = jiff::Timestamp::from_second(exp)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(Reply {
        code: 201,
        body: json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": now()},
            "spec": {"audiences": audiences, "expirationSeconds": lifetime, "boundObjectRef": spec["boundObjectRef"].clone()},
            "status": {"token": token, "expirationTimestamp": expires},
        }),
        warnings: Vec::new(),
    })
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
fn token_review(shared: &Arc<Shared>, r: &Req) -> Result<Reply, ApiError> {
    let body = parse_body(&r.body)?;
    let token = body["spec"]["token"].as_str().unwrap_or("");
    let requested: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let audiences = if requested.is_empty() {
        shared.api_audiences.clone()
    } else {
        requested.clone()
    };
    let static_user = shared.static_tokens.get(token).cloned();
    let result = match static_user {
        Some(u) => Ok(u),
        None => shared.review_token(token, &audiences),
    };
    let status = match result {
        Ok(user) => json!({
            "authenticated": true,
            "user": {"username": user.name, "uid": user.uid, "groups": user.groups},
            "audiences": audiences,
        }),
        Err(why) => json!({"authenticated": false, "error": why}),
    };
    Ok(Reply {
        code: 201,
        body: json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": body["spec"].clone(),
            "status": status,
        }),
        warnings: Vec::new(),
    })
}
