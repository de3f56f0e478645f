//! Whether an ExternalSecret must sync now, and how fresh its remote values must be.
//!
//! Pure: a function of the object, what the operator observed (its target Secret, its stores,
//! its leases) and the time, so every rule (refresh policies, force-sync, drift, restarts,
//! leases to replace) is unit-tested without a server.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::{CreationPolicy, DATA_HASH_ANNOTATION, ExternalSecret, MANAGED_LABEL};
use crate::conditions;
use crate::engine::status::{floored_refresh_interval, force_sync_value};
use crate::engine::{SyncError, target::data_hash};
use crate::jitter::jitter;

/// What to do with an ExternalSecret now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Sync now, accepting remote values read up to `max_age` ago.
    Sync {
        /// How old a coalesced read may be.
        max_age: Duration,
        /// Why: it decides what else the sync does (which generators run, whether it yields
        /// to other work).
        why: SyncReason,
    },
    /// Nothing to do until `Some(delay)` passes, or (`None`) until something changes.
    Wait(Option<Duration>),
}

/// Why an ExternalSecret syncs. An enum, not a string: the generators and the scheduler act
/// on it, and a misspelt reason must not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncReason {
    /// Never synced.
    FirstSync,
    /// The force-sync annotation has a new value.
    ForceSync,
    /// The spec changed since the last sync.
    SpecChanged,
    /// A store it uses changed since this process last synced it.
    StoreChanged,
    /// The last sync failed.
    Retry,
    /// The target Secret was edited or deleted.
    Drift,
    /// The refresh interval passed.
    Refresh,
    /// Generated credentials whose lease cannot be renewed (further) are replaced before they
    /// expire.
    LeaseExpiring,
}

impl SyncReason {
    /// Every reason.
    pub const ALL: [SyncReason; 8] = [
        SyncReason::FirstSync,
        SyncReason::ForceSync,
        SyncReason::SpecChanged,
        SyncReason::StoreChanged,
        SyncReason::Retry,
        SyncReason::Drift,
        SyncReason::Refresh,
        SyncReason::LeaseExpiring,
    ];

    /// The name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncReason::FirstSync => "FirstSync",
            SyncReason::ForceSync => "ForceSync",
            SyncReason::SpecChanged => "SpecChanged",
            SyncReason::StoreChanged => "StoreChanged",
            SyncReason::Retry => "Retry",
            SyncReason::Drift => "Drift",
            SyncReason::Refresh => "Refresh",
            SyncReason::LeaseExpiring => "LeaseExpiring",
        }
    }

    /// Whether the sync is background work that may wait for others: a due refresh or a store
    /// change (see the operator's `priority`), never what a user is waiting for.
    pub fn is_background(self) -> bool {
        matches!(self, SyncReason::Refresh | SyncReason::StoreChanged)
    }

    /// Whether every generator runs again: only when values are due to change (first sync,
    /// refresh, force-sync); every other sync reuses what was generated last.
    pub fn regenerates_all(self) -> bool {
        matches!(
            self,
            SyncReason::FirstSync | SyncReason::Refresh | SyncReason::ForceSync
        )
    }
}

impl std::fmt::Display for SyncReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The target Secret as found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// No Secret, or `creationPolicy: None` (nothing to compare).
    Missing,
    /// The Secret holds what kuvert last wrote.
    InSync,
    /// Someone changed the Secret since kuvert wrote it.
    Drifted,
}

/// Compares a Secret with the hash kuvert recorded when it wrote it.
pub fn target_state(es: &ExternalSecret, secret: Option<&Secret>) -> TargetState {
    let policy = es.spec.creation_policy();
    match secret {
        _ if policy == CreationPolicy::None => TargetState::InSync,
        None => TargetState::Missing,
        Some(s) => {
            let recorded = s.annotations().get(DATA_HASH_ANNOTATION);
            let managed = s.labels().get(MANAGED_LABEL).map(String::as_str) == Some("true");
            let current = data_hash(&s.data.clone().unwrap_or_default());
            if managed && recorded == Some(&current) {
                TargetState::InSync
            } else {
                TargetState::Drifted
            }
        }
    }
}

/// What in an ExternalSecret can call for a reconcile, as one number: its identity, spec,
/// labels, annotations (the force-sync one among them) and deletion, but not its status. A
/// change of status alone is kuvert's own write: reconciling on it again read the stores a
/// second time and logged a failure twice.
pub fn change_key(es: &ExternalSecret) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    es.metadata.uid.hash(&mut hasher);
    serde_json::to_string(&es.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    es.metadata.labels.hash(&mut hasher);
    es.metadata.annotations.hash(&mut hasher);
    es.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    hasher.finish()
}

/// Periodic refreshes land in the last tenth of the interval, at a point fixed per object, so
/// objects created together do not refresh together.
pub fn spread_interval(es: &ExternalSecret, interval: Duration) -> Duration {
    let id = es.uid().unwrap_or_else(|| es.name_any());
    interval.mul_f64(jitter(&id, 0, 0.9, 1.0))
}

/// What the controller knows beyond the object itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The target Secret as found.
    pub target: TargetState,
    /// A store the object uses changed since it was last synced.
    pub store_changed: bool,
    /// What its leases need (see [`crate::generated::GeneratedState::lease_needs`]).
    pub leases: LeaseSummary,
}

/// What an object's leases need, as far as the decision goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseSummary {
    /// Some credentials must be replaced now (their lease cannot be renewed further).
    pub replace: bool,
    /// How long until the next lease needs anything.
    pub next: Option<Duration>,
}

/// The operator's timing settings the decision applies (`kuvert run` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How old a shared read a first sync (or any sync that is not a refresh) accepts.
    pub coalesce: Duration,
    /// The shortest refresh interval honoured: a shorter `refreshInterval` is raised to it.
    pub min_refresh: Duration,
}

/// A periodic refresh shares a read only when it is at most `1 / REFRESH_SHARE_DIVISOR` of its
/// interval old.
pub const REFRESH_SHARE_DIVISOR: u32 = 10;

/// How old a coalesced read a refresh every `interval` accepts: a tenth of the interval. A
/// refresh is due 0.9 to 1.0 interval after the last sync (see [`spread_interval`]), so a
/// synced value is at most 1.1 intervals old when it is replaced. Accepting a read as old as
/// the interval itself, as kuvert first did, let a value be about twice the interval old.
pub fn refresh_max_age(interval: Duration) -> Duration {
    interval / REFRESH_SHARE_DIVISOR
}

/// Decides for `es` at `now`. `timing.coalesce` is how old a shared read a first sync accepts.
/// Credentials whose lease cannot be renewed are replaced even when nothing else is due, and
/// a wait never outlasts the next lease's renewal.
pub fn decide(
    es: &ExternalSecret,
    observed: Observed,
    now: jiff::Timestamp,
    timing: Timing,
) -> Result<Decision, SyncError> {
    let coalesce = timing.coalesce;
    Ok(match decide_spec(es, observed, now, timing)? {
        Decision::Wait(_) if observed.leases.replace => Decision::Sync {
            max_age: coalesce,
            why: SyncReason::LeaseExpiring,
        },
        Decision::Wait(delay) => Decision::Wait(match (delay, observed.leases.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }),
        sync => sync,
    })
}

impl Decision {
    /// The decision once renewals made after it failed: credentials whose lease could not be
    /// renewed are replaced now, as if their lease could not be renewed at all.
    pub fn after_failed_renewals(self, coalesce: Duration) -> Decision {
        match self {
            Decision::Wait(_) => Decision::Sync {
                max_age: coalesce,
                why: SyncReason::LeaseExpiring,
            },
            sync => sync,
        }
    }
}

/// How old a shared read a first sync accepts: one made at most `coalesce` before the object
/// was created, and never one older than twice `coalesce`. Measured from the sync alone,
/// objects created together but synced more than `coalesce` after the first of them read each
/// key a second time: the benchmark's initial sync of 10,000 objects over 100 keys took 7 s and
/// cost 200 store reads, where a value read after the user created an object is as fresh as
/// its first sync can promise. The cap keeps a retried first sync of an old object from taking
/// an old value. `creationTimestamp` has whole seconds, so the anchor may be up to a second
/// early.
fn first_sync_age(es: &ExternalSecret, now: jiff::Timestamp, coalesce: Duration) -> Duration {
    let age = es
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|created| now.duration_since(created.0).try_into().ok())
        .unwrap_or(Duration::ZERO);
    coalesce + age.min(coalesce)
}

/// The decision from the object, its target and its stores alone.
fn decide_spec(
    es: &ExternalSecret,
    observed: Observed,
    now: jiff::Timestamp,
    timing: Timing,
) -> Result<Decision, SyncError> {
    let coalesce = timing.coalesce;
    let target = observed.target;
    let interval = floored_refresh_interval(es, timing.min_refresh)?;
    let status = es.status.clone().unwrap_or_default();
    let forced = force_sync_value(es);
    if forced.is_some() && forced != status.force_sync {
        return Ok(Decision::Sync {
            max_age: Duration::ZERO,
            why: SyncReason::ForceSync,
        });
    }
    let Some(last) = status.refresh_time.as_ref().map(|t| t.0) else {
        return Ok(Decision::Sync {
            max_age: first_sync_age(es, now, coalesce),
            why: SyncReason::FirstSync,
        });
    };
    if es.metadata.generation != status.observed_generation {
        return Ok(Decision::Sync {
            max_age: coalesce,
            why: SyncReason::SpecChanged,
        });
    }
    if observed.store_changed {
        return Ok(Decision::Sync {
            max_age: coalesce,
            why: SyncReason::StoreChanged,
        });
    }
    let ready = conditions::find_ready(&status.conditions).is_some_and(|c| c.status == "True");
    if !ready {
        return Ok(Decision::Sync {
            max_age: coalesce,
            why: SyncReason::Retry,
        });
    }
    // `deletionPolicy: Delete` removed the Secret on purpose: its absence is no drift.
    let deleted = conditions::find_ready(&status.conditions)
        .is_some_and(|c| c.reason == crate::engine::status::DELETED);
    if target != TargetState::InSync && !(deleted && target == TargetState::Missing) {
        // Restoring what kuvert wrote: values as fresh as a refresh would read are enough.
        return Ok(Decision::Sync {
            max_age: interval.map_or(coalesce, refresh_max_age),
            why: SyncReason::Drift,
        });
    }
    let Some(interval) = interval else {
        return Ok(Decision::Wait(None));
    };
    let since = now
        .duration_since(last)
        .try_into()
        .unwrap_or(Duration::ZERO);
    let due = spread_interval(es, interval);
    if since >= due {
        Ok(Decision::Sync {
            max_age: refresh_max_age(interval),
            why: SyncReason::Refresh,
        })
    } else {
        Ok(Decision::Wait(Some(due - since)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::api::{
        ExternalSecretSpec, ExternalSecretStatus, ExternalSecretTarget, RefreshPolicy,
    };
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    const COALESCE: Timing = Timing {
        coalesce: Duration::from_secs(5),
        min_refresh: Duration::ZERO,
    };

    /// An ExternalSecret synced at t=1000 at generation 1, Ready.
    fn synced_es(interval: &str) -> ExternalSecret {
        let mut es = ExternalSecret::new(
            "app",
            ExternalSecretSpec {
                refresh_interval: Some(interval.to_owned()),
                ..ExternalSecretSpec::default()
            },
        );
        es.metadata.namespace = Some("default".into());
        es.metadata.uid = Some("uid-1".into());
        es.metadata.generation = Some(1);
        es.status = Some(ExternalSecretStatus {
            conditions: vec![conditions::ready(
                &[],
                true,
                "SecretSynced",
                "ok",
                Some(1),
                at(1000),
            )],
            refresh_time: Some(Time(at(1000))),
            observed_generation: Some(1),
            ..ExternalSecretStatus::default()
        });
        es
    }

    #[test]
    fn only_a_change_outside_the_status_calls_for_a_reconcile() {
        let es = synced_es("1h");
        let key = change_key(&es);
        let mut status_only = es.clone();
        status_only.status = None;
        assert_eq!(change_key(&status_only), key);

        let mut spec = es.clone();
        spec.spec.refresh_interval = Some("2h".into());
        let mut annotated = es.clone();
        annotated.metadata.annotations =
            Some([(crate::api::FORCE_SYNC_ANNOTATION.to_owned(), "1".to_owned())].into());
        let mut labelled = es.clone();
        labelled.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        let mut deleted = es.clone();
        deleted.metadata.deletion_timestamp = Some(Time(at(2000)));
        let mut recreated = es.clone();
        recreated.metadata.uid = Some("uid-2".into());
        for changed in [spec, annotated, labelled, deleted, recreated] {
            assert_ne!(change_key(&changed), key);
        }
    }

    fn seen(target: TargetState) -> Observed {
        Observed {
            target,
            store_changed: false,
            leases: LeaseSummary::default(),
        }
    }

    fn sync(max_age: u64, why: SyncReason) -> Decision {
        Decision::Sync {
            max_age: Duration::from_secs(max_age),
            why,
        }
    }

    #[test]
    fn a_new_external_secret_syncs_with_the_coalesce_window() {
        let mut es = synced_es("1h");
        es.status = None;
        assert_eq!(
            decide(&es, seen(TargetState::Missing), at(0), COALESCE).unwrap(),
            sync(5, SyncReason::FirstSync)
        );
    }

    #[test]
    fn a_first_sync_accepts_reads_made_since_the_coalesce_window_before_its_creation() {
        let mut es = synced_es("1h");
        es.status = None;
        es.metadata.creation_timestamp = Some(Time(at(100)));
        let first = |now| decide(&es, seen(TargetState::Missing), at(now), COALESCE).unwrap();
        // Synced at once: the window alone.
        assert_eq!(first(100), sync(5, SyncReason::FirstSync));
        // Synced 3 s after its creation (a busy initial sync): reads made from 5 s before the
        // creation on are still accepted, so objects created together share one read.
        assert_eq!(first(103), sync(8, SyncReason::FirstSync));
        // Never more than twice the window, however late the sync.
        assert_eq!(first(107), sync(10, SyncReason::FirstSync));
        assert_eq!(first(100_000), sync(10, SyncReason::FirstSync));
        // A creation time ahead of the clock (skew) adds nothing.
        assert_eq!(first(90), sync(5, SyncReason::FirstSync));
    }

    #[test]
    fn periodic_refresh_waits_until_its_spread_due_time() {
        let es = synced_es("1h");
        let due = spread_interval(&es, Duration::from_secs(3600));
        assert!(due >= Duration::from_secs(3240) && due < Duration::from_secs(3600));
        let before = 1000 + due.as_secs() as i64 - 10;
        match decide(&es, seen(TargetState::InSync), at(before), COALESCE).unwrap() {
            Decision::Wait(Some(d)) => {
                assert!(d <= Duration::from_secs(11) && d > Duration::from_secs(9))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1000 + 3600), COALESCE).unwrap(),
            sync(360, SyncReason::Refresh)
        );
    }

    #[test]
    fn a_refresh_shares_only_a_read_a_tenth_of_its_interval_old() {
        assert_eq!(
            refresh_max_age(Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        assert_eq!(
            refresh_max_age(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_max_age(Duration::from_secs(90)),
            Duration::from_secs(9)
        );
        // The bound: the latest refresh is due one interval after the last sync and accepts a
        // read a tenth of an interval old, so a value is replaced when at most 1.1 intervals old.
        let es = synced_es("1h");
        let latest_due = Duration::from_secs(3600);
        assert!(spread_interval(&es, Duration::from_secs(3600)) <= latest_due);
        let Decision::Sync { max_age, .. } =
            decide(&es, seen(TargetState::InSync), at(1000 + 3600), COALESCE).unwrap()
        else {
            panic!("a refresh is due");
        };
        assert_eq!(latest_due + max_age, Duration::from_secs(3960));
    }

    #[test]
    fn a_refresh_interval_below_the_minimum_refreshes_at_the_minimum() {
        let floored = Timing {
            min_refresh: Duration::from_secs(10),
            ..COALESCE
        };
        let es = synced_es("1ms");
        let due = spread_interval(&es, Duration::from_secs(10));
        assert!(due >= Duration::from_secs(9) && due <= Duration::from_secs(10));
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), floored).unwrap(),
            Decision::Wait(Some(due - Duration::from_secs(1))),
            "not due after one second, as 1ms would be"
        );
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1010), floored).unwrap(),
            sync(1, SyncReason::Refresh),
            "due after ten seconds, sharing a read one second old"
        );
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            Decision::Sync {
                max_age: Duration::from_micros(100),
                why: SyncReason::Refresh
            },
            "without a floor, 1ms is taken as written"
        );
    }

    #[test]
    fn refresh_interval_zero_syncs_once() {
        let es = synced_es("0");
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(999_999), COALESCE).unwrap(),
            Decision::Wait(None)
        );
    }

    #[test]
    fn created_once_and_on_change_do_not_refresh_periodically() {
        for policy in [RefreshPolicy::CreatedOnce, RefreshPolicy::OnChange] {
            let mut es = synced_es("1m");
            es.spec.refresh_policy = Some(policy);
            assert_eq!(
                decide(&es, seen(TargetState::InSync), at(999_999), COALESCE).unwrap(),
                Decision::Wait(None)
            );
        }
    }

    #[test]
    fn force_sync_annotation_syncs_fresh_once_per_value() {
        let mut es = synced_es("1h");
        es.metadata.annotations =
            Some(BTreeMap::from([("force-sync".into(), "1700000000".into())]));
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            sync(0, SyncReason::ForceSync)
        );
        // Once acted on (recorded in status), the same value does nothing.
        es.status.as_mut().unwrap().force_sync = Some("1700000000".into());
        assert!(matches!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            Decision::Wait(Some(_))
        ));
        // Even with refreshPolicy CreatedOnce a new value syncs.
        es.spec.refresh_policy = Some(RefreshPolicy::CreatedOnce);
        es.metadata.annotations = Some(BTreeMap::from([(
            "kuvert.io/force-sync".into(),
            "2".into(),
        )]));
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            sync(0, SyncReason::ForceSync)
        );
    }

    #[test]
    fn a_spec_change_syncs() {
        let mut es = synced_es("1h");
        es.metadata.generation = Some(2);
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            sync(5, SyncReason::SpecChanged)
        );
    }

    #[test]
    fn a_changed_store_syncs_its_users() {
        let es = synced_es("1h");
        let observed = Observed {
            store_changed: true,
            ..seen(TargetState::InSync)
        };
        assert_eq!(
            decide(&es, observed, at(1001), COALESCE).unwrap(),
            sync(5, SyncReason::StoreChanged)
        );
    }

    #[test]
    fn a_failed_sync_is_retried() {
        let mut es = synced_es("1h");
        es.status.as_mut().unwrap().conditions = vec![conditions::ready(
            &[],
            false,
            "SecretSyncedError",
            "x",
            Some(1),
            at(1000),
        )];
        assert_eq!(
            decide(&es, seen(TargetState::InSync), at(1001), COALESCE).unwrap(),
            sync(5, SyncReason::Retry)
        );
    }

    #[test]
    fn an_edited_or_deleted_secret_is_restored_from_values_as_fresh_as_a_refresh() {
        let es = synced_es("1h");
        assert_eq!(
            decide(&es, seen(TargetState::Drifted), at(1001), COALESCE).unwrap(),
            sync(360, SyncReason::Drift)
        );
        assert_eq!(
            decide(&es, seen(TargetState::Missing), at(1001), COALESCE).unwrap(),
            sync(360, SyncReason::Drift)
        );
    }

    #[test]
    fn a_secret_deleted_by_deletion_policy_is_no_drift_but_a_recreated_one_is() {
        let mut es = synced_es("1h");
        let status = es.status.as_mut().unwrap();
        status.conditions = vec![conditions::ready(
            &[],
            true,
            "SecretDeleted",
            "gone",
            Some(1),
            at(1000),
        )];
        assert!(matches!(
            decide(&es, seen(TargetState::Missing), at(1001), COALESCE).unwrap(),
            Decision::Wait(Some(_))
        ));
        assert_eq!(
            decide(&es, seen(TargetState::Drifted), at(1001), COALESCE).unwrap(),
            sync(360, SyncReason::Drift)
        );
        assert_eq!(
            decide(&es, seen(TargetState::Missing), at(1000 + 3600), COALESCE).unwrap(),
            sync(360, SyncReason::Refresh),
            "the refresh still looks for the remote secrets"
        );
    }

    #[test]
    fn after_a_restart_nothing_syncs_before_it_is_due() {
        // The status survives a restart; a Secret in sync and a recent refreshTime mean no read.
        let es = synced_es("1h");
        assert!(matches!(
            decide(&es, seen(TargetState::InSync), at(1060), COALESCE).unwrap(),
            Decision::Wait(Some(_))
        ));
    }

    #[test]
    fn credentials_to_replace_sync_when_nothing_else_is_due() {
        let es = synced_es("1h");
        let observed = Observed {
            leases: LeaseSummary {
                replace: true,
                next: None,
            },
            ..seen(TargetState::InSync)
        };
        assert_eq!(
            decide(&es, observed, at(1001), COALESCE).unwrap(),
            sync(5, SyncReason::LeaseExpiring)
        );
        // Anything else due wins: its reason says more (a refresh regenerates everything).
        assert_eq!(
            decide(&es, observed, at(1000 + 3600), COALESCE).unwrap(),
            sync(360, SyncReason::Refresh)
        );
    }

    #[test]
    fn a_renewal_that_failed_replaces_the_credentials_unless_a_sync_is_due_anyway() {
        let wait = Decision::Wait(Some(Duration::from_secs(60)));
        assert_eq!(
            wait.after_failed_renewals(COALESCE.coalesce),
            sync(5, SyncReason::LeaseExpiring)
        );
        let refresh = sync(360, SyncReason::Refresh);
        assert_eq!(refresh.after_failed_renewals(COALESCE.coalesce), refresh);
    }

    #[test]
    fn a_wait_ends_when_the_next_lease_needs_renewing() {
        let es = synced_es("1h");
        let observed = Observed {
            leases: LeaseSummary {
                replace: false,
                next: Some(Duration::from_secs(60)),
            },
            ..seen(TargetState::InSync)
        };
        assert_eq!(
            decide(&es, observed, at(1001), COALESCE).unwrap(),
            Decision::Wait(Some(Duration::from_secs(60)))
        );
        let once = synced_es("0");
        assert_eq!(
            decide(&once, observed, at(1001), COALESCE).unwrap(),
            Decision::Wait(Some(Duration::from_secs(60)))
        );
    }

    #[test]
    fn only_first_syncs_refreshes_and_force_syncs_regenerate_and_only_refreshes_yield() {
        use SyncReason::*;
        let all = SyncReason::ALL;
        let regenerating: Vec<_> = all.into_iter().filter(|r| r.regenerates_all()).collect();
        assert_eq!(regenerating, [FirstSync, ForceSync, Refresh]);
        let background: Vec<_> = all.into_iter().filter(|r| r.is_background()).collect();
        assert_eq!(background, [StoreChanged, Refresh]);
        assert_eq!(LeaseExpiring.to_string(), "LeaseExpiring");
    }

    #[test]
    fn target_state_compares_the_recorded_hash() {
        let es = synced_es("1h");
        let data = BTreeMap::from([("k".to_owned(), ByteString(b"v".to_vec()))]);
        let mut secret = Secret {
            data: Some(data.clone()),
            ..Secret::default()
        };
        secret.metadata.labels = Some(BTreeMap::from([(MANAGED_LABEL.into(), "true".into())]));
        secret.metadata.annotations = Some(BTreeMap::from([(
            DATA_HASH_ANNOTATION.into(),
            data_hash(&data),
        )]));
        assert_eq!(target_state(&es, Some(&secret)), TargetState::InSync);
        secret
            .data
            .as_mut()
            .unwrap()
            .insert("k".into(), ByteString(b"edited".to_vec()));
        assert_eq!(target_state(&es, Some(&secret)), TargetState::Drifted);
        assert_eq!(target_state(&es, None), TargetState::Missing);
        let mut none = es.clone();
        none.spec.target = Some(ExternalSecretTarget {
            creation_policy: Some(CreationPolicy::None),
            ..ExternalSecretTarget::default()
        });
        assert_eq!(target_state(&none, None), TargetState::InSync);
    }
}
