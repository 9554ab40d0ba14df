//! Traces leave the process over OTLP when a collector is configured: a fake collector (the
//! real OTLP/gRPC service definition) receives the span of an RPC with its fields.

use std::sync::mpsc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use outpost_e2e::{Grpcurl, Management, grpcurl_call};
use tonic::{Request, Response, Status};

struct Collector(mpsc::Sender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A fake OTLP collector on loopback: its runtime (keep it alive), its endpoint, and the
/// export requests it receives.
fn collector() -> (
    tokio::runtime::Runtime,
    String,
    mpsc::Receiver<ExportTraceServiceRequest>,
) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (sender, received) = mpsc::channel();
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(sender)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    });
    (runtime, format!("http://{addr}"), received)
}

#[test]
fn rpc_spans_reach_the_configured_otlp_collector() {
    let (_runtime, endpoint, received) = collector();
    let server = Management::start(&[("OUTPOST_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())])
        .expect("start");
    let call = grpcurl_call(
        &server.api,
        "opt_wrong",
        "outpost.management.v1.TenantService/ListTenants",
        "{}",
    );
    assert_eq!(call.status.code(), Some(64 + 16));
    // Stopping flushes the exporter.
    server.stop(&[]).expect("clean stop");

    let spans: Vec<_> = received
        .try_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect();
    let attribute = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
            .map(|v| format!("{v:?}"))
            .unwrap_or_default()
    };
    let rpc = spans
        .iter()
        .find(|s| s.name == "rpc" && attribute(s, "rpc").contains("TenantService/ListTenants"))
        .unwrap_or_else(|| {
            panic!(
                "no rpc span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert!(
        attribute(rpc, "code").contains("UNAUTHENTICATED"),
        "{:?}",
        rpc.attributes
    );
    assert!(
        !attribute(rpc, "latency_ms").is_empty(),
        "{:?}",
        rpc.attributes
    );
}

/// One trace from an API call through the gateway into the agent's reconcile pass.
#[test]
fn a_trace_continues_from_the_api_call_into_the_agents_reconcile() {
    let (_runtime, endpoint, received) = collector();
    let server = Management::start(&[("OUTPOST_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())])
        .expect("start");
    let admin = server.admin_token();
    let api = |method: &str, body: &str| {
        let out = grpcurl_call(
            &server.api,
            &admin,
            &format!("outpost.management.v1.{method}"),
            body,
        );
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    api(
        "DatacenterService/CreateDatacenter",
        r#"{"datacenter_id":"dc-a","datacenter":{}}"#,
    );
    api(
        "TenantService/CreateTenant",
        r#"{"tenant_id":"acme","tenant":{}}"#,
    );
    api(
        "ProjectService/CreateProject",
        r#"{"parent":"tenants/acme","project_id":"shop","project":{"default_datacenter":"datacenters/dc-a"}}"#,
    );
    let join = api(
        "DatacenterService/CreateJoinToken",
        r#"{"datacenter":"datacenters/dc-a"}"#,
    );
    let (sim, kube) = outpost_e2e::cluster();
    let agent = outpost_e2e::Process::start(
        "outpost-agent",
        tempfile::tempdir().expect("dir"),
        &[
            "--state-dir",
            "state",
            "--otlp-endpoint",
            &endpoint,
            "run",
            "--kubeconfig",
            kube.to_str().expect("utf-8"),
            "--management",
            &server.gateway,
            "--token",
            join["token"].as_str().expect("token"),
            "--ca-fingerprint",
            join["caFingerprint"].as_str().expect("fingerprint"),
        ],
        &[],
    )
    .expect("agent starts");
    outpost_e2e::wait_for(
        "the agent to connect",
        std::time::Duration::from_secs(60),
        || {
            api(
                "DatacenterService/GetDatacenter",
                r#"{"name":"datacenters/dc-a"}"#,
            )["agent"]["state"]
                == "STATE_CONNECTED"
        },
    )
    .expect("connected");

    api(
        "ServiceService/CreateService",
        r#"{"parent":"tenants/acme/projects/shop/environments/production","service_id":"api","service":{"image":"nginx:1","shape":"SHAPE_FLX","replicas":1}}"#,
    );
    // The caller's own trace, on the deploy: W3C traceparent with a trace id we will look for.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let out = Grpcurl::call(&server.api, "DeploymentService/DeployService")
        .token(&admin)
        .header(&format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01"))
        .data(r#"{"name":"tenants/acme/projects/shop/environments/production/services/api"}"#)
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    outpost_e2e::wait_for(
        "the service to be reported",
        std::time::Duration::from_secs(60),
        || {
            api(
                "ServiceService/GetService",
                r#"{"name":"tenants/acme/projects/shop/environments/production/services/api"}"#,
            )["status"]["phase"]
                == "Available"
        },
    )
    .expect("rolled out");
    // Stopping both flushes their exporters.
    agent.stop(&["link failed"]).expect("agent stops");
    server.stop(&[]).expect("management stops");
    sim.stop(&[]).expect("sim stops");

    let spans: Vec<(String, String)> = received
        .try_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| {
            let service = r
                .resource
                .as_ref()
                .and_then(|res| res.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            r.scope_spans
                .into_iter()
                .flat_map(|s| s.spans)
                .map(move |s| (format!("{service}/{}", s.name), hex(&s.trace_id)))
        })
        .collect();
    let in_trace: Vec<&String> = spans
        .iter()
        .filter(|(_, t)| t == trace_id)
        .map(|(n, _)| n)
        .collect();
    for (who, name) in [
        ("outpost-management", "rpc"),
        ("outpost-management", "desired_state_send"),
        ("outpost-agent", "reconcile"),
    ] {
        assert!(
            in_trace
                .iter()
                .any(|n| n.contains(who) && n.ends_with(&format!("/{name}"))),
            "no {name} span of {who} in the caller's trace; spans in it: {in_trace:?}; all: {spans:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
