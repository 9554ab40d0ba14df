use super::*;
use proptest::prelude::*;

use DeploymentStatus as D;
use ServiceAction as A;
use ServiceStatus as S;

/// Every service status × every action × live or not, against the table of DESIGN §5.
#[test]
fn every_action_in_every_status() {
    for status in S::ALL {
        for live in [false, true] {
            for action in A::ALL {
                let got = decide(status, live, action);
                let expected = match action {
                    A::Deploy | A::Rollback | A::Promote if status.in_progress() => {
                        Some(Decision::QueueDeployment)
                    }
                    A::Deploy | A::Rollback | A::Promote => Some(Decision::StartDeployment),
                    A::Redeploy if status == S::NotDeployed => None,
                    A::Redeploy if status.in_progress() => Some(Decision::QueueDeployment),
                    A::Redeploy => Some(Decision::StartDeployment),
                    A::Stop | A::Restart
                        if status.in_progress() || status == S::Stopped || !live =>
                    {
                        None
                    }
                    A::Stop => Some(Decision::Stop),
                    A::Restart => Some(Decision::Restart),
                };
                match (got, expected) {
                    (Ok(d), Some(e)) => assert_eq!(d, e, "{status} live={live} {action:?}"),
                    (Err(e), None) => {
                        assert_eq!((e.status, e.action), (status, action));
                        let text = e.to_string();
                        assert!(text.contains(status.as_str()), "names the status: {text}");
                    }
                    (got, expected) => {
                        panic!(
                            "{status} live={live} {action:?}: got {got:?}, expected {expected:?}"
                        )
                    }
                }
            }
        }
    }
}

#[test]
fn only_queued_building_and_deploying_deployments_can_be_canceled() {
    for status in D::ALL {
        let allowed = matches!(status, D::Queued | D::Building | D::Deploying);
        match check_cancel(status) {
            Ok(()) => assert!(allowed, "{status}"),
            Err(e) => {
                assert!(!allowed, "{status}");
                assert!(e.to_string().contains(status.as_str()));
            }
        }
    }
}

fn all_events() -> Vec<DeploymentEvent> {
    use DeploymentEvent as E;
    vec![
        E::Started { needs_build: true },
        E::Started { needs_build: false },
        E::Built,
        E::BuildFailed,
        E::RolledOut,
        E::RolloutFailed,
        E::CancelRequested { rollback: true },
        E::CancelRequested { rollback: false },
    ]
}

/// Every status × every event: the exact transition table.
#[test]
fn every_event_in_every_status() {
    use DeploymentEvent as E;
    for status in D::ALL {
        for event in all_events() {
            let expected = match (status, event) {
                (D::Queued, E::Started { needs_build: true }) => Some(D::Building),
                (D::Queued, E::Started { needs_build: false }) => Some(D::Deploying),
                (D::Building, E::Built) => Some(D::Deploying),
                (D::Building, E::BuildFailed) => Some(D::BuildError),
                (D::Deploying, E::RolledOut) => Some(D::Deployed),
                (D::Deploying, E::RolloutFailed) => Some(D::DeploymentError),
                (D::Queued, E::CancelRequested { .. }) => Some(D::Canceled),
                (D::Building | D::Deploying, E::CancelRequested { rollback: true }) => {
                    Some(D::Canceling)
                }
                (D::Building | D::Deploying, E::CancelRequested { rollback: false }) => {
                    Some(D::Canceled)
                }
                (D::Canceling, E::RolledOut | E::RolloutFailed) => Some(D::Canceled),
                _ => None,
            };
            assert_eq!(status.next(event), expected, "{status} + {event:?}");
        }
    }
}

#[test]
fn spellings_round_trip() {
    for s in D::ALL {
        assert_eq!(D::parse(s.as_str()), Some(s));
    }
    for s in S::ALL {
        assert_eq!(S::parse(s.as_str()), Some(s));
    }
    for r in FailureReason::ALL {
        assert_eq!(FailureReason::parse(r.as_str()), Some(r));
        assert!(!r.explain().is_empty());
    }
    assert_eq!(D::parse("deployed"), None);
}

#[test]
fn reports_end_only_the_operation_at_their_generation() {
    let ok = WorkloadOutcome::Available;
    let oom = WorkloadOutcome::Failed(FailureReason::OutOfMemory);
    assert_eq!(
        on_workload(S::Deploying, 5, 4, &ok),
        None,
        "older generation"
    );
    assert_eq!(
        on_workload(S::Deploying, 5, 5, &WorkloadOutcome::Progressing),
        None
    );
    assert_eq!(
        on_workload(S::Deploying, 5, 5, &ok),
        Some(Completion::Deployment(
            DeploymentEvent::RolledOut,
            S::Deployed
        ))
    );
    assert_eq!(
        on_workload(S::Deploying, 5, 5, &oom),
        Some(Completion::Deployment(
            DeploymentEvent::RolloutFailed,
            S::DeploymentError
        ))
    );
    assert_eq!(
        on_workload(S::Stopping, 5, 5, &ok),
        Some(Completion::Service(S::Stopped))
    );
    assert_eq!(
        on_workload(S::Restarting, 5, 5, &oom),
        Some(Completion::Service(S::RestartError))
    );
    for settled in S::ALL.into_iter().filter(|s| !s.in_progress()) {
        assert_eq!(on_workload(settled, 5, 5, &ok), None, "{settled}");
        assert_eq!(on_workload(settled, 5, 5, &oom), None, "{settled}");
    }
}

proptest! {
    /// Whatever events arrive, in whatever order and however often: a final status never
    /// changes, and a deployment only ever reaches a final status through its table.
    #[test]
    fn final_statuses_are_final(events in prop::collection::vec(0usize..8, 0..40)) {
        let events_table = all_events();
        let mut status = D::Queued;
        for i in events {
            let before = status;
            if let Some(next) = status.next(events_table[i]) {
                prop_assert!(!before.is_final(), "{before} changed to {next}");
                status = next;
            }
        }
        prop_assert!(D::ALL.contains(&status));
    }
}

#[test]
fn environment_status_is_derived_from_its_services() {
    use EnvironmentStatus as E;
    assert_eq!(E::of(&[]), E::Empty);
    assert_eq!(E::of(&[S::NotDeployed, S::NotDeployed]), E::NotDeployed);
    assert_eq!(E::of(&[S::Deployed, S::Queued, S::Deploying]), E::Queued);
    assert_eq!(E::of(&[S::DeploymentError, S::Restarting]), E::Restarting);
    assert_eq!(E::of(&[S::Deployed, S::DeploymentError]), E::Error);
    assert_eq!(E::of(&[S::Stopped, S::NotDeployed]), E::Stopped);
    assert_eq!(
        E::of(&[S::Deployed, S::Restarted, S::Canceled, S::NotDeployed]),
        E::Deployed
    );
    // Every combination of two statuses gives a status, settled exactly when neither
    // service has an operation under way.
    for a in S::ALL {
        for b in S::ALL {
            let e = E::of(&[a, b]);
            assert_eq!(
                e.is_settled(),
                !a.in_progress() && !b.in_progress(),
                "{a} {b} → {e:?}"
            );
        }
    }
}
