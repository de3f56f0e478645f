//! Request routing and the verbs: get, list, watch, create, update, patch, delete,
//! deletecollection, plus the TokenRequest and TokenReview endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::error::ApiError;
use crate::format::{self, Format};
use crate::registry::Special;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{Body, Shared};
use crate::store::{FieldValidation, Part, WriteOpts, list_object};
use crate::{discovery, watch};

mod tokens;
mod write;

use tokens::{access_review, token_request, token_review};
use write::{delete_collection, delete_object, patch_object};

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

/// A 200 JSON response with a specific `Content-Type` (aggregated discovery).
fn json_with_type(body: &Value, content_type: &str) -> Response<Body> {
    Response::builder()
        .header("Content-Type", content_type)
        .header("Cache-Control", "no-cache, private")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut response = json_response(e.code, &e.to_status(), &[]);
    if let Some(seconds) = e
        .details
        .as_ref()
        .and_then(|d| d["retryAfterSeconds"].as_u64())
    {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, seconds.into());
    }
    response
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
    accept: String,
    if_none_match: String,
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
    let query = parse_query(parts.uri.query());
    if let Some(fault) = shared.fault.answer(parts.uri.path()) {
        return error_response(&fault);
    }
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    // Held until the response is built; taken before the body is read, like kube-apiserver's
    // filter, so a slow upload counts as in flight.
    let _inflight = match shared.admit(watch) {
        Ok(permit) => permit,
        Err(e) => return error_response(&e),
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
        accept: header("accept"),
        if_none_match: header("if-none-match"),
        query,
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
        ["devcluster", "fault"] if r.method == Method::POST => {
            let (fault, duration) = crate::fault::parse(&r.query)?;
            shared.fault.set(fault, duration);
            Ok(Routed::Reply(Reply::ok(serde_json::json!({
                "fault": duration.as_secs() > 0,
                "seconds": duration.as_secs(),
            }))))
        }
        ["healthz" | "livez" | "readyz"] => Ok(Routed::Watch(
            Response::builder()
                .header("Content-Type", "text/plain")
                .body(Full::new(Bytes::from_static(b"ok")).boxed())
                .expect("response"),
        )),
        ["api" | "apis"] if r.method == Method::GET && discovery::wants_aggregated(&r.accept) => {
            let doc = discovery::aggregated(
                &shared.state.lock().expect("state").registry,
                segs[0] == "api",
            );
            Ok(Routed::Watch(json_with_type(&doc, discovery::AGGREGATED)))
        }
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
        ["openapi", "v3", rest @ ..] => openapi(shared, &rest.join("/"), r),
        ["api", "v1", rest @ ..] => resource(shared, "", "v1", rest, r),
        ["apis", group, version, rest @ ..] => resource(shared, group, version, rest, r),
        _ => Err(not_found_path()),
    }
}

/// `/openapi/v3` (`path` empty) or one of its documents, with the caching headers of
/// kube-openapi's `handler3`: an `Etag`; for a document asked for by its current hash,
/// `Cache-Control: public, immutable` for a year; for an outdated hash, a redirect to the
/// current one.
fn openapi(shared: &Arc<Shared>, path: &str, r: &Req) -> Result<Routed, ApiError> {
    if r.method != Method::GET {
        return Err(ApiError::method_not_allowed("only GET is allowed here"));
    }
    let published = shared.state.lock().expect("state").registry.openapi();
    let doc = if path.is_empty() {
        &published.index
    } else {
        published.documents.get(path).ok_or_else(not_found_path)?
    };
    let etag = format!("\"{}\"", doc.hash);
    let builder = Response::builder()
        .header("Content-Type", "application/json")
        .header("Etag", &etag)
        .header("Vary", "Accept");
    let response = match r.query.get("hash") {
        Some(hash) if !path.is_empty() && *hash != doc.hash => builder
            .status(StatusCode::MOVED_PERMANENTLY)
            .header("Location", format!("/openapi/v3/{path}?hash={}", doc.hash))
            .body(Full::new(Bytes::new()).boxed()),
        hash => {
            let builder = if hash.is_some() && !path.is_empty() {
                let expires = jiff::Timestamp::now()
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .saturating_add(jiff::Span::new().years(1));
                builder.header("Cache-Control", "public, immutable").header(
                    "Expires",
                    expires.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                )
            } else {
                builder
            };
            if r.if_none_match == etag {
                builder
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::new(Bytes::new()).boxed())
            } else {
                builder.body(Full::new(doc.body.clone()).boxed())
            }
        }
    };
    Ok(Routed::Watch(response.expect("response")))
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
    if info.special == Special::AccessReview {
        return match (&r.method, name) {
            (&Method::POST, None) => {
                counted("create");
                access_review(&info, version, ns, r).map(Routed::Reply)
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "{plural} only supports create"
            ))),
        };
    }
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

/// Wakes the garbage collector when a write may have orphaned or released something: an
/// object being deleted, or one naming an owner that does not exist. A write whose owners all
/// exist releases nothing; waking the collector for it made every write of an owned object
/// (each managed Secret) cost a sweep of all owned objects, quadratic in their number.
fn after_write(shared: &Shared, obj: &Value) {
    let meta = &obj["metadata"];
    let dangling = || {
        let state = shared.state.lock().expect("state");
        meta["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| !r["uid"].as_str().is_some_and(|u| state.uid_exists(u)))
    };
    if !meta["deletionTimestamp"].is_null() || dangling() {
        shared.gc.notify_one();
    }
}
