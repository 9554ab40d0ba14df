//! Whole passes against the simulated cluster. What someone changes behind the agent's back
//! is restored by the next pass, with an event saying what and where; an object the cluster
//! refuses holds no other back.

use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    batch::v1::Job,
    core::v1::{Namespace, PersistentVolumeClaim, Secret, Service},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use outpost_domain::{
    ServiceName,
    desired::{DesiredState, Workload},
    resources::EnvVar,
};
use outpost_kube_sim::Sim;
use outpost_proto::agent::v1 as pb;
use serde_json::json;

use super::*;
use crate::fixtures;

fn desired() -> DesiredState {
    DesiredState {
        revision: 1,
        namespaces: vec![fixtures::namespace()],
        workloads: vec![Workload {
            env: vec![EnvVar {
                name: "MODE".into(),
                value: "prod".into(),
            }],
            secrets: vec![EnvVar {
                name: "API_KEY".into(),
                value: "s3cr3t".into(),
            }],
            ..fixtures::workload("web")
        }],
        builds: vec![fixtures::build("web", 3)],
        managed: vec![fixtures::stateful("db")],
    }
}

struct Harness {
    sim: Sim,
    cluster: KubeCluster,
    state: LocalState,
    buckets: Buckets,
    stalls: Stalls,
    stuck: BTreeMap<LiveKey, String>,
    outbox: Notify,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(desired: &DesiredState) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let state = LocalState::open(dir.path()).await.expect("state");
        state
            .store_desired(&pb::DesiredState::from(desired))
            .await
            .expect("stored");
        let (sim, cluster) = fixtures::cluster();
        Self {
            sim,
            cluster,
            state,
            buckets: Buckets::new(None),
            stalls: Stalls::new(Duration::from_secs(600)),
            stuck: BTreeMap::new(),
            outbox: Notify::new(),
            _dir: dir,
        }
    }

    async fn pass(&mut self) {
        pass(
            &self.state,
            &self.cluster,
            &self.buckets,
            &mut self.stalls,
            &mut self.stuck,
            &self.outbox,
        )
        .await
        .expect("pass");
        self.sim.settle().expect("settle");
    }

    /// The events queued so far, as (resource, reason, message).
    async fn events(&self) -> Vec<(String, String, String)> {
        self.state
            .outbox_after(0, 1000)
            .await
            .expect("outbox")
            .into_iter()
            .filter_map(|r| match r.kind {
                Some(pb::report::Kind::Event(e)) => Some((e.resource, e.reason, e.message)),
                _ => None,
            })
            .collect()
    }

    /// Changes an object as `kubectl set`, `scale` or `edit` would: a strategic merge patch
    /// under another field manager.
    async fn edit<K>(&self, name: &str, patch: serde_json::Value)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.sim.client(), "ns")
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .expect("edited behind the agent's back");
    }
}

fn image(d: &Deployment) -> Option<String> {
    d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .image
        .clone()
}

#[tokio::test]
async fn every_change_made_behind_the_agents_back_is_restored_with_an_event() {
    let mut h = Harness::start(&desired()).await;
    h.pass().await;
    h.pass().await;
    assert!(
        h.events().await.iter().all(|e| !e.1.starts_with("Drift")),
        "nothing to repair in what the agent applied itself: {:?}",
        h.events().await
    );
    let deployments = Api::<Deployment>::namespaced(h.sim.client(), "ns");

    let restored = "DriftRepaired";
    let cases: Vec<(&str, &str, serde_json::Value, &str, &str)> = vec![
        (
            "Deployment",
            "web",
            json!({"spec": {"replicas": 0}}),
            restored,
            "Deployment web: replica count changed outside Outpost; restored.",
        ),
        (
            "Deployment",
            "web",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil.example.com/miner:1"}]}}}}),
            restored,
            "Deployment web: image changed outside Outpost; restored.",
        ),
        (
            "Service",
            "web",
            json!({"spec": {"selector": {"outpost.dev/workload": "other"}}}),
            restored,
            "Service web: field spec.selector.outpost.dev/workload changed outside Outpost; restored.",
        ),
        (
            "Secret",
            "web-secrets",
            // base64 of "stolen"
            json!({"data": {"API_KEY": "c3RvbGVu"}}),
            restored,
            "Secret web-secrets: changed outside Outpost; its values restored.",
        ),
        (
            "StatefulSet",
            "db",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "postgres:9"}]}}}}),
            restored,
            "StatefulSet db: image changed outside Outpost; restored.",
        ),
        (
            "Job",
            "web-build-3",
            json!({"spec": {"suspend": true}}),
            restored,
            "Job web-build-3: field spec.suspend changed outside Outpost; restored.",
        ),
        (
            "Namespace",
            "ns",
            json!({"metadata": {"annotations": {"outpost.dev/environment": "tenants/other/projects/p/environments/e"}}}),
            restored,
            "Namespace ns: field metadata.annotations.outpost.dev/environment changed outside Outpost; restored.",
        ),
        // A claim cannot shrink: grown behind the agent's back, it is said and left.
        (
            "PersistentVolumeClaim",
            "db-data",
            json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}}),
            "DriftNotRepaired",
            "PersistentVolumeClaim db-data: field spec.resources.requests.storage changed outside Outpost and could not be restored.",
        ),
    ];
    for (kind, name, patch, reason, message) in cases {
        let before = h.events().await.len();
        match kind {
            "Deployment" => h.edit::<Deployment>(name, patch).await,
            "Service" => h.edit::<Service>(name, patch).await,
            "Secret" => h.edit::<Secret>(name, patch).await,
            "StatefulSet" => h.edit::<StatefulSet>(name, patch).await,
            "Job" => h.edit::<Job>(name, patch).await,
            "PersistentVolumeClaim" => h.edit::<PersistentVolumeClaim>(name, patch).await,
            _ => {
                Api::<Namespace>::all(h.sim.client())
                    .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                    .expect("edited behind the agent's back");
            }
        }
        h.pass().await;
        let events = h.events().await;
        let new: Vec<_> = events[before..].iter().collect();
        assert!(
            new.iter().any(|(_, r, m)| r == reason && m == message),
            "{kind}: {new:?}"
        );
        // Said once: restored, or left as it is until it changes again.
        h.pass().await;
        let after = h.events().await;
        let again: Vec<_> = after[events.len()..]
            .iter()
            .filter(|e| e.1.starts_with("Drift"))
            .collect();
        assert!(again.is_empty(), "{kind}: said once, then {again:?}");
    }
    let key = Api::<Secret>::namespaced(h.sim.client(), "ns")
        .get("web-secrets")
        .await
        .expect("secret");
    assert_eq!(
        key.data
            .and_then(|d| d.get("API_KEY").cloned())
            .map(|v| v.0),
        Some(b"s3cr3t".to_vec()),
        "the Secret's value restored"
    );
    let failed: Vec<_> = h
        .events()
        .await
        .into_iter()
        .filter(|e| e.1 == "ManagedFailed")
        .collect();
    assert!(
        failed.is_empty(),
        "a repair the cluster refuses does not fail the service: {failed:?}"
    );
    let web = deployments.get("web").await.expect("web");
    assert_eq!(image(&web).as_deref(), Some("registry.example.com/web:1"));
    assert_eq!(web.spec.as_ref().and_then(|s| s.replicas), Some(2));

    // What others add is theirs and stays.
    h.edit::<Deployment>("web", json!({"metadata": {"labels": {"team": "payments"}}}))
        .await;
    let before = h.events().await.len();
    h.pass().await;
    assert!(
        h.events().await[before..]
            .iter()
            .all(|e| !e.1.starts_with("Drift")),
        "a label someone added is no drift"
    );
    let web = deployments.get("web").await.expect("web");
    assert_eq!(
        web.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("payments")
    );

    // A replica count an operator handed to an autoscaler is the autoscaler's.
    h.edit::<Deployment>(
        "web",
        json!({"metadata": {"annotations": {"outpost.dev/scaled-by": "hpa/web"}}, "spec": {"replicas": 5}}),
    )
    .await;
    let before = h.events().await.len();
    h.pass().await;
    h.pass().await;
    let drift: Vec<_> = h.events().await[before..]
        .iter()
        .filter(|e| e.1.starts_with("Drift"))
        .cloned()
        .collect();
    assert!(
        drift.is_empty(),
        "an autoscaled count is no drift: {drift:?}"
    );
    let web = deployments.get("web").await.expect("web");
    assert_eq!(web.spec.as_ref().and_then(|s| s.replicas), Some(5));
}

#[tokio::test]
async fn an_object_the_cluster_refuses_holds_no_other_back() {
    let mut d = desired();
    d.managed.clear();
    let web = d.workloads[0].clone();
    // Sorted first and refused by the API server: not a DNS name.
    d.workloads.insert(
        0,
        Workload {
            service: ServiceName::parse("tenants/t/projects/p/environments/e/services/bad")
                .expect("name"),
            name: "Bad_Name".into(),
            ..web
        },
    );
    let mut h = Harness::start(&d).await;
    h.pass().await;
    let deployments = Api::<Deployment>::namespaced(h.sim.client(), "ns");
    assert!(
        deployments.get_opt("web").await.expect("read").is_some(),
        "web applied although Bad_Name was refused"
    );
    assert!(
        deployments
            .get_opt("Bad_Name")
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn an_agent_whose_local_state_is_empty_deletes_nothing() {
    let mut h = Harness::start(&desired()).await;
    h.pass().await;
    // As after the state directory was lost: no desired state to act on, so nothing goes.
    let empty = tempfile::tempdir().expect("dir");
    h.state = LocalState::open(empty.path()).await.expect("state");
    h.pass().await;
    h.pass().await;
    let deployments = Api::<Deployment>::namespaced(h.sim.client(), "ns");
    assert!(deployments.get_opt("web").await.expect("read").is_some());
    let sets = Api::<StatefulSet>::namespaced(h.sim.client(), "ns");
    assert!(sets.get_opt("db").await.expect("read").is_some());
}

#[tokio::test]
async fn a_pass_cut_short_after_some_changes_converges_on_the_next() {
    let d = desired();
    let mut h = Harness::start(&d).await;
    // A pass that stopped (the agent killed) after its first two changes.
    let observed = h.cluster.observe().await.expect("observed");
    let actions = plan(&d, &observed);
    assert!(actions.len() > 2, "{actions:?}");
    for action in &actions[..2] {
        h.cluster.execute(action).await.expect("applied");
    }
    h.pass().await;
    h.pass().await;
    let observed = h.cluster.observe().await.expect("observed");
    assert_eq!(plan(&d, &observed), vec![], "nothing left to do");
    assert!(
        h.cluster
            .drifted(&d, &observed, &[], &BTreeMap::new())
            .is_empty(),
        "and nothing differs"
    );
}

#[tokio::test]
async fn each_injected_fault_ends_the_rollout_with_its_reason() {
    use outpost_domain::deployment::FailureReason;
    use outpost_kube_sim::Fault;

    for (fault, reason) in [
        (Fault::ImagePull, FailureReason::ImagePullFailed),
        (Fault::Health, FailureReason::HealthCheckFailed),
        (Fault::Oom, FailureReason::OutOfMemory),
        (Fault::CrashLoop, FailureReason::CrashLoop),
    ] {
        let mut d = desired();
        d.managed.clear();
        d.workloads[0].image = format!("registry.example.com/web:v2-{}", fault.image_tag_marker());
        let mut h = Harness::start(&d).await;
        // No grace: a version that runs but is not ready fails at once (the agent judges by
        // the wall clock, which the simulated cluster's does not move).
        h.cluster = fixtures::driver(
            &h.sim,
            crate::plan::Rollout {
                health_grace: Duration::ZERO,
                ..Default::default()
            },
        );
        h.pass().await;
        h.pass().await;
        let reported: Vec<Option<FailureReason>> = h
            .state
            .outbox_after(0, 1000)
            .await
            .expect("outbox")
            .into_iter()
            .filter_map(|r| match r.kind {
                Some(pb::report::Kind::WorkloadStatus(s)) if s.phase == "Failed" => {
                    Some(FailureReason::parse(&s.reason))
                }
                _ => None,
            })
            .collect();
        assert_eq!(reported, [Some(reason)], "{fault:?}");
    }
}
