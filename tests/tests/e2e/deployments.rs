//! Deployments end to end: the management service, a simulated cluster and an agent as
//! separate processes on loopback with real mutual TLS, driven with the real grpcurl. Every
//! failure reason, cancel, queue, stop/restart, secrets, rollback, promote and redeploy.

use std::time::Duration;

use outpost_e2e::{Grpcurl, Installation, kubectl, wait_for};
use serde_json::{Value, json};

const WEB: &str = "tenants/acme/projects/shop/environments/production/services/web";
const STAGING_WEB: &str = "tenants/acme/projects/shop/environments/staging/services/web";

/// What these tests do with an [`Installation`].
trait Deployments {
    fn service(&self, name: &str) -> Value;

    fn deploy(&self, service: &str, image: Option<&str>) -> Value;

    /// Waits for a deployment to reach a final status and returns it; while it rolls out,
    /// checks that the service never has fewer ready replicas than `serving` (zero downtime).
    fn finished(&self, deployment: &str, serving: i64) -> Value;

    fn wait_state(&self, service: &str, state: &str) -> Value;

    /// The Deployment object of a service, as the real kubectl reads it from the cluster.
    fn kube_deployment(&self, service: &str) -> Value;
}

impl Deployments for Installation {
    fn service(&self, name: &str) -> Value {
        self.ok("ServiceService/GetService", json!({"name": name}))
    }

    fn deploy(&self, service: &str, image: Option<&str>) -> Value {
        if let Some(image) = image {
            self.ok(
                "ServiceService/UpdateService",
                json!({"service": {"name": service, "image": image}, "update_mask": {"paths": ["image"]}}),
            );
        }
        self.ok("DeploymentService/DeployService", json!({"name": service}))
    }

    /// Waits for a deployment to reach a final status and returns it; while it rolls out,
    /// checks that the service never has fewer ready replicas than `serving` (zero downtime).
    fn finished(&self, deployment: &str, serving: i64) -> Value {
        let service = deployment.split("/deployments/").next().unwrap_or_default();
        let mut last = Value::Null;
        wait_for(
            &format!("{deployment} to finish"),
            Duration::from_secs(90),
            || {
                last = self.ok(
                    "DeploymentService/GetDeployment",
                    json!({"name": deployment}),
                );
                if serving > 0 {
                    let ready = self.service(service)["status"]["readyReplicas"]
                        .as_i64()
                        .unwrap_or(0);
                    assert!(
                        ready >= serving,
                        "only {ready} replicas served during the rollout of {deployment}"
                    );
                }
                ["DEPLOYED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"]
                    .iter()
                    .any(|s| last["status"] == format!("DEPLOYMENT_STATUS_{s}"))
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}\n{}", self.server.log()));
        last
    }

    fn wait_state(&self, service: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_for(
            &format!("{service} to be {state}"),
            Duration::from_secs(60),
            || {
                last = self.service(service);
                last["state"] == format!("SERVICE_STATE_{state}")
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}"));
        last
    }

    /// The Deployment object of a service, as the real kubectl reads it from the cluster.
    fn kube_deployment(&self, service: &str) -> Value {
        let name = service.rsplit('/').next().unwrap_or_default();
        let out = kubectl(
            &self.kubeconfig,
            self.kube_home.path(),
            &["get", "deployments", "-A", "-o", "json"],
        );
        let list: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| {
                d["metadata"]["name"] == name
                    && d["metadata"]["annotations"]["outpost.dev/service"] == service
            })
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// An [`Installation`] whose agent judges health after `health_grace`, with service `web` in
/// production.
fn installation(health_grace: &str) -> Installation {
    let inst = Installation::start(&["--health-grace", health_grace]);
    inst.ok(
        "ServiceService/CreateService",
        json!({"parent": "tenants/acme/projects/shop/environments/production", "service_id": "web",
               "service": {"image": "registry.example.com/web:1", "shape": "SHAPE_FLX", "replicas": 2,
                           "ports": [{"container_port": 8080}], "health_check_path": "/healthz"}}),
    );
    inst
}

fn status(d: &Value) -> &str {
    d["status"].as_str().unwrap_or_default()
}

fn name(d: &Value) -> String {
    d["name"].as_str().expect("a name").to_owned()
}

/// Every message of a grpcurl server stream (it prints one JSON object after another).
fn stream_messages(stdout: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(stdout)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn rollouts_succeed_fail_with_their_reason_and_never_take_the_live_version_down() {
    let inst = installation("3s");

    // The first deploy, watched with the real grpcurl until it is final.
    let first = inst.deploy(WEB, None);
    assert_eq!(first["kind"], "DEPLOYMENT_KIND_DEPLOY");
    let watch = Grpcurl::call(&inst.server.api, "DeploymentService/WatchDeployment")
        .max_time(90)
        .token(&inst.admin)
        .data(&json!({"name": name(&first)}).to_string())
        .output();
    assert!(
        watch.status.success(),
        "{}",
        String::from_utf8_lossy(&watch.stderr)
    );
    let seen: Vec<String> = stream_messages(&watch.stdout)
        .iter()
        .map(|d| status(d).to_owned())
        .collect();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("DEPLOYMENT_STATUS_DEPLOYING"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("DEPLOYMENT_STATUS_DEPLOYED"),
        "{seen:?}"
    );
    let web = inst.service(WEB);
    assert_eq!(web["state"], "SERVICE_STATE_DEPLOYED");
    assert_eq!(web["liveDeployment"], name(&first));

    // Each failure reason: the rollout is aborted, and the live version serves throughout
    // and afterwards.
    for (marker, reason) in [
        ("fail-pull", "IMAGE_PULL_FAILED"),
        ("fail-crash", "CRASH_LOOP"),
        ("fail-oom", "OUT_OF_MEMORY"),
        ("fail-health", "HEALTH_CHECK_FAILED"),
    ] {
        let broken = inst.deploy(WEB, Some(&format!("registry.example.com/web:2-{marker}")));
        let done = inst.finished(&name(&broken), 2);
        assert_eq!(
            status(&done),
            "DEPLOYMENT_STATUS_DEPLOYMENT_ERROR",
            "{marker}: {done}"
        );
        assert_eq!(
            done["failureReason"],
            format!("FAILURE_REASON_{reason}"),
            "{marker}: {done}"
        );
        assert!(
            done["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!(
                    "{} keeps serving",
                    first["name"].as_str().unwrap().rsplit('/').next().unwrap()
                )),
            "{done}"
        );
        let web = inst.service(WEB);
        assert_eq!(web["state"], "SERVICE_STATE_DEPLOYMENT_ERROR");
        assert_eq!(web["liveDeployment"], name(&first));
        wait_for(
            "the cluster to run the live version again",
            Duration::from_secs(60),
            || {
                let d = inst.kube_deployment(WEB);
                d["spec"]["template"]["spec"]["containers"][0]["image"]
                    == "registry.example.com/web:1"
                    && d["status"]["readyReplicas"] == 2
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {}", inst.kube_deployment(WEB)));
    }

    // Another version deploys; redeploying it unchanged restarts nothing.
    let v3 = inst.deploy(WEB, Some("registry.example.com/web:3"));
    assert_eq!(
        status(&inst.finished(&name(&v3), 2)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    let generation = inst.kube_deployment(WEB)["metadata"]["generation"].clone();
    let count = |inst: &Installation| {
        inst.ok("DeploymentService/ListDeployments", json!({"parent": WEB}))["deployments"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count(&inst);
    let again = inst.ok("DeploymentService/RedeployService", json!({"name": WEB}));
    assert_eq!(
        again["name"], v3["name"],
        "nothing to deploy: the live deployment answers"
    );
    assert_eq!(count(&inst), before, "no new deployment");
    assert_eq!(
        inst.kube_deployment(WEB)["metadata"]["generation"],
        generation,
        "nothing restarted"
    );
    let events = inst.ok("EventService/ListEvents", json!({"parent": WEB}));
    assert_eq!(events["events"][0]["reason"], "NoChanges", "{events}");

    // Redeploying after a config change rolls that change out as a new deployment.
    inst.ok(
        "ServiceService/UpdateService",
        json!({"service": {"name": WEB, "replicas": 3}, "update_mask": {"paths": ["replicas"]}}),
    );
    let changed = inst.ok("DeploymentService/RedeployService", json!({"name": WEB}));
    assert_eq!(changed["kind"], "DEPLOYMENT_KIND_REDEPLOY");
    assert_ne!(changed["name"], v3["name"]);
    assert_eq!(
        status(&inst.finished(&name(&changed), 2)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    assert_eq!(inst.kube_deployment(WEB)["spec"]["replicas"], 3);

    // Roll back to the first deployment: a new deployment of its spec; history is kept.
    let rollback = inst.ok(
        "DeploymentService/RollbackService",
        json!({"name": WEB, "deployment": name(&first)}),
    );
    assert_eq!(rollback["kind"], "DEPLOYMENT_KIND_ROLLBACK");
    assert_eq!(rollback["origin"], first["name"]);
    assert_eq!(
        status(&inst.finished(&name(&rollback), 2)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    assert_eq!(
        inst.kube_deployment(WEB)["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/web:1"
    );
    assert_eq!(count(&inst), before + 2);
    assert_eq!(
        inst.ok(
            "DeploymentService/GetDeployment",
            json!({"name": name(&v3)})
        )["status"],
        "DEPLOYMENT_STATUS_DEPLOYED",
        "history is never rewritten"
    );

    inst.stop(&["link failed"]);
}

#[test]
fn stop_restart_secrets_cancel_queue_and_promote() {
    let inst = installation("4s");
    let first = inst.deploy(WEB, None);
    assert_eq!(
        status(&inst.finished(&name(&first), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );

    // Restart: a rolling restart with the restartedAt annotation, no config change.
    let restarting = inst.ok("ServiceService/RestartService", json!({"name": WEB}));
    assert_eq!(restarting["state"], "SERVICE_STATE_RESTARTING");
    inst.wait_state(WEB, "RESTARTED");
    let d = inst.kube_deployment(WEB);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    let restarted_at =
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .clone();

    // A secret: stored in a Secret, referenced by the container, and its change rolls the pods.
    let set = inst.ok(
        "ServiceService/SetServiceSecret",
        json!({"name": WEB, "secret": "DB_PASSWORD", "value": "hunter2-e2e"}),
    );
    assert!(!set.to_string().contains("hunter2-e2e"));
    inst.wait_state(WEB, "RESTARTED");
    wait_for(
        "the pods to see the secret",
        Duration::from_secs(30),
        || {
            let d = inst.kube_deployment(WEB);
            let env = d["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
            env.contains("secretKeyRef") && env.contains("DB_PASSWORD")
        },
    )
    .expect("secret env");
    let d = inst.kube_deployment(WEB);
    assert_ne!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        restarted_at,
        "a secret change is a rolling restart"
    );
    assert!(
        !d.to_string().contains("hunter2-e2e"),
        "the value stays out of the Deployment"
    );
    let secret = kubectl(
        &inst.kubeconfig,
        inst.kube_home.path(),
        &["get", "secrets", "-A", "-o", "json"],
    );
    assert!(secret.contains("web-secrets"), "{secret}");

    // Stop keeps the Deployment at zero; restart is refused while stopped; redeploy starts it.
    inst.ok("ServiceService/StopService", json!({"name": WEB}));
    inst.wait_state(WEB, "STOPPED");
    assert_eq!(inst.kube_deployment(WEB)["spec"]["replicas"], 0);
    let refused = inst
        .call("ServiceService/RestartService", json!({"name": WEB}))
        .unwrap_err();
    assert!(
        refused.contains("FailedPrecondition") && refused.contains("STOPPED"),
        "{refused}"
    );
    let resumed = inst.ok("DeploymentService/RedeployService", json!({"name": WEB}));
    assert_eq!(
        status(&inst.finished(&name(&resumed), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    assert_eq!(inst.kube_deployment(WEB)["spec"]["replicas"], 2);

    // Cancel while deploying: the service goes back to the live version.
    let slow = inst.deploy(WEB, Some("registry.example.com/web:9-fail-health"));
    assert_eq!(status(&slow), "DEPLOYMENT_STATUS_DEPLOYING");
    // A deploy behind it is queued, and a queued one cancels at once.
    let queued = inst.deploy(WEB, Some("registry.example.com/web:10"));
    assert_eq!(status(&queued), "DEPLOYMENT_STATUS_QUEUED");
    let canceled = inst.ok(
        "DeploymentService/CancelDeployment",
        json!({"name": name(&queued)}),
    );
    assert_eq!(status(&canceled), "DEPLOYMENT_STATUS_CANCELED");
    let canceling = inst.ok(
        "DeploymentService/CancelDeployment",
        json!({"name": name(&slow)}),
    );
    assert_eq!(status(&canceling), "DEPLOYMENT_STATUS_CANCELING");
    assert_eq!(
        status(&inst.finished(&name(&slow), 2)),
        "DEPLOYMENT_STATUS_CANCELED"
    );
    assert_eq!(inst.service(WEB)["liveDeployment"], resumed["name"]);
    wait_for(
        "the live version to run again",
        Duration::from_secs(60),
        || {
            inst.kube_deployment(WEB)["spec"]["template"]["spec"]["containers"][0]["image"]
                == "registry.example.com/web:1"
        },
    )
    .expect("rolled back");

    // A queued deploy starts when the one before it ends (that one takes the 4 s health
    // grace to fail, so the second is certainly queued behind it).
    let a = inst.deploy(WEB, Some("registry.example.com/web:11-fail-health"));
    let b = inst.deploy(WEB, Some("registry.example.com/web:12"));
    assert_eq!(status(&b), "DEPLOYMENT_STATUS_QUEUED");
    assert_eq!(
        status(&inst.finished(&name(&a), 0)),
        "DEPLOYMENT_STATUS_DEPLOYMENT_ERROR"
    );
    assert_eq!(
        status(&inst.finished(&name(&b), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );

    // Promote production's exact spec to staging (the service is created there).
    let promoted = inst.ok(
        "DeploymentService/PromoteDeployment",
        json!({"name": name(&b), "target_environment": "tenants/acme/projects/shop/environments/staging"}),
    );
    assert_eq!(promoted["kind"], "DEPLOYMENT_KIND_PROMOTE");
    assert_eq!(promoted["image"], "registry.example.com/web:12");
    assert_eq!(
        status(&inst.finished(&name(&promoted), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    assert_eq!(
        inst.service(STAGING_WEB)["image"],
        "registry.example.com/web:12"
    );

    inst.stop(&["link failed"]);
}

#[test]
fn a_rollout_without_progress_times_out_and_a_restarted_agent_reports_the_true_outcome() {
    let mut inst = installation("1h");
    let first = inst.deploy(WEB, None);
    assert_eq!(
        status(&inst.finished(&name(&first), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    // Restart the agent with a short progress deadline (its health grace is an hour, so
    // only the deadline can end this rollout).
    let dir = inst
        .agent
        .take()
        .expect("agent")
        .stop(&["link failed"])
        .expect("agent stops");
    inst.start_agent(
        dir,
        &["--health-grace", "1h", "--progress-deadline", "3s"],
        None,
    );
    let stuck = inst.deploy(WEB, Some("registry.example.com/web:2-fail-health"));
    // Kill the agent in the middle of the rollout; the rollout ends when it is back.
    let dir = inst.agent.take().expect("agent").kill();
    inst.start_agent(
        dir,
        &["--health-grace", "1h", "--progress-deadline", "3s"],
        None,
    );
    let done = inst.finished(&name(&stuck), 2);
    assert_eq!(
        status(&done),
        "DEPLOYMENT_STATUS_DEPLOYMENT_ERROR",
        "{done}"
    );
    assert_eq!(done["failureReason"], "FAILURE_REASON_TIMED_OUT");
    assert_eq!(inst.service(WEB)["liveDeployment"], first["name"]);
    inst.stop(&["link failed"]);
}

#[test]
fn environment_actions_apply_to_every_service_and_its_state_follows_them() {
    let inst = installation("3s");
    let production = "tenants/acme/projects/shop/environments/production";
    inst.ok(
        "ServiceService/CreateService",
        json!({"parent": production, "service_id": "api",
               "service": {"image": "registry.example.com/api:1", "shape": "SHAPE_FLX", "replicas": 1}}),
    );
    let watch_until_settled = || {
        let out = Grpcurl::call(&inst.server.api, "EnvironmentService/WatchEnvironment")
            .max_time(90)
            .token(&inst.admin)
            .data(&json!({"name": production}).to_string())
            .output();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stream_messages(&out.stdout)
    };
    let states = |messages: &[Value]| -> Vec<String> {
        messages
            .iter()
            .map(|m| m["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let started = inst.ok(
        "EnvironmentService/DeployEnvironment",
        json!({"name": production}),
    );
    assert_eq!(started["state"], "ENVIRONMENT_STATE_DEPLOYING");
    assert_eq!(started["services"].as_array().map(Vec::len), Some(2));
    let seen = watch_until_settled();
    assert_eq!(
        states(&seen).last().map(String::as_str),
        Some("ENVIRONMENT_STATE_DEPLOYED"),
        "{:?}",
        states(&seen)
    );
    let last = seen.last().expect("a message");
    for s in last["services"].as_array().expect("services") {
        assert_eq!(s["state"], "SERVICE_STATE_DEPLOYED", "{s}");
    }

    inst.ok(
        "EnvironmentService/StopEnvironment",
        json!({"name": production}),
    );
    let seen = watch_until_settled();
    assert_eq!(
        states(&seen).last().map(String::as_str),
        Some("ENVIRONMENT_STATE_STOPPED"),
        "{:?}",
        states(&seen)
    );
    // Nothing runs, so a restart restarts nothing (and is not an error).
    let restarted = inst.ok(
        "EnvironmentService/RestartEnvironment",
        json!({"name": production}),
    );
    assert_eq!(restarted["state"], "ENVIRONMENT_STATE_STOPPED");

    inst.ok(
        "EnvironmentService/DeployEnvironment",
        json!({"name": production}),
    );
    assert_eq!(
        states(&watch_until_settled()).last().map(String::as_str),
        Some("ENVIRONMENT_STATE_DEPLOYED")
    );
    let restarting = inst.ok(
        "EnvironmentService/RestartEnvironment",
        json!({"name": production}),
    );
    assert_eq!(restarting["state"], "ENVIRONMENT_STATE_RESTARTING");
    let seen = watch_until_settled();
    for s in seen.last().expect("a message")["services"]
        .as_array()
        .expect("services")
    {
        assert_eq!(s["state"], "SERVICE_STATE_RESTARTED", "{s}");
    }

    inst.stop(&["link failed"]);
}

#[test]
fn a_git_source_is_built_as_a_job_and_a_failed_build_leaves_the_live_version_serving() {
    let inst = installation("3s");
    let source = |url: &str| {
        json!({"service": {"name": WEB, "git": {"url": url, "ref": "refs/heads/main"}},
               "update_mask": {"paths": ["git"]}})
    };
    inst.ok(
        "ServiceService/UpdateService",
        source("https://git.example.com/shop/web.git"),
    );
    let built = inst.ok("DeploymentService/DeployService", json!({"name": WEB}));
    assert_eq!(status(&built), "DEPLOYMENT_STATUS_BUILDING", "{built}");
    assert!(
        built["image"].as_str().unwrap_or_default().is_empty(),
        "no image until it is built"
    );
    let done = inst.finished(&name(&built), 0);
    assert_eq!(status(&done), "DEPLOYMENT_STATUS_DEPLOYED", "{done}");
    let image = done["image"].as_str().expect("the built image").to_owned();
    assert!(image.ends_with("/web:build-1"), "{image}");
    let history: Vec<&str> = done["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        history,
        [
            "DEPLOYMENT_STATUS_QUEUED",
            "DEPLOYMENT_STATUS_BUILDING",
            "DEPLOYMENT_STATUS_DEPLOYING",
            "DEPLOYMENT_STATUS_DEPLOYED"
        ]
    );
    assert_eq!(
        inst.kube_deployment(WEB)["spec"]["template"]["spec"]["containers"][0]["image"],
        image.as_str()
    );
    // The build ran as a Job the real kubectl sees.
    let jobs = kubectl(
        &inst.kubeconfig,
        inst.kube_home.path(),
        &["get", "jobs", "-A"],
    );
    assert!(jobs.contains("web-build-1"), "{jobs}");

    // A build that fails: BUILD_ERROR with its reason; the built version keeps running.
    inst.ok(
        "ServiceService/UpdateService",
        source("https://git.example.com/shop/web-fail-crash.git"),
    );
    let broken = inst.ok("DeploymentService/DeployService", json!({"name": WEB}));
    let done = inst.finished(&name(&broken), 2);
    assert_eq!(status(&done), "DEPLOYMENT_STATUS_BUILD_ERROR", "{done}");
    assert_eq!(done["failureReason"], "FAILURE_REASON_BUILD_FAILED");
    assert_eq!(inst.service(WEB)["state"], "SERVICE_STATE_BUILD_ERROR");
    assert_eq!(inst.service(WEB)["liveDeployment"], built["name"]);
    assert_eq!(
        inst.kube_deployment(WEB)["spec"]["template"]["spec"]["containers"][0]["image"],
        image.as_str()
    );

    // A build can be canceled; nothing changes in the cluster.
    inst.ok(
        "ServiceService/UpdateService",
        source("https://git.example.com/shop/web.git"),
    );
    let canceled = inst.ok("DeploymentService/DeployService", json!({"name": WEB}));
    assert_eq!(status(&canceled), "DEPLOYMENT_STATUS_BUILDING");
    inst.ok(
        "DeploymentService/CancelDeployment",
        json!({"name": name(&canceled)}),
    );
    assert_eq!(
        status(&inst.finished(&name(&canceled), 2)),
        "DEPLOYMENT_STATUS_CANCELED"
    );
    assert_eq!(
        inst.kube_deployment(WEB)["spec"]["template"]["spec"]["containers"][0]["image"],
        image.as_str()
    );

    inst.stop(&["link failed"]);
}

#[test]
fn what_kubectl_changes_behind_outposts_back_is_restored_and_said() {
    let inst = installation("30s");
    let deployed = inst.deploy(WEB, None);
    assert_eq!(
        status(&inst.finished(&name(&deployed), 0)),
        "DEPLOYMENT_STATUS_DEPLOYED"
    );
    let namespace = inst.kube_deployment(WEB)["metadata"]["namespace"]
        .as_str()
        .expect("a namespace")
        .to_owned();
    // An operator "fixes" production by hand: scaled down, then an image nobody approved.
    let kubectl_in = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-n", &namespace]);
        kubectl(&inst.kubeconfig, inst.kube_home.path(), &all);
    };
    kubectl_in(&["scale", "deployment", "web", "--replicas=0"]);
    kubectl_in(&[
        "set",
        "image",
        "deployment/web",
        "app=evil.example.com/miner:1",
    ]);
    let mut live = Value::Null;
    wait_for("the Deployment restored", Duration::from_secs(30), || {
        live = inst.kube_deployment(WEB);
        live["spec"]["replicas"] == 2
            && live["spec"]["template"]["spec"]["containers"][0]["image"]
                == "registry.example.com/web:1"
    })
    .unwrap_or_else(|e| panic!("{e}: {live}"));
    let mut events = Value::Null;
    wait_for("the repair's event", Duration::from_secs(30), || {
        events = inst.ok(
            "EventService/ListEvents",
            json!({"parent": WEB, "page_size": 100}),
        );
        events["events"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "DriftRepaired"
                && e["message"].as_str().is_some_and(|m| {
                    m.starts_with("Deployment web: ")
                        && m.ends_with("changed outside Outpost; restored.")
                })
        })
    })
    .unwrap_or_else(|e| panic!("{e}: {events}"));
    // The service never failed for it, and operators see who fights the platform.
    assert_eq!(inst.service(WEB)["state"], "SERVICE_STATE_DEPLOYED");
    let metrics = inst.server.metrics_text();
    assert!(
        metrics.contains(r#"outpost_drift_repairs_total{datacenter="dc1",outcome="restored"}"#),
        "{metrics}"
    );
    inst.stop(&[]);
}
