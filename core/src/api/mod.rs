//! The kuvert API: custom resource types of `kuvert.io/v1alpha1` and
//! `generators.kuvert.io/v1alpha1`, shaped like External Secrets Operator's `external-secrets.io/v1`.
//!
//! Defaults are documented on each field and applied in code, never written into objects by the
//! CRD schema (schema defaults made GitOps tools show permanent drift for ESO).

mod cluster_external_secret;
mod common;
mod external_secret;
mod generators;
mod provider;
mod push_secret;
mod store;

pub use cluster_external_secret::*;
pub use common::*;
pub use external_secret::*;
pub use generators::*;
pub use provider::*;
pub use push_secret::*;
pub use store::*;

/// The API group of kuvert's own kinds.
pub const GROUP: &str = "kuvert.io";
/// The version served.
pub const VERSION: &str = "v1alpha1";
/// Label on every object kuvert writes, so it can watch only what it manages.
pub const MANAGED_LABEL: &str = "kuvert.io/managed";
/// Annotation holding a hash of the data kuvert wrote, to detect drift.
pub const DATA_HASH_ANNOTATION: &str = "kuvert.io/data-hash";
/// Annotation listing (comma-separated) the keys kuvert merged into a Secret it does not own,
/// so a later sync can remove the ones it no longer produces and leave the others alone.
pub const MERGED_KEYS_ANNOTATION: &str = "kuvert.io/merged-keys";
/// Annotation (`"true"`) letting an ExternalSecret being deleted go without revoking its
/// generators' leases: the escape when the store cannot revoke them. They then expire by their
/// TTL in the store.
pub const ABANDON_LEASES_ANNOTATION: &str = "kuvert.io/abandon-leases";
/// Annotation whose change forces an immediate sync.
pub const FORCE_SYNC_ANNOTATION: &str = "kuvert.io/force-sync";
/// The same, without prefix, as ESO users type it.
pub const FORCE_SYNC_ANNOTATION_SHORT: &str = "force-sync";
/// Label on a Deployment, StatefulSet or DaemonSet (`"true"`) restarting it when a Secret
/// kuvert manages that its pod template uses changes. A label, so kuvert watches only these.
pub const RELOAD_LABEL: &str = "kuvert.io/reload";
/// Annotation beside [`RELOAD_LABEL`] narrowing it to the Secrets it lists (comma-separated).
pub const RELOAD_SECRETS_ANNOTATION: &str = "kuvert.io/reload-secrets";
/// Prefix of the pod template annotation holding, per Secret, the data hash the workload runs.
pub const SECRET_HASH_ANNOTATION_PREFIX: &str = "kuvert.io/secret-hash.";
