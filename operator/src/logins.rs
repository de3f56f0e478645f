//! Store logins as a store-level state: one login attempt at a time per store (and, for a
//! ClusterSecretStore, per namespace using it), and a refused login remembered for a backoff
//! step shared by every ExternalSecret and the store's own check.
//!
//! Why: OpenBao and Vault lock an AppRole out after repeated failed logins (user lockout: by
//! default 5 failures lock the role for 15 minutes, refusing even a correct secret-id). When
//! each ExternalSecret retried a refused login on its own backoff, 20 ExternalSecrets on one
//! store made 20 failed logins in their first second, and the role stayed locked after the
//! credential was fixed. Now a refused login is tried again once per step (10 s doubling up to
//! 10 minutes); until then every user of the store gets the same refusal without a login. A
//! change of what the login read (the credential Secret, found by [`crate::references`]) forgets
//! the refusal, so a fixed credential is tried at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuvert_core::provider::ProviderError;
use kuvert_core::store_key::StoreKey;
use tokio::time::Instant;

/// A store and the namespace using it (empty for a SecretStore and for the store's own check).
pub type LoginKey = (StoreKey, String);

/// First wait after a refused login.
pub const FIRST_STEP: Duration = Duration::from_secs(10);
/// Longest wait between refused logins.
pub const LAST_STEP: Duration = Duration::from_secs(600);

/// A refused login, remembered.
#[derive(Clone, Debug)]
struct Refusal {
    /// The store generation the login was made for (a changed spec is tried at once).
    generation: i64,
    /// The store's answer, handed to every user meanwhile.
    message: String,
    /// No new login before then.
    until: Instant,
    /// How many logins in a row were refused.
    refused: u32,
}

/// The login state of every store.
#[derive(Default)]
pub struct Logins {
    gates: Mutex<HashMap<LoginKey, Arc<tokio::sync::Mutex<Option<Refusal>>>>>,
}

impl Logins {
    fn gate(&self, key: &LoginKey) -> Arc<tokio::sync::Mutex<Option<Refusal>>> {
        self.gates
            .lock()
            .expect("logins lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// Runs `login` for `key` at store `generation`, one at a time per key; returns the
    /// remembered refusal instead while its backoff step lasts. A refused login
    /// (`Unauthenticated`) starts or lengthens the step; a login that works forgets it.
    pub async fn attempt<T>(
        &self,
        key: &LoginKey,
        generation: i64,
        login: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let gate = self.gate(key);
        let mut refusal = gate.lock().await;
        let now = Instant::now();
        let previous = refusal.take().filter(|r| r.generation == generation);
        if let Some(r) = previous.as_ref().filter(|r| now < r.until) {
            let kept = r.clone();
            *refusal = Some(kept.clone());
            return Err(ProviderError::Unauthenticated {
                message: kept.message,
            });
        }
        let result = login.await;
        if let Err(ProviderError::Unauthenticated { message }) = &result {
            let refused = previous.map_or(1, |r| r.refused.saturating_add(1));
            let step = FIRST_STEP
                .saturating_mul(1u32 << (refused - 1).min(16))
                .min(LAST_STEP);
            tracing::warn!(store = %key.0.display(), namespace = %key.1, refused, next_attempt_seconds = step.as_secs(), "the store refused the login; every user waits for the next attempt");
            *refusal = Some(Refusal {
                generation,
                message: message.clone(),
                until: Instant::now() + step,
                refused,
            });
        }
        result
    }

    /// Forgets the refused logins of `store` (what they read changed): the next use logs in.
    pub fn forget(&self, store: &StoreKey) {
        let gates: Vec<_> = self
            .gates
            .lock()
            .expect("logins lock")
            .iter()
            .filter(|((s, _), _)| s == store)
            .map(|(_, gate)| gate.clone())
            .collect();
        for gate in gates {
            // A login in progress keeps its gate; what it learns is about the old credential,
            // and the wake that called this re-queues every user anyway.
            if let Ok(mut refusal) = gate.try_lock() {
                *refusal = None;
            }
        }
    }

    /// Keeps only the keys of stores `live` says exist.
    pub fn retain(&self, live: impl Fn(&StoreKey) -> bool) {
        self.gates
            .lock()
            .expect("logins lock")
            .retain(|(store, _), _| live(store));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kuvert_core::api::SecretStoreKind;

    use super::*;

    fn key(namespace: &str) -> LoginKey {
        (
            StoreKey::new(SecretStoreKind::ClusterSecretStore, "", "vault"),
            namespace.to_owned(),
        )
    }

    fn refused() -> ProviderError {
        ProviderError::Unauthenticated {
            message: "invalid secret id".to_owned(),
        }
    }

    /// A login that counts its attempts and answers `answer`.
    async fn login(
        count: &AtomicUsize,
        answer: Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_users_of_a_refused_store_make_one_login_per_step() {
        let logins = Logins::default();
        let count = AtomicUsize::new(0);
        let a = key("a");
        let attempts = (0..20).map(|_| logins.attempt(&a, 1, login(&count, Err(refused()))));
        let results = futures::future::join_all(attempts).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "one login for twenty users"
        );
        assert!(results.iter().all(|r| matches!(
            r,
            Err(ProviderError::Unauthenticated { message }) if message == "invalid secret id"
        )));

        // Steps of 10 s, then 20 s, then 40 s: a login at each step's end, none between.
        for (step, total) in [(10, 2), (20, 3), (40, 4)] {
            tokio::time::advance(Duration::from_secs(step) - Duration::from_millis(200)).await;
            let _ = logins
                .attempt(&key("a"), 1, login(&count, Err(refused())))
                .await;
            assert_eq!(
                count.load(Ordering::SeqCst),
                total - 1,
                "before the step ends"
            );
            tokio::time::advance(Duration::from_millis(200)).await;
            let _ = logins
                .attempt(&key("a"), 1, login(&count, Err(refused())))
                .await;
            assert_eq!(count.load(Ordering::SeqCst), total, "once the step ended");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_credential_or_spec_is_tried_at_once_and_success_forgets_the_refusal() {
        let logins = Logins::default();
        let count = AtomicUsize::new(0);
        let _ = logins
            .attempt(&key("a"), 1, login(&count, Err(refused())))
            .await;
        logins.forget(&key("a").0);
        assert!(
            logins
                .attempt(&key("a"), 1, login(&count, Ok(())))
                .await
                .is_ok()
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "forgotten: logged in at once"
        );

        let _ = logins
            .attempt(&key("a"), 1, login(&count, Err(refused())))
            .await;
        assert!(
            logins
                .attempt(&key("a"), 2, login(&count, Ok(())))
                .await
                .is_ok(),
            "a new generation logs in at once"
        );
        assert!(
            logins
                .attempt(&key("a"), 2, login(&count, Ok(())))
                .await
                .is_ok()
        );
        assert_eq!(count.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_in_one_namespace_does_not_hold_another_nor_other_errors_hold_anyone() {
        let logins = Logins::default();
        let count = AtomicUsize::new(0);
        let _ = logins
            .attempt(&key("a"), 1, login(&count, Err(refused())))
            .await;
        assert!(
            logins
                .attempt(&key("b"), 1, login(&count, Ok(())))
                .await
                .is_ok()
        );
        let down = || ProviderError::Unavailable {
            message: "connection refused".to_owned(),
            source: None,
        };
        let _ = logins
            .attempt(&key("c"), 1, login(&count, Err(down())))
            .await;
        let _ = logins
            .attempt(&key("c"), 1, login(&count, Err(down())))
            .await;
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }
}
