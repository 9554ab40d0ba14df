//! Kubernetes through kube-rs: server-side apply under one field manager, labels marking
//! what the agent owns, and deletion of only what carries them. The same code drives a real
//! cluster and the simulated one (it only ever sees a `kube::Client`).

pub mod access;
pub mod build;
pub mod drift;
pub mod failure;
pub mod images;
pub mod logs;
pub mod managed;
pub mod manifests;
pub mod secrets;

use outpost_domain::observed::Capacity;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, SystemTime},
};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::{Namespace, Node, PersistentVolumeClaim, Pod, PodSpec, Secret, Service},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};

use crate::plan::{
    Action, Live, LiveKey, Observed, ObservedClaim, ObservedStateful, ObservedWorkload, Rollout,
};
use manifests::{FIELD_MANAGER, GENERATION_ANNOTATION, OWNED_SELECTOR};
use outpost_domain::desired::DesiredState;

/// The agent's view of one cluster.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    rollout: Rollout,
    builds: build::BuildSettings,
    images: images::ImageSource,
    block_storage_class: Option<String>,
    /// What the agent's own applies left each Secret at, shared by the clones.
    secrets: Arc<secrets::Applied>,
    /// How often each Secret is applied again to find drift in it.
    recheck: Duration,
    /// The Deployments (namespace, name) whose replica count an operator handed to
    /// something else (see [`manifests::SCALED_BY_ANNOTATION`]), as the last observation
    /// found them.
    scaled_elsewhere: Arc<std::sync::Mutex<BTreeSet<(String, String)>>>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeCluster")
    }
}

impl KubeCluster {
    /// A cluster reached through `client`, judging rollouts by `rollout`, building with
    /// `builds`, pulling images from where `images` says, and putting managed services'
    /// volumes on `block_storage_class` (the cluster's default when `None`).
    pub fn new(
        client: Client,
        rollout: Rollout,
        builds: build::BuildSettings,
        images: images::ImageSource,
        block_storage_class: Option<String>,
    ) -> Self {
        Self {
            client,
            rollout,
            builds,
            images,
            block_storage_class,
            secrets: Arc::default(),
            recheck: crate::plan::RECHECK,
            scaled_elsewhere: Arc::default(),
        }
    }

    /// The same driver, applying each Secret again every `every` instead of every
    /// [`crate::plan::RECHECK`].
    pub fn with_recheck(self, every: Duration) -> Self {
        Self {
            recheck: every,
            ..self
        }
    }

    /// How long a rollout may go without progress.
    pub fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    /// Where builds push and what builds them.
    pub fn build_settings(&self) -> &build::BuildSettings {
        &self.builds
    }

    /// Everything the agent owns in the cluster, with rollout state.
    pub async fn observe(&self) -> Result<Observed, kube::Error> {
        let owned = ListParams::default().labels(OWNED_SELECTOR);
        let mut live = BTreeMap::new();
        let mut namespaces = BTreeSet::new();
        for n in Api::<Namespace>::all(self.client.clone())
            .list(&owned)
            .await?
        {
            keep_live(&mut live, &n);
            namespaces.extend(n.metadata.name);
        }
        let mut pods: BTreeMap<(String, String), Vec<Pod>> = BTreeMap::new();
        for pod in Api::<Pod>::all(self.client.clone()).list(&owned).await? {
            let workload = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(manifests::WORKLOAD_LABEL))
                .cloned();
            if let (Some(ns), Some(workload)) = (pod.metadata.namespace.clone(), workload) {
                pods.entry((ns, workload)).or_default().push(pod);
            }
        }
        let now = SystemTime::now();
        // An owned object's key, and why the pods of the version it runs fail, if they do.
        let judge = |meta: &ObjectMeta, pod: Option<&PodSpec>| {
            let key = (meta.namespace.clone()?, meta.name.clone()?);
            let image = pod
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let failure = pods
                .get(&key)
                .and_then(|p| failure::classify(p, &image, now, self.rollout.health_grace));
            Some((key, failure))
        };
        let mut workloads = BTreeMap::new();
        let mut scaled_elsewhere = BTreeSet::new();
        for d in Api::<Deployment>::all(self.client.clone())
            .list(&owned)
            .await?
        {
            keep_live(&mut live, &d);
            let scaled = d
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(manifests::SCALED_BY_ANNOTATION));
            if let (true, Some(ns), Some(name)) = (
                scaled,
                d.metadata.namespace.clone(),
                d.metadata.name.clone(),
            ) {
                scaled_elsewhere.insert((ns, name));
            }
            let pod = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
            if let Some((key, failure)) = judge(&d.metadata, pod) {
                workloads.insert(
                    key,
                    ObservedWorkload {
                        failure,
                        ..observed_workload(&d)
                    },
                );
            }
        }
        *self
            .scaled_elsewhere
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = scaled_elsewhere;
        let managed_owned = ListParams::default().labels(managed::MANAGED_SELECTOR);
        let mut stateful = BTreeMap::new();
        for set in Api::<StatefulSet>::all(self.client.clone())
            .list(&managed_owned)
            .await?
        {
            keep_live(&mut live, &set);
            let pod = set.spec.as_ref().and_then(|s| s.template.spec.as_ref());
            if let Some((key, failure)) = judge(&set.metadata, pod) {
                stateful.insert(
                    key,
                    ObservedStateful {
                        failure,
                        ..observed_stateful(&set)
                    },
                );
            }
        }
        // Platform services' and managed services' Services apart: neither side may take
        // the other's for its own, or for stale.
        let (mut services, mut managed_services) = (BTreeSet::new(), BTreeSet::new());
        for s in Api::<Service>::all(self.client.clone())
            .list(&owned)
            .await?
        {
            keep_live(&mut live, &s);
            let is_managed = is_managed(&s.metadata);
            let (Some(ns), Some(name)) = (s.metadata.namespace, s.metadata.name) else {
                continue;
            };
            if is_managed {
                managed_services.insert((ns, name));
            } else {
                services.insert((ns, name));
            }
        }
        let claims = Api::<PersistentVolumeClaim>::all(self.client.clone())
            .list(&managed_owned)
            .await?
            .into_iter()
            .filter_map(|c| {
                keep_live(&mut live, &c);
                let owner = c
                    .metadata
                    .labels
                    .as_ref()?
                    .get(managed::MANAGED_LABEL)?
                    .clone();
                let claim = ObservedClaim {
                    uid: c.metadata.uid.clone().unwrap_or_default(),
                    bound: c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
                };
                Some(((c.metadata.namespace?, owner), claim))
            })
            .collect();
        let jobs = Api::<Job>::all(self.client.clone())
            .list(&owned)
            .await?
            .into_iter()
            .filter_map(|j| {
                keep_live(&mut live, &j);
                let state = build::state(&j);
                Some(((j.metadata.namespace?, j.metadata.name?), state))
            })
            .collect();
        Ok(Observed {
            namespaces,
            workloads,
            services,
            jobs,
            stateful,
            managed_services,
            claims,
            live,
        })
    }

    /// The owned objects of `desired` that differ from what the agent applies in a field it
    /// sets (see [`drift`]), leaving out those `planned` already applies and those whose
    /// object is unchanged since `stuck` says a repair could not take.
    pub fn drifted(
        &self,
        desired: &DesiredState,
        observed: &Observed,
        planned: &[Action],
        stuck: &BTreeMap<LiveKey, String>,
    ) -> Vec<Repair> {
        let applying = applying(planned);
        let mut repairs = Vec::new();
        // Each object of one Outpost resource (kind, object name, manifest), in order; the
        // first that drifted is repaired by applying the resource again.
        let mut check = |namespace: &str,
                         name: &str,
                         wanted: Vec<(&'static str, String, serde_json::Value)>,
                         repair: &dyn Fn() -> (Action, String)| {
            if applying.contains(&(namespace, name)) {
                return;
            }
            for (kind, object, manifest) in wanted {
                let key = (kind, namespace.to_owned(), object);
                let Some(live) = observed.live.get(&key) else {
                    continue;
                };
                if stuck.get(&key) == Some(&live.resource_version) {
                    continue;
                }
                let changed = drift::differences(&manifest, &live.object);
                if !changed.is_empty() {
                    let (action, resource) = repair();
                    repairs.push(Repair {
                        action,
                        resource,
                        key,
                        changed: drift::describe(&changed),
                    });
                    return;
                }
            }
        };
        for ns in &desired.namespaces {
            check(
                "",
                &ns.name,
                vec![(
                    "Namespace",
                    ns.name.clone(),
                    as_json(&manifests::namespace(ns)),
                )],
                &|| {
                    (
                        Action::ApplyNamespace(ns.clone()),
                        ns.environment.to_string(),
                    )
                },
            );
        }
        for w in &desired.workloads {
            let deployment = self.deployment(w);
            check(
                &w.namespace,
                &w.name,
                vec![
                    ("Deployment", w.name.clone(), as_json(&deployment)),
                    ("Service", w.name.clone(), as_json(&manifests::service(w))),
                ],
                &|| (Action::ApplyWorkload(w.clone()), w.service.to_string()),
            );
        }
        for m in desired.managed.iter().filter(|m| !m.deleting) {
            let outpost_domain::provider::Run::Stateful(run) = &m.run else {
                continue;
            };
            let mut wanted = vec![
                (
                    "StatefulSet",
                    m.name.clone(),
                    as_json(&managed::stateful_set(m, run, &self.images)),
                ),
                (
                    "Service",
                    m.name.clone(),
                    as_json(&managed::service(m, run)),
                ),
            ];
            if let Some(claim) = managed::claim(m, run, self.block_storage_class.as_deref()) {
                wanted.push((
                    "PersistentVolumeClaim",
                    managed::claim_name(&m.name),
                    as_json(&claim),
                ));
            }
            check(&m.namespace, &m.name, wanted, &|| {
                (Action::ApplyManaged(m.clone()), m.service.to_string())
            });
        }
        for b in &desired.builds {
            let job = build::job(b, &self.builds, &self.images);
            check(
                &b.namespace,
                &b.job_name(),
                vec![("Job", b.job_name(), as_json(&job))],
                &|| (Action::ApplyBuild(b.clone()), b.service.to_string()),
            );
        }
        repairs
    }

    /// The Deployment the agent applies for `w`: without a replica count when an operator
    /// handed it to something else, so that apply neither sets nor restores it.
    fn deployment(&self, w: &outpost_domain::desired::Workload) -> Deployment {
        let mut deployment = manifests::deployment(w, self.rollout.progress_deadline, &self.images);
        let scaled_elsewhere = self
            .scaled_elsewhere
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(w.namespace.clone(), w.name.clone()));
        if scaled_elsewhere && let Some(spec) = deployment.spec.as_mut() {
            spec.replicas = None;
        }
        deployment
    }

    /// The Secrets of `desired` due to be applied again to find drift in them (see
    /// [`secrets`]): those not applied for the recheck interval, or not since the agent
    /// started, leaving out those `planned` applies anyway.
    pub fn secrets_due(&self, desired: &DesiredState, planned: &[Action]) -> Vec<secrets::Due> {
        let applying = applying(planned);
        let workloads = desired.workloads.iter().filter_map(|w| {
            let secret = manifests::secret(w)?;
            Some((&w.namespace, &w.name, w.service.to_string(), secret))
        });
        let managed = desired.managed.iter().filter_map(|m| {
            let outpost_domain::provider::Run::Stateful(run) = &m.run else {
                return None;
            };
            let secret = managed::secret(m, run).filter(|_| !m.deleting)?;
            Some((&m.namespace, &m.name, m.service.to_string(), secret))
        });
        workloads
            .chain(managed)
            .filter(|(namespace, owner, _, secret)| {
                !applying.contains(&(namespace.as_str(), owner.as_str()))
                    && self.secrets.due(
                        namespace,
                        secret.metadata.name.as_deref().unwrap_or_default(),
                        self.recheck,
                    )
            })
            .map(|(namespace, _, resource, secret)| secrets::Due {
                namespace: namespace.clone(),
                resource,
                secret,
            })
            .collect()
    }

    /// Applies a due Secret again; true when someone had changed it since the agent's
    /// previous apply, which this apply restored.
    pub async fn reapply_secret(&self, due: &secrets::Due) -> Result<bool, kube::Error> {
        let name = due.secret.metadata.name.clone().unwrap_or_default();
        let (previous, now) = self
            .apply_secret(&due.namespace, &name, due.secret.clone())
            .await?;
        Ok(previous.is_some_and(|previous| previous != now))
    }

    /// Applies a Secret and remembers the version it left; returns the version remembered
    /// from the agent's previous apply, if any, and the new one.
    async fn apply_secret(
        &self,
        namespace: &str,
        name: &str,
        secret: Secret,
    ) -> Result<(Option<String>, String), kube::Error> {
        let applied = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(secret),
            )
            .await?;
        let version = applied.metadata.resource_version.unwrap_or_default();
        Ok((
            self.secrets.record(namespace, name, version.clone()),
            version,
        ))
    }

    /// Deletes a Secret, if there is one.
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<(), kube::Error> {
        ignore_missing(
            Api::<Secret>::namespaced(self.client.clone(), namespace)
                .delete(name, &DeleteParams::default())
                .await,
        )?;
        self.secrets.forget(namespace, name);
        Ok(())
    }

    /// Carries out one planned action. Idempotent: applying the same object twice or
    /// deleting an absent one is not an error.
    pub async fn execute(&self, action: &Action) -> Result<(), kube::Error> {
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        match action {
            Action::ApplyNamespace(ns) => {
                Api::<Namespace>::all(self.client.clone())
                    .patch(&ns.name, &apply, &Patch::Apply(manifests::namespace(ns)))
                    .await?;
            }
            Action::ApplyWorkload(w) => {
                // The Secret first: the pods of the new template reference it.
                let secret_name = manifests::secret_name(&w.name);
                match manifests::secret(w) {
                    Some(secret) => {
                        self.apply_secret(&w.namespace, &secret_name, secret)
                            .await?;
                    }
                    None => self.delete_secret(&w.namespace, &secret_name).await?,
                }
                let deployment = self.deployment(w);
                Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                    .patch(&w.name, &apply, &Patch::Apply(deployment))
                    .await?;
                Api::<Service>::namespaced(self.client.clone(), &w.namespace)
                    .patch(&w.name, &apply, &Patch::Apply(manifests::service(w)))
                    .await?;
            }
            Action::DeleteWorkload { namespace, name } => {
                ignore_missing(
                    Api::<Deployment>::namespaced(self.client.clone(), namespace)
                        .delete(name, &DeleteParams::default())
                        .await,
                )?;
                ignore_missing(
                    Api::<Service>::namespaced(self.client.clone(), namespace)
                        .delete(name, &DeleteParams::default())
                        .await,
                )?;
                self.delete_secret(namespace, &manifests::secret_name(name))
                    .await?;
            }
            Action::ApplyManaged(m) => {
                let outpost_domain::provider::Run::Stateful(run) = &m.run else {
                    return Ok(());
                };
                // The Secret and the claim first: the pod references both.
                if let Some(secret) = managed::secret(m, run) {
                    self.apply_secret(&m.namespace, &manifests::secret_name(&m.name), secret)
                        .await?;
                }
                if let Some(claim) = managed::claim(m, run, self.block_storage_class.as_deref()) {
                    Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &m.namespace)
                        .patch(&managed::claim_name(&m.name), &apply, &Patch::Apply(claim))
                        .await?;
                }
                Api::<StatefulSet>::namespaced(self.client.clone(), &m.namespace)
                    .patch(
                        &m.name,
                        &apply,
                        &Patch::Apply(managed::stateful_set(m, run, &self.images)),
                    )
                    .await?;
                Api::<Service>::namespaced(self.client.clone(), &m.namespace)
                    .patch(&m.name, &apply, &Patch::Apply(managed::service(m, run)))
                    .await?;
            }
            Action::DeleteManaged {
                namespace,
                name,
                with_data,
            } => {
                // Its pod goes with the StatefulSet.
                ignore_missing(
                    Api::<StatefulSet>::namespaced(self.client.clone(), namespace)
                        .delete(name, &DeleteParams::background())
                        .await,
                )?;
                ignore_missing(
                    Api::<Service>::namespaced(self.client.clone(), namespace)
                        .delete(name, &DeleteParams::default())
                        .await,
                )?;
                if *with_data {
                    self.delete_secret(namespace, &manifests::secret_name(name))
                        .await?;
                    ignore_missing(
                        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
                            .delete(&managed::claim_name(name), &DeleteParams::default())
                            .await,
                    )?;
                }
            }
            Action::ApplyBuild(b) => {
                Api::<Job>::namespaced(self.client.clone(), &b.namespace)
                    .patch(
                        &b.job_name(),
                        &apply,
                        &Patch::Apply(build::job(b, &self.builds, &self.images)),
                    )
                    .await?;
            }
            Action::DeleteBuild { namespace, name } => {
                // Its pods go with it.
                ignore_missing(
                    Api::<Job>::namespaced(self.client.clone(), namespace)
                        .delete(name, &DeleteParams::background())
                        .await,
                )?;
            }
            Action::DeleteNamespace(name) => {
                ignore_missing(
                    Api::<Namespace>::all(self.client.clone())
                        .delete(name, &DeleteParams::default())
                        .await,
                )?;
            }
        }
        Ok(())
    }

    /// Allocatable CPU and memory summed over the cluster's nodes; zero if nodes cannot be
    /// listed (a restricted service account, say).
    pub async fn capacity(&self) -> Capacity {
        let Ok(nodes) = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
        else {
            return Capacity::default();
        };
        let mut capacity = Capacity::default();
        for node in nodes {
            let allocatable = node.status.and_then(|s| s.allocatable).unwrap_or_default();
            if let Some(cpu) = allocatable.get("cpu") {
                capacity.cpu_millis += manifests::parse_cpu_millis(&cpu.0).unwrap_or(0);
            }
            if let Some(memory) = allocatable.get("memory") {
                capacity.memory_bytes += manifests::parse_bytes(&memory.0).unwrap_or(0);
            }
        }
        capacity
    }
}

/// The Outpost resources `planned` applies, by namespace and name (a build by its Job's).
fn applying(planned: &[Action]) -> BTreeSet<(&str, &str)> {
    planned
        .iter()
        .filter_map(|a| match a {
            Action::ApplyNamespace(ns) => Some(("", ns.name.as_str())),
            Action::ApplyWorkload(w) => Some((w.namespace.as_str(), w.name.as_str())),
            Action::ApplyManaged(m) => Some((m.namespace.as_str(), m.name.as_str())),
            _ => None,
        })
        .collect()
}

/// Whether a call failed for want of an answer from the API server (it cannot be connected
/// to, or the connection broke), as opposed to an answer refusing it.
pub fn is_unanswered(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// A change made behind the agent's back, and what repairs it.
#[derive(Debug, Clone)]
pub struct Repair {
    /// Applies the object (and its siblings) again.
    pub action: Action,
    /// The Outpost resource it belongs to, for the event.
    pub resource: String,
    /// The object that drifted.
    pub key: LiveKey,
    /// What changed, for a person (`image`).
    pub changed: String,
}

impl Repair {
    /// The event's words: `Deployment web: image changed outside Outpost; restored.`
    pub fn message(&self) -> String {
        format!(
            "{} {}: {} changed outside Outpost; restored.",
            self.key.0, self.key.2, self.changed
        )
    }
}

fn as_json(object: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// Keeps `object` as the cluster holds it.
fn keep_live<K>(live: &mut BTreeMap<LiveKey, Live>, object: &K)
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + serde::Serialize,
{
    let meta = object.metadata();
    if let Some(name) = &meta.name {
        // Cluster-scoped objects (namespaces) under the empty namespace.
        let namespace = meta.namespace.clone().unwrap_or_default();
        live.insert(
            (K::KIND, namespace, name.clone()),
            Live {
                object: as_json(object),
                resource_version: meta.resource_version.clone().unwrap_or_default(),
            },
        );
    }
}

fn ignore_missing<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.contains_key(managed::MANAGED_LABEL))
}

fn generation_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(GENERATION_ANNOTATION))
        .and_then(|g| g.parse().ok())
}

/// Rollout state from a managed service's StatefulSet.
fn observed_stateful(set: &StatefulSet) -> ObservedStateful {
    let status = set.status.clone().unwrap_or_default();
    ObservedStateful {
        generation: generation_of(&set.metadata),
        rolled_out: status.observed_generation.is_some()
            && status.observed_generation == set.metadata.generation
            && status.current_revision.is_some()
            && status.current_revision == status.update_revision,
        wanted_replicas: i64::from(set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
        pods: i64::from(status.replicas),
        ready_replicas: i64::from(status.ready_replicas.unwrap_or(0)),
        failure: None,
    }
}

/// Rollout state from a Deployment's metadata and status.
fn observed_workload(d: &Deployment) -> ObservedWorkload {
    let generation = generation_of(&d.metadata);
    let status = d.status.clone().unwrap_or_default();
    let rolled_out =
        status.observed_generation.is_some() && status.observed_generation == d.metadata.generation;
    let deadline_exceeded = status.conditions.unwrap_or_default().iter().any(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    ObservedWorkload {
        generation,
        rolled_out,
        desired_replicas: i64::from(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
        ready_replicas: i64::from(status.ready_replicas.unwrap_or(0)),
        updated_replicas: i64::from(status.updated_replicas.unwrap_or(0)),
        deadline_exceeded,
        failure: None,
    }
}
