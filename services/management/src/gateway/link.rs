//! `AgentLinkService`: one stream per agent. Level-triggered: on every change notice the
//! stream re-reads the datacenter's revision and sends the whole desired state if the agent
//! has not stored it yet, so lost, repeated or reordered notices cannot leave it behind.
//! Once the agent said hello, the stream also carries the API's log requests to it and its
//! answers back ([`super::logs`]).

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use outpost_domain::{
    DatacenterName,
    desired::{self, ManagedTarget, ServiceTarget},
    observed::{AgentReport, Capacity},
    provider::Catalog,
    resources::EnvVar,
};
use outpost_proto::{
    agent::v1::{self as pb, attach_request::Kind as In, attach_response::Kind as Out},
    convert::{
        agent::{cluster_cut, from_report},
        timestamp,
    },
};
use outpost_store::Store;
use tokio::sync::{mpsc, watch};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::{
    Authority, GatewaySettings,
    enroll::{internal, millis},
    logs::{LinkLogs, LogRelay},
    router::{ChangeRouter, Notice},
};

/// Implements `AgentLinkService`.
#[derive(Debug, Clone)]
pub struct LinkApi {
    store: Store,
    authority: Arc<Authority>,
    router: Arc<ChangeRouter>,
    log_relay: Arc<LogRelay>,
    catalog: Arc<Catalog>,
    settings: GatewaySettings,
    shutdown: CancellationToken,
    /// Every link's task, so the gateway waits for them when it stops.
    links: TaskTracker,
}

impl LinkApi {
    /// The service; streams end when `shutdown` is cancelled, take log requests from
    /// `log_relay` and render managed services with `catalog`; each link runs in a task of
    /// `links`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor call, in the gateway, naming each part"
    )]
    pub fn new(
        store: Store,
        authority: Arc<Authority>,
        router: Arc<ChangeRouter>,
        log_relay: Arc<LogRelay>,
        catalog: Arc<Catalog>,
        settings: GatewaySettings,
        shutdown: CancellationToken,
        links: TaskTracker,
    ) -> Self {
        Self {
            store,
            authority,
            router,
            log_relay,
            catalog,
            settings,
            shutdown,
            links,
        }
    }

    /// The datacenter the caller's verified certificate names, and the certificate's
    /// serial. Calls without a client certificate (possible on this port, for enrollment)
    /// are refused here.
    fn identity<T>(req: &Request<T>) -> Result<(DatacenterName, String), Status> {
        let certs = req.peer_certs().ok_or_else(|| {
            Status::unauthenticated("a client certificate from enrollment is required")
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let dc = outpost_ca::agent_identity(leaf.as_ref())
            .map_err(|_| Status::unauthenticated("the client certificate names no datacenter"))?;
        let serial = outpost_ca::serial_of(leaf.as_ref())
            .map_err(|_| Status::unauthenticated("unreadable certificate"))?;
        Ok((dc, serial))
    }
}

/// Messages queued for one agent; a full queue means the agent is not reading.
const OUTBOUND_QUEUE: usize = 16;
/// How long an agent may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

type AttachStream = Pin<Box<dyn Stream<Item = Result<pb::AttachResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_link_service_server::AgentLinkService for LinkApi {
    type AttachStream = AttachStream;

    async fn attach(
        &self,
        req: Request<Streaming<pb::AttachRequest>>,
    ) -> Result<Response<AttachStream>, Status> {
        let (dc, serial) = Self::identity(&req)?;
        let agent = self.store.agent_get(&dc).await.map_err(internal)?;
        if agent.is_none() {
            return Err(Status::permission_denied(
                "this agent's enrollment was revoked; enroll again",
            ));
        }
        let (sender, receiver) = mpsc::channel(OUTBOUND_QUEUE);
        let link = Link {
            // Subscribed before the link reads anything, so no change in between is missed.
            notices: self.router.subscribe(&dc.datacenter),
            store: self.store.clone(),
            authority: self.authority.clone(),
            log_relay: self.log_relay.clone(),
            catalog: self.catalog.clone(),
            dc: dc.clone(),
            serial,
            inbound: req.into_inner(),
            outbound: sender,
            silence_limit: self.settings.agent_silence_limit,
            shutdown: self.shutdown.clone(),
            sent_revision: 0,
            traceparent: String::new(),
        };
        let span = tracing::info_span!("agent_link", dc = %dc);
        self.links.spawn(link.run().instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn renew_certificate(
        &self,
        req: Request<pb::RenewCertificateRequest>,
    ) -> Result<Response<pb::RenewCertificateResponse>, Status> {
        let (dc, _) = Self::identity(&req)?;
        let csr = req.into_inner().csr_pem;
        if csr.len() > 16 * 1024 {
            return Err(Status::invalid_argument("csr_pem must be at most 16 KiB"));
        }
        let mut tx = self.store.begin().await.map_err(internal)?;
        if self.store.agent_get(&dc).await.map_err(internal)?.is_none() {
            return Err(Status::permission_denied(
                "this agent's enrollment was revoked; enroll again",
            ));
        }
        let issued = self
            .authority
            .sign(&csr, &dc, self.settings.certificate_ttl)
            .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?;
        let not_after = outpost_domain::Timestamp(millis(issued.not_after));
        tx.agent_renewed(&dc.datacenter, &issued.serial, not_after)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        tracing::info!(dc = %dc, serial = %issued.serial, "agent certificate renewed");
        Ok(Response::new(pb::RenewCertificateResponse {
            certificate_pem: issued.cert_pem,
            expire_time: Some(timestamp(not_after)),
        }))
    }
}

/// One agent's stream.
struct Link {
    /// Notices for this link's datacenter only.
    notices: watch::Receiver<Notice>,
    store: Store,
    /// Opens the secrets sent in the desired state.
    authority: Arc<Authority>,
    log_relay: Arc<LogRelay>,
    /// Renders what managed services run.
    catalog: Arc<Catalog>,
    dc: DatacenterName,
    serial: String,
    inbound: Streaming<pb::AttachRequest>,
    outbound: mpsc::Sender<Result<pb::AttachResponse, Status>>,
    silence_limit: Duration,
    shutdown: CancellationToken,
    /// Highest revision sent or known stored by the agent.
    sent_revision: i64,
    /// Trace of the last change notice, sent with the desired state it caused.
    traceparent: String,
}

/// Why a stream ended.
enum End {
    AgentLeft,
    Refused(Status),
}

impl Link {
    async fn run(mut self) {
        let end = self.serve().await;
        let dc = self.dc.datacenter.clone();
        match end {
            End::AgentLeft => tracing::info!("agent link closed"),
            End::Refused(status) => {
                tracing::info!(reason = status.message(), "agent link refused");
                let _ = self.outbound.send(Err(status)).await;
            }
        }
        if let Err(e) = self.store.agent_disconnected(&dc).await {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "recording the disconnect failed");
        }
    }

    async fn serve(&mut self) -> End {
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, self.inbound.next()).await {
            Ok(Some(Ok(pb::AttachRequest {
                kind: Some(In::Hello(h)),
                ..
            }))) => h,
            Ok(Some(Ok(_))) => {
                return End::Refused(Status::invalid_argument("the first message must be hello"));
            }
            _ => return End::AgentLeft,
        };
        let capacity = hello.capacity.unwrap_or_default();
        if let Err(e) = self
            .store
            .agent_connected(
                &self.dc.datacenter,
                &hello.agent_version,
                hello.stored_revision,
                &Capacity::from(&capacity),
                cluster_cut(hello.cluster.as_ref()).as_ref(),
            )
            .await
        {
            return End::Refused(internal(e));
        }
        tracing::info!(stored_revision = hello.stored_revision, version = %hello.agent_version, "agent link established");
        self.sent_revision = hello.stored_revision;
        if let Err(end) = self.send_if_behind().await {
            return end;
        }
        // Dropped when this stream ends, which ends every log answer still open on it.
        let mut logs = LinkLogs::register(self.log_relay.clone(), &self.dc.datacenter);
        // Only the agent's own messages push this deadline back; change notices must not,
        // or a stuck agent would never be closed while other datacenters keep changing.
        let silence = tokio::time::sleep(self.silence_limit);
        tokio::pin!(silence);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return End::AgentLeft,
                () = &mut silence => {
                    tracing::warn!(silence_secs = self.silence_limit.as_secs(), "agent went silent; closing its link");
                    return End::AgentLeft;
                }
                message = self.inbound.next() => match message {
                    None | Some(Err(_)) => return End::AgentLeft,
                    Some(Ok(m)) => {
                        silence.as_mut().reset(tokio::time::Instant::now() + self.silence_limit);
                        if let Err(end) = self.handle(m, &mut logs).await { return end }
                    }
                },
                (message, traceparent) = logs.next_for_agent() => {
                    if let Err(end) = self.send(message, traceparent).await { return end }
                }
                changed = self.notices.changed() => {
                    if changed.is_err() {
                        return End::AgentLeft;
                    }
                    self.traceparent = self.notices.borrow_and_update().1.clone();
                    if let Err(end) = self.check_still_enrolled().await { return end }
                    if let Err(end) = self.send_if_behind().await { return end }
                }
            }
        }
    }

    async fn handle(&mut self, message: pb::AttachRequest, logs: &mut LinkLogs) -> Result<(), End> {
        match message.kind {
            Some(In::Ack(ack)) => {
                self.sent_revision = self.sent_revision.max(ack.revision);
                self.store
                    .agent_seen(&self.dc.datacenter, Some(ack.revision))
                    .await
                    .map_err(|e| End::Refused(internal(e)))
            }
            Some(In::Report(report)) => {
                let Some(entry) = from_report(&report) else {
                    tracing::debug!(sequence = report.sequence, "ignoring an unreadable report");
                    return Ok(());
                };
                // Who fights the platform, for operators: changes made behind the agent's back.
                if let (_, AgentReport::Event { reason, .. }) = &entry
                    && reason.starts_with("Drift")
                {
                    metrics::counter!(
                        "outpost_drift_repairs_total",
                        "datacenter" => self.dc.datacenter.clone(),
                        "outcome" => if reason == "DriftRepaired" { "restored" } else { "not_restored" }
                    )
                    .increment(1);
                }
                let applied = self
                    .store
                    .agent_apply_reports(&self.dc.datacenter, &[entry])
                    .await
                    .map_err(|e| End::Refused(internal(e)))?;
                self.send(
                    Out::ReportAck(pb::ReportAck { sequence: applied }),
                    String::new(),
                )
                .await
            }
            Some(In::Capacity(capacity)) => self
                .store
                .agent_capacity(&self.dc.datacenter, &Capacity::from(&capacity))
                .await
                .map_err(|e| End::Refused(internal(e))),
            Some(In::Cluster(cluster)) => {
                let cut = cluster_cut(Some(&cluster));
                match &cut {
                    Some(cut) => {
                        tracing::warn!(error = %cut.error, "the agent cannot reach its cluster's API server")
                    }
                    None => tracing::info!("the agent reaches its cluster's API server again"),
                }
                self.store
                    .agent_cluster(&self.dc.datacenter, cut.as_ref())
                    .await
                    .map_err(|e| End::Refused(internal(e)))
            }
            Some(In::Heartbeat(_)) => self
                .store
                .agent_seen(&self.dc.datacenter, None)
                .await
                .map_err(|e| End::Refused(internal(e))),
            Some(In::LogChunk(chunk)) => match logs.deliver(chunk) {
                Some(id) => {
                    tracing::debug!("log request canceled: its caller read too slowly");
                    self.send(Out::LogCancel(pb::LogCancel { id }), String::new())
                        .await
                }
                None => Ok(()),
            },
            Some(In::Hello(_)) => Err(End::Refused(Status::invalid_argument(
                "hello is only the first message",
            ))),
            None => Ok(()),
        }
    }

    /// Closes the stream if the agent was revoked, re-enrolled elsewhere or its datacenter
    /// deleted since it connected.
    async fn check_still_enrolled(&self) -> Result<(), End> {
        let revoked = self
            .store
            .revoked_serials()
            .await
            .map_err(|e| End::Refused(internal(e)))?;
        let gone = self
            .store
            .agent_get(&self.dc)
            .await
            .map_err(|e| End::Refused(internal(e)))?
            .is_none();
        if gone || revoked.iter().any(|(s, _)| *s == self.serial) {
            return Err(End::Refused(Status::permission_denied(
                "this agent's certificate was revoked",
            )));
        }
        Ok(())
    }

    async fn send_if_behind(&mut self) -> Result<(), End> {
        let revision = match self.store.datacenter_revision(&self.dc.datacenter).await {
            Ok(r) => r,
            Err(outpost_store::StoreError::NotFound { .. }) => {
                return Err(End::Refused(Status::permission_denied(
                    "this agent's datacenter was deleted",
                )));
            }
            Err(e) => return Err(End::Refused(internal(e))),
        };
        if revision <= self.sent_revision {
            return Ok(());
        }
        // The send is part of the trace of the change that caused it; the agent's work
        // continues from this span.
        let span = tracing::info_span!("desired_state_send", revision = revision);
        outpost_telemetry::continue_trace(&span, &std::mem::take(&mut self.traceparent));
        let traceparent = span.in_scope(outpost_telemetry::current_traceparent);
        let inputs = self
            .store
            .desired_inputs(&self.dc)
            .instrument(span.clone())
            .await
            .map_err(|e| End::Refused(internal(e)))?;
        let targets = open_secrets(inputs.targets, &inputs.sealed_secrets, self.authority.kek());
        let managed = render_managed(&inputs.managed, &self.catalog, self.authority.kek());
        let state = desired::compute(
            inputs.revision,
            &inputs.environments,
            &targets,
            &inputs.builds,
            &managed,
        );
        span.in_scope(|| {
            tracing::debug!(
                revision = state.revision,
                workloads = state.workloads.len(),
                "sending desired state"
            );
        });
        self.sent_revision = state.revision;
        self.send(Out::DesiredState((&state).into()), traceparent)
            .await
    }

    async fn send(&self, kind: Out, traceparent: String) -> Result<(), End> {
        let message = pb::AttachResponse {
            traceparent,
            kind: Some(kind),
        };
        self.outbound
            .send(Ok(message))
            .await
            .map_err(|_| End::AgentLeft)
    }
}

/// The targets with their secrets opened. A secret that does not open (the key file is not
/// the one it was sealed with) is left out and logged by name, never by value: one bad
/// secret must not stop a whole datacenter's desired state.
fn open_secrets(
    mut targets: Vec<ServiceTarget>,
    sealed: &[outpost_store::SealedSecret],
    kek: &outpost_ca::KeyEncryptionKey,
) -> Vec<ServiceTarget> {
    for target in &mut targets {
        for secret in sealed.iter().filter(|s| s.service == target.service) {
            let owner = secret.service.secret_name(&secret.name);
            match kek.open_secret(&secret.sealed, &owner) {
                Ok(value) => target.secrets.push(EnvVar {
                    name: secret.name.clone(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                }),
                Err(_) => tracing::error!(
                    service = %secret.service,
                    secret = %secret.name,
                    "a secret does not open with this instance's key file; left out"
                ),
            }
        }
    }
    targets
}

/// The managed services with their secrets opened and what they run rendered by their
/// providers. One that does not open or render (its provider's file was removed, or the key
/// file is not the one it was sealed with) is left out and logged by name, never by value:
/// the rest of the datacenter goes on, and the agent never removes a left-out service's
/// data for being absent.
fn render_managed(
    inputs: &[outpost_store::ManagedInput],
    catalog: &Catalog,
    kek: &outpost_ca::KeyEncryptionKey,
) -> Vec<ManagedTarget> {
    inputs
        .iter()
        .filter_map(|m| {
            let rendered = catalog
                .get(&m.provider)
                .ok_or_else(|| format!("provider {} is not in the catalog", m.provider))
                .and_then(|provider| {
                    let opened = kek
                        .open_secret(&m.sealed_secrets, &m.service.secrets_owner())
                        .map_err(|_| "its secrets do not open with this instance's key file".to_owned())?;
                    let secrets: serde_json::Value = serde_json::from_slice(&opened)
                        .map_err(|_| "its secrets are not a JSON object".to_owned())?;
                    provider.render(&m.config, &secrets)
                });
            match rendered {
                Ok(rendered) => Some(ManagedTarget {
                    service: m.service.clone(),
                    uid: m.uid.clone(),
                    generation: m.generation,
                    status: m.status,
                    rendered,
                }),
                Err(problem) => {
                    tracing::error!(managed_service = %m.service, %problem, "left out of the desired state");
                    None
                }
            }
        })
        .collect()
}
