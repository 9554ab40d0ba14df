//! TLS for the gateway: an accept loop with per-connection handshake deadlines, over a
//! server configuration that is swapped whenever the revocation list changes.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use outpost_store::{DatacenterChange, Store};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::Authority;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server.
const ACCEPT_QUEUE: usize = 256;
/// How often the revocation list is re-signed even without revocations (it has a validity
/// window of its own).
const CRL_REFRESH: Duration = Duration::from_secs(3600);

/// The current server configuration, replaced as a whole when revocations change.
#[derive(Debug)]
pub struct TlsSwitch {
    config: RwLock<(Arc<ServerConfig>, usize)>,
}

impl TlsSwitch {
    /// A configuration with the store's current revocations.
    pub async fn new(store: &Store, authority: &Authority) -> anyhow::Result<Arc<Self>> {
        let (config, count) = build(store, authority).await?;
        Ok(Arc::new(Self {
            config: RwLock::new((config, count)),
        }))
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    fn revoked_count(&self) -> usize {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }

    fn replace(&self, config: Arc<ServerConfig>, count: usize) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (config, count);
    }
}

async fn build(store: &Store, authority: &Authority) -> anyhow::Result<(Arc<ServerConfig>, usize)> {
    let revoked: Vec<(String, SystemTime)> = store
        .revoked_serials()
        .await?
        .into_iter()
        .map(|(serial, at)| {
            (
                serial,
                SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at.0).unwrap_or(0)),
            )
        })
        .collect();
    let now = SystemTime::now();
    let crl_number = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let crl = authority
        .ca()
        .crl(&revoked, crl_number, now)
        .context("signing the revocation list")?;
    let (cert, key) = authority.server_identity();
    let config =
        outpost_ca::server_tls_config(authority.ca().cert_pem(), cert, key, Some(&crl), false)
            .context("building the gateway TLS configuration")?;
    Ok((config, revoked.len()))
}

/// Rebuilds the configuration when a change notice may mean a revocation, and hourly.
pub async fn refresh_on_revocation(
    store: Store,
    authority: Arc<Authority>,
    tls: Arc<TlsSwitch>,
    shutdown: CancellationToken,
) {
    let mut changes = store.subscribe();
    let mut tick = tokio::time::interval(CRL_REFRESH);
    loop {
        let forced = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => true,
            notice = changes.recv() => matches!(notice, Ok(DatacenterChange::All) | Err(_)),
        };
        let count = match store.revoked_serials().await {
            Ok(r) => r.len(),
            Err(e) => {
                tracing::warn!(error = %crate::error::ErrorChain(&e), "reading revocations failed");
                continue;
            }
        };
        if forced || count != tls.revoked_count() {
            match build(&store, &authority).await {
                Ok((config, count)) => tls.replace(config, count),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "rebuilding the gateway TLS configuration failed"
                ),
            }
        }
    }
}

/// Accepts TCP connections, completes TLS on each in its own task (a slow client delays
/// nobody else), and yields the established streams to the gRPC server.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsSwitch>,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an agent connection failed");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    // A client's failure, not ours: refused certificates land here.
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "agent TLS handshake refused")
                    }
                    Err(_) => tracing::debug!(peer = %peer, "agent TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
