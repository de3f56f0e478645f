//! The kuvert operator: kube-runtime controllers wired around `kuvert-core`'s engine.
//!
//! The `kuvert` binary (`main.rs`) parses the command line and calls into this library, so
//! every piece is reachable from tests.

pub mod backoff;
pub mod budget;
pub mod cache_metrics;
pub mod clusterexternalsecret;
pub mod context;
#[cfg(feature = "dev")]
pub mod dev;
pub mod externalsecret;
pub mod generators;
pub mod health;
pub mod kube_access;
pub mod kube_metrics;
pub mod leader;
pub mod logins;
pub mod metrics;
pub mod migrate;
pub mod providers;
pub mod pushsecret;
pub mod queue;
pub mod ratelimit;
pub mod reads;
pub mod references;
pub mod render;
pub mod resolve;
pub mod rollout;
pub mod run;
pub mod startup;
pub mod store;
pub mod wakes;
