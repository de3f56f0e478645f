//! Refreshes never hold up other syncs.
//!
//! kube-runtime's controller runs at most `--concurrency` reconciles at once, taking objects in
//! the order they became due. When refreshes fall due faster than kuvert can serve them
//! (thousands of objects, a short interval, a slow store or API server), every slot goes to
//! overdue refreshes, and a spec change, a force-sync or a new ExternalSecret waits behind all
//! of them: minutes, and without end once the backlog grows. So background syncs (a due
//! refresh, a store that changed: `SyncReason::is_background`) take one of fewer slots, which
//! leaves a quarter of the reconciles (at least one) to everything else. A background sync that
//! finds its slots taken steps back: it is requeued a moment later, behind what became due
//! meanwhile, having cost no request.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backoff::{ObjectKey, jitter};

/// The slots background syncs may take.
pub struct BackgroundSlots(Arc<Semaphore>);

impl BackgroundSlots {
    /// Slots for `concurrency` reconciles at once: all but a quarter (at least one, unless
    /// there is only one slot).
    pub fn new(concurrency: u16) -> Self {
        let concurrency = usize::from(concurrency.max(1));
        let reserved = (concurrency / 4).max(1).min(concurrency - 1);
        BackgroundSlots(Arc::new(Semaphore::new(concurrency - reserved)))
    }

    /// A slot, held until dropped; `None`: all taken, step back.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// How long a background sync of `key` steps back: one to three seconds, spread over objects
/// (and over attempts, by `attempt`) so they do not return together.
pub fn step_back(key: &ObjectKey, attempt: u64) -> Duration {
    Duration::from_secs_f64(jitter(&key.to_string(), attempt, 1.0, 3.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_slots_and_at_least_one_stay_free_of_background_syncs() {
        for (concurrency, background) in [(16, 12), (4, 3), (3, 2), (2, 1), (1, 1)] {
            let slots = BackgroundSlots::new(concurrency);
            let held: Vec<_> = std::iter::from_fn(|| slots.try_take()).collect();
            assert_eq!(held.len(), background, "--concurrency {concurrency}");
        }
    }

    #[test]
    fn a_returned_slot_is_taken_again() {
        let slots = BackgroundSlots::new(2);
        let held = slots.try_take().expect("a slot");
        assert!(
            slots.try_take().is_none(),
            "the only background slot is held"
        );
        drop(held);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn steps_back_last_one_to_three_seconds_and_differ_between_objects() {
        let key = |name: String| ObjectKey {
            kind: "ExternalSecret".to_owned(),
            namespace: "ns".to_owned(),
            name,
        };
        let delays: Vec<Duration> = (0..50)
            .map(|i| step_back(&key(format!("es-{i}")), 0))
            .collect();
        assert!(delays.iter().all(|d| (1.0..3.0).contains(&d.as_secs_f64())));
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
        let a = key("a".to_owned());
        assert_ne!(step_back(&a, 0), step_back(&a, 1));
    }
}
