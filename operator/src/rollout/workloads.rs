//! The three workload kinds behind one interface: their pod template, and the calls kuvert
//! makes on them (a get, a merge patch of pod template annotations).

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PodTemplateSpec};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use kuvert_core::api::WorkloadKind;
use kuvert_core::rollout;
use serde::de::DeserializeOwned;

/// The field manager of kuvert's workload patches: what GitOps tools are told to ignore.
pub const FIELD_MANAGER: &str = "kuvert";

/// A workload by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl Workload {
    /// The workload `object` is.
    pub fn of<K: WorkloadResource>(object: &K) -> Workload {
        Workload {
            kind: K::KIND,
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        }
    }

    /// A reference for Events about it.
    pub fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("apps/v1".to_owned()),
            kind: Some(format!("{:?}", self.kind)),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            ..ObjectReference::default()
        }
    }
}

/// Deployment, StatefulSet and DaemonSet: each has a pod template.
pub trait WorkloadResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Its kind.
    const KIND: WorkloadKind;
    /// Its pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// Whether its rollout has finished ([`kuvert_core::rollout`]).
    fn rolled_out(&self) -> bool;
}

impl WorkloadResource for Deployment {
    const KIND: WorkloadKind = WorkloadKind::Deployment;
    fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.spec.template)
    }
    fn rolled_out(&self) -> bool {
        rollout::deployment_rolled_out(self)
    }
}

impl WorkloadResource for StatefulSet {
    const KIND: WorkloadKind = WorkloadKind::StatefulSet;
    fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.spec.template)
    }
    fn rolled_out(&self) -> bool {
        rollout::stateful_set_rolled_out(self)
    }
}

impl WorkloadResource for DaemonSet {
    const KIND: WorkloadKind = WorkloadKind::DaemonSet;
    fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.spec.template)
    }
    fn rolled_out(&self) -> bool {
        rollout::daemon_set_rolled_out(self)
    }
}

/// The pod template annotations of a workload.
pub fn template_annotations<K: WorkloadResource>(object: &K) -> BTreeMap<String, String> {
    object
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

/// Reads `workload`: its pod template annotations, and whether its rollout has finished
/// (`None`: it does not exist).
pub async fn get(
    client: &kube::Client,
    workload: &Workload,
) -> Result<Option<(BTreeMap<String, String>, bool)>, kube::Error> {
    async fn get<K: WorkloadResource>(
        client: &kube::Client,
        workload: &Workload,
    ) -> Result<Option<(BTreeMap<String, String>, bool)>, kube::Error> {
        let api: Api<K> = Api::namespaced(client.clone(), &workload.namespace);
        Ok(api
            .get_opt(&workload.name)
            .await?
            .map(|o| (template_annotations(&o), o.rolled_out())))
    }
    match workload.kind {
        WorkloadKind::Deployment => get::<Deployment>(client, workload).await,
        WorkloadKind::StatefulSet => get::<StatefulSet>(client, workload).await,
        WorkloadKind::DaemonSet => get::<DaemonSet>(client, workload).await,
    }
}

/// Applies the JSON merge patch `patch` to `workload` as field manager [`FIELD_MANAGER`].
pub async fn patch(
    client: &kube::Client,
    workload: &Workload,
    patch: &serde_json::Value,
) -> Result<(), kube::Error> {
    async fn send<K: WorkloadResource>(
        client: &kube::Client,
        workload: &Workload,
        patch: &serde_json::Value,
    ) -> Result<(), kube::Error> {
        let api: Api<K> = Api::namespaced(client.clone(), &workload.namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&workload.name, &params, &Patch::Merge(patch))
            .await
            .map(drop)
    }
    match workload.kind {
        WorkloadKind::Deployment => send::<Deployment>(client, workload, patch).await,
        WorkloadKind::StatefulSet => send::<StatefulSet>(client, workload, patch).await,
        WorkloadKind::DaemonSet => send::<DaemonSet>(client, workload, patch).await,
    }
}
