//! The `fake` provider: a store that serves the data written inline in its spec.
//!
//! It exists for tests, demos and `kuvert render`, and it is the reference implementation a
//! new provider copies. Note what it does *not* do: it never applies `property`, decoding,
//! key conversion or rewrites — the engine does those for every provider alike. A provider
//! only moves raw values:
//!
//! - `get` returns one secret's whole value (a map as a JSON object) and its version, or its
//!   metadata as a JSON object when `metadata` is asked for;
//! - `find` returns every matching secret by name;
//! - `push` / `delete` write only what kuvert itself wrote (it records an owner per key);
//! - errors are classified ([`ProviderError`]) and name keys, never values.
//!
//! Spec (`spec.provider.fake.data[]`): each entry is one `key` at one `version`, with a
//! `value` (any text, JSON included) or a `valueMap` (served as a JSON object), and `tags`.
//! Without `remoteRef.version`, the current value of a key is its entry without a version, or
//! else the one listed last.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kuvert_core::api::{FakeProvider, FakeProviderData, StoreCapabilities};
use kuvert_core::provider::{
    FindRequest, GetRequest, KubeAccess, Provider, ProviderError, PushRequest, RemoteSecret,
    SecretsClient, StoreContext,
};
use kuvert_core::secret::SecretBytes;

/// The fake provider. Stateless: each client holds its own copy of the store's data.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeStoreProvider;

/// Where a store spec's fields live, for error messages.
const FIELD: &str = "spec.provider.fake";

#[async_trait]
impl Provider for FakeStoreProvider {
    type Spec = FakeProvider;

    /// Checks the spec without I/O. Every problem names its field.
    fn validate(
        &self,
        _store: &StoreContext<'_>,
        spec: &FakeProvider,
    ) -> Result<(), ProviderError> {
        let mut seen = BTreeMap::new();
        for (i, entry) in spec.data.iter().enumerate() {
            let field = format!("{FIELD}.data[{i}]");
            if entry.key.is_empty() {
                return Err(ProviderError::InvalidSpec {
                    field: format!("{field}.key"),
                    message: "the key may not be empty".to_owned(),
                });
            }
            if entry.value.is_some() && !entry.value_map.is_empty() {
                return Err(ProviderError::InvalidSpec {
                    field,
                    message: "set value or valueMap, not both".to_owned(),
                });
            }
            if let Some(first) = seen.insert((&entry.key, &entry.version), i) {
                return Err(ProviderError::InvalidSpec {
                    field: format!("{field}.version"),
                    message: format!(
                        "key {:?} at this version is already data[{first}]",
                        entry.key
                    ),
                });
            }
        }
        Ok(())
    }

    /// Builds a client over a copy of the spec's data. A real provider logs in here (reading
    /// credentials through `kube`) and returns an error classified as `Unauthenticated`,
    /// `Unavailable`, ... when it cannot.
    async fn client(
        &self,
        store: &StoreContext<'_>,
        spec: &FakeProvider,
        _namespace: Option<&str>,
        _kube: &dyn KubeAccess,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.validate(store, spec)?;
        Ok(Arc::new(FakeClient {
            data: spec.data.clone(),
            pushed: Mutex::new(BTreeMap::new()),
        }))
    }
}

/// A client of one fake store.
#[derive(Debug)]
pub struct FakeClient {
    data: Vec<FakeProviderData>,
    /// What kuvert pushed: key → (owner, JSON object of properties, or whole value).
    pushed: Mutex<BTreeMap<String, Pushed>>,
}

#[derive(Debug, Clone)]
struct Pushed {
    owner: String,
    value: PushedValue,
}

#[derive(Debug, Clone)]
enum PushedValue {
    Whole(SecretBytes),
    Properties(BTreeMap<String, SecretBytes>),
}

impl FakeClient {
    /// The entry of `key` at `version` (or the current one).
    fn entry(&self, key: &str, version: Option<&str>) -> Option<&FakeProviderData> {
        let mut entries = self.data.iter().filter(|e| e.key == key);
        match version {
            Some(v) => entries.find(|e| e.version.as_deref() == Some(v)),
            None => {
                let all: Vec<_> = entries.collect();
                all.iter()
                    .find(|e| e.version.is_none())
                    .or(all.last())
                    .copied()
            }
        }
    }

    /// The current value of every key, in spec order (first listing of each key).
    fn current(&self) -> Vec<&FakeProviderData> {
        let mut keys: Vec<&str> = Vec::new();
        for e in &self.data {
            if !keys.contains(&e.key.as_str()) {
                keys.push(&e.key);
            }
        }
        keys.into_iter()
            .filter_map(|k| self.entry(k, None))
            .collect()
    }

    fn pushed(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pushed>> {
        // A poisoned lock only means another push panicked; the map is still consistent.
        self.pushed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A spec entry's value: `value` as is, or `valueMap` as a JSON object.
fn value_of(entry: &FakeProviderData) -> SecretBytes {
    match &entry.value {
        Some(v) => SecretBytes::from(v.as_str()),
        None => SecretBytes::from(
            serde_json::to_string(&entry.value_map).expect("a map of strings serialises"),
        ),
    }
}

fn pushed_value(p: &Pushed) -> SecretBytes {
    match &p.value {
        PushedValue::Whole(v) => v.clone(),
        PushedValue::Properties(map) => {
            let object: serde_json::Map<String, serde_json::Value> = map
                .iter()
                .map(|(k, v)| {
                    let text = String::from_utf8_lossy(v.expose()).into_owned();
                    (k.clone(), serde_json::Value::String(text))
                })
                .collect();
            SecretBytes::from(serde_json::Value::Object(object).to_string())
        }
    }
}

#[async_trait]
impl SecretsClient for FakeClient {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        // What kuvert pushed is served first, so a push can be read back.
        if request.version.is_none()
            && !request.metadata
            && let Some(p) = self.pushed().get(&request.key)
        {
            return Ok(RemoteSecret {
                value: pushed_value(p),
                version: None,
            });
        }
        let entry = self
            .entry(&request.key, request.version.as_deref())
            .ok_or_else(|| ProviderError::NotFound {
                // Name the key (and version), never a value.
                key: match &request.version {
                    Some(v) => format!("key {:?} at version {v:?}", request.key),
                    None => format!("key {:?}", request.key),
                },
            })?;
        let value = if request.metadata {
            // Metadata is served as a JSON object, like Vault's custom_metadata.
            SecretBytes::from(serde_json::to_string(&entry.tags).expect("tags serialise"))
        } else {
            value_of(entry)
        };
        Ok(RemoteSecret {
            value,
            version: entry.version.clone(),
        })
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
        let name = request.name_regexp.as_ref();
        Ok(self
            .current()
            .into_iter()
            .filter(|e| {
                request.path.as_deref().is_none_or(|p| e.key.starts_with(p))
                    && name.is_none_or(|re| re.is_match(&e.key))
                    && request.tags.iter().all(|(k, v)| e.tags.get(k) == Some(v))
            })
            .map(|e| {
                (
                    e.key.clone(),
                    RemoteSecret {
                        value: value_of(e),
                        version: e.version.clone(),
                    },
                )
            })
            .collect())
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        Ok(StoreCapabilities::ReadWrite)
    }

    /// Writes into the client's own map. A key from the spec, or pushed by another owner, is
    /// not kuvert's to overwrite: `Conflict`.
    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        if self.data.iter().any(|e| e.key == request.key) {
            return Err(ProviderError::Conflict {
                message: format!("key {:?} exists and was not written by kuvert", request.key),
            });
        }
        let mut pushed = self.pushed();
        if let Some(p) = pushed.get(&request.key)
            && p.owner != request.owner
        {
            return Err(ProviderError::Conflict {
                message: format!("key {:?} is owned by {}", request.key, p.owner),
            });
        }
        let value = match (&request.property, pushed.remove(&request.key)) {
            (None, _) => PushedValue::Whole(request.value.clone()),
            (
                Some(prop),
                Some(Pushed {
                    value: PushedValue::Properties(mut map),
                    ..
                }),
            ) => {
                map.insert(prop.clone(), request.value.clone());
                PushedValue::Properties(map)
            }
            // A whole value pushed before: its JSON object's text properties are kept.
            (
                Some(prop),
                Some(Pushed {
                    value: PushedValue::Whole(whole),
                    ..
                }),
            ) => {
                let mut map: BTreeMap<String, SecretBytes> =
                    serde_json::from_slice::<BTreeMap<String, String>>(whole.expose())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, SecretBytes::from(v.as_str())))
                        .collect();
                map.insert(prop.clone(), request.value.clone());
                PushedValue::Properties(map)
            }
            (Some(prop), None) => {
                PushedValue::Properties(BTreeMap::from([(prop.clone(), request.value.clone())]))
            }
        };
        pushed.insert(
            request.key.clone(),
            Pushed {
                owner: request.owner.clone(),
                value,
            },
        );
        Ok(())
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let mut pushed = self.pushed();
        let Some(p) = pushed.get_mut(key) else {
            // Nothing of ours there: deleting is done (and never touches spec data).
            return Ok(());
        };
        if p.owner != owner {
            return Err(ProviderError::Conflict {
                message: format!("key {key:?} is owned by {}", p.owner),
            });
        }
        match (property, &mut p.value) {
            (Some(prop), PushedValue::Properties(map)) => {
                map.remove(prop);
                if map.is_empty() {
                    pushed.remove(key);
                }
            }
            _ => {
                pushed.remove(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
