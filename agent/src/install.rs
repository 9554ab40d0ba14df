//! `outpost-agent install`: the Kubernetes objects that run the agent inside the cluster it
//! drives, for `kubectl apply -f -`. Its rights are exactly the driver's
//! ([`crate::drivers::kube::access`]); its state lives on a volume, so a restarted pod keeps
//! its identity and desired state; the join token is in a Secret, never in the pod spec.
//!
//! None of these objects carries the label marking what the agent owns
//! ([`crate::drivers::kube::manifests::MANAGED_BY`]): the agent must never take its own
//! namespace for an environment's and delete it.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            Capabilities, Container, EnvVar, EnvVarSource, ExecAction, Namespace,
            PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
            PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
            SeccompProfile, Secret, SecretKeySelector, SecurityContext, ServiceAccount, Volume,
            VolumeMount, VolumeResourceRequirements,
        },
        rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
    },
};
use serde::Serialize;

use crate::drivers::kube::access;

/// Name of every object (and of the ClusterRole and its binding, cluster-wide).
const NAME: &str = "outpost-agent";
/// Where the agent's state volume is mounted.
const STATE_DIR: &str = "/var/lib/outpost-agent";
/// The Secret's key holding the join token.
const TOKEN_KEY: &str = "token";
/// The non-root user the agent runs as (and the group owning its volume).
const AGENT_UID: i64 = 65532;

/// What `outpost-agent install` is told.
#[derive(Debug, Clone)]
pub struct Install {
    /// The management gateways, `host:port`.
    pub management: Vec<String>,
    /// The join token.
    pub token: String,
    /// The management CA's fingerprint.
    pub ca_fingerprint: String,
    /// The datacenter, for labels; the join token decides which one the agent serves.
    pub datacenter: Option<String>,
    /// The namespace the agent runs in.
    pub namespace: String,
    /// The agent's container image.
    pub image: String,
    /// Storage class of the state volume; `None` for the cluster's default.
    pub storage_class: Option<String>,
}

/// The objects, in the order they must be applied.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The agent's namespace.
    pub namespace: Namespace,
    /// Its service account.
    pub service_account: ServiceAccount,
    /// What it may do.
    pub cluster_role: ClusterRole,
    /// That, granted to its service account.
    pub cluster_role_binding: ClusterRoleBinding,
    /// The join token.
    pub secret: Secret,
    /// Its state.
    pub state_volume: PersistentVolumeClaim,
    /// The agent.
    pub deployment: Deployment,
}

impl Manifests {
    /// Every object as one YAML stream, for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> Result<String, serde_norway::Error> {
        fn doc(out: &mut String, object: &impl Serialize) -> Result<(), serde_norway::Error> {
            out.push_str("---\n");
            out.push_str(&serde_norway::to_string(object)?);
            Ok(())
        }
        let mut out = String::new();
        doc(&mut out, &self.namespace)?;
        doc(&mut out, &self.service_account)?;
        doc(&mut out, &self.cluster_role)?;
        doc(&mut out, &self.cluster_role_binding)?;
        doc(&mut out, &self.secret)?;
        doc(&mut out, &self.state_volume)?;
        doc(&mut out, &self.deployment)?;
        Ok(out)
    }
}

fn labels(install: &Install) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), NAME.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), "outpost".to_owned()),
        (
            "app.kubernetes.io/version".to_owned(),
            crate::VERSION.to_owned(),
        ),
    ]);
    if let Some(dc) = &install.datacenter {
        labels.insert("outpost.dev/datacenter".to_owned(), dc.clone());
    }
    labels
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

/// `outpost-agent probe` with a deadline: alive when the reconcile loop turned recently.
fn probe(period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![NAME.to_owned(), "probe".to_owned()]),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

/// The manifests for `install`.
pub fn manifests(install: &Install) -> Manifests {
    let labels = labels(install);
    let meta = |namespaced: bool| ObjectMeta {
        name: Some(NAME.to_owned()),
        namespace: namespaced.then(|| install.namespace.clone()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_owned(), NAME.to_owned())]);
    let container = Container {
        name: NAME.to_owned(),
        image: Some(install.image.clone()),
        args: Some(vec!["run".to_owned()]),
        env: Some(vec![
            env("OUTPOST_AGENT_STATE_DIR", STATE_DIR),
            env("OUTPOST_AGENT_MANAGEMENT", &install.management.join(",")),
            env("OUTPOST_AGENT_CA_FINGERPRINT", &install.ca_fingerprint),
            EnvVar {
                name: "OUTPOST_AGENT_TOKEN".to_owned(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: NAME.to_owned(),
                        key: TOKEN_KEY.to_owned(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("128Mi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("512Mi".to_owned()),
            )])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "state".to_owned(),
            mount_path: STATE_DIR.to_owned(),
            ..Default::default()
        }]),
        // Enrolling may wait for the management side: up to 10 minutes before liveness counts.
        startup_probe: Some(probe(10, 60)),
        liveness_probe: Some(probe(30, 3)),
        readiness_probe: Some(probe(10, 1)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Manifests {
        namespace: Namespace {
            metadata: ObjectMeta {
                name: Some(install.namespace.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
        service_account: ServiceAccount {
            metadata: meta(true),
            // The agent talks to the API server with this account's token.
            automount_service_account_token: Some(true),
            ..Default::default()
        },
        cluster_role: ClusterRole {
            metadata: meta(false),
            rules: Some(access::policy_rules()),
            ..Default::default()
        },
        cluster_role_binding: ClusterRoleBinding {
            metadata: meta(false),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: NAME.to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: NAME.to_owned(),
                namespace: Some(install.namespace.clone()),
                ..Default::default()
            }]),
        },
        secret: Secret {
            metadata: meta(true),
            type_: Some("Opaque".to_owned()),
            data: Some(BTreeMap::from([(
                TOKEN_KEY.to_owned(),
                ByteString(install.token.clone().into_bytes()),
            )])),
            ..Default::default()
        },
        state_volume: PersistentVolumeClaim {
            metadata: meta(true),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                storage_class_name: install.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".to_owned()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        deployment: Deployment {
            metadata: meta(true),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                // One identity, one agent: the old pod is gone before the new one starts.
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    ..Default::default()
                }),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        service_account_name: Some(NAME.to_owned()),
                        containers: vec![container],
                        volumes: Some(vec![Volume {
                            name: "state".to_owned(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: NAME.to_owned(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }]),
                        security_context: Some(PodSecurityContext {
                            run_as_user: Some(AGENT_UID),
                            run_as_group: Some(AGENT_UID),
                            fs_group: Some(AGENT_UID),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".to_owned(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::kube::manifests::MANAGED_BY;

    fn install() -> Install {
        Install {
            management: vec!["gw-a.example:7443".into(), "gw-b.example:7443".into()],
            token: "jt_secret".into(),
            ca_fingerprint: "ab:cd".into(),
            datacenter: Some("fra1".into()),
            namespace: "outpost-system".into(),
            image: "registry.example/outpost/agent:1".into(),
            storage_class: None,
        }
    }

    #[test]
    fn nothing_installed_looks_owned_by_the_agent_and_the_token_stays_in_the_secret() {
        let m = manifests(&install());
        let yaml = m.to_yaml().expect("yaml");
        assert!(!yaml.contains(MANAGED_BY.0), "{yaml}");
        let deployment = serde_json::to_string(&m.deployment).expect("json");
        assert!(!deployment.contains("jt_secret"), "{deployment}");
        assert_eq!(yaml.matches("\n---\n").count() + 1, 7, "{yaml}");
        assert_eq!(
            m.cluster_role.rules.as_ref().map(Vec::len),
            Some(access::RULES.len())
        );
    }
}
