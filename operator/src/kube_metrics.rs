//! Metrics of kuvert's own Kubernetes API requests: how many, by verb, resource and response
//! code, and how long they take (watches excluded: they last as long as they are open). An SRE
//! sees from these whether kuvert or the API server is the slow side, and every 429.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::{Layer, Service};

/// Requests sent, by `verb`, `resource` and `code` (`error` when no response came).
pub const REQUESTS: &str = "kuvert_kube_requests_total";
/// Seconds until the response's headers, by verb (watches excluded).
pub const REQUEST_DURATION: &str = "kuvert_kube_request_duration_seconds";

/// The layer for [`kube::client::ClientBuilder::with_layer`].
#[derive(Clone, Copy, Default)]
pub struct KubeMetricsLayer;

impl<S> Layer<S> for KubeMetricsLayer {
    type Service = KubeMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        KubeMetrics { inner }
    }
}

/// The measured service.
#[derive(Clone)]
pub struct KubeMetrics<S> {
    inner: S,
}

impl<S, Req, Res> Service<http::Request<Req>> for KubeMetrics<S>
where
    S: Service<http::Request<Req>, Response = http::Response<Res>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Res: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Req>) -> Self::Future {
        let (verb, resource) = classify(request.method(), request.uri());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let code = match &response {
                Ok(r) => r.status().as_str().to_owned(),
                Err(_) => "error".to_owned(),
            };
            metrics::counter!(REQUESTS, "verb" => verb, "resource" => resource, "code" => code)
                .increment(1);
            if verb != "watch" {
                metrics::histogram!(REQUEST_DURATION, "verb" => verb)
                    .record(started.elapsed().as_secs_f64());
            }
            response
        })
    }
}

/// Registers the metrics' help texts.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "Kubernetes API requests sent, by verb, resource and response code."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Kubernetes API request latency, by verb (watches excluded)."
    );
}

/// The Kubernetes verb and resource (`plural` or `plural/subresource`, with `.group` for named
/// groups, as RBAC writes them) of a request, from its method and path. Bounded: only the kinds
/// kuvert calls occur, never an object's name.
pub fn classify(method: &http::Method, uri: &http::Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return (verb(method, false, uri), "other".to_owned()),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (plural, named, subresource) = match rest {
        [plural] => (*plural, false, None),
        [plural, _name] => (*plural, true, None),
        [plural, _name, sub, ..] => (*plural, true, Some(*sub)),
        [] => ("", false, None),
    };
    let mut resource = plural.to_owned();
    if !group.is_empty() {
        resource = format!("{resource}.{group}");
    }
    if let Some(sub) = subresource {
        resource = format!("{resource}/{sub}");
    }
    (verb(method, named, uri), resource)
}

fn verb(method: &http::Method, named: bool, uri: &http::Uri) -> &'static str {
    let watching = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match *method {
        http::Method::GET if watching => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: &str, uri: &str) -> (&'static str, String) {
        classify(&method.parse().unwrap(), &uri.parse().unwrap())
    }

    #[test]
    fn requests_are_named_by_verb_and_resource_as_rbac_writes_them() {
        assert_eq!(
            of("GET", "/api/v1/namespaces/a/secrets/db"),
            ("get", "secrets".into())
        );
        assert_eq!(
            of("GET", "/api/v1/secrets?labelSelector=x&limit=500"),
            ("list", "secrets".into())
        );
        assert_eq!(
            of(
                "GET",
                "/apis/kuvert.io/v1alpha1/externalsecrets?watch=true&resourceVersion=5"
            ),
            ("watch", "externalsecrets.kuvert.io".into())
        );
        assert_eq!(
            of(
                "PATCH",
                "/apis/kuvert.io/v1alpha1/namespaces/a/externalsecrets/app/status"
            ),
            ("patch", "externalsecrets.kuvert.io/status".into())
        );
        assert_eq!(
            of("POST", "/apis/events.k8s.io/v1/namespaces/a/events"),
            ("create", "events.events.k8s.io".into())
        );
        assert_eq!(
            of(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/k/leases/kuvert-leader"
            ),
            ("update", "leases.coordination.k8s.io".into())
        );
        assert_eq!(
            of("DELETE", "/api/v1/namespaces/a/secrets/db"),
            ("delete", "secrets".into())
        );
        assert_eq!(
            of("GET", "/api/v1/namespaces/a"),
            ("get", "namespaces".into())
        );
        assert_eq!(of("GET", "/version"), ("list", "other".into()));
    }
}
