//! Managed services end to end: the management service, a simulated cluster and an agent as
//! separate processes with real mutual TLS, driven with the real grpcurl and checked with
//! the real kubectl; buckets in the real Ceph that `scripts/ceph` starts (scripts/test
//! does), used with an ordinary S3 client, the AWS CLI.

use std::{path::Path, process::Command, time::Duration};

use outpost_e2e::{Installation, grpcurl_call, kubectl, wait_for};
use serde_json::{Value, json};

const ENV: &str = "tenants/acme/projects/shop/environments/production";
const ORDERS_DB: &str =
    "tenants/acme/projects/shop/environments/production/managedServices/orders-db";
const CACHE: &str = "tenants/acme/projects/shop/environments/production/managedServices/cache";
const UPLOADS: &str = "tenants/acme/projects/shop/environments/production/managedServices/uploads";

const DB_PASSWORD: &str = "orders-db-password-1";
const DB_PASSWORD_2: &str = "orders-db-password-2";
const CACHE_PASSWORD: &str = "cache-password-123";
const BUCKET_SECRET: &str = "uploadsSecretKey0123456789";

/// Ceph's settings from `scripts/ceph`; a test needing Ceph fails naming them when absent.
struct CephVars {
    conf: String,
    endpoint: String,
    access_key: String,
    secret_key: String,
}

fn ceph_vars() -> CephVars {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: bucket tests need a real Ceph. Start one with \
                 `eval \"$(scripts/ceph)\"` (scripts/test does)"
            )
        })
    };
    CephVars {
        conf: var("OUTPOST_TEST_CEPH_CONF"),
        endpoint: var("OUTPOST_TEST_RGW_ENDPOINT"),
        access_key: var("OUTPOST_TEST_RGW_ACCESS_KEY"),
        secret_key: var("OUTPOST_TEST_RGW_SECRET_KEY"),
    }
}

trait Managed {
    fn managed(&self, name: &str) -> Value;
    fn wait_managed(&self, name: &str, state: &str) -> Value;
    fn kube(&self, kind: &str) -> Vec<Value>;
    fn kube_one(&self, kind: &str, name: &str) -> Option<Value>;
}

impl Managed for Installation {
    fn managed(&self, name: &str) -> Value {
        self.ok(
            "ManagedServiceService/GetManagedService",
            json!({"name": name}),
        )
    }

    fn wait_managed(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_for(
            &format!("{name} to be {state}"),
            Duration::from_secs(60),
            || {
                last = self.managed(name);
                last["state"] == format!("MANAGED_SERVICE_STATE_{state}")
            },
        )
        .unwrap_or_else(|e| {
            let agent = self.agent.as_ref().map(|a| a.log()).unwrap_or_default();
            panic!("{e}: {last}\nagent log:\n{agent}")
        });
        last
    }

    /// The managed services' objects of `kind`, as kubectl lists them.
    fn kube(&self, kind: &str) -> Vec<Value> {
        let out = kubectl(
            &self.kubeconfig,
            self.kube_home.path(),
            &[
                "get",
                kind,
                "-A",
                "-l",
                "outpost.dev/managed-service",
                "-o",
                "json",
            ],
        );
        let list: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The managed-service object of `kind` labelled as `name`'s.
    fn kube_one(&self, kind: &str, name: &str) -> Option<Value> {
        self.kube(kind)
            .into_iter()
            .find(|o| o["metadata"]["labels"]["outpost.dev/managed-service"] == name)
    }
}

/// The Kubernetes name of a managed service's objects, from its details' host.
fn object_name(service: &Value) -> String {
    let host = service["details"]["host"].as_str().expect("a host");
    host.split('.').next().expect("a name").to_owned()
}

fn error_of(result: Result<Value, String>) -> String {
    result.expect_err("refused")
}

#[test]
fn postgresql_and_redis_update_pause_resume_and_delete_keeping_their_volume_until_deleted() {
    let inst = Installation::start(&[]);
    inst.ok(
        "ManagedServiceService/CreateManagedService",
        json!({"parent": ENV, "managed_service_id": "orders-db",
               "managed_service": {"provider": "providers/postgresql",
                   "config": {"version": "16", "storage_gib": 10, "shape": "FLX", "database": "orders", "user": "shop"}},
               "secrets": {"password": DB_PASSWORD}}),
    );
    inst.ok(
        "ManagedServiceService/CreateManagedService",
        json!({"parent": ENV, "managed_service_id": "cache",
               "managed_service": {"provider": "providers/redis",
                   "config": {"version": "7", "shape": "FLX", "storage_gib": 1}},
               "secrets": {"password": CACHE_PASSWORD}}),
    );
    let db = inst.wait_managed(ORDERS_DB, "SYNCHRONIZED");
    assert_eq!(db["details"]["port"], json!(5432));
    assert_eq!(db["details"]["database"], "orders");
    let host = db["details"]["host"].as_str().expect("host");
    assert!(host.ends_with(".svc.cluster.local"), "{host}");
    let cache = inst.wait_managed(CACHE, "SYNCHRONIZED");
    assert_eq!(cache["details"]["port"], json!(6379));
    let (db_name, cache_name) = (object_name(&db), object_name(&cache));

    // What the cluster runs: one pod on its own claim, the password only in the Secret.
    let sts = inst
        .kube_one("statefulsets", &db_name)
        .expect("a StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 1);
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "postgres:16");
    assert!(!sts.to_string().contains(DB_PASSWORD));
    let claim = inst.kube_one("pvc", &db_name).expect("a claim");
    let claim_uid = claim["metadata"]["uid"].as_str().expect("uid").to_owned();
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
    assert_eq!(claim["status"]["phase"], "Bound");
    assert!(inst.kube_one("services", &db_name).is_some());
    assert!(inst.kube_one("secrets", &db_name).is_some());

    // Updates: an editable and an increase-only field change; an immutable one and a
    // shrink are refused naming the field.
    let config = |version: &str, storage: i64, shape: &str| json!({"version": version, "storage_gib": storage, "shape": shape, "database": "orders", "user": "shop"});
    let update = |config: Value| {
        inst.call(
            "ManagedServiceService/UpdateManagedService",
            json!({"managed_service": {"name": ORDERS_DB, "config": config}}),
        )
    };
    let refused = error_of(update(config("15", 20, "MAX")));
    assert!(
        refused.contains("InvalidArgument") && refused.contains("config.version"),
        "{refused}"
    );
    let refused = error_of(update(config("16", 5, "FLX")));
    assert!(refused.contains("config.storage_gib"), "{refused}");
    let updating = update(config("16", 20, "MAX")).expect("allowed");
    assert_eq!(updating["state"], "MANAGED_SERVICE_STATE_UPDATING");
    inst.wait_managed(ORDERS_DB, "SYNCHRONIZED");
    let claim = inst.kube_one("pvc", &db_name).expect("a claim");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(
        claim["metadata"]["uid"],
        claim_uid.as_str(),
        "grown in place"
    );
    let sts = inst
        .kube_one("statefulsets", &db_name)
        .expect("a StatefulSet");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "1000m"
    );
    // Redis: its shape may change, its version and storage may not go back.
    let update_cache = |config: Value| {
        inst.call(
            "ManagedServiceService/UpdateManagedService",
            json!({"managed_service": {"name": CACHE, "config": config}}),
        )
    };
    let refused = error_of(update_cache(
        json!({"version": "6", "shape": "FLX", "storage_gib": 1}),
    ));
    assert!(refused.contains("config.version"), "{refused}");
    let refused = error_of(update_cache(json!({"version": "7", "shape": "FLX"})));
    assert!(refused.contains("config.storage_gib"), "{refused}");
    update_cache(json!({"version": "7", "shape": "PWR", "storage_gib": 1})).expect("allowed");
    inst.wait_managed(CACHE, "SYNCHRONIZED");
    let sts = inst
        .kube_one("statefulsets", &cache_name)
        .expect("a StatefulSet");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "4096Mi"
    );

    // Pause releases compute and keeps the very same claim; resume attaches it again.
    inst.ok(
        "ManagedServiceService/PauseManagedService",
        json!({"name": ORDERS_DB}),
    );
    inst.ok(
        "ManagedServiceService/PauseManagedService",
        json!({"name": CACHE}),
    );
    inst.wait_managed(ORDERS_DB, "PAUSED");
    inst.wait_managed(CACHE, "PAUSED");
    let sts = inst.kube_one("statefulsets", &db_name).expect("kept");
    assert_eq!(sts["spec"]["replicas"], 0);
    assert!(
        inst.kube("pods")
            .iter()
            .all(|p| p["metadata"]["labels"]["outpost.dev/managed-service"] != db_name.as_str()),
        "no pod while paused"
    );
    let cache_claim = inst
        .kube_one("pvc", &cache_name)
        .expect("redis keeps its claim");
    assert_eq!(
        inst.kube_one("pvc", &db_name).expect("kept")["metadata"]["uid"],
        claim_uid.as_str()
    );
    let refused = error_of(update(config("16", 30, "MAX")));
    assert!(
        refused.contains("FailedPrecondition") && refused.contains("resume it first"),
        "{refused}"
    );
    inst.ok(
        "ManagedServiceService/ResumeManagedService",
        json!({"name": ORDERS_DB}),
    );
    inst.ok(
        "ManagedServiceService/ResumeManagedService",
        json!({"name": CACHE}),
    );
    inst.wait_managed(ORDERS_DB, "SYNCHRONIZED");
    inst.wait_managed(CACHE, "SYNCHRONIZED");
    assert_eq!(
        inst.kube_one("pvc", &db_name).expect("kept")["metadata"]["uid"],
        claim_uid.as_str(),
        "the same volume before and after the pause"
    );
    assert_eq!(
        inst.kube_one("pvc", &cache_name).expect("kept")["metadata"]["uid"],
        cache_claim["metadata"]["uid"]
    );
    let sts = inst.kube_one("statefulsets", &db_name).expect("back");
    assert_eq!(sts["spec"]["replicas"], 1);

    // A secret reset warns of downtime, reaches the Secret and never an answer.
    let reset = inst.ok(
        "ManagedServiceService/ResetManagedServiceSecrets",
        json!({"name": ORDERS_DB, "secrets": {"password": DB_PASSWORD_2}}),
    );
    assert!(
        reset["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("downtime")
            || reset["warning"]
                .as_str()
                .unwrap_or_default()
                .contains("restart"),
        "{reset}"
    );
    inst.wait_managed(ORDERS_DB, "SYNCHRONIZED");
    let secret = inst.kube_one("secrets", &db_name).expect("Secret");
    let stored = secret["data"]["POSTGRES_PASSWORD"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(base64_decode(stored), DB_PASSWORD_2);

    // Deletion needs the id typed; then compute and data go, and it is listed as deleted.
    let refused = error_of(inst.call(
        "ManagedServiceService/DeleteManagedService",
        json!({"name": ORDERS_DB, "confirm": "orders"}),
    ));
    assert!(refused.contains("confirm"), "{refused}");
    for (name, id) in [(ORDERS_DB, "orders-db"), (CACHE, "cache")] {
        inst.ok(
            "ManagedServiceService/DeleteManagedService",
            json!({"name": name, "confirm": id}),
        );
    }
    // A watch follows the deletion to its end.
    let watched = grpcurl_call(
        &inst.server.api,
        &inst.admin,
        "outpost.management.v1.ManagedServiceService/WatchManagedService",
        &json!({"name": ORDERS_DB}).to_string(),
    );
    assert!(watched.status.success(), "{}", text(&watched));
    let states: Vec<Value> = serde_json::Deserializer::from_slice(&watched.stdout)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .map(|m| m["state"].clone())
        .collect();
    assert_eq!(
        states.last(),
        Some(&json!("MANAGED_SERVICE_STATE_DELETED")),
        "{states:?}"
    );
    for (name, object) in [(ORDERS_DB, &db_name), (CACHE, &cache_name)] {
        let mut last = Value::Null;
        wait_for(&format!("{name} deleted"), Duration::from_secs(60), || {
            let deleted = inst.ok(
                "ManagedServiceService/ListDeletedManagedServices",
                json!({"parent": ENV}),
            );
            last = deleted.clone();
            deleted["managedServices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["name"] == name && m["state"] == "MANAGED_SERVICE_STATE_DELETED")
        })
        .unwrap_or_else(|e| panic!("{e}: {last}"));
        for kind in ["statefulsets", "services", "secrets", "pvc"] {
            assert!(
                inst.kube_one(kind, object).is_none(),
                "{kind} of {name} left behind"
            );
        }
        let gone = error_of(inst.call(
            "ManagedServiceService/GetManagedService",
            json!({"name": name}),
        ));
        assert!(gone.contains("NotFound"), "{gone}");
    }

    let logs = format!(
        "{}{}",
        inst.server.log(),
        inst.agent.as_ref().expect("agent").log()
    );
    let events: Vec<Value> = [ORDERS_DB, CACHE]
        .iter()
        .map(|name| {
            inst.ok(
                "EventService/ListEvents",
                json!({"parent": name, "page_size": 1000}),
            )
        })
        .collect();
    let events = Value::from(events);
    for secret in [DB_PASSWORD, DB_PASSWORD_2, CACHE_PASSWORD] {
        assert!(!logs.contains(secret), "a password in a log");
        assert!(
            !events.to_string().contains(secret),
            "a password in an event"
        );
    }
    let reasons = events.to_string();
    for reason in [
        "Creating",
        "Synchronized",
        "Paused",
        "Resuming",
        "Deleted",
        "ManagedReady",
    ] {
        assert!(reasons.contains(reason), "no {reason} event: {reasons}");
    }
    inst.stop(&["link failed"]);
}

#[test]
fn an_operators_provider_runs_and_a_datacenter_failure_ends_in_error_with_the_reason() {
    let providers = tempfile::tempdir().expect("dir");
    let redis = include_str!("../../../services/domain/providers/redis.json");
    let valkey = redis
        .replace("\"redis\"", "\"valkey\"")
        .replace("redis:${config.version}", "valkey/valkey:${config.version}");
    // The simulated cluster cannot pull an image whose tag contains `fail-pull`.
    let broken = redis.replace("\"redis\"", "\"broken\"").replace(
        "redis:${config.version}",
        "redis:${config.version}-fail-pull",
    );
    std::fs::write(providers.path().join("valkey.json"), valkey).expect("write");
    std::fs::write(providers.path().join("broken.json"), broken).expect("write");
    let dir = providers.path().to_str().expect("utf-8");
    let inst = Installation::start_with(&[("OUTPOST_PROVIDERS__DIR", dir)], &[]);
    for (id, provider) in [("sessions", "valkey"), ("doomed", "broken")] {
        inst.ok(
            "ManagedServiceService/CreateManagedService",
            json!({"parent": ENV, "managed_service_id": id,
                   "managed_service": {"provider": format!("providers/{provider}"),
                       "config": {"version": "7", "shape": "FLX"}},
                   "secrets": {"password": CACHE_PASSWORD}}),
        );
    }
    let sessions = inst.wait_managed(&format!("{ENV}/managedServices/sessions"), "SYNCHRONIZED");
    let sts = inst
        .kube_one("statefulsets", &object_name(&sessions))
        .expect("a StatefulSet");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "valkey/valkey:7"
    );
    let doomed = inst.wait_managed(&format!("{ENV}/managedServices/doomed"), "ERROR");
    let why = doomed["stateMessage"].as_str().unwrap_or_default();
    assert!(why.contains("could not be pulled"), "{why}");
    let events = inst.ok(
        "EventService/ListEvents",
        json!({"parent": format!("{ENV}/managedServices/doomed")}),
    );
    assert!(events.to_string().contains("Failed"), "{events}");
    inst.stop(&["link failed"]);
}

fn base64_decode(text: &str) -> String {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the AWS CLI against the RGW at `endpoint` with `keys`, in `dir`. With `--debug`:
/// the CLI fails formatting RGW's errors that carry no message (QuotaExceeded,
/// InvalidAccessKeyId), so their codes are read from its log of the answer.
fn aws(endpoint: &str, keys: (&str, &str), dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("aws")
        .args([
            "--debug",
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
        ])
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the aws CLI runs (scripts/test installs it)")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Ceph admin user allowed to manage users but not buckets: it cannot set a bucket's
/// quota, which is what Ceph refusing a quota looks like.
fn limited_admin(ceph: &CephVars) -> (String, String) {
    let uid = format!("limited-{}", std::process::id());
    let out = Command::new("radosgw-admin")
        .args(["--conf", &ceph.conf, "user", "create", "--uid", &uid])
        .args(["--display-name", "users only", "--caps", "users=*"])
        .output()
        .expect("radosgw-admin runs");
    assert!(out.status.success(), "{}", text(&out));
    let user: Value = serde_json::from_slice(&out.stdout).expect("json");
    let key = &user["keys"][0];
    let field = |k: &str| key[k].as_str().expect(k).to_owned();
    (field("access_key"), field("secret_key"))
}

#[test]
fn buckets_in_the_real_ceph_hold_objects_within_their_quota_and_vanish_with_their_user() {
    let ceph = ceph_vars();
    let ceph_flags = |access: &str, secret: &str| -> Vec<String> {
        [
            "--rgw-endpoint",
            &ceph.endpoint,
            "--rgw-access-key",
            access,
            "--rgw-secret-key",
            secret,
            "--ceph-conf",
            &ceph.conf,
            "--progress-deadline",
            "20s",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    // First with an admin key Ceph lets make users but not set bucket quotas.
    let (limited_key, limited_secret) = limited_admin(&ceph);
    let limited = ceph_flags(&limited_key, &limited_secret);
    let mut inst = Installation::start(&limited.iter().map(String::as_str).collect::<Vec<_>>());

    // The datacenter shows Ceph's capacity as `ceph df` reports it.
    let mut agent = Value::Null;
    wait_for("the storage capacity", Duration::from_secs(60), || {
        agent = inst.ok(
            "DatacenterService/GetDatacenter",
            json!({"name": "datacenters/dc1"}),
        )["agent"]
            .clone();
        agent["storageBytes"].as_str().is_some_and(|b| b != "0")
    })
    .unwrap_or_else(|e| panic!("{e}: {agent}"));
    assert_eq!(agent["objectStorage"], true);
    let df = Command::new("ceph")
        .args(["--conf", &ceph.conf, "df", "--format", "json"])
        .output()
        .expect("ceph runs");
    let df: Value = serde_json::from_slice(&df.stdout).expect("ceph df json");
    assert_eq!(
        agent["storageBytes"].as_str().expect("bytes"),
        df["stats"]["total_bytes"].to_string(),
        "the API shows Ceph's own total"
    );

    inst.ok(
        "ManagedServiceService/CreateManagedService",
        json!({"parent": ENV, "managed_service_id": "uploads",
               "managed_service": {"provider": "providers/bucket", "config": {"quota_gib": 0.001}},
               "secrets": {"secret_key": BUCKET_SECRET}}),
    );
    let failed = inst.wait_managed(UPLOADS, "ERROR");
    let why = failed["stateMessage"].as_str().unwrap_or_default();
    assert!(
        why.contains("quota") && why.contains("AccessDenied"),
        "the reason names the refused quota: {why}"
    );

    // With the full admin key, an update from ERROR converges.
    let dir = inst
        .agent
        .take()
        .expect("agent")
        .stop(&["link failed", "Ceph capacity unknown"])
        .expect("agent stops");
    let full = ceph_flags(&ceph.access_key, &ceph.secret_key);
    inst.start_agent(
        dir,
        &full.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    inst.ok(
        "ManagedServiceService/UpdateManagedService",
        json!({"managed_service": {"name": UPLOADS, "config": {"quota_gib": 0.001}}}),
    );
    let bucket = inst.wait_managed(UPLOADS, "SYNCHRONIZED");
    let details = &bucket["details"];
    let (endpoint, name, access_key) = (
        details["endpoint"].as_str().expect("endpoint"),
        details["bucket"].as_str().expect("bucket"),
        details["accessKey"]
            .as_str()
            .or(details["access_key"].as_str())
            .expect("access key"),
    );
    assert_eq!(endpoint, ceph.endpoint.trim_end_matches('/'));

    // An ordinary S3 client with the details and the secret the tenant chose.
    let work = tempfile::tempdir().expect("dir");
    let keys = (access_key, BUCKET_SECRET);
    let url = |key: &str| format!("s3://{name}/{key}");
    std::fs::write(work.path().join("small"), vec![b'a'; 600 << 10]).expect("write");
    std::fs::write(work.path().join("large"), vec![b'b'; 600 << 10]).expect("write");
    let put = aws(
        endpoint,
        keys,
        work.path(),
        &["s3", "cp", "small", &url("small")],
    );
    assert!(put.status.success(), "{}", text(&put));
    let get = aws(
        endpoint,
        keys,
        work.path(),
        &["s3", "cp", &url("small"), "back"],
    );
    assert!(get.status.success(), "{}", text(&get));
    assert_eq!(
        std::fs::read(work.path().join("back")).expect("read"),
        vec![b'a'; 600 << 10]
    );
    // 0.001 GiB is about 1 MiB: a second object of 600 KiB passes it.
    let put_large = [
        "s3api",
        "put-object",
        "--bucket",
        name,
        "--key",
        "large",
        "--body",
        "large",
    ];
    let over = aws(endpoint, keys, work.path(), &put_large);
    assert!(!over.status.success(), "the quota holds");
    assert!(text(&over).contains("QuotaExceeded"), "{}", text(&over));
    // A bucket cannot pause, and its config still follows the schema.
    let refused = error_of(inst.call(
        "ManagedServiceService/PauseManagedService",
        json!({"name": UPLOADS}),
    ));
    assert!(refused.contains("FailedPrecondition"), "{refused}");
    let refused = error_of(inst.call(
        "ManagedServiceService/UpdateManagedService",
        json!({"managed_service": {"name": UPLOADS, "config": {"quota_gib": -1}}}),
    ));
    assert!(refused.contains("config.quota_gib"), "{refused}");
    // Raising the quota (an editable field) lets it in.
    inst.ok(
        "ManagedServiceService/UpdateManagedService",
        json!({"managed_service": {"name": UPLOADS, "config": {"quota_gib": 0.01}}}),
    );
    inst.wait_managed(UPLOADS, "SYNCHRONIZED");
    let fits = aws(endpoint, keys, work.path(), &put_large);
    assert!(fits.status.success(), "{}", text(&fits));

    // Deleting removes the bucket with its objects and the user (its keys stop working).
    let refused = error_of(inst.call(
        "ManagedServiceService/DeleteManagedService",
        json!({"name": UPLOADS, "confirm": "Uploads"}),
    ));
    assert!(refused.contains("confirm"), "{refused}");
    inst.ok(
        "ManagedServiceService/DeleteManagedService",
        json!({"name": UPLOADS, "confirm": "uploads"}),
    );
    wait_for("uploads deleted", Duration::from_secs(60), || {
        inst.call(
            "ManagedServiceService/GetManagedService",
            json!({"name": UPLOADS}),
        )
        .is_err()
    })
    .expect("deleted");
    let dead = aws(
        endpoint,
        keys,
        work.path(),
        &["s3", "ls", &format!("s3://{name}")],
    );
    assert!(!dead.status.success());
    assert!(
        text(&dead).contains("InvalidAccessKeyId"),
        "{}",
        text(&dead)
    );
    let admin = (ceph.access_key.as_str(), ceph.secret_key.as_str());
    let gone = aws(
        endpoint,
        admin,
        work.path(),
        &["s3api", "head-bucket", "--bucket", name],
    );
    assert!(
        !gone.status.success(),
        "the bucket is gone: {}",
        text(&gone)
    );
    assert!(text(&gone).contains("404"), "{}", text(&gone));

    let logs = format!(
        "{}{}",
        inst.server.log(),
        inst.agent.as_ref().expect("agent").log()
    );
    assert!(!logs.contains(BUCKET_SECRET), "the secret key in a log");
    assert!(!bucket.to_string().contains(BUCKET_SECRET));
    inst.stop(&["link failed", "Ceph capacity unknown"]);
}
