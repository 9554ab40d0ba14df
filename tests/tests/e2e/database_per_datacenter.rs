//! The federation with a database per datacenter, started from
//! `deploy/federated-db-per-dc/management.toml`: two datacenters, each its own management
//! instance (its own SQLite, CA and tenants, its API over TLS) with its agent and cluster.
//! The multi-endpoint client gives one view over both; with the WAN to datacenter 2 cut it
//! answers datacenter 1 and names datacenter 2 unreachable, while inside datacenter 2 a
//! deploy still completes; after the cut heals, both are current. Datacenter 1's database
//! holds nothing of datacenter 2.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use outpost_client::{Endpoint, Endpoints, Outcome, Tls, pb};
use outpost_e2e::{Management, Process, agent, cluster, proxy::Proxy, wait_for};
use serde_json::{Value, json};

const ENVIRONMENT: &str = "tenants/acme/projects/shop/environments/production";
const SERVICE: &str = "tenants/acme/projects/shop/environments/production/services/api";

/// One datacenter: its management instance, cluster and agent.
struct Datacenter {
    name: &'static str,
    server: Management,
    admin: String,
    sim: Process,
    agent: Process,
}

impl Datacenter {
    fn start(name: &'static str) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/federated-db-per-dc/management.toml");
        let server = Management::start_from(
            &config,
            &[
                ("OUTPOST_API__TLS__HOSTNAMES", r#"["127.0.0.1"]"#),
                ("OUTPOST_GATEWAY__HOSTNAMES", r#"["127.0.0.1"]"#),
            ],
        )
        .expect("management starts from the deploy file");
        assert_eq!(
            server.process.ready["api_tls"], true,
            "the file puts the API behind TLS"
        );
        let admin = server.admin_token();
        let (sim, kubeconfig) = cluster();
        let setup = [
            (
                "DatacenterService/CreateDatacenter",
                json!({"datacenter_id": name, "datacenter": {}}),
            ),
            (
                "TenantService/CreateTenant",
                json!({"tenant_id": "acme", "tenant": {}}),
            ),
            (
                "ProjectService/CreateProject",
                json!({"parent": "tenants/acme", "project_id": "shop",
                       "project": {"default_datacenter": format!("datacenters/{name}")}}),
            ),
            (
                "ServiceService/CreateService",
                json!({"parent": ENVIRONMENT, "service_id": "api",
                       "service": {"image": format!("registry.example.com/shop/api:{name}-1"),
                                   "shape": "SHAPE_FLX", "replicas": 1}}),
            ),
        ];
        for (method, body) in setup {
            server
                .call(&admin, method, &body)
                .unwrap_or_else(|e| panic!("{method}: {e}"));
        }
        let join = server
            .call(
                &admin,
                "DatacenterService/CreateJoinToken",
                &json!({"datacenter": format!("datacenters/{name}")}),
            )
            .expect("join token");
        let agent = agent(
            tempfile::tempdir().expect("dir"),
            &kubeconfig,
            Some((
                &server.gateway,
                join["token"].as_str().expect("token"),
                join["caFingerprint"].as_str().expect("fingerprint"),
            )),
        );
        Self {
            name,
            server,
            admin,
            sim,
            agent,
        }
    }

    /// Deploys `image` and waits until it is DEPLOYED, all through this datacenter's own
    /// instance.
    fn deploy(&self, image: &str) {
        let ok = |method: &str, body: Value| {
            self.server
                .call(&self.admin, method, &body)
                .unwrap_or_else(|e| panic!("{} {method}: {e}", self.name))
        };
        ok(
            "ServiceService/UpdateService",
            json!({"service": {"name": SERVICE, "image": image}, "update_mask": {"paths": ["image"]}}),
        );
        let deployment = ok("DeploymentService/DeployService", json!({"name": SERVICE}));
        let name = deployment["name"].as_str().expect("name").to_owned();
        let mut last = Value::Null;
        wait_for(
            &format!("{name} in {} to be DEPLOYED", self.name),
            Duration::from_secs(60),
            || {
                last = ok("DeploymentService/GetDeployment", json!({"name": name}));
                last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}"));
    }

    /// This datacenter as the console sees it: through `address`, trusting its CA.
    fn endpoint(&self, address: &str) -> Endpoint {
        Endpoint {
            name: self.name.into(),
            address: address.into(),
            tls: Tls::Verified {
                ca_pem: std::fs::read_to_string(self.server.dir.join("outpost-data/ca.crt"))
                    .expect("the CA the instance wrote"),
                client_identity: None,
            },
            token: Some(self.admin.clone()),
        }
    }

    fn stop(self) -> tempfile::TempDir {
        self.agent.stop(&[]).expect("agent stops");
        self.sim.stop(&[]).expect("sim stops");
        self.server.stop(&[]).expect("management stops")
    }
}

fn image_of(service: &pb::Service) -> String {
    match &service.source {
        Some(pb::service::Source::Image(image)) => image.clone(),
        other => panic!("{} has no image: {other:?}", service.name),
    }
}

/// Each reachable datacenter's services with the image each runs, and the unreachable ones.
async fn view(endpoints: &Endpoints) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let all = endpoints
        .fan_out(|c| async move {
            let request = c.request(pb::ListServicesRequest {
                parent: ENVIRONMENT.into(),
                ..Default::default()
            });
            let services = pb::service_service_client::ServiceServiceClient::new(c.channel())
                .list_services(request)
                .await?
                .into_inner()
                .services;
            Ok(services)
        })
        .await;
    for (name, outcome) in &all.results {
        assert!(
            !matches!(outcome, Outcome::Refused(_)),
            "{name} refused: {outcome:?}"
        );
    }
    let answered = all
        .answered()
        .flat_map(|(dc, services)| services.iter().map(move |s| (dc.to_owned(), image_of(s))))
        .collect();
    let unreachable = all
        .unreachable()
        .map(|(dc, why)| (dc.to_owned(), why.to_owned()))
        .collect();
    (answered, unreachable)
}

#[test]
fn one_view_over_every_datacenter_survives_a_cut_and_no_metadata_leaves_its_datacenter() {
    let started = Instant::now();
    let fra1 = Datacenter::start("fra1");
    let ams1 = Datacenter::start("ams1");
    fra1.deploy("registry.example.com/shop/api:fra1-1");
    ams1.deploy("registry.example.com/shop/api:ams1-1");

    // The WAN between the console and datacenter ams1.
    let wan = Proxy::start(&ams1.server.api).expect("proxy");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let endpoints = runtime.block_on(async {
        Endpoints::new(
            vec![fra1.endpoint(&fra1.server.api), ams1.endpoint(&wan.address)],
            Duration::from_secs(2),
        )
    });
    let endpoints = endpoints.expect("endpoints");
    let (services, unreachable) = runtime.block_on(view(&endpoints));
    assert_eq!(
        services,
        [
            ("fra1".into(), "registry.example.com/shop/api:fra1-1".into()),
            ("ams1".into(), "registry.example.com/shop/api:ams1-1".into()),
        ]
    );
    assert!(unreachable.is_empty(), "{unreachable:?}");

    wan.cut();
    let (services, unreachable) = runtime.block_on(view(&endpoints));
    assert_eq!(
        services,
        [("fra1".into(), "registry.example.com/shop/api:fra1-1".into())]
    );
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert_eq!(unreachable[0].0, "ams1");
    // Inside ams1 nothing depends on the WAN.
    ams1.deploy("registry.example.com/shop/api:ams1-2");

    // A WAN that stalls past the deadline is as unreachable as a cut one, and the view
    // still answers within about the deadline.
    wan.restore();
    wait_for("ams1 in the view again", Duration::from_secs(20), || {
        runtime.block_on(view(&endpoints)).1.is_empty()
    })
    .expect("the view heals");
    wan.delay(Duration::from_secs(5));
    let asked = Instant::now();
    let (services, unreachable) = runtime.block_on(view(&endpoints));
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert_eq!(unreachable[0].0, "ams1");

    wan.restore();
    let mut seen = Vec::new();
    wait_for("ams1 in the view again", Duration::from_secs(20), || {
        let (services, unreachable) = runtime.block_on(view(&endpoints));
        seen = services;
        unreachable.is_empty()
    })
    .expect("the view heals");
    assert_eq!(
        seen,
        [
            ("fra1".into(), "registry.example.com/shop/api:fra1-1".into()),
            ("ams1".into(), "registry.example.com/shop/api:ams1-2".into()),
        ],
        "what ams1 did during the cut is there"
    );

    let _ = ams1.stop();
    let fra1_dir = fra1.stop();
    for file in ["outpost.db", "outpost.db-wal"] {
        let path = fra1_dir.path().join("outpost-data").join(file);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(4).any(|w| w == b"ams1"),
            "{} holds something of ams1",
            path.display()
        );
    }
    eprintln!("database per datacenter: {:?}", started.elapsed());
}
