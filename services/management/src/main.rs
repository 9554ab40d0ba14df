//! `outpost-management`: loads and validates config, initializes tracing, starts an
//! [`Instance`], and serves until SIGINT/SIGTERM, then drains.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Parser;
use outpost_management::{
    bootstrap,
    config::{Config, EXIT_BAD_CONFIG},
    instance::Instance,
};
use outpost_telemetry::Telemetry;

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
    let telemetry = Telemetry::init("outpost-management", &config.telemetry)?;
    let source = args
        .config
        .as_ref()
        .map_or("defaults and environment".into(), |p| {
            p.display().to_string()
        });
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %source, "outpost-management starting");
    let token_file = config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE);
    let instance = Instance::start(config).await?;
    if let Some(token) = &instance.bootstrap_token {
        // Printed once, on the very first start, for the operator; never logged.
        #[expect(
            clippy::print_stdout,
            reason = "the bootstrap token is shown to the operator exactly once"
        )]
        {
            println!(
                "Bootstrap admin token (shown once; also saved to {}):\n{token}",
                token_file.display()
            );
        }
    }
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, instance.ready_info()?.to_string())
            .context("writing the ready file")?;
        std::fs::rename(&tmp, path).context("writing the ready file")?;
    }
    let result = instance.serve(shutdown_signal()).await;
    telemetry.shutdown().await;
    result
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
