//! Report: what a reconcile did, told — the status, an Event on transitions only (no event per
//! refresh), the metrics — and when to look again.

use std::time::Instant;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ExternalSecret, ExternalSecretStatus};
use kuvert_core::conditions;
use kuvert_core::decide::spread_interval;
use kuvert_core::engine::status::{apply_refresh_floor, failure_status, format_go_duration};
use kuvert_core::engine::target::KeyChanges;

use super::apply::{Applied, min};
use super::observe::Observed;
use super::state::{KIND, KubeCall, State};
use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::metrics;

/// Reports what was applied; returns when to reconcile again.
pub async fn report(
    state: &State,
    es: &ExternalSecret,
    observed: &Observed,
    applied: Applied,
) -> Result<Action, KubeCall> {
    let ctx = &state.ctx;
    match applied {
        Applied::Renewed { leases, wait } => {
            let mut status = es.status.clone().unwrap_or_default();
            status.leases = leases;
            write(ctx, es, status).await?;
            Ok(ctx.queue.next(&ObjectKey::of(es), wait))
        }
        Applied::Synced {
            why,
            started,
            outcome,
            written,
            lease_wait,
            changes,
        } => {
            metrics::sync(KIND, started.elapsed(), None);
            let floor = ctx.settings.limits.min_refresh_interval;
            let refresh = outcome
                .requeue_after
                .map(|i| spread_interval(es, i.max(floor)));
            let mut status = outcome.status;
            status.synced_resource_version = written;
            let raised = apply_refresh_floor(&mut status, es, floor);
            let newly_raised = raised
                && es.status.as_ref().and_then(|s| s.refresh_interval.as_ref())
                    != status.refresh_interval.as_ref();
            write(ctx, es, status).await?;
            if newly_raised {
                refresh_raised(ctx, es, floor).await;
            }
            tracing::debug!(namespace = ?observed.es_ref.namespace, name = %observed.es_ref.name, why = why.as_str(), "synced");
            if let Some(changes) = changes {
                data_changed(ctx, es, &observed.target_name, &changes).await;
            }
            ctx.index
                .mark_synced(&observed.es_ref, &observed.generations);
            ctx.references
                .synced(&observed.es_ref, observed.references_changed);
            let key = ObjectKey::of(es);
            ctx.backoff.reset(&key);
            ctx.retry.reset(&key);
            Ok(ctx.queue.next(&key, min(refresh, lease_wait)))
        }
    }
}

/// Writes `workloads` into the status of `es` (which is otherwise as it was), if they changed.
pub async fn workloads(
    ctx: &Context,
    es: &ExternalSecret,
    workloads: Vec<kuvert_core::api::WorkloadStatus>,
) -> Result<(), KubeCall> {
    let Some(mut status) = es.status.clone() else {
        return Ok(());
    };
    if status.workloads == workloads {
        return Ok(());
    }
    status.workloads_up_to_date = kuvert_core::rollout::up_to_date_count(&workloads);
    status.workloads = workloads;
    write(ctx, es, status).await
}

/// Reports a failed reconcile: counted by reason; with a `message` (every failure but a
/// status write) also Ready false with its reason and message, and an Event on the
/// transition (the rest of the status, what was last synced, stays).
pub async fn failed(
    ctx: &Context,
    es: &ExternalSecret,
    reason: &'static str,
    message: Option<String>,
    started: Instant,
    now: jiff::Timestamp,
) -> Result<(), KubeCall> {
    metrics::sync(KIND, started.elapsed(), Some(reason));
    match message {
        Some(message) => write(ctx, es, failure_status(es, reason, &message, now)).await,
        None => Ok(()),
    }
}

async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    status: ExternalSecretStatus,
) -> Result<(), KubeCall> {
    let status = super::written::as_stored(status);
    let previous = es.status.clone().unwrap_or_default();
    if status == previous {
        return Ok(());
    }
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut patch = serde_json::json!({ "status": status });
    // A merge patch keeps what it omits: workloads no longer listed are cleared explicitly.
    if status.workloads.is_empty() && !previous.workloads.is_empty() {
        patch["status"]["workloads"] = serde_json::Value::Null;
        patch["status"]["workloadsUpToDate"] = serde_json::Value::Null;
    }
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(KubeCall::doing(format!(
            "writing status of ExternalSecret {namespace}/{name}"
        )))?;
    ctx.statuses.wrote(es, &status);

    publish_ready_transition(
        ctx,
        &previous.conditions,
        &status.conditions,
        &es.object_ref(&()),
        "Sync",
    )
    .await;
    Ok(())
}

/// Writes `body` as a merge patch of `object`'s status, then publishes an Event if its `Ready`
/// condition changed from `previous` to `current` ([`publish_ready_transition`]).
pub(crate) async fn write_status<K>(
    ctx: &Context,
    api: &Api<K>,
    object: &K,
    body: serde_json::Value,
    (previous, current): (
        &[kuvert_core::api::Condition],
        &[kuvert_core::api::Condition],
    ),
    action: &str,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "status": body })),
    )
    .await?;
    publish_ready_transition(ctx, previous, current, &object.object_ref(&()), action).await;
    Ok(())
}

/// Publishes an Event when the `Ready` condition appeared or changed status or reason (never
/// per refresh): Normal when it is True, else Warning, its reason and message as the Event's.
pub(crate) async fn publish_ready_transition(
    ctx: &Context,
    previous: &[kuvert_core::api::Condition],
    current: &[kuvert_core::api::Condition],
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    action: &str,
) {
    let before = conditions::find_ready(previous);
    let after = conditions::find_ready(current);
    let changed = match (before, after) {
        (Some(b), Some(a)) => b.status != a.status || b.reason != a.reason,
        (None, Some(_)) => true,
        _ => false,
    };
    if let (true, Some(after)) = (changed, after) {
        let ready = after.status == "True";
        if ready && before.is_some_and(|b| b.status == "False") {
            let namespace = reference.namespace.as_deref().unwrap_or_default();
            let name = reference.name.as_deref().unwrap_or_default();
            tracing::info!(%namespace, %name, reason = %after.reason, "recovered");
        }
        let event = Event {
            type_: if ready {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: after.reason.clone(),
            note: Some(after.message.clone()),
            action: action.to_owned(),
            secondary: None,
        };
        publish(ctx, reference, &event).await;
    }
}

/// A Warning Event about `es` with `reason` and `note`.
pub(crate) async fn warn(
    ctx: &Context,
    es: &ExternalSecret,
    reason: &str,
    note: String,
    action: &str,
) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    publish(ctx, &es.object_ref(&()), &event).await;
}

/// The object asks for a shorter refresh interval than this kuvert honours: a Warning Event
/// when that becomes so (its first sync, or a spec change), not one per refresh.
async fn refresh_raised(ctx: &Context, es: &ExternalSecret, floor: std::time::Duration) {
    let asked = es.spec.refresh_interval.as_deref().unwrap_or_default();
    let floor = format_go_duration(floor);
    let note = format!(
        "spec.refreshInterval {asked} is below this kuvert's minimum {floor} (--min-refresh-interval): refreshed every {floor}"
    );
    warn(ctx, es, REFRESH_INTERVAL_RAISED, note, "Sync").await;
}

/// The reason of the Event saying that `--min-refresh-interval` raised an object's interval.
pub const REFRESH_INTERVAL_RAISED: &str = "RefreshIntervalRaised";

/// A sync changed the data of an existing Secret: an Event and a log line naming the keys (never
/// the values), so rotations leave an audit trail.
async fn data_changed(ctx: &Context, es: &ExternalSecret, secret: &str, changes: &KeyChanges) {
    let namespace = es.namespace().unwrap_or_default();
    tracing::info!(
        %namespace,
        name = %es.name_any(),
        secret,
        added = ?changes.added,
        changed = ?changes.changed,
        removed = ?changes.removed,
        "secret data changed"
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "DataChanged".to_owned(),
        note: Some(format!("Secret {namespace}/{secret}: {changes}")),
        action: "Sync".to_owned(),
        secondary: None,
    };
    publish(ctx, &es.object_ref(&()), &event).await;
}

pub(crate) async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    event: &Event,
) {
    if let Err(e) = transient_recorder(ctx).publish(event, reference).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

/// A recorder for one Event. kube-runtime's `Recorder` keeps every Event it published for six
/// minutes, to patch a repeat into a series; kuvert publishes on transitions only, so with
/// 10,000 ExternalSecrets syncing at once that cache held 10,000 Events (a fifth of the heap in
/// kuvert-bench's massif profile) and was scanned on every publish. A recorder per Event
/// publishes the same Event and keeps nothing; a transition repeated within six minutes becomes
/// a new Event instead of a series count.
fn transient_recorder(ctx: &Context) -> Recorder {
    Recorder::new(
        ctx.client.clone(),
        Reporter {
            controller: "kuvert".to_owned(),
            instance: ctx.settings.instance.clone(),
        },
    )
}
