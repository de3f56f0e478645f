//! kuvert-core: the kuvert.io API types, the provider and generator traits, and the sync engine.
//!
//! Nothing in this crate talks to Kubernetes: the operator feeds it objects and applies what it
//! computes, so almost all behaviour is testable without a server.

pub mod api;
pub mod conditions;
pub mod crds;
pub mod engine;
pub mod generator;
pub mod manifest;
pub mod memory;
pub mod provider;
pub mod secret;
pub mod template;
