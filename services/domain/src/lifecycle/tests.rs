use super::*;
use crate::{
    deployment::{DeploymentStatus as D, ServiceAction as A, ServiceStatus as S},
    observed::WorkloadPhase,
    resources::ServiceRollout,
};

#[test]
fn display_name_changes_are_not_workload_changes() {
    let a = DeploymentSpec {
        image: "web:1".into(),
        ..Default::default()
    };
    let mut b = a.clone();
    b.service.display_name = "Web".into();
    assert!(a.same_workload(&b));
    b.image = "web:2".into();
    assert!(!a.same_workload(&b));
}

fn service(id: &str, source: Source, status: ServiceStatus, live: i64) -> Service {
    Service {
        name: ServiceName::parse(&format!(
            "tenants/t/projects/p/environments/e/services/{id}"
        ))
        .expect("name"),
        spec: ServiceSpec {
            source,
            ..Default::default()
        },
        rollout: ServiceRollout {
            status,
            live_deployment: live,
            ..Default::default()
        },
        meta: Meta {
            uid: String::new(),
            create_time: Timestamp(0),
            update_time: Timestamp(0),
            version: 1,
        },
    }
}

#[test]
fn an_environment_wide_action_touches_what_it_may_and_deploys_what_there_is() {
    let image = |i: &str| Source::Image(i.into());
    let running = service("web", image("web:1"), ServiceStatus::Deployed, 3);
    let stopped = service("cron", image("cron:1"), ServiceStatus::Stopped, 2);
    let never = service("new", image("new:1"), ServiceStatus::NotDeployed, 0);
    let services = [running.clone(), stopped.clone(), never.clone()];
    let names = |steps: Vec<(ServiceName, EnvironmentStep)>| {
        steps
            .into_iter()
            .map(|(n, s)| (n.service, s))
            .collect::<Vec<_>>()
    };
    // Stop and restart only what runs.
    assert_eq!(
        names(environment_steps(&services, ServiceAction::Stop).expect("steps")),
        vec![("web".to_owned(), EnvironmentStep::Stop)]
    );
    assert_eq!(
        names(environment_steps(&services, ServiceAction::Restart).expect("steps")),
        vec![("web".to_owned(), EnvironmentStep::Restart)]
    );
    // Deploy deploys every one as configured now.
    let deployed = names(environment_steps(&services, ServiceAction::Deploy).expect("steps"));
    assert_eq!(deployed.len(), 3);
    assert_eq!(
        deployed[0].1,
        EnvironmentStep::Deploy(Box::new(DeploymentSpec::of(&running).expect("spec")))
    );
    // One with nothing to deploy fails the whole action, naming it.
    let empty = service("empty", Source::Unset, ServiceStatus::NotDeployed, 0);
    let err = environment_steps(&[running, empty], ServiceAction::Deploy).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "service tenants/t/projects/p/environments/e/services/empty has no image to deploy"
    );
}

/// A service in `status` whose live deployment is `live` (0 for none), at generation 4.
fn at(status: ServiceStatus, live: i64, current: i64, stopped: bool) -> Service {
    let mut s = service("web", Source::Image("web:1".into()), status, live);
    s.rollout.generation = 4;
    s.rollout.current_deployment = current;
    s.rollout.stopped = stopped;
    s.rollout.message = "under way".into();
    s
}

fn deployment(number: i64, status: DeploymentStatus, image: &str) -> Deployment {
    let service = service("web", Source::Image(image.into()), S::Deployed, 0);
    Deployment {
        name: DeploymentName::new(&service.name, number),
        kind: A::Deploy,
        origin: String::new(),
        spec: DeploymentSpec {
            service: service.spec.clone(),
            image: image.into(),
        },
        status,
        reason: None,
        message: String::new(),
        generation: if status == D::Deploying { 4 } else { 0 },
        history: Vec::new(),
        actor: "ana".into(),
        end_time: None,
        meta: service.meta,
    }
}

fn spec(image: &str) -> DeploymentSpec {
    DeploymentSpec {
        service: ServiceSpec {
            source: Source::Image(image.into()),
            ..Default::default()
        },
        image: image.into(),
    }
}

/// What a deploy call should do, in a table row.
#[derive(Debug)]
enum Expect {
    Refused,
    Unchanged,
    Starts,
    Queued,
}

/// Deploy calls in every situation that matters: what runs, what is under way, whether the
/// spec changes anything.
#[test]
fn a_deploy_starts_queues_or_changes_nothing() {
    let live = deployment(3, D::Deployed, "web:1");
    let cases = [
        (
            at(S::NotDeployed, 0, 0, false),
            None,
            A::Deploy,
            "web:1",
            Expect::Starts,
        ),
        (
            at(S::Deployed, 3, 0, false),
            Some(&live),
            A::Deploy,
            "web:1",
            Expect::Unchanged,
        ),
        (
            at(S::Deployed, 3, 0, false),
            Some(&live),
            A::Deploy,
            "web:2",
            Expect::Starts,
        ),
        // A stopped service runs again even with the same spec.
        (
            at(S::Stopped, 3, 0, true),
            Some(&live),
            A::Redeploy,
            "web:1",
            Expect::Starts,
        ),
        // Under way: queued, even when the spec equals the live one.
        (
            at(S::Deploying, 3, 4, false),
            Some(&live),
            A::Deploy,
            "web:1",
            Expect::Queued,
        ),
        (
            at(S::Stopping, 3, 0, false),
            Some(&live),
            A::Rollback,
            "web:0",
            Expect::Queued,
        ),
        (
            at(S::NotDeployed, 0, 0, false),
            None,
            A::Redeploy,
            "web:1",
            Expect::Refused,
        ),
    ];
    for (service, live, action, image, expected) in cases {
        let status = service.rollout.status;
        let got = plan_deploy(&service, live, action, &spec(image), "d-2", "ana", 5);
        match (got, &expected) {
            (Err(e), Expect::Refused) => assert_eq!(e.status, status),
            (Ok(DeployPlan::Unchanged(event)), Expect::Unchanged) => {
                assert_eq!(event.reason, "NoChanges");
                assert!(
                    event.message.contains("deployment 3, which is live"),
                    "{event:?}"
                );
            }
            (Ok(DeployPlan::Create { event, start }), Expect::Starts | Expect::Queued) => {
                let (should_start, reason) = match expected {
                    Expect::Starts => (true, "DeploymentCreated"),
                    _ => (false, "DeploymentQueued"),
                };
                assert_eq!(start, should_start, "{status} {action:?}");
                assert_eq!(event.reason, reason);
                assert!(event.message.starts_with("Deployment 5 ("), "{event:?}");
                assert!(event.message.contains("by ana"), "{event:?}");
            }
            (got, expected) => {
                panic!("{status} {action:?} {image}: {got:?}, expected {expected:?}")
            }
        }
    }
    let Ok(DeployPlan::Create { event, .. }) = plan_deploy(
        &at(S::Deployed, 3, 0, false),
        Some(&live),
        A::Rollback,
        &spec("web:0"),
        "d-2",
        "ana",
        5,
    ) else {
        panic!("a rollback creates a deployment");
    };
    assert_eq!(event.message, "Deployment 5 (rolling back to d-2) by ana.");
}

#[test]
fn a_started_deployment_rolls_out_at_a_new_generation_or_builds_first() {
    let service = at(S::Deployed, 3, 0, true);
    let image = plan_start(&service, &deployment(5, D::Queued, "web:2")).expect("starts");
    let d = image.deployment.expect("deployment");
    let r = image.rollout.expect("rollout");
    assert_eq!((d.status, d.generation), (D::Deploying, 5));
    assert_eq!(
        (
            r.status,
            r.generation,
            r.current_deployment,
            r.live_deployment
        ),
        (S::Deploying, 5, 5, 3)
    );
    assert_eq!(r.stopped, Some(false), "a rollout runs the service again");
    assert!(image.environment_deployed);
    assert_eq!(image.publish, Some(Publish::Revision));

    let build = plan_start(&service, &deployment(5, D::Queued, "")).expect("starts");
    let d = build.deployment.expect("deployment");
    let r = build.rollout.expect("rollout");
    assert_eq!((d.status, d.generation), (D::Building, 0));
    assert_eq!(
        (r.status, r.generation, r.stopped),
        (S::Building, 4, None),
        "the workload waits for the image"
    );

    assert_eq!(
        plan_start(&service, &deployment(5, D::Deployed, "web:2")),
        None
    );
}

#[test]
fn stop_and_restart_move_the_generation_and_are_refused_while_busy() {
    let running = at(S::Deployed, 3, 0, false);
    let stop = plan_operation(&running, A::Stop, "ana").expect("stop");
    let r = stop.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.generation, r.stopped, r.restart),
        (S::Stopping, 5, Some(true), false)
    );
    assert_eq!(r.current_deployment, 0);
    let event = stop.event.expect("event");
    assert_eq!(event.reason, "Stopping");
    assert_eq!(
        event.message,
        "Stopping (scaling to zero) by ana; storage is kept."
    );

    let restart = plan_operation(&running, A::Restart, "ana").expect("restart");
    let r = restart.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.generation, r.stopped, r.restart),
        (S::Restarting, 5, None, true)
    );
    assert_eq!(restart.publish, Some(Publish::Revision));

    let busy = plan_operation(&at(S::Deploying, 3, 4, false), A::Stop, "ana").expect_err("busy");
    assert_eq!(busy.status, S::Deploying);
    assert!(plan_operation(&at(S::Stopped, 3, 0, true), A::Restart, "ana").is_err());
}

#[test]
fn a_cancel_rolls_back_ends_at_once_or_just_drops_a_queued_deployment() {
    // Under way with a live version: back to it, CANCELING until it serves again.
    let e = plan_cancel(
        &at(S::Deploying, 3, 5, false),
        &deployment(5, D::Deploying, "web:2"),
        "ana",
    )
    .expect("cancel");
    let r = e.rollout.expect("rollout");
    assert_eq!(e.deployment.expect("deployment").status, D::Canceling);
    assert_eq!(
        (r.status, r.current_deployment, r.generation),
        (S::Canceling, 5, 5)
    );
    assert!(!e.start_next);
    assert_eq!(
        e.event.expect("event").message,
        "Deployment 5: Canceled by ana; rolling back to deployment 3."
    );

    // Under way with nothing live: canceled at once, the queue moves on.
    let e = plan_cancel(
        &at(S::Building, 0, 5, false),
        &deployment(5, D::Building, ""),
        "ana",
    )
    .expect("cancel");
    assert_eq!(e.rollout.expect("rollout").status, S::Canceled);
    assert!(e.start_next);

    // Queued: only the deployment ends; the service and the agent are untouched.
    let e = plan_cancel(
        &at(S::Deploying, 3, 4, false),
        &deployment(6, D::Queued, "web:3"),
        "ana",
    )
    .expect("cancel");
    assert_eq!(e.deployment.expect("deployment").status, D::Canceled);
    assert_eq!((e.rollout, e.publish, e.start_next), (None, None, false));

    let done = plan_cancel(
        &at(S::Deployed, 3, 0, false),
        &deployment(3, D::Deployed, "web:1"),
        "ana",
    );
    assert_eq!(done, Err(NotCancelable(D::Deployed)));
}

#[test]
fn a_build_outcome_rolls_out_its_image_or_fails_and_lets_the_queue_move() {
    let service = at(S::Building, 3, 5, false);
    let building = deployment(5, D::Building, "");
    let outcome = |image: Option<&str>, deployment| BuildOutcome {
        service: service.name.clone(),
        deployment,
        image: image.map(Into::into),
        message: "exit 1".into(),
    };
    let built = plan_build(
        &service,
        Some(&building),
        &outcome(Some("reg/web@sha256:1"), 5),
    )
    .expect("current");
    let d = built.deployment.expect("deployment");
    assert_eq!((d.status, d.generation), (D::Deploying, 5));
    assert_eq!(d.spec.expect("spec").image, "reg/web@sha256:1");
    assert_eq!(built.rollout.expect("rollout").stopped, Some(false));
    assert_eq!(built.event.expect("event").reason, "DeploymentBuilt");
    assert!(!built.start_next);

    let failed = plan_build(&service, Some(&building), &outcome(None, 5)).expect("current");
    let d = failed.deployment.expect("deployment");
    assert_eq!(
        (d.status, d.reason),
        (D::BuildError, Some(FailureReason::BuildFailed))
    );
    assert!(
        d.message.contains("(exit 1); deployment 3 keeps serving."),
        "{}",
        d.message
    );
    let r = failed.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.generation, r.current_deployment),
        (S::BuildError, 4, 0)
    );
    assert!(failed.start_next);

    // A late report of another build, or one after the service moved on, ends nothing.
    assert_eq!(
        plan_build(&service, Some(&building), &outcome(None, 4)),
        None
    );
    assert_eq!(
        plan_build(
            &at(S::Deploying, 3, 5, false),
            Some(&building),
            &outcome(None, 5)
        ),
        None
    );
}

#[test]
fn a_report_at_the_operations_generation_ends_it() {
    let report = |generation, phase, reason| WorkloadStatus {
        service: at(S::Deployed, 0, 0, false).name,
        revision: 1,
        generation,
        observed_generation: generation,
        ready_replicas: 1,
        updated_replicas: 1,
        desired_replicas: 1,
        phase,
        message: "1/1 ready".into(),
        reason,
        report_time: Timestamp(0),
    };
    let deploying = at(S::Deploying, 3, 5, false);
    let current = deployment(5, D::Deploying, "web:2");
    let ok = plan_report(
        &deploying,
        Some(&current),
        &report(4, WorkloadPhase::Available, None),
    )
    .expect("ends");
    let r = ok.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.live_deployment, r.generation),
        (S::Deployed, 5, 4)
    );
    assert_eq!(
        ok.publish,
        Some(Publish::Watchers),
        "what runs did not change"
    );
    assert_eq!(ok.event.expect("event").reason, "DeploymentDeployed");
    assert!(ok.start_next);

    let oom = plan_report(
        &deploying,
        Some(&current),
        &report(4, WorkloadPhase::Failed, Some(FailureReason::OutOfMemory)),
    )
    .expect("ends");
    let d = oom.deployment.expect("deployment");
    assert_eq!(
        (d.status, d.reason),
        (D::DeploymentError, Some(FailureReason::OutOfMemory))
    );
    let r = oom.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.live_deployment, r.generation),
        (S::DeploymentError, 3, 5),
        "back to the live version"
    );
    assert_eq!(oom.publish, Some(Publish::Revision));

    // Other generations and progress end nothing.
    assert_eq!(
        plan_report(
            &deploying,
            Some(&current),
            &report(3, WorkloadPhase::Available, None)
        ),
        None
    );
    assert_eq!(
        plan_report(
            &deploying,
            Some(&current),
            &report(4, WorkloadPhase::Progressing, None)
        ),
        None
    );

    let restarted = plan_report(
        &at(S::Restarting, 3, 0, false),
        None,
        &report(4, WorkloadPhase::Available, None),
    )
    .expect("ends");
    let r = restarted.rollout.expect("rollout");
    assert_eq!((r.status, r.live_deployment), (S::Restarted, 3));
    assert_eq!(
        restarted.event.expect("event").message,
        "Restarted: 1/1 ready."
    );
}

#[test]
fn a_secret_change_restarts_what_runs_and_rides_along_with_what_is_under_way() {
    let running = plan_secret_change(&at(S::Deployed, 3, 0, false), "Secret KEY set by ana");
    let r = running.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.generation, r.restart),
        (S::Restarting, 5, true)
    );
    assert_eq!(
        running.event.expect("event").message,
        "Secret KEY set by ana; rolling restart so the pods see it."
    );

    let busy = plan_secret_change(&at(S::Deploying, 3, 5, false), "Secret KEY set by ana");
    let r = busy.rollout.expect("rollout");
    assert_eq!(
        (r.status, r.generation, r.message.as_str()),
        (S::Deploying, 5, "under way")
    );
    assert_eq!(busy.current_generation, Some((5, 5)));

    let idle = plan_secret_change(&at(S::Stopped, 3, 0, true), "Secret KEY deleted by ana");
    assert_eq!(idle.rollout, None);
    assert_eq!(
        idle.event.expect("event").message,
        "Secret KEY deleted by ana; it applies when the service next runs."
    );
}
