//! With a state path, the cluster survives a restart of the simulator; a watch from before
//! the restart is told to relist (410), as after an etcd compaction.

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use outpost_kube_sim::{PersistError, Sim, SimConfig, SimError};

use crate::support::{Cluster, apply, deployment};

#[tokio::test]
async fn objects_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cluster.json");
    let config = SimConfig::explicit().with_state_path(&state);
    let c = Cluster::with_config(config.clone());
    c.namespace("team").await;
    let deploys: Api<Deployment> = c.api("team");
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    c.settle();
    let before = deploys.get("web").await.unwrap();
    let pods_before: Vec<_> = c
        .pods("team", "app=web")
        .await
        .into_iter()
        .map(|p| p.metadata.name)
        .collect();
    let old_rv = c.sim.resource_version();
    c.sim.shutdown().await.unwrap();
    drop(c);

    let c = Cluster::with_config(config);
    let deploys: Api<Deployment> = c.api("team");
    let after = deploys.get("web").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.status, before.status);
    let pods_after: Vec<_> = c
        .pods("team", "app=web")
        .await
        .into_iter()
        .map(|p| p.metadata.name)
        .collect();
    assert_eq!(pods_after, pods_before);
    assert_eq!(c.settle(), 0, "the restored cluster is already settled");

    let cms: Api<ConfigMap> = c.api("team");
    let stale = WatchParams::default().timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> = cms
        .watch(&stale, &(old_rv - 1).to_string())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(events.as_slice(), [WatchEvent::Error(e)] if e.code == 410),
        "{events:?}"
    );
    let list_rv: u64 = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        list_rv, old_rv,
        "resource versions continue from the saved state"
    );
}

#[tokio::test]
async fn an_unreadable_state_file_is_an_error_not_an_empty_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cluster.json");
    std::fs::write(&state, b"{ not json").unwrap();
    let err = Sim::start(SimConfig::explicit().with_state_path(&state)).unwrap_err();
    assert!(
        matches!(err, SimError::Persist(PersistError::Decode { .. })),
        "{err:?}"
    );
}
