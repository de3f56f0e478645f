//! The object store: every served object in memory, one global resourceVersion counter, the
//! bounded event history that watches replay from, and the write rules (conflicts, generation,
//! status separation, finalizers, namespaces, CRD registration).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::meta::{meta_mut, meta_str};
use crate::registry::{GroupResource, Registry, ResourceInfo};
use crate::selectors::{FieldSelector, LabelSelector};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One committed change; watches filter and forward these.
#[derive(Debug)]
pub(crate) struct WatchEvent {
    pub rv: u64,
    pub kind: EventKind,
    pub resource: GroupResource,
    pub namespace: String,
    pub object: Value,
    /// The object before a `Modified` change (for watches whose selector it leaves or enters).
    pub previous: Option<Value>,
}

/// How strictly unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
    /// A server-side apply: whatever `fieldValidation` says, an unknown field fails building
    /// the typed patch (kube-apiserver answers 500, before validating the object).
    Apply,
}

/// Per-request write options.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Main,
    Status,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

/// Result of a delete.
#[derive(Debug)]
pub(crate) enum Deleted {
    /// Removed now; the last state of the object.
    Gone(Value),
    /// Finalizers hold it: `deletionTimestamp` is set.
    Pending(Value),
}

/// A page of a list.
#[derive(Debug)]
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

mod delete;
mod write;

type Key = (String, String);

/// All state behind one lock.
pub(crate) struct State {
    pub rv: u64,
    pub registry: Registry,
    objects: HashMap<GroupResource, BTreeMap<Key, Value>>,
    uids: HashMap<String, (GroupResource, Key)>,
    history: VecDeque<Arc<WatchEvent>>,
    history_cap: usize,
    /// Events with a resourceVersion at or below this are no longer replayable.
    pub history_floor: u64,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// A stored object as served through `info` at `version`.
pub(crate) fn versioned(mut obj: Value, info: &ResourceInfo, version: &str) -> Value {
    if info.is_events_api() {
        obj = crate::events::core_to_events(obj);
    }
    obj["apiVersion"] = json!(info.api_version(version));
    obj["kind"] = json!(info.kind);
    obj
}

/// An object written through `info` in the shape it is stored in.
fn stored_shape(obj: Value, info: &ResourceInfo) -> Value {
    if info.is_events_api() {
        let mut core = crate::events::events_to_core(obj);
        core["apiVersion"] = json!("v1");
        core
    } else {
        versioned(obj, info, info.storage_version())
    }
}

fn key_of(info: &ResourceInfo, ns: &str, name: &str) -> Key {
    (
        if info.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn encode_continue(key: &Key) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&[&key.0, &key.1]).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let [ns, name]: [String; 2] = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ns, name))
}

impl State {
    pub fn new(history_cap: usize) -> (Self, broadcast::Receiver<Arc<WatchEvent>>) {
        let (events, rx) = broadcast::channel(history_cap.clamp(1024, 65536));
        let state = Self {
            rv: 1,
            registry: Registry::with_builtins(),
            objects: HashMap::new(),
            uids: HashMap::new(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            history_floor: 1,
            events,
        };
        (state, rx)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    /// Events after `rv` for `resource`, or 410 when `rv` fell out of the bounded history.
    pub fn replay(
        &self,
        resource: &GroupResource,
        rv: u64,
    ) -> Result<Vec<Arc<WatchEvent>>, ApiError> {
        if rv < self.history_floor {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                self.history_floor + 1
            )));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > rv && e.resource == *resource)
            .cloned()
            .collect())
    }

    /// Stores (or removes, for `Deleted`) an object under a fresh resourceVersion and emits the event.
    fn commit(&mut self, info: &ResourceInfo, mut obj: Value, kind: EventKind) -> Value {
        self.rv += 1;
        let rv = self.rv;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let ns = meta_str(&obj, "namespace").to_string();
        let key = key_of(info, &ns, meta_str(&obj, "name"));
        let uid = meta_str(&obj, "uid").to_string();
        let gr = info.key();
        let table = self.objects.entry(gr.clone()).or_default();
        let previous = if kind == EventKind::Deleted {
            table.remove(&key);
            self.uids.remove(&uid);
            None
        } else {
            let previous = table.insert(key.clone(), obj.clone());
            self.uids.insert(uid, (gr.clone(), key));
            previous
        };
        let event = Arc::new(WatchEvent {
            rv,
            kind,
            resource: gr,
            namespace: ns,
            object: obj.clone(),
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
            }
        }
        let _ = self.events.send(event);
        obj
    }

    pub fn stored(&self, info: &ResourceInfo, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&info.key())?.get(&key_of(info, ns, name))
    }

    /// Whether an object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Every stored object of a resource (cloned), optionally only in one namespace.
    pub fn all_of(&self, gr: &GroupResource, ns: Option<&str>) -> Vec<Value> {
        let Some(table) = self.objects.get(gr) else {
            return Vec::new();
        };
        match ns {
            Some(ns) => table
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => table.values().cloned().collect(),
        }
    }

    /// Objects the garbage collector must look at: those with owner references and those
    /// being deleted (cloned).
    pub fn relevant_to_gc(&self, gr: &GroupResource) -> Vec<Value> {
        let Some(table) = self.objects.get(gr) else {
            return Vec::new();
        };
        table
            .values()
            .filter(|o| {
                let m = &o["metadata"];
                m["ownerReferences"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                    || !m["deletionTimestamp"].is_null()
            })
            .cloned()
            .collect()
    }

    /// Resources that have stored objects.
    pub fn resources_with_objects(&self) -> Vec<GroupResource> {
        self.objects
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn get(
        &self,
        info: &ResourceInfo,
        version: &str,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.stored(info, ns, name)
            .map(|o| versioned(o.clone(), info, version))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn list(
        &self,
        info: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let after = continue_token
            .filter(|t| !t.is_empty())
            .map(decode_continue)
            .transpose()?;
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0u64;
        if let Some(table) = self.objects.get(&info.key()) {
            let ns = if info.namespaced { ns } else { None };
            let start = after
                .clone()
                .or_else(|| ns.map(|n| (n.to_string(), String::new())));
            let iter: Box<dyn Iterator<Item = (&Key, &Value)>> = match &start {
                Some(k) => Box::new(table.range(k.clone()..)),
                None => Box::new(table.iter()),
            };
            for (key, obj) in iter {
                if after.as_ref() == Some(key) {
                    continue;
                }
                if let Some(ns) = ns
                    && key.0 != ns
                {
                    break;
                }
                if !labels.matches(obj) || !fields.matches(obj) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    remaining += 1;
                    continue;
                }
                last_key = Some(key.clone());
                items.push(versioned(obj.clone(), info, version));
            }
        }
        let continue_token = if remaining > 0 {
            last_key.as_ref().map(encode_continue)
        } else {
            None
        };
        Ok(Page {
            items,
            resource_version: self.rv,
            continue_token,
            remaining: (remaining > 0).then_some(remaining),
        })
    }
}

/// Stored objects in a namespace, for the namespace controller.
pub(crate) fn namespaced_objects(state: &State, ns: &str) -> Vec<(GroupResource, Value)> {
    let mut out = Vec::new();
    for gr in state.resources_with_objects() {
        if state.registry.by_key(&gr).is_some_and(|i| i.namespaced) {
            out.extend(
                state
                    .all_of(&gr, Some(ns))
                    .into_iter()
                    .map(|o| (gr.clone(), o)),
            );
        }
    }
    out
}

/// Adds the synthetic status fields a list response carries.
pub(crate) fn list_object(info: &ResourceInfo, version: &str, page: Page) -> Value {
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        json!(page.resource_version.to_string()),
    );
    if let Some(c) = page.continue_token {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = page.remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    json!({
        "apiVersion": info.api_version(version),
        "kind": format!("{}List", info.kind),
        "metadata": meta,
        "items": page.items,
    })
}
