//! The agent gateway: the mutual-TLS gRPC endpoint agents dial (`outpost.agent.v1`).
//!
//! - [`authority`] loads the internal CA (its key sealed in the database under a key file
//!   the database never sees) and issues the gateway's own server certificate.
//! - [`acceptor`] keeps the TLS configuration (terminated by [`crate::tls`]) current with
//!   the revocation list: a revoked certificate is refused at the next handshake.
//! - [`enroll`] trades join tokens for certificates; [`link`] runs each agent's stream.
//! - [`logs`] relays the API's log requests over the links of this instance.
//!
//! An agent's identity is its verified certificate's datacenter; nothing it sends can
//! change which datacenter it speaks for.

pub mod acceptor;
pub mod authority;
pub mod enroll;
pub mod link;
pub mod logs;
pub mod router;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use outpost_domain::provider::Catalog;
use outpost_proto::agent::v1 as pb;
use outpost_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

/// How long the gateway waits, when it stops, for its links to record their disconnects.
const LINKS_DRAIN: Duration = Duration::from_secs(5);

pub use authority::Authority;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Lifetime of agent certificates.
    pub certificate_ttl: Duration,
    /// A stream without any message from its agent for this long is closed as dead.
    pub agent_silence_limit: Duration,
    /// HTTP/2 keepalive interval on agent connections.
    pub keepalive: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            certificate_ttl: Duration::from_secs(12 * 3600),
            agent_silence_limit: Duration::from_secs(30),
            keepalive: Duration::from_secs(10),
        }
    }
}

/// Serves the gateway on `listener` until `shutdown`; its links take log requests from
/// `log_relay` and render managed services with `catalog`.
pub async fn serve(
    store: Store,
    authority: Arc<Authority>,
    listener: TcpListener,
    settings: GatewaySettings,
    log_relay: Arc<logs::LogRelay>,
    catalog: Arc<Catalog>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (tls, revoked) = acceptor::switch(&store, &authority).await?;
    let refresher = tokio::spawn(acceptor::refresh_on_revocation(
        store.clone(),
        authority.clone(),
        tls.clone(),
        revoked,
        shutdown.clone(),
    ));
    let incoming = crate::tls::incoming(listener, tls, "agent", shutdown.clone());
    let router = Arc::new(router::ChangeRouter::default());
    let routing = {
        let (router, store, shutdown) = (router.clone(), store.clone(), shutdown.clone());
        tokio::spawn(async move { router.run(store, shutdown).await })
    };
    let enrollment = enroll::EnrollmentApi {
        store: store.clone(),
        authority: authority.clone(),
        certificate_ttl: settings.certificate_ttl,
    };
    let links = tokio_util::task::TaskTracker::new();
    let link = link::LinkApi::new(
        store,
        authority,
        router,
        log_relay,
        catalog,
        settings.clone(),
        shutdown.clone(),
        links.clone(),
    );
    let result = Server::builder()
        .http2_keepalive_interval(Some(settings.keepalive))
        .http2_keepalive_timeout(Some(settings.keepalive * 2))
        .add_service(pb::enrollment_service_server::EnrollmentServiceServer::new(
            enrollment,
        ))
        .add_service(pb::agent_link_service_server::AgentLinkServiceServer::new(
            link,
        ))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
        .context("serving the agent gateway");
    refresher.abort();
    routing.abort();
    // Links end with `shutdown`, recording their disconnect; wait for that, bounded.
    links.close();
    if tokio::time::timeout(LINKS_DRAIN, links.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            links = links.len(),
            "agent links still closing after the grace period; stopping anyway"
        );
    }
    result
}
