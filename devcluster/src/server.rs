//! The HTTP(S) server: accepting connections, TLS with optional client certificates,
//! authentication, and request counting.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::error::ApiError;
use crate::store::State;
use crate::tls::Authority;
use crate::tokens::TokenIssuer;

/// The response body type: a full JSON document or a watch stream.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Everything request handlers share.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub tokens: TokenIssuer,
    pub authority: Authority,
    /// Static bearer tokens.
    pub static_tokens: HashMap<String, User>,
    pub anonymous: bool,
    pub api_audiences: Vec<String>,
    pub counters: Mutex<BTreeMap<(String, String), u64>>,
    pub gc: Notify,
    pub bookmark_interval: Duration,
    /// Bumped to end every open watch (clients then re-watch from their last resourceVersion).
    pub watch_epoch: watch::Sender<u64>,
    pub shutdown: watch::Sender<bool>,
    pub server_address: String,
    /// Permits for requests served at once (`Config::max_requests_inflight`).
    pub inflight: Option<Arc<Semaphore>>,
    /// 429 or 503 for every request while on (`crate::fault`).
    pub fault: crate::fault::FaultSwitch,
}

impl Shared {
    pub fn count(&self, verb: &str, resource: &str) {
        *self
            .counters
            .lock()
            .expect("counters")
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
    }

    /// Admits a request under `Config::max_requests_inflight`: the permit is held until the
    /// response is ready. Watches are long-running and never count, as in kube-apiserver.
    pub fn admit(&self, watch: bool) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        match &self.inflight {
            Some(limit) if !watch => limit
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| ApiError::too_many_requests()),
            _ => Ok(None),
        }
    }

    /// Identifies the caller from a bearer token (static or ServiceAccount) or a client certificate.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&[u8]>,
    ) -> Option<User> {
        if let Some(token) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
        {
            if let Some(user) = self.static_tokens.get(token) {
                return Some(user.clone());
            }
            return self.review_token(token, &self.api_audiences).ok();
        }
        if let Some(user) = client_cert.and_then(|der| self.authority.user_of(der)) {
            let mut groups = user.groups;
            groups.push("system:authenticated".into());
            return Some(User {
                name: user.name,
                uid: String::new(),
                groups,
            });
        }
        self.anonymous.then(|| User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        })
    }

    /// Validates a ServiceAccount token: signature, expiry, audience, and that the
    /// ServiceAccount still exists with the uid the token was issued for.
    pub fn review_token(&self, token: &str, audiences: &[String]) -> Result<User, String> {
        let now = jiff::Timestamp::now().as_second();
        let claims = self.tokens.verify(token, audiences, now)?;
        let state = self.state.lock().expect("state");
        let sa_info = state
            .registry
            .find("", "v1", "serviceaccounts")
            .ok_or("serviceaccounts are not served")?;
        let sa = state
            .stored(&sa_info, &claims.namespace, &claims.name)
            .ok_or_else(|| format!("serviceaccounts \"{}\" not found", claims.name))?;
        if sa["metadata"]["uid"].as_str() != Some(claims.uid.as_str()) {
            return Err(format!(
                "the serviceaccount \"{}\" uid does not match the token",
                claims.name
            ));
        }
        Ok(User {
            name: format!("system:serviceaccount:{}:{}", claims.namespace, claims.name),
            uid: claims.uid,
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", claims.namespace),
                "system:authenticated".into(),
            ],
        })
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.to_vec());
                    connection(TokioIo::new(stream), shared, cert).await;
                }
                None => connection(TokioIo::new(stream), shared, None).await,
            }
        });
    }
}

async fn connection<I>(io: I, shared: Arc<Shared>, cert: Option<Vec<u8>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut shutdown = shared.shutdown.subscribe();
    let cert = Arc::new(cert);
    let svc_shared = shared.clone();
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let shared = svc_shared.clone();
        let cert = cert.clone();
        async move {
            Ok::<Response<Body>, Infallible>(
                crate::handlers::handle(shared, req, cert.as_deref()).await,
            )
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = shutdown.changed() => {}
    }
}
