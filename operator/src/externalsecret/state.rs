//! What every step of the ExternalSecret pipeline shares: the controller's state, and the
//! error of a Kubernetes call.

use std::sync::Arc;

use super::priority::BackgroundSlots;
use super::stores::StoreCaches;
use super::target::TargetCache;
use crate::context::Context;

/// Metric label of this kind.
pub const KIND: &str = "ExternalSecret";

/// A Kubernetes API call that failed, and what it was for.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct KubeCall {
    /// What was being done.
    pub action: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

impl KubeCall {
    /// Stable category of what the API server answered: the condition and Event reason.
    pub fn reason(&self) -> &'static str {
        match &self.source {
            kube::Error::Api(status) => match status.code {
                422 => "TargetInvalid",
                403 if status.message.contains("exceeded quota") => "QuotaExceeded",
                403 => "KubernetesForbidden",
                409 => "KubernetesConflict",
                400..=499 => "KubernetesRejected",
                _ => "KubernetesApiError",
            },
            _ => "KubernetesApiError",
        }
    }

    /// What failed and the API server's own message, for the status and the Event. The API
    /// server names fields and objects, never a Secret's data.
    pub fn message(&self) -> String {
        match &self.source {
            kube::Error::Api(status) => format!(
                "{}: the API server answered {} {}: {}",
                self.action, status.code, status.reason, status.message
            ),
            other => format!("{}: {other}", self.action),
        }
    }

    /// Wraps an API error of `action`.
    pub fn doing(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeCall {
        let action = action.into();
        move |source| KubeCall { action, source }
    }
}

/// What the ExternalSecret controller shares beyond [`Context`].
pub struct State {
    /// The operator-wide dependencies.
    pub ctx: Arc<Context>,
    /// Store objects, from the store controllers' caches.
    pub caches: StoreCaches,
    /// The managed Secrets' metadata, from this controller's watch.
    pub targets: TargetCache,
    /// The reconciles refreshes may take.
    pub background: BackgroundSlots,
    /// The workloads following the Secrets (rollout restarts).
    pub rollouts: Arc<crate::rollout::Rollouts>,
}
