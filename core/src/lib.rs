//! kuvert-core: the kuvert.io API types, the provider and generator traits, the sync engine
//! and the pure rules around it.
//!
//! Nothing in this crate talks to Kubernetes: the operator feeds it objects and applies what it
//! computes, so almost all behaviour is testable without a server. Beside the [`engine`]:
//! [`decide`] (whether to sync), [`lease`] (when a lease is renewed or replaced), [`generated`]
//! (what is kept of generated values and leases), [`admission`] (which namespaces a
//! ClusterSecretStore admits), [`stamping`] (what a ClusterExternalSecret stamps where),
//! [`store_key`] (a store reference's identity and display name), [`rollout`] (which
//! workloads follow which Secrets, and the pod template annotations that restart them).

pub mod admission;
pub mod api;
pub mod conditions;
pub mod crds;
pub mod decide;
pub mod engine;
pub mod generated;
pub mod generator;
pub mod jitter;
pub mod lease;
pub mod manifest;
pub mod memory;
pub mod provider;
pub mod push;
pub mod rollout;
pub mod secret;
pub mod stamping;
pub mod store_key;
pub mod template;
