//! Per-object exponential backoff with jitter, for transient failures.
//!
//! Jitter is derived from the object's identity and attempt number rather than a random source:
//! it still spreads many failing objects apart, and a test can predict it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts by object.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: Mutex<HashMap<String, u32>>,
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
    pub fn next(&self, key: &str) -> Duration {
        let attempt = {
            let mut failures = self.failures.lock().expect("backoff lock");
            let n = failures.entry(key.to_owned()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.cap);
        exp.mul_f64(jitter(key, attempt as u64, 0.8, 1.2))
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}

/// A factor in `[low, high)` derived from `key` and `salt`, evenly spread over keys.
pub fn jitter(key: &str, salt: u64, low: f64, high: f64) -> f64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    salt.hash(&mut hasher);
    let unit = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    low + (high - low) * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_after_success() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<f64> = (0..6).map(|_| b.next("ns/a").as_secs_f64()).collect();
        let bases = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0];
        for (d, base) in delays.iter().zip(bases) {
            assert!(*d >= base * 0.8 && *d < base * 1.2, "{delays:?}");
        }
        b.reset("ns/a");
        assert!(b.next("ns/a") < Duration::from_millis(1200));
    }

    #[test]
    fn jitter_spreads_objects_apart() {
        let factors: Vec<f64> = (0..1000)
            .map(|i| jitter(&format!("ns/es-{i}"), 0, 0.0, 1.0))
            .collect();
        assert!(factors.iter().all(|f| (0.0..1.0).contains(f)));
        let low_half = factors.iter().filter(|f| **f < 0.5).count();
        assert!(
            (400..600).contains(&low_half),
            "{low_half} of 1000 in the low half"
        );
    }
}
