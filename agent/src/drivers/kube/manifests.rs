//! The Kubernetes objects for a workload, as pure functions of the desired state, so they
//! are checked field by field in tests.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace, PodSpec,
            PodTemplateSpec, Probe, ResourceRequirements, Secret, SecretKeySelector, Service,
            ServicePort, ServiceSpec,
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

use super::images::ImageSource;

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
/// Annotation an operator puts on an Outpost Deployment to hand its replica count to
/// something else (a HorizontalPodAutoscaler): the agent then neither sets nor restores it.
pub const SCALED_BY_ANNOTATION: &str = "outpost.dev/scaled-by";
/// Pod-template annotation whose change rolls every pod (the one `kubectl rollout restart`
/// sets).
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// The name of a workload's Secret (its secret environment variables).
pub fn secret_name(workload: &str) -> String {
    format!("{workload}-secrets")
}

pub(crate) fn labels(workload: Option<&str>) -> BTreeMap<String, String> {
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

/// The Secret holding a workload's secret values; `None` when it has none.
pub fn secret(w: &Workload) -> Option<Secret> {
    secret_of(&w.name, &w.namespace, &w.service.to_string(), &w.secrets)
}

/// The Secret `{name}-secrets` holding `secrets` for the resource named `owner`; `None`
/// when there are none.
pub(crate) fn secret_of(
    name: &str,
    namespace: &str,
    owner: &str,
    secrets: &[outpost_domain::resources::EnvVar],
) -> Option<Secret> {
    if secrets.is_empty() {
        return None;
    }
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(name)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels(Some(name))),
            annotations: Some(BTreeMap::from([(
                SERVICE_ANNOTATION.to_owned(),
                owner.to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some(
            secrets
                .iter()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
        ),
        ..Default::default()
    })
}

/// A container's environment: plain values, then each secret by reference to the Secret
/// of `name` (so values never appear in the Deployment or StatefulSet).
pub(crate) fn container_env(
    name: &str,
    env: &[outpost_domain::resources::EnvVar],
    secrets: &[outpost_domain::resources::EnvVar],
) -> Vec<EnvVar> {
    let plain = env.iter().map(|e| EnvVar {
        name: e.name.clone(),
        value: Some(e.value.clone()),
        ..Default::default()
    });
    let secret = secrets.iter().map(|s| EnvVar {
        name: s.name.clone(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name(name),
                key: s.name.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    plain.chain(secret).collect()
}

/// The Deployment of a workload: zero-downtime rolling updates (never fewer ready pods than
/// wanted), a readiness probe on the health path, resources fixed by the shape, a rollout
/// that fails after `progress_deadline` without progress, and the service's image pulled
/// from where `images` says.
pub fn deployment(
    w: &Workload,
    progress_deadline: std::time::Duration,
    images: &ImageSource,
) -> Deployment {
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
            progress_deadline_seconds: Some(
                i32::try_from(progress_deadline.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            revision_history_limit: Some(5),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(Some(&w.name))),
                    // Only once a restart was asked for, so an untouched template stays
                    // identical (and rolls nothing).
                    annotations: (w.restart_time > 0).then(|| {
                        BTreeMap::from([(
                            RESTARTED_AT_ANNOTATION.to_owned(),
                            restarted_at(w.restart_time),
                        )])
                    }),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(images.service(&w.image)),
                        env: Some(container_env(&w.name, &w.env, &w.secrets)),
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

/// RFC 3339 form of a restart time in ms since the epoch.
pub(crate) fn restarted_at(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
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
    quantity(q, 1000.0)
}

/// Bytes of a Kubernetes memory quantity (`16Gi`, `512Mi`, `1.5Gi`, `1000k`, `1G`, `123`).
pub fn parse_bytes(q: &str) -> Option<i64> {
    quantity(q, 1.0)
}

/// Quantity `q` in units of 1/`per`, rounded.
fn quantity(q: &str, per: f64) -> Option<i64> {
    let value = kube_quantity::ParsedQuantity::try_from(q)
        .ok()?
        .to_bytes_f64()?;
    Some((value * per).round() as i64)
}

#[cfg(test)]
mod tests;
