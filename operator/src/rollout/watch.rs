//! The label-selected watch of workloads asking to be restarted (`kuvert.io/reload: "true"`):
//! only those objects are listed and streamed, so the rest of the cluster's workloads cost
//! nothing. Nothing of them is kept but the Secrets each follows and its hash annotations.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kuvert_core::api::RELOAD_LABEL;
use kuvert_core::rollout::followed;

use super::Rollouts;
use super::workloads::{Workload, WorkloadResource, template_annotations};

/// Watches the labelled Deployments, StatefulSets and DaemonSets (of `namespace`, else of
/// every namespace) until the process ends.
pub async fn labelled(rollouts: Arc<Rollouts>, client: kube::Client, namespace: Option<String>) {
    tokio::join!(
        kind::<Deployment>(&rollouts, &client, namespace.as_deref()),
        kind::<StatefulSet>(&rollouts, &client, namespace.as_deref()),
        kind::<DaemonSet>(&rollouts, &client, namespace.as_deref()),
    );
}

async fn kind<K: WorkloadResource>(
    rollouts: &Rollouts,
    client: &kube::Client,
    namespace: Option<&str>,
) {
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config = watcher::Config::default()
        .labels(&format!("{RELOAD_LABEL}=true"))
        .any_semantic();
    watcher(api, config)
        .default_backoff()
        .for_each(|event| {
            match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    seen(rollouts, &object);
                }
                Ok(watcher::Event::Delete(object)) => {
                    rollouts.labelled_gone(&Workload::of(&object));
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => tracing::warn!(kind = ?K::KIND, error = %e, "watching labelled workloads failed"),
            }
            futures::future::ready(())
        })
        .await;
}

fn seen<K: WorkloadResource>(rollouts: &Rollouts, object: &K) {
    let secrets = object
        .template()
        .map(|t| followed(t, object.meta().annotations.as_ref()))
        .unwrap_or_default();
    rollouts.labelled_seen(
        Workload::of(object),
        secrets,
        &template_annotations(object),
        object.rolled_out(),
    );
}
