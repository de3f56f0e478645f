//! The statuses this process wrote that its cache has not seen yet.
//!
//! A reconcile can run on a cached ExternalSecret older than the status the previous
//! reconcile wrote (the write's watch event is still on its way). Deciding on that stale
//! status would repeat a force-sync or a first sync, and read the store again. Only kuvert
//! writes an ExternalSecret's status, so a cached status that differs from the one recorded
//! here is simply older: the recorded one is used until the cache catches up, then forgotten.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kuvert_core::api::{ExternalSecret, ExternalSecretStatus};

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

    /// The watch delivered `es` to the cache: a record its status now shows is dropped at once,
    /// so records live for the watch's delay, not until the object's next reconcile (with
    /// 10,000 objects, a refresh cycle left thousands of statuses here).
    pub fn seen(&self, es: &ExternalSecret) {
        let Some(uid) = es.metadata.uid.as_deref() else {
            return;
        };
        let mut written = self.0.lock().expect("statuses lock");
        if written
            .get(uid)
            .is_some_and(|r| es.status.as_ref() == Some(r))
        {
            written.remove(uid);
        }
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
    fn the_watch_delivering_the_written_status_drops_the_record() {
        let written = WrittenStatuses::default();
        let stale = es(None);
        let status = es(Some("1")).status.unwrap();
        written.wrote(&stale, &status);
        written.seen(&stale);
        assert!(
            written.latest(&stale).is_some(),
            "an older status keeps the record"
        );
        written.seen(&es(Some("1")));
        assert!(
            written.latest(&stale).is_none(),
            "dropped when the watch showed it"
        );
    }
}
