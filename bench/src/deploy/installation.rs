//! The installation under test, all in this process on free loopback ports: a simulated
//! Kubernetes stepping on a timer ([`Cluster`]), the management service (`Instance`, as
//! `outpost-management` runs it: API, agent gateway with real mutual TLS, metrics) and one
//! agent enrolled for datacenter `dc1` through a join token, running against the cluster
//! over HTTP with the kubeconfig the cluster wrote, and against a Ceph when one is given.
//! The same wiring as `outpost-local`, minus its persistence.
//!
//! Besides the API client it keeps a read-only view of what the link did (desired-state
//! revisions, reports applied) and a way to wait until the link is quiet.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use outpost_agent::{drivers::ceph::CephConfig, link::enroll::enroll, runtime, state::LocalState};
use outpost_bench::targets::{Client, Running, create_datacenter};
use outpost_management::{config::Config, instance::Instance};
use outpost_proto::management::v1::{
    self as pb, agent_status::State, datacenter_service_client::DatacenterServiceClient,
};
use outpost_store::Store;

use crate::cluster::Cluster;

/// The one datacenter, which the simulated cluster is.
pub const DATACENTER: &str = "dc1";
/// How long the agent may take to show as connected.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the agent's status is read while waiting for it.
const AGENT_POLL: Duration = Duration::from_millis(20);
/// How long the management service gets to drain calls in flight when it stops; below the
/// stop grace of [`Running::stop`], so a slow drain shows as its own error.
const MANAGEMENT_DRAIN_SECS: u64 = 2;
/// The link counts as quiet once nothing moved for this long: longer than any pause within
/// one agent pass, so a pass still reporting is not mistaken for the end of it.
const QUIET: Duration = Duration::from_millis(500);
/// How often the link's counters are read while waiting for it to be quiet.
const QUIET_POLL: Duration = Duration::from_millis(50);
/// How long the link may take to become quiet.
const QUIET_TIMEOUT: Duration = Duration::from_secs(120);

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time between the simulated cluster's controller steps.
    pub step: Duration,
    /// The management service's database URL; `None`: SQLite in the temp dir.
    pub store_url: Option<String>,
    /// API client connections.
    pub channels: usize,
    /// The agent's Ceph; `None`: the datacenter has no object storage.
    pub ceph: Option<CephConfig>,
}

/// What the link between the management side and the agent has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The datacenter's desired-state revision.
    pub revision: i64,
    /// The highest revision the agent has stored.
    pub stored: i64,
    /// The sequence number of the last agent report the management side applied: every
    /// status and event the agent reported, in order.
    pub reports: i64,
}

/// Every part running, and an admin client of the API.
#[derive(Debug)]
pub struct Installation {
    /// The API as the bootstrap platform admin.
    pub client: Client,
    /// A second connection to the management service's database, read only for
    /// [`Counters::reports`], which the API does not show.
    store: Store,
    /// The simulated cluster the agent runs its datacenter on.
    pub cluster: Cluster,
    agent: Running,
    management: Running,
    /// The management data (SQLite, CA key), the agent's state and the kubeconfig.
    _dir: tempfile::TempDir,
}

impl Installation {
    /// Starts the cluster, the management service and the agent, creates datacenter
    /// [`DATACENTER`], enrolls the agent for it and waits until the API shows it connected.
    pub async fn start(options: &Options) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cluster = Cluster::start(options.step, dir.path()).await?;

        let mut config = Config {
            data_dir: dir.path().join("management"),
            ..Config::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        config.api.listen = loopback;
        config.gateway.listen = loopback;
        config.metrics.listen = loopback;
        config.api.shutdown_grace_secs = MANAGEMENT_DRAIN_SECS;
        config.store.url = options.store_url.clone();
        let store_url = config.store_url();
        let instance = Instance::start(config)
            .await
            .context("starting the management service")?;
        let store = Store::connect(&store_url, 2)
            .await
            .context("opening the management database for reading")?;
        let token = instance
            .bootstrap_token
            .clone()
            .context("the fresh database already has an admin")?;
        let ready = instance.ready_info()?;
        let field = |key: &str| {
            ready[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("the management service reports no {key}"))
        };
        let (api, gateway) = (field("api")?, field("gateway")?);
        let management =
            Running::spawn(|stop| instance.serve(async move { stop.cancelled().await }));

        let client = Client::connect(
            api.parse().context("the API address")?,
            options.channels,
            Some(&token),
        )
        .await?;
        create_datacenter(&client, 0, DATACENTER).await?;
        let join = DatacenterServiceClient::new(client.channel(0))
            .create_join_token(client.request(pb::CreateJoinTokenRequest {
                datacenter: format!("datacenters/{DATACENTER}"),
                ttl: None,
            }))
            .await
            .context("creating a join token")?
            .into_inner();
        let state = LocalState::open(&dir.path().join("agent")).await?;
        enroll(
            &state,
            std::slice::from_ref(&gateway),
            &join.token,
            &join.ca_fingerprint,
        )
        .await
        .context("enrolling the agent")?;
        let options = runtime::Options {
            kubeconfig: Some(cluster.kubeconfig.clone()),
            ceph: options.ceph.clone(),
            ..Default::default()
        };
        let agent = Running::spawn(|stop| runtime::run(state, options, |_| {}, stop));
        wait_connected(&client).await?;
        Ok(Self {
            client,
            store,
            cluster,
            agent,
            management,
            _dir: dir,
        })
    }

    /// What the link has done so far.
    pub async fn counters(&self) -> anyhow::Result<Counters> {
        let agent = DatacenterServiceClient::new(self.client.channel(0))
            .get_datacenter(self.client.request(pb::GetDatacenterRequest {
                name: format!("datacenters/{DATACENTER}"),
            }))
            .await
            .context("reading the datacenter")?
            .into_inner()
            .agent
            .unwrap_or_default();
        let reports = self
            .store
            .agent_get(&outpost_domain::DatacenterName {
                datacenter: DATACENTER.into(),
            })
            .await
            .context("reading the agent's record")?
            .context("the agent is not enrolled")?
            .report_sequence;
        Ok(Counters {
            revision: agent.desired_revision,
            stored: agent.applied_revision,
            reports,
        })
    }

    /// Waits until the agent has stored the current desired state and no report arrived
    /// for [`QUIET`]: the previous change has been applied and reported in full, so the
    /// next measurement starts on an idle link. Bounded by [`QUIET_TIMEOUT`].
    pub async fn settle(&self) -> anyhow::Result<Counters> {
        let deadline = Instant::now() + QUIET_TIMEOUT;
        let mut last = self.counters().await?;
        let mut unchanged_since = Instant::now();
        loop {
            tokio::time::sleep(QUIET_POLL).await;
            let now = self.counters().await?;
            if now != last || now.stored < now.revision {
                unchanged_since = Instant::now();
            } else if unchanged_since.elapsed() >= QUIET {
                return Ok(now);
            }
            last = now;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the agent link was still busy after {QUIET_TIMEOUT:?}: {now:?}"
            );
        }
    }

    /// Stops the agent, then the management service, then the cluster: nothing outlives
    /// what it talks to. Returns the first failure.
    pub async fn stop(self) -> anyhow::Result<()> {
        drop(self.client);
        self.store.close().await;
        let agent = self.agent.stop().await.context("stopping the agent");
        let management = self
            .management
            .stop()
            .await
            .context("stopping the management service");
        let cluster = self.cluster.stop().await;
        agent.and(management).and(cluster)
    }
}

/// Polls until the API shows the agent of [`DATACENTER`] connected; bounded.
async fn wait_connected(client: &Client) -> anyhow::Result<()> {
    wait_for_agent(client, "connect", CONNECT_TIMEOUT, |agent| {
        agent.state() == State::Connected
    })
    .await
}

/// Polls the agent of [`DATACENTER`], as the API shows it, until `ready`; fails saying it
/// did not `what` (e.g. "connect") within `timeout`.
pub async fn wait_for_agent(
    client: &Client,
    what: &str,
    timeout: Duration,
    ready: impl Fn(&pb::AgentStatus) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let agent = DatacenterServiceClient::new(client.channel(0))
            .get_datacenter(client.request(pb::GetDatacenterRequest {
                name: format!("datacenters/{DATACENTER}"),
            }))
            .await
            .context("reading the datacenter")?
            .into_inner()
            .agent
            .unwrap_or_default();
        if ready(&agent) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the agent did not {what} within {timeout:?} (its state: {})",
            agent.state().as_str_name()
        );
        tokio::time::sleep(AGENT_POLL).await;
    }
}
