//! The central control plane shape: the agent does not run inside the cluster it drives; its
//! kubeconfig points at a Kubernetes API server elsewhere, reached here only through a proxy
//! (the link between the central site and the datacenter's cluster). With that link cut the
//! agent keeps retrying, the datacenter shows its cluster unreachable (and every resource
//! there says it waits for it), nothing in the cluster is deleted or changed, and the change
//! made meanwhile is applied once the link is back.

use std::{path::Path, time::Duration};

use outpost_e2e::{
    Management, agent_settings, agent_with, cluster, kubectl, proxy::Proxy, wait_for,
};
use serde_json::{Value, json};

const SERVICE: &str = "tenants/acme/projects/shop/environments/production/services/web";

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
fn a_cut_to_the_remote_api_server_shows_deletes_nothing_and_the_change_lands_when_it_heals() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/central-control-plane");
    let server = Management::start_from(
        &deploy.join("management.toml"),
        &[("OUTPOST_API__TLS__HOSTNAMES", r#"["127.0.0.1"]"#)],
    )
    .expect("management starts from the deploy file");
    assert_eq!(
        server.process.ready["api_tls"], true,
        "the file puts the API behind TLS"
    );
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
    // The agent from the deploy folder's environment file; only where things are on this
    // machine (its state, the kubeconfig, the gateway's port) is the test's.
    let settings = agent_settings(&deploy.join("agent-fra1.env"));
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let agent = agent_with(
        tempfile::tempdir().expect("dir"),
        &remote,
        Some((
            &server.gateway,
            join["token"].as_str().expect("token"),
            join["caFingerprint"].as_str().expect("fingerprint"),
        )),
        &[],
        &env,
    );
    let first = ok("DeploymentService/DeployService", json!({"name": SERVICE}));
    server.wait_deployed(&admin, first["name"].as_str().expect("name"));
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
    // The datacenter shows its cluster unreachable, a state of its own: the agent is still
    // linked, and nothing says a service failed.
    let mut datacenter = Value::Null;
    wait_for(
        "datacenter dc1 to show its cluster unreachable",
        Duration::from_secs(30),
        || {
            datacenter = ok(
                "DatacenterService/GetDatacenter",
                json!({"name": "datacenters/dc1"}),
            );
            datacenter["agent"]["cluster"]["state"] == "STATE_UNREACHABLE"
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {datacenter}"));
    let agent_status = &datacenter["agent"];
    assert_eq!(agent_status["state"], "STATE_CONNECTED", "{datacenter}");
    assert!(
        agent_status["cluster"]["unreachableSince"].is_string()
            && !agent_status["cluster"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
        "{datacenter}"
    );
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
    let service = ok("ServiceService/GetService", json!({"name": SERVICE}));
    for (what, resource) in [("deployment", &waiting), ("service", &service)] {
        let notice = &resource["datacenterUnreachable"];
        assert_eq!(notice["cause"], "CAUSE_CLUSTER", "{what}: {resource}");
        assert!(
            notice["message"].as_str().is_some_and(|m| m.starts_with(
                "Waiting for datacenter dc1, whose agent cannot reach its Kubernetes API server since"
            )),
            "{what}: {resource}"
        );
    }

    link.restore();
    server.wait_deployed(&admin, second["name"].as_str().expect("name"));
    let datacenter = ok(
        "DatacenterService/GetDatacenter",
        json!({"name": "datacenters/dc1"}),
    );
    assert_eq!(
        datacenter["agent"]["cluster"]["state"], "STATE_REACHABLE",
        "{datacenter}"
    );
    let service = ok("ServiceService/GetService", json!({"name": SERVICE}));
    assert!(service["datacenterUnreachable"].is_null(), "{service}");
    assert_eq!(
        image_in_cluster(&direct, home.path()),
        "registry.example.com/shop/web:2"
    );

    // The agent's own line for the cut, and kube-rs's for each request that could not be sent.
    agent
        .stop(&[
            "reconcile pass failed",
            "does not answer",
            "capacity",
            "kube_client",
        ])
        .expect("agent stops");
    sim.stop(&[]).expect("sim stops");
    server
        .stop(&["cannot reach its cluster"])
        .expect("management stops");
}
