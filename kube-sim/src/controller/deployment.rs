//! The Deployment controller: one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), rolled with the Deployment's strategy, and the status
//! a real controller reports.
//!
//! RollingUpdate follows the upstream arithmetic: the new ReplicaSet grows while the total
//! stays within `replicas + maxSurge`; old ReplicaSets shrink only while at least
//! `replicas - maxUnavailable` pods stay available (unavailable old pods go first). So with
//! `maxUnavailable: 0` the ready count never drops below `replicas` during a rollout, and a
//! new template whose pods never become ready leaves the old pods serving. Recreate scales
//! the old ReplicaSets to zero before the new one grows.
//!
//! `Progressing` is `NewReplicaSetCreated` / `FoundNewReplicaSet` / `ReplicaSetUpdated` while
//! rolling, `NewReplicaSetAvailable` when done, and `False`/`ProgressDeadlineExceeded` once
//! `progressDeadlineSeconds` of simulated time pass without progress.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, ReplicaSet,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{Ctx, Involved, owner_ref, template_with_labels};
use crate::clock::seconds_between;
use crate::fields;
use crate::naming;
use crate::resource::Resource;
use crate::store::Key;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, d) in ctx.list::<Deployment>(Resource::Deployment, None) {
        reconcile(ctx, &key, &d);
    }
}

/// An int-or-percent of `total`, rounded up or down.
fn resolve(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => (*i).max(0),
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = pct.max(0) * i64::from(total);
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    }
}

fn spec(d: &Deployment) -> DeploymentSpec {
    d.spec.clone().unwrap_or_default()
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// One ReplicaSet of the deployment, as seen at the start of the step.
struct Owned {
    key: Key,
    rs: ReplicaSet,
}

fn scale(ctx: &mut Ctx<'_>, involved: &Involved, rs: &mut Owned, to: i32) {
    let from = spec_replicas(&rs.rs);
    if from == to {
        return;
    }
    ctx.update(&rs.key, |obj| {
        fields::set(obj, &["spec", "replicas"], json!(to))
    });
    if let Some(spec) = rs.rs.spec.as_mut() {
        spec.replicas = Some(to);
    }
    let direction = if to > from { "up" } else { "down" };
    ctx.event(
        involved,
        false,
        "ScalingReplicaSet",
        &format!(
            "Scaled {direction} replica set {} from {from} to {to}",
            rs.key.name
        ),
    );
}

/// The new ReplicaSet for the current template, creating it if absent. Returns it and the
/// `Progressing` reason this step implies (`NewReplicaSetCreated`, `FoundNewReplicaSet`).
fn new_replica_set(
    ctx: &mut Ctx<'_>,
    key: &Key,
    d: &Deployment,
    hash: &str,
    owned: &mut Vec<Owned>,
) -> Option<(usize, Option<&'static str>)> {
    let max_old = owned
        .iter()
        .filter(|o| {
            o.rs.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(HASH_LABEL))
                .map(String::as_str)
                != Some(hash)
        })
        .map(|o| revision(&o.rs))
        .max()
        .unwrap_or(0);
    if let Some(i) = owned.iter().position(|o| {
        o.rs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .map(String::as_str)
            == Some(hash)
    }) {
        // A rollback to an older template makes its ReplicaSet the newest revision again.
        if revision(&owned[i].rs) <= max_old {
            let rev = (max_old + 1).to_string();
            ctx.update(&owned[i].key, |obj| {
                fields::set(
                    obj,
                    &["metadata", "annotations", REVISION],
                    rev.clone().into(),
                )
            });
            owned[i]
                .rs
                .metadata
                .annotations
                .get_or_insert_default()
                .insert(REVISION.into(), rev);
            return Some((i, Some("FoundNewReplicaSet")));
        }
        return Some((i, None));
    }
    let raw = ctx.raw(key)?;
    let extra = BTreeMap::from([(HASH_LABEL.to_string(), hash.to_string())]);
    let template = template_with_labels(&raw, &extra);
    let mut selector = fields::get(&raw, &["spec", "selector"])
        .cloned()
        .unwrap_or_default();
    fields::set(&mut selector, &["matchLabels", HASH_LABEL], hash.into());
    let name = format!("{}-{hash}", key.name);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "labels": fields::get(&template, &["metadata", "labels"]).cloned().unwrap_or_default(),
            "annotations": {
                REVISION: (max_old + 1).to_string(),
                "deployment.kubernetes.io/desired-replicas": spec(d).replicas.unwrap_or(1).to_string(),
            },
            "ownerReferences": [owner_ref(Resource::Deployment, &d.metadata)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": spec(d).min_ready_seconds.unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    let created = ctx.create(Resource::ReplicaSet, &key.namespace, rs)?;
    let rs: ReplicaSet = serde_json::from_value((*created).clone()).ok()?;
    owned.push(Owned {
        key: Key::new(Resource::ReplicaSet, &key.namespace, &name),
        rs,
    });
    Some((owned.len() - 1, Some("NewReplicaSetCreated")))
}

fn roll(ctx: &mut Ctx<'_>, d: &Deployment, involved: &Involved, owned: &mut [Owned], new: usize) {
    let replicas = spec(d).replicas.unwrap_or(1).max(0);
    let strategy = spec(d).strategy.clone().unwrap_or_default();
    let olds: Vec<usize> = (0..owned.len()).filter(|i| *i != new).collect();
    if strategy.type_.as_deref() == Some("Recreate") {
        let old_pods: i32 = olds
            .iter()
            .map(|i| owned[*i].rs.status.as_ref().map_or(0, |s| s.replicas))
            .sum();
        for i in &olds {
            scale(ctx, involved, &mut owned[*i], 0);
        }
        if old_pods == 0 {
            scale(ctx, involved, &mut owned[new], replicas);
        }
        return;
    }
    let rolling = strategy.rolling_update.unwrap_or_default();
    let surge = resolve(rolling.max_surge.as_ref(), replicas, true);
    let mut unavailable = resolve(rolling.max_unavailable.as_ref(), replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let total = |owned: &[Owned]| owned.iter().map(|o| spec_replicas(&o.rs)).sum::<i32>();
    let new_replicas = spec_replicas(&owned[new].rs);
    if new_replicas > replicas || olds.is_empty() {
        scale(ctx, involved, &mut owned[new], replicas);
    } else if new_replicas < replicas {
        let room = replicas + surge - total(owned);
        if room > 0 {
            let to = new_replicas + room.min(replicas - new_replicas);
            scale(ctx, involved, &mut owned[new], to);
        }
    }
    let min_available = replicas - unavailable;
    let new_unavailable = spec_replicas(&owned[new].rs) - available(&owned[new].rs);
    let mut budget = total(owned) - min_available - new_unavailable;
    let mut olds = olds;
    olds.sort_by_key(|i| revision(&owned[*i].rs));
    // Unavailable old pods go first: removing them costs no availability.
    for i in &olds {
        let unhealthy = (spec_replicas(&owned[*i].rs) - available(&owned[*i].rs)).max(0);
        let cut = unhealthy.min(budget.max(0));
        if cut > 0 {
            let to = spec_replicas(&owned[*i].rs) - cut;
            scale(ctx, involved, &mut owned[*i], to);
            budget -= cut;
        }
    }
    let mut spare = owned.iter().map(|o| available(&o.rs)).sum::<i32>() - min_available;
    for i in &olds {
        let cut = spec_replicas(&owned[*i].rs).min(spare.max(0));
        if cut > 0 {
            let to = spec_replicas(&owned[*i].rs) - cut;
            scale(ctx, involved, &mut owned[*i], to);
            spare -= cut;
        }
    }
}

/// Deletes drained old ReplicaSets beyond `revisionHistoryLimit`, oldest first.
fn prune_history(ctx: &mut Ctx<'_>, d: &Deployment, owned: &[Owned], new: usize) {
    let limit = usize::try_from(spec(d).revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let mut drained: Vec<&Owned> = owned
        .iter()
        .enumerate()
        .filter(|(i, o)| {
            *i != new
                && spec_replicas(&o.rs) == 0
                && o.rs.status.as_ref().is_none_or(|s| s.replicas == 0)
        })
        .map(|(_, o)| o)
        .collect();
    drained.sort_by_key(|o| revision(&o.rs));
    let excess = drained.len().saturating_sub(limit);
    for o in drained.into_iter().take(excess) {
        ctx.delete(&o.key);
    }
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    ctx: &Ctx<'_>,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(ctx.time()),
        last_transition_time: Some(ctx.time()),
    }
}

/// Keeps the previous condition's timestamps when nothing about it changed, and the
/// transition time when only the reason changed.
fn merge_condition(
    prev: Option<&DeploymentCondition>,
    mut next: DeploymentCondition,
    touch: bool,
) -> DeploymentCondition {
    if let Some(prev) = prev
        && prev.status == next.status
    {
        next.last_transition_time
            .clone_from(&prev.last_transition_time);
        if !touch && prev.reason == next.reason && prev.message == next.message {
            next.last_update_time.clone_from(&prev.last_update_time);
        }
    }
    next
}

fn reconcile(ctx: &mut Ctx<'_>, key: &Key, d: &Deployment) {
    if d.metadata.deletion_timestamp.is_some() {
        return;
    }
    let Some(raw) = ctx.raw(key) else { return };
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let hash =
        naming::template_hash(fields::get(&raw, &["spec", "template"]).unwrap_or(&json!({})));
    let mut owned: Vec<Owned> = ctx
        .owned::<ReplicaSet>(Resource::ReplicaSet, &key.namespace, &uid)
        .into_iter()
        .map(|(key, rs)| Owned { key, rs })
        .collect();
    let involved = Involved::new(Resource::Deployment, &d.metadata, "deployment-controller");
    let paused = spec(d).paused == Some(true);
    let existing_new = owned.iter().position(|o| {
        o.rs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .map(String::as_str)
            == Some(hash.as_str())
    });
    let (new, event_reason) = if paused {
        (existing_new, None)
    } else {
        match new_replica_set(ctx, key, d, &hash, &mut owned) {
            Some((i, reason)) => (Some(i), reason),
            None => (None, None),
        }
    };
    if let Some(new) = new {
        if !paused {
            roll(ctx, d, &involved, &mut owned, new);
            prune_history(ctx, d, &owned, new);
        }
        let rev = revision(&owned[new].rs).to_string();
        ctx.update(key, |obj| {
            fields::set(obj, &["metadata", "annotations", REVISION], rev.into())
        });
    }
    write_status(ctx, key, d, &owned, new, event_reason);
}

fn write_status(
    ctx: &mut Ctx<'_>,
    key: &Key,
    d: &Deployment,
    owned: &[Owned],
    new: Option<usize>,
    event_reason: Option<&str>,
) {
    let replicas = spec(d).replicas.unwrap_or(1).max(0);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| owned.iter().map(|o| f(&o.rs)).sum::<i32>();
    let status_replicas = sum(&|rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let avail = sum(&available);
    let updated = new.map_or(0, |i| owned[i].rs.status.as_ref().map_or(0, |s| s.replicas));
    let new_name = new.map(|i| owned[i].key.name.clone()).unwrap_or_default();
    let strategy = spec(d).strategy.clone().unwrap_or_default();
    let max_unavailable = if strategy.type_.as_deref() == Some("Recreate") {
        replicas
    } else {
        resolve(
            strategy
                .rolling_update
                .and_then(|r| r.max_unavailable)
                .as_ref(),
            replicas,
            false,
        )
    };
    let prev = d.status.clone().unwrap_or_default();
    let prev_conditions = prev.conditions.clone().unwrap_or_default();
    let prev_cond = |t: &str| prev_conditions.iter().find(|c| c.type_ == t);
    let available_cond = if avail >= replicas - max_unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            ctx,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            ctx,
        )
    };
    let available_cond = merge_condition(prev_cond("Available"), available_cond, false);
    let complete = updated == replicas && avail == replicas && status_replicas == replicas;
    let old_pods = status_replicas - updated;
    let prev_old_pods = prev.replicas.unwrap_or(0) - prev.updated_replicas.unwrap_or(0);
    let progressed = updated > prev.updated_replicas.unwrap_or(0)
        || avail > prev.available_replicas.unwrap_or(0)
        || ready > prev.ready_replicas.unwrap_or(0)
        || old_pods < prev_old_pods;
    let prev_progressing = prev_cond("Progressing");
    let prev_reason = prev_progressing.and_then(|c| c.reason.as_deref());
    let deadline = i64::from(spec(d).progress_deadline_seconds.unwrap_or(600));
    let since_update = prev_progressing
        .and_then(|c| c.last_update_time.as_ref())
        .map_or(0, |t| seconds_between(t.0, ctx.now));
    let progressing = if spec(d).paused == Some(true) {
        Some((
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                ctx,
            ),
            false,
        ))
    } else if let Some(reason) = event_reason {
        let verb = if reason == "NewReplicaSetCreated" {
            "Created"
        } else {
            "Found"
        };
        Some((
            condition(
                "Progressing",
                "True",
                reason,
                format!("{verb} new replica set \"{new_name}\""),
                ctx,
            ),
            true,
        ))
    } else if complete {
        let msg = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
        Some((
            condition("Progressing", "True", "NewReplicaSetAvailable", msg, ctx),
            false,
        ))
    } else if progressed {
        let msg = format!("ReplicaSet \"{new_name}\" is progressing.");
        Some((
            condition("Progressing", "True", "ReplicaSetUpdated", msg, ctx),
            true,
        ))
    } else if prev_reason != Some("NewReplicaSetAvailable") && since_update > deadline {
        let msg = format!("ReplicaSet \"{new_name}\" has timed out progressing.");
        Some((
            condition("Progressing", "False", "ProgressDeadlineExceeded", msg, ctx),
            false,
        ))
    } else {
        None
    };
    let progressing = match progressing {
        Some((cond, touch)) => Some(merge_condition(prev_progressing, cond, touch)),
        None => prev_progressing.cloned(),
    };
    let mut conditions = vec![available_cond];
    conditions.extend(progressing);
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(status_replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(avail),
        unavailable_replicas: Some((replicas - avail).max(0)),
        conditions: Some(conditions),
        ..Default::default()
    };
    ctx.set_status(key, &status);
}
