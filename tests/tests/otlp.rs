//! Traces leave the process over OTLP when a collector is configured: a fake collector (the
//! real OTLP/gRPC service definition) receives the span of an RPC with its fields.

use std::sync::mpsc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use outpost_e2e::{Management, grpcurl_call};
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

#[test]
fn rpc_spans_reach_the_configured_otlp_collector() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (sender, received) = mpsc::channel();
    let collector = runtime.block_on(async {
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
    let endpoint = format!("http://{collector}");
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
