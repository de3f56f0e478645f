//! Writing the target Secret the engine built.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kuvert_core::engine::{SyncOutcome, TargetAction};

use super::{Error, kube_error};

/// Creates, replaces or deletes the Secret as the engine decided; returns the Secret's
/// `resourceVersion` as it now is (`None` when there is none; `existing` when unchanged). A
/// replace carries the `resourceVersion` that was read, so a concurrent change makes it fail
/// (409) rather than be overwritten.
pub async fn write(
    secrets: &Api<Secret>,
    outcome: &SyncOutcome,
    existing: Option<&str>,
) -> Result<Option<String>, Error> {
    let Some(secret) = &outcome.secret else {
        return Ok(None);
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    let version = |s: Secret| s.metadata.resource_version;
    match outcome.action {
        TargetAction::Create => secrets
            .create(&PostParams::default(), secret)
            .await
            .map(version)
            .map_err(kube_error(format!("creating Secret {name}"))),
        TargetAction::Update => secrets
            .replace(&name, &PostParams::default(), secret)
            .await
            .map(version)
            .map_err(kube_error(format!("updating Secret {name}"))),
        TargetAction::Unchanged => Ok(existing.map(str::to_owned)),
        TargetAction::Skip => Ok(None),
        // Only the Secret as it was read: one changed or re-created meanwhile fails (409).
        TargetAction::Delete => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: secret.metadata.uid.clone(),
                    resource_version: secret.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&name, &params).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
                Err(e) => Err(kube_error(format!("deleting Secret {name}"))(e)),
            }
        }
    }
}
