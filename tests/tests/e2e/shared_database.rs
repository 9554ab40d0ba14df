//! The federation on one shared database, started from
//! `deploy/federated-shared-db/management.toml`: two management instances on one PostgreSQL and
//! three datacenters, each a simulated cluster with its agent, every process real, on
//! loopback with real mutual TLS. Agents are given both gateways; a rollout started through
//! one instance is finished through the other after the first is killed, and the agents
//! that were linked to it move to the survivor.

use std::{
    path::Path,
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use outpost_e2e::{Management, Process, agent, cluster, wait_for};
use serde_json::{Value, json};

const DATACENTERS: [&str; 3] = ["dc1", "dc2", "dc3"];

fn service(dc: &str) -> String {
    format!("tenants/acme/projects/shop-{dc}/environments/production/services/api")
}

fn ok(server: &Management, token: &str, method: &str, body: Value) -> Value {
    server
        .call(token, method, &body)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Two instances started from the shared-database deploy file on the database at `url`,
/// sharing one key file (read only at start), and the bootstrap admin's token (one of them
/// made it).
fn two_instances(url: &str) -> (Management, Management, String) {
    let shared = tempfile::tempdir().expect("dir");
    let key_file = shared.path().join("ca.key");
    let env = [
        ("OUTPOST_STORE__URL", url),
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
    (a, b, admin)
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
    let (a, b, admin) = two_instances(&url);

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
        via.wait_deployed(&admin, first["name"].as_str().expect("name"));
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
        b.wait_deployed(&admin, deployment);
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
    b.wait_deployed(&admin, third["name"].as_str().expect("name"));

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

/// A PostgreSQL of this test's own (`scripts/postgres --durable`: every commit flushed, as
/// in production), so crashing it disturbs no other test: its URL and directory.
fn own_postgres() -> (String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres");
    let out = Command::new(&script)
        .arg("--durable")
        .output()
        .expect("scripts/postgres");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exports = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |name: &str| {
        exports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in {exports}"))
            .to_owned()
    };
    (
        value("OUTPOST_TEST_POSTGRES_URL"),
        value("OUTPOST_TEST_POSTGRES_DIR"),
    )
}

fn postgres(command: &str, dir: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres");
    let out = Command::new(&script)
        .args([command, dir])
        .output()
        .expect("scripts/postgres");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both instances take a steady load of writes while their PostgreSQL crashes and comes
/// back: they reconnect by themselves, every write they acknowledged is there afterwards,
/// and none is there twice (a write retried with its request id after an answer that was
/// lost is the same write).
#[test]
fn a_postgres_restart_under_load_loses_no_acknowledged_write() {
    let (url, pg_dir) = own_postgres();
    let (a, b, admin) = two_instances(&url);
    ok(
        &a,
        &admin,
        "TenantService/CreateTenant",
        json!({"tenant_id": "load", "tenant": {}}),
    );
    ok(
        &a,
        &admin,
        "UserService/CreateUser",
        json!({"parent": "tenants/load", "user_id": "writer", "user": {}}),
    );

    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::<String>::new());
    let count = || acknowledged.lock().expect("lock").len();
    std::thread::scope(|scope| {
        for (prefix, server) in [("a", &a), ("b", &b)] {
            let (stop, acknowledged, admin) = (&stop, &acknowledged, &admin);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("{prefix}-{i}");
                    let body = json!({"parent": "tenants/load/users/writer", "request_id": id,
                                      "api_token": {"display_name": id}});
                    // The same write until it is acknowledged, as a careful client retries;
                    // while the database is down it is told so, in the retryable code.
                    let mut last = String::new();
                    wait_for(
                        &format!("write {id} acknowledged"),
                        Duration::from_secs(60),
                        || match server.call(admin, "ApiTokenService/CreateApiToken", &body) {
                            Ok(_) => true,
                            Err(e) => {
                                assert!(e.contains("Unavailable"), "{id}: {e}");
                                last = e;
                                false
                            }
                        },
                    )
                    .unwrap_or_else(|e| panic!("{e}: {last}"));
                    acknowledged.lock().expect("lock").push(id);
                    i += 1;
                }
            });
        }
        wait_for("writes before the crash", Duration::from_secs(60), || {
            count() >= 20
        })
        .expect("writes go through");
        let before = count();
        postgres("restart", &pg_dir);
        wait_for("writes after the restart", Duration::from_secs(90), || {
            count() >= before + 20
        })
        .expect("both instances write again by themselves");
        stop.store(true, Ordering::SeqCst);
    });

    let acknowledged = acknowledged.into_inner().expect("lock");
    for server in [&a, &b] {
        let listed = ok(
            server,
            &admin,
            "ApiTokenService/ListApiTokens",
            json!({"parent": "tenants/load/users/writer", "page_size": 1000}),
        );
        let mut names: Vec<String> = listed["apiTokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|t| t["displayName"].as_str().expect("name").to_owned())
            .collect();
        names.sort();
        let mut expected = acknowledged.clone();
        expected.sort();
        assert_eq!(names, expected, "every acknowledged write, once");
    }
    eprintln!(
        "{} writes acknowledged across the restart",
        acknowledged.len()
    );
    // What a database crash looks like from an instance: connections dropped, retried.
    let allowed = [
        "sqlx",
        "change listener",
        "reading revocations failed",
        "the database cannot be reached",
    ];
    a.stop(&allowed).expect("A stops");
    b.stop(&allowed).expect("B stops");
    postgres("stop", &pg_dir);
}
