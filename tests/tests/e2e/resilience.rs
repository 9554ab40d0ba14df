//! WAN cuts and crashes: the link is cut by a proxy, the management service and the agent
//! are each killed and restarted, and every time the datacenter converges on the latest
//! desired state, workloads keep running meanwhile, and no report is lost or recorded twice.

use std::time::Duration;

use outpost_e2e::{Management, agent, cluster, grpcurl_call, kubectl, proxy::Proxy, wait_for};
use serde_json::{Value, json};

const SERVICE: &str = "tenants/acme/projects/shop/environments/production/services/api";
const ENV: [(&str, &str); 1] = [("OUTPOST_GATEWAY__AGENT_SILENCE_LIMIT_SECS", "5")];

fn call(server: &Management, token: &str, method: &str, body: Value) -> Option<Value> {
    let out = grpcurl_call(
        &server.api,
        token,
        &format!("outpost.management.v1.{method}"),
        &body.to_string(),
    );
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn scale(server: &Management, token: &str, replicas: i32) {
    call(
        server,
        token,
        "ServiceService/UpdateService",
        json!({"service": {"name": SERVICE, "replicas": replicas}, "update_mask": {"paths": ["replicas"]}}),
    )
    .expect("scale");
    deploy(server, token);
}

fn deploy(server: &Management, token: &str) {
    call(
        server,
        token,
        "DeploymentService/DeployService",
        json!({"name": SERVICE}),
    )
    .expect("deploy");
}

fn wait_available(server: &Management, token: &str, replicas: i32, what: &str) {
    wait_for(what, Duration::from_secs(90), || {
        call(
            server,
            token,
            "ServiceService/GetService",
            json!({"name": SERVICE}),
        )
        .is_some_and(|s| {
            s["status"]["phase"] == "Available"
                && s["status"]["readyReplicas"] == replicas
                && s["status"]["stale"] != true
        })
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            call(
                server,
                token,
                "ServiceService/GetService",
                json!({"name": SERVICE})
            )
        )
    });
}

fn agent_state(server: &Management, token: &str) -> String {
    call(
        server,
        token,
        "DatacenterService/GetDatacenter",
        json!({"name": "datacenters/dc-a"}),
    )
    .map(|d| d["agent"]["state"].as_str().unwrap_or_default().to_owned())
    .unwrap_or_default()
}

#[test]
fn cuts_and_crashes_on_either_side_converge_and_lose_nothing() {
    let server = Management::start(&ENV).expect("management starts");
    let admin = server.admin_token();
    for (method, body) in [
        (
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": "dc-a", "datacenter": {}}),
        ),
        (
            "TenantService/CreateTenant",
            json!({"tenant_id": "acme", "tenant": {}}),
        ),
        (
            "ProjectService/CreateProject",
            json!({"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/dc-a"}}),
        ),
        (
            "ServiceService/CreateService",
            json!({"parent": "tenants/acme/projects/shop/environments/production", "service_id": "api",
                   "service": {"image": "registry.example.com/shop/api:1", "shape": "SHAPE_FLX", "replicas": 2}}),
        ),
    ] {
        call(&server, &admin, method, body).unwrap_or_else(|| panic!("{method}"));
    }
    deploy(&server, &admin);
    let join = call(
        &server,
        &admin,
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/dc-a"}),
    )
    .expect("token");
    let (token, fingerprint) = (
        join["token"].as_str().expect("token"),
        join["caFingerprint"].as_str().expect("fp"),
    );
    let proxy = Proxy::start(&server.gateway).expect("proxy");
    let (sim, kube) = cluster();
    let agent_process = agent(
        tempfile::tempdir().expect("dir"),
        &kube,
        Some((&proxy.address, token, fingerprint)),
    );
    wait_available(&server, &admin, 2, "the first rollout");

    // 1. Cut the WAN link: the datacenter shows disconnected, its workloads keep running, and
    //    a change made meanwhile arrives once the link is back.
    proxy.cut();
    wait_for(
        "the datacenter to show disconnected",
        Duration::from_secs(30),
        || agent_state(&server, &admin) == "STATE_DISCONNECTED",
    )
    .expect("disconnect noticed");
    let during = call(
        &server,
        &admin,
        "ServiceService/GetService",
        json!({"name": SERVICE}),
    )
    .expect("get");
    assert_eq!(
        during["status"]["stale"], true,
        "a report from a disconnected datacenter is stale: {during}"
    );
    assert_eq!(
        during["status"]["phase"], "Available",
        "and keeps its last phase: unknown is not failed"
    );
    scale(&server, &admin, 3);
    let home = tempfile::tempdir().expect("home");
    let ready = kubectl(
        &kube,
        home.path(),
        &[
            "get",
            "deployments",
            "-A",
            "-o",
            "jsonpath={.items[0].status.readyReplicas}",
        ],
    );
    assert_eq!(
        ready.trim(),
        "2",
        "workloads keep running while the link is down"
    );
    proxy.restore();
    wait_available(&server, &admin, 3, "the change made during the cut");

    // 2. Kill the management service in the middle of a rollout and restart it on the
    //    same data (on new ports): the rollout still ends in its true final status.
    scale(&server, &admin, 1);
    let dir = server.process.kill();
    let server = Management::start_in(dir, &ENV).expect("management restarts");
    proxy.retarget(&server.gateway);
    wait_available(&server, &admin, 1, "a rollout cut by a management restart");

    // 3. Kill the agent and restart it on its stored state (no new enrollment needed).
    let agent_dir = agent_process.kill();
    scale(&server, &admin, 2);
    let agent_process = agent(agent_dir, &kube, None);
    wait_available(&server, &admin, 2, "a change made while the agent was down");
    wait_for("the agent to reconnect", Duration::from_secs(60), || {
        agent_state(&server, &admin) == "STATE_CONNECTED"
    })
    .expect("reconnected");

    // Every deployment ended: none is stuck in an in-progress status, and the newest one
    // (the agent was down when it was made) is DEPLOYED.
    let deployments = call(
        &server,
        &admin,
        "DeploymentService/ListDeployments",
        json!({"parent": SERVICE, "page_size": 1000}),
    )
    .expect("deployments");
    let statuses: Vec<&str> = deployments["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert_eq!(
        statuses.first(),
        Some(&"DEPLOYMENT_STATUS_DEPLOYED"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(
            *s,
            "DEPLOYMENT_STATUS_DEPLOYED"
                | "DEPLOYMENT_STATUS_DEPLOYMENT_ERROR"
                | "DEPLOYMENT_STATUS_CANCELED"
        )),
        "{statuses:?}"
    );

    // Nothing recorded twice: the workload's events alternate between phases; a resent or
    // re-reported status would show as two identical neighbours.
    let events = call(
        &server,
        &admin,
        "EventService/ListEvents",
        json!({"parent": SERVICE, "page_size": 1000}),
    )
    .expect("events");
    let phases: Vec<String> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["actor"] == "datacenters/dc-a")
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    // How many phases the agent saw depends on how fast each rollout finished between its
    // passes; what must hold is that the newest is Available and none is repeated.
    assert_eq!(
        phases.first().map(String::as_str),
        Some("WorkloadAvailable"),
        "{phases:?}"
    );
    assert!(
        phases.windows(2).all(|w| w[0] != w[1]),
        "a report was recorded twice: {phases:?}"
    );

    agent_process
        .stop(&["link failed", "reconnecting"])
        .expect("agent stops cleanly");
    sim.stop(&[]).expect("sim stops");
    server
        .stop(&["agent went silent"])
        .expect("management stops cleanly");
}

/// Certificates are short-lived and renewed over the link well before they expire; the
/// agent carries on with the new one.
#[test]
fn agent_certificates_are_renewed_before_they_expire() {
    let env = [("OUTPOST_GATEWAY__CERTIFICATE_TTL_SECS", "90")];
    let server = Management::start(&env).expect("management starts");
    let admin = server.admin_token();
    call(
        &server,
        &admin,
        "DatacenterService/CreateDatacenter",
        json!({"datacenter_id": "dc-a", "datacenter": {}}),
    )
    .expect("dc");
    let join = call(
        &server,
        &admin,
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/dc-a"}),
    )
    .expect("token");
    let (sim, kube) = cluster();
    let agent_process = agent(
        tempfile::tempdir().expect("dir"),
        &kube,
        Some((
            &server.gateway,
            join["token"].as_str().expect("token"),
            join["caFingerprint"].as_str().expect("fp"),
        )),
    );
    let expiry = || {
        call(
            &server,
            &admin,
            "DatacenterService/GetDatacenter",
            json!({"name": "datacenters/dc-a"}),
        )
        .map(|d| {
            d["agent"]["certificateExpireTime"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default()
    };
    wait_for("the agent to connect", Duration::from_secs(60), || {
        agent_state(&server, &admin) == "STATE_CONNECTED"
    })
    .expect("connected");
    let first = expiry();
    wait_for("a renewal", Duration::from_secs(60), || {
        agent_process.log().contains("certificate renewed")
    })
    .expect("renewed");
    wait_for(
        "the renewed agent to link with its new certificate",
        Duration::from_secs(60),
        || expiry() > first && agent_state(&server, &admin) == "STATE_CONNECTED",
    )
    .unwrap_or_else(|e| panic!("{e}: expiry {first} → {}", expiry()));
    agent_process
        .stop(&["link failed", "reconnecting"])
        .expect("agent stops cleanly");
    sim.stop(&[]).expect("sim stops");
    server.stop(&[]).expect("management stops cleanly");
}
