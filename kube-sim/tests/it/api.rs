//! The API verbs through a real `kube::Client`: apply/get/list/watch/delete/status, selector
//! forms, generation vs resourceVersion, and the errors a real server returns.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::{Cluster, MANAGER, apply, deployment};

fn config_map(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels },
        "data": data,
    }))
    .unwrap()
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn list_filters_by_every_label_selector_form_and_field_selector() {
    let c = Cluster::new();
    c.namespace("team").await;
    let cms: Api<ConfigMap> = c.api("team");
    for (name, labels) in [
        ("a", &[("app", "web"), ("env", "prod")][..]),
        ("b", &[("app", "web"), ("env", "dev")][..]),
        ("c", &[("app", "db")][..]),
    ] {
        apply(&cms, &config_map(name, labels, &[])).await;
    }
    let cases = [
        ("app=web,env=prod", vec!["a"]),
        ("app=web", vec!["a", "b"]),
        ("env!=prod", vec!["b", "c"]),
        ("env in (dev,qa)", vec!["b"]),
        ("env notin (dev)", vec!["a", "c"]),
        ("env", vec!["a", "b"]),
        ("!env", vec!["c"]),
    ];
    for (selector, want) in cases {
        let got = cms
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(&got.items), want, "{selector}");
    }
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(&by_name.items), ["b"]);
    let bad = cms
        .list(&ListParams::default().labels("env in dev"))
        .await
        .unwrap_err();
    assert_eq!(api_code(bad).0, 400);
    // Paging: a limit of 2 returns a continue token that yields the rest.
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first.items), ["a", "b"]);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&rest.items), ["c"]);
    assert!(rest.metadata.continue_.as_deref().is_none_or(str::is_empty));
}

#[tokio::test]
async fn generation_follows_spec_changes_and_resource_version_every_change() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    let created = apply(&deploys, &deployment("web", "web:v1", 1)).await;
    let meta = |d: &Deployment| {
        (
            d.metadata.generation,
            d.metadata.resource_version.clone().unwrap(),
        )
    };
    let (gen1, rv1) = meta(&created);
    assert_eq!(gen1, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let same = apply(&deploys, &deployment("web", "web:v1", 1)).await;
    assert_eq!(
        meta(&same),
        (gen1, rv1.clone()),
        "an identical apply is a no-op"
    );

    let mut relabelled = deployment("web", "web:v1", 1);
    relabelled
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "front".into());
    let relabelled = apply(&deploys, &relabelled).await;
    assert_eq!(
        relabelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    assert_ne!(relabelled.metadata.resource_version.as_ref(), Some(&rv1));

    let mut scaled = deployment("web", "web:v1", 3);
    scaled
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "front".into());
    let scaled = apply(&deploys, &scaled).await;
    assert_eq!(scaled.metadata.generation, Some(2));

    // Dropping a label from the applied configuration removes it (field ownership).
    let dropped = apply(&deploys, &deployment("web", "web:v2", 3)).await;
    assert!(
        !dropped
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("tier")
    );
    assert_eq!(dropped.metadata.generation, Some(3));
    // Server-side defaults are visible, as on a real cluster.
    let spec = dropped.spec.unwrap();
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    assert_eq!(spec.revision_history_limit, Some(10));
}

#[tokio::test]
async fn status_is_a_separate_subresource() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 1)).await;
    let patched = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 7}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().observed_generation, Some(7));
    assert_eq!(
        patched.spec.unwrap().replicas,
        Some(1),
        "a status write leaves the spec alone"
    );
    let mut with_status = deployment("web", "web:v1", 1);
    with_status.status = Some(serde_json::from_value(json!({"observedGeneration": 99})).unwrap());
    let applied = apply(&deploys, &with_status).await;
    assert_eq!(
        applied.status.unwrap().observed_generation,
        Some(7),
        "a main-resource write leaves the status alone"
    );
    let status = deploys.get_status("web").await.unwrap();
    assert_eq!(status.status.unwrap().observed_generation, Some(7));
}

#[tokio::test]
async fn errors_are_kubernetes_statuses() {
    let c = Cluster::new();
    let cms: Api<ConfigMap> = c.api("default");
    assert!(cms.get_opt("absent").await.unwrap().is_none());
    assert_eq!(
        api_code(cms.get("absent").await.unwrap_err()),
        (404, "NotFound".into())
    );

    let missing_ns: Api<ConfigMap> = c.api("nowhere");
    let err = missing_ns
        .create(&PostParams::default(), &config_map("x", &[], &[]))
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (404, "NotFound".into()));
    let err = missing_ns
        .patch(
            "x",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&config_map("x", &[], &[])),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(err).0, 404);

    let created = cms
        .create(&PostParams::default(), &config_map("x", &[], &[("k", "1")]))
        .await
        .unwrap();
    let err = cms
        .create(&PostParams::default(), &config_map("x", &[], &[]))
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (409, "AlreadyExists".into()));

    let mut stale = created.clone();
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    stale.data = Some(BTreeMap::from([("k".into(), "3".into())]));
    let err = cms
        .replace("x", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (409, "Conflict".into()));

    let mut bad = deployment("bad", "web:v1", 1);
    bad.spec.as_mut().unwrap().selector.match_labels =
        Some(BTreeMap::from([("app".into(), "other".into())]));
    let deploys: Api<Deployment> = c.api("default");
    let err = deploys
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (422, "Invalid".into()));

    let err = cms
        .patch(
            "x",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": 5}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_code(err).0,
        400,
        "a wrongly typed field is a decode error"
    );
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    let c = Cluster::new();
    let cms: Api<ConfigMap> = c.api("default");
    cms.patch(
        "x",
        &PatchParams::apply("agent"),
        &Patch::Apply(&config_map("x", &[], &[("k", "1")])),
    )
    .await
    .unwrap();
    let other = config_map("x", &[], &[("k", "2")]);
    let err = cms
        .patch("x", &PatchParams::apply("kubectl"), &Patch::Apply(&other))
        .await
        .unwrap_err();
    assert_eq!(api_code(err), (409, "Conflict".into()));
    let forced = cms
        .patch(
            "x",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "2");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"kubectl".to_string()), "{managers:?}");
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version_and_ends_with_a_bookmark() {
    let c = Cluster::new();
    let cms: Api<ConfigMap> = c.api("default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    apply(&cms, &config_map("w", &[("app", "web")], &[("k", "1")])).await;
    apply(&cms, &config_map("w", &[("app", "web")], &[("k", "2")])).await;
    apply(&cms, &config_map("other", &[("app", "db")], &[])).await;
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let params = WatchParams::default().labels("app=web").timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> = cms
        .watch(&params, &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
}

#[tokio::test]
async fn runtime_watcher_sees_creates_and_deletes() {
    let c = Cluster::new();
    let cms: Api<ConfigMap> = c.api("default");
    apply(&cms, &config_map("before", &[("app", "web")], &[])).await;
    let mut stream = watcher(cms.clone(), watcher::Config::default().labels("app=web")).boxed();
    let mut seen_init = Vec::new();
    while let Some(ev) = stream.try_next().await.unwrap() {
        match ev {
            watcher::Event::InitApply(cm) => seen_init.push(cm.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen_init, ["before"]);
    apply(&cms, &config_map("after", &[("app", "web")], &[])).await;
    cms.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let mut changes = Vec::new();
    while changes.len() < 2 {
        match stream.try_next().await.unwrap() {
            Some(watcher::Event::Apply(cm)) => {
                changes.push(format!("apply {}", cm.metadata.name.unwrap()))
            }
            Some(watcher::Event::Delete(cm)) => {
                changes.push(format!("delete {}", cm.metadata.name.unwrap()))
            }
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    assert_eq!(changes, ["apply after", "delete before"]);
}

#[tokio::test]
async fn runtime_watcher_with_streaming_lists_completes_its_initial_list() {
    let c = Cluster::new();
    let cms: Api<ConfigMap> = c.api("default");
    apply(&cms, &config_map("a", &[("app", "web")], &[])).await;
    let config = watcher::Config::default()
        .labels("app=web")
        .streaming_lists();
    let mut stream = watcher(cms.clone(), config).boxed();
    let mut init = Vec::new();
    loop {
        match stream.try_next().await.unwrap() {
            Some(watcher::Event::InitApply(cm)) => init.push(cm.metadata.name.unwrap()),
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    assert_eq!(init, ["a"]);
}

#[tokio::test]
async fn deleting_an_owner_cascades_and_collections_delete_by_selector() {
    let c = Cluster::new();
    let deploys: Api<Deployment> = c.api("default");
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    c.settle();
    assert_eq!(c.pods("default", "app=web").await.len(), 2);
    deploys
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    let rss: Api<ReplicaSet> = c.api("default");
    assert!(
        rss.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(c.pods("default", "app=web").await.is_empty());

    let cms: Api<ConfigMap> = c.api("default");
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        apply(&cms, &config_map(name, &[("app", app)], &[])).await;
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=web"),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&cms.list(&ListParams::default()).await.unwrap().items),
        ["c"]
    );

    // A finalizer holds a deleted object until it is removed.
    let mut held = config_map("held", &[], &[]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    apply(&cms, &held).await;
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    cms.patch("held", &PatchParams::default(), &release)
        .await
        .unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none());

    // Deleting a namespace deletes everything in it.
    c.namespace("team").await;
    let team: Api<Deployment> = c.api("team");
    apply(&team, &deployment("api", "api:v1", 1)).await;
    c.settle();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(team.get_opt("api").await.unwrap().is_none());
    assert!(c.pods("team", "app=api").await.is_empty());
}

#[tokio::test]
async fn discovery_lists_the_served_resources() {
    let c = Cluster::new();
    let discovery = kube::Discovery::new(c.client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources() {
            found.push(format!("{}/{}", ar.api_version, ar.plural));
        }
    }
    for want in [
        "v1/pods",
        "v1/namespaces",
        "apps/v1/deployments",
        "apps/v1/statefulsets",
        "batch/v1/jobs",
    ] {
        assert!(
            found.iter().any(|f| f == want),
            "{want} missing from {found:?}"
        );
    }
    let version = c.client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let pods: Api<Pod> = c.api("default");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
