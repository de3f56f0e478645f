//! The ExternalSecret's status, and Events on transitions only (no event per refresh).

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ExternalSecret, ExternalSecretStatus};
use kuvert_core::conditions;
use kuvert_core::engine::{SyncError, failed_status};

use super::{Error, kube_error};
use crate::context::Context;

/// Records a successful sync: the engine's status plus the written Secret's resourceVersion.
pub async fn synced(
    ctx: &Context,
    es: &ExternalSecret,
    mut status: ExternalSecretStatus,
    written: Option<String>,
) -> Result<(), Error> {
    status.synced_resource_version = written;
    write(ctx, es, status).await
}

/// Records a failed sync: Ready false with the error's reason and message; the rest of the
/// status (what was last synced) stays.
pub async fn failed(
    ctx: &Context,
    es: &ExternalSecret,
    error: &SyncError,
    now: jiff::Timestamp,
) -> Result<(), Error> {
    write(ctx, es, failed_status(es, error, now)).await
}

/// Records renewed leases (nothing else changed).
pub async fn leases(
    ctx: &Context,
    es: &ExternalSecret,
    leases: Vec<kuvert_core::api::GeneratorLease>,
) -> Result<(), Error> {
    let mut status = es.status.clone().unwrap_or_default();
    status.leases = leases;
    write(ctx, es, status).await
}

async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    status: ExternalSecretStatus,
) -> Result<(), Error> {
    let status = super::written::as_stored(status);
    let previous = es.status.clone().unwrap_or_default();
    if status == previous {
        return Ok(());
    }
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error(format!(
            "writing status of ExternalSecret {namespace}/{name}"
        )))?;
    ctx.statuses.wrote(es, &status);
    if ctx.settings.per_object_metrics {
        let ready = conditions::find_ready(&status.conditions).is_some_and(|c| c.status == "True");
        crate::metrics::object_ready("ExternalSecret", &namespace, &name, ready);
    }

    let before = conditions::find_ready(&previous.conditions);
    let after = conditions::find_ready(&status.conditions);
    let changed = match (before, after) {
        (Some(b), Some(a)) => b.status != a.status || b.reason != a.reason,
        (None, Some(_)) => true,
        _ => false,
    };
    if let (true, Some(after)) = (changed, after) {
        let event = Event {
            type_: if after.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: after.reason.clone(),
            note: Some(after.message.clone()),
            action: "Sync".to_owned(),
            secondary: None,
        };
        if let Err(e) = transient_recorder(ctx)
            .publish(&event, &es.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, "publishing an event failed");
        }
    }
    Ok(())
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
