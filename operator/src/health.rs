//! The HTTP endpoint on `--metrics-addr`: `/metrics` (Prometheus text format), `/healthz`
//! (the process serves) and `/readyz` (the controllers' caches are synced).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::cache_metrics::CacheMetrics;

/// Whether the operator is ready to serve; set once every controller's cache is synced.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the operator ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What `/metrics` shows: the metrics recorded as things happen, then those computed from the
/// caches when scraped.
#[derive(Clone)]
pub struct Scrape {
    /// Counters, histograms and gauges recorded through the `metrics` crate.
    pub recorded: PrometheusHandle,
    /// Gauges computed from the controllers' caches.
    pub cached: CacheMetrics,
}

/// Binds `addr` and serves until the task is dropped. Returns the bound address (useful with
/// port 0) and the serving future.
pub async fn serve(
    addr: SocketAddr,
    metrics: Scrape,
    readiness: Readiness,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let serving = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            let readiness = readiness.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = respond(&req, &metrics, &readiness);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    Ok((bound, serving))
}

fn respond(
    req: &Request<Incoming>,
    metrics: &Scrape,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String, content_type: &str| {
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a static response is valid")
    };
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
            "text/plain",
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            {
                crate::metrics::collect_process();
                let mut text = metrics.recorded.render();
                text.push_str(&metrics.cached.render());
                text
            },
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" if readiness.is_ready() => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "caches are not synced yet\n".into(),
            "text/plain",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
    }
}
