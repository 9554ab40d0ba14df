//! What a person sees while a datacenter cannot be reached: with its agent stopped, a
//! deploy and a managed service there wait, and the deployment, the service, the
//! environment and the managed service each say that the datacenter is unreachable and
//! since when; nothing fails. When the agent returns, everything completes.

use std::time::Duration;

use outpost_e2e::{Installation, wait_for};
use serde_json::{Value, json};

const ENV: &str = "tenants/acme/projects/shop/environments/production";
const SERVICE: &str = "tenants/acme/projects/shop/environments/production/services/web";
const DB: &str = "tenants/acme/projects/shop/environments/production/managedServices/db";

fn wait_until(
    inst: &Installation,
    what: &str,
    method: &str,
    body: Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    wait_for(what, Duration::from_secs(60), || {
        last = inst.ok(method, body.clone());
        done(&last)
    })
    .unwrap_or_else(|e| panic!("{e}: {last}"));
    last
}

/// `resource` says its datacenter dc1 is unreachable; with `waiting`, that its change waits.
fn says_unreachable(resource: &Value, waiting: bool) {
    let notice = &resource["datacenterUnreachable"];
    assert_eq!(notice["datacenter"], "datacenters/dc1", "{resource}");
    assert!(notice["lastSeenTime"].is_string(), "{resource}");
    let message = notice["message"].as_str().unwrap_or_default();
    let expected = if waiting {
        "Waiting for datacenter dc1, unreachable since "
    } else {
        "Datacenter dc1 is unreachable since "
    };
    assert!(message.starts_with(expected), "{resource}");
}

#[test]
fn resources_in_an_unreachable_datacenter_say_so_and_complete_when_it_returns() {
    let mut inst = Installation::start(&[]);
    inst.ok(
        "ServiceService/CreateService",
        json!({"parent": ENV, "service_id": "web",
               "service": {"image": "registry.example.com/shop/web:1", "shape": "SHAPE_FLX", "replicas": 2}}),
    );
    let first = inst.ok("DeploymentService/DeployService", json!({"name": SERVICE}));
    wait_until(
        &inst,
        "the first deploy",
        "DeploymentService/GetDeployment",
        json!({"name": first["name"]}),
        |d| d["status"] == "DEPLOYMENT_STATUS_DEPLOYED",
    );
    let live = inst.ok("ServiceService/GetService", json!({"name": SERVICE}));
    assert!(live.get("datacenterUnreachable").is_none(), "{live}");

    let agent = inst.agent.take().expect("the agent");
    let state = agent.stop(&[]).expect("agent stops");
    wait_until(
        &inst,
        "dc1 disconnected",
        "DatacenterService/GetDatacenter",
        json!({"name": "datacenters/dc1"}),
        |d| d["agent"]["state"] == "STATE_DISCONNECTED",
    );

    inst.ok(
        "ServiceService/UpdateService",
        json!({"service": {"name": SERVICE, "image": "registry.example.com/shop/web:2"}, "update_mask": {"paths": ["image"]}}),
    );
    let second = inst.ok("DeploymentService/DeployService", json!({"name": SERVICE}));
    let deployment = inst.ok(
        "DeploymentService/GetDeployment",
        json!({"name": second["name"]}),
    );
    assert_eq!(
        deployment["status"], "DEPLOYMENT_STATUS_DEPLOYING",
        "{deployment}"
    );
    says_unreachable(&deployment, true);
    assert_eq!(
        deployment["message"],
        deployment["datacenterUnreachable"]["message"]
    );

    let service = inst.ok("ServiceService/GetService", json!({"name": SERVICE}));
    says_unreachable(&service, true);
    assert_eq!(
        service["stateMessage"],
        service["datacenterUnreachable"]["message"]
    );
    assert_eq!(
        service["status"]["stale"], true,
        "its last report is marked stale: {service}"
    );
    let listed = inst.ok("ServiceService/ListServices", json!({"parent": ENV}));
    says_unreachable(&listed["services"][0], true);

    let environment = inst.ok("EnvironmentService/GetEnvironment", json!({"name": ENV}));
    says_unreachable(&environment, false);
    let environments = inst.ok(
        "EnvironmentService/ListEnvironments",
        json!({"parent": "tenants/acme/projects/shop"}),
    );
    for e in environments["environments"]
        .as_array()
        .expect("environments")
    {
        says_unreachable(e, false);
    }
    let deployments = inst.ok(
        "DeploymentService/ListDeployments",
        json!({"parent": SERVICE}),
    );
    // Newest first: the one waiting, then the one that finished.
    says_unreachable(&deployments["deployments"][0], true);
    says_unreachable(&deployments["deployments"][1], false);

    inst.ok(
        "ManagedServiceService/CreateManagedService",
        json!({"parent": ENV, "managed_service_id": "db",
               "managed_service": {"provider": "providers/postgresql", "config": {"version": "16",
                 "storage_gib": 1, "shape": "FLX", "database": "orders", "user": "shop"}},
               "secrets": {"password": "correct-horse-battery"}}),
    );
    let db = inst.ok(
        "ManagedServiceService/GetManagedService",
        json!({"name": DB}),
    );
    assert_eq!(db["state"], "MANAGED_SERVICE_STATE_CREATING", "{db}");
    says_unreachable(&db, true);
    assert_eq!(db["stateMessage"], db["datacenterUnreachable"]["message"]);

    // The agent returns: everything that waited completes, and nothing says unreachable.
    inst.start_agent(state, &[], None);
    let done = wait_until(
        &inst,
        "the waiting deploy",
        "DeploymentService/GetDeployment",
        json!({"name": second["name"]}),
        |d| d["status"] == "DEPLOYMENT_STATUS_DEPLOYED",
    );
    assert!(done.get("datacenterUnreachable").is_none(), "{done}");
    let db = wait_until(
        &inst,
        "the waiting managed service",
        "ManagedServiceService/GetManagedService",
        json!({"name": DB}),
        |m| m["state"] == "MANAGED_SERVICE_STATE_SYNCHRONIZED",
    );
    assert!(db.get("datacenterUnreachable").is_none(), "{db}");
    let environment = inst.ok("EnvironmentService/GetEnvironment", json!({"name": ENV}));
    assert!(
        environment.get("datacenterUnreachable").is_none(),
        "{environment}"
    );
    inst.stop(&[]);
}
