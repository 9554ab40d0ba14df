//! The Kubernetes objects for a workload, as pure functions of the desired state, so they
//! are checked field by field in tests.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Container, ContainerPort, EnvVar, HTTPGetAction, Namespace, PodSpec, PodTemplateSpec,
            Probe, ResourceRequirements, Service, ServicePort, ServiceSpec,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use outpost_domain::{
    desired::{NamespaceSpec, Workload},
    resources::Protocol,
};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "outpost-agent";
/// The label marking what the agent owns, and its value.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "outpost-agent");
/// Selector for everything the agent owns.
pub const OWNED_SELECTOR: &str = "app.kubernetes.io/managed-by=outpost-agent";
/// Label naming the workload within its namespace (selects its pods).
pub const WORKLOAD_LABEL: &str = "outpost.dev/workload";
/// Annotation with the service's full resource name.
pub const SERVICE_ANNOTATION: &str = "outpost.dev/service";
/// Annotation with the service generation a Deployment was applied from.
pub const GENERATION_ANNOTATION: &str = "outpost.dev/generation";
/// Annotation with the environment's full resource name, on namespaces.
pub const ENVIRONMENT_ANNOTATION: &str = "outpost.dev/environment";
/// A rollout that makes no progress for this long is failed by Kubernetes.
pub const PROGRESS_DEADLINE_SECS: i32 = 600;

fn labels(workload: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]);
    if let Some(w) = workload {
        labels.insert(WORKLOAD_LABEL.to_owned(), w.to_owned());
    }
    labels
}

/// The namespace of an environment.
pub fn namespace(ns: &NamespaceSpec) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(ns.name.clone()),
            labels: Some(labels(None)),
            annotations: Some(BTreeMap::from([(
                ENVIRONMENT_ANNOTATION.to_owned(),
                ns.environment.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Deployment of a workload: zero-downtime rolling updates (never fewer ready pods than
/// wanted), a readiness probe on the health path, and resources fixed by the shape.
pub fn deployment(w: &Workload) -> Deployment {
    let resources: BTreeMap<String, Quantity> = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{}m", w.cpu_millis))),
        ("memory".to_owned(), Quantity(format!("{}Mi", w.memory_mib))),
    ]);
    let first_port = w
        .ports
        .iter()
        .find(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.container_port);
    let readiness = match (w.health_check_path.is_empty(), first_port) {
        (false, Some(port)) => Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(w.health_check_path.clone()),
                port: IntOrString::Int(i32::try_from(port).unwrap_or_default()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        _ => None,
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(w.name.clone()),
            namespace: Some(w.namespace.clone()),
            labels: Some(labels(Some(&w.name))),
            annotations: Some(BTreeMap::from([
                (SERVICE_ANNOTATION.to_owned(), w.service.to_string()),
                (GENERATION_ANNOTATION.to_owned(), w.generation.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(w.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(labels(Some(&w.name))),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            progress_deadline_seconds: Some(PROGRESS_DEADLINE_SECS),
            revision_history_limit: Some(5),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(Some(&w.name))),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(w.image.clone()),
                        env: Some(
                            w.env
                                .iter()
                                .map(|e| EnvVar {
                                    name: e.name.clone(),
                                    value: Some(e.value.clone()),
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        ports: Some(
                            w.ports
                                .iter()
                                .map(|p| ContainerPort {
                                    container_port: i32::try_from(p.container_port)
                                        .unwrap_or_default(),
                                    protocol: Some(protocol(p.protocol).into()),
                                    name: (!p.name.is_empty()).then(|| p.name.clone()),
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        readiness_probe: readiness,
                        resources: Some(ResourceRequirements {
                            requests: Some(resources.clone()),
                            limits: Some(resources),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// The Service in front of a workload's pods, one port per container port.
pub fn service(w: &Workload) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(w.name.clone()),
            namespace: Some(w.namespace.clone()),
            labels: Some(labels(Some(&w.name))),
            annotations: Some(BTreeMap::from([(
                SERVICE_ANNOTATION.to_owned(),
                w.service.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(Some(&w.name))),
            ports: Some(
                w.ports
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ServicePort {
                        name: Some(if p.name.is_empty() {
                            format!("port-{i}")
                        } else {
                            p.name.clone()
                        }),
                        port: i32::try_from(p.container_port).unwrap_or_default(),
                        target_port: Some(IntOrString::Int(
                            i32::try_from(p.container_port).unwrap_or_default(),
                        )),
                        protocol: Some(protocol(p.protocol).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Millicores of a Kubernetes CPU quantity (`2`, `500m`, `1.5`).
pub fn parse_cpu_millis(q: &str) -> Option<i64> {
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    let cores: f64 = q.parse().ok()?;
    Some((cores * 1000.0).round() as i64)
}

/// Bytes of a Kubernetes memory quantity (`16Gi`, `512Mi`, `1000k`, `1G`, `123`).
pub fn parse_bytes(q: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 10] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
    ];
    for (suffix, factor) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<i64>().ok()?.checked_mul(factor);
        }
    }
    q.parse().ok()
}

#[cfg(test)]
mod tests;
