//! The local installation: the real `outpost-local` binary on free loopback ports, in a
//! fresh directory with its default data dir, driven by the very commands it prints (the
//! real grpcurl and kubectl), stopped with SIGINT and started again on the same data.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use outpost_e2e::{Process, bin, grpcurl_call, run_shell};

/// Every port on 0, so tests never collide with each other or with a running installation.
const FREE_PORTS: [&str; 8] = [
    "--api-port",
    "0",
    "--gateway-port",
    "0",
    "--metrics-port",
    "0",
    "--kube-port",
    "0",
];

fn start(dir: tempfile::TempDir) -> Process {
    Process::start("outpost-local", dir, &FREE_PORTS, &[], 0).expect("outpost-local starts")
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

    // Something to find again after the restart.
    let api = first.ready_field("api");
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
    second.stop(&[]).expect("SIGTERM stops it cleanly");
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
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains(&format!("port {port}")) && said.contains("--api-port"),
        "{said}"
    );
}
