//! Waiting for objects to reach a state, through a watch rather than polling, so a latency is
//! measured to the event and the API server is not loaded by repeated lists.

use std::collections::HashSet;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The resourceVersion of the collection now (of the objects matching `fields`): a watch from
/// it sees every later change.
pub async fn current_version<K>(api: &Api<K>, fields: Option<&str>) -> anyhow::Result<String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut params = ListParams::default().limit(1);
    if let Some(fields) = fields {
        params = params.fields(fields);
    }
    let list = api.list_metadata(&params).await.context("listing")?;
    list.metadata
        .resource_version
        .context("a list without a resourceVersion")
}

/// Waits until `want` objects (matching `fields`) satisfy `done`, watching from `version` (an
/// empty one: from a list of the current state, which counts too); returns when that happened. A watch that ends or is refused (410 Gone) is replaced by a
/// fresh list and watch.
pub async fn until<K>(
    api: &Api<K>,
    fields: Option<&str>,
    version: String,
    want: usize,
    timeout: Duration,
    done: impl Fn(&K) -> bool,
) -> anyhow::Result<Instant>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(until_each(api, fields, version, want, timeout, done)
        .await?
        .all)
}

/// When the objects reached the awaited state.
#[derive(Clone, Debug)]
pub struct Progress {
    /// When the `want`-th did.
    pub all: Instant,
    /// When each object was first seen in it, in the order seen.
    pub each: Vec<Instant>,
}

/// [`until`], also recording when each object first reached the state (for the plot of
/// objects Ready over time).
pub async fn until_each<K>(
    api: &Api<K>,
    fields: Option<&str>,
    version: String,
    want: usize,
    timeout: Duration,
    done: impl Fn(&K) -> bool,
) -> anyhow::Result<Progress>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let deadline = Instant::now() + timeout;
    let mut first_seen: HashSet<String> = HashSet::new();
    let mut each = Vec::new();
    let mut seen = |name: &str, each: &mut Vec<Instant>| {
        if !first_seen.contains(name) {
            first_seen.insert(name.to_owned());
            each.push(Instant::now());
        }
    };
    let mut satisfied: HashSet<String> = HashSet::new();
    // No version: start from a list of the current state.
    let mut version = Some(version).filter(|v| !v.is_empty());
    loop {
        let from = match version.take() {
            Some(v) => v,
            None => {
                // Start over from the current state.
                let mut params = ListParams::default();
                if let Some(fields) = fields {
                    params = params.fields(fields);
                }
                let list = api.list(&params).await.context("listing")?;
                satisfied = list
                    .items
                    .iter()
                    .filter(|o| done(o))
                    .map(|o| o.name_any())
                    .collect();
                for name in &satisfied {
                    seen(name, &mut each);
                }
                list.metadata.resource_version.unwrap_or_default()
            }
        };
        if satisfied.len() >= want {
            return Ok(Progress {
                all: Instant::now(),
                each,
            });
        }
        let mut params = WatchParams::default().timeout(290);
        if let Some(fields) = fields {
            params = params.fields(fields);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let watched = tokio::time::timeout(left, async {
            let mut stream = api.watch(&params, &from).await?.boxed();
            while let Some(event) = stream.try_next().await? {
                match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        if done(&o) {
                            seen(&o.name_any(), &mut each);
                            satisfied.insert(o.name_any());
                        } else {
                            satisfied.remove(&o.name_any());
                        }
                    }
                    WatchEvent::Deleted(o) => {
                        satisfied.remove(&o.name_any());
                    }
                    WatchEvent::Bookmark(_) => {}
                    // 410 Gone and the like: relist.
                    WatchEvent::Error(_) => return Ok(false),
                }
                if satisfied.len() >= want {
                    return Ok(true);
                }
            }
            anyhow::Ok(false)
        })
        .await;
        match watched {
            Ok(Ok(true)) => {
                return Ok(Progress {
                    all: Instant::now(),
                    each,
                });
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return Err(e.context("watching")),
            Err(_) => bail!(
                "after {timeout:?}, {} of {want} objects had reached the awaited state",
                satisfied.len()
            ),
        }
    }
}
