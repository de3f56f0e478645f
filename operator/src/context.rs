//! Everything a reconcile needs, built once at start-up.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kuvert_core::generator::RandomSource;

use crate::backoff::Backoff;
use crate::budget::StoreBudgets;
use crate::externalsecret::stores::{ClientCache, StoreIndex};
use crate::externalsecret::written::WrittenStatuses;
use crate::generators::Generators;
use crate::kube_access::ClusterAccess;
use crate::providers::Registry;
use crate::queue::QueueClock;
use crate::reads::ReadCache;
use crate::references::ReferenceIndex;

/// The clock reconciles read; tests substitute their own.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// Settings parsed once from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Serve only objects whose `controller` (class) equals this; empty serves unclassed ones.
    pub controller_class: Option<String>,
    /// Watch only this namespace (cluster-wide when `None`).
    pub namespace: Option<String>,
    /// How old a coalesced store read a first sync accepts.
    pub coalesce_window: Duration,
    /// Label metrics by object name too.
    pub per_object_metrics: bool,
    /// This instance's name in Events and leases (the pod name in a cluster).
    pub instance: Option<String>,
    /// Fraction of a generated lease's duration after which it is renewed or replaced.
    pub lease_renew_fraction: f64,
    /// The refresh floor and the store-call budgets per namespace (off by default here;
    /// `kuvert run`'s flags default to [`crate::budget::LimitArgs::default`]).
    pub limits: crate::budget::LimitArgs,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            controller_class: None,
            namespace: None,
            coalesce_window: Duration::ZERO,
            per_object_metrics: false,
            instance: None,
            lease_renew_fraction: kuvert_core::lease::DEFAULT_RENEW_FRACTION,
            limits: crate::budget::LimitArgs {
                min_refresh_interval: Duration::ZERO,
                store_qps_per_namespace: 0.0,
                store_burst_per_namespace: 1,
            },
        }
    }
}

impl Settings {
    /// Whether this instance serves an object of controller class `class`.
    pub fn serves(&self, class: Option<&str>) -> bool {
        class.unwrap_or_default() == self.controller_class.as_deref().unwrap_or_default()
    }
}

/// The dependencies of every controller.
pub struct Context {
    /// The operator's Kubernetes client.
    pub client: Client,
    /// What providers read from the cluster.
    pub kube: ClusterAccess,
    /// The providers.
    pub registry: Registry,
    /// The generator kinds.
    pub generators: Generators,
    /// Coalesced store reads.
    pub reads: Arc<ReadCache>,
    /// Logged-in clients per store.
    pub clients: ClientCache,
    /// Store calls charged per store and namespace.
    pub budgets: Arc<StoreBudgets>,
    /// Which ExternalSecrets use which store.
    pub index: Arc<StoreIndex>,
    /// Which Secrets, ConfigMaps and ServiceAccounts each store login and sync read.
    pub references: ReferenceIndex,
    /// Wakes for the controllers (changed references, stores found failing).
    pub wakes: crate::wakes::Wakes,
    /// Statuses written that the cache has not shown yet.
    pub statuses: WrittenStatuses,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Transient-failure backoff per object.
    pub backoff: Backoff,
    /// Backoff for failures a change must fix (a refused login, a missing store, a bad
    /// template): slower, but never given up, since the change may be outside the object
    /// (a credential rotated, a policy restored, a store created).
    pub retry: Backoff,
    /// When waiting objects were queued (the queue-wait histogram).
    pub queue: QueueClock,
    /// The current time.
    pub clock: Clock,
    /// Command-line settings.
    pub settings: Settings,
}

impl Context {
    /// A context with the built-in providers, the system clock and the operating system's
    /// randomness.
    pub fn new(client: Client, settings: Settings) -> Arc<Self> {
        let random = Arc::new(kuvert_generator_random::OsRandom::default());
        Self::with(client, settings, Arc::new(jiff::Timestamp::now), random)
    }

    /// A context with the built-in providers, reading time from `clock` and drawing generated
    /// values from `random`: tests pass a settable clock and a seeded source.
    pub fn with(
        client: Client,
        settings: Settings,
        clock: Clock,
        random: Arc<dyn RandomSource>,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "kuvert".to_owned(),
            instance: settings.instance.clone(),
        };
        let registry = Registry::builtin();
        Arc::new(Context {
            kube: ClusterAccess::new(client.clone()),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            generators: Generators::builtin(random, registry.vault_cache().clone()),
            registry,
            reads: ReadCache::new(),
            clients: ClientCache::default(),
            budgets: Arc::new(StoreBudgets::new(
                settings.limits.store_qps_per_namespace,
                settings.limits.store_burst_per_namespace,
            )),
            index: Arc::default(),
            references: ReferenceIndex::default(),
            wakes: crate::wakes::Wakes::default(),
            statuses: WrittenStatuses::default(),
            backoff: Backoff::default(),
            retry: Backoff::new(Duration::from_secs(10), Duration::from_secs(600)),
            queue: QueueClock::default(),
            clock,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_serves_only_its_own_controller_class() {
        let plain = Settings::default();
        assert!(plain.serves(None));
        assert!(plain.serves(Some("")));
        assert!(!plain.serves(Some("blue")));
        let blue = Settings {
            controller_class: Some("blue".to_owned()),
            ..Settings::default()
        };
        assert!(blue.serves(Some("blue")));
        assert!(!blue.serves(None));
    }
}
