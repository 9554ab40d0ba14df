//! What agents observe and report back: the state of workloads and events in their
//! datacenter. Plain data; the store keeps it and the API shows it.

use crate::{ServiceName, Timestamp, names::DatacenterName};

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
    /// Where its rollout stands.
    pub phase: WorkloadPhase,
    /// Why.
    pub message: String,
    /// Why it failed, when `phase` is `Failed`.
    pub reason: Option<crate::deployment::FailureReason>,
    /// When the agent observed it.
    pub report_time: Timestamp,
}

/// Where a workload's rollout stands, as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadPhase {
    /// Being rolled out, or not yet observed at its generation.
    Progressing,
    /// Every wanted replica ready on the current version.
    Available,
    /// The current version cannot roll out (see the status's reason).
    Failed,
    /// A phase this build does not know (from a newer agent).
    Unknown,
}

impl WorkloadPhase {
    /// The phase's name, as reported and shown (`Available`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressing => "Progressing",
            Self::Available => "Available",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }

    /// The phase named `s`; [`WorkloadPhase::Unknown`] for any other name.
    pub fn parse(s: &str) -> Self {
        [Self::Progressing, Self::Available, Self::Failed]
            .into_iter()
            .find(|p| p.as_str() == s)
            .unwrap_or(Self::Unknown)
    }
}

impl std::fmt::Display for WorkloadPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// A datacenter that cannot be reached now, as every resource placed there says: its agent
/// is not linked, or it is but cannot reach the cluster's API server. Nothing fails or is
/// deleted for it: changes wait in the desired state and are applied when it is reachable
/// again, and what was last observed is shown as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The datacenter.
    pub datacenter: DatacenterName,
    /// When its agent was last heard from; `None` if it never was.
    pub last_seen: Option<Timestamp>,
    /// Set when the agent is linked but cannot reach its cluster.
    pub cluster: Option<ClusterCut>,
}

/// An agent that cannot reach its cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCut {
    /// Since when.
    pub since: Timestamp,
    /// Its last failure, for a person.
    pub error: String,
}

/// What a datacenter can offer, as its agent measures it: allocatable CPU and memory summed
/// over the cluster's nodes, and its Ceph's raw capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Allocatable CPU, millicores.
    pub cpu_millis: i64,
    /// Allocatable memory, bytes.
    pub memory_bytes: i64,
    /// Raw Ceph capacity, bytes; 0 when unknown.
    pub storage_bytes: i64,
    /// Raw Ceph bytes used.
    pub storage_used_bytes: i64,
    /// The agent can make buckets (it has a Ceph object gateway).
    pub object_storage: bool,
}

/// An enrolled agent, as the management side keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The datacenter it serves.
    pub datacenter: DatacenterName,
    /// Serial of its current certificate.
    pub serial: String,
    /// When that certificate expires.
    pub certificate_expire_time: Timestamp,
    /// When it enrolled.
    pub enroll_time: Timestamp,
    /// Its link and whether it reaches its cluster.
    pub reach: AgentReach,
    /// The version it reported.
    pub version: String,
    /// The highest desired-state revision it has stored.
    pub stored_revision: i64,
    /// The highest report sequence applied.
    pub report_sequence: i64,
    /// What its datacenter can offer, as it last said.
    pub capacity: Capacity,
}

/// What the management side knows of a datacenter's agent, to judge whether it is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReach {
    /// Its link is open.
    pub connected: bool,
    /// When it was last heard from.
    pub last_seen: Timestamp,
    /// Set while it says it cannot reach its cluster.
    pub cluster: Option<ClusterCut>,
}

impl Unreachable {
    /// The datacenter's state from its agent (`None` with no agent enrolled): `None` while
    /// the link is live and the agent reaches its cluster.
    pub fn of(
        datacenter: &DatacenterName,
        agent: Option<AgentReach>,
        now: Timestamp,
    ) -> Option<Self> {
        let last_seen = agent
            .as_ref()
            .map(|a| a.last_seen)
            .filter(|seen| seen.0 > 0);
        match agent {
            Some(a) if link_is_live(a.connected, a.last_seen, now) => a.cluster.map(|cut| Self {
                datacenter: datacenter.clone(),
                last_seen,
                cluster: Some(cut),
            }),
            _ => Some(Self {
                datacenter: datacenter.clone(),
                last_seen,
                cluster: None,
            }),
        }
    }

    /// What this means for a resource, for a person: with `waiting`, a change of it is under
    /// way and waits for the datacenter; otherwise what is shown of it may be out of date.
    pub fn message(&self, waiting: bool) -> String {
        let dc = &self.datacenter.datacenter;
        if let Some(cut) = &self.cluster {
            let since = rfc3339(cut.since);
            return if waiting {
                format!(
                    "Waiting for datacenter {dc}, whose agent cannot reach its Kubernetes API server since {since} ({}); the change is kept and applied when it answers again.",
                    cut.error
                )
            } else {
                format!(
                    "Datacenter {dc}'s Kubernetes API server cannot be reached by its agent since {since}; what was last observed is shown and may be out of date."
                )
            };
        }
        match (self.last_seen, waiting) {
            (Some(seen), true) => format!(
                "Waiting for datacenter {dc}, unreachable since {}; the change is kept and applied when it reconnects.",
                rfc3339(seen)
            ),
            (Some(seen), false) => format!(
                "Datacenter {dc} is unreachable since {}; what it last reported is shown and may be out of date.",
                rfc3339(seen)
            ),
            (None, true) => format!(
                "Waiting for datacenter {dc}, whose agent has not connected yet; the change is kept and applied when it connects."
            ),
            (None, false) => format!(
                "Datacenter {dc} has no agent connected yet; nothing has been reported from it."
            ),
        }
    }
}

fn rfc3339(t: Timestamp) -> String {
    let since_epoch = std::time::Duration::from_millis(u64::try_from(t.0).unwrap_or(0));
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since_epoch).to_string()
}

impl WorkloadStatus {
    /// What the report means for the lifecycle.
    pub fn outcome(&self) -> crate::deployment::WorkloadOutcome {
        use crate::deployment::{FailureReason, WorkloadOutcome};
        match self.phase {
            WorkloadPhase::Available => WorkloadOutcome::Available,
            // A failure the agent could not classify took too long to resolve.
            WorkloadPhase::Failed => {
                WorkloadOutcome::Failed(self.reason.unwrap_or(FailureReason::TimedOut))
            }
            WorkloadPhase::Progressing | WorkloadPhase::Unknown => WorkloadOutcome::Progressing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datacenter_is_unreachable_unless_its_link_is_live_and_its_cluster_answers() {
        let dc = DatacenterName::parse("datacenters/fra1").expect("name");
        let now = Timestamp(1_800_000_000_000);
        let recent = Timestamp(now.0 - 1_000);
        let agent = |connected, last_seen| AgentReach {
            connected,
            last_seen,
            cluster: None,
        };
        assert_eq!(Unreachable::of(&dc, Some(agent(true, recent)), now), None);
        let gone = Unreachable::of(&dc, Some(agent(false, recent)), now).expect("disconnected");
        assert_eq!(gone.last_seen, Some(recent));
        let silent = Timestamp(now.0 - LINK_FRESHNESS_MS - 1);
        assert!(
            Unreachable::of(&dc, Some(agent(true, silent)), now).is_some(),
            "open but silent"
        );
        let never = Unreachable::of(&dc, None, now).expect("no agent");
        assert_eq!(never.last_seen, None);

        let waiting = gone.message(true);
        assert!(
            waiting.starts_with(
                "Waiting for datacenter fra1, unreachable since 2027-01-15T07:59:59Z;"
            ) && waiting.ends_with("applied when it reconnects."),
            "{waiting}"
        );
        assert!(gone.message(false).contains("may be out of date"));
        assert!(never.message(true).contains("has not connected yet"));
        assert!(never.message(false).contains("no agent connected yet"));

        let cut = ClusterCut {
            since: Timestamp(now.0 - 60_000),
            error: "connection refused".into(),
        };
        let linked_but_cut = AgentReach {
            cluster: Some(cut.clone()),
            ..agent(true, recent)
        };
        let unreachable = Unreachable::of(&dc, Some(linked_but_cut.clone()), now).expect("cut");
        assert_eq!(unreachable.cluster, Some(cut));
        let waiting = unreachable.message(true);
        assert!(
            waiting.contains("cannot reach its Kubernetes API server since 2027-01-15T07:59:00Z (connection refused)")
                && waiting.ends_with("applied when it answers again."),
            "{waiting}"
        );
        assert!(unreachable.message(false).contains("may be out of date"));
        // Not linked at all: that is what a person must hear first.
        let both = Unreachable::of(
            &dc,
            Some(AgentReach {
                connected: false,
                ..linked_but_cut
            }),
            now,
        )
        .expect("disconnected");
        assert_eq!(both.cluster, None);
    }
}
