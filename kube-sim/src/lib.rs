//! A simulated Kubernetes API server, for tests and the local installation (no real API
//! server can run on Outpost's development machines).
//!
//! It speaks the real Kubernetes HTTP API for the subset the Outpost agent uses plus
//! discovery, so an ordinary `kube::Client` (in-process via [`Sim::client`], or over
//! loopback HTTP) and `kubectl` work against it unchanged. A controller moves objects the
//! way a cluster would: Deployments roll out through ReplicaSets and pods that become
//! ready, StatefulSets get ordered pods and claims, Jobs run to completion, and containers
//! fail on demand ([`Fault`]). The simulator replaces the API server, not the agent's logic.
//!
//! Stepping is explicit (tests call [`Sim::step`]/[`Sim::settle`]/[`Sim::advance`]; nothing
//! moves otherwise) or timed (a background task steps on an interval); see [`Stepping`].
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kube::api::{Api, Patch, PatchParams};
//! use outpost_kube_sim::{Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig::explicit())?;
//! let deployments: Api<Deployment> = Api::namespaced(sim.client(), "default");
//! # let web: Deployment = Default::default();
//! deployments.patch("web", &PatchParams::apply("agent").force(), &Patch::Apply(&web)).await?;
//! sim.settle()?; // pods scheduled, started, ready; deployment status complete
//! # Ok(()) }
//! ```
//!
//! It must not depend on the agent: the agent's tests depend on it.

#![warn(missing_docs)]

mod api;
mod apply;
mod clock;
mod controller;
mod defaults;
mod discovery;
mod error;
mod faults;
mod fields;
mod http;
mod logs;
mod naming;
mod patch;
mod resource;
mod scale;
mod selector;
mod serve;
mod shared;
mod sim;
mod store;
mod table;
mod validate;
mod watch;

pub use faults::{FAULT_ANNOTATION, Fault};
pub use serve::{kubeconfig, serve, serve_until};
pub use shared::{Access, StepReport};
pub use sim::{Sim, SimConfig, SimError, Stepping};
pub use store::persist::PersistError;
