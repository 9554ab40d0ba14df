//! The servers under test, each in this process on `127.0.0.1:0`: the real management API
//! over a seeded store, and the client side every measurement shares.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use outpost_management::{bootstrap, config::StoreConfig, server};
use outpost_proto::management::v1::{
    self as pb, datacenter_service_client::DatacenterServiceClient,
    project_service_client::ProjectServiceClient, service_service_client::ServiceServiceClient,
    tenant_service_client::TenantServiceClient,
};
use outpost_store::Store;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request,
    metadata::AsciiMetadataValue,
    transport::{Channel, Endpoint},
};

/// Services seeded in the listed environment.
pub const SEEDED_SERVICES: usize = 200;
/// Page size of the ListServices workload.
pub const PAGE_SIZE: i32 = 50;
const TENANT: &str = "bench";
const PROJECT: &str = "p";
const DATACENTER: &str = "dc1";
/// Get and List read here; projects are created with this environment.
const READ_ENV: &str = "production";
/// CreateService writes to a different environment so the listed one stays at 200.
const WRITE_ENV: &str = "staging";
/// Deadline of every call: far above any healthy latency, far below a cell's duration, so
/// a stuck server shows up as errors instead of stalling the run.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping server may take to drain before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the workloads ask for; the same for every server, since seeding is deterministic.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Names of the seeded services, read round-robin by GetService.
    pub service_names: Arc<[String]>,
    /// The environment ListServices lists.
    pub list_parent: String,
    /// The page tokens of a full walk over `list_parent` (the first is empty); tokens are
    /// stateless, so each call may use any of them.
    pub list_pages: Arc<[String]>,
    /// The environment CreateService creates in.
    pub create_parent: String,
}

/// Service stubs over a few connections, and the caller's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    channels: Arc<[Channel]>,
    auth: Option<AsciiMetadataValue>,
}

impl Client {
    /// Opens `channels` connections to `addr`; every request carries `token` when given.
    pub async fn connect(
        addr: std::net::SocketAddr,
        channels: usize,
        token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
        let mut connected = Vec::with_capacity(channels);
        for _ in 0..channels.max(1) {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            connected.push(channel);
        }
        let auth = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .context("the token is not valid metadata")?;
        Ok(Self {
            channels: connected.into(),
            auth,
        })
    }

    /// The stub for `worker`: workers are spread evenly over the connections.
    pub fn stub(&self, worker: usize) -> ServiceServiceClient<Channel> {
        ServiceServiceClient::new(self.channel(worker))
    }

    /// `message` with the caller's credentials attached.
    pub fn request<T>(&self, message: T) -> Request<T> {
        authed(message, self.auth.as_ref())
    }

    /// The connection for `worker`, for stubs of any service.
    pub fn channel(&self, worker: usize) -> Channel {
        self.channels[worker % self.channels.len()].clone()
    }
}

fn authed<T>(message: T, auth: Option<&AsciiMetadataValue>) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    if let Some(value) = auth {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

/// A server task in this process and the token that stops it.
#[derive(Debug)]
pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `serve` (which must stop when `shutdown` is cancelled) on the runtime.
    pub fn spawn<F>(serve: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(shutdown.clone()));
        Self { shutdown, task }
    }

    /// Stops the server; its clients must be dropped first, or draining waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let abort = self.task.abort_handle();
        match tokio::time::timeout(STOP_GRACE, self.task).await {
            Ok(joined) => joined.context("the server task panicked")?,
            Err(_) => {
                abort.abort();
                bail!("the server did not stop within {STOP_GRACE:?}")
            }
        }
    }
}

/// The management API over a seeded store.
#[derive(Debug)]
pub struct Outpost {
    /// Authenticated as the bootstrap platform admin.
    pub client: Client,
    /// What the workloads ask this server for.
    pub workload: Workload,
    store: Store,
    server: Running,
}

impl Outpost {
    /// Opens the store at `url` (a fresh database), creates the admin (its token file goes
    /// to `data_dir`), serves the API with default limits and seeds the workload's data.
    pub async fn start(url: &str, data_dir: &Path, channels: usize) -> anyhow::Result<Self> {
        let store = Store::connect(url, StoreConfig::default().max_connections)
            .await
            .context("opening the store")?;
        let token = bootstrap::ensure_admin(&store, data_dir)
            .await?
            .context("the fresh database already has an admin")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = store.clone();
        let server = Running::spawn(|shutdown| {
            server::serve_api(
                outpost_management::api::Api::new(
                    served,
                    String::new(),
                    outpost_ca::KeyEncryptionKey::generate(),
                ),
                listener,
                None,
                server::Limits::default(),
                shutdown,
            )
        });
        let client = Client::connect(addr, channels, Some(&token)).await?;
        let workload = seed(&client).await?;
        Ok(Self {
            client,
            workload,
            store,
            server,
        })
    }

    /// One seeded service and the first page of the list, exactly as this server sends
    /// them: the bare server answers with these.
    pub async fn samples(&self) -> anyhow::Result<(pb::Service, pb::ListServicesResponse)> {
        let service = self
            .client
            .stub(0)
            .get_service(self.client.request(pb::GetServiceRequest {
                name: self.workload.service_names[0].clone(),
            }))
            .await?
            .into_inner();
        let page = list_page(&self.client, &self.workload.list_parent, String::new()).await?;
        Ok((service, page))
    }

    /// Disconnects, stops the server and closes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        drop(self.client);
        self.server.stop().await?;
        self.store.close().await;
        Ok(())
    }
}

/// The service every seeded and benchmark-created service is made from.
pub fn create_service_request(parent: &str, service_id: String) -> pb::CreateServiceRequest {
    let env = |name: &str, value: &str| pb::EnvVar {
        name: name.into(),
        value: value.into(),
    };
    pb::CreateServiceRequest {
        parent: parent.into(),
        service: Some(pb::Service {
            display_name: format!("Benchmark {service_id}"),
            source: Some(pb::service::Source::Image("nginx:1".into())),
            shape: pb::Shape::Flx as i32,
            replicas: 1,
            env: vec![env("LOG_LEVEL", "info"), env("PORT", "8080")],
            ports: vec![pb::Port {
                container_port: 8080,
                protocol: pb::Protocol::Tcp as i32,
                name: "http".into(),
            }],
            health_check_path: "/healthz".into(),
            ..Default::default()
        }),
        service_id,
        request_id: String::new(),
    }
}

/// Creates datacenter `id`, over the connection of `worker`.
pub async fn create_datacenter(client: &Client, worker: usize, id: &str) -> anyhow::Result<()> {
    DatacenterServiceClient::new(client.channel(worker))
        .create_datacenter(client.request(pb::CreateDatacenterRequest {
            datacenter: Some(pb::Datacenter {
                display_name: format!("Benchmark datacenter {id}"),
                location: "loopback".into(),
                ..Default::default()
            }),
            datacenter_id: id.into(),
            request_id: String::new(),
        }))
        .await
        .with_context(|| format!("creating datacenter {id}"))?;
    Ok(())
}

/// Creates tenant `id`.
pub async fn create_tenant(client: &Client, id: &str) -> anyhow::Result<()> {
    TenantServiceClient::new(client.channel(0))
        .create_tenant(client.request(pb::CreateTenantRequest {
            tenant: Some(pb::Tenant {
                display_name: format!("Benchmark tenant {id}"),
                ..Default::default()
            }),
            tenant_id: id.into(),
            request_id: String::new(),
        }))
        .await
        .with_context(|| format!("creating tenant {id}"))?;
    Ok(())
}

/// Creates project `project` of `tenant`, placed in `datacenter` (an id) with its three
/// environments (development, staging, production), over the connection of `worker`.
pub async fn create_project(
    client: &Client,
    worker: usize,
    tenant: &str,
    project: &str,
    datacenter: &str,
) -> anyhow::Result<()> {
    ProjectServiceClient::new(client.channel(worker))
        .create_project(client.request(pb::CreateProjectRequest {
            parent: format!("tenants/{tenant}"),
            project: Some(pb::Project {
                display_name: format!("Benchmark project {project}"),
                default_datacenter: format!("datacenters/{datacenter}"),
                ..Default::default()
            }),
            project_id: project.into(),
            request_id: String::new(),
        }))
        .await
        .with_context(|| format!("creating project tenants/{tenant}/projects/{project}"))?;
    Ok(())
}

/// Creates the datacenter, tenant, project (with its environments) and the services.
async fn seed(client: &Client) -> anyhow::Result<Workload> {
    create_datacenter(client, 0, DATACENTER).await?;
    create_tenant(client, TENANT).await?;
    create_project(client, 0, TENANT, PROJECT, DATACENTER).await?;
    let env = |e: &str| format!("tenants/{TENANT}/projects/{PROJECT}/environments/{e}");
    let list_parent = env(READ_ENV);
    let mut service_names = Vec::with_capacity(SEEDED_SERVICES);
    for i in 0..SEEDED_SERVICES {
        let created = client
            .stub(i)
            .create_service(
                client.request(create_service_request(&list_parent, format!("svc-{i:03}"))),
            )
            .await
            .context("seeding a service")?;
        service_names.push(created.into_inner().name);
    }
    let mut list_pages = vec![String::new()];
    let mut listed = 0;
    loop {
        let token = list_pages.last().cloned().unwrap_or_default();
        let page = list_page(client, &list_parent, token).await?;
        listed += page.services.len();
        if page.next_page_token.is_empty() {
            break;
        }
        list_pages.push(page.next_page_token);
    }
    if listed != SEEDED_SERVICES {
        bail!("listing the seeded environment found {listed} services, not {SEEDED_SERVICES}");
    }
    Ok(Workload {
        service_names: service_names.into(),
        list_parent,
        list_pages: list_pages.into(),
        create_parent: env(WRITE_ENV),
    })
}

async fn list_page(
    client: &Client,
    parent: &str,
    page_token: String,
) -> anyhow::Result<pb::ListServicesResponse> {
    let page = client
        .stub(0)
        .list_services(client.request(pb::ListServicesRequest {
            parent: parent.into(),
            page_size: PAGE_SIZE,
            page_token,
        }))
        .await
        .context("listing services")?;
    Ok(page.into_inner())
}
