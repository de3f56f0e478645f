//! Errors: the Kubernetes `Status` bodies the API answers with, and the library's start-up errors.

use serde_json::{Value, json};

/// A failed API request, rendered as a Kubernetes `Status` object with the matching HTTP code.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// One field-level cause inside an `Invalid` (422) status.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// Dotted field path, e.g. `spec.size`.
    pub field: String,
    /// Machine reason such as `FieldValueInvalid`, `FieldValueRequired`.
    pub reason: &'static str,
    /// What is wrong, e.g. `Invalid value: "x": must be an integer`.
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut d = json!({ "name": name, "kind": kind });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        self.details = Some(d);
        self
    }

    /// `{plural}.{group} "{name}" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    /// The optimistic-concurrency conflict every controller retries on.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with per-field causes, worded like the real API server.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = if summary.len() == 1 {
            format!("{qualified_kind} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!(
                "{qualified_kind} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            )
        };
        let mut err = Self::new(422, "Invalid", message).with_details(group, kind, name);
        if let Some(d) = err.details.as_mut() {
            d["causes"] = Value::Array(
                causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                    .collect(),
            );
        }
        err
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {content_type:?}"
            ),
        )
    }

    /// What kube-apiserver answers beyond `--max-requests-inflight`; the `Retry-After` header
    /// repeats `retryAfterSeconds`.
    pub fn too_many_requests() -> Self {
        let mut err = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        err.details = Some(json!({ "retryAfterSeconds": 1 }));
        err
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only application/json responses are served",
        )
    }

    /// The `Status` object sent as the response body (or inside a watch `ERROR` event).
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // Some errors carry no reason (e.g. a failed server-side apply's 500), as upstream.
        if self.reason.is_empty()
            && let Some(m) = s.as_object_mut()
        {
            m.remove("reason");
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// `secrets` for the core group, `widgets.example.com` otherwise, as the API server words it.
pub(crate) fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// Why a dev cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying socket error.
        #[source]
        source: std::io::Error,
    },
    /// Generating the certificate authority or a certificate failed.
    #[error("cannot generate certificates")]
    Certificate(#[from] rcgen::Error),
    /// The TLS server configuration was rejected.
    #[error("cannot configure tls")]
    Tls(#[from] rustls::Error),
    /// Generating the ServiceAccount token signing key failed.
    #[error("cannot generate the service account signing key")]
    SigningKey,
}

/// Why [`crate::DevClusterHandle::client`] could not build a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The generated kubeconfig was not accepted by kube-rs.
    #[error("cannot read the generated kubeconfig")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// kube-rs could not build its HTTP client.
    #[error("cannot build the kube client")]
    Client(#[from] kube::Error),
}
