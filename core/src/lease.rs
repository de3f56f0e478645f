//! When a generated lease is renewed or replaced; pure, so every rule is unit-tested.
//!
//! A renewable lease is renewed once a fraction of its duration has passed (`kuvert run
//! --lease-renew-fraction`, default 2/3), jittered per lease into the last tenth before that
//! point so leases issued together are not renewed together. A lease that cannot be renewed —
//! not renewable, or its last renewal was truncated by the store's maximum TTL — is replaced
//! (new credentials generated) at that same point, well before it expires.
//!
//! Every input is recorded with the lease (when it was issued or renewed, its duration), so a
//! restarted operator computes the same times: nothing is renewed or regenerated early just
//! because the process restarted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jitter::jitter;

/// The default fraction of a lease's duration after which it is renewed.
pub const DEFAULT_RENEW_FRACTION: f64 = 2.0 / 3.0;

/// A lease kuvert holds for one generator entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldLease {
    /// The lease id.
    pub id: String,
    /// Seconds the lease was valid for when issued or last renewed.
    pub duration_seconds: u64,
    /// Whether the store allows renewing it.
    pub renewable: bool,
    /// When it was issued or last renewed.
    pub renewed_at: jiff::Timestamp,
    /// The last renewal granted less than asked (the maximum TTL is near): no more renewals.
    #[serde(default)]
    pub truncated: bool,
}

/// What a lease needs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Renew it now.
    Renew,
    /// Generate new credentials now (and revoke this lease once they are written).
    Regenerate,
    /// Nothing until this much time has passed.
    Wait(Duration),
}

impl HeldLease {
    /// A lease just issued (or renewed) at `now`.
    pub fn issued(lease: &crate::generator::Lease, now: jiff::Timestamp) -> Self {
        HeldLease {
            id: lease.id.clone(),
            duration_seconds: lease.duration.as_secs(),
            renewable: lease.renewable,
            renewed_at: now,
            truncated: false,
        }
    }

    /// The lease's duration.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_seconds)
    }

    /// When it expires.
    pub fn expires_at(&self) -> jiff::Timestamp {
        add(self.renewed_at, self.duration())
    }

    /// When it is renewed or replaced: `fraction` of its duration after it was issued or
    /// renewed, jittered per lease into `[0.9, 1.0]` of that.
    pub fn next_action_at(&self, fraction: f64) -> jiff::Timestamp {
        let spread = jitter(&self.id, self.renewed_at.as_second() as u64, 0.9, 1.0);
        add(self.renewed_at, self.duration().mul_f64(fraction * spread))
    }

    /// What the lease needs at `now`.
    pub fn action(&self, now: jiff::Timestamp, fraction: f64) -> LeaseAction {
        let due = self.next_action_at(fraction);
        if now < due {
            let wait = now.duration_until(due).try_into().unwrap_or(Duration::ZERO);
            return LeaseAction::Wait(wait);
        }
        if self.renewable && !self.truncated {
            LeaseAction::Renew
        } else {
            LeaseAction::Regenerate
        }
    }

    /// The lease after a renewal at `now` that asked for `asked` and was granted `granted`. A
    /// grant shorter than asked means the store capped it at the lease's maximum TTL: the lease
    /// is then replaced instead of renewed again.
    pub fn renewed(
        &self,
        granted: &crate::generator::Lease,
        asked: Duration,
        now: jiff::Timestamp,
    ) -> Self {
        HeldLease {
            id: self.id.clone(),
            duration_seconds: granted.duration.as_secs(),
            renewable: granted.renewable,
            renewed_at: now,
            // Stores round TTLs to the second.
            truncated: granted.duration + Duration::from_secs(1) < asked,
        }
    }
}

fn add(at: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    at.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

/// How long until the earliest lease in `es`'s status needs renewing or replacing (zero if
/// overdue); `None` without leases.
pub fn next_in_status(es: &crate::api::ExternalSecret, now: jiff::Timestamp) -> Option<Duration> {
    es.status
        .as_ref()?
        .leases
        .iter()
        .filter_map(|l| l.next_action_time.as_ref())
        .map(|t| now.duration_until(t.0).try_into().unwrap_or(Duration::ZERO))
        .min()
}

/// Checks a `--lease-renew-fraction` value.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let f: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if f > 0.0 && f < 1.0 {
        Ok(f)
    } else {
        Err(format!("{f} is not between 0 and 1 (exclusive)"))
    }
}

/// Whether a deleted ExternalSecret gives up its leases instead of revoking them: only when
/// [`crate::api::ABANDON_LEASES_ANNOTATION`] is exactly `"true"`, since a lease given up stays
/// valid in the store until its TTL ends.
pub fn abandons_leases(es: &crate::api::ExternalSecret) -> bool {
    es.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::ABANDON_LEASES_ANNOTATION))
        .is_some_and(|value| value == "true")
}

#[cfg(test)]
mod tests {
    use crate::generator::Lease;

    use super::*;

    #[test]
    fn only_abandon_leases_true_gives_leases_up() {
        let annotated = |value: Option<&str>| {
            let mut es = crate::api::ExternalSecret::new("db", Default::default());
            es.metadata.annotations = value.map(|v| {
                [(
                    crate::api::ABANDON_LEASES_ANNOTATION.to_owned(),
                    v.to_owned(),
                )]
                .into()
            });
            abandons_leases(&es)
        };
        assert!(annotated(Some("true")));
        for value in [None, Some("false"), Some("True"), Some("yes"), Some("")] {
            assert!(!annotated(value), "{value:?}");
        }
    }

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    fn held(renewable: bool) -> HeldLease {
        HeldLease::issued(
            &Lease {
                id: "database/creds/app/abc".to_owned(),
                duration: Duration::from_secs(3600),
                renewable,
            },
            at(10_000),
        )
    }

    const TWO_THIRDS: f64 = DEFAULT_RENEW_FRACTION;

    #[test]
    fn a_renewable_lease_is_renewed_after_two_thirds_of_its_duration_jittered_by_a_tenth() {
        let lease = held(true);
        let due = lease.next_action_at(TWO_THIRDS);
        let offset = due.as_second() - 10_000;
        assert!(
            (2160..=2400).contains(&offset),
            "renewed {offset}s after issue"
        );
        // The same lease always gets the same point, another lease another one.
        assert_eq!(lease.next_action_at(TWO_THIRDS), due);
        let other = HeldLease {
            id: "database/creds/app/xyz".to_owned(),
            ..lease.clone()
        };
        assert_ne!(other.next_action_at(TWO_THIRDS), due);

        let wait: Duration = at(10_000).duration_until(due).try_into().unwrap();
        assert_eq!(wait.as_secs(), offset as u64);
        assert_eq!(
            lease.action(at(10_000), TWO_THIRDS),
            LeaseAction::Wait(wait)
        );
        assert_eq!(lease.action(due, TWO_THIRDS), LeaseAction::Renew);
        assert_eq!(lease.action(at(20_000), TWO_THIRDS), LeaseAction::Renew);
    }

    #[test]
    fn the_fraction_moves_the_renewal_point() {
        let lease = held(true);
        let offset = lease.next_action_at(0.5).as_second() - 10_000;
        assert!((1620..=1800).contains(&offset), "{offset}");
    }

    #[test]
    fn a_lease_that_cannot_be_renewed_is_replaced_before_it_expires() {
        let lease = held(false);
        let due = lease.next_action_at(TWO_THIRDS);
        assert!(due < lease.expires_at());
        assert!(matches!(
            lease.action(at(10_001), TWO_THIRDS),
            LeaseAction::Wait(_)
        ));
        assert_eq!(lease.action(due, TWO_THIRDS), LeaseAction::Regenerate);
    }

    #[test]
    fn a_renewal_cut_short_by_the_maximum_ttl_leads_to_replacement() {
        let lease = held(true);
        let now = at(12_400);
        let full = lease.renewed(
            &Lease {
                id: lease.id.clone(),
                duration: Duration::from_secs(3600),
                renewable: true,
            },
            Duration::from_secs(3600),
            now,
        );
        assert!(!full.truncated);
        assert_eq!(full.renewed_at, now);
        assert_eq!(
            full.action(now, TWO_THIRDS),
            LeaseAction::Wait(
                full.next_action_at(TWO_THIRDS)
                    .duration_since(now)
                    .try_into()
                    .unwrap()
            )
        );

        let cut = lease.renewed(
            &Lease {
                id: lease.id.clone(),
                duration: Duration::from_secs(600),
                renewable: true,
            },
            Duration::from_secs(3600),
            now,
        );
        assert!(cut.truncated);
        assert_eq!(cut.expires_at(), at(13_000));
        let due = cut.next_action_at(TWO_THIRDS);
        assert!(due > now && due < cut.expires_at());
        assert_eq!(cut.action(due, TWO_THIRDS), LeaseAction::Regenerate);
    }

    #[test]
    fn a_restart_recomputes_the_same_times_from_what_was_recorded() {
        let lease = held(true);
        let recorded = serde_json::to_string(&lease).unwrap();
        let reloaded: HeldLease = serde_json::from_str(&recorded).unwrap();
        assert_eq!(reloaded, lease);
        assert_eq!(
            reloaded.action(at(10_500), TWO_THIRDS),
            lease.action(at(10_500), TWO_THIRDS)
        );
        assert!(matches!(
            reloaded.action(at(10_500), TWO_THIRDS),
            LeaseAction::Wait(_)
        ));
    }

    #[test]
    fn a_failing_object_is_woken_for_its_earliest_lease() {
        use crate::api::{ExternalSecret, ExternalSecretStatus, GeneratorLease};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let mut es = ExternalSecret::new("app", Default::default());
        assert_eq!(next_in_status(&es, at(1000)), None);
        let lease = |t| GeneratorLease {
            next_action_time: Some(Time(at(t))),
            ..GeneratorLease::default()
        };
        es.status = Some(ExternalSecretStatus {
            leases: vec![lease(1600), lease(1300)],
            ..ExternalSecretStatus::default()
        });
        assert_eq!(
            next_in_status(&es, at(1000)),
            Some(Duration::from_secs(300))
        );
        assert_eq!(next_in_status(&es, at(2000)), Some(Duration::ZERO));
    }

    #[test]
    fn renew_fractions_outside_zero_to_one_are_refused() {
        assert_eq!(parse_fraction("0.5"), Ok(0.5));
        assert_eq!(
            parse_fraction("1"),
            Err("1 is not between 0 and 1 (exclusive)".to_owned())
        );
        assert_eq!(
            parse_fraction("0"),
            Err("0 is not between 0 and 1 (exclusive)".to_owned())
        );
        assert_eq!(parse_fraction("x"), Err("\"x\" is not a number".to_owned()));
    }
}
