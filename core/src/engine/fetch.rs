//! Step 1, the only I/O: resolve the stores and read every remote value and template source an
//! ExternalSecret names, each once; then ask the generators of `sourceRef.generatorRef` entries
//! for their values (only once every read has succeeded, so a failing read never costs a
//! generated credential).

use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, stream};

use crate::api::{
    DeletionPolicy, ExternalSecret, ExternalSecretDataRemoteRef, GeneratorRef, MetadataPolicy,
    SecretStoreKind, SecretStoreRef, StoreGeneratorSourceRef, TemplateFrom,
};
use crate::generator::{GeneratedValues, GeneratorResolver};
use crate::provider::{
    FindRequest, GetRequest, KubeAccess, ProviderError, RemoteSecret, SecretsClient,
};
use crate::secret::SecretBytes;

use super::{StoreError, SyncError};

/// A store ready to be read.
#[derive(Clone)]
pub struct ResolvedStore {
    /// A logged-in client.
    pub client: Arc<dyn SecretsClient>,
    /// The store as it appears in messages and status: `SecretStore/namespace/name` or
    /// `ClusterSecretStore/name` (see [`crate::provider::StoreContext::display_name`]).
    pub name: String,
}

/// Finds the store a reference names and returns a client for it. The operator implements it
/// over its caches (refusing a ClusterSecretStore whose conditions exclude the namespace);
/// `kuvert render` over the manifests it read.
#[async_trait]
pub trait StoreResolver: Send + Sync {
    /// The store `store_ref` names, as used from `namespace`.
    async fn resolve(
        &self,
        namespace: &str,
        store_ref: &SecretStoreRef,
    ) -> Result<ResolvedStore, StoreError>;
}

/// A remote value read for one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedValue {
    /// The store it came from (display name).
    pub store: String,
    /// The remote key.
    pub key: String,
    /// What the store returned.
    pub secret: RemoteSecret,
}

/// What one `dataFrom[]` entry read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchedDataFrom {
    /// `extract`: one remote secret.
    Extract(FetchedValue),
    /// `find`: every match, by remote name.
    Find {
        /// The store searched.
        store: String,
        /// The matches.
        found: BTreeMap<String, RemoteSecret>,
    },
    /// `sourceRef.generatorRef`: what the generator made, one key each.
    Generated(GeneratedValues),
}

/// What one `template.templateFrom[]` entry read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchedTemplateSource {
    /// A `literal` (nothing to read).
    Literal,
    /// Every key of the ConfigMap or Secret named.
    Object {
        /// `ConfigMap namespace/name` or `Secret namespace/name`, for messages.
        object: String,
        /// Its keys.
        data: BTreeMap<String, SecretBytes>,
    },
}

/// Everything [`super::build`] needs from the outside world, index for index with the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// One per `spec.dataFrom[]`.
    pub data_from: Vec<FetchedDataFrom>,
    /// One per `spec.data[]`.
    pub data: Vec<FetchedValue>,
    /// One per `spec.target.template.templateFrom[]`.
    pub template_from: Vec<FetchedTemplateSource>,
    /// Indexes into `spec.dataFrom[]` whose remote secret is gone (`NotFound`), tolerated because
    /// `target.deletionPolicy` is `Delete` or `Merge`; their entries in `data_from` are empty.
    pub gone_data_from: BTreeSet<usize>,
    /// Indexes into `spec.data[]` whose remote secret is gone, as `gone_data_from`.
    pub gone_data: BTreeSet<usize>,
    /// Indexes into `spec.data[]` whose value a generator made (`sourceRef.generatorRef`).
    pub generated_data: BTreeSet<usize>,
}

impl Fetched {
    /// Whether every entry read nothing: each remote secret is gone and each `find` matched
    /// nothing. `deletionPolicy: Delete` then deletes the Secret.
    pub fn all_gone(&self) -> bool {
        let data_from_gone = self.data_from.iter().enumerate().all(|(i, got)| {
            self.gone_data_from.contains(&i)
                || matches!(got, FetchedDataFrom::Find { found, .. } if found.is_empty())
        });
        let data_gone = (0..self.data.len()).all(|i| self.gone_data.contains(&i));
        data_from_gone && data_gone
    }
}

/// How many remote reads of one sync run at once.
const CONCURRENT_READS: usize = 16;

/// One remote read of the plan, by index into the reads to make.
enum Planned {
    Extract {
        get: usize,
        field: String,
    },
    Find {
        find: usize,
        field: String,
        path: String,
    },
    Data {
        get: usize,
        field: String,
    },
    /// A `generatorRef` entry of `dataFrom[]` (`data: None`) or of `data[i]`, with what its
    /// `remoteRef` selects.
    Generated {
        field: String,
        generator_ref: GeneratorRef,
        data: Option<usize>,
    },
}

/// The `generatorRef` of an entry, if it has one; an error if it names a store too.
fn generator_ref<'a>(
    field: &str,
    source_ref: Option<&'a StoreGeneratorSourceRef>,
) -> Result<Option<&'a GeneratorRef>, SyncError> {
    match source_ref {
        Some(StoreGeneratorSourceRef {
            store_ref: Some(_),
            generator_ref: Some(_),
        }) => Err(SyncError::InvalidSpec {
            field: format!("{field}.sourceRef"),
            message: "exactly one of storeRef and generatorRef must be set".to_owned(),
        }),
        Some(source_ref) => Ok(source_ref.generator_ref.as_ref()),
        None => Ok(None),
    }
}

/// Reads the ConfigMaps and Secrets that the `templateFrom` entries of the template at `field`
/// name, one [`FetchedTemplateSource`] per entry (a `literal` reads nothing). ExternalSecrets and
/// PushSecrets both load their template sources here.
pub async fn template_sources(
    kube: &dyn KubeAccess,
    namespace: &str,
    field: &str,
    template_from: &[TemplateFrom],
) -> Result<Vec<FetchedTemplateSource>, SyncError> {
    let mut out = Vec::with_capacity(template_from.len());
    for (i, source) in template_from.iter().enumerate() {
        let field = format!("{field}.templateFrom[{i}]");
        let got = match (&source.config_map, &source.secret) {
            (Some(cm), None) => {
                let object = format!("ConfigMap {namespace}/{}", cm.name);
                let data = kube
                    .config_map(namespace, &cm.name)
                    .await
                    .map_err(|source| SyncError::Kube {
                        field: format!("{field}.configMap"),
                        object: object.clone(),
                        source,
                    })?;
                FetchedTemplateSource::Object {
                    object,
                    data: data
                        .into_iter()
                        .map(|(k, v)| (k, SecretBytes::from(v)))
                        .collect(),
                }
            }
            (None, Some(secret)) => {
                let object = format!("Secret {namespace}/{}", secret.name);
                let data = kube
                    .secret(namespace, &secret.name)
                    .await
                    .map_err(|source| SyncError::Kube {
                        field: format!("{field}.secret"),
                        object: object.clone(),
                        source,
                    })?;
                FetchedTemplateSource::Object { object, data }
            }
            _ => FetchedTemplateSource::Literal,
        };
        out.push(got);
    }
    Ok(out)
}

/// Reads what `es` names. Stores are resolved once each; identical reads are made once, and
/// up to 16 run at once. When reads fail, the error of the first entry in spec order is
/// returned (`dataFrom[]`, then `data[]`).
pub async fn fetch(
    es: &ExternalSecret,
    stores: &dyn StoreResolver,
    generators: &dyn GeneratorResolver,
    kube: &dyn KubeAccess,
) -> Result<Fetched, SyncError> {
    let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
    let tolerate_gone = es.spec.deletion_policy() != DeletionPolicy::Retain;
    let mut reader = Reader {
        namespace,
        stores,
        default_ref: es.spec.secret_store_ref.as_ref(),
        resolved: HashMap::new(),
        get_index: HashMap::new(),
        gets: Vec::new(),
    };
    // 1. Plan: resolve stores and check each entry, without reading anything.
    let mut finds: Vec<(ResolvedStore, FindRequest)> = Vec::new();
    let mut plan = Vec::new();
    for (i, entry) in es.spec.data_from.iter().enumerate() {
        let field = format!("spec.dataFrom[{i}]");
        if let Some(generator_ref) = generator_ref(&field, entry.source_ref.as_ref())? {
            if entry.extract.is_some() || entry.find.is_some() {
                return Err(SyncError::InvalidSpec {
                    field,
                    message: "exactly one of extract, find and sourceRef.generatorRef must be set"
                        .to_owned(),
                });
            }
            plan.push(Planned::Generated {
                field,
                generator_ref: generator_ref.clone(),
                data: None,
            });
            continue;
        }
        let store = reader.store(&field, entry.source_ref.as_ref()).await?;
        if let Some(extract) = &entry.extract {
            let get = reader.plan_get(&store, extract);
            plan.push(Planned::Extract {
                get,
                field: format!("{field}.extract.key"),
            });
        } else if let Some(find) = &entry.find {
            let name_regexp = match &find.name {
                Some(name) => Some(regex::Regex::new(&name.regexp).map_err(|e| {
                    SyncError::invalid_regexp(format!("{field}.find.name.regexp"), &name.regexp, &e)
                })?),
                None => None,
            };
            let request = FindRequest {
                path: find.path.clone(),
                name_regexp,
                tags: find.tags.clone(),
            };
            finds.push((store, request));
            plan.push(Planned::Find {
                find: finds.len() - 1,
                field: format!("{field}.find"),
                path: find.path.clone().unwrap_or_default(),
            });
        } else {
            return Err(SyncError::InvalidSpec {
                field,
                message: "exactly one of extract, find and sourceRef.generatorRef must be set"
                    .to_owned(),
            });
        }
    }
    for (i, entry) in es.spec.data.iter().enumerate() {
        let field = format!("spec.data[{i}]");
        if let Some(generator_ref) = generator_ref(&field, entry.source_ref.as_ref())? {
            plan.push(Planned::Generated {
                field,
                generator_ref: generator_ref.clone(),
                data: Some(i),
            });
            continue;
        }
        let store = reader.store(&field, entry.source_ref.as_ref()).await?;
        let remote_ref = entry
            .remote_ref
            .as_ref()
            .ok_or_else(|| SyncError::InvalidSpec {
                field: format!("{field}.remoteRef"),
                message: "remoteRef is required (or sourceRef.generatorRef)".to_owned(),
            })?;
        let get = reader.plan_get(&store, remote_ref);
        plan.push(Planned::Data {
            get,
            field: format!("{field}.remoteRef.key"),
        });
    }

    // 2. Read, concurrently but bounded.
    let gets = reader.gets;
    // Each read owns its client and request: futures borrowing from `gets` make the whole sync
    // future not `Send` for every lifetime, which a kube-runtime reconcile needs.
    let get_futures: Vec<_> = gets
        .iter()
        .map(|(store, request)| {
            let (client, request) = (store.client.clone(), request.clone());
            async move { client.get(&request).await }
        })
        .collect();
    let find_futures: Vec<_> = finds
        .iter()
        .map(|(store, request)| {
            let (client, request) = (store.client.clone(), request.clone());
            async move { client.find(&request).await }
        })
        .collect();
    let get_reads = stream::iter(get_futures)
        .buffered(CONCURRENT_READS)
        .collect::<Vec<_>>();
    let find_reads = stream::iter(find_futures)
        .buffered(CONCURRENT_READS)
        .collect::<Vec<_>>();
    let (mut got, mut found) = futures::join!(get_reads, find_reads);

    // 3. Hand each entry its result, or the first failure in spec order.
    let mut fetched = Fetched::default();
    let mut pending = Vec::new();
    for planned in plan {
        match planned {
            Planned::Generated {
                field,
                generator_ref,
                data,
            } => {
                // A placeholder, filled in once everything else has been read.
                let slot = match data {
                    None => fetched.data_from.len(),
                    Some(_) => fetched.data.len(),
                };
                match data {
                    None => fetched
                        .data_from
                        .push(FetchedDataFrom::Generated(GeneratedValues::default())),
                    Some(_) => {
                        fetched.generated_data.insert(fetched.data.len());
                        fetched.data.push(empty_value());
                    }
                }
                pending.push((field, generator_ref, data, slot));
            }
            Planned::Extract { get, field } => {
                let value = match take_read(&gets, &mut got, get, field) {
                    Err(e) if tolerate_gone && is_gone(&e) => {
                        fetched.gone_data_from.insert(fetched.data_from.len());
                        empty_read(&gets, get)
                    }
                    read => read?,
                };
                fetched.data_from.push(FetchedDataFrom::Extract(value));
            }
            Planned::Data { get, field } => {
                let value = match take_read(&gets, &mut got, get, field) {
                    Err(e) if tolerate_gone && is_gone(&e) => {
                        fetched.gone_data.insert(fetched.data.len());
                        empty_read(&gets, get)
                    }
                    read => read?,
                };
                fetched.data.push(value);
            }
            Planned::Find { find, field, path } => {
                let result = std::mem::replace(&mut found[find], Ok(BTreeMap::new()));
                let store = finds[find].0.name.clone();
                match result {
                    Ok(found) => fetched
                        .data_from
                        .push(FetchedDataFrom::Find { store, found }),
                    Err(source) => {
                        return Err(SyncError::Fetch {
                            field,
                            store,
                            key: path,
                            source,
                        });
                    }
                }
            }
        }
    }
    let template_from = es
        .spec
        .target
        .as_ref()
        .and_then(|t| t.template.as_ref())
        .map(|t| t.template_from.as_slice())
        .unwrap_or_default();
    fetched.template_from =
        template_sources(kube, namespace, "spec.target.template", template_from).await?;
    // 4. Generate, in spec order: each generator runs (or returns kept values) only now.
    for (field, generator_ref, data, slot) in pending {
        let generated = generators
            .generate(namespace, &field, &generator_ref)
            .await
            .map_err(|source| SyncError::Generator {
                field: format!("{field}.sourceRef.generatorRef"),
                source,
            })?;
        match data {
            None => fetched.data_from[slot] = FetchedDataFrom::Generated(generated),
            Some(i) => {
                let remote_ref = es.spec.data[i].remote_ref.as_ref();
                fetched.data[slot] = generated_value(&field, remote_ref, generated)?;
            }
        }
    }
    Ok(fetched)
}

/// The result of read `i` for an entry: the value, or the read's error (taken, so each error
/// is reported once — the sync stops at it).
fn take_read(
    gets: &[(ResolvedStore, GetRequest)],
    results: &mut [Result<RemoteSecret, ProviderError>],
    i: usize,
    field: String,
) -> Result<FetchedValue, SyncError> {
    let (store, request) = &gets[i];
    let secret = match std::mem::replace(&mut results[i], Ok(RemoteSecret::default())) {
        Ok(secret) => {
            // Later entries reading the same secret need it too.
            results[i] = Ok(secret.clone());
            secret
        }
        Err(source) => {
            if let ProviderError::NotFound { key } = &source {
                // A later entry reading the same secret finds it gone too.
                results[i] = Err(ProviderError::NotFound { key: key.clone() });
            }
            return Err(SyncError::Fetch {
                field,
                store: store.name.clone(),
                key: request.key.clone(),
                source,
            });
        }
    };
    Ok(FetchedValue {
        store: store.name.clone(),
        key: request.key.clone(),
        secret,
    })
}

/// The placeholder of a value not read (yet).
fn empty_value() -> FetchedValue {
    FetchedValue {
        store: String::new(),
        key: String::new(),
        secret: RemoteSecret::default(),
    }
}

/// The one generated value a `data[]` entry takes: the key its `remoteRef.key` names, or the
/// only key the generator made when it has no `remoteRef`.
fn generated_value(
    field: &str,
    remote_ref: Option<&ExternalSecretDataRemoteRef>,
    generated: GeneratedValues,
) -> Result<FetchedValue, SyncError> {
    let GeneratedValues {
        generator,
        mut values,
    } = generated;
    let made = values.keys().cloned().collect::<Vec<_>>().join(", ");
    let key = match remote_ref {
        Some(r) => r.key.clone(),
        None if values.len() == 1 => values.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(SyncError::InvalidSpec {
                field: format!("{field}.remoteRef.key"),
                message: format!("{generator} made several keys ({made}); name the one to use"),
            });
        }
    };
    let value = values.remove(&key).ok_or_else(|| SyncError::InvalidSpec {
        field: format!("{field}.remoteRef.key"),
        message: format!("{generator} made no key {key:?} (it made: {made})"),
    })?;
    Ok(FetchedValue {
        store: generator,
        key,
        secret: RemoteSecret {
            value,
            version: None,
        },
    })
}

/// A read that failed because the remote secret does not exist.
fn is_gone(error: &SyncError) -> bool {
    matches!(
        error,
        SyncError::Fetch {
            source: ProviderError::NotFound { .. },
            ..
        }
    )
}

/// The placeholder of a read whose remote secret is gone.
fn empty_read(gets: &[(ResolvedStore, GetRequest)], i: usize) -> FetchedValue {
    let (store, request) = &gets[i];
    FetchedValue {
        store: store.name.clone(),
        key: request.key.clone(),
        secret: RemoteSecret::default(),
    }
}

/// Resolves stores and plans reads, each once per sync.
struct Reader<'a> {
    namespace: &'a str,
    stores: &'a dyn StoreResolver,
    default_ref: Option<&'a SecretStoreRef>,
    resolved: HashMap<(String, String), ResolvedStore>,
    get_index: HashMap<(String, GetRequest), usize>,
    gets: Vec<(ResolvedStore, GetRequest)>,
}

impl Reader<'_> {
    /// The store of an entry: its own `sourceRef.storeRef`, else `spec.secretStoreRef`.
    async fn store(
        &mut self,
        field: &str,
        source_ref: Option<&StoreGeneratorSourceRef>,
    ) -> Result<ResolvedStore, SyncError> {
        let (store_ref, ref_field) = match source_ref.and_then(|s| s.store_ref.as_ref()) {
            Some(r) => (r, format!("{field}.sourceRef.storeRef")),
            None => match self.default_ref {
                Some(r) => (r, "spec.secretStoreRef".to_owned()),
                None => {
                    return Err(SyncError::InvalidSpec {
                        field: format!("{field}.sourceRef"),
                        message: "no store: set spec.secretStoreRef or this entry's sourceRef"
                            .to_owned(),
                    });
                }
            },
        };
        let kind = match store_ref.kind.unwrap_or_default() {
            SecretStoreKind::SecretStore => "SecretStore",
            SecretStoreKind::ClusterSecretStore => "ClusterSecretStore",
        };
        let cache_key = (kind.to_owned(), store_ref.name.clone());
        if let Some(store) = self.resolved.get(&cache_key) {
            return Ok(store.clone());
        }
        let store = self
            .stores
            .resolve(self.namespace, store_ref)
            .await
            .map_err(|source| SyncError::Store {
                field: ref_field,
                source,
            })?;
        self.resolved.insert(cache_key, store.clone());
        Ok(store)
    }

    /// Adds the read a `remoteRef` (or `extract`) names to the plan, once per store and
    /// request; returns its index.
    fn plan_get(
        &mut self,
        store: &ResolvedStore,
        remote_ref: &ExternalSecretDataRemoteRef,
    ) -> usize {
        let request = GetRequest {
            key: remote_ref.key.clone(),
            version: remote_ref.version.clone(),
            metadata: remote_ref.metadata_policy == Some(MetadataPolicy::Fetch),
        };
        let key = (store.name.clone(), request);
        if let Some(&i) = self.get_index.get(&key) {
            return i;
        }
        self.gets.push((store.clone(), key.1.clone()));
        self.get_index.insert(key, self.gets.len() - 1);
        self.gets.len() - 1
    }
}
