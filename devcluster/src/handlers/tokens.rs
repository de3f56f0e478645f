//! ServiceAccount TokenRequest and TokenReview, and the authorization.k8s.io reviews.

use std::sync::Arc;

use serde_json::json;

use super::{Reply, Req, not_found_path, parse_body};
use crate::error::ApiError;
use crate::meta::{meta_str, now};
use crate::registry::ResourceInfo;
use crate::server::Shared;

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`.
pub(super) fn token_request(
    shared: &Arc<Shared>,
    ns: &str,
    name: &str,
    r: &Req,
) -> Result<Reply, ApiError> {
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
pub(super) fn token_review(shared: &Arc<Shared>, r: &Req) -> Result<Reply, ApiError> {
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

/// `POST .../{self,local,}subjectaccessreviews` and `selfsubjectrulesreviews`: devcluster has no
/// authorization, so every access is allowed and every rule is granted.
pub(super) fn access_review(
    info: &ResourceInfo,
    version: &str,
    ns: &str,
    r: &Req,
) -> Result<Reply, ApiError> {
    let body = parse_body(&r.body)?;
    let mut metadata = json!({"creationTimestamp": null});
    if info.namespaced {
        metadata["namespace"] = json!(ns);
    }
    let status = if info.kind == "SelfSubjectRulesReview" {
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    } else {
        json!({"allowed": true, "reason": "devcluster authorizes every authenticated request"})
    };
    Ok(Reply {
        code: 201,
        body: json!({
            "kind": info.kind,
            "apiVersion": info.api_version(version),
            "metadata": metadata,
            "spec": body["spec"].clone(),
            "status": status,
        }),
        warnings: Vec::new(),
    })
}
