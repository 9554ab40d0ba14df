//! End-to-end: the real `outpost-management` (and `outpost-local`) binaries on loopback,
//! driven by the real grpcurl.

use std::{collections::BTreeMap, os::unix::fs::PermissionsExt, process::Command};

use outpost_e2e::{Management, Process, bin, grpcurl_call, markdown_commands, run_walkthrough};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn both(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every command of the README's walkthrough, as written, against the local installation
/// of the README's first command, except that `localhost:7070` is replaced by the address it
/// bound.
#[test]
fn the_readme_walkthrough_runs_verbatim_with_the_real_grpcurl() {
    let local = Process::start(
        "outpost-local",
        tempfile::tempdir().expect("dir"),
        &[
            "--api-port",
            "0",
            "--gateway-port",
            "0",
            "--metrics-port",
            "0",
            "--kube-port",
            "0",
            // The walkthrough makes no bucket; local.rs covers outpost-local's own Ceph.
            "--no-ceph",
        ],
        &[],
    )
    .expect("outpost-local starts");
    let api = local.ready_field("api");
    let dir = local.dir.path().to_owned();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let commands = markdown_commands(&readme, "walkthrough");
    assert!(
        commands.len() >= 12,
        "walkthrough has {} commands",
        commands.len()
    );
    let grpcurl_dir = outpost_e2e::grpcurl().parent().expect("dir").to_path_buf();
    let path = format!(
        "{}:{}",
        grpcurl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env = BTreeMap::from([("PATH".to_owned(), path)]);
    run_walkthrough(&dir, &mut env, &commands, Some(&api));
    // The walkthrough's end state, read back: the rollback's spec is the service's again and
    // runs in staging; the broken deployment failed for its reason; production runs the
    // promoted deployment.
    let alice = env.get("ALICE").expect("ALICE was exported");
    let get = |method: &str, name: &str| {
        let got = grpcurl_call(
            &api,
            alice,
            &format!("outpost.management.v1.{method}"),
            &format!(r#"{{"name":"{name}"}}"#),
        );
        assert!(got.status.success(), "{}", both(&got));
        serde_json::from_slice::<serde_json::Value>(&got.stdout).expect("json")
    };
    let staging = get(
        "ServiceService/GetService",
        "tenants/acme/projects/shop/environments/staging/services/api",
    );
    assert_eq!(staging["state"], "SERVICE_STATE_DEPLOYED", "{staging}");
    assert_eq!(staging["replicas"], 2, "{staging}");
    assert!(
        staging["liveDeployment"]
            .as_str()
            .is_some_and(|d| d.ends_with("/deployments/4")),
        "{staging}"
    );
    let broken = get(
        "DeploymentService/GetDeployment",
        "tenants/acme/projects/shop/environments/staging/services/api/deployments/3",
    );
    assert_eq!(
        broken["status"], "DEPLOYMENT_STATUS_DEPLOYMENT_ERROR",
        "{broken}"
    );
    assert_eq!(
        broken["failureReason"], "FAILURE_REASON_IMAGE_PULL_FAILED",
        "{broken}"
    );
    let first = get(
        "DeploymentService/GetDeployment",
        "tenants/acme/projects/shop/environments/staging/services/api/deployments/1",
    );
    let history: Vec<&str> = first["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        history,
        [
            "DEPLOYMENT_STATUS_QUEUED",
            "DEPLOYMENT_STATUS_DEPLOYING",
            "DEPLOYMENT_STATUS_DEPLOYED"
        ]
    );
    let production = get(
        "ServiceService/GetService",
        "tenants/acme/projects/shop/environments/production/services/api",
    );
    assert_eq!(
        production["state"], "SERVICE_STATE_DEPLOYED",
        "{production}"
    );
    // Tokens appear in no log line, even at debug level.
    let log = local.log();
    for (name, token) in [("TOKEN", env.get("TOKEN")), ("ALICE", Some(alice))] {
        let token = token.expect("exported");
        assert!(!log.contains(token.as_str()), "the {name} token was logged");
    }
    local.stop(&[]).expect("clean stop");
}

#[test]
fn bad_configuration_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(bin("outpost-management"));
        cmd.current_dir(dir.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run")
    };
    let out = run(&[("OUTPOST_API__DEFAULT_DEADLINE_SECS", "0")], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        both(&out).contains("api.default_deadline_secs"),
        "{}",
        both(&out)
    );
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[store]\nurll = \"sqlite://x\"\n").expect("write");
    let out = run(&[], &["--config", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(both(&out).contains("urll"), "{}", both(&out));
    let out = run(&[("OUTPOST_STORE__URL", "mysql://nope")], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(both(&out).contains("store.url"), "{}", both(&out));
    // Nothing was bound or created by a refused start.
    assert!(!dir.path().join("outpost-data").exists());
}

#[test]
fn data_survives_a_restart_and_the_bootstrap_token_is_shown_once() {
    let first = Management::start(&[]).expect("start");
    let token = first.admin_token();
    let token_file = first.dir.join("outpost-data/admin-token");
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the bootstrap token file is private");
    let created = grpcurl_call(
        &first.api,
        &token,
        "outpost.management.v1.TenantService/CreateTenant",
        r#"{"tenant_id":"durable","tenant":{}}"#,
    );
    assert!(created.status.success(), "{}", both(&created));
    let dir = first.stop(&[]).expect("clean stop");

    let second = Management::start_in(dir, &[]).expect("restart");
    let got = grpcurl_call(
        &second.api,
        &token,
        "outpost.management.v1.TenantService/GetTenant",
        r#"{"name":"tenants/durable"}"#,
    );
    assert!(got.status.success(), "{}", both(&got));
    let banner = std::fs::read_to_string(&second.stdout_path).expect("stdout");
    assert_eq!(
        banner.matches("Bootstrap admin token").count(),
        1,
        "{banner}"
    );
    assert_eq!(banner.matches(&token).count(), 1);
    second.stop(&[]).expect("clean stop");
}

#[test]
fn health_reflection_and_metrics_are_served() {
    let server = Management::start(&[]).expect("start");
    let health = grpcurl_call(&server.api, "", "grpc.health.v1.Health/Check", "{}");
    assert!(stdout(&health).contains("SERVING"), "{}", both(&health));
    let unauthenticated = grpcurl_call(
        &server.api,
        "",
        "outpost.management.v1.TenantService/ListTenants",
        "{}",
    );
    assert_eq!(
        unauthenticated.status.code(),
        Some(64 + 16),
        "{}",
        both(&unauthenticated)
    );
    let body = server.metrics_text();
    assert!(body.contains("outpost_rpc_requests_total"), "{body}");
    assert!(body.contains("code=\"UNAUTHENTICATED\""), "{body}");
    server.stop(&[]).expect("clean stop");
}

/// The shared-database topology: two instances on one PostgreSQL. The bootstrap admin is
/// made once, and a change through either instance is visible through the other.
#[test]
fn two_instances_share_one_postgres_database() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(outpost_store::testing::fresh_postgres_url());
    // Instances sharing a database share the key that seals the agent CA too.
    let shared = tempfile::tempdir().expect("dir");
    let key_file = shared.path().join("ca.key");
    let key_file = key_file.to_str().expect("utf-8");
    let env = [
        ("OUTPOST_STORE__URL", url.as_str()),
        ("OUTPOST_CA__KEY_FILE", key_file),
    ];
    let one = Management::start(&env).expect("first instance");
    let two = Management::start(&env).expect("second instance");
    assert_eq!(
        one.process.ready_field("ca_fingerprint"),
        two.process.ready_field("ca_fingerprint"),
        "one CA for both"
    );
    let tokens: Vec<String> = [&one, &two]
        .iter()
        .map(|m| m.admin_token())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(tokens.len(), 1, "exactly one instance bootstraps the admin");
    let token = &tokens[0];
    let created = grpcurl_call(
        &one.api,
        token,
        "outpost.management.v1.TenantService/CreateTenant",
        r#"{"tenant_id":"shared","tenant":{}}"#,
    );
    assert!(created.status.success(), "{}", both(&created));
    let seen = grpcurl_call(
        &two.api,
        token,
        "outpost.management.v1.TenantService/GetTenant",
        r#"{"name":"tenants/shared"}"#,
    );
    assert!(seen.status.success(), "{}", both(&seen));
    let again = grpcurl_call(
        &two.api,
        token,
        "outpost.management.v1.TenantService/CreateTenant",
        r#"{"tenant_id":"shared","tenant":{}}"#,
    );
    assert_eq!(
        again.status.code(),
        Some(64 + 6),
        "ALREADY_EXISTS through the other instance: {}",
        both(&again)
    );
    one.stop(&[]).expect("clean stop");
    two.stop(&[]).expect("clean stop");
}

/// The catalog: the built-in providers for every signed-in caller, an operator's extra
/// definition from the providers directory, and a broken one stopping the start naming it.
#[test]
fn providers_come_built_in_and_from_the_operators_directory() {
    let dir = tempfile::tempdir().expect("dir");
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).expect("providers dir");
    let redis = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/domain/providers/redis.json"
    ))
    .expect("redis.json");
    std::fs::write(
        providers.join("valkey.json"),
        redis.replace("\"redis\"", "\"valkey\""),
    )
    .expect("write");
    let providers_dir = providers.to_str().expect("utf-8").to_owned();
    let server =
        Management::start(&[("OUTPOST_PROVIDERS__DIR", providers_dir.as_str())]).expect("start");
    let admin = server.admin_token();
    let out = grpcurl_call(
        &server.api,
        &admin,
        "outpost.management.v1.ProviderService/ListProviders",
        "{}",
    );
    assert!(out.status.success(), "{}", both(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = list["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "providers/bucket",
            "providers/postgresql",
            "providers/redis",
            "providers/valkey"
        ]
    );
    let out = grpcurl_call(
        &server.api,
        &admin,
        "outpost.management.v1.ProviderService/GetProvider",
        r#"{"name":"providers/postgresql"}"#,
    );
    let pg: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(pg["category"], "PROVIDER_CATEGORY_DATABASE");
    assert_eq!(
        pg["updateRules"]["storage_gib"],
        "UPDATE_RULE_INCREASE_ONLY"
    );
    assert_eq!(
        pg["configSchema"]["properties"]["version"]["enum"],
        serde_json::json!(["15", "16"])
    );
    let out = grpcurl_call(
        &server.api,
        &admin,
        "outpost.management.v1.ProviderService/GetProvider",
        r#"{"name":"providers/nope"}"#,
    );
    assert!(both(&out).contains("NotFound"), "{}", both(&out));
    server.stop(&[]).expect("stops");

    std::fs::write(providers.join("broken.json"), "{ not json").expect("write");
    let out = Command::new(bin("outpost-management"))
        .current_dir(dir.path())
        .env("OUTPOST_PROVIDERS__DIR", &providers_dir)
        .env("OUTPOST_API__LISTEN", "127.0.0.1:0")
        .env("OUTPOST_GATEWAY__LISTEN", "127.0.0.1:0")
        .env("OUTPOST_METRICS__LISTEN", "127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(both(&out).contains("broken.json"), "{}", both(&out));
}
