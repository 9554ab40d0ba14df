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
    /// The workload generation being applied when observed (what a lifecycle operation
    /// waits for).
    pub generation: i64,
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
    /// Why it failed, when `phase` is `Failed`.
    pub reason: Option<crate::deployment::FailureReason>,
    /// When the agent observed it.
    pub report_time: Timestamp,
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// The service.
    pub service: ServiceName,
    /// The deployment's number.
    pub deployment: i64,
    /// The image it produced; `None` when it failed.
    pub image: Option<String>,
    /// What happened, for a person.
    pub message: String,
}

/// The observed state of a managed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedReport {
    /// The managed service.
    pub service: crate::ManagedServiceName,
    /// The generation being applied when observed.
    pub generation: i64,
    /// What the agent saw.
    pub observation: crate::managed::Observation,
    /// What it means, for a person.
    pub message: String,
    /// What clients need to reach it (host, port, endpoint, bucket, access key, …); never a
    /// secret.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// One entry of an agent's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReport {
    /// A workload's observed state.
    Status(WorkloadStatus),
    /// A build finished.
    Build(BuildOutcome),
    /// A managed service's observed state.
    Managed(ManagedReport),
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

/// An agent heard from less recently than this counts as disconnected even if its link
/// looked open: the management instance holding the link may have died.
pub const LINK_FRESHNESS_MS: i64 = 60_000;

/// Whether an agent's link is live at `now`: open, and heard from recently. What an agent
/// reported is current only while its link is live; otherwise it is shown as stale, never
/// as failed.
pub fn link_is_live(connected: bool, last_seen: Timestamp, now: Timestamp) -> bool {
    connected && now.0.saturating_sub(last_seen.0) < LINK_FRESHNESS_MS
}

impl WorkloadStatus {
    /// What the report means for the lifecycle.
    pub fn outcome(&self) -> crate::deployment::WorkloadOutcome {
        use crate::deployment::{FailureReason, WorkloadOutcome};
        match self.phase.as_str() {
            "Available" => WorkloadOutcome::Available,
            // A failure the agent could not classify took too long to resolve.
            "Failed" => WorkloadOutcome::Failed(self.reason.unwrap_or(FailureReason::TimedOut)),
            _ => WorkloadOutcome::Progressing,
        }
    }
}
