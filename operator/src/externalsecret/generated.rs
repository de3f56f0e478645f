//! Generated values: kept so that they stay stable, and their leases, kept so that they are
//! renewed and revoked — across restarts.
//!
//! A generator runs only when its values are due to change: when the ExternalSecret is first
//! synced, refreshed (refresh interval or policy), force-synced, when its entry is new or names
//! another generator, or when its lease must be replaced. Every other sync (drift repair, a
//! change of something else in the spec, a store change, a retry) reuses what it made last.
//!
//! What a generator made is kept in a companion Secret `<name>.kuvert-generated`, owned by the
//! ExternalSecret (garbage-collected with it) and labelled `kuvert.io/managed`: the raw values
//! per entry, so the target can be rebuilt without generating again, and each entry's lease.
//! It is written *before* the target Secret, so a crash in between never loses a lease; leases
//! replaced by newer ones wait in its `revoke` list until the new Secret is written, then are
//! revoked. The status shows the leases (ids and times only, never values).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DynamicObject, PostParams};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ExternalSecret, GeneratorLease, GeneratorRef, MANAGED_LABEL};
use kuvert_core::generator::{
    GenerateError, GeneratedValues, Generator, GeneratorContext, GeneratorError, GeneratorResolver,
    Kind, checked_kind,
};
use kuvert_core::provider::ProviderError;
use kuvert_core::secret::SecretBytes;
use serde::{Deserialize, Serialize};

use super::leases::HeldLease;
use crate::context::Context;

/// The key of the companion Secret holding the state.
const STATE_KEY: &str = "state.json";

/// Name of the companion Secret of an ExternalSecret.
pub fn companion_name(es: &ExternalSecret) -> String {
    format!("{}.kuvert-generated", es.name_any())
}

/// Whether any entry of `es` uses a generator.
pub fn uses_generators(es: &ExternalSecret) -> bool {
    !generator_fields(es).is_empty()
}

/// What one entry's generator made last. `Debug` shows the keys, never the values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryState {
    /// The generator, `Kind/namespace/name`.
    pub generator: String,
    /// The values, base64.
    pub values: BTreeMap<String, String>,
    /// Their lease, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<HeldLease>,
}

impl std::fmt::Debug for EntryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryState")
            .field("generator", &self.generator)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("lease", &self.lease)
            .finish()
    }
}

/// A lease to revoke once the Secret holding its replacement is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRevoke {
    /// The generator, `Kind/namespace/name`.
    pub generator: String,
    /// The lease id.
    pub lease_id: String,
}

/// Everything kept for one ExternalSecret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedState {
    /// By entry field (`spec.dataFrom[0]`).
    #[serde(default)]
    pub entries: BTreeMap<String, EntryState>,
    /// Replaced leases not revoked yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoke: Vec<PendingRevoke>,
}

impl GeneratedState {
    /// The state held in `es`'s companion Secret; empty without one. A companion the
    /// ExternalSecret does not own (one left by a deleted namesake, not yet garbage-collected,
    /// or planted) is neither trusted nor overwritten: its lease ids would be renewed and
    /// revoked with the generator's credentials.
    pub fn from_secret(
        es: &ExternalSecret,
        secret: Option<&Secret>,
    ) -> Result<Self, ProviderError> {
        let Some(secret) = secret else {
            return Ok(GeneratedState::default());
        };
        let owned = secret.owner_references().iter().any(|r| {
            r.controller == Some(true)
                && r.kind == "ExternalSecret"
                && Some(&r.uid) == es.uid().as_ref()
        });
        if !owned {
            return Err(ProviderError::Conflict {
                message: format!(
                    "Secret {}/{} exists and is not owned by this ExternalSecret; kuvert neither trusts nor overwrites it",
                    es.namespace().unwrap_or_default(),
                    companion_name(es)
                ),
            });
        }
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(STATE_KEY)) else {
            return Ok(GeneratedState::default());
        };
        serde_json::from_slice(&bytes.0).map_err(|e| ProviderError::InvalidSpec {
            field: format!("Secret data {STATE_KEY:?}"),
            message: format!("unreadable generated state: {e}"),
        })
    }

    /// Whether any lease is held or waits to be revoked.
    pub fn holds_leases(&self) -> bool {
        !self.revoke.is_empty() || self.entries.values().any(|e| e.lease.is_some())
    }

    /// Drops entries the spec no longer has, queueing their leases for revocation.
    pub fn retain_fields(&mut self, fields: &BTreeSet<String>) {
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|f| !fields.contains(*f))
            .cloned()
            .collect();
        for field in gone {
            if let Some(entry) = self.entries.remove(&field)
                && let Some(lease) = entry.lease
            {
                self.revoke.push(PendingRevoke {
                    generator: entry.generator,
                    lease_id: lease.id,
                });
            }
        }
    }

    /// The leases as the status shows them.
    pub fn status_leases(&self, fraction: f64) -> Vec<GeneratorLease> {
        self.entries
            .iter()
            .filter_map(|(field, entry)| {
                let lease = entry.lease.as_ref()?;
                Some(GeneratorLease {
                    field: field.clone(),
                    generator: entry.generator.clone(),
                    lease_id: lease.id.clone(),
                    duration_seconds: lease.duration_seconds as i64,
                    renewable: lease.renewable,
                    renewed_time: Some(Time(lease.renewed_at)),
                    next_action_time: Some(Time(lease.next_action_at(fraction))),
                })
            })
            .collect()
    }
}

/// The fields of `es`'s generator entries.
pub fn generator_fields(es: &ExternalSecret) -> BTreeSet<String> {
    let has = |s: &Option<kuvert_core::api::StoreGeneratorSourceRef>| {
        s.as_ref().is_some_and(|s| s.generator_ref.is_some())
    };
    let data_from = es
        .spec
        .data_from
        .iter()
        .enumerate()
        .filter(|(_, d)| has(&d.source_ref))
        .map(|(i, _)| format!("spec.dataFrom[{i}]"));
    let data = es
        .spec
        .data
        .iter()
        .enumerate()
        .filter(|(_, d)| has(&d.source_ref))
        .map(|(i, _)| format!("spec.data[{i}]"));
    data_from.chain(data).collect()
}

/// Reads the companion Secret; `None` if there is none.
pub async fn read_companion(
    ctx: &Context,
    es: &ExternalSecret,
) -> Result<Option<Secret>, kube::Error> {
    let namespace = es.namespace().unwrap_or_default();
    Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&companion_name(es))
        .await
}

/// Writes `state` to the companion Secret (creating it, or replacing `existing` with its
/// `resourceVersion`, so concurrent writers conflict rather than lose a lease). Returns the
/// Secret as written.
pub async fn write_companion(
    ctx: &Context,
    es: &ExternalSecret,
    existing: Option<&Secret>,
    state: &GeneratedState,
) -> Result<Secret, kube::Error> {
    let namespace = es.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let json = serde_json::to_vec(state).expect("generated state serializes");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(companion_name(es)),
            namespace: Some(namespace.clone()),
            labels: Some([(MANAGED_LABEL.to_owned(), "true".to_owned())].into()),
            owner_references: es.controller_owner_ref(&()).map(|r| vec![r]),
            resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        data: Some([(STATE_KEY.to_owned(), ByteString(json))].into()),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    };
    match existing {
        Some(_) => {
            api.replace(&companion_name(es), &PostParams::default(), &secret)
                .await
        }
        None => api.create(&PostParams::default(), &secret).await,
    }
}

/// The generator object a reference names, built by its kind.
pub async fn generator_for(
    ctx: &Context,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<(String, Arc<dyn Generator>), GeneratorError> {
    let display = kuvert_core::generator::display_name(kind, namespace, name);
    let fail = |source| GeneratorError::Generator {
        generator: display.clone(),
        source,
    };
    let api =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &kind.api_resource());
    let object = api.get_opt(name).await.map_err(|e| {
        fail(
            ProviderError::Unavailable {
                message: format!("reading {display}: the Kubernetes API call failed"),
                source: Some(Box::new(e)),
            }
            .into(),
        )
    })?;
    let Some(object) = object else {
        return Err(GeneratorError::NotFound { generator: display });
    };
    let spec_json = object.data.get("spec").cloned().unwrap_or_default();
    let spec = kind.parse_spec(spec_json).map_err(fail)?;
    if !ctx.settings.serves(spec.controller()) {
        return Err(fail(GenerateError::invalid_spec(
            "spec.controller",
            format!(
                "the generator belongs to controller class {:?}, and this kuvert serves {:?}",
                spec.controller().unwrap_or_default(),
                ctx.settings.controller_class.as_deref().unwrap_or_default()
            ),
        )));
    }
    let implementation = ctx.generators.kind(&spec);
    let context = GeneratorContext {
        kind,
        name,
        namespace,
    };
    implementation.validate(&context).map_err(fail)?;
    let generator = implementation
        .generator(&context, &ctx.kube)
        .await
        .map_err(fail)?;
    Ok((display, generator))
}

/// Which entries a sync regenerates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regenerate {
    /// Every entry (first sync, refresh, force-sync).
    All,
    /// These entries (leases to replace); the others reuse their values.
    Fields(BTreeSet<String>),
}

impl Regenerate {
    /// What a sync for reason `why` (see `decide`) regenerates, besides `leases`.
    pub fn for_sync(why: &str, leases: BTreeSet<String>) -> Self {
        match why {
            "FirstSync" | "Refresh" | "ForceSync" => Regenerate::All,
            _ => Regenerate::Fields(leases),
        }
    }

    fn includes(&self, field: &str) -> bool {
        match self {
            Regenerate::All => true,
            Regenerate::Fields(fields) => fields.contains(field),
        }
    }
}

/// The operator's [`GeneratorResolver`]: runs a generator when its entry is due to regenerate
/// (or has nothing kept), and otherwise returns the values kept in the state.
pub struct ClusterGenerators<'a> {
    ctx: &'a Context,
    regenerate: Regenerate,
    state: Mutex<GeneratedState>,
    changed: Mutex<bool>,
    /// Leases made in this sync: revoked if the sync fails (nothing uses them then).
    fresh: Mutex<Vec<(String, String, String)>>,
}

impl<'a> ClusterGenerators<'a> {
    /// A resolver over `state`.
    pub fn new(ctx: &'a Context, state: GeneratedState, regenerate: Regenerate) -> Self {
        ClusterGenerators {
            ctx,
            regenerate,
            state: Mutex::new(state),
            changed: Mutex::new(false),
            fresh: Mutex::default(),
        }
    }

    /// The state after the sync, and whether it changed.
    pub fn into_state(self) -> (GeneratedState, bool) {
        let changed = *self.changed.lock().expect("lock");
        (self.state.into_inner().expect("lock"), changed)
    }

    /// Revokes the leases made in this sync (it failed, so no Secret holds them).
    pub async fn revoke_fresh(&self) {
        let fresh = std::mem::take(&mut *self.fresh.lock().expect("lock"));
        for (namespace, generator, lease_id) in fresh {
            super::lifecycle::revoke(self.ctx, &namespace, &generator, &lease_id)
                .await
                .ok();
        }
    }
}

#[async_trait]
impl GeneratorResolver for ClusterGenerators<'_> {
    async fn generate(
        &self,
        namespace: &str,
        field: &str,
        generator_ref: &GeneratorRef,
    ) -> Result<GeneratedValues, GeneratorError> {
        let kind = checked_kind(generator_ref)?;
        let display = kuvert_core::generator::display_name(kind, namespace, &generator_ref.name);
        if !self.regenerate.includes(field) {
            let state = self.state.lock().expect("lock");
            if let Some(kept) = state.entries.get(field).filter(|e| e.generator == display) {
                return decode_values(&display, kept);
            }
        }
        let (display, generator) =
            generator_for(self.ctx, namespace, kind, &generator_ref.name).await?;
        let generated =
            counted(kind, "generate", generator.generate().await).map_err(|source| {
                GeneratorError::Generator {
                    generator: display.clone(),
                    source,
                }
            })?;
        let now = (self.ctx.clock)();
        let lease = generated.lease.as_ref().map(|l| HeldLease::issued(l, now));
        if let Some(lease) = &lease {
            self.fresh.lock().expect("lock").push((
                namespace.to_owned(),
                display.clone(),
                lease.id.clone(),
            ));
        }
        let entry = EntryState {
            generator: display.clone(),
            values: generated
                .values
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        base64::engine::general_purpose::STANDARD.encode(v.expose()),
                    )
                })
                .collect(),
            lease,
        };
        let mut state = self.state.lock().expect("lock");
        if let Some(old) = state.entries.insert(field.to_owned(), entry)
            && let Some(old_lease) = old.lease
        {
            state.revoke.push(PendingRevoke {
                generator: old.generator,
                lease_id: old_lease.id,
            });
        }
        *self.changed.lock().expect("lock") = true;
        Ok(GeneratedValues {
            generator: display,
            values: generated.values,
        })
    }
}

fn decode_values(display: &str, kept: &EntryState) -> Result<GeneratedValues, GeneratorError> {
    let values = kept
        .values
        .iter()
        .map(|(k, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map(|bytes| (k.clone(), SecretBytes::new(bytes)))
                .map_err(|_| GeneratorError::State {
                    generator: display.to_owned(),
                    source: ProviderError::InvalidSpec {
                        field: format!("key {k:?}"),
                        message: "kept value is not base64".to_owned(),
                    },
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(GeneratedValues {
        generator: display.to_owned(),
        values,
    })
}

/// Counts a generator call in the metrics, by outcome.
pub(super) fn counted<T>(
    kind: Kind,
    operation: &'static str,
    result: Result<T, GenerateError>,
) -> Result<T, GenerateError> {
    let outcome = result.as_ref().map_or_else(|e| e.reason(), |_| "ok");
    crate::metrics::generator_request(kind.as_str(), operation, outcome);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(generator: &str, lease: Option<&str>) -> EntryState {
        EntryState {
            generator: generator.to_owned(),
            values: [("password".to_owned(), "cHc=".to_owned())].into(),
            lease: lease.map(|id| HeldLease {
                id: id.to_owned(),
                duration_seconds: 60,
                renewable: true,
                renewed_at: jiff::Timestamp::from_second(1000).unwrap(),
                truncated: false,
            }),
        }
    }

    #[test]
    fn only_first_syncs_refreshes_and_force_syncs_regenerate_everything() {
        for why in ["FirstSync", "Refresh", "ForceSync"] {
            assert_eq!(Regenerate::for_sync(why, BTreeSet::new()), Regenerate::All);
        }
        for why in [
            "Drift",
            "SpecChanged",
            "StoreChanged",
            "Retry",
            "LeaseExpiring",
        ] {
            let r = Regenerate::for_sync(why, ["spec.data[1]".to_owned()].into());
            assert!(!r.includes("spec.data[0]"), "{why}");
            assert!(r.includes("spec.data[1]"), "{why}");
        }
    }

    #[test]
    fn entries_removed_from_the_spec_queue_their_leases_for_revocation() {
        let mut state = GeneratedState {
            entries: [
                ("spec.data[0]".to_owned(), entry("Password/ns/pw", None)),
                (
                    "spec.dataFrom[0]".to_owned(),
                    entry("VaultDynamicSecret/ns/db", Some("db/creds/1")),
                ),
            ]
            .into(),
            revoke: vec![],
        };
        assert!(state.holds_leases());
        state.retain_fields(&["spec.data[0]".to_owned()].into());
        assert_eq!(state.entries.len(), 1);
        assert_eq!(
            state.revoke,
            vec![PendingRevoke {
                generator: "VaultDynamicSecret/ns/db".to_owned(),
                lease_id: "db/creds/1".to_owned(),
            }]
        );
        assert!(state.holds_leases());
    }

    #[test]
    fn the_state_round_trips_through_its_secret_and_the_status_shows_only_lease_metadata() {
        let state = GeneratedState {
            entries: [(
                "spec.dataFrom[0]".to_owned(),
                entry("VaultDynamicSecret/ns/db", Some("db/creds/1")),
            )]
            .into(),
            revoke: vec![],
        };
        let mut es = ExternalSecret::new("app", Default::default());
        es.metadata.namespace = Some("ns".to_owned());
        es.metadata.uid = Some("uid-1".to_owned());
        let mut secret = Secret {
            metadata: ObjectMeta {
                owner_references: es.controller_owner_ref(&()).map(|r| vec![r]),
                ..ObjectMeta::default()
            },
            data: Some(
                [(
                    STATE_KEY.to_owned(),
                    ByteString(serde_json::to_vec(&state).unwrap()),
                )]
                .into(),
            ),
            ..Secret::default()
        };
        assert_eq!(
            GeneratedState::from_secret(&es, Some(&secret)).unwrap(),
            state
        );
        assert_eq!(
            GeneratedState::from_secret(&es, None).unwrap(),
            GeneratedState::default()
        );
        // Another object's companion (or a planted one) is refused, retryably.
        secret.metadata.owner_references.as_mut().unwrap()[0].uid = "uid-0".to_owned();
        let refused = GeneratedState::from_secret(&es, Some(&secret)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "conflict: Secret ns/app.kuvert-generated exists and is not owned by this ExternalSecret; kuvert neither trusts nor overwrites it"
        );
        assert!(refused.is_transient());
        secret.metadata.owner_references = None;
        assert!(GeneratedState::from_secret(&es, Some(&secret)).is_err());
        let leases = state.status_leases(0.5);
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].lease_id, "db/creds/1");
        assert_eq!(leases[0].field, "spec.dataFrom[0]");
        let shown = serde_json::to_string(&leases).unwrap();
        assert!(!shown.contains("cHc="), "{shown}");
    }

    #[test]
    fn the_kept_state_never_shows_its_values_in_debug_output() {
        let state = GeneratedState {
            entries: [(
                "spec.data[0]".to_owned(),
                entry("Password/ns/pw", Some("l1")),
            )]
            .into(),
            revoke: vec![],
        };
        let shown = format!("{state:?}");
        assert!(!shown.contains("cHc="), "{shown}");
        assert!(shown.contains("keys: [\"password\"]"), "{shown}");
    }

    #[test]
    fn kept_values_decode_and_bad_ones_name_the_key() {
        let values = decode_values("Password/ns/pw", &entry("Password/ns/pw", None)).unwrap();
        assert_eq!(values.values["password"].expose(), b"pw");
        let mut bad = entry("Password/ns/pw", None);
        bad.values.insert("x".to_owned(), "!!".to_owned());
        assert_eq!(
            decode_values("Password/ns/pw", &bad)
                .unwrap_err()
                .to_string(),
            "Password/ns/pw: generated values: invalid spec: key \"x\": kept value is not base64"
        );
    }

    #[test]
    fn the_generator_entries_of_a_spec_are_found_by_field() {
        let es: ExternalSecret = serde_saphyr::from_str(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: ns}\nspec:\n  dataFrom:\n  - extract: {key: x}\n  - sourceRef: {generatorRef: {kind: UUID, name: id}}\n  data:\n  - secretKey: pw\n    sourceRef: {generatorRef: {kind: Password, name: pw}}\n  - secretKey: k\n    remoteRef: {key: k}\n",
        )
        .unwrap();
        assert!(uses_generators(&es));
        assert_eq!(
            generator_fields(&es),
            ["spec.data[0]".to_owned(), "spec.dataFrom[1]".to_owned()].into()
        );
        assert_eq!(companion_name(&es), "app.kuvert-generated");
    }
}
