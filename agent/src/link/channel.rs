//! A gRPC channel over TLS that trusts only the pinned management CA. TLS is done here with
//! rustls (tonic's own TLS options cannot pin a CA by fingerprint).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, pki_types::ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// Opens a channel to `address` (`host:port`) with `config`. Keepalives detect a dead
/// management side within about 30 seconds.
pub async fn connect(address: &str, config: Arc<ClientConfig>) -> anyhow::Result<Channel> {
    let (host, _) = address
        .rsplit_once(':')
        .context("the management address must be host:port")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name =
        ServerName::try_from(host).context("the management host is not a valid name")?;
    let connector = TlsConnector::from(config);
    let target = address.to_owned();
    let endpoint = Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .with_context(|| format!("connecting to the management gateway at {address}"))?;
    Ok(channel)
}
