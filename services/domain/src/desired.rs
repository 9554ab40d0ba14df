//! The desired state of one datacenter: what its agent should make its cluster run. Computed
//! by a pure function from the datacenter's environments and services, so the same store
//! contents always give the same state, and a revision number says which one it is.

use crate::{
    EnvironmentName, ManagedServiceName, ServiceName,
    lifecycle::DeploymentSpec,
    managed::ManagedStatus,
    provider::{Rendered, Run},
    resources::{EnvVar, Environment, Port},
};

/// Everything one datacenter should run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Increases with every change to the datacenter's resources.
    pub revision: i64,
    /// One namespace per environment placed in the datacenter, by name.
    pub namespaces: Vec<NamespaceSpec>,
    /// One workload per runnable service, by service name.
    pub workloads: Vec<Workload>,
    /// Images to build from source, one per deployment in `BUILDING`.
    pub builds: Vec<Build>,
    /// Managed services, by name, including those being deleted.
    pub managed: Vec<ManagedWorkload>,
}

/// One managed service to run (or to remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedWorkload {
    /// The managed service.
    pub service: ManagedServiceName,
    /// Its uid: RGW user ids and access keys derive from it, so a service deleted and
    /// created again under the same name never meets its predecessor's leftovers.
    pub uid: String,
    /// Namespace its Kubernetes objects live in (the environment's).
    pub namespace: String,
    /// Kubernetes name of its StatefulSet, Service, Secret and volume; a bucket's name.
    pub name: String,
    /// Bumped by every change of what should run.
    pub generation: i64,
    /// What runs.
    pub run: Run,
    /// Compute released, data kept.
    pub paused: bool,
    /// Compute and data to be removed.
    pub deleting: bool,
    /// Details known from the config, reported with those only the datacenter knows.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// A managed service as its lifecycle and provider decided: what it runs, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedTarget {
    /// The managed service.
    pub service: ManagedServiceName,
    /// Its uid.
    pub uid: String,
    /// Its generation.
    pub generation: i64,
    /// Its status: decides paused and deleting.
    pub status: ManagedStatus,
    /// What it runs.
    pub rendered: Rendered,
}

/// Longest name of a managed service's objects: a StatefulSet's pods carry a
/// `controller-revision-hash` label of the name plus 11 characters, within 63.
const MAX_MANAGED_NAME_LEN: usize = 50;

/// The name of a managed service's Kubernetes objects or bucket: readable, and unique
/// because it ends in the first 8 characters of its uid. A DNS label, and a valid bucket
/// name.
pub fn managed_name(service: &ManagedServiceName, uid: &str) -> String {
    let suffix: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let room = MAX_MANAGED_NAME_LEN - suffix.len() - 1;
    let cut: String = service.managed_service.chars().take(room).collect();
    format!("{}-{suffix}", cut.trim_end_matches('-'))
}

/// A deployment's image to build from a git repository, as a Kubernetes Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The service.
    pub service: ServiceName,
    /// The deployment's number within it.
    pub deployment: i64,
    /// Namespace the Job runs in (the environment's).
    pub namespace: String,
    /// What to build.
    pub source: crate::resources::GitSource,
}

impl Build {
    /// The Job's name: the workload's, then the deployment number (at most 63 characters:
    /// service ids are DNS labels of at most 63, so the service part is cut to fit).
    pub fn job_name(&self) -> String {
        let suffix = format!("-build-{}", self.deployment);
        let room = 63usize.saturating_sub(suffix.len());
        let service: String = self.service.service.chars().take(room).collect();
        format!("{}{suffix}", service.trim_end_matches('-'))
    }
}

/// A Kubernetes namespace for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// Kubernetes name.
    pub name: String,
    /// The environment it holds.
    pub environment: EnvironmentName,
}

/// One service to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The service.
    pub service: ServiceName,
    /// Namespace it runs in.
    pub namespace: String,
    /// Kubernetes name of its Deployment and Service.
    pub name: String,
    /// The service's version; changes whenever its spec does.
    pub generation: i64,
    /// Container image.
    pub image: String,
    /// CPU per replica in millicores.
    pub cpu_millis: u32,
    /// Memory per replica in MiB.
    pub memory_mib: u32,
    /// Replicas.
    pub replicas: u32,
    /// Environment variables.
    pub env: Vec<EnvVar>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Readiness-check path; empty for none.
    pub health_check_path: String,
    /// Secret values, given to the container as environment variables from a Kubernetes
    /// Secret.
    pub secrets: Vec<EnvVar>,
    /// When a restart was last asked for (ms since the epoch; 0 for never): a change rolls
    /// every pod.
    pub restart_time: i64,
}

/// What a service should run now, as its lifecycle decided: the spec of the deployment
/// rolling out (or of the live one), at a generation that changes whenever any of it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The service.
    pub service: ServiceName,
    /// Bumped by the store with every change below.
    pub generation: i64,
    /// The deployment spec to run.
    pub spec: DeploymentSpec,
    /// Scaled to zero.
    pub stopped: bool,
    /// The service's secrets.
    pub secrets: Vec<EnvVar>,
    /// Last restart request, ms since the epoch.
    pub restart_time: i64,
}

/// Longest Kubernetes namespace name.
const MAX_NAMESPACE_LEN: usize = 63;

/// The namespace of an environment: readable (`tenant-project-environment`) and unique,
/// because it ends in the first 8 characters of the environment's uid. Tenant, project and
/// environment ids are DNS labels, so the result is one too.
pub fn namespace_name(environment: &EnvironmentName, environment_uid: &str) -> String {
    let suffix: String = environment_uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let readable = format!(
        "{}-{}-{}",
        environment.tenant, environment.project, environment.environment
    );
    let room = MAX_NAMESPACE_LEN - suffix.len() - 1;
    let cut: String = readable.chars().take(room).collect();
    format!(
        "{}-{}",
        cut.trim_end_matches('-'),
        suffix.to_ascii_lowercase()
    )
}

/// A deployment being built: its service, number and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTarget {
    /// The service.
    pub service: ServiceName,
    /// The deployment's number.
    pub deployment: i64,
    /// What to build.
    pub source: crate::resources::GitSource,
}

/// The desired state at `revision` of a datacenter holding `environments`, the `targets` of
/// their services, the `builds` under way and their `managed` services. Targets without an
/// image yet (a first build still running) are left out; targets of environments not in the
/// list are ignored.
pub fn compute(
    revision: i64,
    environments: &[Environment],
    targets: &[ServiceTarget],
    builds: &[BuildTarget],
    managed: &[ManagedTarget],
) -> DesiredState {
    let mut namespaces: Vec<NamespaceSpec> = environments
        .iter()
        .map(|e| NamespaceSpec {
            name: namespace_name(&e.name, &e.meta.uid),
            environment: e.name.clone(),
        })
        .collect();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    let mut workloads: Vec<Workload> = targets
        .iter()
        .filter_map(|t| {
            let env = t.service.environment_name();
            let ns = namespaces.iter().find(|n| n.environment == env)?;
            if t.spec.image.is_empty() {
                return None;
            }
            let spec = &t.spec.service;
            let shape = spec.shape?;
            Some(Workload {
                service: t.service.clone(),
                namespace: ns.name.clone(),
                name: t.service.service.clone(),
                generation: t.generation,
                image: t.spec.image.clone(),
                cpu_millis: shape.cpu_millis(),
                memory_mib: shape.memory_mib(),
                replicas: if t.stopped {
                    0
                } else {
                    u32::try_from(spec.replicas).unwrap_or(0)
                },
                env: spec.env.clone(),
                ports: spec.ports.clone(),
                health_check_path: spec.health_check_path.clone(),
                secrets: t.secrets.clone(),
                restart_time: t.restart_time,
            })
        })
        .collect();
    workloads.sort_by(|a, b| a.service.cmp(&b.service));
    let mut builds: Vec<Build> = builds
        .iter()
        .filter_map(|b| {
            let env = b.service.environment_name();
            let ns = namespaces.iter().find(|n| n.environment == env)?;
            Some(Build {
                service: b.service.clone(),
                deployment: b.deployment,
                namespace: ns.name.clone(),
                source: b.source.clone(),
            })
        })
        .collect();
    builds.sort_by(|a, b| (&a.service, a.deployment).cmp(&(&b.service, b.deployment)));
    let mut managed: Vec<ManagedWorkload> = managed
        .iter()
        .filter(|m| m.status != ManagedStatus::Deleted)
        .filter_map(|m| {
            let env = m.service.environment_name();
            let ns = namespaces.iter().find(|n| n.environment == env)?;
            Some(ManagedWorkload {
                service: m.service.clone(),
                uid: m.uid.clone(),
                namespace: ns.name.clone(),
                name: managed_name(&m.service, &m.uid),
                generation: m.generation,
                run: m.rendered.run.clone(),
                paused: matches!(m.status, ManagedStatus::Pausing | ManagedStatus::Paused),
                deleting: m.status == ManagedStatus::Deleting,
                details: m.rendered.details.clone(),
            })
        })
        .collect();
    managed.sort_by(|a, b| a.service.cmp(&b.service));
    DesiredState {
        revision,
        namespaces,
        workloads,
        builds,
        managed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DatacenterName, Shape, Timestamp,
        names::is_dns_label,
        resources::{Meta, ServiceSpec},
    };

    fn meta(uid: &str, version: i64) -> Meta {
        Meta {
            uid: uid.into(),
            create_time: Timestamp(0),
            update_time: Timestamp(0),
            version,
        }
    }

    fn env(t: &str, p: &str, e: &str, uid: &str) -> Environment {
        Environment {
            name: EnvironmentName {
                tenant: t.into(),
                project: p.into(),
                environment: e.into(),
            },
            display_name: String::new(),
            datacenter: DatacenterName {
                datacenter: "dc".into(),
            },
            first_deploy_time: None,
            meta: meta(uid, 1),
        }
    }

    #[test]
    fn namespaces_are_dns_labels_and_never_collide() {
        let long = "x".repeat(63);
        let a = namespace_name(&env("a-b", "c", "d", "").name, "0123abcd-ffff");
        let b = namespace_name(&env("a", "b-c", "d", "").name, "9999eeee-ffff");
        assert_ne!(a, b);
        for name in [
            a,
            b,
            namespace_name(&env(&long, &long, &long, "").name, "ABCDEF12-x"),
        ] {
            assert!(is_dns_label(&name), "{name}");
        }
    }

    #[test]
    fn targets_become_workloads_in_their_environments_namespace() {
        let prod = env("t", "p", "production", "11111111-aaaa");
        let target = |name: &str, image: &str, stopped: bool| ServiceTarget {
            service: ServiceName {
                tenant: "t".into(),
                project: "p".into(),
                environment: "production".into(),
                service: name.into(),
            },
            generation: 7,
            spec: DeploymentSpec {
                service: ServiceSpec {
                    shape: Some(Shape::Max),
                    replicas: 3,
                    ..Default::default()
                },
                image: image.into(),
            },
            stopped,
            secrets: vec![EnvVar {
                name: "TOKEN".into(),
                value: "s3cret".into(),
            }],
            restart_time: 99,
        };
        let targets = vec![
            target("web", "nginx:1", false),
            target("built", "", false),
            target("idle", "nginx:1", true),
        ];
        let state = compute(42, std::slice::from_ref(&prod), &targets, &[], &[]);
        assert_eq!(state.revision, 42);
        assert_eq!(state.namespaces.len(), 1);
        assert_eq!(
            state.workloads.len(),
            2,
            "a service without an image yet is not run"
        );
        let (idle, web) = (&state.workloads[0], &state.workloads[1]);
        assert_eq!(
            (web.namespace.as_str(), web.name.as_str()),
            (state.namespaces[0].name.as_str(), "web")
        );
        assert_eq!(
            (web.cpu_millis, web.memory_mib, web.replicas, web.generation),
            (1000, 2048, 3, 7)
        );
        assert_eq!((web.secrets.len(), web.restart_time), (1, 99));
        assert_eq!(
            idle.replicas, 0,
            "a stopped service keeps its workload at zero"
        );
        // Pure: same input, same output.
        assert_eq!(compute(42, &[prod], &targets, &[], &[]), state);
    }

    #[test]
    fn managed_services_run_in_their_environments_namespace_until_deleted() {
        let prod = env("t", "p", "production", "11111111-aaaa");
        let target = |id: &str, status: ManagedStatus| ManagedTarget {
            service: ManagedServiceName {
                tenant: "t".into(),
                project: "p".into(),
                environment: "production".into(),
                managed_service: id.into(),
            },
            uid: "ABCDEF12-3456".into(),
            generation: 3,
            status,
            rendered: Rendered {
                run: Run::Bucket(crate::provider::BucketRun {
                    quota_bytes: 1,
                    versioning: false,
                    secret_key: "k".into(),
                }),
                details: Default::default(),
            },
        };
        let managed = [
            target("paused", ManagedStatus::Paused),
            target("going", ManagedStatus::Deleting),
            target("gone", ManagedStatus::Deleted),
            target(&"x".repeat(63), ManagedStatus::Synchronized),
        ];
        let state = compute(1, std::slice::from_ref(&prod), &[], &[], &managed);
        let names: Vec<&str> = state
            .managed
            .iter()
            .map(|m| m.service.managed_service.as_str())
            .collect();
        assert_eq!(names, ["going", "paused", &"x".repeat(63)]);
        let (going, paused, long) = (&state.managed[0], &state.managed[1], &state.managed[2]);
        assert!(going.deleting && !going.paused);
        assert!(paused.paused && !paused.deleting);
        assert_eq!(paused.name, "paused-abcdef12");
        assert_eq!(paused.namespace, state.namespaces[0].name);
        assert!(
            long.name.len() <= 50 && is_dns_label(&long.name),
            "{}",
            long.name
        );
    }

    #[test]
    fn build_jobs_are_named_within_kubernetes_limits() {
        let build = |service: &str, deployment: i64| Build {
            service: ServiceName {
                tenant: "t".into(),
                project: "p".into(),
                environment: "e".into(),
                service: service.into(),
            },
            deployment,
            namespace: "ns".into(),
            source: Default::default(),
        };
        assert_eq!(build("api", 7).job_name(), "api-build-7");
        let long = build(&"x".repeat(63), i64::MAX).job_name();
        assert!(long.len() <= 63 && is_dns_label(&long), "{long}");
    }
}
