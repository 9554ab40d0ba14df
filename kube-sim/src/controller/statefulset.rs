//! The StatefulSet controller: pods `<name>-0 … <name>-(n-1)` with stable identities, each
//! with PersistentVolumeClaims `<template>-<name>-<ordinal>` from `volumeClaimTemplates`.
//!
//! `OrderedReady` (default) creates one pod at a time, in order, each after its predecessor
//! is ready, and removes the highest ordinal first, one per step; `Parallel` does all at
//! once. A RollingUpdate replaces out-of-date pods from the highest ordinal down (not below
//! `partition`), one at a time, once every pod is ready. Claims are kept when the set scales
//! down or is deleted, as on a real cluster, unless
//! `persistentVolumeClaimRetentionPolicy` says `Delete`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::{
    Ctx, Involved, owner_ref, pod_active, pod_available, pod_from_template, pod_ready,
    template_with_labels,
};
use crate::fields;
use crate::naming;
use crate::resource::Resource;
use crate::store::Key;

const REVISION_LABEL: &str = "controller-revision-hash";

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, sts) in ctx.list::<StatefulSet>(Resource::StatefulSet, None) {
        reconcile(ctx, &key, &sts);
    }
}

fn claim_name(template: &str, set: &str, ordinal: usize) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// Creates the missing claims of pod `ordinal`.
fn ensure_claims(
    ctx: &mut Ctx<'_>,
    key: &Key,
    sts: &StatefulSet,
    raw: &Value,
    ordinal: usize,
    involved: &Involved,
) {
    let delete_with_set = sts
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    let selector_labels = fields::get(raw, &["spec", "selector", "matchLabels"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    let templates = fields::get(raw, &["spec", "volumeClaimTemplates"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for template in templates {
        let tname = fields::meta(&template, "name").to_string();
        let name = claim_name(&tname, &key.name, ordinal);
        if ctx
            .raw(&Key::new(
                Resource::PersistentVolumeClaim,
                &key.namespace,
                &name,
            ))
            .is_some()
        {
            continue;
        }
        let mut claim = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": fields::get(&template, &["metadata"]).cloned().unwrap_or_else(|| json!({})),
            "spec": fields::get(&template, &["spec"]).cloned().unwrap_or_else(|| json!({})),
        });
        fields::set(&mut claim, &["metadata", "name"], name.clone().into());
        fields::remove(&mut claim, &["metadata", "namespace"]);
        if let Some(labels) = selector_labels.as_object() {
            for (k, v) in labels {
                fields::set(&mut claim, &["metadata", "labels", k], v.clone());
            }
        }
        if delete_with_set {
            fields::set(
                &mut claim,
                &["metadata", "ownerReferences"],
                json!([owner_ref(Resource::StatefulSet, &sts.metadata)]),
            );
        }
        if ctx
            .create(Resource::PersistentVolumeClaim, &key.namespace, claim)
            .is_some()
        {
            let pod = format!("{}-{ordinal}", key.name);
            let msg = format!(
                "create Claim {name} Pod {pod} in StatefulSet {} success",
                key.name
            );
            ctx.event(involved, false, "SuccessfulCreate", &msg);
        }
    }
}

fn create_pod(
    ctx: &mut Ctx<'_>,
    key: &Key,
    sts: &StatefulSet,
    raw: &Value,
    ordinal: usize,
    revision: &str,
    involved: &Involved,
) {
    ensure_claims(ctx, key, sts, raw, ordinal, involved);
    let name = format!("{}-{ordinal}", key.name);
    let labels = BTreeMap::from([
        (REVISION_LABEL.to_string(), revision.to_string()),
        (
            "statefulset.kubernetes.io/pod-name".to_string(),
            name.clone(),
        ),
        (
            "apps.kubernetes.io/pod-index".to_string(),
            ordinal.to_string(),
        ),
    ]);
    let template = template_with_labels(raw, &labels);
    let mut pod = pod_from_template(
        &template,
        &name,
        owner_ref(Resource::StatefulSet, &sts.metadata),
    );
    fields::set(&mut pod, &["spec", "hostname"], name.clone().into());
    if let Some(service) = sts.spec.as_ref().and_then(|s| s.service_name.clone()) {
        fields::set(&mut pod, &["spec", "subdomain"], service.into());
    }
    let mut volumes: Vec<Value> = fields::get(&pod, &["spec", "volumes"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in sts
        .spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
    {
        let tname = t.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| fields::get_str(v, &["name"]) != Some(tname.as_str()));
        let claim = claim_name(&tname, &key.name, ordinal);
        volumes.push(json!({ "name": tname, "persistentVolumeClaim": { "claimName": claim } }));
    }
    if !volumes.is_empty() {
        fields::set(&mut pod, &["spec", "volumes"], Value::Array(volumes));
    }
    if ctx.create(Resource::Pod, &key.namespace, pod).is_some() {
        let msg = format!("create Pod {name} in StatefulSet {} successful", key.name);
        ctx.event(involved, false, "SuccessfulCreate", &msg);
    }
}

fn delete_pod(
    ctx: &mut Ctx<'_>,
    key: &Key,
    sts: &StatefulSet,
    pod_key: &Key,
    ordinal: usize,
    scaled_down: bool,
    involved: &Involved,
) {
    ctx.delete(pod_key);
    let msg = format!(
        "delete Pod {} in StatefulSet {} successful",
        pod_key.name, key.name
    );
    ctx.event(involved, false, "SuccessfulDelete", &msg);
    let delete_claims = sts
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Delete");
    if scaled_down && delete_claims {
        for t in sts
            .spec
            .iter()
            .flat_map(|s| s.volume_claim_templates.iter().flatten())
        {
            let claim = claim_name(
                &t.metadata.name.clone().unwrap_or_default(),
                &key.name,
                ordinal,
            );
            ctx.delete(&Key::new(
                Resource::PersistentVolumeClaim,
                &key.namespace,
                &claim,
            ));
        }
    }
}

fn reconcile(ctx: &mut Ctx<'_>, key: &Key, sts: &StatefulSet) {
    if sts.metadata.deletion_timestamp.is_some() {
        return;
    }
    let Some(raw) = ctx.raw(key) else { return };
    let spec = sts.spec.clone().unwrap_or_default();
    let replicas = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let revision = format!(
        "{}-{}",
        key.name,
        naming::template_hash(fields::get(&raw, &["spec", "template"]).unwrap_or(&json!({})))
    );
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let prefix = format!("{}-", key.name);
    let pods: BTreeMap<usize, (Key, Pod)> = ctx
        .owned::<Pod>(Resource::Pod, &key.namespace, &uid)
        .into_iter()
        .filter(|(_, p)| pod_active(p))
        .filter_map(|(k, p)| {
            let ordinal = k.name.strip_prefix(&prefix)?.parse().ok()?;
            Some((ordinal, (k, p)))
        })
        .collect();
    let involved = Involved::new(
        Resource::StatefulSet,
        &sts.metadata,
        "statefulset-controller",
    );
    let mut acted = false;
    for ordinal in 0..replicas {
        match pods.get(&ordinal) {
            Some((_, p)) if parallel || pod_ready(p) => {}
            Some(_) => break,
            None => {
                create_pod(ctx, key, sts, &raw, ordinal, &revision, &involved);
                acted = true;
                if !parallel {
                    break;
                }
            }
        }
    }
    let excess: Vec<usize> = pods
        .keys()
        .copied()
        .filter(|o| *o >= replicas)
        .rev()
        .collect();
    for ordinal in excess.iter().take(if parallel { excess.len() } else { 1 }) {
        if let Some((pod_key, _)) = pods.get(ordinal) {
            delete_pod(ctx, key, sts, pod_key, *ordinal, true, &involved);
            acted = true;
        }
    }
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(0);
    let all_ready = (0..replicas).all(|o| pods.get(&o).is_some_and(|(_, p)| pod_ready(p)));
    if rolling && !acted && all_ready {
        let stale = (partition..replicas).rev().find(|o| {
            pods.get(o)
                .is_some_and(|(_, p)| pod_revision(p) != Some(revision.as_str()))
        });
        if let Some(ordinal) = stale
            && let Some((pod_key, _)) = pods.get(&ordinal)
        {
            delete_pod(ctx, key, sts, pod_key, ordinal, false, &involved);
        }
    }
    let count = |pred: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.values().filter(|(_, p)| pred(p)).count()).unwrap_or(i32::MAX)
    };
    let updated = count(&|p| pod_revision(p) == Some(revision.as_str()));
    let prev = sts.status.clone().unwrap_or_default();
    let current_revision =
        if usize::try_from(updated).unwrap_or(0) == replicas && pods.len() == replicas {
            revision.clone()
        } else {
            prev.current_revision
                .clone()
                .unwrap_or_else(|| revision.clone())
        };
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = ctx.now;
    let status = StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        replicas: count(&|_| true),
        ready_replicas: Some(count(&pod_ready)),
        available_replicas: Some(count(&|p| pod_available(p, min_ready, now))),
        current_replicas: Some(count(&|p| {
            pod_revision(p) == Some(current_revision.as_str())
        })),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision.clone()),
        update_revision: Some(revision.clone()),
        collision_count: Some(0),
        ..Default::default()
    };
    ctx.set_status(key, &status);
}
