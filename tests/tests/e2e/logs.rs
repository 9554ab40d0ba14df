//! Logs end to end: the management service, a simulated cluster and an agent as separate
//! processes with real mutual TLS; the real grpcurl reads recent lines and follows the
//! stream, which the agent answers from the pods' `log` endpoint over its link.

use std::{
    path::Path,
    process::{Child, Output},
    time::Duration,
};

use outpost_e2e::{Grpcurl, Management, agent, cluster, grpcurl_call, wait_for};
use serde_json::{Value, json};

const WEB: &str = "tenants/acme/projects/shop/environments/production/services/web";
const API: &str = "tenants/acme/projects/shop/environments/production/services/api";

/// grpcurl's answer to `LogService/{method}`, or its error output.
fn logs(server: &Management, token: &str, method: &str, body: Value) -> Result<Value, String> {
    answer(grpcurl_call(
        &server.api,
        token,
        &format!("outpost.management.v1.LogService/{method}"),
        &body.to_string(),
    ))
}

fn answer(out: Output) -> Result<Value, String> {
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ok(server: &Management, token: &str, method: &str, body: Value) -> Value {
    answer(grpcurl_call(
        &server.api,
        token,
        &format!("outpost.management.v1.{method}"),
        &body.to_string(),
    ))
    .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// A token of a new user `user` of `tenant` with `role`.
fn user_token(server: &Management, admin: &str, tenant: &str, user: &str, role: &str) -> String {
    let parent = format!("tenants/{tenant}");
    ok(
        server,
        admin,
        "UserService/CreateUser",
        json!({"parent": parent, "user_id": user, "user": {}}),
    );
    ok(
        server,
        admin,
        "RoleBindingService/CreateRoleBinding",
        json!({"parent": parent, "role_binding": {"member": format!("{parent}/users/{user}"), "role": role}}),
    );
    ok(
        server,
        admin,
        "ApiTokenService/CreateApiToken",
        json!({"parent": format!("{parent}/users/{user}"), "api_token": {}}),
    )["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// `(pod, line)` of every entry of a ReadLogs answer.
fn entries(answer: &Value) -> Vec<(String, String)> {
    answer["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("pod"), field("line"))
        })
        .collect()
}

/// How many entries each pod has, by pod.
fn per_pod(entries: &[(String, String)]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (pod, _) in entries {
        *counts.entry(pod.clone()).or_default() += 1;
    }
    counts
}

/// A StreamLogs call by the real grpcurl in the background, printing to `out`.
fn follow(server: &Management, token: &str, resource: &str, out: &Path, extra: &[&str]) -> Child {
    Grpcurl::call(&server.api, "LogService/StreamLogs")
        .flags(extra)
        .token(token)
        .data(&json!({"resource": resource, "tail_lines": 2}).to_string())
        .spawn(out)
}

/// The entries a followed call printed so far (grpcurl prints one JSON object after another).
fn printed(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

fn wait_exit(child: &mut Child, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    })
    .expect(what);
}

#[test]
fn logs_are_read_and_followed_through_the_agent_and_end_cleanly() {
    let server = Management::start(&[]).expect("management starts");
    let admin = server.admin_token();
    let (sim, kubeconfig) = cluster();
    ok(
        &server,
        &admin,
        "DatacenterService/CreateDatacenter",
        json!({"datacenter_id": "dc1", "datacenter": {}}),
    );
    for tenant in ["acme", "globex"] {
        ok(
            &server,
            &admin,
            "TenantService/CreateTenant",
            json!({"tenant_id": tenant, "tenant": {}}),
        );
    }
    ok(
        &server,
        &admin,
        "ProjectService/CreateProject",
        json!({"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/dc1"}}),
    );
    ok(
        &server,
        &admin,
        "ServiceService/CreateService",
        json!({"parent": "tenants/acme/projects/shop/environments/production", "service_id": "web",
               "service": {"image": "registry.example.com/web:1", "shape": "SHAPE_FLX", "replicas": 2,
                           "ports": [{"container_port": 8080}], "health_check_path": "/healthz"}}),
    );
    ok(
        &server,
        &admin,
        "ServiceService/CreateService",
        json!({"parent": "tenants/acme/projects/shop/environments/production", "service_id": "api",
               "service": {"git": {"url": "https://git.example.com/shop/api.git"}, "shape": "SHAPE_FLX",
                           "replicas": 1}}),
    );
    let viewer = user_token(&server, &admin, "acme", "vic", "ROLE_VIEWER");
    let stranger = user_token(&server, &admin, "globex", "eve", "ROLE_OWNER");
    let join = ok(
        &server,
        &admin,
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/dc1"}),
    );
    let enrollment = (
        server.gateway.as_str(),
        join["token"].as_str().expect("token"),
        join["caFingerprint"].as_str().expect("fingerprint"),
    );
    let agent = agent(
        tempfile::tempdir().expect("dir"),
        &kubeconfig,
        Some(enrollment),
    );

    // Deploy both services (api is built from source first) and wait until they serve.
    let deploy = |service: &str| {
        let deployment = ok(
            &server,
            &admin,
            "DeploymentService/DeployService",
            json!({"name": service}),
        );
        deployment["name"].as_str().expect("name").to_owned()
    };
    let (deployment, built) = (deploy(WEB), deploy(API));
    for name in [&deployment, &built] {
        let mut last = Value::Null;
        wait_for(
            &format!("{name} to be deployed"),
            Duration::from_secs(90),
            || {
                last = ok(
                    &server,
                    &admin,
                    "DeploymentService/GetDeployment",
                    json!({"name": name}),
                );
                last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}"));
    }

    // Recent lines, read by a viewer: each pod's, pod by pod, the tail respected.
    let recent = logs(
        &server,
        &viewer,
        "ReadLogs",
        json!({"resource": WEB, "tail_lines": 2}),
    )
    .expect("ReadLogs");
    let lines = entries(&recent);
    let counts = per_pod(&lines);
    assert_eq!(counts.len(), 2, "lines from each of the two pods: {recent}");
    assert!(
        counts.values().all(|n| *n == 2),
        "two lines per pod: {counts:?}"
    );
    assert!(
        lines.windows(2).all(|w| w[0].0 <= w[1].0),
        "pod by pod: {lines:?}"
    );
    assert!(
        lines.iter().any(|(_, l)| l.ends_with("INFO ready")),
        "{lines:?}"
    );
    let first = &recent["entries"][0];
    assert_eq!(first["container"], "app");
    assert!(first["time"].is_string(), "each line has its time: {first}");
    assert!(recent["truncated"].is_null(), "nothing left out: {recent}");
    let one = entries(
        &logs(
            &server,
            &viewer,
            "ReadLogs",
            json!({"resource": WEB, "tail_lines": 1}),
        )
        .expect("ReadLogs"),
    );
    assert_eq!(per_pod(&one).values().copied().collect::<Vec<_>>(), [1, 1]);

    // A build's log, from the pod of its Job, read and followed to the build's end.
    let build = logs(&server, &viewer, "ReadLogs", json!({"resource": built})).expect("build");
    let lines = entries(&build);
    assert!(
        lines.iter().all(|(pod, _)| pod.starts_with("api-build-1-")),
        "{build}"
    );
    assert!(
        lines
            .iter()
            .any(|(_, l)| l.ends_with("work complete, exiting")),
        "{build}"
    );
    assert_eq!(build["entries"][0]["container"], "build");
    let followed = Grpcurl::call(&server.api, "LogService/StreamLogs")
        .max_time(30)
        .token(&viewer)
        .data(&json!({"resource": built}).to_string())
        .output();
    assert!(
        followed.status.success(),
        "a finished build's followed log ends by itself: {}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let text = String::from_utf8_lossy(&followed.stdout).into_owned();
    assert!(text.contains("work complete, exiting"), "{text}");

    // An image deployment has no build pod; another tenant's service does not exist for
    // its callers; bad input names each bad field.
    let err = logs(
        &server,
        &viewer,
        "ReadLogs",
        json!({"resource": deployment}),
    )
    .unwrap_err();
    assert!(
        err.contains("NotFound") && err.contains("build pod of deployment"),
        "{err}"
    );
    let err = logs(&server, &stranger, "ReadLogs", json!({"resource": WEB})).unwrap_err();
    assert!(err.contains("NotFound") && err.contains("service"), "{err}");
    let err = logs(&server, &stranger, "StreamLogs", json!({"resource": WEB})).unwrap_err();
    assert!(err.contains("NotFound"), "{err}");
    let err = logs(
        &server,
        &viewer,
        "ReadLogs",
        json!({"resource": "tenants/acme/web", "tail_lines": 10001, "container": "A!"}),
    )
    .unwrap_err();
    assert!(err.contains("InvalidArgument"), "{err}");
    for field in ["resource", "tail_lines", "container"] {
        assert!(
            err.contains(&format!("\"field\":\"{field}\"")),
            "{field}: {err}"
        );
    }

    // A followed log: the tail of each pod, then nothing new; it ends when the caller's
    // deadline passes, and the agent stops reading.
    let canceled =
        |agent: &outpost_e2e::Process| agent.log().matches("log request canceled").count();
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("deadline.json");
    let mut call = follow(&server, &viewer, WEB, &out, &["-max-time", "3"]);
    wait_exit(&mut call, "the followed call to reach its deadline");
    let streamed = printed(&out);
    assert_eq!(
        streamed.len(),
        4,
        "two lines of each pod first: {streamed:?}"
    );
    assert!(
        streamed
            .iter()
            .all(|e| e["container"] == "app" && e["line"].is_string())
    );
    wait_for(
        "the agent to stop reading after the deadline",
        Duration::from_secs(10),
        || canceled(&agent) >= 1,
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", agent.log()));

    // The same when the caller goes away.
    let out = dir.path().join("killed.json");
    let mut call = follow(&server, &viewer, WEB, &out, &[]);
    wait_for(
        "the followed call to print",
        Duration::from_secs(30),
        || printed(&out).len() >= 4,
    )
    .expect("printed");
    call.kill().expect("kill grpcurl");
    call.wait().expect("reaped");
    wait_for(
        "the agent to stop reading after the caller left",
        Duration::from_secs(10),
        || canceled(&agent) >= 2,
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", agent.log()));
    // The link carries on.
    assert_eq!(
        entries(&logs(&server, &viewer, "ReadLogs", json!({"resource": WEB})).expect("read")).len(),
        6,
        "every line of both pods (the default tail is 100)"
    );

    // A followed log whose agent goes away ends UNAVAILABLE; with the agent gone, reads
    // answer UNAVAILABLE and say why.
    let out = dir.path().join("link-drop.json");
    let mut call = follow(&server, &viewer, WEB, &out, &["-max-time", "60"]);
    wait_for(
        "the followed call to print",
        Duration::from_secs(30),
        || printed(&out).len() >= 4,
    )
    .expect("printed");
    agent.stop(&[]).expect("agent stops cleanly");
    wait_exit(&mut call, "the followed call to end with the link");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        text.contains("Unavailable") && text.contains("the datacenter's agent disconnected"),
        "{text}"
    );
    let mut err = String::new();
    wait_for(
        "reads to answer UNAVAILABLE",
        Duration::from_secs(30),
        || {
            err = logs(&server, &viewer, "ReadLogs", json!({"resource": WEB})).unwrap_err();
            err.contains("Unavailable") && err.contains("not connected to this management instance")
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {err}"));
    let err = logs(&server, &viewer, "StreamLogs", json!({"resource": WEB})).unwrap_err();
    assert!(err.contains("Unavailable"), "{err}");

    server.stop(&[]).expect("management stops cleanly");
    drop(sim);
}
