//! The federation on one shared database, started from
//! `deploy/federated-shared-db/management.toml`: two management instances on one PostgreSQL and
//! three datacenters, each a simulated cluster with its agent, every process real, on
//! loopback with real mutual TLS. Agents are given both gateways; a rollout started through
//! one instance is finished through the other after the first is killed, and the agents
//! that were linked to it move to the survivor.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use outpost_e2e::{Management, Process, agent, cluster, wait_for};
use serde_json::{Value, json};

const DATACENTERS: [&str; 3] = ["dc1", "dc2", "dc3"];

fn service(dc: &str) -> String {
    format!("tenants/acme/projects/shop-{dc}/environments/production/services/api")
}

fn call(server: &Management, token: &str, method: &str, body: &Value) -> Result<Value, String> {
    server.call(token, method, body)
}

fn ok(server: &Management, token: &str, method: &str, body: Value) -> Value {
    call(server, token, method, &body).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Waits until `deployment` is DEPLOYED, as `server` sees it.
fn wait_deployed(server: &Management, token: &str, deployment: &str) {
    let mut last = Value::Null;
    wait_for(
        &format!("{deployment} to be DEPLOYED"),
        Duration::from_secs(90),
        || {
            last = call(
                server,
                token,
                "DeploymentService/GetDeployment",
                &json!({"name": deployment}),
            )
            .unwrap_or(Value::Null);
            last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {last}\n{}", server.log()));
}

/// How many times the agent's log says its link came up through `gateway`.
fn links_through(agent: &Process, gateway: &str) -> usize {
    agent
        .log()
        .lines()
        .filter(|l| l.contains("link established") && l.contains(gateway))
        .count()
}

/// Whether the agent's log says its link is up through `gateway`.
fn linked_through(agent: &Process, gateway: &str) -> bool {
    links_through(agent, gateway) > 0
}

#[test]
fn agents_move_to_the_surviving_instance_and_its_rollouts_finish_there() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(outpost_store::testing::fresh_postgres_url());
    // Instances sharing a database share the key that seals the CA and the secrets too.
    let shared = tempfile::tempdir().expect("dir");
    let key_file = shared.path().join("ca.key");
    let env = [
        ("OUTPOST_STORE__URL", url.as_str()),
        ("OUTPOST_CA__KEY_FILE", key_file.to_str().expect("utf-8")),
        ("OUTPOST_API__TLS__HOSTNAMES", r#"["127.0.0.1"]"#),
        ("OUTPOST_GATEWAY__HOSTNAMES", r#"["127.0.0.1"]"#),
        ("OUTPOST_GATEWAY__AGENT_SILENCE_LIMIT_SECS", "5"),
    ];
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/federated-shared-db/management.toml");
    let a = Management::start_from(&config, &env).expect("instance A from the deploy file");
    let b = Management::start_from(&config, &env).expect("instance B from the deploy file");
    let admin = [a.admin_token(), b.admin_token()]
        .into_iter()
        .find(|t| !t.is_empty())
        .expect("one instance bootstrapped the admin");

    ok(
        &a,
        &admin,
        "TenantService/CreateTenant",
        json!({"tenant_id": "acme", "tenant": {}}),
    );
    let mut clusters = Vec::new();
    let mut agents = Vec::new();
    for (i, dc) in DATACENTERS.iter().enumerate() {
        // Set up through either instance: they are one.
        let via = if i % 2 == 0 { &a } else { &b };
        ok(
            via,
            &admin,
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": dc, "datacenter": {}}),
        );
        ok(
            via,
            &admin,
            "ProjectService/CreateProject",
            json!({"parent": "tenants/acme", "project_id": format!("shop-{dc}"),
                   "project": {"default_datacenter": format!("datacenters/{dc}")}}),
        );
        ok(
            via,
            &admin,
            "ServiceService/CreateService",
            json!({"parent": format!("tenants/acme/projects/shop-{dc}/environments/production"),
                   "service_id": "api",
                   "service": {"image": "registry.example.com/shop/api:1", "shape": "SHAPE_FLX", "replicas": 2}}),
        );
        let join = ok(
            via,
            &admin,
            "DatacenterService/CreateJoinToken",
            json!({"datacenter": format!("datacenters/{dc}")}),
        );
        // dc1 and dc3 prefer A, dc2 prefers B.
        let gateways = if i == 1 {
            format!("{},{}", b.gateway, a.gateway)
        } else {
            format!("{},{}", a.gateway, b.gateway)
        };
        let (sim, kubeconfig) = cluster();
        agents.push(agent(
            tempfile::tempdir().expect("dir"),
            &kubeconfig,
            Some((
                &gateways,
                join["token"].as_str().expect("token"),
                join["caFingerprint"].as_str().expect("fingerprint"),
            )),
        ));
        clusters.push(sim);
    }
    for (agent, preferred) in agents.iter().zip([&a, &b, &a]) {
        wait_for(
            "each agent linked to its first gateway",
            Duration::from_secs(30),
            || linked_through(agent, &preferred.gateway),
        )
        .unwrap_or_else(|e| panic!("{e}:\n{}", agent.log()));
    }

    // A change through B reaches the agents linked to A, and the other way round.
    for (i, dc) in DATACENTERS.iter().enumerate() {
        let via = if i == 1 { &a } else { &b };
        let first = ok(
            via,
            &admin,
            "DeploymentService/DeployService",
            json!({"name": service(dc)}),
        );
        wait_deployed(via, &admin, first["name"].as_str().expect("name"));
    }

    // Rollouts started through A, which dies at once: B finishes them.
    let started: Vec<String> = DATACENTERS
        .iter()
        .map(|dc| {
            ok(
                &a,
                &admin,
                "ServiceService/UpdateService",
                json!({"service": {"name": service(dc), "image": "registry.example.com/shop/api:2"},
                       "update_mask": {"paths": ["image"]}}),
            );
            let deployment = ok(
                &a,
                &admin,
                "DeploymentService/DeployService",
                json!({"name": service(dc)}),
            );
            deployment["name"].as_str().expect("name").to_owned()
        })
        .collect();
    let a_gateway = a.gateway.clone();
    let killed = Instant::now();
    let _ = a.process.kill();
    for agent in [&agents[0], &agents[2]] {
        wait_for(
            "A's agents linked through B",
            Duration::from_secs(20),
            || linked_through(agent, &b.gateway),
        )
        .unwrap_or_else(|e| panic!("{e}:\n{}", agent.log()));
    }
    eprintln!(
        "A's agents were linked through B {:?} after A was killed",
        killed.elapsed()
    );
    for deployment in &started {
        wait_deployed(&b, &admin, deployment);
    }
    for dc in DATACENTERS {
        let shown = ok(
            &b,
            &admin,
            "DatacenterService/GetDatacenter",
            json!({"name": format!("datacenters/{dc}")}),
        );
        assert_eq!(shown["agent"]["state"], "STATE_CONNECTED", "{shown}");
        assert_eq!(
            shown["agent"]["appliedRevision"], shown["agent"]["desiredRevision"],
            "{shown}"
        );
    }

    // And B alone carries on.
    ok(
        &b,
        &admin,
        "ServiceService/UpdateService",
        json!({"service": {"name": service("dc1"), "image": "registry.example.com/shop/api:3"},
               "update_mask": {"paths": ["image"]}}),
    );
    let third = ok(
        &b,
        &admin,
        "DeploymentService/DeployService",
        json!({"name": service("dc1")}),
    );
    wait_deployed(&b, &admin, third["name"].as_str().expect("name"));

    // An enrolled agent is pointed at other gateways with `--management` alone: no token.
    let allowed = [a_gateway.as_str(), "link failed", "gateway unreachable"];
    let mut agents = agents.into_iter();
    let first = agents.next().expect("dc1's agent");
    let before = links_through(&first, &b.gateway);
    let state = first.stop(&allowed).expect("agent stops");
    let kubeconfig = clusters[0].dir.path().join("kubeconfig");
    let repointed = Process::start(
        "outpost-agent",
        state,
        &[
            "--state-dir",
            "state",
            "run",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--management",
            &b.gateway,
        ],
        &[],
        3,
    )
    .expect("an enrolled agent starts with --management alone");
    let identity: Value = serde_json::from_str(
        &std::fs::read_to_string(repointed.dir.path().join("state/identity.json"))
            .expect("identity.json"),
    )
    .expect("json");
    assert_eq!(identity["management"], json!([b.gateway]), "{identity}");
    wait_for(
        "the repointed agent linked through B",
        Duration::from_secs(20),
        || links_through(&repointed, &b.gateway) > before,
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", repointed.log()));

    for agent in agents.chain([repointed]) {
        agent.stop(&allowed).expect("agent stops");
    }
    for sim in clusters {
        sim.stop(&[]).expect("sim stops");
    }
    b.stop(&[]).expect("B stops");
}
