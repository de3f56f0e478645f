//! Which Kubernetes objects each store login and each ExternalSecret sync read (credential
//! Secrets, CA bundles, ServiceAccounts, `templateFrom` ConfigMaps and Secrets), so that a
//! change to one re-queues exactly the objects that use it.
//!
//! The index is fed by what was actually read ([`Recording`] wraps [`ClusterAccess`] for one
//! login or one sync), not by parsing specs: every provider and every future field is covered
//! without a list to keep in step. Each read remembers the `resourceVersion` it saw; a watch
//! event wakes a user only when the object differs from what that user read (created, changed,
//! deleted), so a watch's relist or an unrelated Secret wakes nobody.
//!
//! What a wake means: a store whose login read the object has its logged-in clients dropped
//! (the next use logs in with the new credential), its controller re-validates it, and the
//! ExternalSecrets using it are re-queued (a Ready one then decides there is nothing to do; a
//! failed one retries at once). An ExternalSecret that read the object itself is marked
//! changed: its next reconcile syncs although its refresh is not due.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::reflector::ObjectRef;
use kuvert_core::api::{ExternalSecret, PushSecret};
use kuvert_core::provider::{KubeAccess, KubeReadError};
use kuvert_core::secret::SecretBytes;
use kuvert_core::store_key::StoreKey;

use crate::kube_access::ClusterAccess;

/// The kinds of object a login or a sync reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    /// A Secret (credentials, `templateFrom.secret`).
    Secret,
    /// A ConfigMap (CA bundles, `templateFrom.configMap`).
    ConfigMap,
    /// A ServiceAccount whose token was requested.
    ServiceAccount,
}

/// One object read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Its kind.
    pub kind: RefKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Reference {
    /// A reference of `kind` to `namespace/name`.
    pub fn new(kind: RefKind, namespace: &str, name: &str) -> Self {
        Reference {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// What a user saw of an object when it read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It could not be read (absent, refused, or the API server failed): any appearance counts.
    Missing,
    /// It exists, at a version not known (a ServiceAccount's token was issued): its first
    /// sighting is no change.
    Present,
    /// It was read at this `resourceVersion`.
    Version(String),
}

/// Who read an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum User {
    /// An ExternalSecret's sync (`templateFrom`).
    ExternalSecret(ObjectRef<ExternalSecret>),
    /// A store's login, from a namespace (a ClusterSecretStore's references may resolve to the
    /// namespace using it; empty for the store controller's own check).
    Store(StoreKey, String),
    /// A PushSecret's read of its source Secret.
    PushSecret(ObjectRef<PushSecret>),
}

/// Whom a change woke.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Woken {
    /// ExternalSecrets that read the object themselves (now marked changed).
    pub external_secrets: Vec<ObjectRef<ExternalSecret>>,
    /// Stores whose login read it.
    pub stores: Vec<StoreKey>,
    /// PushSecrets whose source it is.
    pub push_secrets: Vec<ObjectRef<PushSecret>>,
}

/// The reference index. Cheap when nothing references anything: objects nobody read cost one
/// hash lookup per watch event.
#[derive(Default)]
pub struct ReferenceIndex(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    reads: HashMap<User, Vec<(Reference, Seen)>>,
    users: HashMap<Reference, HashSet<User>>,
    /// ExternalSecrets woken by a change and not synced since, with the wake's number (a sync
    /// that observed an older wake does not clear a newer one).
    changed: HashMap<ObjectRef<ExternalSecret>, u64>,
    wakes: u64,
}

impl Inner {
    fn unlink(&mut self, user: &User) {
        for (reference, _) in self.reads.remove(user).unwrap_or_default() {
            if let Some(users) = self.users.get_mut(&reference) {
                users.remove(user);
                if users.is_empty() {
                    self.users.remove(&reference);
                }
            }
        }
    }
}

impl ReferenceIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("reference index lock")
    }

    /// Records what `user` read now, replacing what it read before.
    pub fn record(&self, user: User, reads: Vec<(Reference, Seen)>) {
        let mut inner = self.lock();
        inner.unlink(&user);
        if reads.is_empty() {
            return;
        }
        for (reference, _) in &reads {
            inner
                .users
                .entry(reference.clone())
                .or_default()
                .insert(user.clone());
        }
        inner.reads.insert(user, reads);
    }

    /// An object as a watch saw it: at `version`, or deleted (`None`). Returns the users that
    /// read it otherwise, and from now on takes them to have seen it so.
    pub fn observed(&self, reference: &Reference, version: Option<&str>) -> Woken {
        let mut inner = self.lock();
        let Some(users) = inner.users.get(reference).cloned() else {
            return Woken::default();
        };
        let mut woken = Woken::default();
        for user in users {
            let Some(reads) = inner.reads.get_mut(&user) else {
                continue;
            };
            let mut wake = false;
            for (_, seen) in reads.iter_mut().filter(|(r, _)| r == reference) {
                let now = match version {
                    Some(v) => Seen::Version(v.to_owned()),
                    None => Seen::Missing,
                };
                wake |= match (&*seen, version) {
                    (Seen::Missing, None) => false,
                    (Seen::Missing, Some(_)) => true,
                    (Seen::Present, Some(_)) => false,
                    (Seen::Present, None) => true,
                    (Seen::Version(before), Some(v)) => before != v,
                    (Seen::Version(_), None) => true,
                };
                *seen = now;
            }
            if !wake {
                continue;
            }
            match user {
                User::ExternalSecret(es) => {
                    inner.wakes += 1;
                    let wake = inner.wakes;
                    inner.changed.insert(es.clone(), wake);
                    woken.external_secrets.push(es);
                }
                User::Store(store, _) => {
                    if !woken.stores.contains(&store) {
                        woken.stores.push(store);
                    }
                }
                User::PushSecret(ps) => woken.push_secrets.push(ps),
            }
        }
        woken.external_secrets.sort_by(|a, b| {
            (a.namespace.as_deref(), a.name.as_str()).cmp(&(b.namespace.as_deref(), &b.name))
        });
        woken.stores.sort();
        woken
    }

    /// The pending wake of an ExternalSecret: an object it read changed since its last sync.
    pub fn pending(&self, es: &ObjectRef<ExternalSecret>) -> Option<u64> {
        self.lock().changed.get(es).copied()
    }

    /// A sync that observed `pending` succeeded: that wake is served (a newer one stays).
    pub fn synced(&self, es: &ObjectRef<ExternalSecret>, pending: Option<u64>) {
        let mut inner = self.lock();
        if pending.is_some() && inner.changed.get(es).copied() == pending {
            inner.changed.remove(es);
        }
    }

    /// Forgets users `live` says are gone.
    pub fn retain(&self, live: impl Fn(&User) -> bool) {
        let mut inner = self.lock();
        let gone: Vec<User> = inner.reads.keys().filter(|u| !live(u)).cloned().collect();
        for user in gone {
            inner.unlink(&user);
        }
        inner
            .changed
            .retain(|es, _| live(&User::ExternalSecret(es.clone())));
    }

    /// How many users have read anything (for tests and upkeep).
    pub fn len(&self) -> usize {
        self.lock().reads.len()
    }

    /// Whether nobody has read anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`ClusterAccess`] for one login or one sync, noting every object read and the version seen.
pub struct Recording<'a> {
    inner: &'a ClusterAccess,
    reads: Mutex<BTreeMap<Reference, Seen>>,
}

impl<'a> Recording<'a> {
    /// Starts noting reads through `inner`.
    pub fn new(inner: &'a ClusterAccess) -> Self {
        Recording {
            inner,
            reads: Mutex::new(BTreeMap::new()),
        }
    }

    /// What was read.
    pub fn into_reads(self) -> Vec<(Reference, Seen)> {
        self.reads
            .into_inner()
            .expect("recording lock")
            .into_iter()
            .collect()
    }

    fn note<T>(
        &self,
        reference: Reference,
        result: Result<(T, Seen), KubeReadError>,
    ) -> Result<T, KubeReadError> {
        let (value, seen) = match result {
            Ok((value, seen)) => (Ok(value), seen),
            Err(e) => (Err(e), Seen::Missing),
        };
        self.reads
            .lock()
            .expect("recording lock")
            .insert(reference, seen);
        value
    }
}

fn versioned<T>(
    result: Result<(T, Option<String>), KubeReadError>,
) -> Result<(T, Seen), KubeReadError> {
    result.map(|(value, version)| (value, version.map_or(Seen::Present, Seen::Version)))
}

#[async_trait]
impl KubeAccess for Recording<'_> {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, SecretBytes>, KubeReadError> {
        let read = versioned(self.inner.read_secret(namespace, name).await);
        self.note(Reference::new(RefKind::Secret, namespace, name), read)
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, KubeReadError> {
        let read = versioned(self.inner.read_config_map(namespace, name).await);
        self.note(Reference::new(RefKind::ConfigMap, namespace, name), read)
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration: Duration,
    ) -> Result<SecretBytes, KubeReadError> {
        let issued = self
            .inner
            .service_account_token(namespace, name, audiences, expiration)
            .await
            .map(|token| (token, Seen::Present));
        self.note(
            Reference::new(RefKind::ServiceAccount, namespace, name),
            issued,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> Reference {
        Reference::new(RefKind::Secret, "ns", name)
    }

    fn es(name: &str) -> ObjectRef<ExternalSecret> {
        ObjectRef::new(name).within("ns")
    }

    fn store(name: &str) -> StoreKey {
        StoreKey::new(kuvert_core::api::SecretStoreKind::SecretStore, "ns", name)
    }

    fn at(version: &str) -> Seen {
        Seen::Version(version.to_owned())
    }

    #[test]
    fn a_changed_credential_wakes_the_store_that_read_it_and_nobody_else() {
        let index = ReferenceIndex::default();
        index.record(
            User::Store(store("vault"), String::new()),
            vec![(secret("approle"), at("5"))],
        );
        index.record(
            User::Store(store("other"), String::new()),
            vec![(secret("token"), at("6"))],
        );
        assert_eq!(
            index.observed(&secret("approle"), Some("5")),
            Woken::default()
        );
        assert_eq!(
            index.observed(&secret("unrelated"), Some("1")),
            Woken::default()
        );
        assert_eq!(
            index.observed(&secret("approle"), Some("7")),
            Woken {
                stores: vec![store("vault")],
                ..Woken::default()
            }
        );
        assert_eq!(
            index.observed(&secret("approle"), Some("7")),
            Woken::default(),
            "a relist showing the same version wakes nobody"
        );
        assert_eq!(
            index.observed(&secret("approle"), None).stores,
            vec![store("vault")]
        );
    }

    #[test]
    fn a_missing_object_wakes_its_reader_when_it_appears_and_a_token_issue_counts_as_seen() {
        let index = ReferenceIndex::default();
        let sa = Reference::new(RefKind::ServiceAccount, "ns", "app");
        index.record(
            User::Store(store("vault"), "ns".to_owned()),
            vec![(secret("late"), Seen::Missing), (sa.clone(), Seen::Present)],
        );
        assert_eq!(index.observed(&secret("late"), None), Woken::default());
        assert_eq!(index.observed(&sa, Some("3")), Woken::default());
        assert_eq!(
            index.observed(&secret("late"), Some("1")).stores,
            vec![store("vault")]
        );
        assert_eq!(index.observed(&sa, Some("4")).stores, vec![store("vault")]);
    }

    #[test]
    fn a_changed_template_source_marks_its_external_secret_until_a_sync_that_saw_the_wake() {
        let index = ReferenceIndex::default();
        let cm = Reference::new(RefKind::ConfigMap, "ns", "tpl");
        index.record(User::ExternalSecret(es("a")), vec![(cm.clone(), at("1"))]);
        index.record(User::ExternalSecret(es("b")), vec![(cm.clone(), at("2"))]);
        assert_eq!(index.pending(&es("a")), None);
        let woken = index.observed(&cm, Some("2"));
        assert_eq!(woken.external_secrets, vec![es("a")], "b read version 2");
        let first = index.pending(&es("a"));
        assert!(first.is_some());
        index.observed(&cm, Some("3"));
        let second = index.pending(&es("a"));
        index.synced(&es("a"), first);
        assert_eq!(index.pending(&es("a")), second, "a newer wake stays");
        index.synced(&es("a"), second);
        assert_eq!(index.pending(&es("a")), None);
    }

    #[test]
    fn a_new_record_replaces_the_old_reads_and_gone_users_are_forgotten() {
        let index = ReferenceIndex::default();
        let user = User::ExternalSecret(es("a"));
        index.record(user.clone(), vec![(secret("one"), at("1"))]);
        index.record(user.clone(), vec![(secret("two"), at("1"))]);
        assert_eq!(index.observed(&secret("one"), Some("9")), Woken::default());
        assert_eq!(
            index.observed(&secret("two"), Some("9")).external_secrets,
            vec![es("a")]
        );
        index.retain(|u| *u != user);
        assert!(index.is_empty());
        assert_eq!(index.pending(&es("a")), None);
        assert_eq!(index.observed(&secret("two"), Some("10")), Woken::default());
    }

    #[test]
    fn a_changed_source_secret_wakes_its_push_secret() {
        let index = ReferenceIndex::default();
        let ps: ObjectRef<PushSecret> = ObjectRef::new("push").within("ns");
        index.record(User::PushSecret(ps.clone()), vec![(secret("db"), at("1"))]);
        assert_eq!(index.observed(&secret("db"), Some("1")), Woken::default());
        assert_eq!(
            index.observed(&secret("db"), Some("2")),
            Woken {
                push_secrets: vec![ps.clone()],
                ..Woken::default()
            }
        );
        assert_eq!(index.pending(&es("push")), None, "no ExternalSecret marked");
        index.record(User::PushSecret(ps), vec![]);
        assert!(index.is_empty());
    }
}
