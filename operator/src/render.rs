//! `kuvert render -f PATH... [--decode]`: syncs every ExternalSecret of some manifests once,
//! offline, and prints the Secrets they produce.
//!
//! Stores are built by the same providers as in the cluster (the fake provider serves inline
//! data; a real store is contacted for real). Secrets and ConfigMaps in the manifests stand in
//! for the cluster's: stores read credentials from them, `templateFrom` reads templates from
//! them, and one with an ExternalSecret's target name is the existing target Secret (so
//! `creationPolicy: Merge` merges into it, and `Owner` refuses it unless it is owned).
//!
//! Generators (`Password`, `UUID`, `Fake`, `VaultDynamicSecret`) in the manifests serve the
//! ExternalSecrets whose `sourceRef.generatorRef` names them: each render generates afresh
//! (there is nothing to keep values stable against offline).
//!
//! Output: one YAML document per Secret, in the order the ExternalSecrets appear (files in
//! the order given, a folder's `*.yaml` / `*.yml` files sorted by name, not recursive). Every
//! object that fails gets one line on stderr naming it, the field and the cause; the others
//! still render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kuvert_core::api::{
    ClusterSecretStore, ExternalSecret, SecretStore, SecretStoreKind, SecretStoreRef,
};
use kuvert_core::engine::{self, ResolvedStore, StoreError, StoreResolver};
use kuvert_core::generator::{
    GenerateError, GeneratedValues, GeneratorError, GeneratorResolver, GeneratorSpec, Kind,
    checked_kind,
};
use kuvert_core::manifest::Manifest;
use kuvert_core::memory::MemoryKube;
use kuvert_core::store_key::StoreKey;
use serde::Serialize;

use crate::generators::Generators;
use crate::providers::Registry;
use crate::resolve::{self, FoundStore, GeneratorObjects, StoreObjects};

/// What a render produced: the YAML for stdout and one line per failure for stderr.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Multi-document YAML, each document starting with `---`.
    pub yaml: String,
    /// One line per failing input or object.
    pub errors: Vec<String>,
    /// One line per object that does nothing offline (for stderr; not a failure).
    pub notes: Vec<String>,
}

/// Renders the manifests at `paths` (files or folders).
pub async fn render(paths: &[PathBuf], decode: bool, registry: &Registry) -> Rendered {
    let mut out = Rendered::default();
    let mut inputs = Inputs::default();
    for file in files(paths, &mut out.errors) {
        inputs.read(&file, &mut out.errors);
    }
    out.notes = std::mem::take(&mut inputs.notes);
    let resolver = Stores {
        registry,
        kube: &inputs.kube,
        secret_stores: &inputs.secret_stores,
        cluster_stores: &inputs.cluster_stores,
        namespaces: &inputs.namespaces,
    };
    let kinds = Generators::system(registry.vault_cache().clone());
    let generators = ManifestGenerators {
        kinds: &kinds,
        kube: &inputs.kube,
        specs: &inputs.generators,
    };
    let now = jiff::Timestamp::now();
    for es in &inputs.external_secrets {
        let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
        let target = engine::target::secret_name(es);
        let existing = inputs.secrets.get(&(namespace.to_owned(), target.clone()));
        match engine::sync(es, &resolver, &generators, &inputs.kube, existing, now).await {
            Ok(outcome) => {
                if let Some(secret) = &outcome.secret {
                    out.yaml.push_str("---\n");
                    out.yaml.push_str(&to_yaml(secret, decode));
                }
            }
            Err(e) => out.errors.push(one_line(&format!(
                "ExternalSecret {namespace}/{}: {e}",
                es.metadata.name.as_deref().unwrap_or_default()
            ))),
        }
    }
    kinds.shutdown().await;
    out
}

/// The files named: each file itself, each folder's YAML files sorted.
pub(crate) fn files(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = match std::fs::read_dir(path) {
                Ok(entries) => entries,
                Err(e) => {
                    errors.push(format!("{}: cannot read the folder: {e}", path.display()));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// Everything read from the manifests.
#[derive(Default)]
struct Inputs {
    external_secrets: Vec<ExternalSecret>,
    secret_stores: BTreeMap<(String, String), SecretStore>,
    cluster_stores: BTreeMap<String, ClusterSecretStore>,
    /// The labels of the Namespaces in the manifests.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets by (namespace, name), `stringData` folded into `data`.
    secrets: BTreeMap<(String, String), Secret>,
    /// Generator specs by (namespace, kind, name).
    generators: BTreeMap<(String, Kind, String), GeneratorSpec>,
    kube: MemoryKube,
    /// Objects read that render does nothing with, said on stderr.
    notes: Vec<String>,
}

impl Inputs {
    fn read(&mut self, file: &Path, errors: &mut Vec<String>) {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("{name}: cannot read: {e}"));
                return;
            }
        };
        // Documents are read one by one, so one bad object does not hide the others.
        let docs: Vec<serde_json::Value> = match serde_saphyr::from_multiple(&text) {
            Ok(docs) => docs,
            Err(e) => {
                // Only where: the parser's message may quote the text, which can be a
                // Secret's value.
                let at = e.location().map_or(String::new(), |l| {
                    format!(" at line {}, column {}", l.line(), l.column())
                });
                errors.push(format!("{name}: invalid YAML{at}"));
                return;
            }
        };
        for (i, doc) in docs.into_iter().filter(|d| !d.is_null()).enumerate() {
            match Manifest::from_value(&name, i + 1, doc) {
                Ok(manifest) => self.add(manifest),
                Err(e) => errors.push(one_line(&e.to_string())),
            }
        }
    }

    fn add(&mut self, manifest: Manifest) {
        let ns = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned())
        };
        match manifest {
            Manifest::ExternalSecret(mut es) => {
                es.metadata.namespace = Some(ns(&es.metadata));
                self.external_secrets.push(es);
            }
            Manifest::SecretStore(store) => {
                let key = (
                    ns(&store.metadata),
                    store.metadata.name.clone().unwrap_or_default(),
                );
                self.secret_stores.insert(key, store);
            }
            Manifest::ClusterSecretStore(store) => {
                let name = store.metadata.name.clone().unwrap_or_default();
                self.cluster_stores.insert(name, store);
            }
            Manifest::Secret(mut secret) => {
                secret.metadata.namespace = Some(ns(&secret.metadata));
                self.kube.add_secret(&secret);
                if let Some(string_data) = secret.string_data.take() {
                    let data = secret.data.get_or_insert_default();
                    for (k, v) in string_data {
                        data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
                    }
                }
                let key = (
                    ns(&secret.metadata),
                    secret.metadata.name.clone().unwrap_or_default(),
                );
                self.secrets.insert(key, secret);
            }
            Manifest::ConfigMap(mut cm) => {
                cm.metadata.namespace = Some(ns(&cm.metadata));
                self.kube.add_config_map(&cm);
            }
            Manifest::Generator(g) => {
                let key = (ns(&g.metadata), g.kind, g.metadata.name.unwrap_or_default());
                self.generators.insert(key, g.spec);
            }
            Manifest::Namespace(namespace) => {
                let name = namespace.metadata.name.unwrap_or_default();
                let labels = namespace.metadata.labels.unwrap_or_default();
                self.namespaces.insert(name, labels);
            }
            Manifest::ClusterExternalSecret(ces) => self.notes.push(format!(
                "ClusterExternalSecret {}: does nothing offline (kuvert run stamps its \
                 ExternalSecret into the selected namespaces); render an ExternalSecret \
                 with its spec instead",
                ces.metadata.name.unwrap_or_default()
            )),
            Manifest::PushSecret(ps) => self.notes.push(format!(
                "PushSecret {}/{}: does nothing offline (kuvert run pushes its Secret's keys \
                 into its stores); render writes to no store",
                ns(&ps.metadata),
                ps.metadata.name.clone().unwrap_or_default()
            )),
        }
    }
}

/// Resolves `generatorRef`s against the generators in the manifests; every call generates.
struct ManifestGenerators<'a> {
    kinds: &'a Generators,
    kube: &'a MemoryKube,
    specs: &'a BTreeMap<(String, Kind, String), GeneratorSpec>,
}

#[async_trait]
impl GeneratorObjects for ManifestGenerators<'_> {
    async fn spec(
        &self,
        namespace: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Option<GeneratorSpec>, GenerateError> {
        let key = (namespace.to_owned(), kind, name.to_owned());
        Ok(self.specs.get(&key).cloned())
    }

    /// Offline, every generator is served.
    fn check_serves(&self, _spec: &GeneratorSpec) -> Result<(), GenerateError> {
        Ok(())
    }
}

#[async_trait]
impl GeneratorResolver for ManifestGenerators<'_> {
    async fn generate(
        &self,
        namespace: &str,
        _field: &str,
        generator_ref: &kuvert_core::api::GeneratorRef,
    ) -> Result<GeneratedValues, GeneratorError> {
        let kind = checked_kind(generator_ref)?;
        let (generator, implementation) = resolve::generator(
            self.kinds,
            self,
            self.kube,
            namespace,
            kind,
            &generator_ref.name,
        )
        .await?;
        let made = implementation
            .generate()
            .await
            .map_err(|source| GeneratorError::Generator {
                generator: generator.clone(),
                source,
            })?;
        if let Some(lease) = &made.lease {
            // Nothing renews or revokes offline; the lease runs out by itself.
            tracing::info!(%generator, lease_id = %lease.id, "kuvert render generated leased credentials");
        }
        Ok(GeneratedValues {
            generator,
            values: made.values,
        })
    }
}

/// A message on one line, whatever its source: stderr has one line per failing object.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Resolves store references against the manifests read.
struct Stores<'a> {
    registry: &'a Registry,
    kube: &'a MemoryKube,
    secret_stores: &'a BTreeMap<(String, String), SecretStore>,
    cluster_stores: &'a BTreeMap<String, ClusterSecretStore>,
    namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
}

#[async_trait]
impl StoreObjects for Stores<'_> {
    fn store(&self, key: &StoreKey) -> Result<Option<FoundStore>, StoreError> {
        Ok(match key.kind {
            SecretStoreKind::SecretStore => self
                .secret_stores
                .get(&(key.namespace.clone(), key.name.clone()))
                .map(|store| FoundStore {
                    spec: store.spec.clone(),
                    conditions: Vec::new(),
                    generation: 0,
                }),
            SecretStoreKind::ClusterSecretStore => {
                self.cluster_stores.get(&key.name).map(|store| FoundStore {
                    spec: store.spec.store.clone(),
                    conditions: store.spec.conditions.clone(),
                    generation: 0,
                })
            }
        })
    }

    /// The labels of the Namespace as the manifests give it; one they do not give has none.
    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self.namespaces.get(namespace).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl StoreResolver for Stores<'_> {
    async fn resolve(
        &self,
        namespace: &str,
        store_ref: &SecretStoreRef,
    ) -> Result<ResolvedStore, StoreError> {
        let (key, found) = resolve::lookup(self, namespace, store_ref).await?;
        let name = key.display();
        let (_, client) =
            resolve::connect(self.registry, self.kube, &key, &found.spec, Some(namespace))
                .await
                .map_err(|source| StoreError::Provider {
                    store: name.clone(),
                    source,
                })?;
        Ok(ResolvedStore { client, name })
    }
}

/// A Secret as YAML, keys in the order people read them.
pub(crate) fn to_yaml(secret: &Secret, decode: bool) -> String {
    let meta = &secret.metadata;
    let mut data = BTreeMap::new();
    let mut string_data = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        match std::str::from_utf8(&v.0) {
            Ok(text) if decode => {
                string_data.insert(k.clone(), text.to_owned());
            }
            _ => {
                data.insert(
                    k.clone(),
                    base64::engine::general_purpose::STANDARD.encode(&v.0),
                );
            }
        }
    }
    let doc = OutSecret {
        api_version: "v1",
        kind: "Secret",
        metadata: OutMeta {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            owner_references: meta.owner_references.clone().unwrap_or_default(),
        },
        type_: secret.type_.clone(),
        immutable: secret.immutable,
        data,
        string_data,
    };
    serde_saphyr::to_string(&doc).expect("a Secret always serialises")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutSecret {
    api_version: &'static str,
    kind: &'static str,
    metadata: OutMeta,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    immutable: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    string_data: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutMeta {
    name: String,
    namespace: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    owner_references: Vec<OwnerReference>,
}
