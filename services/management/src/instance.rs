//! A whole management instance: store, bootstrap admin, CA, the three listeners, and the
//! serve-until-signal-then-drain lifecycle. `main` and anything that embeds an instance
//! (the local installation, tests) share this one path.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use outpost_domain::provider::Catalog;
use outpost_store::Store;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{api::Api, bootstrap, config::Config, gateway, server};

/// The internal CA's certificate, written to the data dir for API clients to trust when the
/// API's certificate comes from that CA.
pub const CA_CERTIFICATE_FILE: &str = "ca.crt";

/// Lifetime of an API certificate from the internal CA; reissued at every start.
const API_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// How the public API is served over TLS.
struct ApiTls {
    config: Arc<ServerConfig>,
    /// The CA file clients trust, when the internal CA issued the certificate.
    ca_file: Option<PathBuf>,
}

/// An instance with its store open and every port bound, not yet serving.
pub struct Instance {
    config: Config,
    store: Store,
    authority: Arc<gateway::Authority>,
    api: TcpListener,
    api_tls: Option<ApiTls>,
    gateway: TcpListener,
    metrics: TcpListener,
    /// The bootstrap admin token, on the very first start only.
    pub bootstrap_token: Option<String>,
    catalog: Catalog,
}

impl Instance {
    /// Opens the store (running migrations), bootstraps the first admin if there is none,
    /// loads the CA, and binds the API, gateway and metrics listeners.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let store = Store::connect(&config.store_url(), config.store.max_connections)
            .await
            .context("opening the store")?;
        let bootstrap_token = bootstrap::ensure_admin(&store, &config.data_dir).await?;
        let authority = Arc::new(
            gateway::Authority::load_or_create(
                &store,
                &config.ca_key_file(),
                &config.gateway.hostnames,
            )
            .await
            .context("loading the agent CA")?,
        );
        let extra = match &config.providers.dir {
            Some(dir) => crate::config::provider_files(dir)
                .with_context(|| format!("reading provider definitions in {}", dir.display()))?,
            None => Vec::new(),
        };
        let catalog = Catalog::with(&extra)?;
        let api_tls = api_tls(&config, &authority)?;
        let api = server::bind(config.api.listen, "API").await?;
        let gateway = server::bind(config.gateway.listen, "agent gateway").await?;
        let metrics = server::bind(config.metrics.listen, "metrics").await?;
        Ok(Self {
            config,
            store,
            authority,
            api,
            api_tls,
            gateway,
            metrics,
            bootstrap_token,
            catalog,
        })
    }

    /// The bound addresses and what clients need to find them, as written to the ready file
    /// (paths absolute: its reader may run elsewhere).
    pub fn ready_info(&self) -> anyhow::Result<serde_json::Value> {
        let addr = |l: &TcpListener| l.local_addr().map(|a: SocketAddr| a.to_string());
        let absolute = |p: &Path| std::path::absolute(p).map(|p| p.display().to_string());
        let mut info = serde_json::json!({
            "api": addr(&self.api)?,
            "api_tls": self.api_tls.is_some(),
            "gateway": addr(&self.gateway)?,
            "metrics": addr(&self.metrics)?,
            "ca_fingerprint": self.authority.fingerprint,
            "admin_token_file": absolute(&self.config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE))?,
        });
        if let Some(file) = self.api_tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            info["api_ca_file"] = absolute(file)?.into();
        }
        Ok(info)
    }

    /// Serves until `stop` resolves (or a server fails), then drains calls in flight for at
    /// most `api.shutdown_grace_secs` and closes the store.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let info = self.ready_info()?;
        tracing::info!(api = info["api"].as_str().unwrap_or_default(), api_tls = self.api_tls.is_some(),
            gateway = info["gateway"].as_str().unwrap_or_default(),
            metrics = info["metrics"].as_str().unwrap_or_default(), backend = ?self.store.backend(), "listening");
        if self.api_tls.is_none() && !self.config.api.listen.ip().is_loopback() {
            tracing::warn!(
                api = info["api"].as_str().unwrap_or_default(),
                "the API is served in plaintext on a non-loopback address (api.insecure): tokens cross the network readable"
            );
        }
        let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("installing the metrics recorder")?;
        let config = &self.config;
        let limits = server::Limits {
            max_message_bytes: config.api.max_message_bytes,
            default_deadline: config.default_deadline(),
            max_concurrent_requests_per_connection: config
                .api
                .max_concurrent_requests_per_connection,
            keepalive: Duration::from_secs(config.api.keepalive_secs),
        };
        let shutdown = CancellationToken::new();
        let api = Api::with_catalog(
            self.store.clone(),
            self.authority.fingerprint.clone(),
            self.authority.kek().clone(),
            self.catalog,
        );
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(gateway::serve(
            self.store.clone(),
            self.authority.clone(),
            self.gateway,
            config.gateway_settings(),
            api.log_relay().clone(),
            api.catalog().clone(),
            shutdown.clone(),
        ));
        let api_tls = self.api_tls.map(|t| t.config);
        tasks.spawn(server::serve_api(
            api,
            self.api,
            api_tls,
            limits,
            shutdown.clone(),
        ));
        tasks.spawn(server::serve_metrics(
            prometheus,
            self.metrics,
            shutdown.clone(),
        ));
        tokio::select! {
            () = stop => { tracing::info!("shutting down"); }
            Some(result) = tasks.join_next() => { result??; }
        }
        shutdown.cancel();
        let grace = Duration::from_secs(config.api.shutdown_grace_secs);
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "calls still running after the grace period; stopping anyway"
            );
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The API's TLS configuration: the operator's certificate, or one the internal CA issues
/// for `api.tls.hostnames` (its CA certificate then written to the data dir for clients).
fn api_tls(config: &Config, authority: &gateway::Authority) -> anyhow::Result<Option<ApiTls>> {
    let Some(tls) = &config.api.tls else {
        return Ok(None);
    };
    let read = |path: &Path, key: &str| {
        std::fs::read_to_string(path).with_context(|| format!("reading {key} {}", path.display()))
    };
    let client_ca = match &tls.client_ca_file {
        Some(path) => Some(read(path, "api.tls.client_ca_file")?),
        None => None,
    };
    let (chain, key, ca_file) = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => (
            read(cert, "api.tls.cert_file")?,
            read(key, "api.tls.key_file")?,
            None,
        ),
        _ => {
            let (issued, key) = authority
                .ca()
                .issue_server_cert(&tls.hostnames, API_CERT_TTL, SystemTime::now())
                .context("issuing the API's certificate for api.tls.hostnames")?;
            let ca_pem = authority.ca().cert_pem();
            let ca_file = config.data_dir.join(CA_CERTIFICATE_FILE);
            std::fs::write(&ca_file, ca_pem)
                .with_context(|| format!("writing {}", ca_file.display()))?;
            (
                format!("{}{ca_pem}", issued.cert_pem),
                key.to_string(),
                Some(ca_file),
            )
        }
    };
    let config = outpost_ca::api_tls_config(&chain, &key, client_ca.as_deref())
        .context("the API's TLS settings (api.tls)")?;
    Ok(Some(ApiTls { config, ca_file }))
}
