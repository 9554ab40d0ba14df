//! StatefulSets (ordered pods, claims kept across scale-to-zero and deletion) and Jobs (run to
//! completion, or fail past the backoff limit).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;

use crate::support::{Cluster, apply, ready_count};

fn statefulset(replicas: i32) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": "db" },
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": { "matchLabels": { "app": "db" } },
            "template": {
                "metadata": { "labels": { "app": "db" } },
                "spec": { "containers": [{ "name": "pg", "image": "postgres:16",
                    "volumeMounts": [{ "name": "data", "mountPath": "/var/lib/postgresql" }] }] },
            },
            "volumeClaimTemplates": [{
                "metadata": { "name": "data" },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "ceph-rbd",
                    "resources": { "requests": { "storage": "1Gi" } },
                },
            }],
        },
    }))
    .unwrap()
}

async fn claim_names(c: &Cluster) -> Vec<String> {
    let pvcs: Api<PersistentVolumeClaim> = c.api("default");
    pvcs.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
async fn statefulset_pods_start_in_order_and_claims_outlive_scale_to_zero_and_deletion() {
    let c = Cluster::new();
    let sets: Api<StatefulSet> = c.api("default");
    apply(&sets, &statefulset(2)).await;
    // Ordered start: db-1 does not exist until db-0 is ready.
    loop {
        let changes = c.sim.step().unwrap().changes;
        let pods = c.pods("default", "app=db").await;
        if let Some(db1) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("db-1"))
        {
            assert!(db1.metadata.name.is_some());
            let db0: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.name.as_deref() == Some("db-0"))
                .collect();
            assert_eq!(ready_count(&db0), 1, "db-1 created before db-0 was ready");
            break;
        }
        assert_ne!(changes, 0, "db-1 never appeared");
    }
    c.settle();
    let set = sets.get("db").await.unwrap();
    let status = set.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (2, Some(2)));
    assert_eq!(claim_names(&c).await, ["data-db-0", "data-db-1"]);
    let pvcs: Api<PersistentVolumeClaim> = c.api("default");
    let bound = pvcs.get("data-db-0").await.unwrap();
    assert_eq!(bound.status.unwrap().phase.as_deref(), Some("Bound"));
    let pod = c.api::<Pod>("default").get("db-0").await.unwrap();
    let volume = &pod.spec.unwrap().volumes.unwrap()[0];
    assert_eq!(
        volume.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-db-0"
    );

    apply(&sets, &statefulset(0)).await;
    c.settle();
    assert!(c.pods("default", "app=db").await.is_empty());
    assert_eq!(
        claim_names(&c).await,
        ["data-db-0", "data-db-1"],
        "claims kept when scaled to zero"
    );

    apply(&sets, &statefulset(1)).await;
    c.settle();
    assert_eq!(
        ready_count(&c.pods("default", "app=db").await),
        1,
        "db-0 comes back on its claim"
    );
    sets.delete("db", &DeleteParams::default()).await.unwrap();
    c.settle();
    assert!(c.pods("default", "app=db").await.is_empty());
    assert_eq!(
        claim_names(&c).await,
        ["data-db-0", "data-db-1"],
        "claims kept when the set is deleted"
    );
}

fn job(name: &str, image: &str, backoff_limit: i32) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name },
        "spec": {
            "backoffLimit": backoff_limit,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "migrate", "image": image }],
            } },
        },
    }))
    .unwrap()
}

fn job_condition(j: &Job, type_: &str) -> Option<String> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.reason.clone())
}

#[tokio::test]
async fn a_job_runs_a_pod_to_completion() {
    let c = Cluster::new();
    let jobs: Api<Job> = c.api("default");
    apply(&jobs, &job("migrate", "tool:v1", 6)).await;
    c.settle();
    let j = jobs.get("migrate").await.unwrap();
    assert!(job_condition(&j, "Complete").is_some(), "{:?}", j.status);
    let status = j.status.unwrap();
    assert_eq!(
        (status.succeeded, status.active, status.failed),
        (Some(1), Some(0), Some(0))
    );
    assert!(status.completion_time.is_some());
    let pods = c.pods("default", "job-name=migrate").await;
    assert_eq!(pods.len(), 1);
    assert_eq!(
        pods[0].status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
}

#[tokio::test]
async fn a_failing_job_stops_after_its_backoff_limit() {
    let c = Cluster::new();
    let jobs: Api<Job> = c.api("default");
    apply(&jobs, &job("migrate", "tool:fail-crash", 1)).await;
    c.settle();
    let j = jobs.get("migrate").await.unwrap();
    assert_eq!(
        job_condition(&j, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(j.status.unwrap().failed, Some(2));
    let pods = c.pods("default", "job-name=migrate").await;
    assert!(
        pods.iter()
            .all(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Failed"))
    );
}
