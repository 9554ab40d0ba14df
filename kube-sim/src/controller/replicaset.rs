//! The ReplicaSet controller: keeps `spec.replicas` active pods from the template (creating
//! with generated names, deleting the least-advanced pods first) and reports `replicas`,
//! `readyReplicas` and `availableReplicas` (ready for `minReadySeconds`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;

use super::{
    Ctx, Involved, owner_ref, pod_active, pod_available, pod_from_template, pod_ready,
    template_with_labels,
};
use crate::naming;
use crate::resource::Resource;
use crate::store::Key;

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, rs) in ctx.list::<ReplicaSet>(Resource::ReplicaSet, None) {
        reconcile(ctx, &key, &rs);
    }
}

/// Deletion preference, lowest first: unscheduled, then pending, then not ready, newest
/// first (like the ReplicaSet controller's ranking).
fn deletion_rank(pod: &Pod) -> (u8, std::cmp::Reverse<String>) {
    let scheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let rank = match (scheduled, running, pod_ready(pod)) {
        (false, _, _) => 0,
        (true, false, _) => 1,
        (true, true, false) => 2,
        (true, true, true) => 3,
    };
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    (rank, std::cmp::Reverse(created))
}

fn reconcile(ctx: &mut Ctx<'_>, key: &Key, rs: &ReplicaSet) {
    if rs.metadata.deletion_timestamp.is_some() {
        return;
    }
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let spec = rs.spec.clone().unwrap_or_default();
    let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let mut pods: Vec<(Key, Pod)> = ctx
        .owned::<Pod>(Resource::Pod, &key.namespace, &uid)
        .into_iter()
        .filter(|(_, p)| pod_active(p))
        .collect();
    let involved = Involved::new(Resource::ReplicaSet, &rs.metadata, "replicaset-controller");
    if pods.len() < desired {
        let Some(raw) = ctx.raw(key) else { return };
        let template = template_with_labels(&raw, &BTreeMap::new());
        for _ in pods.len()..desired {
            let name = format!("{}-{}", key.name, naming::suffix(ctx.store.next_seq()));
            let pod = pod_from_template(
                &template,
                &name,
                owner_ref(Resource::ReplicaSet, &rs.metadata),
            );
            if let Some(created) = ctx.create(Resource::Pod, &key.namespace, pod) {
                ctx.event(
                    &involved,
                    false,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                );
                if let Ok(p) = serde_json::from_value::<Pod>((*created).clone()) {
                    pods.push((Key::new(Resource::Pod, &key.namespace, &name), p));
                }
            }
        }
    } else if pods.len() > desired {
        pods.sort_by_key(|(_, p)| deletion_rank(p));
        let excess = pods.len() - desired;
        for (pod_key, _) in pods.drain(..excess) {
            ctx.delete(&pod_key);
            ctx.event(
                &involved,
                false,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", pod_key.name),
            );
        }
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let count = |pred: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|(_, p)| pred(p)).count()).unwrap_or(i32::MAX)
    };
    let now = ctx.now;
    let status = ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|_| true)),
        ready_replicas: Some(count(&pod_ready)),
        available_replicas: Some(count(&|p| pod_available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        ..Default::default()
    };
    ctx.set_status(key, &status);
}
