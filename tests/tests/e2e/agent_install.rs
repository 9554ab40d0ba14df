//! `outpost-agent install`, tried as an operator would: its manifests are typed Kubernetes
//! objects, apply server-side to a cluster with the real kubectl, and an agent started as
//! their Deployment says (its arguments, its environment with the join token from the
//! Secret, its state on the volume) enrolls, links and reconciles without touching its own
//! namespace; the probe command the Deployment names answers for it.

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use outpost_e2e::{
    Management, Process, bin, cluster, kubectl, kubernetes::typed_objects, wait_for,
};
use serde_json::{Value, json};

#[test]
fn an_agent_installed_from_its_manifests_enrolls_and_spares_its_own_namespace() {
    let server = Management::start(&[]).expect("management starts");
    let admin = server.admin_token();
    let ok = |method: &str, body: Value| {
        server
            .call(&admin, method, &body)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    };
    ok(
        "DatacenterService/CreateDatacenter",
        json!({"datacenter_id": "fra1", "datacenter": {}}),
    );
    let join = ok(
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/fra1"}),
    );
    let token = join["token"].as_str().expect("token");
    let fingerprint = join["caFingerprint"].as_str().expect("fingerprint");

    let printed = Command::new(bin("outpost-agent"))
        .args([
            "install",
            "--management",
            &server.gateway,
            "--token",
            token,
            "--ca-fingerprint",
            fingerprint,
            "--datacenter",
            "fra1",
        ])
        .output()
        .expect("outpost-agent install runs");
    assert!(printed.status.success(), "{printed:?}");
    let yaml = String::from_utf8(printed.stdout).expect("UTF-8");
    let objects = typed_objects(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Secret",
            "PersistentVolumeClaim",
            "Deployment"
        ]
    );

    // Its image is one of those a site mirrors: `outpost-agent images` lists it.
    let listed = Command::new(bin("outpost-agent"))
        .arg("images")
        .output()
        .expect("outpost-agent images runs");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let image = objects[6]["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .expect("an image");
    assert!(
        listed.lines().any(|l| l == format!("docker.io/{image}")),
        "{image} is not in `outpost-agent images`:\n{listed}"
    );

    let (sim, kubeconfig) = cluster();
    let home = tempfile::tempdir().expect("kubectl home");
    let file = home.path().join("agent.yaml");
    std::fs::write(&file, &yaml).expect("write");
    // The simulator serves no OpenAPI document for client-side validation; its admission
    // decodes every object as its kind instead.
    kubectl(
        &kubeconfig,
        home.path(),
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "-f",
            file.to_str().expect("UTF-8"),
        ],
    );
    let get = |args: &[&str]| -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        serde_json::from_str(&kubectl(&kubeconfig, home.path(), &all)).expect("JSON")
    };
    let all_in_the_cluster = |when: &str| {
        for object in &objects {
            let kind = object["kind"].as_str().expect("kind");
            let name = object["metadata"]["name"].as_str().expect("name");
            let mut args = vec![kind, name];
            if let Some(ns) = object["metadata"]["namespace"].as_str() {
                args.extend(["-n", ns]);
            }
            assert_eq!(get(&args)["metadata"]["name"], name, "{kind} {when}");
        }
    };
    all_in_the_cluster("applied");

    // The agent as its pod would run: the Deployment's arguments and environment as the
    // cluster holds them, the token resolved from the Secret, the state directory on "the
    // volume" (a directory here) and the service account standing for a kubeconfig.
    let deployment = get(&["deployment", "outpost-agent", "-n", "outpost-system"]);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let secret = get(&["secret", "outpost-agent", "-n", "outpost-system"]);
    let volume = tempfile::tempdir().expect("the state volume");
    let mount = container["volumeMounts"][0]["mountPath"]
        .as_str()
        .expect("a mount");
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for var in container["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("name").to_owned();
        let value = match (&var["value"], &var["valueFrom"]["secretKeyRef"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::Object(r)) => {
                assert_eq!(r["name"], "outpost-agent", "the installed Secret");
                let key = r["key"].as_str().expect("key");
                let encoded = secret["data"][key]
                    .as_str()
                    .expect("the key is in the Secret");
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .expect("base64"),
                )
                .expect("UTF-8")
            }
            other => panic!("{name}: {other:?}"),
        };
        let on_volume = value.replacen(mount, volume.path().to_str().expect("UTF-8"), 1);
        env.insert(name, on_volume);
    }
    assert_eq!(env["OUTPOST_AGENT_TOKEN"], token);
    env.insert(
        "OUTPOST_AGENT_KUBECONFIG".into(),
        kubeconfig.to_str().expect("UTF-8").into(),
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string"))
        .collect();
    let env_pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let agent = Process::start(
        "outpost-agent",
        tempfile::tempdir().expect("dir"),
        &args,
        &env_pairs,
    )
    .expect("the agent starts as its Deployment says");

    let mut datacenter = Value::Null;
    wait_for(
        "the installed agent to link and apply the desired state",
        Duration::from_secs(30),
        || {
            datacenter = ok(
                "DatacenterService/GetDatacenter",
                json!({"name": "datacenters/fra1"}),
            );
            let a = &datacenter["agent"];
            a["state"] == "STATE_CONNECTED"
                && a["appliedRevision"] == a["desiredRevision"]
                && a["cluster"]["state"] == "STATE_REACHABLE"
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {datacenter}"));
    // A pass has run with the desired state stored, against a cluster holding the agent's
    // own objects: none may have been taken for an environment's and removed.
    let applied = SystemTime::now();
    wait_for(
        "a reconcile pass after the desired state was stored",
        Duration::from_secs(10),
        || {
            std::fs::metadata(volume.path().join("alive"))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > applied)
        },
    )
    .expect("the agent reconciles");
    all_in_the_cluster("still there");

    // The probe the Deployment names, run with the pod's environment, says the agent lives.
    let probe = container["livenessProbe"]["exec"]["command"]
        .as_array()
        .expect("an exec probe");
    assert_eq!(probe[0], "outpost-agent");
    let probe_args: Vec<&str> = probe[1..].iter().filter_map(Value::as_str).collect();
    let alive = Command::new(bin("outpost-agent"))
        .args(&probe_args)
        .envs(env.iter())
        .output()
        .expect("probe runs");
    assert!(alive.status.success(), "{alive:?}");
    let elsewhere = Command::new(bin("outpost-agent"))
        .args(&probe_args)
        .env("OUTPOST_AGENT_STATE_DIR", home.path())
        .output()
        .expect("probe runs");
    assert!(
        !elsewhere.status.success(),
        "no agent runs with that state: {elsewhere:?}"
    );

    agent.stop(&[]).expect("agent stops");
    sim.stop(&[]).expect("sim stops");
    server.stop(&[]).expect("management stops");
}
