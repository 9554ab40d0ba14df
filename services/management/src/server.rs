//! Assembles and runs the gRPC server: every API service, health, reflection, the per-RPC
//! layer, limits and graceful shutdown; and the Prometheus endpoint.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use outpost_proto::management::v1 as pb;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::{api::*, rpc::RpcLayer, tls::TlsSwitch};

/// Limits applied to every call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message, either direction.
    pub max_message_bytes: usize,
    /// Deadline for calls that set none.
    pub default_deadline: Duration,
    /// Concurrent calls per connection.
    pub max_concurrent_requests_per_connection: usize,
    /// HTTP/2 keepalive interval.
    pub keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            default_deadline: Duration::from_secs(30),
            max_concurrent_requests_per_connection: 256,
            keepalive: Duration::from_secs(30),
        }
    }
}

/// Serves the API on `listener` (over TLS with `tls`, else plaintext) until `shutdown` is
/// cancelled, then lets in-flight calls finish.
pub async fn serve_api(
    api: Api,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    limits: Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = api.store().clone();
    let size = limits.max_message_bytes;
    macro_rules! limited {
        ($server:ty, $svc:expr) => {
            <$server>::new($svc)
                .max_decoding_message_size(size)
                .max_encoding_message_size(size)
        };
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(outpost_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Lets grpcurl decode google.rpc error details (BadRequest, …) by name.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().context("building reflection v1")?;
    // grpcurl 1.8 speaks only v1alpha.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building reflection v1alpha")?;

    let router = Server::builder()
        .timeout(limits.default_deadline)
        .concurrency_limit_per_connection(limits.max_concurrent_requests_per_connection)
        .http2_keepalive_interval(Some(limits.keepalive))
        .http2_keepalive_timeout(Some(limits.keepalive))
        .layer(RpcLayer::new(store))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(
            pb::tenant_service_server::TenantServiceServer<_>,
            TenantApi(api.clone())
        ))
        .add_service(limited!(
            pb::user_service_server::UserServiceServer<_>,
            UserApi(api.clone())
        ))
        .add_service(limited!(
            pb::team_service_server::TeamServiceServer<_>,
            TeamApi(api.clone())
        ))
        .add_service(limited!(
            pb::api_token_service_server::ApiTokenServiceServer<_>,
            ApiTokenApi(api.clone())
        ))
        .add_service(limited!(
            pb::role_binding_service_server::RoleBindingServiceServer<_>,
            RoleBindingApi(api.clone())
        ))
        .add_service(limited!(
            pb::datacenter_service_server::DatacenterServiceServer<_>,
            DatacenterApi(api.clone())
        ))
        .add_service(limited!(
            pb::project_service_server::ProjectServiceServer<_>,
            ProjectApi(api.clone())
        ))
        .add_service(limited!(
            pb::environment_service_server::EnvironmentServiceServer<_>,
            EnvironmentApi(api.clone())
        ))
        .add_service(limited!(
            pb::service_service_server::ServiceServiceServer<_>,
            ServiceApi(api.clone())
        ))
        .add_service(limited!(
            pb::deployment_service_server::DeploymentServiceServer<_>,
            DeploymentApi(api.clone())
        ))
        .add_service(limited!(
            pb::managed_service_service_server::ManagedServiceServiceServer<_>,
            ManagedApi(api.clone())
        ))
        .add_service(limited!(
            pb::provider_service_server::ProviderServiceServer<_>,
            ProviderApi(api.clone())
        ))
        .add_service(limited!(
            pb::event_service_server::EventServiceServer<_>,
            EventApi(api.clone())
        ))
        .add_service(limited!(
            pb::log_service_server::LogServiceServer<_>,
            LogApi(api.clone())
        ))
        .add_service(limited!(
            pb::audit_service_server::AuditServiceServer<_>,
            AuditApi(api)
        ));
    let served = match tls {
        Some(tls) => {
            let incoming = crate::tls::incoming(
                listener,
                TlsSwitch::new(tls),
                "API client",
                shutdown.clone(),
            );
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
        }
        // The builder's tcp_nodelay applies only to listeners tonic binds itself; an
        // incoming stream needs it set here, or large answers stall on Nagle's algorithm.
        None => {
            router
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown.cancelled_owned(),
                )
                .await
        }
    };
    served.context("serving the gRPC API")
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve_metrics(
    handle: PrometheusHandle,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving metrics")
}

/// A listener that could not be bound. Typed so an embedder can tell which of its own
/// settings to blame (the local installation names its flag).
#[derive(Debug, thiserror::Error)]
#[error("binding the {what} listener on {addr}")]
pub struct BindError {
    /// Which listener: `API`, `agent gateway` or `metrics`.
    pub what: &'static str,
    /// The address it tried.
    pub addr: SocketAddr,
    /// Why it failed (`AddrInUse` for a taken port).
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}
