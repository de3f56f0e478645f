//! The SecretStore and ClusterSecretStore controller: validate → connect → check → status.
//!
//! A store is Ready when its spec is valid, kuvert can log in, and the credentials work; its
//! `capabilities` say whether they can read, write or both. Stores are re-checked every
//! `spec.refreshInterval` seconds (default 300; never, when 0), whenever they change or a
//! credential their login read changes, and when an ExternalSecret finds them unreachable (at
//! most every 10 s).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use kuvert_core::api::{
    ClusterSecretStore, SecretStore, SecretStoreKind, SecretStoreSpec, SecretStoreStatus,
    StoreCapabilities,
};
use kuvert_core::conditions;
use kuvert_core::provider::ProviderError;
use kuvert_core::store_key::StoreKey;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::ObjectKey;
use crate::context::Context;
use crate::metrics;
use crate::references::{Recording, User};

/// What the two store kinds have in common.
pub trait StoreObject:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Which kind this is.
    const KIND: SecretStoreKind;
    /// The metric label of the kind.
    const METRIC_KIND: &'static str;
    /// The store spec.
    fn store_spec(&self) -> &SecretStoreSpec;
    /// The current status.
    fn store_status(&self) -> Option<&SecretStoreStatus>;
    /// The API of this object (namespaced or cluster-wide).
    fn api(&self, client: kube::Client) -> Api<Self>;
}

impl StoreObject for SecretStore {
    const KIND: SecretStoreKind = SecretStoreKind::SecretStore;
    const METRIC_KIND: &'static str = "SecretStore";
    fn store_spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn store_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
}

impl StoreObject for ClusterSecretStore {
    const KIND: SecretStoreKind = SecretStoreKind::ClusterSecretStore;
    const METRIC_KIND: &'static str = "ClusterSecretStore";
    fn store_spec(&self) -> &SecretStoreSpec {
        &self.spec.store
    }
    fn store_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
}

/// Why a store reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The provider refused the spec or the connection failed.
    #[error("{store}: {source}")]
    Provider {
        /// `Kind/namespace/name` of the store.
        store: String,
        /// The classified provider error.
        #[source]
        source: ProviderError,
    },
    /// Writing the status failed.
    #[error("{store}: writing status: {source}")]
    Status {
        /// `Kind/namespace/name` of the store.
        store: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl StoreError {
    /// Stable category for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Provider { source, .. } => source.reason(),
            StoreError::Status { .. } => "StatusWriteFailed",
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            StoreError::Provider { source, .. } => source.is_transient(),
            StoreError::Status { .. } => true,
        }
    }
}

/// How often a store without `spec.refreshInterval` is re-validated: a store that went down,
/// was sealed or stopped accepting kuvert's login says so within this long even when no
/// ExternalSecret reads it (those that do wake it at once). One cheap call per store.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Reason of a valid store, as in ESO.
pub const VALID: &str = "Valid";

/// Checks a store and records the result in its status.
pub async fn reconcile<S: StoreObject>(
    store: Arc<S>,
    ctx: Arc<Context>,
) -> Result<Action, StoreError> {
    let _queued = metrics::InQueue::enter(S::METRIC_KIND);
    ctx.queue
        .started(S::METRIC_KIND, &ObjectKey::of(store.as_ref()));
    let spec = store.store_spec();
    if !ctx.settings.serves(spec.controller.as_deref()) {
        return Ok(Action::await_change());
    }
    let display = store_key(store.as_ref()).display();
    let started = Instant::now();
    let outcome = check(store.as_ref(), &ctx).await;
    metrics::sync(
        S::METRIC_KIND,
        started.elapsed(),
        outcome.as_ref().err().map(ProviderError::reason),
    );

    let previous = store.store_status().cloned().unwrap_or_default();
    let (ready, reason, message, capabilities) = match &outcome {
        Ok(caps) => (true, VALID, "store validated".to_owned(), Some(*caps)),
        Err(e) => (false, e.reason(), e.to_string(), None),
    };
    let condition = conditions::ready(
        &previous.conditions,
        ready,
        reason,
        &message,
        store.meta().generation,
        (ctx.clock)(),
    );
    let status = SecretStoreStatus {
        conditions: vec![condition],
        capabilities: capabilities.or(previous.capabilities),
        observed_generation: store.meta().generation,
    };
    if status != previous {
        write_status(store.as_ref(), &ctx, &status)
            .await
            .map_err(|source| StoreError::Status {
                store: display.clone(),
                source,
            })?;
    }
    let was_ready = conditions::find_ready(&previous.conditions).map(|c| c.status == "True");
    if was_ready != Some(ready) {
        publish(store.as_ref(), &ctx, ready, reason, &message).await;
    }
    match outcome {
        Ok(_) => {
            let key = ObjectKey::of(store.as_ref());
            ctx.backoff.reset(&key);
            ctx.retry.reset(&key);
            let refresh = match spec.refresh_interval {
                Some(0) => None,
                Some(secs) if secs > 0 => Some(Duration::from_secs(secs as u64)),
                _ => Some(DEFAULT_REFRESH),
            };
            Ok(ctx.queue.next(&key, refresh))
        }
        Err(source) => Err(StoreError::Provider {
            store: display,
            source,
        }),
    }
}

fn store_key<S: StoreObject>(store: &S) -> StoreKey {
    StoreKey::new(
        S::KIND,
        &store.namespace().unwrap_or_default(),
        &store.name_any(),
    )
}

async fn check<S: StoreObject>(
    store: &S,
    ctx: &Context,
) -> Result<StoreCapabilities, ProviderError> {
    let key = store_key(store);
    let login_key = (key.clone(), String::new());
    let generation = store.meta().generation.unwrap_or_default();
    // The same login gate as the store's ExternalSecrets: a refused login is not tried again
    // by the check before its backoff step ends (see `crate::logins`).
    let login = async {
        let recording = Recording::new(&ctx.kube);
        let connected = crate::resolve::connect(
            &ctx.registry,
            &recording,
            &key,
            store.store_spec(),
            store.namespace().as_deref(),
        )
        .await;
        // Failed checks too: fixing the credential they read must wake the store.
        ctx.references.record(
            User::Store(key.clone(), String::new()),
            recording.into_reads(),
        );
        connected
    };
    let (provider, client) = ctx
        .clients
        .logins
        .attempt(&login_key, generation, login)
        .await?;
    metrics::InstrumentedClient::wrap(provider, client)
        .validate()
        .await
}

async fn write_status<S: StoreObject>(
    store: &S,
    ctx: &Context,
    status: &SecretStoreStatus,
) -> Result<(), kube::Error> {
    let api = store.api(ctx.client.clone());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &store.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

async fn publish<S: StoreObject>(
    store: &S,
    ctx: &Context,
    ready: bool,
    reason: &str,
    message: &str,
) {
    let event = Event {
        type_: if ready {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: reason.to_owned(),
        note: Some(message.to_owned()),
        action: "Validate".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &store.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

/// Transient failures back off with jitter from 1 s; a refused spec or login is checked again
/// from 10 s up to 10 minutes (the credential it names may be fixed without touching the
/// store). Keyed by the object, as a success resets it.
pub fn error_policy<S: StoreObject>(
    store: Arc<S>,
    error: &StoreError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(reason = error.reason(), error = %error, "store check failed");
    let key = ObjectKey::of(store.as_ref());
    let after = if error.is_transient() {
        ctx.backoff.next(&key)
    } else {
        ctx.retry.next(&key)
    };
    ctx.queue.next(&key, Some(after))
}

/// The controller of one store kind, watching `api`; each store its watch queues is marked
/// for the queue-wait histogram.
pub fn controller<S: StoreObject>(api: Api<S>, ctx: Arc<Context>) -> Controller<S> {
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .inspect_ok(move |store: &S| ctx.queue.queued(&ObjectKey::of(store)));
    Controller::for_stream(stream, reader)
}

/// Runs a store controller until shutdown.
pub async fn run_controller<S: StoreObject>(
    controller: Controller<S>,
    ctx: Arc<Context>,
    concurrency: u16,
) {
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile::<S>, error_policy::<S>, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}
