//! The "kubelet and controllers" of the simulated cluster. One [`step`] runs every
//! controller once, in a fixed order, over the whole store, with the store locked (a step is
//! atomic with respect to API requests). Controllers are level-triggered: each reads the
//! current objects and converges them, writing only what differs, so a step over a settled
//! cluster changes nothing (that is how [`crate::Sim::settle`] detects quiescence).
//!
//! Every write goes through the same store semantics as an API write
//! ([`crate::store::write`]). Nothing here reads the system clock: `now` is the simulation
//! clock.

mod deployment;
mod events;
mod job;
mod kubelet;
mod replicaset;
mod statefulset;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fields;
use crate::resource::Resource;
use crate::store::write::{DeleteOpts, Part, Propagation, WriteOpts};
use crate::store::{Key, Store};

/// Runs every controller once at simulated time `now`.
pub(crate) fn step(store: &mut Store, now: Timestamp) {
    let mut ctx = Ctx { store, now };
    collect_garbage(&mut ctx);
    deployment::reconcile_all(&mut ctx);
    replicaset::reconcile_all(&mut ctx);
    statefulset::reconcile_all(&mut ctx);
    job::reconcile_all(&mut ctx);
    volumes::reconcile_all(&mut ctx);
    kubelet::reconcile_all(&mut ctx);
    events::expire(&mut ctx);
}

/// A controller's view of the store during one step.
pub(crate) struct Ctx<'a> {
    pub store: &'a mut Store,
    pub now: Timestamp,
}

impl Ctx<'_> {
    fn opts(&self) -> WriteOpts {
        WriteOpts {
            now: self.now,
            dry_run: false,
        }
    }

    pub(crate) fn time(&self) -> Time {
        Time(self.now)
    }

    /// Every object of `resource` (all namespaces) that decodes as `T`, with its key.
    pub(crate) fn list<T: DeserializeOwned>(
        &self,
        resource: Resource,
        namespace: Option<&str>,
    ) -> Vec<(Key, T)> {
        self.store
            .list(resource, namespace)
            .filter_map(|(k, v)| {
                serde_json::from_value((**v).clone())
                    .ok()
                    .map(|t| (k.clone(), t))
            })
            .collect()
    }

    /// Objects in `namespace` whose controller owner reference points at `owner_uid`.
    pub(crate) fn owned<T: DeserializeOwned>(
        &self,
        resource: Resource,
        namespace: &str,
        owner_uid: &str,
    ) -> Vec<(Key, T)> {
        self.store
            .controlled_by(owner_uid, resource)
            .filter(|(k, _)| k.namespace == namespace)
            .filter_map(|(k, v)| {
                serde_json::from_value((**v).clone())
                    .ok()
                    .map(|t| (k.clone(), t))
            })
            .collect()
    }

    pub(crate) fn raw(&self, key: &Key) -> Option<Arc<Value>> {
        self.store.get(key).cloned()
    }

    /// Creates an object; a failure (e.g. a name already taken) is logged and skipped: the
    /// next step retries, as a real controller would.
    pub(crate) fn create(
        &mut self,
        resource: Resource,
        namespace: &str,
        obj: Value,
    ) -> Option<Arc<Value>> {
        let opts = self.opts();
        match self
            .store
            .object_create(resource, namespace, obj, Part::All, opts)
        {
            Ok(created) => Some(created),
            Err(e) => {
                tracing::debug!(error = %outpost_process::ErrorChain(&e), resource = %resource, "controller create skipped");
                None
            }
        }
    }

    /// Applies `change` to the stored object; stores it only if something changed.
    pub(crate) fn update(&mut self, key: &Key, change: impl FnOnce(&mut Value)) {
        let Some(current) = self.store.get(key) else {
            return;
        };
        let mut new = (**current).clone();
        change(&mut new);
        // Most of a settled cluster's writes change nothing: skip the write's checks for them,
        // so a step costs what changed.
        if new == **current {
            return;
        }
        let opts = self.opts();
        let result = self
            .store
            .object_update(key, Part::All, false, opts, |_| Ok(new));
        if let Err(e) = result {
            tracing::debug!(error = %outpost_process::ErrorChain(&e), resource = %key.resource, "controller update skipped");
        }
    }

    /// Replaces `.status` with `status`.
    pub(crate) fn set_status<S: Serialize>(&mut self, key: &Key, status: &S) {
        let Ok(status) = serde_json::to_value(status) else {
            return;
        };
        let unchanged = self
            .store
            .get(key)
            .is_some_and(|current| fields::get(current, &["status"]) == Some(&status));
        if unchanged {
            return;
        }
        self.update(key, |obj| fields::set(obj, &["status"], status));
    }

    /// Deletes an object and its dependents.
    pub(crate) fn delete(&mut self, key: &Key) {
        let opts = DeleteOpts {
            write: self.opts(),
            propagation: Propagation::Background,
            uid: None,
            resource_version: None,
        };
        if let Err(e) = self.store.object_delete(key, &opts) {
            tracing::debug!(error = %outpost_process::ErrorChain(&e), resource = %key.resource, "controller delete skipped");
        }
    }

    /// Records an event about `involved` (deduplicated like the real event recorder).
    pub(crate) fn event(
        &mut self,
        involved: &Involved,
        warning: bool,
        reason: &str,
        message: &str,
    ) {
        events::record(self, involved, warning, reason, message);
    }
}

/// The object an event is about.
#[derive(Clone, Debug)]
pub(crate) struct Involved {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The component that reports it (`deployment-controller`, `kubelet`, ...).
    pub component: &'static str,
}

impl Involved {
    pub(crate) fn new(resource: Resource, meta: &ObjectMeta, component: &'static str) -> Involved {
        Involved {
            resource,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            component,
        }
    }
}

/// A controller owner reference to `owner`.
pub(crate) fn owner_ref(resource: Resource, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: resource.api_version().to_string(),
        kind: resource.kind().to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a pod counts as active (not finished, not being deleted).
pub(crate) fn pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether a pod's `Ready` condition is true.
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When a pod became ready, if it is.
pub(crate) fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        })
}

/// Whether a pod has been ready for at least `min_ready_seconds`.
pub(crate) fn pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    ready_since(pod).is_some_and(|since| {
        crate::clock::seconds_between(since, now) >= i64::from(min_ready_seconds)
    })
}

/// The pod template of a workload as stored (unknown fields kept), with extra labels.
pub(crate) fn template_with_labels(obj: &Value, extra: &BTreeMap<String, String>) -> Value {
    let mut template = fields::get(obj, &["spec", "template"])
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra {
        fields::set(&mut template, &["metadata", "labels", k], v.clone().into());
    }
    template
}

/// A pod built from a (labelled) template.
pub(crate) fn pod_from_template(template: &Value, name: &str, owner: OwnerReference) -> Value {
    let mut pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": fields::get(template, &["metadata"]).cloned().unwrap_or_default(),
        "spec": fields::get(template, &["spec"]).cloned().unwrap_or_default(),
    });
    fields::set(&mut pod, &["metadata", "name"], name.into());
    fields::set(
        &mut pod,
        &["metadata", "ownerReferences"],
        serde_json::json!([owner]),
    );
    pod
}

/// Deletes namespaced objects whose owners are all gone (the garbage collector).
fn collect_garbage(ctx: &mut Ctx<'_>) {
    let namespaced: Vec<Resource> = Resource::ALL
        .into_iter()
        .filter(|r| r.namespaced())
        .collect();
    let uids: BTreeSet<String> = namespaced
        .iter()
        .flat_map(|r| ctx.store.list(*r, None))
        .map(|(_, v)| fields::meta(v, "uid").to_string())
        .collect();
    let orphans: Vec<Key> = namespaced
        .iter()
        .flat_map(|r| ctx.store.list(*r, None))
        .filter(|(_, v)| {
            let owners: Vec<&str> = fields::get(v, &["metadata", "ownerReferences"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| fields::get_str(o, &["uid"]))
                .collect();
            !owners.is_empty() && owners.iter().all(|u| !uids.contains(*u))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in orphans {
        ctx.delete(&key);
    }
}
