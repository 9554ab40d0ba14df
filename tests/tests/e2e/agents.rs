//! The agent link end to end: one management service, two datacenters, each with its own
//! simulated Kubernetes and its own agent, all separate processes on loopback with real
//! mutual TLS.

use std::{process::Command, time::Duration};

use outpost_e2e::{Management, agent, bin, cluster, grpcurl_call, kubectl, wait_for};
use serde_json::{Value, json};

fn call(server: &Management, token: &str, method: &str, body: Value) -> Value {
    let out = grpcurl_call(
        &server.api,
        token,
        &format!("outpost.management.v1.{method}"),
        &body.to_string(),
    );
    assert!(
        out.status.success(),
        "{method}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn try_call(server: &Management, token: &str, method: &str, body: Value) -> Option<Value> {
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

fn agent_state(server: &Management, token: &str, dc: &str) -> Value {
    call(
        server,
        token,
        "DatacenterService/GetDatacenter",
        json!({"name": format!("datacenters/{dc}")}),
    )["agent"]
        .clone()
}

#[test]
fn two_agents_enroll_and_each_runs_only_its_own_datacenter() {
    let server = Management::start(&[]).expect("management starts");
    let admin = server.admin_token();
    for dc in ["dc-a", "dc-b"] {
        call(
            &server,
            &admin,
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": dc, "datacenter": {}}),
        );
    }
    call(
        &server,
        &admin,
        "TenantService/CreateTenant",
        json!({"tenant_id": "acme", "tenant": {}}),
    );
    call(
        &server,
        &admin,
        "ProjectService/CreateProject",
        json!({"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/dc-a"}}),
    );
    call(
        &server,
        &admin,
        "EnvironmentService/UpdateEnvironment",
        json!({"environment": {"name": "tenants/acme/projects/shop/environments/staging", "datacenter": "datacenters/dc-b"},
               "update_mask": {"paths": ["datacenter"]}}),
    );
    for (env, name) in [("production", "api"), ("staging", "web")] {
        call(
            &server,
            &admin,
            "ServiceService/CreateService",
            json!({"parent": format!("tenants/acme/projects/shop/environments/{env}"), "service_id": name,
                   "service": {"image": "registry.example.com/shop/app:1.0", "shape": "SHAPE_FLX", "replicas": 2,
                               "ports": [{"container_port": 8080}], "health_check_path": "/healthz"}}),
        );
        call(
            &server,
            &admin,
            "DeploymentService/DeployService",
            json!({"name": format!("tenants/acme/projects/shop/environments/{env}/services/{name}")}),
        );
    }
    let join = |dc: &str| {
        let t = call(
            &server,
            &admin,
            "DatacenterService/CreateJoinToken",
            json!({"datacenter": format!("datacenters/{dc}")}),
        );
        (
            t["token"].as_str().expect("token").to_owned(),
            t["caFingerprint"].as_str().expect("fingerprint").to_owned(),
        )
    };
    let (token_a, fingerprint) = join("dc-a");
    let (token_b, _) = join("dc-b");
    assert_eq!(
        agent_state(&server, &admin, "dc-a")["state"],
        "STATE_NOT_ENROLLED"
    );

    let (sim_a, kube_a) = cluster();
    let (sim_b, kube_b) = cluster();
    let agent_a = agent(
        tempfile::tempdir().expect("dir"),
        &kube_a,
        Some((&server.gateway, &token_a, &fingerprint)),
    );
    let agent_b = agent(
        tempfile::tempdir().expect("dir"),
        &kube_b,
        Some((&server.gateway, &token_b, &fingerprint)),
    );

    // Both connect, store their revision, and roll their own service out.
    for dc in ["dc-a", "dc-b"] {
        wait_for(
            &format!("{dc}'s agent to apply its desired state"),
            Duration::from_secs(60),
            || {
                let a = agent_state(&server, &admin, dc);
                a["state"] == "STATE_CONNECTED" && a["appliedRevision"] == a["desiredRevision"]
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                agent_state(&server, &admin, dc),
                server.log()
            )
        });
    }
    for (env, name) in [("production", "api"), ("staging", "web")] {
        let service = json!({"name": format!("tenants/acme/projects/shop/environments/{env}/services/{name}")});
        wait_for(
            &format!("{name} to be reported Available"),
            Duration::from_secs(60),
            || {
                let s = call(
                    &server,
                    &admin,
                    "ServiceService/GetService",
                    service.clone(),
                );
                s["status"]["phase"] == "Available" && s["status"]["readyReplicas"] == 2
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                call(
                    &server,
                    &admin,
                    "ServiceService/GetService",
                    service.clone()
                )
            )
        });
    }
    let agent_a_status = agent_state(&server, &admin, "dc-a");
    assert!(
        agent_a_status["agentVersion"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    // Capacity comes from the cluster's nodes: the simulated one has 8 CPUs and 32 GiB.
    assert_eq!(agent_a_status["cpuMillis"], "8000", "{agent_a_status}");
    assert_eq!(
        agent_a_status["memoryBytes"],
        (32_i64 << 30).to_string(),
        "{agent_a_status}"
    );

    // Each cluster runs exactly its own datacenter's workload, as the real kubectl sees it.
    let home = tempfile::tempdir().expect("home");
    let in_a = kubectl(
        &kube_a,
        home.path(),
        &["get", "deployments", "-A", "-o", "name"],
    );
    let in_b = kubectl(
        &kube_b,
        home.path(),
        &["get", "deployments", "-A", "-o", "name"],
    );
    assert_eq!(
        in_a.trim(),
        "deployment.apps/api",
        "dc-a runs only production's api"
    );
    assert_eq!(
        in_b.trim(),
        "deployment.apps/web",
        "dc-b runs only staging's web"
    );
    let namespaces = kubectl(&kube_a, home.path(), &["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("acme-shop-production-"), "{namespaces}");
    assert!(!namespaces.contains("acme-shop-staging-"), "{namespaces}");

    // A join token works once.
    let reuse = Command::new(bin("outpost-agent"))
        .args(["--state-dir"])
        .arg(tempfile::tempdir().expect("dir").path())
        .args([
            "enroll",
            "--management",
            &server.gateway,
            "--token",
            &token_a,
            "--ca-fingerprint",
            &fingerprint,
        ])
        .output()
        .expect("agent runs");
    assert!(!reuse.status.success());
    assert!(
        String::from_utf8_lossy(&reuse.stderr).contains("unknown, used or expired"),
        "{}",
        String::from_utf8_lossy(&reuse.stderr)
    );

    // A wrong CA pin is refused before anything is sent.
    let wrong_pin = Command::new(bin("outpost-agent"))
        .args(["--state-dir"])
        .arg(tempfile::tempdir().expect("dir").path())
        .args([
            "enroll",
            "--management",
            &server.gateway,
            "--token",
            &token_b,
            "--ca-fingerprint",
            &"ab".repeat(32),
        ])
        .output()
        .expect("agent runs");
    assert!(!wrong_pin.status.success());

    // Revoking dc-b's agent closes its link at once and keeps it out.
    call(
        &server,
        &admin,
        "DatacenterService/RevokeAgent",
        json!({"name": "datacenters/dc-b"}),
    );
    assert_eq!(
        agent_state(&server, &admin, "dc-b")["state"],
        "STATE_NOT_ENROLLED"
    );
    wait_for(
        "dc-b's agent to be refused",
        Duration::from_secs(30),
        || agent_b.log().contains("refuses this agent's certificate"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", agent_b.log()));
    // Refused, it says how to enroll again and stops trying: no storm against the gateway.
    let attempts = |log: &str| {
        log.matches("link established").count()
            + log.matches("link failed").count()
            + log.matches("refuses this agent's certificate").count()
    };
    let after_refusal = attempts(&agent_b.log());
    assert!(
        agent_b.log().contains("outpost-agent enroll"),
        "{}",
        agent_b.log()
    );
    assert!(
        wait_for("another attempt", Duration::from_secs(5), || {
            attempts(&agent_b.log()) > after_refusal
        })
        .is_err(),
        "the refused agent kept reconnecting:\n{}",
        agent_b.log()
    );
    // dc-a is unaffected.
    let still = agent_state(&server, &admin, "dc-a");
    assert_eq!(still["state"], "STATE_CONNECTED");
    // A change reaches the connected agent.
    call(
        &server,
        &admin,
        "ServiceService/UpdateService",
        json!({"service": {"name": "tenants/acme/projects/shop/environments/production/services/api", "replicas": 3},
               "update_mask": {"paths": ["replicas"]}}),
    );
    call(
        &server,
        &admin,
        "DeploymentService/DeployService",
        json!({"name": "tenants/acme/projects/shop/environments/production/services/api"}),
    );
    wait_for(
        "the scaled service to be Available with 3 replicas",
        Duration::from_secs(60),
        || {
            try_call(
                &server,
                &admin,
                "ServiceService/GetService",
                json!({"name": "tenants/acme/projects/shop/environments/production/services/api"}),
            )
            .is_some_and(|s| {
                s["status"]["readyReplicas"] == 3 && s["status"]["phase"] == "Available"
            })
        },
    )
    .expect("the change converged");

    drop(agent_b);
    agent_a
        .stop(&["link failed"])
        .expect("agent a stops cleanly");
    sim_a.stop(&[]).expect("sim a stops");
    sim_b.stop(&[]).expect("sim b stops");
    server
        .stop(&["agent went silent"])
        .expect("management stops cleanly");
}

/// Deleting a datacenter closes its agent's link at once and refuses its certificate from
/// then on; an expired join token enrolls nobody.
#[test]
fn a_deleted_datacenter_drops_its_agent_and_an_expired_token_enrolls_nobody() {
    let server = Management::start(&[]).expect("management starts");
    let admin = server.admin_token();
    for dc in ["gone", "later"] {
        call(
            &server,
            &admin,
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": dc, "datacenter": {}}),
        );
    }
    // The shortest lifetime a join token may have; it expires while the rest runs.
    let expiring = call(
        &server,
        &admin,
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/later", "ttl": "60s"}),
    );
    let expires = std::time::Instant::now() + Duration::from_secs(61);
    let join = call(
        &server,
        &admin,
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/gone"}),
    );
    let fingerprint = join["caFingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let (sim, kube) = cluster();
    let linked = agent(
        tempfile::tempdir().expect("dir"),
        &kube,
        Some((
            &server.gateway,
            join["token"].as_str().expect("token"),
            &fingerprint,
        )),
    );
    wait_for("the agent to connect", Duration::from_secs(60), || {
        agent_state(&server, &admin, "gone")["state"] == "STATE_CONNECTED"
    })
    .expect("connected");
    call(
        &server,
        &admin,
        "DatacenterService/DeleteDatacenter",
        json!({"name": "datacenters/gone"}),
    );
    wait_for(
        "the deleted datacenter's link to close",
        Duration::from_secs(30),
        || {
            let log = linked.log();
            log.contains("deleted") || log.contains("revoked")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", linked.log()));
    // Its certificate opens nothing any more: a restarted agent is refused again.
    let dir = linked.kill();
    let restarted = agent(dir, &kube, None);
    wait_for(
        "the restarted agent to be refused",
        Duration::from_secs(30),
        || {
            let log = restarted.log();
            log.contains("revoked") || log.contains("deleted")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", restarted.log()));
    drop(restarted);

    // The expired token: enrolling with it fails, naming why, and leaves nothing behind.
    while std::time::Instant::now() < expires {
        wait_for("the token to expire", Duration::from_secs(1), || false).ok();
    }
    let out = Command::new(bin("outpost-agent"))
        .current_dir(tempfile::tempdir().expect("dir").path())
        .args([
            "--state-dir",
            "state",
            "enroll",
            "--management",
            &server.gateway,
        ])
        .args([
            "--token",
            expiring["token"].as_str().expect("token"),
            "--ca-fingerprint",
            &fingerprint,
        ])
        .output()
        .expect("enroll");
    assert!(!out.status.success(), "an expired token enrolled");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("expired"), "{said}");
    assert_eq!(
        agent_state(&server, &admin, "later")["state"],
        "STATE_NOT_ENROLLED"
    );
    sim.stop(&[]).expect("sim stops");
    server
        .stop(&["agent went silent", "revoked", "deleted"])
        .expect("management stops");
}
