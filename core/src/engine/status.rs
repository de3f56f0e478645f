//! The ExternalSecret's status after a sync, and when to sync again.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    CreationPolicy, DeletionPolicy, ExternalSecret, ExternalSecretStatus, FORCE_SYNC_ANNOTATION,
    FORCE_SYNC_ANNOTATION_SHORT, LocalObjectReference, RefreshPolicy, SyncedVersion,
};
use crate::conditions;

use super::fetch::{Fetched, FetchedDataFrom};
use super::{SyncError, target};

/// Reason of the `Ready` condition after a successful sync.
pub const SYNCED: &str = "SecretSynced";

/// Reason of the `Ready` condition after `deletionPolicy: Delete` removed the Secret.
pub const DELETED: &str = "SecretDeleted";

/// Checks what can be checked of the spec before any I/O.
pub fn check_spec(es: &ExternalSecret) -> Result<(), SyncError> {
    if es.spec.deletion_policy() == DeletionPolicy::Delete
        && es.spec.creation_policy() == CreationPolicy::Merge
    {
        return Err(SyncError::InvalidSpec {
            field: "spec.target.deletionPolicy".to_owned(),
            message: "Delete cannot be combined with creationPolicy Merge: kuvert never deletes a Secret it did not create (use deletionPolicy Merge or Retain)".to_owned(),
        });
    }
    refresh_interval(es).map(drop)
}

/// When to sync again after a success: the `refreshInterval` (default `1h`) for the
/// `Periodic` policy; `None` for `0`, `CreatedOnce` and `OnChange` (a change of the spec or a
/// force-sync triggers those).
pub fn refresh_interval(es: &ExternalSecret) -> Result<Option<Duration>, SyncError> {
    let text = es.spec.refresh_interval.as_deref().unwrap_or("1h");
    let interval = parse_go_duration(text).ok_or_else(|| SyncError::InvalidSpec {
        field: "spec.refreshInterval".to_owned(),
        message: format!("{text:?} is not a duration such as 1h, 30m or 1h30m"),
    })?;
    Ok(match es.spec.refresh_policy.unwrap_or_default() {
        RefreshPolicy::Periodic if !interval.is_zero() => Some(interval),
        _ => None,
    })
}

/// The refresh interval in effect as the status shows it: the spec's text or the default
/// `1h`; `None` when nothing refreshes periodically (or the interval is invalid).
pub fn effective_refresh_interval(es: &ExternalSecret) -> Option<String> {
    refresh_interval(es).ok().flatten()?;
    Some(
        es.spec
            .refresh_interval
            .clone()
            .unwrap_or_else(|| "1h".to_owned()),
    )
}

/// The refresh interval in effect under a floor (`kuvert run --min-refresh-interval`): the
/// spec's, raised to `floor`. Without a floor, `refreshInterval: 1ms` made one namespace user's
/// object read its store about 180 times a second.
pub fn floored_refresh_interval(
    es: &ExternalSecret,
    floor: Duration,
) -> Result<Option<Duration>, SyncError> {
    Ok(refresh_interval(es)?.map(|interval| interval.max(floor)))
}

/// Says in `status` (after a successful sync) that `floor` raised the spec's refresh interval:
/// `refreshInterval` shows the floor, and the `Ready` message adds why. Returns whether it did.
pub fn apply_refresh_floor(
    status: &mut ExternalSecretStatus,
    es: &ExternalSecret,
    floor: Duration,
) -> bool {
    let Ok(Some(asked)) = refresh_interval(es) else {
        return false;
    };
    if asked >= floor {
        return false;
    }
    let floor_text = format_go_duration(floor);
    let note = format!(
        "spec.refreshInterval {} is below this kuvert's minimum {floor_text}: refreshed every {floor_text}",
        es.spec.refresh_interval.as_deref().unwrap_or_default()
    );
    status.refresh_interval = Some(floor_text);
    if let Some(ready) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == conditions::READY)
        && !ready.message.contains(&note)
    {
        ready.message = format!("{}; {note}", ready.message);
    }
    true
}

/// Formats a duration as Go does (`10s`, `1m30s`, `1h0m0s`, `1.5s`, `250ms`), so the status
/// shows the floor in the syntax `refreshInterval` is written in.
pub fn format_go_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    if duration < Duration::from_secs(1) {
        let nanos = duration.subsec_nanos();
        let (value, unit) = if nanos.is_multiple_of(1_000_000) {
            (f64::from(nanos / 1_000_000), "ms")
        } else if nanos >= 1_000_000 {
            (f64::from(nanos) / 1e6, "ms")
        } else if nanos >= 1_000 {
            (f64::from(nanos) / 1e3, "µs")
        } else {
            (f64::from(nanos), "ns")
        };
        return format!("{value}{unit}");
    }
    let total = duration.as_secs();
    let (hours, minutes) = (total / 3600, total % 3600 / 60);
    let mut seconds = (total % 60).to_string();
    let nanos = duration.subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        seconds = format!("{seconds}.{}", fraction.trim_end_matches('0'));
    }
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// Parses a Go duration (`1h30m`, `1.5s`, `250ms`, `0`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let (unit, seconds) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        // `ms` before `m`: try the longest unit first.
        .filter(|(u, _)| rest.starts_with(u))
        .max_by_key(|(u, _)| u.len())?;
        total += number * seconds;
        rest = &rest[unit.len()..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The force-sync annotation's value, if set (`kuvert.io/force-sync`, else `force-sync`).
pub fn force_sync_value(es: &ExternalSecret) -> Option<String> {
    let annotations = es.metadata.annotations.as_ref()?;
    annotations
        .get(FORCE_SYNC_ANNOTATION)
        .or_else(|| annotations.get(FORCE_SYNC_ANNOTATION_SHORT))
        .cloned()
}

/// The status after a successful sync.
pub fn synced(
    es: &ExternalSecret,
    fetched: &Fetched,
    secret: Option<&Secret>,
    note: Option<&str>,
    now: jiff::Timestamp,
) -> ExternalSecretStatus {
    let previous = es.status.clone().unwrap_or_default();
    let name = target::secret_name(es);
    let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
    let message = match (secret, note) {
        (_, Some(note)) => note.to_owned(),
        (Some(s), None) => {
            let keys = s.data.as_ref().map_or(0, |d| d.len());
            let plural = if keys == 1 { "" } else { "s" };
            format!("Secret {namespace}/{name} is in sync ({keys} key{plural})")
        }
        (None, None) => {
            "every remote secret resolved; creationPolicy None writes no Secret".to_owned()
        }
    };
    ExternalSecretStatus {
        conditions: vec![conditions::ready(
            &previous.conditions,
            true,
            SYNCED,
            &message,
            es.metadata.generation,
            now,
        )],
        refresh_time: Some(Time(now)),
        refresh_interval: effective_refresh_interval(es),
        synced_resource_version: previous.synced_resource_version,
        binding: secret.map(|_| LocalObjectReference { name }),
        observed_generation: es.metadata.generation,
        force_sync: force_sync_value(es),
        synced_versions: synced_versions(fetched),
        // Leases and workloads are the operator's to record; the engine keeps what was there.
        leases: previous.leases,
        workloads: previous.workloads,
        workloads_up_to_date: previous.workloads_up_to_date,
    }
}

/// The status after `deletionPolicy: Delete` found every remote secret gone; `deleted` is the
/// Secret deleted, if there was one.
pub fn deleted(
    es: &ExternalSecret,
    fetched: &Fetched,
    deleted: Option<&Secret>,
    now: jiff::Timestamp,
) -> ExternalSecretStatus {
    let name = target::secret_name(es);
    let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
    let message = match deleted {
        Some(_) => format!(
            "every remote secret is gone; deletionPolicy Delete deleted Secret {namespace}/{name}"
        ),
        None => format!(
            "every remote secret is gone; deletionPolicy Delete keeps Secret {namespace}/{name} absent"
        ),
    };
    let mut status = synced(es, fetched, None, Some(&message), now);
    status.conditions = vec![conditions::ready(
        &es.status.clone().unwrap_or_default().conditions,
        true,
        DELETED,
        &message,
        es.metadata.generation,
        now,
    )];
    status.synced_resource_version = None;
    status
}

/// The status after a failed sync: the previous one with `Ready` false, the error's reason and
/// message (which names the field and the cause, never a value).
pub fn failed_status(
    es: &ExternalSecret,
    error: &SyncError,
    now: jiff::Timestamp,
) -> ExternalSecretStatus {
    failure_status(es, error.reason(), &error.to_string(), now)
}

/// The status after any failure (a sync's, or a write the API server refused): Ready false
/// with `reason` and `message`; the rest (what was last synced) stays. `message` must hold no
/// secret value.
pub fn failure_status(
    es: &ExternalSecret,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> ExternalSecretStatus {
    let mut status = es.status.clone().unwrap_or_default();
    let ready = conditions::ready(
        &status.conditions,
        false,
        reason,
        message,
        es.metadata.generation,
        now,
    );
    status.conditions.retain(|c| c.type_ != conditions::READY);
    status.conditions.push(ready);
    status.observed_generation = es.metadata.generation;
    status
}

/// The remote version of every value read, sorted by store and key.
fn synced_versions(fetched: &Fetched) -> Vec<SyncedVersion> {
    let mut seen = BTreeSet::new();
    let mut add = |store: &str, key: &str, version: &Option<String>| {
        seen.insert((store.to_owned(), key.to_owned(), version.clone()));
    };
    for (i, entry) in fetched.data_from.iter().enumerate() {
        if fetched.gone_data_from.contains(&i) {
            continue;
        }
        match entry {
            FetchedDataFrom::Extract(v) => add(&v.store, &v.key, &v.secret.version),
            FetchedDataFrom::Find { store, found } => {
                for (key, secret) in found {
                    add(store, key, &secret.version);
                }
            }
            // Made, not read: no remote version.
            FetchedDataFrom::Generated(_) => {}
        }
    }
    for (i, v) in fetched.data.iter().enumerate() {
        if fetched.gone_data.contains(&i) || fetched.generated_data.contains(&i) {
            continue;
        }
        add(&v.store, &v.key, &v.secret.version);
    }
    seen.into_iter()
        .map(|(store, remote_key, version)| SyncedVersion {
            remote_key,
            store,
            version,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_as_go_prints_them_and_parse_back() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
        ] {
            assert_eq!(format_go_duration(duration), text);
            assert_eq!(parse_go_duration(text), Some(duration), "{text}");
        }
    }

    fn es_refreshing(interval: Option<&str>) -> ExternalSecret {
        let mut es = ExternalSecret::new("app", crate::api::ExternalSecretSpec::default());
        es.spec.refresh_interval = interval.map(str::to_owned);
        es
    }

    #[test]
    fn the_floor_raises_a_shorter_refresh_interval_only() {
        let floor = Duration::from_secs(10);
        let interval = |text| floored_refresh_interval(&es_refreshing(text), floor).unwrap();
        assert_eq!(interval(Some("1ms")), Some(floor));
        assert_eq!(interval(Some("9.999s")), Some(floor));
        assert_eq!(interval(Some("10s")), Some(floor));
        assert_eq!(interval(Some("11s")), Some(Duration::from_secs(11)));
        assert_eq!(interval(None), Some(Duration::from_secs(3600)));
        assert_eq!(interval(Some("0")), None, "sync once stays sync once");
    }

    #[test]
    fn a_raised_refresh_interval_is_shown_in_the_status_and_the_ready_message() {
        let floor = Duration::from_secs(10);
        let es = es_refreshing(Some("1ms"));
        let now = jiff::Timestamp::from_second(1000).unwrap();
        let mut status = ExternalSecretStatus {
            conditions: vec![conditions::ready(&[], true, SYNCED, "in sync", None, now)],
            refresh_interval: Some("1ms".to_owned()),
            ..ExternalSecretStatus::default()
        };
        assert!(apply_refresh_floor(&mut status, &es, floor));
        assert_eq!(status.refresh_interval.as_deref(), Some("10s"));
        assert_eq!(
            status.conditions[0].message,
            "in sync; spec.refreshInterval 1ms is below this kuvert's minimum 10s: refreshed every 10s"
        );

        let mut unchanged = ExternalSecretStatus {
            conditions: vec![conditions::ready(&[], true, SYNCED, "in sync", None, now)],
            refresh_interval: Some("10s".to_owned()),
            ..ExternalSecretStatus::default()
        };
        let before = unchanged.clone();
        assert!(!apply_refresh_floor(
            &mut unchanged,
            &es_refreshing(Some("10s")),
            floor
        ));
        assert_eq!(unchanged, before);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "h", "1", "1x", "1h-", "-1h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }
}
