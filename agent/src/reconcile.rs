//! The reconcile loop: each pass observes the cluster, carries out the [`crate::plan`] and
//! what drifted, and reports what changed, through the drivers and the local state.
//!
//! Level-triggered: every pass re-reads the stored desired state and the cluster, so a
//! restart, a missed wake-up or a repeated desired state changes nothing.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use outpost_domain::{
    desired::{Build, DesiredState, ManagedWorkload},
    managed::Observation,
    observed::{AgentReport, BuildOutcome, ManagedReport, WorkloadPhase},
    provider::Run,
};
use outpost_proto::agent::v1::ClusterReach;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    buckets::{Buckets, Stalls},
    drivers::{
        ceph::Ceph,
        kube::{
            KubeCluster, Repair,
            build::{self, BuildSettings},
            managed,
        },
    },
    plan::{
        Action, JobState, LiveKey, ManagedPhase, Observed, Summary, managed_observation, plan,
        status_of,
    },
    state::LocalState,
};

/// How often a pass runs even without a new desired state (to repair drift).
pub const RESYNC: Duration = Duration::from_secs(2);

/// How often a pass runs while a rollout or build is under way, so its end is reported
/// promptly (the cost: a few list calls per second, only while something moves).
pub const BUSY_RESYNC: Duration = Duration::from_millis(250);

/// Runs passes until `shutdown`: on every newly stored desired state (continuing the trace
/// of the change that produced it), and every [`BUSY_RESYNC`] while something is under way,
/// [`RESYNC`] otherwise.
pub async fn run(
    state: LocalState,
    cluster: KubeCluster,
    ceph: Option<Ceph>,
    mut desired_changed: watch::Receiver<(i64, String)>,
    outbox: Arc<Notify>,
    cluster_reach: watch::Sender<ClusterReach>,
    shutdown: CancellationToken,
) {
    let mut traceparent = String::new();
    let buckets = Buckets::new(ceph);
    let mut stalls = Stalls::new(cluster.rollout().progress_deadline);
    // Objects whose drift an apply could not repair, with the version it left them at.
    let mut stuck = BTreeMap::new();
    loop {
        let span = tracing::info_span!("reconcile", revision = tracing::field::Empty);
        outpost_telemetry::continue_trace(&span, &std::mem::take(&mut traceparent));
        let outcome = pass(&state, &cluster, &buckets, &mut stalls, &mut stuck, &outbox)
            .instrument(span)
            .await;
        note_reach(&cluster_reach, &outcome);
        // A pass that failed still shows the loop turning; only a stuck loop goes stale.
        state.mark_alive();
        let next = match outcome {
            Ok(true) => BUSY_RESYNC,
            Ok(false) => RESYNC,
            Err(e) => {
                tracing::warn!(error = %outpost_process::ErrorChain(e.as_ref()), "reconcile pass failed; retrying");
                RESYNC
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = desired_changed.changed() => {
                if changed.is_err() {
                    return;
                }
                traceparent = desired_changed.borrow_and_update().1.clone();
            }
            _ = tokio::time::sleep(next) => {}
        }
    }
}

/// Whether the cluster's API server answered the pass: a pass that got through, or failed
/// for any reason but an unanswered call, says it does. Only a change is sent on.
fn note_reach(reach: &watch::Sender<ClusterReach>, outcome: &anyhow::Result<bool>) {
    let unanswered = match outcome {
        Ok(_) => None,
        Err(e) => e
            .chain()
            .filter_map(|cause| cause.downcast_ref::<kube::Error>())
            .find(|k| crate::drivers::kube::is_unanswered(k)),
    };
    reach.send_if_modified(|current| match (unanswered, &current.unreachable_since) {
        (None, None) => false,
        (None, Some(_)) => {
            tracing::info!("the cluster's API server answers again");
            *current = ClusterReach::default();
            true
        }
        (Some(e), since) => {
            // A newer wording of the same failure is sent with the next change, not alone.
            let newly = since.is_none();
            current.error = outpost_process::ErrorChain(e).to_string();
            if newly {
                tracing::warn!(error = %current.error, "the cluster's API server does not answer; changes wait until it does");
                current.unreachable_since = Some(std::time::SystemTime::now().into());
            }
            newly
        }
    });
}

/// One pass; true when a rollout, build or managed-service operation is still under way.
async fn pass(
    state: &LocalState,
    cluster: &KubeCluster,
    buckets: &Buckets,
    stalls: &mut Stalls,
    stuck: &mut BTreeMap<LiveKey, String>,
    outbox: &Notify,
) -> anyhow::Result<bool> {
    // Nothing stored yet: do nothing (and in particular, delete nothing).
    let Some(desired) = state.desired().await? else {
        return Ok(false);
    };
    let observed = cluster.observe().await?;
    // Outcomes known now are reported before anything is applied, so no apply, however
    // slow, holds back the report of a rollout that already ended.
    report_workloads(state, cluster, &desired, &observed, outbox).await?;
    // Forget what is gone, so the record of repairs that did not take stays bounded.
    stuck.retain(|key, _| observed.live.contains_key(key));
    let mut actions = plan(&desired, &observed);
    let repairs = cluster.drifted(&desired, &observed, &actions, stuck);
    actions.extend(repairs.iter().map(|r| r.action.clone()));
    let mut refused = execute_all(cluster, desired.revision, &actions).await?;
    // A repair the cluster refuses (a claim someone grew cannot shrink back) is said as not
    // repaired; the service itself does not fail for it.
    refused.retain(|(namespace, name), _| {
        !repairs.iter().any(|r| {
            matches!(&r.action, Action::ApplyManaged(m) if &m.namespace == namespace && &m.name == name)
        })
    });
    recheck_secrets(state, cluster, &desired, &actions, outbox).await?;
    let observed = if actions.is_empty() {
        observed
    } else {
        cluster.observe().await?
    };
    note_repairs(state, cluster, &desired, &observed, &repairs, stuck, outbox).await?;
    let mut busy = report_workloads(state, cluster, &desired, &observed, outbox).await?;
    for m in &desired.managed {
        let refusal = refused.get(&(m.namespace.clone(), m.name.clone()));
        busy |= report_managed(state, m, &observed, refusal, buckets, stalls, outbox).await?;
    }
    buckets.keep_only(|service| {
        desired
            .managed
            .iter()
            .any(|m| m.service.to_string() == service)
    });
    stalls.keep_only(|service, generation| {
        desired
            .managed
            .iter()
            .any(|m| m.generation == generation && m.service.to_string() == service)
    });
    Ok(busy)
}

/// Reports what changed of each workload's rollout and each build in `observed`; true while
/// one is under way. Only a change is reported, so calling it twice in a pass costs a read of
/// the local state per workload.
async fn report_workloads(
    state: &LocalState,
    cluster: &KubeCluster,
    desired: &DesiredState,
    observed: &Observed,
    outbox: &Notify,
) -> anyhow::Result<bool> {
    let mut busy = false;
    let now = outpost_domain::Timestamp::now();
    for w in &desired.workloads {
        let status = status_of(
            w,
            observed
                .workloads
                .get(&(w.namespace.clone(), w.name.clone())),
            desired.revision,
            now,
        );
        busy |= status.phase == WorkloadPhase::Progressing;
        let service = w.service.to_string();
        let summary = Summary::Workload {
            phase: status.phase,
            observed_generation: status.observed_generation,
            ready_replicas: status.ready_replicas,
            generation: status.generation,
        };
        let last = state.reported(&service).await?;
        if last == Some(summary) {
            continue;
        }
        let mut entries = Vec::new();
        if last.map(|l| l.phase()) != Some(summary.phase()) {
            entries.push(AgentReport::Event {
                resource: service.clone(),
                reason: format!("Workload{}", status.phase),
                message: format!("{}: {}.", status.phase, status.message),
            });
        }
        entries.push(AgentReport::Status(status));
        state.report(&service, summary, &entries).await?;
        outbox.notify_one();
    }
    for b in &desired.builds {
        let job = observed.jobs.get(&(b.namespace.clone(), b.job_name()));
        let Some(outcome) = build_outcome(b, job, cluster.build_settings()) else {
            busy = true;
            continue;
        };
        // Reported once per build: the key names the deployment.
        let key = format!("{}/deployments/{}", b.service, b.deployment);
        if state.reported(&key).await?.is_some() {
            continue;
        }
        let succeeded = outcome.image.is_some();
        let event = AgentReport::Event {
            resource: b.service.to_string(),
            reason: if succeeded {
                "BuildSucceeded"
            } else {
                "BuildFailed"
            }
            .into(),
            message: format!("Build of deployment {}: {}", b.deployment, outcome.message),
        };
        state
            .report(
                &key,
                Summary::BuildFinished,
                &[event, AgentReport::Build(outcome)],
            )
            .await?;
        outbox.notify_one();
    }
    Ok(busy)
}

/// At most this many changes are sent to the API server at once.
const APPLY_CONCURRENCY: usize = 16;

/// Carries out `actions`, independent ones concurrently (at most [`APPLY_CONCURRENCY`] at
/// once): namespaces first, then everything in them, then namespaces that go. A failure
/// stays with its object and is tried again next pass, while the others go on; only an API
/// server that does not answer stops the pass. Returns the managed services the cluster
/// refused (a claim that cannot grow on its storage class, say), with the cluster's words:
/// those fail, for repeating cannot fix them.
async fn execute_all<'a>(
    cluster: &'a KubeCluster,
    revision: i64,
    actions: &'a [Action],
) -> anyhow::Result<BTreeMap<(String, String), String>> {
    let stage = |a: &Action| match a {
        Action::ApplyNamespace(_) => 0,
        Action::DeleteNamespace(_) => 2,
        _ => 1,
    };
    let mut refused = BTreeMap::new();
    for step in 0..3 {
        let batch: Vec<_> = actions
            .iter()
            .filter(|a| stage(a) == step)
            .map(|action| execute_one(cluster, revision, action))
            .collect();
        let outcomes = at_most(APPLY_CONCURRENCY, batch).await;
        let mut unanswered = None;
        for (action, outcome) in outcomes {
            match (outcome, action) {
                (Ok(()), _) => {}
                (Err(kube::Error::Api(status)), Action::ApplyManaged(m))
                    if is_refusal(status.code) =>
                {
                    tracing::warn!(%action, reason = %status.message, "the cluster refused a managed service");
                    refused.insert((m.namespace.clone(), m.name.clone()), status.message);
                }
                (Err(e), _) if crate::drivers::kube::is_unanswered(&e) => unanswered = Some(e),
                (Err(e), _) => {
                    tracing::warn!(%action, error = %outpost_process::ErrorChain(&e), "a change failed; it is tried again next pass");
                }
            }
        }
        if let Some(e) = unanswered {
            return Err(e.into());
        }
    }
    Ok(refused)
}

/// Runs `tasks`, at most `limit` at once; their outputs in the order they end.
async fn at_most<F: Future>(limit: usize, tasks: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures::StreamExt as _;
    // A plain loop, over futures made before it: stream combinators' closures, and
    // iterator adapters' held across an await, are not general enough for a spawned task.
    let mut tasks = tasks.into_iter();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut outputs = Vec::new();
    loop {
        while running.len() < limit {
            let Some(task) = tasks.next() else { break };
            running.push(task);
        }
        match running.next().await {
            Some(output) => outputs.push(output),
            None => return outputs,
        }
    }
}

/// Applies again the Secrets due for it (see [`crate::drivers::kube::secrets`]), at most
/// [`APPLY_CONCURRENCY`] at once, and reports each one someone had changed, now restored.
/// A Secret the cluster refuses now is tried again next pass.
async fn recheck_secrets(
    state: &LocalState,
    cluster: &KubeCluster,
    desired: &DesiredState,
    planned: &[Action],
    outbox: &Notify,
) -> anyhow::Result<()> {
    let due = cluster.secrets_due(desired, planned);
    let reapplies: Vec<_> = due.iter().map(|d| reapply(cluster, d)).collect();
    let outcomes = at_most(APPLY_CONCURRENCY, reapplies).await;
    let mut events = Vec::new();
    for (due, outcome) in outcomes {
        let name = due.secret.metadata.name.as_deref().unwrap_or_default();
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                let message = crate::drivers::kube::secrets::restored(name);
                tracing::info!(resource = %due.resource, %message, "drift repaired");
                events.push(AgentReport::Event {
                    resource: due.resource.clone(),
                    reason: "DriftRepaired".into(),
                    message,
                });
            }
            Err(e) if crate::drivers::kube::is_unanswered(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(secret = name, namespace = %due.namespace, error = %outpost_process::ErrorChain(&e), "cannot apply a Secret again; tried again next pass");
            }
        }
    }
    if !events.is_empty() {
        state.queue(&events).await?;
        outbox.notify_one();
    }
    Ok(())
}

async fn reapply<'a>(
    cluster: &KubeCluster,
    due: &'a crate::drivers::kube::secrets::Due,
) -> (
    &'a crate::drivers::kube::secrets::Due,
    Result<bool, kube::Error>,
) {
    (due, cluster.reapply_secret(due).await)
}

async fn execute_one<'a>(
    cluster: &'a KubeCluster,
    revision: i64,
    action: &'a Action,
) -> (&'a Action, Result<(), kube::Error>) {
    tracing::info!(revision, %action, "applying");
    (action, cluster.execute(action).await)
}

/// Reports each repair as an event on its resource, once applied; a repair that did not take
/// (a field another manager holds that an apply cannot take back) is reported as such and
/// not tried again until its object changes.
async fn note_repairs(
    state: &LocalState,
    cluster: &KubeCluster,
    desired: &DesiredState,
    observed: &Observed,
    repairs: &[Repair],
    stuck: &mut BTreeMap<LiveKey, String>,
    outbox: &Notify,
) -> anyhow::Result<()> {
    if repairs.is_empty() {
        return Ok(());
    }
    let still = cluster.drifted(desired, observed, &[], &BTreeMap::new());
    let mut events = Vec::new();
    for repair in repairs {
        let failed = still.iter().find(|s| s.key == repair.key);
        let (reason, message) = match failed {
            None => {
                stuck.remove(&repair.key);
                tracing::info!(resource = %repair.resource, change = %repair.message(), "drift repaired");
                ("DriftRepaired", repair.message())
            }
            Some(again) => {
                if let Some(live) = observed.live.get(&again.key) {
                    stuck.insert(again.key.clone(), live.resource_version.clone());
                }
                let message = format!(
                    "{} {}: {} changed outside Outpost and could not be restored.",
                    repair.key.0, repair.key.2, again.changed
                );
                tracing::warn!(resource = %repair.resource, %message, "drift not repaired");
                ("DriftNotRepaired", message)
            }
        };
        events.push(AgentReport::Event {
            resource: repair.resource.clone(),
            reason: reason.into(),
            message,
        });
    }
    state.queue(&events).await?;
    outbox.notify_one();
    Ok(())
}

/// Whether an API status code is the cluster refusing the request itself (invalid,
/// forbidden, immutable), which repeating it cannot fix; not a missing object, a conflict or
/// throttling, which a later pass can get past.
fn is_refusal(code: u16) -> bool {
    (400..500).contains(&code) && !matches!(code, 404 | 409 | 429)
}

/// Observes managed service `m` (converging it first if it is a bucket) and reports what
/// changed; true while it is under way. An operation without headway for the progress
/// deadline fails, so nothing waits forever on a claim that never binds or a Ceph that
/// never answers.
async fn report_managed(
    state: &LocalState,
    m: &ManagedWorkload,
    observed: &Observed,
    refusal: Option<&String>,
    buckets: &Buckets,
    stalls: &mut Stalls,
    outbox: &Notify,
) -> anyhow::Result<bool> {
    let key = m.service.to_string();
    let last = state.reported(&key).await?;
    let (observation, message, details) = match &m.run {
        Run::Stateful(run) => {
            let (observation, message) = match refusal {
                Some(why) => {
                    let why = format!("the cluster refused it: {why}");
                    (Observation::Failed(why.clone()), why)
                }
                None => managed_observation(m, observed),
            };
            let mut details = m.details.clone();
            details.insert("host".into(), managed::host(m).into());
            details.insert("port".into(), run.port.into());
            (observation, message, details)
        }
        Run::Bucket(run) => {
            // Converged once per generation: a final report for it means done.
            let settled = matches!(last, Some(Summary::Managed { phase, generation })
                if phase != ManagedPhase::Progressing && generation == m.generation);
            if settled {
                repair_bucket(state, m, run, buckets, outbox).await?;
                return Ok(false);
            }
            let done = buckets.converge(m, run).await;
            (done.observation, done.message, done.details)
        }
    };
    let observation = match observation {
        Observation::Progressing => match stalls.overdue(&key, m.generation, &message) {
            Some(why) => Observation::Failed(why),
            None => Observation::Progressing,
        },
        other => {
            stalls.done(&key, m.generation);
            other
        }
    };
    let busy = observation == Observation::Progressing;
    let summary = Summary::Managed {
        phase: ManagedPhase::from(&observation),
        generation: m.generation,
    };
    if last == Some(summary) {
        return Ok(busy);
    }
    let mut entries = Vec::new();
    if last.map(|l| l.phase()) != Some(summary.phase()) {
        entries.push(AgentReport::Event {
            resource: key.clone(),
            reason: format!("Managed{}", summary.phase()),
            message: format!("{}: {message}.", summary.phase()),
        });
    }
    entries.push(AgentReport::Managed(ManagedReport {
        service: m.service.clone(),
        generation: m.generation,
        observation,
        message,
        details,
    }));
    state.report(&key, summary, &entries).await?;
    outbox.notify_one();
    Ok(busy)
}

/// Restores what someone changed in Ceph behind the agent's back of ready bucket `m`, with
/// an event saying what; Ceph failing now is tried again at the next comparison.
async fn repair_bucket(
    state: &LocalState,
    m: &ManagedWorkload,
    run: &outpost_domain::provider::BucketRun,
    buckets: &Buckets,
    outbox: &Notify,
) -> anyhow::Result<()> {
    let changed = match buckets.repair(m, run, crate::plan::RECHECK).await {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!(bucket = %m.name, error = %outpost_process::ErrorChain(&e), "cannot compare a bucket with Ceph now");
            return Ok(());
        }
    };
    if changed.is_empty() {
        return Ok(());
    }
    let message = format!(
        "Bucket {}: {} changed outside Outpost; restored.",
        m.name,
        changed.join(" and ")
    );
    tracing::info!(resource = %m.service, %message, "drift repaired");
    state
        .queue(&[AgentReport::Event {
            resource: m.service.to_string(),
            reason: "DriftRepaired".into(),
            message,
        }])
        .await?;
    outbox.notify_one();
    Ok(())
}

/// What to report about build `b` whose Job is `job`: nothing while it runs.
pub fn build_outcome(
    b: &Build,
    job: Option<&JobState>,
    settings: &BuildSettings,
) -> Option<BuildOutcome> {
    let (image, message) = match job? {
        JobState::Running => return None,
        JobState::Succeeded => {
            let image = build::image(b, settings);
            (Some(image.clone()), format!("pushed {image}"))
        }
        JobState::Failed(why) => (None, why.clone()),
    };
    Some(BuildOutcome {
        service: b.service.clone(),
        deployment: b.deployment,
        image,
        message,
    })
}

#[cfg(test)]
mod pass_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_a_retry_cannot_fix_count_as_refused() {
        for code in [400, 403, 422] {
            assert!(is_refusal(code), "{code}");
        }
        for code in [404, 409, 429, 500, 503] {
            assert!(!is_refusal(code), "{code}");
        }
    }
}
