//! The local installation: the real `outpost-local` binary on free loopback ports, in a
//! fresh directory with its default data dir, driven by the very commands it prints (the
//! real grpcurl and kubectl), stopped with SIGINT and started again on the same data; with
//! the single-node Ceph it runs itself when Ceph's packages are installed (scripts/test
//! installs them), with the Ceph that `scripts/ceph` started passed in the agent's
//! variables, and with none.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use outpost_e2e::{Process, bin, grpcurl_call, run_shell, wait_for};

/// Every port on 0, so tests never collide with each other or with a running installation.
const FREE_PORTS: [&str; 10] = [
    "--api-port",
    "0",
    "--gateway-port",
    "0",
    "--metrics-port",
    "0",
    "--kube-port",
    "0",
    "--ceph-port",
    "0",
];

fn start(dir: tempfile::TempDir) -> Process {
    start_with(dir, &[], &[])
}

fn start_with(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Process {
    let all: Vec<&str> = FREE_PORTS.iter().chain(args).copied().collect();
    Process::start("outpost-local", dir, &all, env).expect("outpost-local starts")
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The command the banner offers for `tool`, exactly as printed.
fn printed_command(banner: &str, tool: &str) -> String {
    banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{tool} ")))
        .unwrap_or_else(|| panic!("no {tool} command in:\n{banner}"))
        .to_owned()
}

/// Runs a printed command in bash as a reader would paste it, with grpcurl on the PATH and
/// kubectl's cache in `home`.
fn paste(dir: &Path, command: &str) -> Output {
    let grpcurl_dir = outpost_e2e::grpcurl().parent().expect("dir").to_path_buf();
    let path = format!(
        "{}:{}",
        grpcurl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = BTreeMap::from([
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), dir.display().to_string()),
    ]);
    run_shell(dir, &env, command)
}

/// Runs the banner's grpcurl line and returns what it listed.
fn list_datacenters(dir: &Path, banner: &str) -> String {
    let out = paste(dir, &printed_command(banner, "grpcurl"));
    assert!(out.status.success(), "{}", both(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_command_starts_everything_and_a_restart_keeps_the_data() {
    let first = start(tempfile::tempdir().expect("dir"));
    let dir = first.dir.path().to_owned();
    let token_file = Path::new(&first.ready_field("admin_token_file")).to_owned();
    assert_eq!(
        token_file,
        std::fs::canonicalize(dir.join("outpost-data/admin-token")).expect("token file"),
        "where the README says"
    );
    let token = text(&token_file).trim().to_owned();
    let banner = text(&dir.join("stdout.log"));
    assert!(
        banner.contains("shown once") && banner.contains(&token),
        "the first start shows the admin token:\n{banner}"
    );

    // The printed grpcurl line works as pasted, and shows the datacenter connected.
    let listed = list_datacenters(&dir, &banner);
    assert!(listed.contains("\"datacenters/local\""), "{listed}");
    assert!(listed.contains("STATE_CONNECTED"), "{listed}");
    // So does the printed kubectl line, against the simulated cluster.
    let out = paste(&dir, &printed_command(&banner, "kubectl"));
    assert!(out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("kube-system"), "{}", both(&out));

    // Ceph's packages are installed here, so it runs a Ceph of its own, under the data dir.
    assert!(
        banner.contains("run by outpost-local"),
        "no Ceph of its own (are Ceph's packages installed? scripts/test installs them):\n{banner}"
    );
    let ceph_conf = dir.join("outpost-data/ceph/ceph.conf");
    assert!(ceph_conf.is_file(), "{banner}");

    // Something to find again after the restart, in the management service and in Ceph.
    let api = first.ready_field("api");
    let user = radosgw_admin(
        &ceph_conf,
        &["user", "create", "--uid=kept", "--display-name=Kept"],
    );
    assert!(user.status.success(), "{}", both(&user));
    let created = grpcurl_call(
        &api,
        &token,
        "outpost.management.v1.TenantService/CreateTenant",
        r#"{"tenant_id": "acme", "tenant": {"display_name": "Acme Corp"}}"#,
    );
    assert!(created.status.success(), "{}", both(&created));

    let log = first.log();
    assert!(!log.contains(&token), "the admin token was logged");
    let interrupted = Instant::now();
    let dir = first
        .stop_with("INT", &[])
        .expect("SIGINT stops it cleanly");
    assert!(
        interrupted.elapsed() < Duration::from_secs(8),
        "stopping took {:?}",
        interrupted.elapsed()
    );
    let log = text(&dir.path().join("stderr.log"));
    assert!(log.contains("outpost-local stopped"), "{log}");

    // The same directory again: everything is reused, nothing is created twice.
    let (stdout_before, log_before) = (banner.len(), log.len());
    let second = start(dir);
    let dir = second.dir.path().to_owned();
    let banner = text(&dir.join("stdout.log"))[stdout_before..].to_owned();
    assert!(
        !banner.contains("shown once") && !banner.contains(&token),
        "a restart shows no new bootstrap token:\n{banner}"
    );
    assert!(
        banner.contains(&token_file.display().to_string()),
        "{banner}"
    );
    let listed = list_datacenters(&dir, &banner);
    assert_eq!(listed.matches("\"name\":").count(), 1, "{listed}");
    assert!(listed.contains("STATE_CONNECTED"), "{listed}");
    let log = second.log()[log_before..].to_owned();
    for once in ["created the local datacenter", "enrolled"] {
        assert!(
            !log.contains(once),
            "`{once}` again after a restart:\n{log}"
        );
    }
    let tenant = grpcurl_call(
        &second.ready_field("api"),
        &token,
        "outpost.management.v1.TenantService/GetTenant",
        r#"{"name": "tenants/acme"}"#,
    );
    assert!(tenant.status.success(), "{}", both(&tenant));
    assert!(both(&tenant).contains("Acme Corp"), "{}", both(&tenant));
    // The same Ceph, started again rather than created, with what was stored in it.
    assert!(
        log.contains("starting the Ceph in") && !log.contains("creating a Ceph"),
        "{log}"
    );
    let kept = radosgw_admin(&ceph_conf, &["user", "info", "--uid=kept"]);
    assert!(kept.status.success(), "{}", both(&kept));
    assert_object_storage(&second, &token);
    second.stop(&[]).expect("SIGTERM stops it cleanly");
}

/// Runs radosgw-admin against the Ceph of `conf`, bounded (it hangs if the mon is down).
fn radosgw_admin(conf: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("20")
        .arg("radosgw-admin")
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .expect("running radosgw-admin")
}

/// The datacenter's agent status, as GetDatacenter shows it.
fn agent_status(local: &Process, token: &str) -> serde_json::Value {
    let out = grpcurl_call(
        &local.ready_field("api"),
        token,
        "outpost.management.v1.DatacenterService/GetDatacenter",
        r#"{"name": "datacenters/local"}"#,
    );
    assert!(out.status.success(), "{}", both(&out));
    let dc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    dc["agent"].clone()
}

/// Waits until the datacenter shows object storage with the capacity `ceph df` reports.
fn assert_object_storage(local: &Process, token: &str) {
    let mut agent = serde_json::Value::Null;
    let shown = wait_for(
        "datacenter `local` to show object storage and its capacity",
        Duration::from_secs(30),
        || {
            agent = agent_status(local, token);
            let bytes = agent["storageBytes"]
                .as_str()
                .and_then(|b| b.parse::<i64>().ok());
            agent["objectStorage"] == true && bytes.is_some_and(|b| b > 0)
        },
    );
    assert!(shown.is_ok(), "{shown:?}: {agent}\n{}", local.log());
}

fn admin_token(local: &Process) -> String {
    text(Path::new(&local.ready_field("admin_token_file")))
        .trim()
        .to_owned()
}

/// Without Ceph (`--no-ceph`) the datacenter says it has no object storage, the banner says
/// how to add it, and a bucket is refused saying the same.
#[test]
fn without_ceph_buckets_are_refused_saying_how_to_add_it() {
    let local = start_with(tempfile::tempdir().expect("dir"), &["--no-ceph"], &[]);
    assert_without_object_storage(&local, "none (--no-ceph)");
    local.stop(&[]).expect("SIGTERM stops it cleanly");
}

/// On a machine where Ceph is not installed (here: a `PATH` with nothing but bash, which
/// runs the Ceph recipe), outpost-local still starts, works and says what is missing and how
/// to add object storage.
#[test]
fn on_a_machine_without_ceph_it_works_and_says_how_to_add_it() {
    let bare = tempfile::tempdir().expect("dir");
    let bash = ["/usr/bin/bash", "/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("bash");
    std::os::unix::fs::symlink(bash, bare.path().join("bash")).expect("symlink");
    let path = bare.path().to_str().expect("UTF-8 path");
    let local = start_with(tempfile::tempdir().expect("dir"), &[], &[("PATH", path)]);
    assert_without_object_storage(&local, "Ceph is not installed: no ceph-mon");
    local.stop(&[]).expect("SIGTERM stops it cleanly");
}

/// `local` runs without object storage: the banner says `why` and how to add it, the
/// datacenter is connected and shows none, and a bucket is refused saying how to add it.
fn assert_without_object_storage(local: &Process, why: &str) {
    let token = admin_token(local);
    let banner = text(&local.dir.path().join("stdout.log"));
    for said in [why, "apt-get install ceph-mon", "--rgw-endpoint"] {
        assert!(banner.contains(said), "`{said}` not in:\n{banner}");
    }
    assert!(!local.dir.path().join("outpost-data/ceph").exists());
    let agent = agent_status(local, &token);
    assert_eq!(agent["state"], "STATE_CONNECTED", "{agent}");
    assert_ne!(agent["objectStorage"], true, "{agent}");

    let api = local.ready_field("api");
    for (method, body) in [
        (
            "TenantService/CreateTenant",
            r#"{"tenant_id": "acme", "tenant": {}}"#,
        ),
        (
            "ProjectService/CreateProject",
            r#"{"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/local"}}"#,
        ),
    ] {
        let out = grpcurl_call(
            &api,
            &token,
            &format!("outpost.management.v1.{method}"),
            body,
        );
        assert!(out.status.success(), "{method}: {}", both(&out));
    }
    let refused = grpcurl_call(
        &api,
        &token,
        "outpost.management.v1.ManagedServiceService/CreateManagedService",
        r#"{"parent": "tenants/acme/projects/shop/environments/staging", "managed_service_id": "files",
            "managed_service": {"provider": "providers/bucket", "config": {"quota_gib": 1}},
            "secrets": {"secret_key": "0123456789abcdef0123"}}"#,
    );
    let said = both(&refused);
    assert!(said.contains("FailedPrecondition"), "{said}");
    for how in ["no object storage", "--rgw-endpoint", "install Ceph"] {
        assert!(said.contains(how), "`{how}` not in: {said}");
    }
}

/// A Ceph given in the agent's variables (the one `scripts/ceph` started) is used as it is:
/// the datacenter shows object storage and its capacity, and no Ceph of its own starts.
#[test]
fn a_ceph_given_in_the_agents_variables_is_used() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: this test needs a real Ceph. Start one with \
                 `eval \"$(scripts/ceph)\"` (scripts/test does)"
            )
        })
    };
    let (conf, endpoint) = (
        var("OUTPOST_TEST_CEPH_CONF"),
        var("OUTPOST_TEST_RGW_ENDPOINT"),
    );
    let (access_key, secret_key) = (
        var("OUTPOST_TEST_RGW_ACCESS_KEY"),
        var("OUTPOST_TEST_RGW_SECRET_KEY"),
    );
    let local = start_with(
        tempfile::tempdir().expect("dir"),
        &[],
        &[
            ("OUTPOST_AGENT_RGW_ENDPOINT", &endpoint),
            ("OUTPOST_AGENT_RGW_ACCESS_KEY", &access_key),
            ("OUTPOST_AGENT_RGW_SECRET_KEY", &secret_key),
            ("OUTPOST_AGENT_CEPH_CONF", &conf),
        ],
    );
    let banner = text(&local.dir.path().join("stdout.log"));
    assert!(
        banner.contains(&format!("Ceph RADOS Gateway {endpoint}"))
            && banner.contains("(--rgw-endpoint)"),
        "{banner}"
    );
    assert!(!local.dir.path().join("outpost-data/ceph").exists());
    assert!(
        !local.log().contains(&secret_key),
        "the secret key was logged"
    );
    assert_object_storage(&local, &admin_token(&local));
    local.stop(&[]).expect("SIGTERM stops it cleanly");
}

#[test]
fn a_taken_port_is_named_with_its_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("dir");
    let mut args = FREE_PORTS.map(str::to_owned);
    args[1] = port.clone();
    let out = Command::new(bin("outpost-local"))
        .current_dir(dir.path())
        .args(&args)
        .arg("--no-ceph")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains(&format!("port {port}")) && said.contains("--api-port"),
        "{said}"
    );
}
