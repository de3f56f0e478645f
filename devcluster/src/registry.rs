//! Which resources are served: the built-in kinds and those of every CustomResourceDefinition.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::openapi::{self, Published, PublishedVersion};
use crate::schema::CompiledSchema;

/// A resource type the server serves, e.g. `apps/v1 deployments`.
#[derive(Debug, Clone)]
pub(crate) struct ResourceInfo {
    pub group: String,
    /// Served versions; the first is the storage version.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource (status writes and spec writes are separated).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    pub special: Special,
    /// Per-version structural schema (custom resources only).
    pub schemas: BTreeMap<String, Arc<CompiledSchema>>,
    /// Per-version `additionalPrinterColumns` (custom resources only).
    pub printer_columns: BTreeMap<String, Vec<Value>>,
    /// Per served version, what `/openapi/v3` publishes of it (custom resources only).
    pub openapi: BTreeMap<String, PublishedVersion>,
    /// Set for kinds served because a CRD exists.
    pub custom: bool,
}

/// Resources whose verbs are not plain storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// `tokenreviews`: create only, nothing stored.
    TokenReview,
    /// `authorization.k8s.io` access reviews: create only, always allowed (no authorization).
    AccessReview,
}

impl ResourceInfo {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn storage_version(&self) -> &str {
        &self.versions[0]
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        match self.special {
            Special::TokenReview | Special::AccessReview => vec!["create"],
            Special::None => vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
        }
    }

    /// Whether this is `events.k8s.io` Event, a view over the core/v1 Events storage.
    pub fn is_events_api(&self) -> bool {
        self.group == "events.k8s.io" && self.plural == "events"
    }

    /// Where the objects live: `events.k8s.io` Events share the core/v1 Events storage, as on a
    /// real server; every other resource has its own.
    pub fn key(&self) -> GroupResource {
        if self.is_events_api() {
            return GroupResource {
                group: String::new(),
                plural: "events".into(),
            };
        }
        GroupResource {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// Identifies stored objects of one resource, whatever version they are read through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupResource {
    pub group: String,
    pub plural: String,
}

/// The served resources.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    builtin: Vec<Arc<ResourceInfo>>,
    /// Custom resources by CRD name (`plural.group`).
    custom: BTreeMap<String, Arc<ResourceInfo>>,
    /// The `/openapi/v3` documents, built when first asked for after a change.
    openapi: OnceLock<Arc<Published>>,
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
) -> Arc<ResourceInfo> {
    Arc::new(ResourceInfo {
        group: group.into(),
        versions: vec![version.into()],
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        status_subresource: status,
        generation,
        special: Special::None,
        schemas: BTreeMap::new(),
        printer_columns: BTreeMap::new(),
        openapi: BTreeMap::new(),
        custom: false,
    })
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut token_review = (*builtin(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            false,
            &[],
            false,
            false,
        ))
        .clone();
        token_review.special = Special::TokenReview;
        let review = |plural: &str, kind: &str, namespaced: bool| {
            let mut r = (*builtin(
                "authorization.k8s.io",
                "v1",
                plural,
                kind,
                namespaced,
                &[],
                false,
                false,
            ))
            .clone();
            r.special = Special::AccessReview;
            Arc::new(r)
        };
        let builtin = vec![
            builtin(
                "",
                "v1",
                "namespaces",
                "Namespace",
                false,
                &["ns"],
                true,
                false,
            ),
            builtin("", "v1", "secrets", "Secret", true, &[], false, false),
            builtin(
                "",
                "v1",
                "configmaps",
                "ConfigMap",
                true,
                &["cm"],
                false,
                false,
            ),
            builtin(
                "",
                "v1",
                "serviceaccounts",
                "ServiceAccount",
                true,
                &["sa"],
                false,
                false,
            ),
            builtin("", "v1", "events", "Event", true, &["ev"], false, false),
            builtin("", "v1", "pods", "Pod", true, &["po"], true, true),
            builtin("", "v1", "services", "Service", true, &["svc"], true, false),
            builtin(
                "apps",
                "v1",
                "deployments",
                "Deployment",
                true,
                &["deploy"],
                true,
                true,
            ),
            builtin(
                "apps",
                "v1",
                "statefulsets",
                "StatefulSet",
                true,
                &["sts"],
                true,
                true,
            ),
            builtin(
                "apps",
                "v1",
                "daemonsets",
                "DaemonSet",
                true,
                &["ds"],
                true,
                true,
            ),
            builtin(
                "apps",
                "v1",
                "replicasets",
                "ReplicaSet",
                true,
                &["rs"],
                true,
                true,
            ),
            builtin(
                "coordination.k8s.io",
                "v1",
                "leases",
                "Lease",
                true,
                &[],
                false,
                false,
            ),
            builtin(
                "events.k8s.io",
                "v1",
                "events",
                "Event",
                true,
                &["ev"],
                false,
                false,
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd", "crds"],
                true,
                true,
            ),
            Arc::new(token_review),
            review("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
            review("subjectaccessreviews", "SubjectAccessReview", false),
            review(
                "localsubjectaccessreviews",
                "LocalSubjectAccessReview",
                true,
            ),
            review("selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
        ];
        // `kubectl get all` expands the `all` category, as on a real server.
        let all = [
            "pods",
            "services",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
        ];
        let builtin = builtin
            .into_iter()
            .map(|r| {
                if all.contains(&r.plural.as_str()) {
                    let mut r = (*r).clone();
                    r.categories = vec!["all".into()];
                    Arc::new(r)
                } else {
                    r
                }
            })
            .collect();
        Self {
            builtin,
            custom: BTreeMap::new(),
            openapi: OnceLock::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.builtin.iter().chain(self.custom.values())
    }

    /// Finds the resource served at `group/version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.all()
            .find(|r| {
                r.group == group && r.plural == plural && r.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    pub fn by_key(&self, key: &GroupResource) -> Option<Arc<ResourceInfo>> {
        self.all()
            .find(|r| r.group == key.group && r.plural == key.plural)
            .cloned()
    }

    /// Group name → served versions (storage/preferred version first), in a stable order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            if r.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    for v in &r.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => out.push((r.group.clone(), r.versions.clone())),
            }
        }
        out
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.all()
            .filter(|r| r.group == group && r.versions.iter().any(|v| v == version))
            .cloned()
            .collect()
    }

    pub fn set_custom(&mut self, crd_name: &str, info: Arc<ResourceInfo>) {
        self.custom.insert(crd_name.to_string(), info);
        self.openapi = OnceLock::new();
    }

    pub fn remove_custom(&mut self, crd_name: &str) -> Option<Arc<ResourceInfo>> {
        self.openapi = OnceLock::new();
        self.custom.remove(crd_name)
    }

    /// The `/openapi/v3` documents of what is served now.
    pub fn openapi(&self) -> Arc<Published> {
        self.openapi
            .get_or_init(|| Arc::new(openapi::publish(self)))
            .clone()
    }
}

/// Reads a CRD object into the resource it serves. Errors name the offending field.
pub(crate) fn from_crd(crd: &Value) -> Result<ResourceInfo, String> {
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .ok_or("spec.group: Required value")?
        .to_string();
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or("spec.names.plural: Required value")?
        .to_string();
    let kind = names["kind"]
        .as_str()
        .ok_or("spec.names.kind: Required value")?
        .to_string();
    let list_kind = names["listKind"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let scope = spec["scope"].as_str().unwrap_or("Namespaced");
    if scope != "Namespaced" && scope != "Cluster" {
        return Err(format!(
            "spec.scope: Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""
        ));
    }
    let versions = spec["versions"]
        .as_array()
        .ok_or("spec.versions: Required value")?;
    if versions.is_empty() {
        return Err(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    let mut served = Vec::new();
    let mut status = false;
    let mut schemas = BTreeMap::new();
    let mut printer_columns = BTreeMap::new();
    let mut published = BTreeMap::new();
    let mut storage = None;
    for v in versions {
        let name = v["name"]
            .as_str()
            .ok_or("spec.versions[].name: Required value")?
            .to_string();
        if v["storage"].as_bool() == Some(true) {
            if storage.is_some() {
                return Err("spec.versions: Invalid value: must have exactly one version marked as storage version".into());
            }
            storage = Some(name.clone());
        }
        if v["served"].as_bool() != Some(false) {
            published.insert(name.clone(), PublishedVersion::read(&group, &kind, v));
            served.push(name.clone());
        }
        if v["subresources"]["status"].is_object() {
            status = true;
        }
        if let Some(s) = v["schema"].get("openAPIV3Schema") {
            let compiled = CompiledSchema::compile(s)
                .map_err(|e| format!("spec.versions[{name}].schema.openAPIV3Schema: {e}"))?;
            schemas.insert(name.clone(), Arc::new(compiled));
        }
        if let Some(cols) = v["additionalPrinterColumns"].as_array() {
            printer_columns.insert(name.clone(), cols.clone());
        }
    }
    let storage = storage.ok_or(
        "spec.versions: Invalid value: must have exactly one version marked as storage version",
    )?;
    // The storage version goes first when served so that `storage_version()` names it.
    served.sort_by_key(|v| *v != storage);
    if served.is_empty() {
        return Err("spec.versions: Invalid value: at least one version must be served".into());
    }
    Ok(ResourceInfo {
        group,
        versions: served,
        plural,
        singular,
        kind,
        list_kind,
        namespaced: scope == "Namespaced",
        short_names: strs(&names["shortNames"]),
        categories: strs(&names["categories"]),
        status_subresource: status,
        generation: true,
        special: Special::None,
        schemas,
        printer_columns,
        openapi: published,
        custom: true,
    })
}
