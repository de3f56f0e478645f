//! Resolving an ExternalSecret's store references: the store objects come from the store
//! controllers' caches, logged-in clients from a per-store cache, and every read goes through
//! the coalescing [`ReadCache`](crate::reads::ReadCache).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource};
use kuvert_core::api::{
    ClusterSecretStore, ClusterSecretStoreCondition, ExternalSecret, SecretStore, SecretStoreKind,
    SecretStoreRef, SecretStoreSpec,
};
use kuvert_core::engine::{ResolvedStore, StoreError, StoreResolver};
use kuvert_core::provider::{ProviderError, SecretsClient};
pub use kuvert_core::store_key::{StoreKey, stores_of};

use crate::budget::StoreBudgets;
use crate::kube_access::ClusterAccess;
use crate::logins::Logins;
use crate::providers::Registry;
use crate::reads::ReadCache;
use crate::references::{Recording, ReferenceIndex, User};
use crate::resolve::{self, FoundStore, StoreObjects};

/// The cached store objects, as the store controllers see them.
#[derive(Clone)]
pub struct StoreCaches {
    /// SecretStores.
    pub stores: Store<SecretStore>,
    /// ClusterSecretStores; `None` where this instance watches none (`--namespace`).
    pub cluster_stores: Option<Store<ClusterSecretStore>>,
}

/// Which ExternalSecrets use which store, so a store change requeues exactly those. Filled as
/// ExternalSecrets reconcile (every one does at start-up).
///
/// Sized for tens of thousands of objects: each ExternalSecret's reference is held once and
/// shared by every map, each store key once, and the store generations of its last sync as a
/// digest.
#[derive(Default)]
pub struct StoreIndex(Mutex<Index>);

/// One shared reference per ExternalSecret (name and namespace only).
type EsKey = Arc<ObjectRef<ExternalSecret>>;

#[derive(Default)]
struct Index {
    objects: HashMap<EsKey, Indexed>,
    users: HashMap<Arc<StoreKey>, HashSet<EsKey>>,
    targets: HashMap<(String, String), EsKey>,
}

/// What the index holds per ExternalSecret.
#[derive(Default)]
struct Indexed {
    /// The stores it uses.
    stores: Vec<Arc<StoreKey>>,
    /// Digest of the store generations its last sync in this process used.
    synced: Option<u64>,
}

/// The generation of each store an ExternalSecret uses (`None`: the store does not exist).
pub type StoreGenerations = Vec<(StoreKey, Option<i64>)>;

fn digest(generations: &StoreGenerations) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    generations.hash(&mut hasher);
    hasher.finish()
}

impl Index {
    /// The shared key of `es`, added if new.
    fn key(&mut self, es: &ObjectRef<ExternalSecret>) -> EsKey {
        match self.objects.get_key_value(es) {
            Some((key, _)) => key.clone(),
            None => {
                let key = Arc::new(
                    ObjectRef::new(&es.name).within(es.namespace.as_deref().unwrap_or_default()),
                );
                self.objects.insert(key.clone(), Indexed::default());
                key
            }
        }
    }

    fn unlink(&mut self, es: &EsKey, stores: &[Arc<StoreKey>]) {
        for store in stores {
            if let Some(set) = self.users.get_mut(store) {
                set.remove(es);
                if set.is_empty() {
                    self.users.remove(store);
                }
            }
        }
    }
}

impl StoreIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.0.lock().expect("index lock")
    }

    /// Records the stores an ExternalSecret uses now (replacing what it used before).
    pub fn record(&self, es: &ObjectRef<ExternalSecret>, stores: Vec<StoreKey>) {
        let mut index = self.lock();
        let key = index.key(es);
        let old = std::mem::take(&mut index.objects.get_mut(&key).expect("just keyed").stores);
        index.unlink(&key, &old);
        let mut shared = Vec::with_capacity(stores.len());
        for store in stores {
            let store = match index.users.get_key_value(&store) {
                Some((existing, _)) => existing.clone(),
                None => Arc::new(store),
            };
            index
                .users
                .entry(store.clone())
                .or_default()
                .insert(key.clone());
            shared.push(store);
        }
        index.objects.get_mut(&key).expect("just keyed").stores = shared;
    }

    /// Records the target Secret (`namespace`, `name`) an ExternalSecret writes, so a change to
    /// a Secret without an owner reference (creationPolicy Orphan, Merge) still finds it.
    pub fn record_target(&self, es: &ObjectRef<ExternalSecret>, namespace: &str, name: &str) {
        let mut index = self.lock();
        let target = (namespace.to_owned(), name.to_owned());
        if index.targets.get(&target).is_some_and(|k| **k == *es) {
            return;
        }
        let key = index.key(es);
        index.targets.insert(target, key);
    }

    /// The ExternalSecret writing a Secret, if one is known.
    pub fn writer_of(&self, namespace: &str, name: &str) -> Option<ObjectRef<ExternalSecret>> {
        self.lock()
            .targets
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|k| (**k).clone())
    }

    /// Forgets ExternalSecrets that no longer exist (deleted objects are never reconciled, so
    /// the cache's view is what tells).
    pub fn retain(&self, live: impl Fn(&ObjectRef<ExternalSecret>) -> bool) {
        let mut index = self.lock();
        let gone: Vec<EsKey> = index.objects.keys().filter(|k| !live(k)).cloned().collect();
        for key in gone {
            if let Some(indexed) = index.objects.remove(&key) {
                index.unlink(&key, &indexed.stores);
            }
        }
        let Index {
            objects, targets, ..
        } = &mut *index;
        targets.retain(|_, es| objects.contains_key(es));
    }

    /// Whether a store changed since this process last synced the ExternalSecret (a restart
    /// counts as no change: the status already says what was synced).
    pub fn stores_changed(&self, es: &ObjectRef<ExternalSecret>, now: &StoreGenerations) -> bool {
        self.lock()
            .objects
            .get(es)
            .and_then(|i| i.synced)
            .is_some_and(|before| before != digest(now))
    }

    /// Remembers the store generations a successful sync used.
    pub fn mark_synced(&self, es: &ObjectRef<ExternalSecret>, generations: &StoreGenerations) {
        let mut index = self.lock();
        let key = index.key(es);
        index.objects.get_mut(&key).expect("just keyed").synced = Some(digest(generations));
    }

    /// The ExternalSecrets using a store.
    pub fn users(&self, key: &StoreKey) -> Vec<ObjectRef<ExternalSecret>> {
        self.lock()
            .users
            .get(key)
            .map(|set| set.iter().map(|k| (**k).clone()).collect())
            .unwrap_or_default()
    }

    /// The ExternalSecrets in `namespace` that use a ClusterSecretStore: a change of the
    /// namespace's labels may admit or refuse them.
    pub fn cluster_store_users_in(&self, namespace: &str) -> Vec<ObjectRef<ExternalSecret>> {
        let index = self.lock();
        let mut users: Vec<_> = index
            .users
            .iter()
            .filter(|(store, _)| store.kind == SecretStoreKind::ClusterSecretStore)
            .flat_map(|(_, users)| users.iter())
            .filter(|es| es.namespace.as_deref() == Some(namespace))
            .map(|es| (**es).clone())
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users.dedup();
        users
    }
}

impl StoreCaches {
    /// Resolves once every store cache has completed its first list: until then a store
    /// missing from it may exist.
    pub async fn wait_until_ready(&self) {
        wait_until_ready(&self.stores).await;
        if let Some(cluster_stores) = &self.cluster_stores {
            wait_until_ready(cluster_stores).await;
        }
    }

    /// The current generation of each store an ExternalSecret uses.
    pub fn generations(&self, es: &ExternalSecret) -> StoreGenerations {
        stores_of(es)
            .into_iter()
            .map(|key| {
                let generation = self.cached(&key).map(|store| store.generation());
                (key, generation)
            })
            .collect()
    }

    /// Whether the store `key` names is cached.
    pub fn contains(&self, key: &StoreKey) -> bool {
        self.cached(key).is_some()
    }

    /// The controller class of the store `key` names; `None` when it is not cached.
    pub fn class(&self, key: &StoreKey) -> Option<Option<String>> {
        self.cached(key)
            .map(|store| store.spec().controller.clone())
    }

    /// The store `key` names, as cached; `None` when there is none (or none is watched).
    pub fn get(&self, key: &StoreKey) -> Option<FoundStore> {
        let store = self.cached(key)?;
        Some(FoundStore {
            spec: store.spec().clone(),
            conditions: store.conditions().to_vec(),
            generation: store.generation(),
        })
    }

    /// The cached object itself (shared, not copied: every reconcile looks its stores up).
    fn cached(&self, key: &StoreKey) -> Option<CachedStore> {
        match key.kind {
            SecretStoreKind::SecretStore => self
                .stores
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
                .map(CachedStore::Namespaced),
            SecretStoreKind::ClusterSecretStore => self
                .cluster_stores
                .as_ref()?
                .get(&ObjectRef::new(&key.name))
                .map(CachedStore::Cluster),
        }
    }
}

/// Waits for a reflector's cache to complete its first list.
///
/// kube-runtime's readiness signal keeps a single waker, and the controller's own runner waits
/// on it too: a second waiter may never be woken. Polling again finds the remembered value.
pub async fn wait_until_ready<K>(store: &Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready())
        .await
        .is_err()
    {}
}

/// A store object from a controller's cache.
enum CachedStore {
    Namespaced(Arc<SecretStore>),
    Cluster(Arc<ClusterSecretStore>),
}

impl CachedStore {
    fn spec(&self) -> &SecretStoreSpec {
        match self {
            CachedStore::Namespaced(store) => &store.spec,
            CachedStore::Cluster(store) => &store.spec.store,
        }
    }

    fn conditions(&self) -> &[ClusterSecretStoreCondition] {
        match self {
            CachedStore::Namespaced(_) => &[],
            CachedStore::Cluster(store) => &store.spec.conditions,
        }
    }

    fn generation(&self) -> i64 {
        let meta = match self {
            CachedStore::Namespaced(store) => store.meta(),
            CachedStore::Cluster(store) => store.meta(),
        };
        meta.generation.unwrap_or_default()
    }
}

/// Logged-in clients by store identity and configuration. A store whose spec changes gets a new
/// client (its generation is part of the key) and the old one is dropped, which lets providers
/// revoke its credentials.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<BTreeMap<ClientKey, CachedClient>>,
    /// Logins one at a time per store, refused ones remembered for a backoff step.
    pub logins: Logins,
}

/// A store and the namespace using it (empty for a SecretStore).
type ClientKey = (StoreKey, String);

/// A client and the store generation it was built for.
type CachedClient = (i64, Arc<dyn SecretsClient>);

impl ClientCache {
    fn get(&self, key: &ClientKey, generation: i64) -> Option<Arc<dyn SecretsClient>> {
        let clients = self.clients.lock().expect("client cache lock");
        clients
            .get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, key: ClientKey, generation: i64, client: Arc<dyn SecretsClient>) {
        self.clients
            .lock()
            .expect("client cache lock")
            .insert(key, (generation, client));
    }

    /// Keeps only the clients (and login states) of stores `live` says exist.
    pub fn retain(&self, live: impl Fn(&StoreKey) -> bool) {
        self.clients
            .lock()
            .expect("client cache lock")
            .retain(|(k, _), _| live(k));
        self.logins.retain(live);
    }

    /// What a store's login read changed: its clients are dropped and a refused login is
    /// forgotten, so the next use logs in with the new credential at once.
    pub fn credentials_changed(&self, store: &StoreKey) {
        self.invalidate(store);
        self.logins.forget(store);
    }

    /// Drops a store's clients (after its credentials were refused, or it was deleted). A
    /// refused login stays remembered (see [`crate::logins`]).
    pub fn invalidate(&self, store: &StoreKey) {
        self.clients
            .lock()
            .expect("client cache lock")
            .retain(|(k, _), _| k != store);
    }
}

/// The [`StoreResolver`] of one sync: stores from the controllers' caches, clients from the
/// [`ClientCache`], every read through the coalescing [`ReadCache`].
pub struct Resolver<'a> {
    /// Store objects.
    pub caches: &'a StoreCaches,
    /// Reads namespace labels (ClusterSecretStore conditions).
    pub client: &'a kube::Client,
    /// The providers.
    pub registry: &'a Registry,
    /// What providers read from the cluster.
    pub kube: &'a ClusterAccess,
    /// Learns what each login read.
    pub references: &'a ReferenceIndex,
    /// Logged-in clients.
    pub clients: &'a ClientCache,
    /// Store calls charged per namespace: logins and reads the cache does not serve.
    pub budgets: &'a Arc<StoreBudgets>,
    /// Coalesced reads.
    pub reads: &'a Arc<ReadCache>,
    /// How old a shared read this sync accepts.
    pub max_age: Duration,
}

#[async_trait]
impl StoreObjects for Resolver<'_> {
    fn store(&self, key: &StoreKey) -> Result<Option<FoundStore>, StoreError> {
        if key.kind == SecretStoreKind::ClusterSecretStore && self.caches.cluster_stores.is_none() {
            return Err(StoreError::ClusterStoresOff {
                store: key.display(),
            });
        }
        Ok(self.caches.get(key))
    }

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let ns = Api::<Namespace>::all(self.client.clone())
            .get_metadata(namespace)
            .await
            .map_err(|e| StoreError::Provider {
                store: format!("Namespace {namespace}"),
                source: ProviderError::Unavailable {
                    message: "reading the namespace's labels".to_owned(),
                    source: Some(Box::new(e)),
                },
            })?;
        Ok(ns.metadata.labels.unwrap_or_default())
    }
}

#[async_trait]
impl StoreResolver for Resolver<'_> {
    async fn resolve(
        &self,
        namespace: &str,
        store_ref: &SecretStoreRef,
    ) -> Result<ResolvedStore, StoreError> {
        let (key, found) = resolve::lookup(self, namespace, store_ref).await?;
        let display = key.display();
        // A ClusterSecretStore's references without a namespace resolve to the namespace of
        // the ExternalSecret, so its clients are per namespace.
        let using = match key.kind {
            SecretStoreKind::SecretStore => String::new(),
            SecretStoreKind::ClusterSecretStore => namespace.to_owned(),
        };
        let cache_key = (key, using);
        let login = async {
            // Another sync may have logged in while this one waited for the login gate.
            if let Some(client) = self.clients.get(&cache_key, found.generation) {
                return Ok(client);
            }
            self.budgets.charge(&cache_key.0, namespace);
            let recording = Recording::new(self.kube);
            let connected = resolve::connect(
                self.registry,
                &recording,
                &cache_key.0,
                &found.spec,
                Some(namespace),
            )
            .await;
            // Failed logins too: fixing what they read must wake their users.
            self.references.record(
                User::Store(cache_key.0.clone(), cache_key.1.clone()),
                recording.into_reads(),
            );
            let (provider, client) = connected?;
            let client = crate::metrics::InstrumentedClient::wrap(provider, client);
            self.clients
                .put(cache_key.clone(), found.generation, client.clone());
            Ok(client)
        };
        let client = match self.clients.get(&cache_key, found.generation) {
            Some(client) => client,
            None => self
                .clients
                .logins
                .attempt(&cache_key, found.generation, login)
                .await
                .map_err(|source| StoreError::Provider {
                    store: display.clone(),
                    source,
                })?,
        };
        // Reads are shared only between syncs that use the same credentials: per namespace for
        // a ClusterSecretStore, whose references may resolve to each ExternalSecret's namespace.
        let read_key = format!("{display}@{}#{}", found.generation, cache_key.1);
        let client = self.budgets.charged(cache_key.0.clone(), namespace, client);
        Ok(ResolvedStore {
            client: self.reads.client(read_key, client, self.max_age),
            name: display,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es_ref(name: &str) -> ObjectRef<ExternalSecret> {
        ObjectRef::new(name).within("ns")
    }

    fn store(name: &str) -> StoreKey {
        StoreKey {
            kind: SecretStoreKind::SecretStore,
            namespace: "ns".to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_index_follows_what_each_external_secret_uses_and_forgets_deleted_ones() {
        let index = StoreIndex::default();
        index.record(&es_ref("a"), vec![store("s1")]);
        index.record(&es_ref("b"), vec![store("s1"), store("s2")]);
        let mut users = index.users(&store("s1"));
        users.sort_by_key(|r| r.name.clone());
        assert_eq!(users, vec![es_ref("a"), es_ref("b")]);
        index.record(&es_ref("b"), vec![store("s2")]);
        assert_eq!(index.users(&store("s1")), vec![es_ref("a")]);
        index.record_target(&es_ref("a"), "ns", "secret-a");
        assert_eq!(index.writer_of("ns", "secret-a"), Some(es_ref("a")));
        index.retain(|es| es.name == "b");
        assert!(index.users(&store("s1")).is_empty());
        assert_eq!(index.users(&store("s2")), vec![es_ref("b")]);
        assert_eq!(
            index.writer_of("ns", "secret-a"),
            None,
            "a's target forgotten"
        );
    }

    #[test]
    fn a_namespace_wakes_its_external_secrets_that_use_a_cluster_store() {
        let index = StoreIndex::default();
        let cluster = StoreKey::new(SecretStoreKind::ClusterSecretStore, "", "shared");
        index.record(&es_ref("a"), vec![cluster.clone(), store("s1")]);
        index.record(&es_ref("b"), vec![store("s1")]);
        index.record(&ObjectRef::new("c").within("other"), vec![cluster]);
        assert_eq!(index.cluster_store_users_in("ns"), vec![es_ref("a")]);
        assert!(index.cluster_store_users_in("empty").is_empty());
    }

    #[test]
    fn a_store_counts_as_changed_only_after_a_sync_here_used_another_generation() {
        let index = StoreIndex::default();
        let at = |generation| vec![(store("s1"), Some(generation))];
        assert!(
            !index.stores_changed(&es_ref("a"), &at(1)),
            "never synced here"
        );
        index.mark_synced(&es_ref("a"), &at(1));
        assert!(!index.stores_changed(&es_ref("a"), &at(1)));
        assert!(index.stores_changed(&es_ref("a"), &at(2)));
        assert!(
            index.stores_changed(&es_ref("a"), &vec![(store("s1"), None)]),
            "store deleted"
        );
        index.mark_synced(&es_ref("a"), &at(2));
        assert!(!index.stores_changed(&es_ref("a"), &at(2)));
    }
}
