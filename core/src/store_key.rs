//! A store reference's identity: what per-store state (the ExternalSecrets using it, logged-in
//! clients, coalesced reads) is keyed by, and its name in every message — formatted here only.

use kube::ResourceExt;

use crate::api::{ExternalSecret, SecretStoreKind, SecretStoreRef};

/// Identity of a store reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey {
    /// Kind of the store.
    pub kind: SecretStoreKind,
    /// Namespace of a SecretStore; empty for a ClusterSecretStore.
    pub namespace: String,
    /// Name of the store.
    pub name: String,
}

impl StoreKey {
    /// The key of `store_ref` used from `namespace` (a SecretStore is always the user's own).
    pub fn of(namespace: &str, store_ref: &SecretStoreRef) -> Self {
        Self::new(
            store_ref.kind.unwrap_or_default(),
            namespace,
            &store_ref.name,
        )
    }

    /// The key of a store of `kind` named `name`; `namespace` counts for a SecretStore only.
    pub fn new(kind: SecretStoreKind, namespace: &str, name: &str) -> Self {
        StoreKey {
            kind,
            namespace: match kind {
                SecretStoreKind::SecretStore => namespace.to_owned(),
                SecretStoreKind::ClusterSecretStore => String::new(),
            },
            name: name.to_owned(),
        }
    }

    /// `SecretStore/namespace/name` or `ClusterSecretStore/name`, as messages and the status
    /// name the store.
    pub fn display(&self) -> String {
        match self.kind {
            SecretStoreKind::SecretStore => format!("SecretStore/{}/{}", self.namespace, self.name),
            SecretStoreKind::ClusterSecretStore => format!("ClusterSecretStore/{}", self.name),
        }
    }
}

impl StoreKey {
    /// The key [`StoreKey::display`] wrote; `None` for any other text.
    pub fn from_display(text: &str) -> Option<StoreKey> {
        let mut parts = text.split('/');
        let key = match (parts.next()?, parts.next()?, parts.next()) {
            ("SecretStore", namespace, Some(name)) if !namespace.is_empty() && !name.is_empty() => {
                StoreKey::new(SecretStoreKind::SecretStore, namespace, name)
            }
            ("ClusterSecretStore", name, None) if !name.is_empty() => {
                StoreKey::new(SecretStoreKind::ClusterSecretStore, "", name)
            }
            _ => return None,
        };
        parts.next().is_none().then_some(key)
    }
}

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Every store an ExternalSecret refers to, sorted, each once.
pub fn stores_of(es: &ExternalSecret) -> Vec<StoreKey> {
    let namespace = es.namespace().unwrap_or_default();
    let mut keys: Vec<StoreKey> = store_refs(es)
        .map(|r| StoreKey::of(&namespace, r))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The store references of an ExternalSecret: `secretStoreRef`, then each `dataFrom[]` and
/// `data[]` entry's `sourceRef.storeRef`, in that order.
pub fn store_refs(es: &ExternalSecret) -> impl Iterator<Item = &SecretStoreRef> {
    let entries = es
        .spec
        .data_from
        .iter()
        .map(|d| d.source_ref.as_ref())
        .chain(es.spec.data.iter().map(|d| d.source_ref.as_ref()))
        .filter_map(|s| s?.store_ref.as_ref());
    es.spec.secret_store_ref.iter().chain(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_store_is_keyed_by_its_namespace_and_a_cluster_store_by_its_name_alone() {
        let named = |kind| SecretStoreRef {
            name: "vault".to_owned(),
            kind: Some(kind),
        };
        let own = StoreKey::of("team-a", &named(SecretStoreKind::SecretStore));
        assert_eq!(own.display(), "SecretStore/team-a/vault");
        let cluster = StoreKey::of("team-a", &named(SecretStoreKind::ClusterSecretStore));
        assert_eq!(cluster.display(), "ClusterSecretStore/vault");
        assert_eq!(
            cluster,
            StoreKey::of("team-b", &named(SecretStoreKind::ClusterSecretStore))
        );
    }

    #[test]
    fn a_display_name_reads_back_into_its_key_and_nothing_else_does() {
        for key in [
            StoreKey::new(SecretStoreKind::SecretStore, "ns", "vault"),
            StoreKey::new(SecretStoreKind::ClusterSecretStore, "", "shared"),
        ] {
            assert_eq!(StoreKey::from_display(&key.display()), Some(key));
        }
        for bad in [
            "",
            "SecretStore/ns",
            "SecretStore/ns/a/b",
            "ClusterSecretStore/a/b",
            "Vault/x",
        ] {
            assert_eq!(StoreKey::from_display(bad), None, "{bad:?}");
        }
    }
}
