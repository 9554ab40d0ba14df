//! The Outpost agent. One runs in every datacenter: it enrolls with the management side,
//! dials out over mutual TLS, stores its datacenter's desired state locally, and makes the
//! cluster match it, reporting what it observes.
//!
//! - [`state`]: the durable local copy of the desired state and the outbox of reports.
//! - [`link`]: enrollment and the attach stream (reconnecting with backoff and jitter).
//! - [`plan`]: the pure plan (desired + observed → actions) and what the cluster's state means.
//! - [`reconcile`]: the loop running it against the drivers and the local state.
//! - [`drivers::kube`]: Kubernetes through kube-rs; the same code drives a real cluster or
//!   the simulated one.
//! - [`drivers::ceph`]: buckets, users, keys and quotas through the RADOS Gateway, and
//!   capacity from the Ceph manager.
//! - [`buckets`]: managed buckets carried out with that driver.
//! - [`install`]: the manifests that run the agent in the cluster it drives.
//!
//! The agent never deletes a workload because the link is down: it acts only on the desired
//! state it has stored, which only a newer desired state replaces.
#![warn(missing_docs)]

pub mod buckets;
pub mod drivers;
#[cfg(test)]
mod fixtures;
pub mod install;
pub mod link;
pub mod plan;
pub mod reconcile;
pub mod runtime;
pub mod state;

/// This agent's version, as reported to the management side.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
