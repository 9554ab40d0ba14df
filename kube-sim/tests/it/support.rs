//! Shared fixtures: an explicit-stepping cluster with a client, typed object builders, and
//! bounded waits.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use outpost_kube_sim::{Sim, SimConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The field manager tests apply with.
pub const MANAGER: &str = "outpost-test";

/// An explicit-stepping, in-memory cluster and an in-process client to it.
pub struct Cluster {
    pub sim: Sim,
    pub client: Client,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::with_config(SimConfig::explicit())
    }

    pub fn with_config(config: SimConfig) -> Cluster {
        let sim = Sim::start(config).expect("start the simulator");
        let client = sim.client();
        Cluster { sim, client }
    }

    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Settles and returns the number of steps that changed something.
    pub fn settle(&self) -> usize {
        self.sim.settle().expect("cluster settles")
    }

    /// Creates namespace `ns` by server-side apply.
    pub async fn namespace(&self, ns: &str) {
        create_namespace(&self.client, ns).await;
    }

    /// Pods of namespace `ns` with label selector `labels`.
    pub async fn pods(&self, ns: &str, labels: &str) -> Vec<Pod> {
        self.api::<Pod>(ns)
            .list(&ListParams::default().labels(labels))
            .await
            .unwrap()
            .items
    }
}

/// Creates namespace `ns` by server-side apply.
pub async fn create_namespace(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .unwrap();
    api.patch(
        ns,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// Server-side applies `obj` (force) and returns the stored object.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().expect("object has a name");
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap()
}

/// A Deployment of `replicas` pods of `image`, labelled `app=<name>`, rolling with
/// maxUnavailable 0 / maxSurge 1 (the agent's strategy).
pub fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    deployment_with(name, image, replicas, BTreeMap::new())
}

/// Like [`deployment`], with pod template annotations.
pub fn deployment_with(
    name: &str,
    image: &str,
    replicas: i32,
    annotations: BTreeMap<String, String>,
) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": name, "owner": "outpost" } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
            "template": {
                "metadata": { "labels": { "app": name }, "annotations": annotations },
                "spec": { "containers": [{
                    "name": "app",
                    "image": image,
                    "ports": [{ "containerPort": 8080 }],
                    "readinessProbe": { "httpGet": { "path": "/healthz", "port": 8080 } },
                }] },
            },
        },
    }))
    .expect("valid deployment")
}

/// Ready pods among `pods`.
pub fn ready_count(pods: &[Pod]) -> usize {
    pods.iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count()
}

/// The reason of a deployment condition of type `type_`, with its status.
pub fn condition(d: &Deployment, type_: &str) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// Polls `check` until it returns `Some`, failing after `timeout` with `what` (for timed
/// stepping and child processes, where there is no step to call).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
