//! How long objects wait in a controller's queue: from being queued (a watch event naming
//! them, or their requeue falling due) to their reconcile starting. Waits grow when reconciles
//! cannot keep up (`--concurrency`, a slow store, API throttling), long before syncs fail.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;

use crate::backoff::ObjectKey;
use crate::metrics::QUEUE_WAIT;

/// When each waiting object was queued (the earliest time, when queued again meanwhile).
///
/// Every object with a refresh interval waits here for its next refresh, so the map is keyed
/// by a 64-bit digest of the object's key, not the key itself: by its layout an entry is a
/// digest and an `Instant` (24 bytes) instead of three `String`s with their heap copies (over
/// 100 bytes; estimated, not measured). A collision, vanishingly rare, would only mix two
/// objects' wait times.
#[derive(Default)]
pub struct QueueClock(Mutex<HashMap<u64, Instant>>);

/// The digest an object is kept under (the same in every call of one process).
fn digest(key: &ObjectKey) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

impl QueueClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.0.lock().expect("queue clock lock")
    }

    /// `key` is queued now (a watch event named it).
    pub fn queued(&self, key: &ObjectKey) {
        self.due(key, Instant::now());
    }

    /// `key` is queued from `at` on; an earlier time it was queued at stays.
    pub fn due(&self, key: &ObjectKey, at: Instant) {
        self.lock()
            .entry(digest(key))
            .and_modify(|since| *since = (*since).min(at))
            .or_insert(at);
    }

    /// What a reconcile of `key` returns: look again after `after` (queued then), or
    /// (`None`) when something changes.
    pub fn next(&self, key: &ObjectKey, after: Option<Duration>) -> Action {
        match after {
            Some(after) => {
                self.due(key, Instant::now() + after);
                Action::requeue(after)
            }
            None => Action::await_change(),
        }
    }

    /// A reconcile of `key` (of `kind`) starts: records how long it waited, if it was queued
    /// (`None` otherwise), and forgets it.
    pub fn started(&self, kind: &'static str, key: &ObjectKey) -> Option<Duration> {
        let since = self.lock().remove(&digest(key))?;
        let waited = Instant::now().saturating_duration_since(since);
        metrics::histogram!(QUEUE_WAIT, "kind" => kind).record(waited.as_secs_f64());
        Some(waited)
    }

    /// Forgets every object but the `live` ones.
    pub fn retain<'a>(&self, live: impl IntoIterator<Item = &'a ObjectKey>) {
        let live: HashSet<u64> = live.into_iter().map(digest).collect();
        self.lock().retain(|key, _| live.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            kind: "ExternalSecret".to_owned(),
            namespace: "ns".to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn a_wait_runs_from_the_earliest_queueing_to_the_start() {
        let clock = QueueClock::default();
        let start = Instant::now();
        clock.due(&key("a"), start - Duration::from_secs(5));
        clock.due(&key("a"), start - Duration::from_secs(2));
        let waited = clock.started("ExternalSecret", &key("a")).unwrap();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert_eq!(
            clock.started("ExternalSecret", &key("a")),
            None,
            "forgotten"
        );
    }

    #[test]
    fn a_requeue_is_queued_when_it_falls_due_and_an_event_before_it_counts_first() {
        let clock = QueueClock::default();
        let _ = clock.next(&key("a"), Some(Duration::from_secs(3600)));
        assert_eq!(
            clock.started("ExternalSecret", &key("a")),
            Some(Duration::ZERO),
            "started before it was due: no wait"
        );
        let _ = clock.next(&key("b"), Some(Duration::from_secs(3600)));
        clock.due(&key("b"), Instant::now() - Duration::from_secs(1));
        assert!(clock.started("ExternalSecret", &key("b")).unwrap() >= Duration::from_secs(1));
        let _ = clock.next(&key("c"), None);
        assert_eq!(
            clock.started("ExternalSecret", &key("c")),
            None,
            "awaiting a change"
        );
    }

    #[test]
    fn deleted_objects_are_forgotten() {
        let clock = QueueClock::default();
        clock.queued(&key("a"));
        clock.queued(&key("b"));
        clock.retain(&[key("b")]);
        assert_eq!(clock.started("ExternalSecret", &key("a")), None);
        assert!(clock.started("ExternalSecret", &key("b")).is_some());
    }
}
