//! Leader election over a `coordination.k8s.io/v1` Lease: with several replicas, one runs the
//! controllers; the others wait and take over when its lease expires or is released.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

use crate::metrics::LEADER;

/// One candidate for leadership.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    observed: Mutex<Option<Observed>>,
}

/// The lease record as this candidate last saw it change, by its own clock: expiry is judged
/// by when a renewal was *observed* here, never by the holder's `renewTime`, so clocks that
/// disagree between nodes cannot make a live leader look expired (client-go does the same).
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// What a round of election found.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Leading,
    Following(String),
}

impl Elector {
    /// A candidate `identity` for the Lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        metrics::gauge!(LEADER).set(0.0);
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration,
            observed: Mutex::new(None),
        }
    }

    /// Waits until this candidate holds the lease. `standing_by` is called after each round
    /// that reached the API server while another replica leads.
    ///
    /// A follower watches the Lease as well as retrying on a timer, so a lease released by a
    /// leader shutting down is taken at once, not a retry period later.
    pub async fn acquire(&self, mut standing_by: impl FnMut()) -> Result<(), kube::Error> {
        let changes = watcher(
            self.api.clone(),
            watcher::Config::default().fields(&format!("metadata.name={}", self.name)),
        )
        .default_backoff()
        .applied_objects();
        let mut changes = std::pin::pin!(changes);
        let mut announced = None;
        loop {
            match self.round().await {
                Ok(Round::Leading) => {
                    tracing::info!(identity = %self.identity, lease = %self.name, "became leader");
                    metrics::gauge!(LEADER).set(1.0);
                    return Ok(());
                }
                Ok(Round::Following(holder)) => {
                    standing_by();
                    if announced.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "waiting for leadership");
                        announced = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election round failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.retry_period()) => {}
                change = changes.next() => {
                    if let Some(Err(e)) = change {
                        tracing::debug!(error = %e, "watching the leader Lease failed");
                        tokio::time::sleep(self.retry_period()).await;
                    }
                }
            }
        }
    }

    /// Renews the lease until it is lost (another holder, or renewals failing for a whole
    /// lease duration); then returns.
    pub async fn hold(&self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.retry_period()).await;
            match self.round().await {
                Ok(Round::Leading) => last_renewal = Instant::now(),
                Ok(Round::Following(holder)) => {
                    tracing::error!(%holder, "lost leadership");
                    metrics::gauge!(LEADER).set(0.0);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the lease failed");
                    if last_renewal.elapsed() >= self.lease_duration {
                        tracing::error!("could not renew the lease in time");
                        metrics::gauge!(LEADER).set(0.0);
                        return;
                    }
                }
            }
        }
    }

    /// Gives the lease up (on shutdown, after the controllers stopped), so a waiting replica
    /// takes over at once instead of after the lease expires.
    pub async fn release(&self) {
        let released = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(false);
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
            // A compare-and-swap on the resourceVersion read: a lease another replica has
            // taken meanwhile is left alone.
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map(|_| true)
        };
        match released.await {
            Ok(true) => tracing::info!(lease = %self.name, "released the leader lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "releasing the leader lease failed"),
        }
        metrics::gauge!(LEADER).set(0.0);
    }

    fn retry_period(&self) -> Duration {
        self.lease_duration / 3
    }

    /// Creates, renews or takes over the lease if it may; says who holds it.
    async fn round(&self) -> Result<Round, kube::Error> {
        let now = jiff::Timestamp::now();
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquired.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Following(String::new())),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let holder = current.holder_identity.clone().unwrap_or_default();
        let duration =
            Duration::from_secs(current.lease_duration_seconds.unwrap_or(15).max(1) as u64);
        let expired = self.observe(lease.metadata.resource_version.clone()) >= duration;
        let new_spec = if holder == self.identity {
            spec(
                current.lease_transitions.unwrap_or_default(),
                current.acquire_time.clone(),
            )
        } else if expired || holder.is_empty() {
            spec(current.lease_transitions.unwrap_or_default() + 1, None)
        } else {
            return Ok(Round::Following(holder));
        };
        lease.spec = Some(new_spec);
        // The resourceVersion read makes this a compare-and-swap: of two candidates taking
        // over an expired lease, one gets 409 and follows.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Round::Leading),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Following(holder)),
            Err(e) => Err(e),
        }
    }

    /// Records the lease's version as read now; returns how long, by this process's clock,
    /// the record has stayed unchanged (zero on first sight or after a change).
    fn observe(&self, resource_version: Option<String>) -> Duration {
        let mut observed = self.observed.lock().expect("not poisoned");
        match &*observed {
            Some(seen) if seen.resource_version == resource_version => seen.at.elapsed(),
            _ => {
                *observed = Some(Observed {
                    resource_version,
                    at: Instant::now(),
                });
                Duration::ZERO
            }
        }
    }
}
