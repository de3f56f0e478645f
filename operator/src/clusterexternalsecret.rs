//! The ClusterExternalSecret controller: one ExternalSecret stamped into every selected
//! namespace and kept in step.
//!
//! Pipeline: observe (namespaces and the stamped ExternalSecrets, from this controller's
//! caches) → plan ([`kuvert_core::stamping::plan`], pure) → apply (create, update, delete) →
//! report (status, and an Event when `Ready` changes).
//!
//! Watch-driven: a namespace created, relabelled or deleted re-plans every ClusterExternalSecret
//! at once, and a stamped ExternalSecret edited or deleted by hand re-plans its owner, which
//! puts it back. `refreshTime` is only a resync period. Deleting a ClusterExternalSecret deletes
//! its ExternalSecrets through their owner references (the garbage collector), so no finalizer.
//!
//! Cluster-wide installs only: a namespace-scoped install's Role can read neither
//! ClusterExternalSecrets nor namespaces.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ClusterExternalSecret, ClusterExternalSecretStatus, ExternalSecret};
use kuvert_core::stamping::{self, NamespaceFailure, NamespaceView, STAMPED_BY_LABEL, Step};

use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::externalsecret::KubeCall;
use crate::externalsecret::report::write_status;
use crate::metrics;

/// What the controller shares: the context and its two caches.
pub struct State {
    /// The operator-wide dependencies.
    pub ctx: Arc<Context>,
    /// Every namespace, metadata only.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The ExternalSecrets labelled [`STAMPED_BY_LABEL`], in every namespace.
    pub stamped: Store<ExternalSecret>,
    /// ExternalSecrets this process created that the cache has not shown yet, by (owner uid,
    /// namespace, name): a reconcile in that window (a namespace event) plans the create again,
    /// and its 409 is ours, not a foreign ExternalSecret's.
    pub created: Mutex<HashSet<(String, String, String)>>,
}

impl State {
    /// [`State::created`], locked (a panic elsewhere while holding it leaves a usable set).
    fn created(&self) -> MutexGuard<'_, HashSet<(String, String, String)>> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a reconcile failed (a refused create or update is not one: it is a failed namespace in
/// the status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Deleting a stamped ExternalSecret, updating one that changed meanwhile, or writing the
    /// status failed.
    #[error(transparent)]
    Kube(#[from] KubeCall),
}

impl Error {
    /// Stable category for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
        }
    }
}

/// Builds the controller: ClusterExternalSecrets; namespaces (metadata only), each change
/// re-planning every ClusterExternalSecret; stamped ExternalSecrets, each mapped to the
/// ClusterExternalSecret its label names.
pub fn controller(ctx: Arc<Context>) -> (Controller<ClusterExternalSecret>, Arc<State>) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<ClusterExternalSecret>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let all = controller.store();
    let (namespaces, ns_writer) = reflector::store();
    let namespace_changes = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(ns_writer)
    .touched_objects();
    let (stamped, es_writer) = reflector::store();
    let stamped_changes = watcher(
        Api::<ExternalSecret>::all(client),
        watcher::Config::default()
            .labels(STAMPED_BY_LABEL)
            .any_semantic(),
    )
    .default_backoff()
    .modify(|es| es.metadata.managed_fields = None)
    .reflect(es_writer)
    .touched_objects();
    let controller = controller
        .watches_stream(namespace_changes, move |_: PartialObjectMeta<Namespace>| {
            all.state()
                .iter()
                .map(|ces| ObjectRef::new(&ces.name_any()))
                .collect::<Vec<_>>()
        })
        .watches_stream(stamped_changes, |es: ExternalSecret| stamper(&es));
    let state = Arc::new(State {
        ctx,
        namespaces,
        stamped,
        created: Default::default(),
    });
    (controller, state)
}

/// The ClusterExternalSecret a stamped ExternalSecret belongs to: its controller owner reference,
/// else its stamp label. The owner reference comes first because an ExternalSecret whose label
/// was removed by hand leaves the label-selected watch as a deletion that no longer carries the
/// label, and its owner must still re-plan to put the label back.
fn stamper(es: &ExternalSecret) -> Option<ObjectRef<ClusterExternalSecret>> {
    es.owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == ClusterExternalSecret::kind(&()))
        .map(|o| o.name.as_str())
        .or_else(|| es.labels().get(STAMPED_BY_LABEL).map(String::as_str))
        .map(ObjectRef::new)
}

/// Runs the controller until shutdown.
pub async fn run(
    controller: Controller<ClusterExternalSecret>,
    state: Arc<State>,
    concurrency: u16,
) {
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, state)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The `kind` label of this controller's metrics.
const KIND: &str = "ClusterExternalSecret";

/// One reconcile, counted in the queue and sync metrics.
async fn reconcile(ces: Arc<ClusterExternalSecret>, state: Arc<State>) -> Result<Action, Error> {
    let _queued = metrics::InQueue::enter(KIND);
    let key = ObjectKey::of(ces.as_ref());
    state.ctx.queue.started(KIND, &key);
    let started = Instant::now();
    let outcome = provision(&ces, &state).await;
    metrics::sync(
        KIND,
        started.elapsed(),
        outcome.as_ref().err().map(Error::reason),
    );
    outcome.map(|after| state.ctx.queue.next(&key, after))
}

/// observe → plan → apply → report; returns when to look again (`None`: on a change).
async fn provision(ces: &ClusterExternalSecret, state: &State) -> Result<Option<Duration>, Error> {
    if ces.meta().deletion_timestamp.is_some() {
        // The garbage collector deletes the stamped ExternalSecrets.
        return Ok(None);
    }
    // A plan from a cache still listing would see namespaces missing (and delete what is
    // stamped there) or stamped ExternalSecrets missing (and report foreign ones): after a
    // restart, nothing is written until both have listed.
    crate::externalsecret::stores::wait_until_ready(&state.namespaces).await;
    crate::externalsecret::stores::wait_until_ready(&state.stamped).await;
    let (namespaces, labelled) = observe(ces, state);
    let uid = ces.uid().unwrap_or_default();
    {
        let mut created = state.created();
        for es in labelled.iter().filter(|es| stamping::stamped_by(es, ces)) {
            created.remove(&(
                uid.clone(),
                es.namespace().unwrap_or_default(),
                es.name_any(),
            ));
        }
    }
    let plan = stamping::plan(ces, &namespaces, &labelled);
    let (mut provisioned, mut failed) = (plan.in_step, plan.failed);
    for step in plan.steps {
        match apply(state, ces, step).await? {
            Applied::Provisioned(namespace) => provisioned.push(namespace),
            Applied::Failed(namespace, failure) => failed.push((namespace, failure)),
            Applied::Deleted => {}
        }
    }
    // A namespace whose ExternalSecret was just created, or is not in the cache, is not Ready.
    let not_ready = provisioned
        .iter()
        .filter(|namespace| {
            !labelled.iter().any(|es| {
                es.namespace().as_deref() == Some(namespace.as_str())
                    && es.name_any() == stamping::external_secret_name(ces)
                    && stamping::stamped_by(es, ces)
                    && stamping::is_ready(es)
            })
        })
        .cloned()
        .collect();
    let status = stamping::status(ces, provisioned, failed, not_ready, (state.ctx.clock)());
    report(&state.ctx, ces, status).await?;
    state.ctx.backoff.reset(&ObjectKey::of(ces));
    Ok(Some(stamping::refresh(ces)))
}

/// The namespaces and the ExternalSecrets labelled as stamped by a ClusterExternalSecret of
/// this name, from the caches.
fn observe(
    ces: &ClusterExternalSecret,
    state: &State,
) -> (Vec<NamespaceView>, Vec<ExternalSecret>) {
    let namespaces = state
        .namespaces
        .state()
        .iter()
        .map(|ns| NamespaceView {
            name: ns.name_any(),
            labels: ns.labels().clone(),
            terminating: ns.meta().deletion_timestamp.is_some(),
        })
        .collect();
    let name = ces.name_any();
    let labelled = state
        .stamped
        .state()
        .iter()
        .filter(|es| es.labels().get(STAMPED_BY_LABEL) == Some(&name))
        .map(|es| es.as_ref().clone())
        .collect();
    (namespaces, labelled)
}

/// The outcome of one step.
enum Applied {
    Provisioned(String),
    Failed(String, NamespaceFailure),
    Deleted,
}

/// Makes one write. A create answered 409 finds an ExternalSecret of the name that is not
/// ours (ours would be in the cache); a refused create or update fails its namespace. An update
/// that lost a race (409), and any failed delete, fail the reconcile, to be retried.
async fn apply(
    state: &State,
    ces: &ClusterExternalSecret,
    step: Step,
) -> Result<Applied, KubeCall> {
    let ctx = &state.ctx;
    let uid = ces.uid().unwrap_or_default();
    match step {
        Step::Create(es) => {
            let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
            let key = (uid.clone(), namespace.clone(), name.clone());
            let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.create(&PostParams::default(), &es).await {
                Ok(_) => {
                    tracing::info!(%namespace, %name, "stamped ExternalSecret created");
                    state.created().insert(key);
                    Ok(Applied::Provisioned(namespace))
                }
                Err(kube::Error::Api(status))
                    if status.code == 409 && state.created().contains(&key) =>
                {
                    Ok(Applied::Provisioned(namespace))
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    reclaim(&api, ces, &es, namespace, name).await
                }
                Err(kube::Error::Api(status)) => Ok(Applied::Failed(
                    namespace,
                    NamespaceFailure::Refused {
                        action: "creating",
                        name,
                        message: status.message,
                    },
                )),
                Err(e) => Err(KubeCall::doing(format!(
                    "creating ExternalSecret {namespace}/{name}"
                ))(e)),
            }
        }
        Step::Update(es) => {
            let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
            let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.replace(&name, &PostParams::default(), &es).await {
                Ok(_) => {
                    tracing::info!(%namespace, %name, "stamped ExternalSecret updated to the spec");
                    Ok(Applied::Provisioned(namespace))
                }
                Err(kube::Error::Api(status)) if status.code != 409 && status.code != 404 => {
                    Ok(Applied::Failed(
                        namespace,
                        NamespaceFailure::Refused {
                            action: "updating",
                            name,
                            message: status.message,
                        },
                    ))
                }
                Err(e) => Err(KubeCall::doing(format!(
                    "updating ExternalSecret {namespace}/{name}"
                ))(e)),
            }
        }
        Step::Delete { namespace, name } => {
            let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(%namespace, %name, "stamped ExternalSecret deleted");
                    state.created().remove(&(uid, namespace, name));
                    Ok(Applied::Deleted)
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Applied::Deleted),
                Err(e) => Err(KubeCall::doing(format!(
                    "deleting ExternalSecret {namespace}/{name}"
                ))(e)),
            }
        }
    }
}

/// A create answered 409: the ExternalSecret of that name is not in the stamped cache. If it is
/// ours all the same (its stamp label was removed by hand), its labels are put back; the next
/// plan, with it back in the cache, restores the rest. The patch tests that the controller owner
/// reference carries this ClusterExternalSecret's uid, so anything else fails the test and is
/// left untouched (kuvert has no `get` on ExternalSecrets: it reads them from its watches).
async fn reclaim(
    api: &Api<ExternalSecret>,
    ces: &ClusterExternalSecret,
    desired: &ExternalSecret,
    namespace: String,
    name: String,
) -> Result<Applied, KubeCall> {
    let patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": ces.uid()},
        {"op": "test", "path": "/metadata/ownerReferences/0/controller", "value": true},
        {"op": "add", "path": "/metadata/labels", "value": desired.labels()},
    ]))
    .expect("a valid JSON patch");
    match api
        .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(_) => {
            tracing::info!(%namespace, %name, "stamped ExternalSecret relabelled");
            Ok(Applied::Provisioned(namespace))
        }
        // The test failed (422), or a foreign object without owner references at all.
        Err(kube::Error::Api(status)) if status.code == 422 => Ok(Applied::Failed(
            namespace,
            NamespaceFailure::NotOwned { name },
        )),
        Err(e) => Err(KubeCall::doing(format!(
            "relabelling ExternalSecret {namespace}/{name}"
        ))(e)),
    }
}

/// Writes the status when it changed, and an Event when `Ready` changed status or reason.
async fn report(
    ctx: &Context,
    ces: &ClusterExternalSecret,
    status: ClusterExternalSecretStatus,
) -> Result<(), KubeCall> {
    let previous = ces.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let name = ces.name_any();
    let api: Api<ClusterExternalSecret> = Api::all(ctx.client.clone());
    // A merge patch of the whole status: lists are replaced, and emptied lists (skipped when
    // serialized) are cleared explicitly.
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        for list in [
            "failedNamespaces",
            "provisionedNamespaces",
            "notReadyNamespaces",
        ] {
            fields.entry(list).or_insert(serde_json::Value::Null);
        }
    }
    let conditions = (&previous.conditions[..], &status.conditions[..]);
    write_status(ctx, &api, ces, body, conditions, "Provision")
        .await
        .map_err(KubeCall::doing(format!(
            "writing status of ClusterExternalSecret {name}"
        )))
}

/// Logs the failure and retries with the per-object backoff.
fn error_policy(ces: Arc<ClusterExternalSecret>, error: &Error, state: Arc<State>) -> Action {
    tracing::warn!(
        name = ces.name_any(),
        reason = error.reason(),
        error = %error,
        "provisioning failed"
    );
    Action::requeue(
        state
            .ctx
            .backoff
            .next(&ObjectKey::of(ces.as_ref()))
            .min(Duration::from_secs(300)),
    )
}
