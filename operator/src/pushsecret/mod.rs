//! The PushSecret controller: a Secret's keys written into stores, kept in step, and taken
//! back by `deletionPolicy: Delete`.
//!
//! Pipeline: observe (the source Secret, read through the reference index so that its next
//! change wakes this PushSecret) → decide ([`kuvert_core::push`], pure: what goes where, what
//! to take back) → apply (each store's `push` / `delete`; providers refuse what kuvert does not
//! own with `Conflict`) → report (status, an Event when `Ready` changes).
//!
//! Triggers: a change of the spec, annotations (the force-sync one) or finalizers — never its
//! own status writes —, a change of the source Secret, and `refreshInterval`. Every reconcile
//! pushes everything (providers skip writes that change nothing). With `deletionPolicy:
//! Delete` the PushSecret carries [`FINALIZER`] until what it pushed is deleted. A generator's
//! values are generated once and kept ([`generated`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{
    PushSecret, PushSecretStatus, PushSecretStoreRef, PushSecretUpdatePolicy, SecretStoreKind,
    SecretStoreRef,
};
use kuvert_core::engine::fetch::{FetchedTemplateSource, template_sources};
use kuvert_core::engine::{ResolvedStore, StoreResolver};
use kuvert_core::provider::{KubeAccess, KubeReadError, ProviderError, PushRequest};
use kuvert_core::push::{self, Desired, FINALIZER, Reason, Removal, Synced};
use kuvert_core::store_key::StoreKey;

use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::externalsecret::KubeCall;
use crate::externalsecret::report::write_status;
use crate::externalsecret::stores::{Resolver, StoreCaches};
use crate::metrics;
use crate::references::{Recording, RefKind, User};

mod generated;

/// What the controller shares.
pub struct State {
    /// The operator-wide dependencies.
    pub ctx: Arc<Context>,
    /// The store caches (the ExternalSecret controller's).
    pub caches: StoreCaches,
}

/// Why a reconcile failed. Failures of the push itself are in the status first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the status or the finalizer failed.
    #[error(transparent)]
    Kube(#[from] KubeCall),
    /// The push failed; the status says how.
    #[error("{reason}: {message}")]
    Push {
        /// The condition reason.
        reason: &'static str,
        /// The condition message.
        message: String,
        /// Whether only a change (of the spec, a store, a remote secret) can help.
        waits_for_change: bool,
    },
}

impl Error {
    /// Stable category for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Push { reason, .. } => reason,
        }
    }
}

/// The PushSecret's fields whose change means "push again": generation (the spec),
/// annotations (force-sync), finalizers and deletion. Its status is not among them.
fn trigger(ps: &PushSecret) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    predicates::generation(ps).hash(&mut hasher);
    predicates::annotations(ps).hash(&mut hasher);
    ps.finalizers().hash(&mut hasher);
    ps.meta().deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Builds the controller over the PushSecrets of `namespace` (or all); `kuvert run` adds the
/// wakes of changed source Secrets ([`crate::wakes`]). The PushSecrets' watch starts once the
/// store caches have listed, so that a restart does not find every store missing.
pub fn controller(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    caches: &StoreCaches,
) -> (Controller<PushSecret>, Store<PushSecret>) {
    let api: Api<PushSecret> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let (reader, writer) = reflector::store();
    let caches = caches.clone();
    let listed = async move { caches.wait_until_ready().await };
    let watch = watcher(api, watcher::Config::default().any_semantic());
    let stream = futures::stream::once(listed.map(move |()| watch))
        .flatten()
        .default_backoff()
        .modify(|ps: &mut PushSecret| ps.metadata.managed_fields = None)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger, Default::default());
    (Controller::for_stream(stream, reader.clone()), reader)
}

/// Runs the controller until shutdown, and forgets the source reads of deleted PushSecrets.
pub async fn run(
    controller: Controller<PushSecret>,
    cache: Store<PushSecret>,
    state: Arc<State>,
    concurrency: u16,
) {
    let ctx = state.ctx.clone();
    let forget = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            ctx.references.retain(|user| match user {
                User::PushSecret(ps) => cache.get(ps).is_some(),
                _ => true,
            });
        }
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, state)
        .for_each(|_| futures::future::ready(()))
        .await;
    forget.abort();
}

/// One push, or one removal, that failed: the condition it becomes.
type Failure = (Reason, String);

/// The `kind` label of this controller's metrics.
const KIND: &str = "PushSecret";

/// One reconcile, counted in the queue and sync metrics.
async fn reconcile(ps: Arc<PushSecret>, state: Arc<State>) -> Result<Action, Error> {
    let _queued = metrics::InQueue::enter(KIND);
    state.ctx.queue.started(KIND, &ObjectKey::of(ps.as_ref()));
    let started = Instant::now();
    let outcome = push_once(ps, state).await;
    metrics::sync(
        KIND,
        started.elapsed(),
        outcome.as_ref().err().map(Error::reason),
    );
    outcome
}

/// observe → decide → apply → report.
async fn push_once(ps: Arc<PushSecret>, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let reference = ObjectRef::from_obj(ps.as_ref());
    let previous = ps.status.clone().unwrap_or_default().synced_push_secrets;
    if ps.meta().deletion_timestamp.is_some() {
        ctx.references.record(User::PushSecret(reference), vec![]);
        if !ps.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        let (synced, failure) = remove(&state, &ps, previous, &[], &[]).await;
        if let Some((reason, message)) = failure {
            let status = push::status(&ps, synced, Some((reason, message.clone())), None, now(ctx));
            report(ctx, &ps, status).await?;
            return Err(Error::Push {
                reason: reason.as_str(),
                message,
                waits_for_change: false,
            });
        }
        set_finalizer(ctx, &ps, false).await?;
        return Ok(Action::await_change());
    }
    let wants_finalizer = push::deletes(&ps);
    if wants_finalizer != ps.finalizers().iter().any(|f| f == FINALIZER) {
        // The finalizer's own watch event brings the next reconcile, which pushes.
        set_finalizer(ctx, &ps, wants_finalizer).await?;
        return Ok(Action::await_change());
    }

    let (synced, failure, source_version) = match observe(ctx, &ps, reference).await {
        Ok(observed) => {
            let (synced, failure) = sync(&state, &ps, &observed, previous).await;
            (synced, failure, observed.version)
        }
        Err(failure) => (previous, Some(failure), None),
    };
    let status = push::status(&ps, synced, failure.clone(), source_version, now(ctx));
    report(ctx, &ps, status).await?;
    match failure {
        None => {
            ctx.backoff.reset(&ObjectKey::of(ps.as_ref()));
            ctx.retry.reset(&ObjectKey::of(ps.as_ref()));
            Ok(match push::refresh_interval(&ps) {
                Ok(Some(interval)) => Action::requeue(jittered(&ps, interval)),
                _ => Action::await_change(),
            })
        }
        Some((reason, message)) => Err(Error::Push {
            reason: reason.as_str(),
            message,
            waits_for_change: matches!(reason, Reason::Errored | Reason::Conflict),
        }),
    }
}

fn now(ctx: &Context) -> jiff::Timestamp {
    (ctx.clock)()
}

/// The interval cut by up to a tenth, the same for the same object, so that PushSecrets
/// created together do not all push at once.
fn jittered(ps: &PushSecret, interval: Duration) -> Duration {
    let key = format!("{}/{}", ps.namespace().unwrap_or_default(), ps.name_any());
    interval.mul_f64(kuvert_core::jitter::jitter(&key, 0, 0.9, 1.0))
}

/// What a push starts from: the values, the source Secret's version (none for a generator),
/// and what `spec.template.templateFrom[]` read.
struct Observed {
    values: BTreeMap<String, kuvert_core::secret::SecretBytes>,
    version: Option<String>,
    template_sources: Vec<FetchedTemplateSource>,
}

/// Reads the source Secret, or the generator's kept values, and the template's `templateFrom`
/// ConfigMaps and Secrets, recording each read, so that its next change wakes this PushSecret.
async fn observe(
    ctx: &Context,
    ps: &PushSecret,
    reference: ObjectRef<PushSecret>,
) -> Result<Observed, Failure> {
    let namespace = ps.namespace().unwrap_or_default();
    let selector = &ps.spec.selector;
    let recording = Recording::new(&ctx.kube);
    let template_from = ps
        .spec
        .template
        .as_ref()
        .map(|t| t.template_from.as_slice())
        .unwrap_or_default();
    let template_sources =
        template_sources(&recording, &namespace, "spec.template", template_from).await;
    let read = match (&selector.secret, &selector.generator_ref) {
        (Some(secret), None) => match (&secret.name, &secret.selector) {
            (Some(name), None) => recording.secret(&namespace, name).await,
            _ => {
                return Err((
                    Reason::Errored,
                    "spec.selector.secret: only name is supported; a label selector is not"
                        .to_owned(),
                ));
            }
        },
        (None, Some(generator_ref)) => {
            ctx.references
                .record(User::PushSecret(reference), recording.into_reads());
            let values = generated::values(ctx, ps, generator_ref).await?;
            let template_sources =
                template_sources.map_err(|e| (Reason::Errored, e.to_string()))?;
            return Ok(Observed {
                values,
                version: None,
                template_sources,
            });
        }
        _ => {
            return Err((
                Reason::Errored,
                "spec.selector: exactly one of secret and generatorRef must be set".to_owned(),
            ));
        }
    };
    let reads = recording.into_reads();
    let source_name = selector.secret.as_ref().and_then(|s| s.name.as_deref());
    let version = reads.iter().find_map(|(read, seen)| match seen {
        crate::references::Seen::Version(v)
            if read.kind == RefKind::Secret && Some(read.name.as_str()) == source_name =>
        {
            Some(v.clone())
        }
        _ => None,
    });
    ctx.references.record(User::PushSecret(reference), reads);
    let values = match read {
        Ok(data) => data,
        Err(e @ KubeReadError::NotFound { .. }) => {
            return Err((Reason::SecretNotFound, e.to_string()));
        }
        Err(e) => return Err((Reason::PushFailed, e.to_string())),
    };
    let template_sources = template_sources.map_err(|e| (Reason::Errored, e.to_string()))?;
    Ok(Observed {
        values,
        version,
        template_sources,
    })
}

/// Decides and applies: every desired value pushed to every store, then what is no longer
/// wanted removed. Returns what kuvert holds afterwards and the first failure.
async fn sync(
    state: &State,
    ps: &PushSecret,
    observed: &Observed,
    previous: Synced,
) -> (Synced, Option<Failure>) {
    let ctx = &state.ctx;
    let desired = match push::desired(ps, &observed.values, &observed.template_sources, now(ctx)) {
        Ok(desired) => desired,
        Err(e) => {
            let reason = Reason::Errored;
            return (previous, Some((reason, e.to_string())));
        }
    };
    let keys = store_keys(&state.caches, ps);
    let stores: Vec<String> = keys.iter().map(StoreKey::display).collect();
    let mut synced = previous.clone();
    let mut failure: Option<Failure> = None;
    let owner = push::owner(ps);
    let namespace = ps.namespace().unwrap_or_default();
    for key in &keys {
        let store = match resolve(state, &namespace, key).await {
            Ok(store) => store,
            Err(message) => {
                failure.get_or_insert((Reason::StoreNotReady, message));
                continue;
            }
        };
        let held = synced.entry(store.name.clone()).or_default();
        for d in &desired {
            match push_one(&store, ps, d, &owner, held.contains_key(&d.status_key())).await {
                Ok(true) => {
                    held.insert(d.status_key(), d.data.clone());
                }
                Ok(false) => {}
                Err(e) => {
                    let reason = failure_reason(&e);
                    if reason == Reason::Conflict {
                        // Not ours (any more): never listed, never deleted.
                        held.remove(&d.status_key());
                    }
                    let message = format!("{}: pushing {:?}: {e}", store.name, d.status_key());
                    failure.get_or_insert((reason, message));
                }
            }
        }
    }
    let (synced, removal_failure) = remove(state, ps, synced, &stores, &desired).await;
    (synced, failure.or(removal_failure))
}

/// The `Ready` reason of a failed push or delete: a store that cannot be reached or logged in
/// to is not ready (it recovers by itself), a secret that is not kuvert's is a conflict, the
/// rest is a failed push.
fn failure_reason(e: &ProviderError) -> Reason {
    match e {
        ProviderError::Conflict { .. } => Reason::Conflict,
        ProviderError::Unavailable { .. } | ProviderError::Unauthenticated { .. } => {
            Reason::StoreNotReady
        }
        _ => Reason::PushFailed,
    }
}

/// Pushes one value; `Ok(true)` when kuvert holds it now. With `IfNotExists`, an existing
/// remote secret is left as it is (and held only if it was pushed here before).
async fn push_one(
    store: &ResolvedStore,
    ps: &PushSecret,
    d: &Desired,
    owner: &str,
    held: bool,
) -> Result<bool, ProviderError> {
    if push::update_policy(ps) == PushSecretUpdatePolicy::IfNotExists
        && store.client.exists(&d.remote_key).await?
    {
        return Ok(held);
    }
    store
        .client
        .push(&PushRequest {
            key: d.remote_key.clone(),
            property: d.property.clone(),
            value: d.value.clone(),
            owner: owner.to_owned(),
            metadata: d.data.metadata.clone(),
        })
        .await?;
    Ok(true)
}

/// Deletes what `synced` lists and is no longer wanted (see [`push::removals`]). A store that
/// is gone, or a remote secret that is no longer kuvert's, is forgotten (with a log line): it
/// cannot be deleted, and waiting would hold the PushSecret forever.
async fn remove(
    state: &State,
    ps: &PushSecret,
    mut synced: Synced,
    stores: &[String],
    desired: &[Desired],
) -> (Synced, Option<Failure>) {
    let namespace = ps.namespace().unwrap_or_default();
    let owner = push::owner(ps);
    let mut failure = None;
    for Removal {
        store,
        remote_key,
        property,
    } in push::removals(ps, &synced, stores, desired)
    {
        let key_text = push::status_key(&remote_key, property.as_deref());
        let forget = |synced: &mut Synced| {
            if let Some(keys) = synced.get_mut(&store) {
                keys.remove(&key_text);
                if keys.is_empty() {
                    synced.remove(&store);
                }
            }
        };
        let Some(key) = StoreKey::from_display(&store) else {
            forget(&mut synced);
            continue;
        };
        let resolved = match resolve(state, &namespace, &key).await {
            Ok(resolved) => resolved,
            Err(message) if state.caches.contains(&key) => {
                failure.get_or_insert((Reason::StoreNotReady, message));
                continue;
            }
            Err(_) => {
                tracing::warn!(namespace, name = ps.name_any(), %store, key = key_text, "the store is gone; what was pushed there is forgotten, not deleted");
                forget(&mut synced);
                continue;
            }
        };
        match resolved
            .client
            .delete(&remote_key, property.as_deref(), &owner)
            .await
        {
            Ok(()) => {
                tracing::info!(namespace, name = ps.name_any(), %store, key = key_text, "pushed secret deleted");
                forget(&mut synced);
            }
            Err(e @ ProviderError::Conflict { .. }) => {
                tracing::warn!(namespace, name = ps.name_any(), %store, key = key_text, error = %e, "not deleted: no longer kuvert's");
                forget(&mut synced);
            }
            Err(e) => {
                failure.get_or_insert((
                    failure_reason(&e),
                    format!("{store}: deleting {key_text:?}: {e}"),
                ));
            }
        }
    }
    (synced, failure)
}

/// The stores `spec.secretStoreRefs` names, each once, in order: by name, or every cached store
/// of the kind (a SecretStore of the PushSecret's namespace) whose labels match.
fn store_keys(caches: &StoreCaches, ps: &PushSecret) -> Vec<StoreKey> {
    let namespace = ps.namespace().unwrap_or_default();
    let mut keys: Vec<StoreKey> = Vec::new();
    for PushSecretStoreRef {
        name,
        kind,
        label_selector,
    } in &ps.spec.secret_store_refs
    {
        let kind = kind.unwrap_or_default();
        let mut found = Vec::new();
        match (name, label_selector) {
            (Some(name), _) => found.push(StoreKey::of(
                &namespace,
                &SecretStoreRef {
                    name: name.clone(),
                    kind: Some(kind),
                },
            )),
            (None, Some(selector)) => {
                let matches = |labels: &BTreeMap<String, String>| {
                    kuvert_core::admission::selector_matches(selector, labels)
                };
                match kind {
                    SecretStoreKind::SecretStore => found.extend(
                        caches
                            .stores
                            .state()
                            .iter()
                            .filter(|s| {
                                s.namespace().as_deref() == Some(&namespace) && matches(s.labels())
                            })
                            .map(|s| StoreKey::new(kind, &namespace, &s.name_any())),
                    ),
                    SecretStoreKind::ClusterSecretStore => {
                        if let Some(cluster) = &caches.cluster_stores {
                            found.extend(
                                cluster
                                    .state()
                                    .iter()
                                    .filter(|s| matches(s.labels()))
                                    .map(|s| StoreKey::new(kind, "", &s.name_any())),
                            );
                        }
                    }
                }
                found.sort();
            }
            (None, None) => {}
        }
        for key in found {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// A logged-in client of the store `key` from `namespace`, through the ExternalSecrets'
/// resolver (the same admission, login cache and reference recording). A failure is its
/// message.
async fn resolve(state: &State, namespace: &str, key: &StoreKey) -> Result<ResolvedStore, String> {
    let ctx = &state.ctx;
    let resolver = Resolver::new(ctx, &state.caches, Duration::ZERO);
    let store_ref = SecretStoreRef {
        name: key.name.clone(),
        kind: Some(key.kind),
    };
    resolver
        .resolve(namespace, &store_ref)
        .await
        .map_err(|e| e.to_string())
}

/// Adds or removes [`FINALIZER`], leaving other finalizers as they are.
async fn set_finalizer(ctx: &Context, ps: &PushSecret, present: bool) -> Result<(), KubeCall> {
    let mut finalizers: Vec<String> = ps
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let (namespace, name) = (ps.namespace().unwrap_or_default(), ps.name_any());
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    // The resourceVersion makes this a compare-and-swap with other finalizer writers.
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": ps.resource_version(),
        }
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone already: nothing holds it any more.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(KubeCall::doing(format!(
            "updating the finalizers of PushSecret {namespace}/{name}"
        ))(e)),
    }
}

/// Writes the status when it changed, and an Event when `Ready` changed status or reason.
async fn report(ctx: &Context, ps: &PushSecret, status: PushSecretStatus) -> Result<(), KubeCall> {
    let previous = ps.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let (namespace, name) = (ps.namespace().unwrap_or_default(), ps.name_any());
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert(
            "syncedPushSecrets".to_owned(),
            synced_patch(&previous.synced_push_secrets, &status.synced_push_secrets),
        );
    }
    let conditions = (&previous.conditions[..], &status.conditions[..]);
    match write_status(ctx, &api, ps, body, conditions, "Push").await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        written => written.map_err(KubeCall::doing(format!(
            "writing status of PushSecret {namespace}/{name}"
        ))),
    }
}

/// The merge patch turning `before` into `after`: maps merge, so what is gone is set to null.
fn synced_patch(before: &Synced, after: &Synced) -> serde_json::Value {
    let mut stores = serde_json::Map::new();
    for (store, keys) in before {
        if !after.contains_key(store) {
            stores.insert(store.clone(), serde_json::Value::Null);
            continue;
        }
        let mut gone = serde_json::Map::new();
        for key in keys.keys().filter(|k| !after[store].contains_key(*k)) {
            gone.insert(key.clone(), serde_json::Value::Null);
        }
        stores.insert(store.clone(), serde_json::Value::Object(gone));
    }
    for (store, keys) in after {
        let entry = stores
            .entry(store.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(map) = entry {
            for (key, data) in keys {
                map.insert(key.clone(), serde_json::to_value(data).unwrap_or_default());
            }
        }
    }
    serde_json::Value::Object(stores)
}

/// Logs the failure and retries: soon for what may pass (a store down, a Secret not created
/// yet), slower for what needs a change (a wrong spec, someone else's remote secret).
fn error_policy(ps: Arc<PushSecret>, error: &Error, state: Arc<State>) -> Action {
    tracing::warn!(
        namespace = ps.namespace().unwrap_or_default(),
        name = ps.name_any(),
        reason = error.reason(),
        error = %error,
        "push failed"
    );
    let key = ObjectKey::of(ps.as_ref());
    let backoff = match error {
        Error::Push {
            waits_for_change: true,
            ..
        } => &state.ctx.retry,
        _ => &state.ctx.backoff,
    };
    Action::requeue(backoff.next(&key).min(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(meta: &str) -> PushSecret {
        serde_saphyr::from_str(&format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: p, namespace: ns{meta}}}\nspec:\n  secretStoreRefs: []\n  selector: {{secret: {{name: s}}}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn the_status_patch_clears_what_is_no_longer_held() {
        let data = |key: &str| -> kuvert_core::api::PushSecretData {
            serde_saphyr::from_str(&format!("match: {{remoteRef: {{remoteKey: {key}}}}}")).unwrap()
        };
        let before = Synced::from([
            (
                "S/a".to_owned(),
                BTreeMap::from([("k1".to_owned(), data("k1")), ("k2".to_owned(), data("k2"))]),
            ),
            (
                "S/gone".to_owned(),
                BTreeMap::from([("k".to_owned(), data("k"))]),
            ),
        ]);
        let after = Synced::from([
            (
                "S/a".to_owned(),
                BTreeMap::from([("k1".to_owned(), data("k1"))]),
            ),
            (
                "S/new".to_owned(),
                BTreeMap::from([("n".to_owned(), data("n"))]),
            ),
        ]);
        assert_eq!(
            synced_patch(&before, &after),
            serde_json::json!({
                "S/a": {"k1": {"match": {"remoteRef": {"remoteKey": "k1"}}}, "k2": null},
                "S/gone": null,
                "S/new": {"n": {"match": {"remoteRef": {"remoteKey": "n"}}}},
            })
        );
    }

    #[test]
    fn status_writes_do_not_trigger_a_push_but_spec_annotation_and_deletion_changes_do() {
        let base = ps(", generation: 1");
        let mut with_status = base.clone();
        with_status.status = Some(PushSecretStatus {
            synced_resource_version: Some("9".to_owned()),
            ..PushSecretStatus::default()
        });
        assert_eq!(trigger(&base), trigger(&with_status));
        for changed in [
            ps(", generation: 2"),
            ps(", generation: 1, annotations: {force-sync: '1'}"),
            ps(", generation: 1, finalizers: [kuvert.io/push-secret]"),
            ps(", generation: 1, deletionTimestamp: '2026-01-01T00:00:00Z'"),
        ] {
            assert_ne!(trigger(&base), trigger(&changed), "{:?}", changed.metadata);
        }
    }
}
