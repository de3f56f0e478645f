//! Background controllers: the garbage collector (owner references, foreground and orphan
//! deletion) and the namespace controller (deleting a namespace deletes its content).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::meta::{meta_mut, meta_str};
use crate::registry::GroupResource;
use crate::server::Shared;
use crate::store::{State, namespaced_objects};

/// Runs until shutdown, doing a pass whenever a write may have released something.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shared.gc.notified() => {}
        }
        let mut state = shared.state.lock().expect("state");
        // Each pass may release more (a deleted owner's dependents, then theirs); bounded.
        for _ in 0..32 {
            if !pass(&mut state) {
                break;
            }
        }
    }
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.contains(&json!(f)))
}

fn deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

fn without_finalizer(mut obj: Value, f: &str) -> Value {
    if let Some(Value::Array(a)) = meta_mut(&mut obj).get_mut("finalizers") {
        a.retain(|x| x != f);
    }
    obj
}

/// One sweep; returns whether it changed anything.
fn pass(state: &mut State) -> bool {
    let mut changed = false;
    // Only objects that own nothing, are owned by nothing and are not being deleted are skipped;
    // the others are cloned so that the state can be written while they are examined.
    let mut all: Vec<(GroupResource, Value)> = Vec::new();
    for gr in state.resources_with_objects() {
        all.extend(
            state
                .relevant_to_gc(&gr)
                .into_iter()
                .map(|o| (gr.clone(), o)),
        );
    }
    let mut dependents: HashMap<String, Vec<(GroupResource, Value)>> = HashMap::new();
    for (gr, obj) in &all {
        for r in obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(uid) = r["uid"].as_str() {
                dependents
                    .entry(uid.to_string())
                    .or_default()
                    .push((gr.clone(), obj.clone()));
            }
        }
    }
    for (gr, obj) in &all {
        let uid = meta_str(obj, "uid").to_string();
        let is_namespace = gr.group.is_empty() && gr.plural == "namespaces";
        if deleting(obj) && is_namespace {
            let name = meta_str(obj, "name").to_string();
            let content = namespaced_objects(state, &name);
            if content.is_empty() {
                if obj["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
                {
                    state.finish_namespace(obj.clone());
                    changed = true;
                }
            } else {
                for (cgr, c) in content.iter().filter(|(_, c)| !deleting(c)) {
                    state.controller_delete(cgr, &name, meta_str(c, "name"));
                    changed = true;
                }
            }
            continue;
        }
        if deleting(obj) && has_finalizer(obj, "orphan") {
            for (dgr, d) in dependents.get(&uid).into_iter().flatten() {
                let mut d = d.clone();
                if let Some(Value::Array(refs)) = meta_mut(&mut d).get_mut("ownerReferences") {
                    refs.retain(|r| r["uid"] != uid.as_str());
                }
                state.controller_write(dgr, d);
            }
            state.controller_write(gr, without_finalizer(obj.clone(), "orphan"));
            return true;
        }
        if deleting(obj) && has_finalizer(obj, "foregroundDeletion") {
            let deps = dependents.get(&uid).cloned().unwrap_or_default();
            if deps.is_empty() {
                state.controller_write(gr, without_finalizer(obj.clone(), "foregroundDeletion"));
                return true;
            }
            for (dgr, d) in deps.iter().filter(|(_, d)| !deleting(d)) {
                state.controller_delete(dgr, meta_str(d, "namespace"), meta_str(d, "name"));
                changed = true;
            }
        }
        let refs = obj["metadata"]["ownerReferences"].as_array();
        if let Some(refs) = refs
            && !refs.is_empty()
            && !deleting(obj)
            && refs
                .iter()
                .all(|r| !r["uid"].as_str().is_some_and(|u| state.uid_exists(u)))
        {
            state.controller_delete(gr, meta_str(obj, "namespace"), meta_str(obj, "name"));
            changed = true;
        }
    }
    changed
}
