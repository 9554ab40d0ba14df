//! The central control plane shape: the agent does not run inside the cluster it drives; its
//! kubeconfig points at a Kubernetes API server elsewhere, reached here only through a proxy
//! (the link between the central site and the datacenter's cluster). With that link cut the
//! agent keeps retrying, nothing in the cluster is deleted or changed, and the change made
//! meanwhile is applied once the link is back.

use std::time::Duration;

use outpost_e2e::{Management, agent, cluster, kubectl, proxy::Proxy, wait_for};
use serde_json::{Value, json};

const SERVICE: &str = "tenants/acme/projects/shop/environments/production/services/web";

fn wait_deployed(server: &Management, token: &str, deployment: &str) {
    let mut last = Value::Null;
    wait_for(
        &format!("{deployment} DEPLOYED"),
        Duration::from_secs(60),
        || {
            last = server
                .call(
                    token,
                    "DeploymentService/GetDeployment",
                    &json!({"name": deployment}),
                )
                .unwrap_or(Value::Null);
            last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {last}"));
}

/// The image of the cluster's Deployment `web`, read directly from the API server.
fn image_in_cluster(kubeconfig: &std::path::Path, home: &std::path::Path) -> String {
    let out = kubectl(
        kubeconfig,
        home,
        &["get", "deployments", "-A", "-o", "json"],
    );
    let list: Value = serde_json::from_str(&out).expect("json");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["metadata"]["name"] == "web")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
        .and_then(|i| i.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn a_cut_to_the_remote_api_server_deletes_nothing_and_the_change_lands_when_it_heals() {
    let server = Management::start(&[]).expect("management starts");
    let admin = server.admin_token();
    let ok = |method: &str, body: Value| {
        server
            .call(&admin, method, &body)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    };
    let (sim, direct) = cluster();
    // The agent's kubeconfig names the API server through the link between the sites.
    let config = std::fs::read_to_string(&direct).expect("kubeconfig");
    let api_server = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: http://"))
        .expect("the API server's address")
        .to_owned();
    let link = Proxy::start(&api_server).expect("proxy");
    let central = tempfile::tempdir().expect("dir");
    let remote = central.path().join("kubeconfig");
    std::fs::write(&remote, config.replace(&api_server, &link.address)).expect("kubeconfig");

    for (method, body) in [
        (
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": "dc1", "datacenter": {}}),
        ),
        (
            "TenantService/CreateTenant",
            json!({"tenant_id": "acme", "tenant": {}}),
        ),
        (
            "ProjectService/CreateProject",
            json!({"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/dc1"}}),
        ),
        (
            "ServiceService/CreateService",
            json!({"parent": "tenants/acme/projects/shop/environments/production", "service_id": "web",
                   "service": {"image": "registry.example.com/shop/web:1", "shape": "SHAPE_FLX", "replicas": 2}}),
        ),
    ] {
        ok(method, body);
    }
    let join = ok(
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/dc1"}),
    );
    let agent = agent(
        tempfile::tempdir().expect("dir"),
        &remote,
        Some((
            &server.gateway,
            join["token"].as_str().expect("token"),
            join["caFingerprint"].as_str().expect("fingerprint"),
        )),
    );
    let first = ok("DeploymentService/DeployService", json!({"name": SERVICE}));
    wait_deployed(&server, &admin, first["name"].as_str().expect("name"));
    let home = tempfile::tempdir().expect("kubectl home");
    assert_eq!(
        image_in_cluster(&direct, home.path()),
        "registry.example.com/shop/web:1"
    );

    link.cut();
    ok(
        "ServiceService/UpdateService",
        json!({"service": {"name": SERVICE, "image": "registry.example.com/shop/web:2"}, "update_mask": {"paths": ["image"]}}),
    );
    let second = ok("DeploymentService/DeployService", json!({"name": SERVICE}));
    wait_for(
        "the agent to try the cut API server",
        Duration::from_secs(30),
        || agent.log().contains("reconcile pass failed"),
    )
    .expect("the agent keeps reconciling");
    // Nothing was deleted or changed behind the cut, and the deploy waits, not fails.
    assert_eq!(
        image_in_cluster(&direct, home.path()),
        "registry.example.com/shop/web:1"
    );
    let waiting = ok(
        "DeploymentService/GetDeployment",
        json!({"name": second["name"]}),
    );
    assert_eq!(
        waiting["status"], "DEPLOYMENT_STATUS_DEPLOYING",
        "{waiting}"
    );

    link.restore();
    wait_deployed(&server, &admin, second["name"].as_str().expect("name"));
    assert_eq!(
        image_in_cluster(&direct, home.path()),
        "registry.example.com/shop/web:2"
    );

    // The agent's own line for the cut, and kube-rs's for each request that could not be sent.
    agent
        .stop(&["reconcile pass failed", "capacity", "kube_client"])
        .expect("agent stops");
    sim.stop(&[]).expect("sim stops");
    server.stop(&[]).expect("management stops");
}
