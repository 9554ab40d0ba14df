//! Managed services that run as a container (PostgreSQL, Redis, an operator's own): a
//! StatefulSet of one replica, a Service, a Secret for its secrets and, when it keeps data,
//! a PersistentVolumeClaim on the datacenter's block storage class.
//!
//! The claim is a standalone object rather than a `volumeClaimTemplate`: a template cannot
//! change after creation, while a claim can grow in place; and pausing (zero replicas) or
//! resuming never touches it, so the same volume comes back. Only deleting the service
//! deletes the claim: a managed object that is merely absent from the desired state loses
//! its compute, never its data.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetSpec},
        core::v1::{
            Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe,
            ResourceRequirements, Secret, Service, ServicePort, ServiceSpec, TCPSocketAction,
            Volume, VolumeMount, VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use outpost_domain::{desired::ManagedWorkload, provider::StatefulRun};

use super::{
    images::ImageSource,
    manifests::{GENERATION_ANNOTATION, SERVICE_ANNOTATION, container_env, labels, secret_of},
};

/// Label marking the objects of a managed service (its value: their common name), so they
/// are never mistaken for a platform service's.
pub const MANAGED_LABEL: &str = "outpost.dev/managed-service";

/// Selector for every managed service's objects the agent owns.
pub const MANAGED_SELECTOR: &str =
    "app.kubernetes.io/managed-by=outpost-agent,outpost.dev/managed-service";

/// Name of the claim holding a managed service's data.
pub fn claim_name(name: &str) -> String {
    format!("{name}-data")
}

/// The volume in the pod, mounted at the run's data path.
const DATA_VOLUME: &str = "data";

fn managed_labels(name: &str) -> BTreeMap<String, String> {
    let mut l = labels(Some(name));
    l.insert(MANAGED_LABEL.to_owned(), name.to_owned());
    l
}

fn meta(m: &ManagedWorkload, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(m.namespace.clone()),
        labels: Some(managed_labels(&m.name)),
        annotations: Some(BTreeMap::from([
            (SERVICE_ANNOTATION.to_owned(), m.service.to_string()),
            (GENERATION_ANNOTATION.to_owned(), m.generation.to_string()),
        ])),
        ..Default::default()
    }
}

/// The claim for the run's data, if it keeps any: `storage_gib` on `storage_class` (the
/// cluster's default when `None`).
pub fn claim(
    m: &ManagedWorkload,
    run: &StatefulRun,
    storage_class: Option<&str>,
) -> Option<PersistentVolumeClaim> {
    let gib = run.storage_gib?;
    Some(PersistentVolumeClaim {
        metadata: meta(m, claim_name(&m.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage_class.map(str::to_owned),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(format!("{gib}Gi")),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The StatefulSet: one replica (none while paused), the run's container with its secrets
/// by reference, a TCP readiness probe on its port, and the claim mounted at its data path.
/// The pod template carries the generation, so every change (a new config, new secrets)
/// replaces the pod. The provider's image is pulled from where `images` says.
pub fn stateful_set(m: &ManagedWorkload, run: &StatefulRun, images: &ImageSource) -> StatefulSet {
    let resources: BTreeMap<String, Quantity> = BTreeMap::from([
        ("cpu".to_owned(), Quantity(format!("{}m", run.cpu_millis))),
        (
            "memory".to_owned(),
            Quantity(format!("{}Mi", run.memory_mib)),
        ),
    ]);
    let port = i32::from(run.port);
    let keeps_data = run.storage_gib.is_some();
    StatefulSet {
        metadata: meta(m, m.name.clone()),
        spec: Some(StatefulSetSpec {
            replicas: Some(if m.paused { 0 } else { 1 }),
            service_name: Some(m.name.clone()),
            selector: LabelSelector {
                match_labels: Some(managed_labels(&m.name)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(managed_labels(&m.name)),
                    annotations: Some(BTreeMap::from([(
                        GENERATION_ANNOTATION.to_owned(),
                        m.generation.to_string(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "main".into(),
                        image: Some(images.outpost(&run.image)),
                        args: (!run.args.is_empty()).then(|| run.args.clone()),
                        env: Some(container_env(&m.name, &run.env, &run.secrets)),
                        ports: Some(vec![ContainerPort {
                            container_port: port,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        readiness_probe: Some(Probe {
                            tcp_socket: Some(TCPSocketAction {
                                port: IntOrString::Int(port),
                                ..Default::default()
                            }),
                            period_seconds: Some(5),
                            ..Default::default()
                        }),
                        resources: Some(ResourceRequirements {
                            requests: Some(resources.clone()),
                            limits: Some(resources),
                            ..Default::default()
                        }),
                        volume_mounts: keeps_data.then(|| {
                            vec![VolumeMount {
                                name: DATA_VOLUME.into(),
                                mount_path: run.data_path.clone(),
                                ..Default::default()
                            }]
                        }),
                        ..Default::default()
                    }],
                    volumes: keeps_data.then(|| {
                        vec![Volume {
                            name: DATA_VOLUME.into(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: claim_name(&m.name),
                                read_only: Some(false),
                            }),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Secret holding the run's secrets, labelled as the service's.
pub fn secret(m: &ManagedWorkload, run: &StatefulRun) -> Option<Secret> {
    let mut secret = secret_of(&m.name, &m.namespace, &m.service.to_string(), &run.secrets)?;
    secret.metadata.labels = Some(managed_labels(&m.name));
    Some(secret)
}

/// The Service clients reach it through, `{name}.{namespace}.svc`.
pub fn service(m: &ManagedWorkload, run: &StatefulRun) -> Service {
    let port = i32::from(run.port);
    Service {
        metadata: meta(m, m.name.clone()),
        spec: Some(ServiceSpec {
            selector: Some(managed_labels(&m.name)),
            ports: Some(vec![ServicePort {
                name: Some("main".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The host name clients use.
pub fn host(m: &ManagedWorkload) -> String {
    format!("{}.{}.svc.cluster.local", m.name, m.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_domain::{ManagedServiceName, provider::Run, resources::EnvVar};

    fn postgres(paused: bool, storage_gib: Option<u32>) -> (ManagedWorkload, StatefulRun) {
        let run = StatefulRun {
            image: "postgres:16".into(),
            port: 5432,
            cpu_millis: 250,
            memory_mib: 512,
            storage_gib,
            data_path: "/var/lib/postgresql/data".into(),
            env: vec![EnvVar {
                name: "POSTGRES_DB".into(),
                value: "shop".into(),
            }],
            secrets: vec![EnvVar {
                name: "POSTGRES_PASSWORD".into(),
                value: "hunter2hunter2".into(),
            }],
            args: vec![],
        };
        let m = ManagedWorkload {
            service: ManagedServiceName::parse(
                "tenants/t/projects/p/environments/e/managedServices/db",
            )
            .expect("name"),
            uid: "u".into(),
            namespace: "ns".into(),
            name: "db-12345678".into(),
            generation: 4,
            run: Run::Stateful(run.clone()),
            paused,
            deleting: false,
            details: Default::default(),
        };
        (m, run)
    }

    #[test]
    fn a_database_is_one_replica_on_its_own_claim_with_secrets_by_reference() {
        let (m, run) = postgres(false, Some(10));
        let sts = stateful_set(&m, &run, &ImageSource::default());
        let spec = sts.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.as_ref().expect("pod");
        assert_eq!(
            pod.volumes.as_ref().expect("volumes")[0]
                .persistent_volume_claim
                .as_ref()
                .expect("claim")
                .claim_name,
            "db-12345678-data"
        );
        let text = serde_json::to_string(&sts).expect("json");
        assert!(
            !text.contains("hunter2"),
            "the password stays in the Secret"
        );
        assert!(spec.volume_claim_templates.is_none());
        let claim = claim(&m, &run, Some("ceph-rbd")).expect("keeps data");
        let claim_spec = claim.spec.expect("spec");
        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("ceph-rbd"));
        assert_eq!(
            claim_spec
                .resources
                .expect("resources")
                .requests
                .expect("requests")["storage"]
                .0,
            "10Gi"
        );
        assert_eq!(
            claim.metadata.labels.expect("labels")[MANAGED_LABEL],
            "db-12345678"
        );
    }

    #[test]
    fn paused_is_zero_replicas_and_no_storage_means_no_volume() {
        let (m, run) = postgres(true, None);
        let sts = stateful_set(&m, &run, &ImageSource::default());
        let spec = sts.spec.expect("spec");
        assert_eq!(spec.replicas, Some(0));
        assert!(spec.template.spec.expect("pod").volumes.is_none());
        assert!(claim(&m, &run, None).is_none());
    }
}
