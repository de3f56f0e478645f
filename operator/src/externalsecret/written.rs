//! The statuses this process wrote that its cache has not seen yet.
//!
//! A reconcile can run on a cached ExternalSecret older than the status the previous
//! reconcile wrote (the write's watch event is still on its way). Deciding on that stale
//! status would repeat a force-sync or a first sync, and read the store again. Only kuvert
//! writes an ExternalSecret's status, so a cached status that differs from the one recorded
//! here is simply older: the recorded one is used until the cache catches up, then forgotten.
//!
//! It is forgotten by the object's next reconcile, or by the controller's periodic upkeep once
//! the cache shows it, never the moment the watch delivers the status: a reconcile may already
//! hold the older cached object then (it took it from the cache just before), and without the
//! record it would sync a second time. kuvert's own status writes wake no reconcile (see the
//! controller's `Wakes`), so the upkeep, every 10 s, is what bounds how long a record lives.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kuvert_core::api::{ExternalSecret, ExternalSecretStatus};

/// `status` as the API server stores it, and so as the watch will show it: `Time`s in whole
/// seconds. A record of the status as computed (nanoseconds) never equalled the cached one, so
/// it was never dropped and every reconcile of its object cloned it: at 10,000 objects several
/// MiB of statuses that were already in the cache.
pub fn as_stored(status: ExternalSecretStatus) -> ExternalSecretStatus {
    match serde_json::to_value(&status).and_then(serde_json::from_value) {
        Ok(stored) => stored,
        Err(_) => status,
    }
}

/// Statuses written, by object uid, until the cache shows them.
#[derive(Default)]
pub struct WrittenStatuses(Mutex<HashMap<String, ExternalSecretStatus>>);

impl WrittenStatuses {
    /// Records a status just written.
    pub fn wrote(&self, es: &ExternalSecret, status: &ExternalSecretStatus) {
        if let Some(uid) = es.uid() {
            self.0
                .lock()
                .expect("statuses lock")
                .insert(uid, status.clone());
        }
    }

    /// Keeps the records `keep` (given the uid and the status recorded) says to keep: the
    /// caller drops those of deleted objects and those the cache shows already.
    pub fn retain(&self, keep: impl Fn(&str, &ExternalSecretStatus) -> bool) {
        self.0
            .lock()
            .expect("statuses lock")
            .retain(|uid, recorded| keep(uid, recorded));
    }

    /// The object with the newest status known: its own once the cache has caught up.
    pub fn latest(&self, es: &ExternalSecret) -> Option<ExternalSecret> {
        let uid = es.uid()?;
        let mut written = self.0.lock().expect("statuses lock");
        let recorded = written.get(&uid)?;
        if es.status.as_ref() == Some(recorded) {
            written.remove(&uid);
            return None;
        }
        let mut newer = es.clone();
        newer.status = Some(recorded.clone());
        Some(newer)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kuvert_core::api::ExternalSecretSpec;

    use super::*;

    fn es(force_sync: Option<&str>) -> ExternalSecret {
        let mut es = ExternalSecret::new("a", ExternalSecretSpec::default());
        es.metadata.uid = Some("u1".into());
        es.status = force_sync.map(|v| ExternalSecretStatus {
            force_sync: Some(v.into()),
            ..ExternalSecretStatus::default()
        });
        es
    }

    #[test]
    fn a_stale_cached_status_is_replaced_until_the_cache_catches_up() {
        let written = WrittenStatuses::default();
        let stale = es(None);
        let status = es(Some("1")).status.unwrap();
        written.wrote(&stale, &status);
        let latest = written
            .latest(&stale)
            .expect("the recorded status is newer");
        assert_eq!(latest.status, Some(status.clone()));
        // The cache catches up: the record is dropped and the object used as it is.
        let current = es(Some("1"));
        assert!(written.latest(&current).is_none());
        assert!(written.latest(&stale).is_none(), "forgotten once seen");
    }

    #[test]
    fn a_deleted_objects_record_is_dropped() {
        let written = WrittenStatuses::default();
        let stale = es(None);
        written.wrote(&stale, &es(Some("1")).status.unwrap());
        written.retain(|uid, _| uid != "u1");
        assert!(written.latest(&stale).is_none());
    }

    #[test]
    fn a_status_is_recorded_as_the_api_server_stores_it_and_forgotten_once_the_cache_shows_it() {
        let at = |t: &str| Some(Time(t.parse().unwrap()));
        let computed = ExternalSecretStatus {
            refresh_time: at("2026-11-29T06:00:00.123456789Z"),
            ..ExternalSecretStatus::default()
        };
        let stored = as_stored(computed.clone());
        assert_eq!(stored.refresh_time, at("2026-11-29T06:00:00Z"));

        let written = WrittenStatuses::default();
        let stale = es(None);
        written.wrote(&stale, &stored);
        // The watch delivers the object as JSON from the API server.
        let mut patched = stale.clone();
        patched.status = Some(computed);
        let delivered: ExternalSecret =
            serde_json::from_value(serde_json::to_value(&patched).unwrap()).unwrap();
        // A reconcile that took the older object from the cache before it was delivered
        // still decides on the status written.
        assert_eq!(written.latest(&stale).unwrap().status, Some(stored));
        // The next reconcile, on the delivered object, forgets the record.
        assert!(written.latest(&delivered).is_none());
        assert!(written.0.lock().unwrap().is_empty());
    }
}
