//! A whole management instance: store, bootstrap admin, CA, the three listeners, and the
//! serve-until-signal-then-drain lifecycle. `main` and anything that embeds an instance
//! (the local installation, tests) share this one path.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use outpost_domain::provider::Catalog;
use outpost_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{api::Api, bootstrap, config::Config, gateway, server};

/// An instance with its store open and every port bound, not yet serving.
pub struct Instance {
    config: Config,
    store: Store,
    authority: Arc<gateway::Authority>,
    api: TcpListener,
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
        let api = server::bind(config.api.listen, "API").await?;
        let gateway = server::bind(config.gateway.listen, "agent gateway").await?;
        let metrics = server::bind(config.metrics.listen, "metrics").await?;
        Ok(Self {
            config,
            store,
            authority,
            api,
            gateway,
            metrics,
            bootstrap_token,
            catalog,
        })
    }

    /// The bound addresses and what clients need to find them, as written to the ready file.
    pub fn ready_info(&self) -> anyhow::Result<serde_json::Value> {
        let addr = |l: &TcpListener| l.local_addr().map(|a: SocketAddr| a.to_string());
        Ok(serde_json::json!({
            "api": addr(&self.api)?,
            "gateway": addr(&self.gateway)?,
            "metrics": addr(&self.metrics)?,
            "ca_fingerprint": self.authority.fingerprint,
            "admin_token_file": self.config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE),
        }))
    }

    /// Serves until `stop` resolves (or a server fails), then drains calls in flight for at
    /// most `api.shutdown_grace_secs` and closes the store.
    pub async fn serve(self, stop: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
        let info = self.ready_info()?;
        tracing::info!(api = info["api"].as_str().unwrap_or_default(),
            gateway = info["gateway"].as_str().unwrap_or_default(),
            metrics = info["metrics"].as_str().unwrap_or_default(), backend = ?self.store.backend(), "listening");
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
        tasks.spawn(server::serve_api(api, self.api, limits, shutdown.clone()));
        tasks.spawn(server::serve_metrics(
            prometheus,
            self.metrics,
            shutdown.clone(),
        ));
        tokio::select! {
            stopped = stop => { stopped?; tracing::info!("shutting down"); }
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
