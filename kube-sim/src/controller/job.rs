//! The Job controller: runs pods from the template until `completions` succeed (at most
//! `parallelism` at a time), or fails the Job once more than `backoffLimit` pods failed.
//! Reports `active`/`succeeded`/`failed`/`ready`, `startTime`, `completionTime` and the
//! terminal conditions (`SuccessCriteriaMet` + `Complete`, or `FailureTarget` + `Failed`
//! with reason `BackoffLimitExceeded`). `suspend`, indexed completion and pod failure
//! policies are not simulated.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobCondition, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;

use super::{
    Ctx, Involved, owner_ref, pod_active, pod_from_template, pod_ready, template_with_labels,
};
use crate::naming;
use crate::resource::Resource;
use crate::store::Key;

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, job) in ctx.list::<Job>(Resource::Job, None) {
        reconcile(ctx, &key, &job);
    }
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn condition(ctx: &Ctx<'_>, type_: &str, reason: &str, message: &str) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(ctx.time()),
        last_transition_time: Some(ctx.time()),
    }
}

fn reconcile(ctx: &mut Ctx<'_>, key: &Key, job: &Job) {
    if job.metadata.deletion_timestamp.is_some() || finished(job) {
        return;
    }
    let spec = job.spec.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods = ctx.owned::<Pod>(Resource::Pod, &key.namespace, &uid);
    let count = |pred: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|(_, p)| pred(p)).count()).unwrap_or(i32::MAX)
    };
    let succeeded = count(&|p| phase(p) == Some("Succeeded"));
    let failed = count(&|p| phase(p) == Some("Failed"));
    let mut active = count(&pod_active);
    let completions = spec.completions.unwrap_or(1);
    let involved = Involved::new(Resource::Job, &job.metadata, "job-controller");
    let mut status = job.status.clone().unwrap_or_default();
    let mut conditions = Vec::new();
    if failed > spec.backoff_limit.unwrap_or(6) {
        for (pod_key, _) in pods.iter().filter(|(_, p)| pod_active(p)) {
            ctx.delete(pod_key);
        }
        active = 0;
        let msg = "Job has reached the specified backoff limit";
        conditions.push(condition(ctx, "FailureTarget", "BackoffLimitExceeded", msg));
        conditions.push(condition(ctx, "Failed", "BackoffLimitExceeded", msg));
        ctx.event(&involved, true, "BackoffLimitExceeded", msg);
    } else if succeeded >= completions {
        conditions.push(condition(
            ctx,
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
        conditions.push(condition(
            ctx,
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
        status.completion_time = Some(ctx.time());
        ctx.event(&involved, false, "Completed", "Job completed");
    } else {
        let want = spec
            .parallelism
            .unwrap_or(1)
            .min(completions - succeeded)
            .max(0);
        if active < want {
            let Some(raw) = ctx.raw(key) else { return };
            let template = template_with_labels(&raw, &BTreeMap::new());
            let missing = want - active;
            for _ in 0..missing {
                let name = format!("{}-{}", key.name, naming::suffix(ctx.store.next_seq()));
                let pod =
                    pod_from_template(&template, &name, owner_ref(Resource::Job, &job.metadata));
                if ctx.create(Resource::Pod, &key.namespace, pod).is_some() {
                    active += 1;
                    ctx.event(
                        &involved,
                        false,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                }
            }
        }
    }
    status.start_time = status.start_time.or_else(|| Some(ctx.time()));
    status.active = Some(active);
    status.succeeded = Some(succeeded);
    status.failed = Some(failed);
    status.ready = Some(count(&|p| pod_active(p) && pod_ready(p)));
    status.terminating = Some(0);
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
    if !conditions.is_empty() {
        status.conditions = Some(conditions);
    }
    ctx.set_status(key, &status);
}
