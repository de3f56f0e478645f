//! Leader election over a `coordination.k8s.io/v1` Lease: with several replicas, one runs the
//! controllers; the others wait and take over when its lease expires.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

/// One candidate for leadership.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
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
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration,
        }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&self) -> Result<(), kube::Error> {
        let mut announced = None;
        loop {
            match self.round().await {
                Ok(Round::Leading) => {
                    tracing::info!(identity = %self.identity, lease = %self.name, "became leader");
                    return Ok(());
                }
                Ok(Round::Following(holder)) => {
                    if announced.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "waiting for leadership");
                        announced = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election round failed"),
            }
            tokio::time::sleep(self.retry_period()).await;
        }
    }

    /// Renews the lease until it is lost (another holder, or renewals failing for a whole
    /// lease duration); then returns.
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.retry_period()).await;
            match self.round().await {
                Ok(Round::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Round::Following(holder)) => {
                    tracing::error!(%holder, "lost leadership");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the lease failed");
                    if last_renewal.elapsed() >= self.lease_duration {
                        tracing::error!("could not renew the lease in time");
                        return;
                    }
                }
            }
        }
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
        let expired = current.renew_time.as_ref().is_none_or(|t| {
            let duration = current.lease_duration_seconds.unwrap_or(15).max(1) as i64;
            t.0.as_second() + duration < now.as_second()
        });
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
}
