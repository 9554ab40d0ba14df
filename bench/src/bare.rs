//! The baseline: a tonic server with the same `ServiceService` on the same transport,
//! answering with fixed messages taken from the real API, with no authentication, store,
//! layers or validation. What it costs is what the wire and the client cost.

use outpost_proto::management::v1::{
    self as pb,
    service_service_server::{ServiceService, ServiceServiceServer},
};
use tokio::net::TcpListener;
use tonic::{
    Request, Response, Status,
    transport::{Server, server::TcpIncoming},
};

use outpost_bench::targets::{Client, Running};

/// Answers every read and create with the same message.
struct FixedServiceApi {
    service: pb::Service,
    page: pb::ListServicesResponse,
}

#[tonic::async_trait]
impl ServiceService for FixedServiceApi {
    async fn get_service(
        &self,
        _: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Ok(Response::new(self.service.clone()))
    }

    async fn list_services(
        &self,
        _: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        Ok(Response::new(self.page.clone()))
    }

    async fn create_service(
        &self,
        _: Request<pb::CreateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Ok(Response::new(self.service.clone()))
    }

    async fn update_service(
        &self,
        _: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn delete_service(
        &self,
        _: Request<pb::DeleteServiceRequest>,
    ) -> Result<Response<pb::DeleteServiceResponse>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
    async fn stop_service(
        &self,
        _: Request<pb::StopServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn restart_service(
        &self,
        _: Request<pb::RestartServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn set_service_secret(
        &self,
        _: Request<pb::SetServiceSecretRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn delete_service_secret(
        &self,
        _: Request<pb::DeleteServiceSecretRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    async fn list_service_secrets(
        &self,
        _: Request<pb::ListServiceSecretsRequest>,
    ) -> Result<Response<pb::ListServiceSecretsResponse>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
}

/// The bare server and a client of it.
#[derive(Debug)]
pub struct Bare {
    /// Sends no credentials; the server checks none.
    pub client: Client,
    server: Running,
}

impl Bare {
    /// Serves `service` for Get and Create and `page` for List.
    pub async fn start(
        service: pb::Service,
        page: pb::ListServicesResponse,
        channels: usize,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let api = ServiceServiceServer::new(FixedServiceApi { service, page });
        // Nagle off, as the real server asks for with `Server::tcp_nodelay(true)`. That
        // builder setting is ignored for a caller-supplied listener, so set it on the
        // incoming stream, where tonic applies it to each accepted socket.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = Running::spawn(|shutdown| async move {
            Server::builder()
                .add_service(api)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await?;
            Ok(())
        });
        let client = Client::connect(addr, channels, None).await?;
        Ok(Self { client, server })
    }

    /// Disconnects and stops the server.
    pub async fn stop(self) -> anyhow::Result<()> {
        drop(self.client);
        self.server.stop().await
    }
}
