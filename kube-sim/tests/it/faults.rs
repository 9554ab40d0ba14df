//! Each fault, by annotation and by image tag, produces its documented pod and deployment
//! state; logs tell the same story.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use outpost_kube_sim::{FAULT_ANNOTATION, Fault};

use crate::support::{Cluster, apply, condition, deployment, deployment_with, ready_count};

fn container(pod: &Pod) -> ContainerStatus {
    pod.status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .clone()
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    container(pod).state?.waiting?.reason
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .unwrap()
        .phase
        .clone()
        .unwrap_or_default()
}

/// Two ways to ask for each fault: the pod template annotation and the image tag.
fn faulty(fault: Fault, by_annotation: bool) -> Deployment {
    if by_annotation {
        let annotations = BTreeMap::from([(
            FAULT_ANNOTATION.to_string(),
            fault.annotation_value().to_string(),
        )]);
        deployment_with("web", "web:v1", 1, annotations)
    } else {
        deployment("web", &format!("web:v1-{}", fault.image_tag_marker()), 1)
    }
}

async fn pod_reasons(c: &Cluster, pod: &str) -> Vec<String> {
    let events: Api<Event> = c.api("default");
    events
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn every_fault_produces_its_documented_pod_state() {
    for by_annotation in [true, false] {
        for fault in Fault::ALL {
            let label = format!(
                "{fault:?} by {}",
                if by_annotation {
                    "annotation"
                } else {
                    "image tag"
                }
            );
            let c = Cluster::new();
            let deploys: Api<Deployment> = c.api("default");
            apply(&deploys, &faulty(fault, by_annotation)).await;
            c.settle();
            let pods = c.pods("default", "app=web").await;
            assert_eq!(pods.len(), 1, "{label}");
            let pod = &pods[0];
            let cs = container(pod);
            let name = pod.metadata.name.clone().unwrap();
            let reasons = pod_reasons(&c, &name).await;
            match fault {
                Fault::ImagePull => {
                    assert_eq!(phase(pod), "Pending", "{label}");
                    assert_eq!(
                        waiting_reason(pod).as_deref(),
                        Some("ImagePullBackOff"),
                        "{label}"
                    );
                    assert!(
                        reasons.contains(&"Failed".into()) && reasons.contains(&"BackOff".into()),
                        "{label}: {reasons:?}"
                    );
                }
                Fault::Health => {
                    assert_eq!(phase(pod), "Running", "{label}");
                    assert!(cs.state.unwrap().running.is_some() && !cs.ready, "{label}");
                    assert!(
                        reasons.contains(&"Unhealthy".into()),
                        "{label}: {reasons:?}"
                    );
                }
                Fault::Oom | Fault::CrashLoop => {
                    let (reason, code) = if fault == Fault::Oom {
                        ("OOMKilled", 137)
                    } else {
                        ("Error", 1)
                    };
                    assert_eq!(phase(pod), "Running", "{label}");
                    assert_eq!(
                        waiting_reason(pod).as_deref(),
                        Some("CrashLoopBackOff"),
                        "{label}"
                    );
                    let last = cs.last_state.unwrap().terminated.unwrap();
                    assert_eq!(
                        (last.reason.as_deref(), last.exit_code),
                        (Some(reason), code),
                        "{label}"
                    );
                    assert_eq!(cs.restart_count, 1, "{label}");
                    // Restarts need simulated time (the kubelet's back-off), and keep rising.
                    c.sim.advance(Duration::from_secs(10));
                    c.settle();
                    c.sim.advance(Duration::from_secs(20));
                    c.settle();
                    let again = &c.pods("default", "app=web").await[0];
                    assert_eq!(container(again).restart_count, 3, "{label}");
                    assert!(reasons.contains(&"BackOff".into()), "{label}: {reasons:?}");
                }
            }
            let d = deploys.get("web").await.unwrap();
            assert_eq!(
                ready_count(&c.pods("default", "app=web").await),
                0,
                "{label}"
            );
            assert_eq!(
                d.status.as_ref().unwrap().available_replicas,
                Some(0),
                "{label}"
            );
            assert_eq!(
                condition(&d, "Available").unwrap(),
                ("False".into(), "MinimumReplicasUnavailable".into()),
                "{label}"
            );
        }
    }
}

#[tokio::test]
async fn changing_a_failing_image_recovers_the_pull() {
    let c = Cluster::new();
    let pods: Api<Pod> = c.api("default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "solo" },
        "spec": { "containers": [{ "name": "app", "image": "web:fail-pull" }] },
    }))
    .unwrap();
    apply(&pods, &pod).await;
    c.settle();
    assert_eq!(
        waiting_reason(&pods.get("solo").await.unwrap()).as_deref(),
        Some("ImagePullBackOff")
    );
    let mut fixed = pod.clone();
    fixed.spec.as_mut().unwrap().containers[0].image = Some("web:v1".into());
    apply(&pods, &fixed).await;
    c.settle();
    let p = pods.get("solo").await.unwrap();
    assert_eq!((phase(&p), container(&p).ready), ("Running".into(), true));
}

#[tokio::test]
async fn pod_logs_tell_the_pods_story() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &faulty(Fault::Oom, false)).await;
    c.settle();
    let pods: Api<Pod> = c.api("default");
    let name = c.pods("default", "app=web").await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let logs = pods.logs(&name, &LogParams::default()).await.unwrap();
    assert!(logs.contains("out of memory"), "{logs}");
    let last = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(last.lines().count(), 1);
    let previous = pods
        .logs(
            &name,
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(previous, logs);

    apply(&deploys, &deployment("api", "api:v1", 1)).await;
    c.settle();
    let healthy = c.pods("default", "app=api").await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let err = pods
        .logs(
            &healthy,
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err:?}"
    );
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream(&healthy, &follow).await.unwrap().lines();
    let first = lines.next().await.unwrap().unwrap();
    assert!(first.contains("starting api:v1"), "{first}");
}

#[tokio::test]
async fn log_lines_carry_their_time_and_a_finished_containers_followed_log_ends() {
    let c = Cluster::new();
    let pods: Api<Pod> = c.api("default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "once" },
        "spec": { "restartPolicy": "Never", "containers": [{ "name": "app", "image": "job:v1" }] },
    }))
    .unwrap();
    apply(&pods, &pod).await;
    c.settle();
    let timed = LogParams {
        timestamps: true,
        ..LogParams::default()
    };
    let logs = pods.logs("once", &timed).await.unwrap();
    assert!(logs.contains("work complete"), "{logs}");
    for line in logs.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(
            time.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "{line}"
        );
        assert!(rest.contains(" INFO "), "{line}");
    }
    // Every line was written at start: a minute later, the last 30 seconds have none.
    c.sim.advance(Duration::from_secs(60));
    let recent = LogParams {
        since_seconds: Some(30),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("once", &recent).await.unwrap(), "");
    // Following a container that has finished gives its lines and ends, as the kubelet does.
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let stream = pods.log_stream("once", &follow).await.unwrap();
    let lines: Vec<String> = tokio::time::timeout(
        Duration::from_secs(10),
        stream.lines().map(Result::unwrap).collect(),
    )
    .await
    .expect("the followed log of a finished container ends");
    assert_eq!(lines.len(), logs.lines().count());
}
