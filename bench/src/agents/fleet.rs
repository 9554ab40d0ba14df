//! The simulated agents. Each has its own key, join token and certificate, enrolls over a
//! TLS connection of its own, and then holds one attach stream on its own mutual-TLS
//! connection: it says hello, acknowledges every desired state the moment it arrives and
//! sends a heartbeat every 10 s. No local store and no Kubernetes: what is left is what the
//! management side sees of a real agent (`outpost_agent::link::stream`).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use outpost_agent::link::{channel, stream::HEARTBEAT};
use outpost_ca::{AgentKey, pinned_client_config};
use outpost_proto::agent::v1::{
    self as pb, agent_link_service_client::AgentLinkServiceClient, attach_request::Kind as Out,
    attach_response::Kind as In, enrollment_service_client::EnrollmentServiceClient,
};
use rustls::ClientConfig;
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Streaming, transport::Channel};

/// Reported as the agent version.
const AGENT_VERSION: &str = "agents-bench";
/// Deadline of an enrollment call, and of the first desired state after hello.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages an agent may queue towards the management side.
const OUTBOUND_QUEUE: usize = 8;

/// An agent ready to enroll: its datacenter, join token, key and CSR, made before the clock
/// starts so that enrollment timing is the management side's work and the round trip.
#[derive(Debug)]
pub struct Joining {
    index: usize,
    token: String,
    key: AgentKey,
    csr: String,
}

impl Joining {
    /// Generates the key and CSR of the agent for datacenter `index`.
    pub fn new(index: usize, token: String) -> anyhow::Result<Self> {
        let key = AgentKey::generate()?;
        let csr = key.csr_pem()?;
        Ok(Self {
            index,
            token,
            key,
            csr,
        })
    }
}

/// An enrolled agent: the TLS configuration that presents its certificate.
#[derive(Debug)]
pub struct Enrolled {
    index: usize,
    tls: Arc<ClientConfig>,
}

/// Enrolls over a new TLS connection (no client certificate, the CA pinned by
/// `ca_fingerprint`), as a real agent's first contact does; returns the credentials and how
/// long the connection and the call took.
pub async fn enroll(
    gateway: Arc<str>,
    ca_fingerprint: Arc<str>,
    joining: Joining,
) -> anyhow::Result<(Enrolled, Duration)> {
    // A config per agent, as each real agent has: a shared one would resume TLS sessions.
    let first_contact = pinned_client_config(&ca_fingerprint, None, None)?;
    let started = Instant::now();
    let channel = channel::connect(&gateway, first_contact).await?;
    let mut request = tonic::Request::new(pb::EnrollRequest {
        join_token: joining.token,
        csr_pem: joining.csr,
        agent_version: AGENT_VERSION.into(),
    });
    request.set_timeout(CALL_TIMEOUT);
    let answer = EnrollmentServiceClient::new(channel)
        .enroll(request)
        .await
        .with_context(|| format!("enrolling agent {}", joining.index))?
        .into_inner();
    let took = started.elapsed();
    let tls = pinned_client_config(
        &ca_fingerprint,
        Some(&answer.ca_certificate_pem),
        Some((&answer.certificate_pem, &joining.key.to_pem())),
    )?;
    Ok((
        Enrolled {
            index: joining.index,
            tls,
        },
        took,
    ))
}

/// The latest desired state an agent acknowledged, and when it sent the ack.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    /// Its revision.
    pub revision: i64,
    /// When the ack was handed to the stream.
    pub at: Instant,
}

/// An attach stream whose first desired state has been acknowledged.
pub struct Link {
    index: usize,
    /// Keeps the connection open.
    _client: AgentLinkServiceClient<Channel>,
    inbound: Streaming<pb::AttachResponse>,
    outbound: mpsc::Sender<pb::AttachRequest>,
    acked: watch::Sender<Acked>,
}

impl Link {
    /// Connects with the agent's certificate, says hello with no stored revision, and
    /// acknowledges the first desired state; returns the link and how long all that took.
    pub async fn open(gateway: Arc<str>, enrolled: Enrolled) -> anyhow::Result<(Self, Duration)> {
        let started = Instant::now();
        let channel = channel::connect(&gateway, enrolled.tls).await?;
        let mut client = AgentLinkServiceClient::new(channel);
        let (outbound, requests) = mpsc::channel(OUTBOUND_QUEUE);
        outbound
            .send(message(Out::Hello(pb::Hello {
                stored_revision: 0,
                agent_version: AGENT_VERSION.into(),
                capacity: Some(pb::Capacity {
                    cpu_millis: 64_000,
                    memory_bytes: 256 << 30,
                    ..Default::default()
                }),
                cluster: None,
            })))
            .await?;
        let mut inbound = client
            .attach(ReceiverStream::new(requests))
            .await
            .with_context(|| format!("attaching agent {}", enrolled.index))?
            .into_inner();
        let revision = loop {
            let received = tokio::time::timeout(CALL_TIMEOUT, inbound.message())
                .await
                .with_context(|| format!("agent {} got no desired state", enrolled.index))??;
            match received {
                Some(pb::AttachResponse {
                    kind: Some(In::DesiredState(desired)),
                    ..
                }) => break desired.revision,
                Some(_) => {}
                None => anyhow::bail!("the link of agent {} closed at once", enrolled.index),
            }
        };
        outbound
            .send(message(Out::Ack(pb::Ack { revision })))
            .await?;
        let acked = Acked {
            revision,
            at: Instant::now(),
        };
        let took = started.elapsed();
        Ok((
            Self {
                index: enrolled.index,
                _client: client,
                inbound,
                outbound,
                acked: watch::Sender::new(acked),
            },
            took,
        ))
    }

    /// Acknowledges every desired state and sends heartbeats until `shutdown` or until the
    /// management side ends the stream; returns why it ended, if not for `shutdown`.
    async fn run(mut self, shutdown: CancellationToken) -> Option<String> {
        let start = tokio::time::Instant::now() + HEARTBEAT;
        let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return None,
                received = self.inbound.message() => match received {
                    Ok(Some(pb::AttachResponse { kind: Some(In::DesiredState(desired)), .. })) => {
                        let revision = desired.revision;
                        let sent = self.outbound.send(message(Out::Ack(pb::Ack { revision }))).await;
                        self.acked.send_replace(Acked { revision, at: Instant::now() });
                        sent
                    }
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => return Some("the management side closed the stream".into()),
                    Err(status) => return Some(format!("the stream failed: {status}")),
                },
                _ = heartbeat.tick() => self.outbound.send(message(Out::Heartbeat(pb::Heartbeat {}))).await,
            };
            if sent.is_err() {
                return Some("the request stream closed".into());
            }
        }
    }
}

fn message(kind: Out) -> pb::AttachRequest {
    pb::AttachRequest {
        traceparent: String::new(),
        kind: Some(kind),
    }
}

/// One connected agent, as the benchmark sees it.
#[derive(Debug)]
pub struct Agent {
    /// Index of its datacenter.
    pub index: usize,
    acked: watch::Receiver<Acked>,
}

impl Agent {
    /// The latest acknowledged desired state.
    pub fn acked(&self) -> Acked {
        *self.acked.borrow()
    }

    /// Waits until the agent acknowledges `revision` or a later one, for at most `timeout`.
    pub async fn acked_at_least(&self, revision: i64, timeout: Duration) -> anyhow::Result<Acked> {
        let mut acked = self.acked.clone();
        let waited = tokio::time::timeout(timeout, acked.wait_for(|a| a.revision >= revision))
            .await
            .with_context(|| {
                format!(
                    "agent {} did not acknowledge revision {revision} within {timeout:?}",
                    self.index
                )
            })?;
        let ack = *waited.with_context(|| format!("agent {}'s link task ended", self.index))?;
        Ok(ack)
    }
}

/// Every connected agent and the tasks running their links.
pub struct Fleet {
    agents: Vec<Agent>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
    ended: Arc<AtomicUsize>,
    first_end: Arc<Mutex<Option<String>>>,
}

impl Fleet {
    /// No agents yet.
    pub fn new() -> Self {
        Self {
            agents: Vec::new(),
            tasks: JoinSet::new(),
            shutdown: CancellationToken::new(),
            ended: Arc::new(AtomicUsize::new(0)),
            first_end: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `link` until [`Fleet::stop`], keeping agents ordered by datacenter index.
    pub fn add(&mut self, link: Link) {
        let agent = Agent {
            index: link.index,
            acked: link.acked.subscribe(),
        };
        let at = self.agents.partition_point(|a| a.index < agent.index);
        self.agents.insert(at, agent);
        let shutdown = self.shutdown.clone();
        let ended = self.ended.clone();
        let first_end = self.first_end.clone();
        self.tasks.spawn(async move {
            if let Some(why) = link.run(shutdown).await {
                ended.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = first_end.lock() {
                    first.get_or_insert(why);
                }
            }
        });
    }

    /// The agents, by datacenter index.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// How many links ended while the benchmark ran, and why the first one did.
    pub fn ended(&self) -> (usize, Option<String>) {
        let first = self.first_end.lock().ok().and_then(|f| f.clone());
        (self.ended.load(Ordering::Relaxed), first)
    }

    /// Closes every stream and waits for the link tasks to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
