//! The air-gapped site (deploy/air-gapped/README.md), each part inside a network namespace
//! whose only interface is loopback, under strace, so that every connection any process
//! there tries is on record and can be checked to stay on this host:
//!
//! - the offline bundle scripts/test built (`OUTPOST_TEST_BUNDLE`, from `scripts/bundle
//!   --profile dev`): `install` refuses it once a file is changed or added, installs it as
//!   built, and starts the whole Outpost from the installed files (with its own single-node
//!   Ceph, Ceph's packages being installed); the README walkthrough's deploy part then runs
//!   verbatim, up to DEPLOYED;
//! - the site's own files (deploy/air-gapped/management.toml and agent.env) start the
//!   management service and the agent against a simulated cluster, and every image the
//!   cluster is asked for, Outpost's and services', comes from the site's registry.
//!
//! A namespace takes root (`unshare -n`); CI runs as root. Without root each test says why
//! it checked nothing, and passes.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use outpost_e2e::{
    Management, Process, agent_settings, agent_with, bin, cluster, grpcurl, grpcurl_call, kubectl,
    markdown_commands, run_walkthrough, wait_for,
};
use serde_json::{Value, json};

/// Set for the halves that run inside a namespace.
const INSIDE: &str = "OUTPOST_TEST_INSIDE_A_NAMESPACE";

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `inner`, a test of this module, in a new network namespace with only `lo` (brought up
/// first), under strace recording every `connect`; checks it passed and that no process in
/// the namespace tried an address off this host. The namespace has its own process ids
/// (and so its own /proc, where threads find themselves by id): when the test ends,
/// whatever it left running (a Ceph daemon of a failed run, say) ends with it, rather than
/// keep strace waiting.
fn in_a_namespace(inner: &str) {
    if !is_root() {
        eprintln!(
            "skipped: {inner} needs a network namespace of its own, which takes root \
             (`unshare -n`); CI runs as root"
        );
        return;
    }
    let exe = std::env::current_exe().expect("test executable");
    // The harness names a test by its path below the crate: `air_gapped::NAME`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let inner_path = format!("{module}::{inner}");
    let traces = tempfile::tempdir().expect("dir");
    let trace = traces.path().join("connect.strace");
    let out = Command::new("strace")
        .args(["-f", "--seccomp-bpf", "-qq", "-e", "trace=connect"])
        .args(["-e", "signal=none", "-o"])
        .arg(&trace)
        .args([
            "unshare",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ])
        .args(["--", "sh", "-c"])
        .arg(r#"ip link set lo up && exec "$0" --exact "$1" --ignored --nocapture"#)
        .arg(&exe)
        .arg(&inner_path)
        .env(INSIDE, "1")
        .output()
        .unwrap_or_else(|e| panic!("running strace (scripts/setup installs it): {e}"));
    let said = both(&out);
    assert!(
        out.status.success() && said.contains("1 passed"),
        "{inner}, inside the namespace:\n{said}"
    );
    let trace = std::fs::read_to_string(&trace).expect("the strace record");
    assert!(
        trace.contains("inet_addr(\"127.0.0.1\")"),
        "strace saw no connection at all:\n{trace}"
    );
    let off = off_host(&trace);
    assert!(
        off.is_empty(),
        "connections tried off this host:\n{}",
        off.join("\n")
    );
}

/// The lines of a strace record of `connect` that name an IP address off this host (or an
/// IP socket address strace printed in a way not understood here).
fn off_host(trace: &str) -> Vec<&str> {
    let on_host = |addr: &str| match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => false,
    };
    trace
        .lines()
        .filter(|line| line.contains("AF_INET"))
        .filter(|line| {
            let addr = line
                .split("inet_addr(\"")
                .nth(1)
                .or_else(|| line.split("inet_pton(AF_INET6, \"").nth(1))
                .and_then(|rest| rest.split('"').next());
            !addr.is_some_and(on_host)
        })
        .collect()
}

#[test]
fn the_connection_check_catches_what_it_is_for() {
    let trace = r#"
7 connect(3, {sa_family=AF_INET, sin_port=htons(7070), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
7 connect(4, {sa_family=AF_INET6, sin6_port=htons(7070), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
7 connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
8 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = -1 ENETUNREACH (Network is unreachable)
8 connect(4, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)
"#;
    let off = off_host(trace);
    assert_eq!(off.len(), 2, "{off:?}");
    assert!(off[0].contains("10.255.255.53") && off[1].contains("2001:db8::1"));
}

/// Fails unless this process is in a network namespace whose only interface is `lo`.
fn assert_inside_a_namespace() {
    assert!(
        std::env::var_os(INSIDE).is_some(),
        "this half runs inside the namespace the test of the same name without `_inside` makes"
    );
    let devices = std::fs::read_to_string("/proc/net/dev").expect("/proc/net/dev");
    let interfaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{devices}");
}

#[test]
fn the_offline_bundle_installs_and_deploys_with_nothing_but_loopback() {
    in_a_namespace("the_offline_bundle_inside");
}

#[test]
#[ignore = "runs inside the namespace the_offline_bundle_installs_and_deploys_with_nothing_but_loopback makes"]
fn the_offline_bundle_inside() {
    assert_inside_a_namespace();
    let bundle = std::env::var("OUTPOST_TEST_BUNDLE").unwrap_or_else(|_| {
        panic!(
            "OUTPOST_TEST_BUNDLE is not set: this test needs the offline bundle. Build it with \
             `export OUTPOST_TEST_BUNDLE=$(scripts/bundle --profile dev)` (scripts/test does)"
        )
    });
    let unpacked = tempfile::tempdir().expect("dir");
    let untar = Command::new("tar")
        .args(["-xzf", &bundle, "-C"])
        .arg(unpacked.path())
        .output()
        .expect("tar");
    assert!(untar.status.success(), "{}", both(&untar));
    let root = std::fs::read_dir(unpacked.path())
        .expect("unpacked")
        .next()
        .expect("one folder")
        .expect("entry")
        .path();
    let install = root.join("install");
    let place = tempfile::tempdir().expect("dir");
    let prefix = place.path().join("outpost");
    let prefix_arg = prefix.to_str().expect("utf-8");

    // A changed file, and an added one, are refused before anything is installed.
    let images = root.join("images.txt");
    let listed = std::fs::read_to_string(&images).expect("images.txt");
    std::fs::write(&images, format!("{listed}evil.example/x:1\n")).expect("write");
    let changed = Command::new(&install).arg("--check").output().expect("run");
    assert!(!changed.status.success(), "{}", both(&changed));
    assert!(both(&changed).contains("does not match SHA256SUMS"));
    std::fs::write(&images, &listed).expect("write");
    let added = root.join("bin/extra");
    std::fs::write(&added, "#!/bin/sh\n").expect("write");
    let refused = Command::new(&install)
        .args(["--prefix", prefix_arg])
        .output()
        .expect("run");
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(
        both(&refused).contains("files not in SHA256SUMS: bin/extra"),
        "{}",
        both(&refused)
    );
    assert!(!prefix.exists(), "a refused bundle installed something");
    std::fs::remove_file(&added).expect("remove");

    // Installed as built, and started from the installed files: the whole Outpost on its
    // default ports (the namespace has them all free).
    let site = Process::start_program(
        "outpost-local",
        &install,
        tempfile::tempdir().expect("dir"),
        &["--prefix", prefix_arg, "--start", "--"],
        &[],
    )
    .expect("the bundle installs and starts");
    for file in [
        "bin/outpost-management",
        "bin/outpost-agent",
        "bin/outpost-local",
        "bin/outpost-kube-sim",
        "etc/management.toml",
        "etc/agent.env",
        "share/outpost/providers/postgresql.json",
        "share/outpost/sbom/outpost-agent.cdx.json",
        "share/outpost/deploy/air-gapped/README.md",
    ] {
        assert!(prefix.join(file).is_file(), "{file} is not installed");
    }
    let sbom: Value = serde_json::from_str(
        &std::fs::read_to_string(prefix.join("share/outpost/sbom/outpost-agent.cdx.json"))
            .expect("the agent's SBOM"),
    )
    .expect("JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "outpost-agent");
    assert!(
        sbom["components"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "kube")),
        "the SBOM lists the crates compiled in"
    );
    for image in [
        "docker.io/library/postgres:16",
        "docker.io/library/redis:7",
        "gcr.io/kaniko-project/executor:v1.23.2",
    ] {
        assert!(listed.lines().any(|l| l == image), "{image}:\n{listed}");
    }
    let banner = std::fs::read_to_string(site.dir.path().join("stdout.log")).expect("banner");
    assert!(
        banner.contains("every file matches SHA256SUMS") && banner.contains("run by outpost-local"),
        "no check, or no Ceph of its own (are Ceph's packages installed? scripts/test installs \
         them):\n{banner}"
    );

    // The README walkthrough's deploy part, verbatim: a tenant, a user, a project and a
    // service, deployed, watched until it is final.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let commands = markdown_commands(&readme, "walkthrough");
    let watched = commands
        .iter()
        .position(|c| c.contains("WatchDeployment"))
        .expect("the walkthrough watches its first deployment");
    let grpcurl_dir = grpcurl().parent().expect("dir").to_path_buf();
    let path = format!(
        "{}:{}",
        grpcurl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env = BTreeMap::from([("PATH".to_owned(), path)]);
    run_walkthrough(site.dir.path(), &mut env, &commands[..=watched], None);
    let alice = env.get("ALICE").expect("ALICE was exported");
    let deployment = grpcurl_call(
        &site.ready_field("api"),
        alice,
        "outpost.management.v1.DeploymentService/GetDeployment",
        r#"{"name": "tenants/acme/projects/shop/environments/staging/services/api/deployments/1"}"#,
    );
    assert!(deployment.status.success(), "{}", both(&deployment));
    let deployment: Value = serde_json::from_slice(&deployment.stdout).expect("json");
    assert_eq!(
        deployment["status"], "DEPLOYMENT_STATUS_DEPLOYED",
        "{deployment}"
    );
    site.stop(&[]).expect("SIGTERM stops it cleanly");
}

#[test]
fn the_sites_own_files_pull_every_image_from_its_registry_with_nothing_but_loopback() {
    in_a_namespace("the_sites_own_files_inside");
}

#[test]
#[ignore = "runs inside the namespace the_sites_own_files_pull_every_image_from_its_registry_with_nothing_but_loopback makes"]
fn the_sites_own_files_inside() {
    assert_inside_a_namespace();
    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/air-gapped");
    let server = Management::start_from(
        &files.join("management.toml"),
        &[
            ("OUTPOST_API__TLS__HOSTNAMES", r#"["127.0.0.1"]"#),
            ("OUTPOST_GATEWAY__HOSTNAMES", r#"["127.0.0.1"]"#),
        ],
    )
    .expect("the management service starts from the site's file");
    let admin = server.admin_token();
    let ok = |method: &str, body: Value| {
        server
            .call(&admin, method, &body)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    };
    let (sim, kubeconfig) = cluster();
    ok(
        "DatacenterService/CreateDatacenter",
        json!({"datacenter_id": "site", "datacenter": {}}),
    );
    let join = ok(
        "DatacenterService/CreateJoinToken",
        json!({"datacenter": "datacenters/site"}),
    );
    let field = |k: &str| join[k].as_str().expect(k).to_owned();
    let (token, fingerprint) = (field("token"), field("caFingerprint"));

    // The agent with the site's variables; only where its state and kubeconfig are is the
    // test's.
    let variables = agent_settings(&files.join("agent.env"));
    let registry = variables
        .iter()
        .find(|(k, _)| k == "OUTPOST_AGENT_IMAGE_REGISTRY")
        .map(|(_, v)| v.clone())
        .expect("agent.env names the site's registry");
    let env: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let agent = agent_with(
        tempfile::tempdir().expect("dir"),
        &kubeconfig,
        Some((&server.gateway, &token, &fingerprint)),
        &[],
        &env,
    );

    ok(
        "TenantService/CreateTenant",
        json!({"tenant_id": "acme", "tenant": {}}),
    );
    ok(
        "ProjectService/CreateProject",
        json!({"parent": "tenants/acme", "project_id": "shop",
               "project": {"default_datacenter": "datacenters/site"}}),
    );
    let staging = "tenants/acme/projects/shop/environments/staging";
    let own_image = format!("{registry}/shop/api:1.0");
    for (id, how) in [
        ("hub", json!({"image": "nginx:1.27"})),
        ("own", json!({"image": own_image})),
        (
            "built",
            json!({"git": {"url": "https://git.example.com/shop/web.git", "ref": "refs/heads/main"}}),
        ),
    ] {
        let mut service = json!({"shape": "SHAPE_FLX", "replicas": 1});
        service
            .as_object_mut()
            .expect("object")
            .extend(how.as_object().expect("object").clone());
        ok(
            "ServiceService/CreateService",
            json!({"parent": staging, "service_id": id, "service": service}),
        );
        ok(
            "DeploymentService/DeployService",
            json!({"name": format!("{staging}/services/{id}")}),
        );
    }
    ok(
        "ManagedServiceService/CreateManagedService",
        json!({"parent": staging, "managed_service_id": "orders-db",
               "managed_service": {"provider": "providers/postgresql", "config": {"version": "16",
                 "storage_gib": 10, "shape": "FLX", "database": "orders", "user": "shop"}},
               "secrets": {"password": "correct-horse-battery"}}),
    );
    let mut last = Value::Null;
    let done = wait_for(
        "every deployment DEPLOYED and the database SYNCHRONIZED",
        Duration::from_secs(90),
        || {
            let deployed = ["hub", "own", "built"].iter().all(|id| {
                last = ok(
                    "DeploymentService/GetDeployment",
                    json!({"name": format!("{staging}/services/{id}/deployments/1")}),
                );
                last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
            });
            deployed && {
                last = ok(
                    "ManagedServiceService/GetManagedService",
                    json!({"name": format!("{staging}/managedServices/orders-db")}),
                );
                last["state"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("SYNCHRONIZED"))
            }
        },
    );
    assert!(done.is_ok(), "{done:?}: {last}\n{}", agent.log());

    // Every image the cluster was asked for is on the site's registry: Outpost's under the
    // names `outpost-agent images` gives them there, a Docker Hub one moved, the site's own
    // (and what builds pushed) as written.
    let home = tempfile::tempdir().expect("dir");
    let objects = kubectl(
        &kubeconfig,
        home.path(),
        &["get", "deployments,statefulsets,jobs", "-A", "-o", "json"],
    );
    let objects: Value = serde_json::from_str(&objects).expect("json");
    let pulled: BTreeSet<String> = objects["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect();
    let listing = Command::new(bin("outpost-agent"))
        .args(["images", "--image-registry", &registry])
        .output()
        .expect("outpost-agent images");
    assert!(listing.status.success(), "{}", both(&listing));
    let mirrored: BTreeSet<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, to)| to.to_owned()))
        .collect();
    for image in [
        format!("{registry}/library/postgres:16"),
        format!("{registry}/kaniko-project/executor:v1.23.2"),
    ] {
        assert!(pulled.contains(&image), "{image} not in {pulled:?}");
        assert!(mirrored.contains(&image), "{image} not in {mirrored:?}");
    }
    for image in [format!("{registry}/library/nginx:1.27"), own_image] {
        assert!(pulled.contains(&image), "{image} not in {pulled:?}");
    }
    assert!(
        pulled
            .iter()
            .all(|i| i.starts_with(&format!("{registry}/"))),
        "pulled from elsewhere: {pulled:?}"
    );

    agent.stop(&[]).expect("agent stops");
    sim.stop(&[]).expect("cluster stops");
    server.stop(&[]).expect("management stops");
}
