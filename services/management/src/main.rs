//! `outpost-management`: loads config, starts the store, serves the API and metrics until
//! SIGINT/SIGTERM, then drains.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use outpost_management::{
    bootstrap,
    config::{Config, EXIT_BAD_CONFIG},
    server,
    telemetry::Telemetry,
};
use tokio_util::sync::CancellationToken;

/// The Outpost management service.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file; every key can also be set as OUTPOST_<SECTION>__<KEY>.
    #[arg(long)]
    config: Option<PathBuf>,
    /// After binding, write the bound addresses here as JSON.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("outpost-management: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG as u8);
        }
    };
    match run(args, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-management: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let telemetry = Telemetry::init(&config.telemetry)?;
    let source = args
        .config
        .as_ref()
        .map_or("defaults and environment".into(), |p| {
            p.display().to_string()
        });
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %source, "outpost-management starting");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = outpost_store::Store::connect(&config.store_url(), config.store.max_connections)
        .await
        .context("opening the store")?;
    if let Some(token) = bootstrap::ensure_admin(&store, &config.data_dir).await? {
        let file = config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE);
        // Printed once, on the very first start, for the operator; never logged.
        #[expect(
            clippy::print_stdout,
            reason = "the bootstrap token is shown to the operator exactly once"
        )]
        {
            println!(
                "Bootstrap admin token (shown once; also saved to {}):\n{token}",
                file.display()
            );
        }
    }
    let authority = std::sync::Arc::new(
        outpost_management::gateway::Authority::load_or_create(
            &store,
            &config.ca_key_file(),
            &config.gateway.hostnames,
        )
        .await
        .context("loading the agent CA")?,
    );
    let api_listener = server::bind(config.api.listen, "API").await?;
    let gateway_listener = server::bind(config.gateway.listen, "agent gateway").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let metrics_listener = server::bind(config.metrics.listen, "metrics").await?;
    let api_addr = api_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    tracing::info!(api = %api_addr, gateway = %gateway_addr, metrics = %metrics_addr, backend = ?store.backend(), "listening");
    if let Some(path) = &args.ready_file {
        let ready = serde_json::json!({
            "api": api_addr.to_string(),
            "metrics": metrics_addr.to_string(),
            "gateway": gateway_addr.to_string(),
            "ca_fingerprint": authority.fingerprint,
            "admin_token_file": config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ready.to_string()).context("writing the ready file")?;
        std::fs::rename(&tmp, path).context("writing the ready file")?;
    }
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let shutdown = CancellationToken::new();
    let limits = server::Limits {
        max_message_bytes: config.api.max_message_bytes,
        default_deadline: config.default_deadline(),
        max_concurrent_requests_per_connection: config.api.max_concurrent_requests_per_connection,
        keepalive: Duration::from_secs(config.api.keepalive_secs),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let api = outpost_management::api::Api::new(store.clone(), authority.fingerprint.clone());
    tasks.spawn(outpost_management::gateway::serve(
        store.clone(),
        authority.clone(),
        gateway_listener,
        config.gateway_settings(),
        shutdown.clone(),
    ));
    tasks.spawn(server::serve_api(
        api,
        api_listener,
        limits,
        shutdown.clone(),
    ));
    tasks.spawn(server::serve_metrics(
        prometheus,
        metrics_listener,
        shutdown.clone(),
    ));

    tokio::select! {
        signal = shutdown_signal() => { signal?; tracing::info!("shutting down"); }
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
    store.close().await;
    tracing::info!("stopped");
    telemetry.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
