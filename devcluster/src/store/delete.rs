//! Deleting objects: finalizers, propagation policies, and the controllers' writes.

use std::sync::Arc;

use serde_json::{Value, json};

use super::versioned;
use super::{Deleted, EventKind, Propagation, State};
use crate::error::ApiError;
use crate::meta::{meta_mut, meta_str, now};
use crate::registry::{GroupResource, ResourceInfo};

impl State {
    /// Removes an object for good, with the follow-ups of its kind.
    pub(super) fn remove(&mut self, info: &ResourceInfo, obj: Value) -> Value {
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
