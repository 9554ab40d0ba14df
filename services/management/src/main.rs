//! `outpost-management`: loads and validates config, initializes tracing, starts an
//! [`Instance`], and serves until SIGINT/SIGTERM, then drains.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Parser;
use outpost_management::{bootstrap, config::Config, instance::Instance};
use outpost_telemetry::Telemetry;

/// The Outpost management service.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file; every key can also be set as OUTPOST_<SECTION>__<KEY>.
    #[arg(long)]
    config: Option<PathBuf>,
    /// After binding, write the bound addresses here as JSON.
    #[arg(long, env = "OUTPOST_READY_FILE")]
    ready_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("outpost-management: {e}");
            return ExitCode::from(outpost_process::EXIT_USAGE);
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
        let ready = instance.ready_info()?.to_string();
        outpost_process::write_atomically(path, ready.as_bytes(), false)
            .context("writing the ready file")?;
    }
    let result = instance.serve(outpost_process::stop_signal()).await;
    telemetry.shutdown().await;
    result
}
