//! Deployments roll out like a cluster's: ReplicaSets per template, ready pods, status and
//! conditions, zero-downtime rolling updates, and the progress deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use outpost_kube_sim::{FAULT_ANNOTATION, Fault, SimConfig};
use serde_json::json;

use crate::support::{
    Cluster, apply, condition, deployment, deployment_with, ready_count, wait_for,
};

fn template_hash(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_deployment_becomes_available_with_a_complete_status() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 3)).await;
    assert!(
        c.pods("default", "app=web").await.is_empty(),
        "nothing moves before a step"
    );
    c.settle();
    let d = deploys.get("web").await.unwrap();
    let status = d.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    let pods = c.pods("default", "app=web").await;
    assert_eq!(ready_count(&pods), 3);
    let hash = template_hash(&pods[0]);
    let rss: Api<ReplicaSet> = c.api("default");
    let rs = rss.get(&format!("web-{hash}")).await.unwrap();
    assert_eq!(
        rs.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
    for p in &pods {
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    }
    let events: Api<Event> = c.api("default");
    let reasons: Vec<String> = events
        .list(
            &ListParams::default().fields("involvedObject.name=web,involvedObject.kind=Deployment"),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.contains(&"ScalingReplicaSet".to_string()),
        "{reasons:?}"
    );
    assert_eq!(c.settle(), 0, "a settled cluster stays settled");
}

#[tokio::test]
async fn a_rolling_update_with_max_unavailable_zero_never_drops_below_the_desired_ready_count() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 3)).await;
    c.settle();
    let old_hash = template_hash(&c.pods("default", "app=web").await[0]);
    apply(&deploys, &deployment("web", "web:v2", 3)).await;
    let mut steps = 0;
    loop {
        let changes = c.sim.step().unwrap().changes;
        let pods = c.pods("default", "app=web").await;
        assert!(
            ready_count(&pods) >= 3,
            "step {steps}: only {} ready",
            ready_count(&pods)
        );
        assert!(
            pods.len() <= 4,
            "step {steps}: {} pods exceed replicas + maxSurge",
            pods.len()
        );
        if changes == 0 {
            break;
        }
        steps += 1;
        assert!(steps < 200, "rollout did not finish");
    }
    let pods = c.pods("default", "app=web").await;
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter().all(|p| template_hash(p) != old_hash),
        "old pods remain"
    );
    let d = deploys.get("web").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().updated_replicas, Some(3));
    assert_eq!(
        d.metadata.generation,
        d.status.as_ref().unwrap().observed_generation
    );
    assert_eq!(
        condition(&d, "Progressing").unwrap().1,
        "NewReplicaSetAvailable"
    );
    let rss: Api<ReplicaSet> = c.api("default");
    let old = rss.get(&format!("web-{old_hash}")).await.unwrap();
    assert_eq!(
        old.spec.unwrap().replicas,
        Some(0),
        "the old ReplicaSet is kept, scaled to zero"
    );
}

#[tokio::test]
async fn an_unready_rollout_keeps_the_old_pods_serving_and_exceeds_its_progress_deadline() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    c.settle();
    let annotations = BTreeMap::from([(
        FAULT_ANNOTATION.to_string(),
        Fault::Health.annotation_value().to_string(),
    )]);
    let mut broken = deployment_with("web", "web:v2", 2, annotations);
    broken.spec.as_mut().unwrap().progress_deadline_seconds = Some(30);
    apply(&deploys, &broken).await;
    c.settle();
    let d = deploys.get("web").await.unwrap();
    assert_eq!(
        condition(&d, "Progressing").unwrap().0,
        "True",
        "still within the deadline"
    );
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(2));
    assert_eq!(
        d.status.as_ref().unwrap().updated_replicas,
        Some(1),
        "one surge pod, never ready"
    );
    assert_eq!(ready_count(&c.pods("default", "app=web").await), 2);

    c.sim.advance(Duration::from_secs(31));
    c.settle();
    let d = deploys.get("web").await.unwrap();
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("False".into(), "ProgressDeadlineExceeded".into()))
    );
    assert_eq!(
        condition(&d, "Available").unwrap().0,
        "True",
        "the old version keeps serving"
    );
    assert_eq!(ready_count(&c.pods("default", "app=web").await), 2);

    // Rolling back (a new deployment of the old spec) recovers.
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    c.settle();
    let d = deploys.get("web").await.unwrap();
    assert_eq!(
        condition(&d, "Progressing").unwrap(),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    let pods = c.pods("default", "app=web").await;
    assert_eq!((pods.len(), ready_count(&pods)), (2, 2));
}

#[tokio::test]
async fn scaling_changes_the_pod_count_without_a_new_replica_set() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 3)).await;
    c.settle();
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    // The scale subresource (`kubectl scale`) changes only spec.replicas.
    let patch = Patch::Merge(json!({"spec": {"replicas": 1}}));
    deploys
        .patch_scale("web", &PatchParams::default(), &patch)
        .await
        .unwrap();
    c.settle();
    assert_eq!(c.pods("default", "app=web").await.len(), 1);
    let rss: Api<ReplicaSet> = c.api("default");
    assert_eq!(
        rss.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let d = deploys.get("web").await.unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    assert_eq!(d.status.unwrap().replicas, Some(1));
}

#[tokio::test]
async fn timed_stepping_moves_the_cluster_on_its_own_until_shutdown() {
    let c = Cluster::with_config(SimConfig::timed(Duration::from_millis(5)));
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    wait_for(
        "the deployment to become available",
        Duration::from_secs(30),
        || {
            let deploys = deploys.clone();
            async move {
                let d = deploys.get("web").await.ok()?;
                (condition(&d, "Progressing")?.1 == "NewReplicaSetAvailable").then_some(())
            }
        },
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), c.sim.shutdown())
        .await
        .expect("the stepping task stops")
        .unwrap();
}
