//! Per-object exponential backoff with jitter, for transient failures.
//!
//! Jitter is derived from the object's identity and attempt number rather than a random source:
//! it still spreads many failing objects apart, and a test can predict it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use kuvert_core::api::SecretStoreKind;
pub use kuvert_core::jitter::jitter;
use kuvert_core::store_key::StoreKey;

/// Which object per-object state belongs to: its kind, namespace (empty for a cluster-scoped
/// object) and name. Typed, so that a SecretStore and an ExternalSecret of one namespace and
/// name never share state, and every user of a key builds it the same way.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The object's kind.
    pub kind: String,
    /// Its namespace; empty when cluster-scoped.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `object`.
    pub fn of<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        ObjectKey {
            kind: K::kind(&()).into_owned(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        }
    }

    /// The store this key names (of a SecretStore or ClusterSecretStore key).
    pub fn store(&self) -> StoreKey {
        let kind = match self.kind.as_str() {
            "ClusterSecretStore" => SecretStoreKind::ClusterSecretStore,
            _ => SecretStoreKind::SecretStore,
        };
        StoreKey::new(kind, &self.namespace, &self.name)
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace.as_str() {
            "" => write!(f, "{}/{}", self.kind, self.name),
            namespace => write!(f, "{}/{namespace}/{}", self.kind, self.name),
        }
    }
}

/// Failure counts by object.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: Mutex<HashMap<ObjectKey, u32>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl Backoff {
    /// Doubles from `base` up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next try: the
    /// exponential delay, capped, then scaled by a jitter factor in [0.8, 1.2).
    pub fn next(&self, key: &ObjectKey) -> Duration {
        let attempt = {
            let mut failures = self.failures.lock().expect("backoff lock");
            let n = failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.cap);
        exp.mul_f64(jitter(&key.to_string(), attempt as u64, 0.8, 1.2))
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &ObjectKey) {
        self.failures.lock().expect("backoff lock").remove(key);
    }

    /// How many failures in a row `key` has had.
    pub fn failures(&self, key: &ObjectKey) -> u32 {
        let failures = self.failures.lock().expect("backoff lock");
        failures.get(key).copied().unwrap_or_default()
    }

    /// Forgets every object `live` says is gone (deleted objects are never reconciled again).
    pub fn retain(&self, live: impl Fn(&ObjectKey) -> bool) {
        self.failures
            .lock()
            .expect("backoff lock")
            .retain(|key, _| live(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind: kind.to_owned(),
            namespace: "ns".to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_reset_after_success() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let a = key("ExternalSecret", "a");
        let delays: Vec<f64> = (0..6).map(|_| b.next(&a).as_secs_f64()).collect();
        let bases = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0];
        for (d, base) in delays.iter().zip(bases) {
            assert!(*d >= base * 0.8 && *d < base * 1.2, "{delays:?}");
        }
        b.reset(&a);
        assert!(b.next(&a) < Duration::from_millis(1200));
    }

    #[test]
    fn objects_of_different_kinds_with_one_name_count_apart_and_deleted_ones_are_forgotten() {
        let b = Backoff::default();
        let (es, store) = (key("ExternalSecret", "a"), key("SecretStore", "a"));
        b.next(&es);
        b.next(&es);
        b.next(&store);
        assert_eq!((b.failures(&es), b.failures(&store)), (2, 1));
        b.reset(&store);
        assert_eq!((b.failures(&es), b.failures(&store)), (2, 0));
        b.retain(|k| k.kind != "ExternalSecret");
        assert_eq!(b.failures(&es), 0);
        assert_eq!(store.to_string(), "SecretStore/ns/a");
        assert_eq!(store.store().display(), "SecretStore/ns/a");
    }
}
