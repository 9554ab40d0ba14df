//! Conversions for the agent protocol. Wire → domain is fallible here: these messages cross
//! a trust boundary in both directions, and a malformed name is refused, not guessed at.

use outpost_domain::{
    EnvironmentName, ManagedServiceName, NameError, ServiceName, Timestamp,
    deployment::FailureReason,
    desired::{Build, DesiredState, ManagedWorkload, NamespaceSpec, Workload},
    managed::Observation,
    observed::{
        AgentReport, BuildOutcome, Capacity, ClusterCut, ManagedReport, WorkloadPhase,
        WorkloadStatus,
    },
    provider::{BucketRun, Run, StatefulRun},
    resources::{EnvVar, GitSource, Port, Protocol},
};

use super::{from_timestamp, timestamp};
use crate::agent::v1 as pb;

impl From<Capacity> for pb::Capacity {
    fn from(c: Capacity) -> Self {
        Self {
            cpu_millis: c.cpu_millis,
            memory_bytes: c.memory_bytes,
            storage_bytes: c.storage_bytes,
            storage_used_bytes: c.storage_used_bytes,
            object_storage: c.object_storage,
        }
    }
}

impl From<&pb::Capacity> for Capacity {
    fn from(c: &pb::Capacity) -> Self {
        Self {
            cpu_millis: c.cpu_millis,
            memory_bytes: c.memory_bytes,
            storage_bytes: c.storage_bytes,
            storage_used_bytes: c.storage_used_bytes,
            object_storage: c.object_storage,
        }
    }
}

/// What an agent says of its cluster: since when and why it cannot reach it, or `None`
/// while it can. An agent too old to say counts as reaching it.
pub fn cluster_cut(reach: Option<&pb::ClusterReach>) -> Option<ClusterCut> {
    let reach = reach?;
    reach.unreachable_since.as_ref().map(|since| ClusterCut {
        since: from_timestamp(since),
        error: reach.error.clone(),
    })
}

impl From<&DesiredState> for pb::DesiredState {
    fn from(d: &DesiredState) -> Self {
        Self {
            revision: d.revision,
            namespaces: d
                .namespaces
                .iter()
                .map(|n| pb::Namespace {
                    name: n.name.clone(),
                    environment: n.environment.to_string(),
                })
                .collect(),
            workloads: d
                .workloads
                .iter()
                .map(|w| pb::Workload {
                    service: w.service.to_string(),
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                    generation: w.generation,
                    image: w.image.clone(),
                    cpu_millis: i32::try_from(w.cpu_millis).unwrap_or(i32::MAX),
                    memory_mib: i32::try_from(w.memory_mib).unwrap_or(i32::MAX),
                    replicas: i32::try_from(w.replicas).unwrap_or(i32::MAX),
                    env: env_to_wire(&w.env),
                    secrets: env_to_wire(&w.secrets),
                    restart_time_ms: w.restart_time,
                    ports: w
                        .ports
                        .iter()
                        .map(|p| pb::Port {
                            container_port: i32::try_from(p.container_port).unwrap_or_default(),
                            protocol: match p.protocol {
                                Protocol::Tcp => "TCP".into(),
                                Protocol::Udp => "UDP".into(),
                            },
                            name: p.name.clone(),
                        })
                        .collect(),
                    health_check_path: w.health_check_path.clone(),
                })
                .collect(),
            builds: d
                .builds
                .iter()
                .map(|b| pb::Build {
                    service: b.service.to_string(),
                    deployment: b.deployment,
                    namespace: b.namespace.clone(),
                    git_url: b.source.url.clone(),
                    git_ref: b.source.git_ref.clone(),
                    dockerfile_path: b.source.dockerfile_path.clone(),
                })
                .collect(),
            managed: d.managed.iter().map(managed_to_wire).collect(),
        }
    }
}

fn managed_to_wire(m: &ManagedWorkload) -> pb::ManagedWorkload {
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    pb::ManagedWorkload {
        managed_service: m.service.to_string(),
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        generation: m.generation,
        paused: m.paused,
        deleting: m.deleting,
        details_json: serde_json::Value::Object(m.details.clone()).to_string(),
        run: Some(match &m.run {
            Run::Stateful(s) => pb::managed_workload::Run::Stateful(pb::StatefulRun {
                image: s.image.clone(),
                port: i32::from(s.port),
                cpu_millis: clamp(s.cpu_millis),
                memory_mib: clamp(s.memory_mib),
                storage_gib: s.storage_gib.map(clamp).unwrap_or(0),
                data_path: s.data_path.clone(),
                env: env_to_wire(&s.env),
                secrets: env_to_wire(&s.secrets),
                args: s.args.clone(),
            }),
            Run::Bucket(b) => pb::managed_workload::Run::Bucket(pb::BucketRun {
                quota_bytes: i64::try_from(b.quota_bytes).unwrap_or(i64::MAX),
                versioning: b.versioning,
                secret_key: b.secret_key.clone(),
            }),
        }),
    }
}

fn managed_from_wire(m: &pb::ManagedWorkload) -> Result<ManagedWorkload, NameError> {
    let service = ManagedServiceName::parse(&m.managed_service)?;
    let run = match &m.run {
        Some(pb::managed_workload::Run::Stateful(s)) => Run::Stateful(StatefulRun {
            image: s.image.clone(),
            port: u16::try_from(s.port).unwrap_or(0),
            cpu_millis: u32::try_from(s.cpu_millis).unwrap_or(0),
            memory_mib: u32::try_from(s.memory_mib).unwrap_or(0),
            storage_gib: u32::try_from(s.storage_gib).ok().filter(|g| *g > 0),
            data_path: s.data_path.clone(),
            env: env_from_wire(&s.env),
            secrets: env_from_wire(&s.secrets),
            args: s.args.clone(),
        }),
        Some(pb::managed_workload::Run::Bucket(b)) => Run::Bucket(BucketRun {
            quota_bytes: u64::try_from(b.quota_bytes).unwrap_or(0),
            versioning: b.versioning,
            secret_key: b.secret_key.clone(),
        }),
        // Nothing this agent knows how to run: refused like a malformed name, so the
        // agent keeps its previous desired state rather than deleting what runs.
        None => {
            return Err(NameError {
                kind: "managed service run",
                pattern: "a stateful or bucket run",
                value: m.managed_service.chars().take(256).collect(),
            });
        }
    };
    Ok(ManagedWorkload {
        service,
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        generation: m.generation,
        paused: m.paused,
        deleting: m.deleting,
        details: details_from_json(&m.details_json),
        run,
    })
}

/// A JSON object from the wire; anything else (or nothing) is an empty one.
fn details_from_json(text: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

impl TryFrom<&pb::DesiredState> for DesiredState {
    type Error = NameError;
    fn try_from(d: &pb::DesiredState) -> Result<Self, NameError> {
        Ok(Self {
            revision: d.revision,
            namespaces: d
                .namespaces
                .iter()
                .map(|n| {
                    Ok(NamespaceSpec {
                        name: n.name.clone(),
                        environment: EnvironmentName::parse(&n.environment)?,
                    })
                })
                .collect::<Result<_, NameError>>()?,
            workloads: d
                .workloads
                .iter()
                .map(|w| {
                    Ok(Workload {
                        service: ServiceName::parse(&w.service)?,
                        namespace: w.namespace.clone(),
                        name: w.name.clone(),
                        generation: w.generation,
                        image: w.image.clone(),
                        cpu_millis: u32::try_from(w.cpu_millis).unwrap_or(0),
                        memory_mib: u32::try_from(w.memory_mib).unwrap_or(0),
                        replicas: u32::try_from(w.replicas).unwrap_or(0),
                        env: env_from_wire(&w.env),
                        secrets: env_from_wire(&w.secrets),
                        restart_time: w.restart_time_ms,
                        ports: w
                            .ports
                            .iter()
                            .map(|p| Port {
                                container_port: i64::from(p.container_port),
                                protocol: if p.protocol == "UDP" {
                                    Protocol::Udp
                                } else {
                                    Protocol::Tcp
                                },
                                name: p.name.clone(),
                            })
                            .collect(),
                        health_check_path: w.health_check_path.clone(),
                    })
                })
                .collect::<Result<_, NameError>>()?,
            builds: d
                .builds
                .iter()
                .map(|b| {
                    Ok(Build {
                        service: ServiceName::parse(&b.service)?,
                        deployment: b.deployment,
                        namespace: b.namespace.clone(),
                        source: GitSource {
                            url: b.git_url.clone(),
                            git_ref: b.git_ref.clone(),
                            dockerfile_path: b.dockerfile_path.clone(),
                        },
                    })
                })
                .collect::<Result<_, NameError>>()?,
            managed: d
                .managed
                .iter()
                .map(managed_from_wire)
                .collect::<Result<_, NameError>>()?,
        })
    }
}

fn env_to_wire(env: &[EnvVar]) -> Vec<pb::EnvVar> {
    env.iter()
        .map(|e| pb::EnvVar {
            name: e.name.clone(),
            value: e.value.clone(),
        })
        .collect()
}

fn env_from_wire(env: &[pb::EnvVar]) -> Vec<EnvVar> {
    env.iter()
        .map(|e| EnvVar {
            name: e.name.clone(),
            value: e.value.clone(),
        })
        .collect()
}

/// The wire form of an outbox entry.
pub fn report(sequence: u64, entry: &AgentReport, at: Timestamp) -> pb::Report {
    let kind = match entry {
        AgentReport::Status(s) => pb::report::Kind::WorkloadStatus(pb::WorkloadStatus {
            service: s.service.to_string(),
            revision: s.revision,
            observed_generation: s.observed_generation,
            ready_replicas: i32::try_from(s.ready_replicas).unwrap_or(i32::MAX),
            updated_replicas: i32::try_from(s.updated_replicas).unwrap_or(i32::MAX),
            desired_replicas: i32::try_from(s.desired_replicas).unwrap_or(i32::MAX),
            phase: s.phase.as_str().to_owned(),
            message: s.message.clone(),
            generation: s.generation,
            reason: s.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        }),
        AgentReport::Build(b) => pb::report::Kind::BuildStatus(pb::BuildStatus {
            service: b.service.to_string(),
            deployment: b.deployment,
            image: b.image.clone().unwrap_or_default(),
            message: b.message.clone(),
        }),
        AgentReport::Managed(m) => pb::report::Kind::ManagedStatus(pb::ManagedServiceStatus {
            managed_service: m.service.to_string(),
            generation: m.generation,
            phase: match m.observation {
                Observation::Progressing => pb::ManagedPhase::Progressing,
                Observation::Ready => pb::ManagedPhase::Ready,
                Observation::Paused => pb::ManagedPhase::Paused,
                Observation::Gone => pb::ManagedPhase::Gone,
                Observation::Failed(_) => pb::ManagedPhase::Failed,
            } as i32,
            message: match &m.observation {
                Observation::Failed(why) => why.clone(),
                _ => m.message.clone(),
            },
            details_json: serde_json::Value::Object(m.details.clone()).to_string(),
        }),
        AgentReport::Event {
            resource,
            reason,
            message,
        } => pb::report::Kind::Event(pb::AgentEvent {
            resource: resource.clone(),
            reason: reason.clone(),
            message: message.clone(),
        }),
    };
    pb::Report {
        sequence,
        kind: Some(kind),
        time: Some(timestamp(at)),
    }
}

/// The outbox entry a wire report carries, with its sequence number; `None` for an entry
/// with no content (from a newer agent, say) or a malformed service name.
pub fn from_report(r: &pb::Report) -> Option<(u64, AgentReport)> {
    let at = r.time.as_ref().map(from_timestamp).unwrap_or(Timestamp(0));
    let entry = match r.kind.as_ref()? {
        pb::report::Kind::WorkloadStatus(s) => AgentReport::Status(WorkloadStatus {
            service: ServiceName::parse(&s.service).ok()?,
            revision: s.revision,
            observed_generation: s.observed_generation,
            ready_replicas: i64::from(s.ready_replicas),
            updated_replicas: i64::from(s.updated_replicas),
            desired_replicas: i64::from(s.desired_replicas),
            phase: WorkloadPhase::parse(&s.phase),
            message: s.message.chars().take(1024).collect(),
            generation: s.generation,
            reason: FailureReason::parse(&s.reason),
            report_time: at,
        }),
        pb::report::Kind::BuildStatus(b) => AgentReport::Build(BuildOutcome {
            service: ServiceName::parse(&b.service).ok()?,
            deployment: b.deployment,
            image: (!b.image.is_empty()).then(|| b.image.chars().take(1024).collect()),
            message: b.message.chars().take(1024).collect(),
        }),
        pb::report::Kind::ManagedStatus(m) => {
            let message: String = m.message.chars().take(1024).collect();
            let observation = match pb::ManagedPhase::try_from(m.phase).ok()? {
                pb::ManagedPhase::Unspecified => return None,
                pb::ManagedPhase::Progressing => Observation::Progressing,
                pb::ManagedPhase::Ready => Observation::Ready,
                pb::ManagedPhase::Paused => Observation::Paused,
                pb::ManagedPhase::Gone => Observation::Gone,
                pb::ManagedPhase::Failed => Observation::Failed(message.clone()),
            };
            AgentReport::Managed(ManagedReport {
                service: ManagedServiceName::parse(&m.managed_service).ok()?,
                generation: m.generation,
                observation,
                message,
                // Bounded like every other field an agent sends.
                details: if m.details_json.len() <= 16 * 1024 {
                    details_from_json(&m.details_json)
                } else {
                    serde_json::Map::new()
                },
            })
        }
        pb::report::Kind::Event(e) => AgentReport::Event {
            resource: e.resource.chars().take(512).collect(),
            reason: e.reason.chars().take(64).collect(),
            message: e.message.chars().take(1024).collect(),
        },
    };
    Some((r.sequence, entry))
}
