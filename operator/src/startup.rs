//! Before the controllers start: is every API they watch served, and may kuvert list it?
//!
//! kube-runtime's watchers retry a failed list forever and report nothing, so a missing CRD or
//! a missing RBAC rule would leave kuvert unready without a word. Each API is listed once here
//! (one object at most) and what fails is logged at error level, naming the resource and the
//! remedy, until it works.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use kuvert_core::api::{
    ClusterExternalSecret, ClusterSecretStore, ExternalSecret, PushSecret, SecretStore,
};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// How often a failing check is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How often an unchanged failure is logged again.
const REPEAT: Duration = Duration::from_secs(60);

/// Why an API kuvert needs cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable {
    /// `plural.group`, as RBAC rules and CRDs name it.
    pub resource: String,
    /// The API server's status code (0 when it did not answer).
    pub code: u16,
    /// What it means and what to do.
    pub message: String,
}

/// Waits until every API the controllers of `kuvert run` watch can be listed: ExternalSecrets,
/// SecretStores, PushSecrets, ClusterSecretStores when watched, and Secrets — cluster-wide, or in
/// `namespace`; cluster-wide also ClusterExternalSecrets and namespaces.
pub async fn wait_for_apis(client: &Client, namespace: Option<&str>, cluster_stores: bool) {
    let mut reported: Option<(String, Instant)> = None;
    loop {
        let Err(unusable) = check(client, namespace, cluster_stores).await else {
            if reported.is_some() {
                tracing::info!("every API kuvert watches answers now; starting");
            }
            return;
        };
        let line = format!("{}: {}", unusable.resource, unusable.message);
        let repeat = reported
            .as_ref()
            .is_none_or(|(last, at)| *last != line || at.elapsed() >= REPEAT);
        if repeat {
            tracing::error!(
                resource = %unusable.resource,
                code = unusable.code,
                "cannot start: {}",
                unusable.message
            );
            reported = Some((line, Instant::now()));
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The first API that cannot be listed.
pub async fn check(
    client: &Client,
    namespace: Option<&str>,
    cluster_stores: bool,
) -> Result<(), Unusable> {
    probe::<ExternalSecret>(scoped(client, namespace), false).await?;
    probe::<SecretStore>(scoped(client, namespace), false).await?;
    probe::<PushSecret>(scoped(client, namespace), false).await?;
    if cluster_stores {
        probe::<ClusterSecretStore>(Api::all(client.clone()), false).await?;
        probe::<Namespace>(Api::all(client.clone()), true).await?;
    }
    probe::<Secret>(scoped(client, namespace), true).await?;
    if namespace.is_none() {
        probe::<ClusterExternalSecret>(Api::all(client.clone()), false).await?;
        probe::<Namespace>(Api::all(client.clone()), true).await?;
    }
    // Followed (metadata only) so that a changed credential or template source wakes its users.
    probe::<ConfigMap>(scoped(client, namespace), true).await?;
    probe::<ServiceAccount>(scoped(client, namespace), true).await
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Lists at most one `K` (only metadata when `metadata_only`, as the Secret watch does).
async fn probe<K>(api: Api<K>, metadata_only: bool) -> Result<(), Unusable>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = ListParams::default().limit(1);
    let listed = if metadata_only {
        api.list_metadata(&params).await.map(drop)
    } else {
        api.list(&params).await.map(drop)
    };
    listed.map_err(|e| unusable::<K>(&e))
}

/// Says what a failed list of `K` means for an operator and how to fix it.
fn unusable<K: Resource<DynamicType = ()>>(error: &kube::Error) -> Unusable {
    let group = K::group(&());
    let plural = K::plural(&());
    let resource = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let (code, message) = match error {
        kube::Error::Api(status) if status.code == 404 && !group.is_empty() => (
            404,
            format!(
                "the CRD {resource} is not installed: apply kuvert's CRDs \
                 (kubectl apply --server-side -f crds/, or the Helm chart with crds.install=true)"
            ),
        ),
        kube::Error::Api(status) if status.code == 403 => (
            403,
            format!(
                "kuvert's ServiceAccount may not list {resource}; grant it the rules of \
                 charts/kuvert/files/rbac/ (the API server said: {})",
                status.message
            ),
        ),
        kube::Error::Api(status) => (
            status.code,
            format!("listing {resource} failed: {}", status.message),
        ),
        other => (0, format!("listing {resource} failed: {other}")),
    };
    Unusable {
        resource,
        code,
        message,
    }
}
