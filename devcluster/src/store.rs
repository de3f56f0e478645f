//! The object store: every served object in memory, one global resourceVersion counter, the
//! bounded event history that watches replay from, and the write rules (conflicts, generation,
//! status separation, finalizers, namespaces, CRD registration).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::error::{ApiError, Cause, qualified};
use crate::meta::{invalid_name, meta_mut, meta_str, name_suffix, now, spec_part, uuid};
use crate::registry::{GroupResource, Registry, ResourceInfo, from_crd};
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

fn versioned(mut obj: Value, info: &ResourceInfo, version: &str) -> Value {
    obj["apiVersion"] = json!(info.api_version(version));
    obj["kind"] = json!(info.kind);
    obj
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

    fn check_namespace(&self, info: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let namespaces = GroupResource {
            group: String::new(),
            plural: "namespaces".into(),
        };
        match self
            .objects
            .get(&namespaces)
            .and_then(|t| t.get(&(String::new(), ns.to_string())))
        {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    qualified(&info.group, &info.plural)
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Validates a custom resource against its version's schema (pruning, defaulting, CEL).
    fn validate_custom(
        &self,
        info: &ResourceInfo,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let Some(schema) = info.schemas.get(version) else {
            return Ok(());
        };
        let name = meta_str(obj, "name").to_string();
        let out = schema.validate(obj, old);
        if !out.causes.is_empty() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                out.causes,
            ));
        }
        if !out.unknown.is_empty() {
            match opts.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = out
                        .unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(out.unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                }
                FieldValidation::Ignore => {}
            }
        }
        Ok(())
    }

    /// Kind-specific rules applied to every write of a built-in kind.
    fn normalize(
        &self,
        info: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if info.custom {
            return Ok(());
        }
        match (info.group.as_str(), info.plural.as_str()) {
            ("", "secrets") => {
                if let Some(Value::Object(string_data)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    let data = obj
                        .as_object_mut()
                        .expect("object")
                        .entry("data")
                        .or_insert_with(|| json!({}));
                    if !data.is_object() {
                        *data = json!({});
                    }
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or_default().to_string();
                        data[k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                    }
                }
                if obj["type"].is_null() {
                    obj["type"] = json!("Opaque");
                }
                if let Some(old) = old
                    && old["immutable"] == json!(true)
                    && (old["data"] != obj["data"] || obj["immutable"] != json!(true))
                {
                    return Err(ApiError::invalid(
                        "",
                        "Secret",
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: "data".into(),
                            reason: "FieldValueForbidden",
                            message: "Forbidden: field is immutable when `immutable` is set".into(),
                        }],
                    ));
                }
            }
            ("", "namespaces") => {
                if obj["spec"]["finalizers"].is_null() {
                    obj["spec"]["finalizers"] = json!(["kubernetes"]);
                }
                if obj["status"]["phase"].is_null() {
                    obj["status"] = json!({"phase": "Active"});
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let parsed = from_crd(obj).map_err(|msg| {
                    let (field, message) = msg.split_once(": ").unwrap_or(("spec", &msg));
                    ApiError::invalid(
                        &info.group,
                        &info.kind,
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: field.into(),
                            reason: "FieldValueInvalid",
                            message: message.into(),
                        }],
                    )
                })?;
                let expected = format!("{}.{}", parsed.plural, parsed.group);
                if meta_str(obj, "name") != expected {
                    return Err(ApiError::invalid(
                        &info.group,
                        &info.kind,
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: "metadata.name".into(),
                            reason: "FieldValueInvalid",
                            message: format!(
                                "Invalid value: {:?}: must be spec.names.plural+\".\"+spec.group",
                                meta_str(obj, "name")
                            ),
                        }],
                    ));
                }
                let stored: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"] == json!(true))
                    .map(|v| v["name"].clone())
                    .collect();
                obj["status"] = json!({
                    "acceptedNames": obj["spec"]["names"].clone(),
                    "storedVersions": stored,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()}
                    ]
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// After a CRD write: serve (or re-serve) its kind.
    fn crd_written(&mut self, crd: &Value) {
        if let Ok(info) = from_crd(crd) {
            self.registry
                .set_custom(meta_str(crd, "name"), Arc::new(info));
        }
    }

    /// `POST`: creates an object. `body` has been parsed already; `ns` is the request's namespace.
    pub fn create(
        &mut self,
        info: &Arc<ResourceInfo>,
        version: &str,
        ns: &str,
        mut body: Value,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        if let Some(kind) = body["kind"].as_str()
            && kind != info.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object {kind:?} does not match the resource {:?}",
                info.kind
            )));
        }
        let body_ns = meta_str(&body, "namespace").to_string();
        if info.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(&body, "generateName");
            if !prefix.is_empty() {
                name = format!("{prefix}{}", name_suffix());
            }
        }
        if let Some(why) = invalid_name(&name, info.plural == "namespaces") {
            let field = "metadata.name";
            let message = if name.is_empty() {
                "Required value: name or generateName is required".to_string()
            } else {
                format!("Invalid value: {name:?}: {why}")
            };
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                vec![Cause {
                    field: field.into(),
                    reason: if name.is_empty() {
                        "FieldValueRequired"
                    } else {
                        "FieldValueInvalid"
                    },
                    message,
                }],
            ));
        }
        self.check_namespace(info, ns)?;
        if self.stored(info, ns, &name).is_some() {
            return Err(ApiError::already_exists(&info.group, &info.plural, &name));
        }
        body["apiVersion"] = json!(info.api_version(version));
        body["kind"] = json!(info.kind);
        if info.status_subresource
            && info.custom
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        {
            let meta = meta_mut(&mut body);
            meta.insert("name".into(), json!(name));
            if info.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(uuid()));
            meta.insert("creationTimestamp".into(), json!(now()));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.remove("resourceVersion");
            if info.generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        self.validate_custom(info, version, &mut body, None, opts, warnings)?;
        self.normalize(info, &mut body, None)?;
        let body = versioned(body, info, info.storage_version());
        if opts.dry_run {
            return Ok(versioned(body, info, version));
        }
        let stored = self.commit(info, body, EventKind::Added);
        match (info.group.as_str(), info.plural.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => self.crd_written(&stored),
            ("", "namespaces") => {
                if let Some(sa) = self.registry.find("", "v1", "serviceaccounts") {
                    let default_sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
                    let _ = self.create(
                        &sa,
                        "v1",
                        &name,
                        default_sa,
                        &WriteOpts::default(),
                        &mut Vec::new(),
                    );
                }
            }
            _ => {}
        }
        Ok(versioned(stored, info, version))
    }

    /// `PUT` (and the last step of `PATCH`): replaces an object, or only its status for `Part::Status`.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        info: &Arc<ResourceInfo>,
        version: &str,
        ns: &str,
        name: &str,
        mut body: Value,
        part: Part,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        let old = self
            .stored(info, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let body_name = meta_str(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let rv = meta_str(&body, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        let mut new = match part {
            Part::Status => {
                let mut n = old.clone();
                n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
                n
            }
            Part::Main => {
                if info.status_subresource {
                    body["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                }
                body
            }
        };
        if new.get("status").is_some_and(Value::is_null)
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        // Identity and server-owned metadata always come from the stored object.
        {
            let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
            let meta = meta_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            meta.remove("resourceVersion");
        }
        new = versioned(new, info, version);
        let deleting = !old["metadata"]["deletionTimestamp"].is_null();
        if deleting {
            let old_f: Vec<&Value> = old["metadata"]["finalizers"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(added) = new["metadata"]["finalizers"]
                .as_array()
                .and_then(|a| a.iter().find(|f| !old_f.contains(f)))
            {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    name,
                    vec![Cause {
                        field: "metadata.finalizers".into(),
                        reason: "FieldValueForbidden",
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{}]",
                            added.as_str().unwrap_or_default()
                        ),
                    }],
                ));
            }
        }
        if part == Part::Main || info.custom {
            self.validate_custom(
                info,
                version,
                &mut new,
                Some(&versioned(old.clone(), info, version)),
                opts,
                warnings,
            )?;
        }
        self.normalize(info, &mut new, Some(&old))?;
        if info.generation && spec_part(&new) != spec_part(&old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let new = versioned(new, info, info.storage_version());
        let mut unchanged = old.clone();
        meta_mut(&mut unchanged).remove("resourceVersion");
        if new == unchanged {
            // A no-op write keeps the resourceVersion and emits no event, as the API server does.
            return Ok(versioned(old, info, version));
        }
        if opts.dry_run {
            return Ok(versioned(new, info, version));
        }
        let finalizers_empty = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if deleting && finalizers_empty {
            let gone = self.remove(info, new);
            return Ok(versioned(gone, info, version));
        }
        let stored = self.commit(info, new, EventKind::Modified);
        if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
            self.crd_written(&stored);
        }
        Ok(versioned(stored, info, version))
    }

    /// Removes an object for good, with the follow-ups of its kind.
    fn remove(&mut self, info: &ResourceInfo, obj: Value) -> Value {
        let name = meta_str(&obj, "name").to_string();
        let gone = self.commit(info, obj, EventKind::Deleted);
        if info.group == "apiextensions.k8s.io"
            && info.plural == "customresourcedefinitions"
            && let Some(served) = self.registry.remove_custom(&name)
        {
            for obj in self.all_of(&served.key(), None) {
                self.commit(&served, obj, EventKind::Deleted);
            }
        }
        gone
    }

    /// `DELETE`: removes an object, or marks it for deletion while finalizers remain.
    #[allow(clippy::too_many_arguments)]
    pub fn delete(
        &mut self,
        info: &Arc<ResourceInfo>,
        version: &str,
        ns: &str,
        name: &str,
        propagation: Propagation,
        preconditions: (Option<&str>, Option<&str>),
        dry_run: bool,
    ) -> Result<Deleted, ApiError> {
        let old = self
            .stored(info, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if let Some(uid) = preconditions.0
            && uid != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        if let Some(rv) = preconditions.1
            && rv != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
        let mut new = old.clone();
        let is_namespace = info.group.is_empty() && info.plural == "namespaces";
        {
            let meta = meta_mut(&mut new);
            let mut finalizers: Vec<Value> = meta
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let extra = match propagation {
                Propagation::Foreground => Some("foregroundDeletion"),
                Propagation::Orphan => Some("orphan"),
                Propagation::Background => None,
            };
            if let Some(f) = extra
                && meta.get("deletionTimestamp").is_none_or(Value::is_null)
                && !finalizers.contains(&json!(f))
            {
                finalizers.push(json!(f));
            }
            if !finalizers.is_empty() {
                meta.insert("finalizers".into(), Value::Array(finalizers));
            }
        }
        let pending = is_namespace
            || new["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        if dry_run {
            return Ok(if pending {
                Deleted::Pending(versioned(new, info, version))
            } else {
                Deleted::Gone(versioned(old, info, version))
            });
        }
        if pending {
            if old["metadata"]["deletionTimestamp"].is_null() {
                let meta = meta_mut(&mut new);
                meta.insert("deletionTimestamp".into(), json!(now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if is_namespace {
                    new["status"]["phase"] = json!("Terminating");
                }
                let stored = self.commit(info, new, EventKind::Modified);
                return Ok(Deleted::Pending(versioned(stored, info, version)));
            }
            return Ok(Deleted::Pending(versioned(old, info, version)));
        }
        let gone = self.remove(info, old);
        Ok(Deleted::Gone(versioned(gone, info, version)))
    }

    /// The garbage collector's and namespace controller's write: replaces an object as-is
    /// (no conflict check); removes it when it is being deleted and no finalizer is left.
    pub fn controller_write(&mut self, gr: &GroupResource, obj: Value) {
        let Some(info) = self.registry.by_key(gr) else {
            return;
        };
        let deleting = !obj["metadata"]["deletionTimestamp"].is_null();
        let finalizers_empty = obj["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        let is_namespace = gr.group.is_empty() && gr.plural == "namespaces";
        if deleting && finalizers_empty && !is_namespace {
            self.remove(&info, obj);
        } else {
            self.commit(&info, obj, EventKind::Modified);
        }
    }

    /// Removes a namespace whose content is gone.
    pub fn finish_namespace(&mut self, ns: Value) {
        if let Some(info) = self.registry.find("", "v1", "namespaces") {
            self.remove(&info, ns);
        }
    }

    /// The garbage collector's delete (background propagation).
    pub fn controller_delete(&mut self, gr: &GroupResource, ns: &str, name: &str) {
        if let Some(info) = self.registry.by_key(gr) {
            let version = info.storage_version().to_string();
            let _ = self.delete(
                &info,
                &version,
                ns,
                name,
                Propagation::Background,
                (None, None),
                false,
            );
        }
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
