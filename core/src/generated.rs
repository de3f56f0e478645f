//! The generated-state model: values of `sourceRef.generatorRef` entries, kept so that they
//! stay stable, and their leases, kept so that they are renewed and revoked — across restarts.
//! Pure; the operator reads and writes the companion Secret and calls the generators.
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
use std::time::Duration;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};

use crate::api::{ExternalSecret, GeneratorLease, MANAGED_LABEL};
use crate::decide::{LeaseSummary, SyncReason};
use crate::generator::{GeneratedValues, GeneratorError};
use crate::lease::{HeldLease, LeaseAction};
use crate::provider::ProviderError;
use crate::secret::SecretBytes;

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

    /// What the held leases need at `now` (renewed after `fraction` of their duration).
    pub fn lease_needs(&self, now: jiff::Timestamp, fraction: f64) -> LeaseNeeds {
        let mut needs = LeaseNeeds::default();
        for (field, entry) in &self.entries {
            let Some(lease) = &entry.lease else { continue };
            match lease.action(now, fraction) {
                LeaseAction::Renew => {
                    needs.renew.insert(field.clone());
                }
                LeaseAction::Regenerate => {
                    needs.replace.insert(field.clone());
                }
                LeaseAction::Wait(wait) => {
                    needs.next = Some(needs.next.map_or(wait, |n| n.min(wait)));
                }
            }
        }
        needs
    }

    /// How long until the next held lease needs anything (zero if overdue).
    pub fn next_lease_action(&self, now: jiff::Timestamp, fraction: f64) -> Option<Duration> {
        self.entries
            .values()
            .filter_map(|e| e.lease.as_ref())
            .map(|l| {
                now.duration_until(l.next_action_at(fraction))
                    .try_into()
                    .unwrap_or(Duration::ZERO)
            })
            .min()
    }

    /// The companion Secret holding this state for `es`: replacing `existing` carries its
    /// `resourceVersion`, so concurrent writers conflict rather than lose a lease.
    pub fn companion_secret(&self, es: &ExternalSecret, existing: Option<&Secret>) -> Secret {
        let json = serde_json::to_vec(self).expect("generated state serializes");
        Secret {
            metadata: ObjectMeta {
                name: Some(companion_name(es)),
                namespace: es.namespace(),
                labels: Some([(MANAGED_LABEL.to_owned(), "true".to_owned())].into()),
                owner_references: es.controller_owner_ref(&()).map(|r| vec![r]),
                resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            data: Some([(STATE_KEY.to_owned(), ByteString(json))].into()),
            type_: Some("Opaque".to_owned()),
            ..Secret::default()
        }
    }
}

/// What the held leases of one object need now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseNeeds {
    /// Entries whose lease is renewed now.
    pub renew: BTreeSet<String>,
    /// Entries whose credentials are replaced now (their lease cannot be renewed further).
    pub replace: BTreeSet<String>,
    /// How long until the next other lease needs anything.
    pub next: Option<Duration>,
}

impl LeaseNeeds {
    /// What the decision needs to know.
    pub fn summary(&self) -> LeaseSummary {
        LeaseSummary {
            replace: !self.replace.is_empty(),
            // Renewals due now are made right after the decision, whatever it is.
            next: self.next,
        }
    }
}

/// The fields of `es`'s generator entries.
pub fn generator_fields(es: &ExternalSecret) -> BTreeSet<String> {
    let has = |s: &Option<crate::api::StoreGeneratorSourceRef>| {
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

/// Which entries a sync regenerates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regenerate {
    /// Every entry (first sync, refresh, force-sync).
    All,
    /// These entries (leases to replace); the others reuse their values.
    Fields(BTreeSet<String>),
}

impl Regenerate {
    /// What a sync for reason `why` regenerates, besides `leases`.
    pub fn for_sync(why: SyncReason, leases: BTreeSet<String>) -> Self {
        if why.regenerates_all() {
            Regenerate::All
        } else {
            Regenerate::Fields(leases)
        }
    }

    /// Whether the entry at `field` is regenerated.
    pub fn includes(&self, field: &str) -> bool {
        match self {
            Regenerate::All => true,
            Regenerate::Fields(fields) => fields.contains(field),
        }
    }
}

/// The values kept for an entry, decoded; a value that is not base64 names its key.
pub fn decode_values(display: &str, kept: &EntryState) -> Result<GeneratedValues, GeneratorError> {
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
        use SyncReason::*;
        for why in [FirstSync, Refresh, ForceSync] {
            assert_eq!(Regenerate::for_sync(why, BTreeSet::new()), Regenerate::All);
        }
        for why in [Drift, SpecChanged, StoreChanged, Retry, LeaseExpiring] {
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
    fn lease_needs_sort_leases_into_renew_replace_and_the_next_wait() {
        let at = |secs| jiff::Timestamp::from_second(secs).unwrap();
        let lease = |id: &str, renewable| HeldLease {
            id: id.to_owned(),
            duration_seconds: 60,
            renewable,
            renewed_at: at(1000),
            truncated: false,
        };
        let mut state = GeneratedState::default();
        for (field, held) in [
            ("spec.data[0]", Some(lease("renew-me", true))),
            ("spec.data[1]", Some(lease("replace-me", false))),
            ("spec.data[2]", None),
        ] {
            let mut e = entry("Password/ns/pw", None);
            e.lease = held;
            state.entries.insert(field.to_owned(), e);
        }
        let due = state.lease_needs(at(2000), 0.5);
        assert_eq!(due.renew, ["spec.data[0]".to_owned()].into());
        assert_eq!(due.replace, ["spec.data[1]".to_owned()].into());
        assert_eq!(due.next, None);
        assert!(due.summary().replace);
        let early = state.lease_needs(at(1001), 0.5);
        assert!(early.renew.is_empty() && early.replace.is_empty());
        assert!(early.next.is_some_and(|d| d <= Duration::from_secs(30)));
        assert_eq!(state.next_lease_action(at(1001), 0.5), early.next);
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
