//! TLS terminated by Outpost itself, for the agent gateway and the public API: an accept
//! loop with a handshake deadline per connection, over a server configuration that can be
//! swapped while running (the gateway's changes with its revocation list).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server.
const ACCEPT_QUEUE: usize = 256;
/// TLS handshakes under way at once. More connections wait in the kernel's backlog, so a
/// flood of slow or hostile clients costs a bounded number of tasks and buffers.
const MAX_HANDSHAKES: usize = 512;

/// The current server configuration, replaced as a whole (the gateway's, when its revocations
/// change); a handshake uses the one current when it starts.
#[derive(Debug)]
pub struct TlsSwitch {
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsSwitch {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Arc<Self> {
        Arc::new(Self {
            config: RwLock::new(config),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration for every handshake from now on.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }
}

/// Accepts TCP connections, completes TLS on each in its own task (a slow client delays
/// nobody else, and at most [`MAX_HANDSHAKES`] run at once), and yields the established
/// streams to the gRPC server. `clients` names the peers in log lines (`agent`, `API
/// client`). The accept loop owns the handshakes, and ends with them at `shutdown` or when
/// the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsSwitch>,
    clients: &'static str,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let mut running = tokio::task::JoinSet::new();
        loop {
            // Finished handshakes are reaped as they go, so the set stays as small as the cap.
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                () = sender.closed() => return,
                permit = handshakes.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                () = sender.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %outpost_process::ErrorChain(&e), clients, "accepting a connection failed");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let sender = sender.clone();
            running.spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    // A client's failure, not ours: refused certificates land here.
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %outpost_process::ErrorChain(&e), clients, "TLS handshake refused")
                    }
                    Err(_) => tracing::debug!(peer = %peer, clients, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
