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

/// Handshaken connections waiting for the gRPC server.
const ACCEPT_QUEUE: usize = 256;

/// Bounds on the TLS handshakes under way.
#[derive(Debug, Clone, Copy)]
struct Handshakes {
    /// How many at once. More connections wait in the kernel's backlog, so a flood of slow
    /// or hostile clients costs a bounded number of tasks and buffers.
    at_once: usize,
    /// How long a client may take to finish one.
    timeout: Duration,
}

const HANDSHAKES: Handshakes = Handshakes {
    at_once: 512,
    timeout: Duration::from_secs(10),
};

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
/// nobody else, and at most 512 run at once), and yields the established
/// streams to the gRPC server. `clients` names the peers in log lines (`agent`, `API
/// client`). The accept loop owns the handshakes, and ends with them at `shutdown` or when
/// the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsSwitch>,
    clients: &'static str,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    incoming_within(listener, tls, clients, shutdown, HANDSHAKES)
}

fn incoming_within(
    listener: TcpListener,
    tls: Arc<TlsSwitch>,
    clients: &'static str,
    shutdown: CancellationToken,
    limits: Handshakes,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(limits.at_once));
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
                match tokio::time::timeout(limits.timeout, acceptor.accept(tcp)).await {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use outpost_ca::{CertificateAuthority, api_tls_config, pinned_client_config};
    use tokio_rustls::TlsConnector;

    use super::*;

    /// With every handshake slot held by a client that never speaks, another client's
    /// handshake waits; it goes through once a slot is free.
    #[tokio::test]
    async fn handshakes_at_once_are_bounded() {
        let ca = CertificateAuthority::generate("test").expect("CA");
        let (cert, key) = ca
            .issue_server_cert(
                &["127.0.0.1".to_owned()],
                Duration::from_secs(3600),
                SystemTime::now(),
            )
            .expect("server certificate");
        let config = api_tls_config(&cert.cert_pem, &key, None).expect("server config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let _incoming = incoming_within(
            listener,
            TlsSwitch::new(config),
            "test client",
            shutdown.clone(),
            Handshakes {
                at_once: 1,
                timeout: Duration::from_secs(60),
            },
        );
        let client = TlsConnector::from(
            pinned_client_config(&ca.fingerprint(), Some(ca.cert_pem()), None)
                .expect("client config"),
        );
        let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let handshake = || {
            let (client, server_name) = (client.clone(), server_name.clone());
            async move {
                let tcp = TcpStream::connect(addr).await.expect("connect");
                client.connect(server_name, tcp).await
            }
        };

        let silent = TcpStream::connect(addr).await.expect("connect");
        let waited = tokio::time::timeout(Duration::from_millis(300), handshake()).await;
        assert!(
            waited.is_err(),
            "a second handshake went through beside the first"
        );
        // The silent client leaves: its slot is free, and the next handshake goes through.
        drop(silent);
        let through = tokio::time::timeout(Duration::from_secs(10), handshake())
            .await
            .expect("a free slot takes the next handshake");
        assert!(through.is_ok(), "{through:?}");
        shutdown.cancel();
    }
}
