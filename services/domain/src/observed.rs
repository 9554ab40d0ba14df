//! What agents observe and report back: the state of workloads and events in their
//! datacenter. Plain data; the store keeps it and the API shows it.

use crate::{ServiceName, Timestamp};

/// The observed state of one service's workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStatus {
    /// The service.
    pub service: ServiceName,
    /// Desired-state revision being applied when observed.
    pub revision: i64,
    /// Service generation rolled out.
    pub observed_generation: i64,
    /// Ready replicas.
    pub ready_replicas: i64,
    /// Replicas on the current spec.
    pub updated_replicas: i64,
    /// Wanted replicas.
    pub desired_replicas: i64,
    /// `Progressing`, `Available`, `Failed` or `Unknown`.
    pub phase: String,
    /// Why.
    pub message: String,
    /// When the agent observed it.
    pub report_time: Timestamp,
}

/// One entry of an agent's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReport {
    /// A workload's observed state.
    Status(WorkloadStatus),
    /// An event about a resource in the datacenter.
    Event {
        /// The resource (a service name, or the datacenter's).
        resource: String,
        /// Reason.
        reason: String,
        /// Message.
        message: String,
    },
}
