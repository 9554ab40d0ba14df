//! The plan: what the agent owns in a cluster as observed, the changes that make it match
//! the desired state, and what the cluster's state means for each workload and managed
//! service. Pure functions of their inputs, tested without a cluster; the Kubernetes driver
//! fills [`Observed`] and carries out [`Action`]s, and the loop ([`crate::reconcile`]) runs
//! both.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use outpost_domain::{
    deployment::FailureReason,
    desired::{Build, DesiredState, ManagedWorkload, NamespaceSpec, Workload},
    managed::Observation,
    observed::{WorkloadPhase, WorkloadStatus},
    provider::Run,
};

/// How often what the agent cannot list with its objects is compared again: a ready
/// bucket's settings in Ceph (a few admin calls each) and each Secret (applied again).
pub const RECHECK: Duration = Duration::from_secs(30);

/// What the agent last reported about a workload, managed service or build: what a person
/// or the lifecycle would notice change, and nothing more (not the revision, or every change
/// in the datacenter would report every workload again). Kept in the local state as text
/// (`Available/5/2/5`, `Ready/3`, `finished`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// A workload's phase, the generation rolled out, ready replicas and the generation
    /// applied.
    Workload {
        /// Its phase.
        phase: WorkloadPhase,
        /// The generation rolled out.
        observed_generation: i64,
        /// Ready replicas.
        ready_replicas: i64,
        /// The generation applied.
        generation: i64,
    },
    /// A managed service's phase at a generation.
    Managed {
        /// Its phase.
        phase: ManagedPhase,
        /// The generation observed.
        generation: i64,
    },
    /// A build, reported once when it finished.
    BuildFinished,
}

impl Summary {
    /// The phase's name; a change of it is an event.
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Workload { phase, .. } => phase.as_str(),
            Self::Managed { phase, .. } => phase.as_str(),
            Self::BuildFinished => "Finished",
        }
    }

    /// The summary `text` spells; `None` for anything else (then it is reported again).
    pub fn parse(text: &str) -> Option<Self> {
        if text == "finished" {
            return Some(Self::BuildFinished);
        }
        let parts: Vec<&str> = text.split('/').collect();
        match parts[..] {
            [phase, observed, ready, generation] => Some(Self::Workload {
                phase: WorkloadPhase::parse(phase),
                observed_generation: observed.parse().ok()?,
                ready_replicas: ready.parse().ok()?,
                generation: generation.parse().ok()?,
            }),
            [phase, generation] => Some(Self::Managed {
                phase: ManagedPhase::parse(phase)?,
                generation: generation.parse().ok()?,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Workload {
                phase,
                observed_generation,
                ready_replicas,
                generation,
            } => write!(
                f,
                "{phase}/{observed_generation}/{ready_replicas}/{generation}"
            ),
            Self::Managed { phase, generation } => write!(f, "{}/{generation}", phase.as_str()),
            Self::BuildFinished => f.write_str("finished"),
        }
    }
}

/// What the agent sees of a managed service, without the why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedPhase {
    /// Being converged.
    Progressing,
    /// Ready for clients.
    Ready,
    /// Stopped, its data kept.
    Paused,
    /// Removed, with its data.
    Gone,
    /// Cannot converge.
    Failed,
}

impl ManagedPhase {
    const ALL: [Self; 5] = [
        Self::Progressing,
        Self::Ready,
        Self::Paused,
        Self::Gone,
        Self::Failed,
    ];

    /// The phase's name, in summaries and event reasons (`ManagedReady`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressing => "Progressing",
            Self::Ready => "Ready",
            Self::Paused => "Paused",
            Self::Gone => "Gone",
            Self::Failed => "Failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl From<&Observation> for ManagedPhase {
    fn from(observation: &Observation) -> Self {
        match observation {
            Observation::Progressing => Self::Progressing,
            Observation::Ready => Self::Ready,
            Observation::Paused => Self::Paused,
            Observation::Gone => Self::Gone,
            Observation::Failed(_) => Self::Failed,
        }
    }
}

/// How a build Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still running (or not started).
    Running,
    /// Finished and pushed its image.
    Succeeded,
    /// Failed, with what Kubernetes said.
    Failed(String),
}

/// What the agent owns in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Owned namespaces.
    pub namespaces: BTreeSet<String>,
    /// Owned Deployments by (namespace, name).
    pub workloads: BTreeMap<(String, String), ObservedWorkload>,
    /// Owned Services by (namespace, name).
    pub services: BTreeSet<(String, String)>,
    /// Owned build Jobs by (namespace, name).
    pub jobs: BTreeMap<(String, String), JobState>,
    /// Managed services' StatefulSets by (namespace, name).
    pub stateful: BTreeMap<(String, String), ObservedStateful>,
    /// Managed services' Services by (namespace, name).
    pub managed_services: BTreeSet<(String, String)>,
    /// Managed services' volume claims by (namespace, managed service's object name).
    pub claims: BTreeMap<(String, String), ObservedClaim>,
    /// The owned Deployments, StatefulSets and Services as the cluster holds them, to find
    /// drift in.
    pub live: BTreeMap<LiveKey, Live>,
}

/// An object by kind (`Deployment`), namespace and name.
pub type LiveKey = (&'static str, String, String);

/// An owned object as the cluster holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// The object.
    pub object: serde_json::Value,
    /// Its `resourceVersion`: unchanged, the object is as it was.
    pub resource_version: String,
}

/// A managed service's StatefulSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedStateful {
    /// The generation it was applied from.
    pub generation: Option<i64>,
    /// The cluster has rolled out its latest spec to every pod.
    pub rolled_out: bool,
    /// Replicas wanted.
    pub wanted_replicas: i64,
    /// Pods it has.
    pub pods: i64,
    /// Pods ready.
    pub ready_replicas: i64,
    /// Why its pod fails, if it does.
    pub failure: Option<(FailureReason, String)>,
}

/// A managed service's volume claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedClaim {
    /// Its uid: the same claim before and after a pause.
    pub uid: String,
    /// A volume is bound to it.
    pub bound: bool,
}

/// A Deployment's rollout state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedWorkload {
    /// The service generation it was applied from.
    pub generation: Option<i64>,
    /// Whether the cluster has observed its latest spec.
    pub rolled_out: bool,
    /// Replicas wanted.
    pub desired_replicas: i64,
    /// Replicas ready.
    pub ready_replicas: i64,
    /// Replicas on the current spec.
    pub updated_replicas: i64,
    /// The rollout made no progress within its deadline.
    pub deadline_exceeded: bool,
    /// Why the pods of its current version fail, if they do.
    pub failure: Option<(FailureReason, String)>,
}

/// How rollouts are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// A new version whose pods run but never pass their health check for this long fails
    /// with "health check failed".
    pub health_grace: Duration,
    /// A rollout that makes no progress for this long fails as timed out (Kubernetes'
    /// `progressDeadlineSeconds`).
    pub progress_deadline: Duration,
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            health_grace: Duration::from_secs(60),
            progress_deadline: Duration::from_secs(600),
        }
    }
}

/// One change to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create or update a namespace.
    ApplyNamespace(NamespaceSpec),
    /// Create or update a workload's Deployment and Service.
    ApplyWorkload(Workload),
    /// Remove an owned workload that is no longer desired.
    DeleteWorkload {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Remove an owned namespace that is no longer desired.
    DeleteNamespace(String),
    /// Start a build Job.
    ApplyBuild(Build),
    /// Create or update a managed service's StatefulSet, Service, Secret and claim.
    ApplyManaged(ManagedWorkload),
    /// Remove a managed service's compute, and with `with_data` its Secret and volume too.
    DeleteManaged {
        /// Its namespace.
        namespace: String,
        /// Its objects' name.
        name: String,
        /// Also its data: only when the service is being deleted, never because it is
        /// merely absent from the desired state.
        with_data: bool,
    },
    /// Stop a build that is no longer wanted (canceled) and still running. Finished ones
    /// stay, with their logs, until Kubernetes removes them.
    DeleteBuild {
        /// Its namespace.
        namespace: String,
        /// The Job's name.
        name: String,
    },
}

/// What an action does, for logs: names and generations, never a spec (specs hold secret
/// values).
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApplyNamespace(ns) => write!(f, "apply namespace {}", ns.name),
            Self::ApplyWorkload(w) => write!(
                f,
                "apply workload {}/{} at generation {}",
                w.namespace, w.name, w.generation
            ),
            Self::DeleteWorkload { namespace, name } => {
                write!(f, "delete workload {namespace}/{name}")
            }
            Self::DeleteNamespace(ns) => write!(f, "delete namespace {ns}"),
            Self::ApplyBuild(b) => write!(f, "start build {}/{}", b.namespace, b.job_name()),
            Self::DeleteBuild { namespace, name } => write!(f, "stop build {namespace}/{name}"),
            Self::ApplyManaged(m) => write!(
                f,
                "apply managed service {}/{} at generation {}",
                m.namespace, m.name, m.generation
            ),
            Self::DeleteManaged {
                namespace,
                name,
                with_data,
            } => write!(
                f,
                "delete managed service {namespace}/{name}{}",
                if *with_data { " with its data" } else { "" }
            ),
        }
    }
}

/// What to do so that the cluster matches `desired`. Only objects the agent owns are ever
/// deleted; namespaces go after the workloads in them.
pub fn plan(desired: &DesiredState, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    for ns in &desired.namespaces {
        if !observed.namespaces.contains(&ns.name) {
            actions.push(Action::ApplyNamespace(ns.clone()));
        }
    }
    let wanted: BTreeSet<(String, String)> = desired
        .workloads
        .iter()
        .map(|w| (w.namespace.clone(), w.name.clone()))
        .collect();
    for w in &desired.workloads {
        let key = (w.namespace.clone(), w.name.clone());
        let current = observed.workloads.get(&key).and_then(|o| o.generation) == Some(w.generation);
        if !current || !observed.services.contains(&key) {
            actions.push(Action::ApplyWorkload(w.clone()));
        }
    }
    let stale: BTreeSet<&(String, String)> = observed
        .workloads
        .keys()
        .chain(observed.services.iter())
        .filter(|k| !wanted.contains(*k))
        .collect();
    for (namespace, name) in stale {
        actions.push(Action::DeleteWorkload {
            namespace: namespace.clone(),
            name: name.clone(),
        });
    }
    let wanted_builds: BTreeSet<(String, String)> = desired
        .builds
        .iter()
        .map(|b| (b.namespace.clone(), b.job_name()))
        .collect();
    for b in &desired.builds {
        if !observed
            .jobs
            .contains_key(&(b.namespace.clone(), b.job_name()))
        {
            actions.push(Action::ApplyBuild(b.clone()));
        }
    }
    for (key, state) in &observed.jobs {
        if *state == JobState::Running && !wanted_builds.contains(key) {
            actions.push(Action::DeleteBuild {
                namespace: key.0.clone(),
                name: key.1.clone(),
            });
        }
    }
    plan_managed(desired, observed, &mut actions);
    let wanted_ns: BTreeSet<&String> = desired.namespaces.iter().map(|n| &n.name).collect();
    for ns in &observed.namespaces {
        if !wanted_ns.contains(ns) {
            actions.push(Action::DeleteNamespace(ns.clone()));
        }
    }
    actions
}

/// The managed services' part of [`plan`]: those that run a container.
fn plan_managed(desired: &DesiredState, observed: &Observed, actions: &mut Vec<Action>) {
    let mut wanted = BTreeSet::new();
    for m in &desired.managed {
        let Run::Stateful(run) = &m.run else { continue };
        let key = (m.namespace.clone(), m.name.clone());
        wanted.insert(key.clone());
        let present = observed.stateful.contains_key(&key)
            || observed.managed_services.contains(&key)
            || observed.claims.contains_key(&key);
        if m.deleting {
            if present {
                actions.push(Action::DeleteManaged {
                    namespace: m.namespace.clone(),
                    name: m.name.clone(),
                    with_data: true,
                });
            }
            continue;
        }
        let current = observed.stateful.get(&key).and_then(|o| o.generation) == Some(m.generation);
        let claim_missing = run.storage_gib.is_some() && !observed.claims.contains_key(&key);
        if !current || !observed.managed_services.contains(&key) || claim_missing {
            actions.push(Action::ApplyManaged(m.clone()));
        }
    }
    let stale: BTreeSet<&(String, String)> = observed
        .stateful
        .keys()
        .chain(observed.managed_services.iter())
        .filter(|k| !wanted.contains(*k))
        .collect();
    for (namespace, name) in stale {
        actions.push(Action::DeleteManaged {
            namespace: namespace.clone(),
            name: name.clone(),
            with_data: false,
        });
    }
}

/// What the cluster shows of managed service `m` (one that runs a container), and why.
pub fn managed_observation(m: &ManagedWorkload, observed: &Observed) -> (Observation, String) {
    let key = (m.namespace.clone(), m.name.clone());
    let set = observed.stateful.get(&key);
    let claim = observed.claims.get(&key);
    if m.deleting {
        return if set.is_none() && claim.is_none() && !observed.managed_services.contains(&key) {
            (Observation::Gone, "compute and volume removed".into())
        } else {
            (Observation::Progressing, "removing".into())
        };
    }
    let Some(set) = set.filter(|s| s.generation == Some(m.generation)) else {
        return (Observation::Progressing, "applying".into());
    };
    if m.paused {
        return if set.pods == 0 {
            (Observation::Paused, "no pods; the volume is kept".into())
        } else {
            (Observation::Progressing, "stopping its pod".into())
        };
    }
    let keeps_data = matches!(&m.run, Run::Stateful(r) if r.storage_gib.is_some());
    let volume_ready = !keeps_data || claim.is_some_and(|c| c.bound);
    if set.rolled_out && set.ready_replicas >= set.wanted_replicas.max(1) && volume_ready {
        return (Observation::Ready, "ready".into());
    }
    if let Some((reason, why)) = &set.failure {
        return (
            Observation::Failed(format!("{}: {why}", reason.explain())),
            why.clone(),
        );
    }
    let waiting = if volume_ready {
        "waiting for its pod to be ready"
    } else {
        "waiting for its volume"
    };
    (Observation::Progressing, waiting.into())
}

/// The status to report for a workload, from what the cluster shows.
pub fn status_of(
    w: &Workload,
    observed: Option<&ObservedWorkload>,
    revision: i64,
    at: outpost_domain::Timestamp,
) -> WorkloadStatus {
    let available = |o: &ObservedWorkload| {
        o.generation == Some(w.generation)
            && o.rolled_out
            && o.ready_replicas >= o.desired_replicas
            && o.updated_replicas >= o.desired_replicas
    };
    let ready = |o: &ObservedWorkload| {
        format!(
            "{} of {} replicas ready",
            o.ready_replicas, o.desired_replicas
        )
    };
    let (phase, message, reason, o) = match observed {
        None => (
            WorkloadPhase::Progressing,
            "creating".to_owned(),
            None,
            ObservedWorkload::default(),
        ),
        Some(o) if available(o) => (WorkloadPhase::Available, ready(o), None, o.clone()),
        // A verdict only about the version applied now, never about one before it.
        Some(o) if o.generation == Some(w.generation) && o.deadline_exceeded => (
            WorkloadPhase::Failed,
            format!("{}; {}", FailureReason::TimedOut.explain(), ready(o)),
            Some(FailureReason::TimedOut),
            o.clone(),
        ),
        Some(o) if o.generation == Some(w.generation) && o.failure.is_some() => {
            let (reason, why) = o
                .failure
                .clone()
                .unwrap_or((FailureReason::TimedOut, String::new()));
            (WorkloadPhase::Failed, why, Some(reason), o.clone())
        }
        Some(o) => (WorkloadPhase::Progressing, ready(o), None, o.clone()),
    };
    WorkloadStatus {
        service: w.service.clone(),
        revision,
        generation: w.generation,
        observed_generation: if phase == WorkloadPhase::Available {
            w.generation
        } else {
            o.generation.unwrap_or(0).min(w.generation)
        },
        ready_replicas: o.ready_replicas,
        updated_replicas: o.updated_replicas,
        desired_replicas: i64::from(w.replicas),
        phase,
        message,
        reason,
        report_time: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn workload(name: &str, generation: i64) -> Workload {
        Workload {
            generation,
            ..fixtures::workload(name)
        }
    }

    fn desired(workloads: Vec<Workload>) -> DesiredState {
        DesiredState {
            revision: 3,
            namespaces: vec![fixtures::namespace()],
            workloads,
            builds: vec![],
            managed: vec![],
        }
    }

    fn observed_with(name: &str, generation: i64) -> Observed {
        let key = ("ns".to_owned(), name.to_owned());
        Observed {
            namespaces: ["ns".to_owned()].into(),
            workloads: [(
                key.clone(),
                ObservedWorkload {
                    generation: Some(generation),
                    ..Default::default()
                },
            )]
            .into(),
            services: [key].into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_cluster_gets_everything() {
        let d = desired(vec![workload("web", 1)]);
        let actions = plan(&d, &Observed::default());
        assert_eq!(actions.len(), 2);
        assert!(matches!(actions[0], Action::ApplyNamespace(_)));
        assert!(matches!(actions[1], Action::ApplyWorkload(_)));
    }

    #[test]
    fn a_matching_cluster_needs_nothing_and_replaying_changes_nothing() {
        let d = desired(vec![workload("web", 4)]);
        assert_eq!(plan(&d, &observed_with("web", 4)), vec![]);
    }

    #[test]
    fn a_new_generation_is_applied_and_removed_services_are_deleted() {
        let d = desired(vec![workload("web", 5)]);
        assert_eq!(
            plan(&d, &observed_with("web", 4)),
            vec![Action::ApplyWorkload(workload("web", 5))]
        );
        let gone = desired(vec![]);
        assert_eq!(
            plan(&gone, &observed_with("web", 4)),
            vec![Action::DeleteWorkload {
                namespace: "ns".into(),
                name: "web".into()
            }]
        );
        let mut no_env = gone.clone();
        no_env.namespaces.clear();
        assert_eq!(
            plan(&no_env, &observed_with("web", 4)).last(),
            Some(&Action::DeleteNamespace("ns".into()))
        );
    }

    fn managed(paused: bool, deleting: bool) -> ManagedWorkload {
        ManagedWorkload {
            name: "db-1".into(),
            generation: 2,
            paused,
            deleting,
            ..fixtures::stateful("db")
        }
    }

    fn observed_managed(generation: i64, pods: i64) -> Observed {
        let key = ("ns".to_owned(), "db-1".to_owned());
        Observed {
            namespaces: ["ns".to_owned()].into(),
            stateful: [(
                key.clone(),
                ObservedStateful {
                    generation: Some(generation),
                    rolled_out: true,
                    wanted_replicas: pods,
                    pods,
                    ready_replicas: pods,
                    failure: None,
                },
            )]
            .into(),
            managed_services: [key.clone()].into(),
            claims: [(
                key,
                ObservedClaim {
                    uid: "claim".into(),
                    bound: true,
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_deleting_a_managed_service_removes_its_data() {
        let mut d = desired(vec![]);
        d.managed = vec![managed(false, false)];
        assert_eq!(plan(&d, &observed_managed(2, 1)), vec![]);
        assert_eq!(
            managed_observation(&d.managed[0], &observed_managed(2, 1)).0,
            Observation::Ready
        );
        // A new generation is applied; a paused one is paused once its pod is gone.
        assert_eq!(
            plan(&d, &observed_managed(1, 1)),
            vec![Action::ApplyManaged(managed(false, false))]
        );
        let paused = managed(true, false);
        assert_eq!(
            managed_observation(&paused, &observed_managed(2, 1)).0,
            Observation::Progressing
        );
        assert_eq!(
            managed_observation(&paused, &observed_managed(2, 0)).0,
            Observation::Paused
        );
        // Absent from the desired state: compute goes, the data stays.
        d.managed.clear();
        assert_eq!(
            plan(&d, &observed_managed(2, 1)),
            vec![Action::DeleteManaged {
                namespace: "ns".into(),
                name: "db-1".into(),
                with_data: false
            }]
        );
        // Being deleted: everything goes, and it is gone only when nothing is left.
        d.managed = vec![managed(false, true)];
        assert_eq!(
            plan(&d, &observed_managed(2, 1)),
            vec![Action::DeleteManaged {
                namespace: "ns".into(),
                name: "db-1".into(),
                with_data: true
            }]
        );
        assert_eq!(
            managed_observation(&d.managed[0], &observed_managed(2, 0)).0,
            Observation::Progressing
        );
        let empty = Observed {
            namespaces: ["ns".to_owned()].into(),
            ..Default::default()
        };
        assert_eq!(plan(&d, &empty), vec![]);
        assert_eq!(
            managed_observation(&d.managed[0], &empty).0,
            Observation::Gone
        );
    }

    #[test]
    fn status_follows_the_rollout() {
        let w = workload("web", 5);
        let at = outpost_domain::Timestamp(0);
        assert_eq!(status_of(&w, None, 3, at).phase, WorkloadPhase::Progressing);
        let mut o = ObservedWorkload {
            generation: Some(5),
            rolled_out: true,
            desired_replicas: 2,
            ready_replicas: 2,
            updated_replicas: 2,
            deadline_exceeded: false,
            failure: None,
        };
        let s = status_of(&w, Some(&o), 3, at);
        assert_eq!(
            (s.phase, s.observed_generation),
            (WorkloadPhase::Available, 5)
        );
        o.ready_replicas = 1;
        assert_eq!(
            status_of(&w, Some(&o), 3, at).phase,
            WorkloadPhase::Progressing
        );
        o.failure = Some((FailureReason::OutOfMemory, "killed".into()));
        let s = status_of(&w, Some(&o), 3, at);
        assert_eq!(
            (s.phase, s.reason),
            (WorkloadPhase::Failed, Some(FailureReason::OutOfMemory))
        );
        o.deadline_exceeded = true;
        let s = status_of(&w, Some(&o), 3, at);
        assert_eq!(
            (s.phase, s.reason),
            (WorkloadPhase::Failed, Some(FailureReason::TimedOut))
        );
        o.generation = Some(4);
        assert_eq!(
            status_of(&w, Some(&o), 3, at).phase,
            WorkloadPhase::Progressing,
            "no verdict on a version before the one applied"
        );
    }

    #[test]
    fn summaries_read_back_as_written() {
        for summary in [
            Summary::Workload {
                phase: WorkloadPhase::Available,
                observed_generation: 5,
                ready_replicas: 2,
                generation: 5,
            },
            Summary::Managed {
                phase: ManagedPhase::Paused,
                generation: 3,
            },
            Summary::BuildFinished,
        ] {
            assert_eq!(Summary::parse(&summary.to_string()), Some(summary));
        }
        assert_eq!(
            Summary::parse("Available/5/2/5").map(|s| s.phase()),
            Some("Available")
        );
        for unreadable in ["", "Ready", "Sleeping/3", "Ready/x", "a/b/c"] {
            assert_eq!(Summary::parse(unreadable), None, "{unreadable}");
        }
    }
}
