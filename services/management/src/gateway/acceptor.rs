//! The gateway's TLS configuration: the CA's server certificate and a revocation list signed
//! afresh, swapped in ([`TlsSwitch`]) whenever the revocations change.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use outpost_store::{DatacenterChange, Store};
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use super::Authority;
use crate::tls::TlsSwitch;

/// A switch holding the configuration with the store's current revocations, and how many
/// revocations that is.
pub async fn switch(
    store: &Store,
    authority: &Authority,
) -> anyhow::Result<(Arc<TlsSwitch>, usize)> {
    let (config, revoked) = build(store, authority).await?;
    Ok((TlsSwitch::new(config), revoked))
}

/// How often the revocation list is re-signed even without revocations (it has a validity
/// window of its own).
const CRL_REFRESH: Duration = Duration::from_secs(3600);

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

/// Rebuilds the configuration when a change notice may mean a revocation, and hourly;
/// `revoked` is how many revocations the current configuration was built with.
pub async fn refresh_on_revocation(
    store: Store,
    authority: Arc<Authority>,
    tls: Arc<TlsSwitch>,
    mut revoked: usize,
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
        if forced || count != revoked {
            match build(&store, &authority).await {
                Ok((config, count)) => {
                    tls.replace(config);
                    revoked = count;
                }
                Err(e) => tracing::error!(
                    error = %outpost_process::ErrorChain(e.as_ref()),
                    "rebuilding the gateway TLS configuration failed"
                ),
            }
        }
    }
}
