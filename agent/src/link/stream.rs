//! The attach stream, kept open for the agent's lifetime: a gateway that fails is followed
//! at once by the next of the enrolled addresses (instances of a federation on one database
//! serve every agent alike); when every one has failed in a row, it waits with exponential
//! backoff and jitter (a restarted management side is not stormed). It stores every desired
//! state before acknowledging it, resends unacknowledged reports after every reconnect (the
//! management side drops duplicates by sequence number), and renews the certificate at half
//! its lifetime. Log requests are answered on the stream that carried them ([`super::logs`]).

use outpost_domain::observed::Capacity;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use backon::BackoffBuilder;
use outpost_ca::{AgentKey, pinned_client_config, validity_of};
use outpost_proto::agent::v1::{
    self as pb, attach_request::Kind as Out, attach_response::Kind as In,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{channel, logs::LogRequests};
use crate::{
    drivers::kube::logs::PodLogs,
    state::{Identity, LocalState},
};

/// How often the agent says it is alive when it has nothing else to say.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often the certificate's remaining lifetime is checked (a local parse, cheap).
const RENEWAL_CHECK: Duration = Duration::from_secs(5);
/// Reports sent but not yet acknowledged, at most.
const REPORT_WINDOW: u64 = 64;

/// What the link shares with the rest of the agent.
#[derive(Debug, Clone)]
pub struct LinkHandles {
    /// The revision of every newly stored desired state, with the trace (W3C
    /// `traceparent`) of the change that produced it.
    pub desired: watch::Sender<(i64, String)>,
    /// Woken when the outbox has something new.
    pub outbox: std::sync::Arc<Notify>,
    /// The cluster's capacity, as last measured.
    pub capacity: watch::Receiver<Capacity>,
    /// Whether the cluster's API server answers, as the last reconcile pass found.
    pub cluster: watch::Receiver<pb::ClusterReach>,
    /// Set while a stream is open.
    pub connected: watch::Sender<bool>,
    /// Reads the pod logs the management side asks for.
    pub logs: PodLogs,
}

/// Runs the link until `shutdown`.
pub async fn run(
    state: LocalState,
    identity: Identity,
    handles: LinkHandles,
    shutdown: CancellationToken,
) {
    let addresses = &identity.management;
    if addresses.is_empty() {
        // Reading and saving an identity refuse an empty list; this is only a last guard.
        tracing::error!("no management address to link to: run with --management");
        return;
    }
    let mut backoff = new_backoff();
    let mut current = 0;
    let mut failed_in_a_row = 0;
    loop {
        let address = &addresses[current % addresses.len()];
        let started = tokio::time::Instant::now();
        let outcome = session(&state, &identity, address, &handles, &shutdown).await;
        handles.connected.send_replace(false);
        if shutdown.is_cancelled() {
            return;
        }
        // A session that lasted a while was healthy: start the backoff over.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = new_backoff();
            failed_in_a_row = 0;
        }
        match outcome {
            // Closed by the other side (a restart, a renewal): the same gateway again.
            Ok(()) => tracing::info!(management = %address, "link closed; reconnecting"),
            Err(e) if class_of(&e) == Failure::Refused => {
                // Every instance shares the database that refused it: trying again soon, here
                // or at another address, would only storm the management side.
                tracing::error!(
                    management = %address,
                    error = %outpost_process::ErrorChain(e.as_ref()),
                    retry_in_secs = REFUSED_RETRY.as_secs(),
                    "the management side refuses this agent's certificate (revoked, unknown to it, or expired): \
                     the link stays down and the stored desired state keeps running. Enroll again: stop the agent, \
                     run `outpost-agent enroll` with a new join token, and start it"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(REFUSED_RETRY) => continue,
                }
            }
            Err(e) if class_of(&e) == Failure::LocalState => {
                tracing::error!(
                    error = %outpost_process::ErrorChain(e.as_ref()),
                    "the agent's local state failed; the link is retried"
                );
                failed_in_a_row += 1;
            }
            Err(e) => {
                tracing::warn!(management = %address, error = %outpost_process::ErrorChain(e.as_ref()), "link failed; reconnecting");
                failed_in_a_row += 1;
                current += 1;
                // Another gateway may answer at once; only a whole round of failures waits.
                if failed_in_a_row % addresses.len() != 0 {
                    continue;
                }
            }
        }
        let delay = backoff.next().unwrap_or(Duration::from_secs(30));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// How long an agent whose certificate is refused waits before trying once more (an
/// operator may have restored the management side's database meanwhile).
const REFUSED_RETRY: Duration = Duration::from_secs(3600);

/// What ended a session, for what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The management side refuses the agent's identity: retrying soon cannot help.
    Refused,
    /// The agent's own state (its database, key or certificate files) failed.
    LocalState,
    /// The network or the management side: retried with backoff.
    Transport,
}

/// Marks an error as the agent's local state failing.
#[derive(Debug)]
struct LocalStateFailed;

impl std::fmt::Display for LocalStateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the agent's local state")
    }
}

fn class_of(e: &anyhow::Error) -> Failure {
    use rustls::AlertDescription as Alert;
    if e.downcast_ref::<LocalStateFailed>().is_some() {
        return Failure::LocalState;
    }
    let refused = e.chain().any(|cause| {
        if let Some(status) = cause.downcast_ref::<tonic::Status>() {
            return matches!(
                status.code(),
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
            );
        }
        // The gateway refusing the client certificate in the handshake (tokio-rustls hands
        // it over inside an io::Error, whose source skips it).
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        matches!(
            tls,
            Some(rustls::Error::AlertReceived(
                Alert::CertificateRevoked
                    | Alert::CertificateExpired
                    | Alert::CertificateUnknown
                    | Alert::BadCertificate
                    | Alert::UnknownCA
                    | Alert::AccessDenied
            ))
        )
    });
    if refused {
        Failure::Refused
    } else {
        Failure::Transport
    }
}

fn new_backoff() -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

async fn session(
    state: &LocalState,
    identity: &Identity,
    address: &str,
    handles: &LinkHandles,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (cert, key, ca) = state.credentials().context(LocalStateFailed)?;
    let tls = pinned_client_config(&identity.ca_fingerprint, Some(&ca), Some((&cert, &key)))?;
    let channel = channel::connect(address, tls).await?;
    let mut client = pb::agent_link_service_client::AgentLinkServiceClient::new(channel);
    let (outbound, receiver) = mpsc::channel(REPORT_WINDOW as usize + 8);
    let hello = pb::Hello {
        stored_revision: state.stored_revision().await.context(LocalStateFailed)?,
        agent_version: crate::VERSION.into(),
        capacity: Some(pb::Capacity::from(*handles.capacity.borrow())),
        cluster: Some(handles.cluster.borrow().clone()),
    };
    outbound.send(message(Out::Hello(hello))).await?;
    let mut inbound = client
        .attach(ReceiverStream::new(receiver))
        .await
        .context("opening the attach stream")?
        .into_inner();
    handles.connected.send_replace(true);
    tracing::info!(dc = %identity.datacenter, management = %address, "link established");
    // Dropped when this session ends, which stops every answer it carries.
    let mut logs = LogRequests::new(handles.logs.clone(), outbound.clone());

    let mut acked: u64 = 0;
    let mut sent: u64 = 0;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut renewal = tokio::time::interval(RENEWAL_CHECK);
    let mut outbox_poll = tokio::time::interval(Duration::from_secs(1));
    // Hello carried the capacity and the cluster's reach so far; changes follow.
    let mut capacity = handles.capacity.clone();
    capacity.mark_unchanged();
    let mut cluster = handles.cluster.clone();
    cluster.mark_unchanged();
    loop {
        // Keep the report window full: resends after a reconnect start from the oldest
        // unacknowledged entry, because `sent` starts at zero.
        if sent < acked + REPORT_WINDOW {
            for report in state
                .outbox_after(
                    sent.max(acked),
                    u32::try_from(acked + REPORT_WINDOW - sent.max(acked)).unwrap_or(1),
                )
                .await
                .context(LocalStateFailed)?
            {
                sent = report.sequence;
                outbound.send(message(Out::Report(report))).await?;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            received = inbound.message() => match received.context("the attach stream failed")? {
                None => return Ok(()),
                Some(pb::AttachResponse { kind: Some(In::DesiredState(desired)), traceparent }) => {
                    let revision = desired.revision;
                    if state.store_desired(&desired).await.context(LocalStateFailed)? {
                        tracing::info!(revision, workloads = desired.workloads.len(), "desired state stored");
                        handles.desired.send_replace((revision, traceparent));
                    }
                    outbound.send(message(Out::Ack(pb::Ack { revision }))).await?;
                }
                Some(pb::AttachResponse { kind: Some(In::ReportAck(ack)), .. }) => {
                    acked = acked.max(ack.sequence);
                    sent = sent.max(acked);
                    state.outbox_ack(ack.sequence).await.context(LocalStateFailed)?;
                }
                Some(pb::AttachResponse { kind: Some(In::LogRequest(request)), .. }) => logs.start(request),
                Some(pb::AttachResponse { kind: Some(In::LogCancel(cancel)), .. }) => logs.cancel(cancel.id),
                Some(_) => {}
            },
            Ok(()) = capacity.changed() => {
                let measured = *capacity.borrow_and_update();
                outbound.send(message(Out::Capacity(measured.into()))).await?;
            }
            Ok(()) = cluster.changed() => {
                let reach = cluster.borrow_and_update().clone();
                outbound.send(message(Out::Cluster(reach))).await?;
            }
            _ = heartbeat.tick() => outbound.send(message(Out::Heartbeat(pb::Heartbeat {}))).await?,
            _ = handles.outbox.notified() => {}
            _ = outbox_poll.tick() => {}
            _ = renewal.tick() => {
                if renewal_due(&cert)? {
                    renew(state, &mut client).await?;
                    // Reconnect so the new certificate is the one presented.
                    return Ok(());
                }
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

/// Whether less than half of the certificate's lifetime is left: renewal starts well
/// before expiry, with time to retry if the management side is unreachable for a while.
fn renewal_due(cert_pem: &str) -> anyhow::Result<bool> {
    let der = rustls_pemfile_der(cert_pem)?;
    let (not_before, not_after) = validity_of(&der)?;
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let left = not_after
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Ok(left < lifetime / 2)
}

fn rustls_pemfile_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    Ok(CertificateDer::from_pem_slice(pem.as_bytes())
        .context("reading the agent certificate")?
        .to_vec())
}

async fn renew(
    state: &LocalState,
    client: &mut pb::agent_link_service_client::AgentLinkServiceClient<tonic::transport::Channel>,
) -> anyhow::Result<()> {
    let key = AgentKey::generate()?;
    let answer = client
        .renew_certificate(pb::RenewCertificateRequest {
            csr_pem: key.csr_pem()?,
        })
        .await
        .map_err(|s| anyhow::anyhow!("certificate renewal refused: {}", s.message()))?
        .into_inner();
    state.save_renewal(&key.to_pem(), &answer.certificate_pem)?;
    tracing::info!("certificate renewed");
    Ok(())
}
