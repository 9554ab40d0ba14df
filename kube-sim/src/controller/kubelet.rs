//! The scheduler and kubelet of the one simulated node. Each step moves each container at
//! most one transition, so explicit stepping can observe every intermediate state:
//!
//! unscheduled → scheduled (`Pending`) → running (not ready) → ready; for pods that do not
//! restart (`Never`/`OnFailure`, i.e. Jobs) running → terminated `Completed` (`Succeeded`).
//!
//! Faults ([`crate::faults`]) divert that path: `ImagePull` waits in `ErrImagePull` then
//! `ImagePullBackOff` (and recovers if the image is changed); `Health` stays running and
//! unready (one `Unhealthy` event); `Oom`/`CrashLoop` terminate (`OOMKilled` 137 / `Error` 1)
//! into `CrashLoopBackOff` and restart after the kubelet's back-off (10 s doubling to 5 min)
//! of simulated time, raising `restartCount`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::{Ctx, Involved, events};
use crate::clock::seconds_between;
use crate::faults::{self, Fault};
use crate::fields;
use crate::resource::Resource;
use crate::store::Key;

/// The simulated node every pod is scheduled to.
const NODE: &str = "sim-node-1";
const HOST_IP: &str = "10.0.0.10";

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, pod) in ctx.list::<Pod>(Resource::Pod, None) {
        reconcile(ctx, &key, pod);
    }
}

/// Kubelet restart back-off after `restarts` restarts, in seconds.
fn backoff_secs(restarts: i32) -> i64 {
    let exp = u32::try_from(restarts.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
    (10_i64 << exp).min(300)
}

/// Events to record after the pod's status is written.
type Events = Vec<(bool, &'static str, String)>;

/// Identity used in kubelet messages: `name_namespace(uid)`.
struct PodId(String);

fn waiting(reason: &str, message: String) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(message),
        }),
        ..Default::default()
    }
}

fn start(
    ctx: &mut Ctx<'_>,
    mut status: ContainerStatus,
    c: &Container,
    restarted: bool,
    events: &mut Events,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    if restarted {
        events.push((
            false,
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        ));
    } else {
        events.push((false, "Pulling", format!("Pulling image \"{image}\"")));
        events.push((
            false,
            "Pulled",
            format!("Successfully pulled image \"{image}\""),
        ));
    }
    events.push((false, "Created", format!("Created container: {}", c.name)));
    events.push((false, "Started", format!("Started container {}", c.name)));
    let seq = ctx.store.next_seq();
    status.container_id = Some(format!(
        "containerd://{:016x}",
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    ));
    status.image_id = format!("{image}@sha256:{:064x}", u128::from(seq));
    status.state = Some(ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(ctx.time()),
        }),
        ..Default::default()
    });
    status.started = Some(true);
    status.ready = false;
    status
}

/// Ends the running instance with `reason`/`exit_code`; restarts (after back-off) unless the
/// restart policy forbids it.
fn terminate(
    ctx: &Ctx<'_>,
    mut status: ContainerStatus,
    reason: &str,
    exit_code: i32,
    restart: bool,
    pod: &PodId,
    events: &mut Events,
) -> ContainerStatus {
    let started_at = status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.clone());
    let terminated = ContainerStateTerminated {
        container_id: status.container_id.clone(),
        exit_code,
        reason: Some(reason.into()),
        started_at,
        finished_at: Some(ctx.time()),
        ..Default::default()
    };
    status.ready = false;
    status.started = Some(false);
    if restart {
        status.restart_count += 1;
        let name = status.name.clone();
        let secs = backoff_secs(status.restart_count);
        status.last_state = Some(ContainerState {
            terminated: Some(terminated),
            ..Default::default()
        });
        status.state = Some(waiting(
            "CrashLoopBackOff",
            format!(
                "back-off {secs}s restarting failed container={name} pod={}",
                pod.0
            ),
        ));
        events.push((
            true,
            "BackOff",
            format!(
                "Back-off restarting failed container {name} in pod {}",
                pod.0
            ),
        ));
    } else {
        status.state = Some(ContainerState {
            terminated: Some(terminated),
            ..Default::default()
        });
    }
    status
}

/// One transition of one container.
fn advance(
    ctx: &mut Ctx<'_>,
    c: &Container,
    prev: Option<ContainerStatus>,
    fault: Option<Fault>,
    policy: &str,
    pod: &PodId,
    events: &mut Events,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    let status = prev.unwrap_or_else(|| ContainerStatus {
        name: c.name.clone(),
        image: image.clone(),
        state: Some(waiting("ContainerCreating", String::new())),
        ..Default::default()
    });
    let state = status.state.clone().unwrap_or_default();
    let waiting_reason = state
        .waiting
        .as_ref()
        .and_then(|w| w.reason.clone())
        .unwrap_or_default();
    let pull_fails = fault == Some(Fault::ImagePull);
    if state.terminated.is_some() {
        return status;
    }
    if state.running.is_some() {
        let restart_on_failure = policy != "Never";
        return match fault {
            Some(Fault::Oom) => terminate(
                ctx,
                status,
                "OOMKilled",
                137,
                restart_on_failure,
                pod,
                events,
            ),
            Some(Fault::CrashLoop) => {
                terminate(ctx, status, "Error", 1, restart_on_failure, pod, events)
            }
            Some(Fault::Health | Fault::ImagePull) => status,
            None if policy == "Always" => ContainerStatus {
                ready: true,
                ..status
            },
            None => terminate(ctx, status, "Completed", 0, false, pod, events),
        };
    }
    match waiting_reason.as_str() {
        "CrashLoopBackOff" => {
            let finished = status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
            if seconds_between(finished, ctx.now) >= backoff_secs(status.restart_count) {
                start(ctx, status, c, true, events)
            } else {
                status
            }
        }
        "ErrImagePull" | "ImagePullBackOff" if pull_fails => {
            if waiting_reason == "ErrImagePull" {
                events.push((
                    false,
                    "BackOff",
                    format!("Back-off pulling image \"{image}\""),
                ));
                events.push((true, "Failed", "Error: ImagePullBackOff".into()));
            }
            ContainerStatus {
                state: Some(waiting(
                    "ImagePullBackOff",
                    format!("Back-off pulling image \"{image}\""),
                )),
                ..status
            }
        }
        _ if pull_fails => {
            events.push((false, "Pulling", format!("Pulling image \"{image}\"")));
            events.push((
                true,
                "Failed",
                format!(
                    "Failed to pull image \"{image}\": simulated pull failure (fault image-pull)"
                ),
            ));
            events.push((true, "Failed", "Error: ErrImagePull".into()));
            let message =
                format!("failed to pull and unpack image \"{image}\": simulated pull failure");
            ContainerStatus {
                state: Some(waiting("ErrImagePull", message)),
                ..status
            }
        }
        _ => start(ctx, status, c, false, events),
    }
}

fn pod_condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    prev: &[PodCondition],
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let kept = prev.iter().find(|c| c.type_ == type_ && c.status == status);
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(Into::into) },
        last_transition_time: Some(
            kept.and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone()),
        ),
        ..Default::default()
    }
}

fn reconcile(ctx: &mut Ctx<'_>, key: &Key, pod: Pod) {
    let Some(spec) = pod.spec.clone() else { return };
    let status = pod.status.clone().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some()
        || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
    {
        return;
    }
    let involved = Involved::new(Resource::Pod, &pod.metadata, "kubelet");
    if spec.node_name.as_deref().is_none_or(str::is_empty) {
        let now = ctx.time();
        ctx.update(key, |obj| {
            fields::set(obj, &["spec", "nodeName"], NODE.into());
            let cond = pod_condition("PodScheduled", true, None, &[], &now);
            fields::set(obj, &["status", "conditions"], json!([cond]));
        });
        let scheduler = Involved {
            component: "default-scheduler",
            ..involved
        };
        let msg = format!(
            "Successfully assigned {}/{} to {NODE}",
            key.namespace, key.name
        );
        ctx.event(&scheduler, false, "Scheduled", &msg);
        return;
    }
    let annotations: BTreeMap<String, String> =
        pod.metadata.annotations.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let pod_id = PodId(format!("{}_{}({})", key.name, key.namespace, involved.uid));
    let prev_statuses = status.container_statuses.clone().unwrap_or_default();
    let mut events = Events::new();
    let mut unhealthy = false;
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let fault = faults::for_container(&annotations, c.image.as_deref().unwrap_or_default())
                .or_else(|| faults::in_args(c.args.as_deref().unwrap_or_default()));
            let prev = prev_statuses.iter().find(|s| s.name == c.name).cloned();
            let next = advance(ctx, c, prev, fault, &policy, &pod_id, &mut events);
            unhealthy |= fault == Some(Fault::Health)
                && next.state.as_ref().is_some_and(|s| s.running.is_some());
            next
        })
        .collect();
    let all_terminated = containers
        .iter()
        .all(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()));
    let phase = if all_terminated {
        let ok = containers.iter().all(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0)
        });
        if ok { "Succeeded" } else { "Failed" }
    } else if containers
        .iter()
        .any(|c| c.started == Some(true) || c.restart_count > 0)
    {
        "Running"
    } else {
        "Pending"
    };
    let ready = !all_terminated && containers.iter().all(|c| c.ready);
    let now = ctx.time();
    let prev_conditions = status.conditions.clone().unwrap_or_default();
    let not_ready = if all_terminated {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let conditions = vec![
        pod_condition(
            "PodReadyToStartContainers",
            true,
            None,
            &prev_conditions,
            &now,
        ),
        pod_condition("Initialized", true, None, &prev_conditions, &now),
        pod_condition("Ready", ready, Some(not_ready), &prev_conditions, &now),
        pod_condition(
            "ContainersReady",
            ready,
            Some(not_ready),
            &prev_conditions,
            &now,
        ),
        pod_condition("PodScheduled", true, None, &prev_conditions, &now),
    ];
    let pod_ip = match status.pod_ip.clone() {
        Some(ip) => ip,
        None => {
            let n = ctx.store.next_seq();
            format!("10.244.{}.{}", (n / 250) % 256, n % 250 + 1)
        }
    };
    let new_status = PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        container_statuses: Some(containers),
        host_ip: Some(HOST_IP.into()),
        host_ips: Some(vec![HostIP { ip: HOST_IP.into() }]),
        pod_ip: Some(pod_ip.clone()),
        pod_ips: Some(vec![PodIP { ip: pod_ip }]),
        qos_class: status
            .qos_class
            .clone()
            .or_else(|| Some("BestEffort".into())),
        start_time: status.start_time.clone().or(Some(now)),
        ..Default::default()
    };
    ctx.set_status(key, &new_status);
    for (warning, reason, message) in events {
        ctx.event(&involved, warning, reason, &message);
    }
    if unhealthy && !events::exists(ctx, &key.namespace, &involved.uid, "Unhealthy") {
        let msg = "Readiness probe failed: HTTP probe failed with statuscode: 503 (fault health)";
        ctx.event(&involved, true, "Unhealthy", msg);
    }
}
