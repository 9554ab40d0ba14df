//! Why a rollout fails, read from its pods the way a person would read `kubectl describe`:
//! an image that cannot be pulled, a container killed for memory or crashing in a loop, or
//! one that runs but never passes its readiness check. Pure, so every case is tested.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use outpost_domain::deployment::FailureReason;

/// The first failure among the pods running `image` (the pods of the version being rolled
/// out; those of the previous version, still serving, are not its failures), with what the
/// cluster said. `None` while nothing has failed for sure.
pub fn classify(
    pods: &[Pod],
    image: &str,
    now: SystemTime,
    health_grace: Duration,
) -> Option<(FailureReason, String)> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.spec.as_ref().is_some_and(|s| {
                s.containers
                    .iter()
                    .any(|c| c.image.as_deref() == Some(image))
            })
        })
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .find_map(|c| container_failure(c, now, health_grace))
}

fn container_failure(
    c: &ContainerStatus,
    now: SystemTime,
    health_grace: Duration,
) -> Option<(FailureReason, String)> {
    let state = c.state.as_ref()?;
    if let Some(waiting) = &state.waiting {
        let detail = waiting.message.clone().unwrap_or_default();
        match waiting.reason.as_deref() {
            // The first pull error can be transient; the back-off means it was retried.
            Some("ImagePullBackOff" | "InvalidImageName") => {
                return Some((
                    FailureReason::ImagePullFailed,
                    with_detail("the image could not be pulled", &detail),
                ));
            }
            Some("CrashLoopBackOff") => {
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let oom = last.and_then(|t| t.reason.as_deref()) == Some("OOMKilled");
                let exit = last.map(|t| t.exit_code).unwrap_or_default();
                return Some(if oom {
                    (
                        FailureReason::OutOfMemory,
                        format!(
                            "container {} was killed for using more memory than its shape allows (exit code {exit})",
                            c.name
                        ),
                    )
                } else {
                    (
                        FailureReason::CrashLoop,
                        format!(
                            "container {} keeps exiting (exit code {exit}, {} restarts)",
                            c.name, c.restart_count
                        ),
                    )
                });
            }
            _ => {}
        }
    }
    let running_since = state.running.as_ref()?.started_at.as_ref()?;
    let started = SystemTime::from(running_since.0);
    let unready_for = now.duration_since(started).unwrap_or_default();
    (!c.ready && unready_for >= health_grace).then(|| {
        (
            FailureReason::HealthCheckFailed,
            format!(
                "container {} has run for {}s without passing its readiness check",
                c.name,
                unready_for.as_secs()
            ),
        )
    })
}

fn with_detail(what: &str, detail: &str) -> String {
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "image": image}]},
            "status": {"containerStatuses": [status]},
        }))
        .expect("pod")
    }

    fn at(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("positive"))
    }

    const GRACE: Duration = Duration::from_secs(30);

    fn check(status: serde_json::Value) -> Option<FailureReason> {
        classify(&[pod("web:2", status)], "web:2", at(1_000), GRACE).map(|(r, _)| r)
    }

    #[test]
    fn each_reason_is_read_from_the_container_state() {
        let waiting = |reason: &str| {
            json!({"name": "app", "image": "web:2", "imageID": "", "ready": false, "restartCount": 3,
                   "state": {"waiting": {"reason": reason, "message": "back-off"}},
                   "lastState": {"terminated": {"reason": if reason == "oom" { "OOMKilled" } else { "Error" }, "exitCode": 137}}})
        };
        assert_eq!(
            check(waiting("ImagePullBackOff")),
            Some(FailureReason::ImagePullFailed)
        );
        assert_eq!(
            check(waiting("ErrImagePull")),
            None,
            "one failed pull may be transient"
        );
        assert_eq!(
            check(waiting("CrashLoopBackOff")),
            Some(FailureReason::CrashLoop)
        );
        let mut oom = waiting("CrashLoopBackOff");
        oom["lastState"]["terminated"]["reason"] = json!("OOMKilled");
        assert_eq!(check(oom), Some(FailureReason::OutOfMemory));
        let running = |since: &str, ready: bool| {
            json!({"name": "app", "image": "web:2", "imageID": "", "ready": ready, "restartCount": 0,
                   "state": {"running": {"startedAt": since}}})
        };
        // 1970-01-01T00:16:40Z is t=1000.
        assert_eq!(
            check(running("1970-01-01T00:16:00Z", false)),
            Some(FailureReason::HealthCheckFailed)
        );
        assert_eq!(
            check(running("1970-01-01T00:16:30Z", false)),
            None,
            "within the grace"
        );
        assert_eq!(check(running("1970-01-01T00:00:00Z", true)), None, "ready");
    }

    #[test]
    fn pods_of_the_previous_version_are_not_this_rollouts_failures() {
        let crashing = json!({"name": "app", "image": "web:1", "imageID": "", "ready": false, "restartCount": 3,
                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
        assert_eq!(
            classify(&[pod("web:1", crashing)], "web:2", at(1_000), GRACE),
            None
        );
    }
}
