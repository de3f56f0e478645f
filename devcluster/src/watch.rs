//! `?watch=true`: a chunked stream of JSON lines (`{"type": ..., "object": ...}`), replayed from
//! the bounded history from `resourceVersion`, with bookmarks, selectors, `timeoutSeconds`,
//! `sendInitialEvents`, and a 410 `ERROR` event when the requested version is too old.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::format::{self, Format};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{Body, Shared};
use crate::store::{EventKind, WatchEvent};

/// Decides which events one watch sees, and how they look.
struct Filter {
    info: Arc<ResourceInfo>,
    version: String,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    format: Format,
}

impl Filter {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event type this watch sees for a change, if any. A modification that moves an object
    /// into or out of the selector is seen as ADDED or DELETED, as the API server does.
    fn kind_for(&self, e: &WatchEvent) -> Option<&'static str> {
        if e.resource != self.info.key() || self.ns.as_ref().is_some_and(|n| *n != e.namespace) {
            return None;
        }
        let now = self.selects(&e.object);
        match e.kind {
            EventKind::Modified => {
                let before = e.previous.as_ref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
            k => now.then_some(k.as_str()),
        }
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let o = crate::store::versioned(obj.clone(), &self.info, &self.version);
        let o = format::object(&self.info, &self.version, o, self.format);
        let mut line = json!({"type": kind, "object": o}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (api_version, kind) = match self.format {
            Format::Metadata => (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadata".to_string(),
            ),
            _ => (self.info.api_version(&self.version), self.info.kind.clone()),
        };
        let mut line = json!({"type": "BOOKMARK", "object": {"apiVersion": api_version, "kind": kind, "metadata": meta}}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(StreamBody::new(stream).boxed())
        .expect("response")
}

/// Starts a watch; the response streams until timeout, client disconnect, or shutdown.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    shared: &Arc<Shared>,
    info: &Arc<ResourceInfo>,
    version: &str,
    ns: Option<&str>,
    labels: LabelSelector,
    fields: FieldSelector,
    query: HashMap<String, String>,
    format: Format,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter {
        info: info.clone(),
        version: version.to_string(),
        ns: ns.map(str::to_string),
        labels,
        fields,
        format,
    };
    let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("true" | "1"));
    let bookmarks = flag("allowWatchBookmarks");
    let send_initial = flag("sendInitialEvents");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let (live, start_rv, gone) = {
        let state = shared.state.lock().expect("state");
        let live = state.subscribe();
        let mut gone = false;
        if rv.is_none() || send_initial {
            for obj in state.all_of(&info.key(), filter.ns.as_deref()) {
                if filter.selects(&obj) {
                    first.push(filter.line("ADDED", &obj));
                }
            }
            if send_initial && bookmarks {
                first.push(filter.bookmark(state.rv, true));
            }
        } else if let Some(rv) = rv {
            match state.replay(&info.key(), rv) {
                Ok(events) => first.extend(
                    events
                        .iter()
                        .filter_map(|e| filter.kind_for(e).map(|k| filter.line(k, &e.object))),
                ),
                Err(e) => {
                    let mut line = json!({"type": "ERROR", "object": e.to_status()}).to_string();
                    line.push('\n');
                    first.push(Bytes::from(line));
                    gone = true;
                }
            }
        }
        (live, state.rv, gone)
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        pump(shared, filter, live, tx, start_rv, bookmarks, timeout).await;
    });
    Ok(stream_response(rx))
}

async fn pump(
    shared: Arc<Shared>,
    filter: Filter,
    mut live: broadcast::Receiver<Arc<WatchEvent>>,
    tx: mpsc::Sender<Bytes>,
    mut last_rv: u64,
    bookmarks: bool,
    timeout: Duration,
) {
    let mut epoch = shared.watch_epoch.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(shared.bookmark_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = epoch.changed() => break,
            _ = shutdown.changed() => break,
            _ = tx.closed() => break,
            _ = ticker.tick(), if bookmarks => {
                if tx.send(filter.bookmark(last_rv, false)).await.is_err() {
                    break;
                }
            }
            event = live.recv() => match event {
                Ok(e) => {
                    if e.rv <= last_rv {
                        continue;
                    }
                    last_rv = e.rv;
                    if let Some(kind) = filter.kind_for(&e)
                        && tx.send(filter.line(kind, &e.object)).await.is_err()
                    {
                        break;
                    }
                }
                // A watcher that fell behind is cut off; it resumes from its last resourceVersion.
                Err(_) => break,
            }
        }
    }
}
