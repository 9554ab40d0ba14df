//! Datacenter `local` and its agent, set up through the public API as the bootstrap admin,
//! level-triggered: every start checks what exists and does only what is missing, so a run
//! interrupted half-way is finished by the next one.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use outpost_agent::{link::enroll::enroll, state::LocalState};
use outpost_proto::management::v1::{
    self as pb, agent_status::State, datacenter_service_client::DatacenterServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

/// The datacenter this installation runs.
pub const DATACENTER: &str = "datacenters/local";
const DATACENTER_ID: &str = "local";
const DISPLAY_NAME: &str = "Local (simulated Kubernetes)";
const LOCATION: &str = "this machine";

/// Deadline of every call; all of them are small and on loopback.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Lifetime of the join token: it is used at once, by this process.
const JOIN_TOKEN_TTL_SECS: i64 = 60;
/// How often the agent's status is read while waiting for it to connect.
const POLL: Duration = Duration::from_millis(100);

/// Adds the bootstrap admin's token to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The management API, as the bootstrap admin.
pub struct Admin {
    datacenters: DatacenterServiceClient<InterceptedService<Channel, Bearer>>,
}

impl Admin {
    /// A client for the API at `api` (`host:port`) with the token saved in `token_file`.
    pub fn connect(api: &str, token_file: &Path) -> anyhow::Result<Self> {
        let token = std::fs::read_to_string(token_file).with_context(|| {
            format!(
                "reading the admin token {} (written at the first start; without it, start over with a new --data-dir)",
                token_file.display()
            )
        })?;
        let bearer = MetadataValue::try_from(format!("Bearer {}", token.trim()))
            .with_context(|| format!("{} holds no valid token", token_file.display()))?;
        let channel = Endpoint::from_shared(format!("http://{api}"))?
            .connect_timeout(CALL_DEADLINE)
            .timeout(CALL_DEADLINE)
            .connect_lazy();
        Ok(Self {
            datacenters: DatacenterServiceClient::with_interceptor(channel, Bearer(bearer)),
        })
    }

    /// Makes sure datacenter `local` exists and the agent in `state` is enrolled for it;
    /// an agent enrolled earlier is pointed at `gateway`, which may have moved to another
    /// port since.
    pub async fn ensure_enrolled(&self, state: &LocalState, gateway: &str) -> anyhow::Result<()> {
        let datacenter = match self.get().await {
            Ok(dc) => dc,
            Err(s) if s.code() == Code::NotFound => self.create().await?,
            Err(s) => return Err(refused("reading", s)),
        };
        let enrolled = datacenter
            .agent
            .is_some_and(|a| a.state() != State::NotEnrolled);
        match state.identity()? {
            Some(identity) if enrolled => {
                if identity.management != [gateway] {
                    state.save_management(&[gateway.to_owned()])?;
                }
                Ok(())
            }
            // Never enrolled, or its enrollment was revoked or lost with a deleted
            // datacenter: enroll afresh.
            _ => {
                let join = self
                    .datacenters
                    .clone()
                    .create_join_token(pb::CreateJoinTokenRequest {
                        datacenter: DATACENTER.into(),
                        ttl: Some(prost_types::Duration {
                            seconds: JOIN_TOKEN_TTL_SECS,
                            nanos: 0,
                        }),
                    })
                    .await
                    .map_err(|s| refused("creating a join token for", s))?
                    .into_inner();
                enroll(
                    state,
                    &[gateway.to_owned()],
                    &join.token,
                    &join.ca_fingerprint,
                )
                .await
                .context("enrolling the agent")?;
                Ok(())
            }
        }
    }

    /// Waits until the management side shows the agent connected by a link opened after
    /// `since` (an earlier run's link may still look live for a while).
    pub async fn wait_connected(
        &self,
        since: SystemTime,
        timeout: Duration,
    ) -> anyhow::Result<pb::Datacenter> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let datacenter = self.get().await.map_err(|s| refused("reading", s))?;
            let agent = datacenter.agent.clone().unwrap_or_default();
            let seen = agent
                .last_seen_time
                .and_then(|t| SystemTime::try_from(t).ok());
            if agent.state() == State::Connected && seen.is_some_and(|t| t >= floor_ms(since)) {
                return Ok(datacenter);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "the agent of {DATACENTER} did not connect within {}s (its state: {}); the log above says why",
                    timeout.as_secs(),
                    agent.state().as_str_name()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn get(&self) -> Result<pb::Datacenter, Status> {
        let request = pb::GetDatacenterRequest {
            name: DATACENTER.into(),
        };
        Ok(self
            .datacenters
            .clone()
            .get_datacenter(request)
            .await?
            .into_inner())
    }

    async fn create(&self) -> anyhow::Result<pb::Datacenter> {
        let request = pb::CreateDatacenterRequest {
            datacenter_id: DATACENTER_ID.into(),
            datacenter: Some(pb::Datacenter {
                display_name: DISPLAY_NAME.into(),
                location: LOCATION.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let created = self
            .datacenters
            .clone()
            .create_datacenter(request)
            .await
            .map_err(|s| refused("creating", s))?
            .into_inner();
        tracing::info!(datacenter = %created.name, "created the local datacenter");
        Ok(created)
    }
}

/// The store keeps times in milliseconds; a link seen in the same millisecond counts.
fn floor_ms(t: SystemTime) -> SystemTime {
    let since_epoch = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let ms = Duration::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
    SystemTime::UNIX_EPOCH + ms
}

fn refused(doing: &str, status: Status) -> anyhow::Error {
    anyhow::anyhow!(
        "{doing} {DATACENTER} through the API failed: {:?}: {}",
        status.code(),
        status.message()
    )
}
