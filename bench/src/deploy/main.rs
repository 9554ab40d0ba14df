//! `deploy-bench`: the platform's own deploy overhead. The management service, a simulated
//! Kubernetes whose pods become ready within a few controller steps of a small interval, and
//! one agent run in this process; the benchmark times deploys from the DeployService call to
//! DEPLOYED, one after another and a hundred at once, and shows where the time goes. See
//! README.md.

mod cluster;
mod installation;
mod report;
mod scenario;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use outpost_bench::postgres::FreshDatabase;
use outpost_telemetry::{Telemetry, TelemetryConfig};

use crate::{
    installation::{Installation, Options},
    report::Setup,
    scenario::Plan,
};

/// Times deploys on a simulated cluster whose pods become ready at once.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Services deployed all at once (first deploys, then new versions).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    services: u64,
    /// New versions of one service deployed one after another on an otherwise empty cluster.
    #[arg(long, default_value_t = 30)]
    sequential: usize,
    /// New versions of that service deployed one after another once the other services are
    /// deployed too.
    #[arg(long, default_value_t = 10)]
    sequential_among: usize,
    /// Milliseconds between the simulated cluster's controller steps; 1 is the smallest the
    /// simulator supports, so the cluster adds as little as it can.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    step_ms: u64,
    /// Seconds one deploy may take to reach DEPLOYED before the run fails.
    #[arg(long, default_value_t = 60)]
    deploy_timeout_secs: u64,
    /// API client connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// PostgreSQL URL whose user may create databases: the management service runs on a
    /// fresh database there, dropped afterwards. Default: SQLite in a temp dir.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Log filter (`tracing` syntax) for every part, to stderr.
    #[arg(long, default_value = "warn")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let telemetry = Telemetry::init(
        "deploy-bench",
        &TelemetryConfig {
            log_filter: args.log.clone(),
            ..Default::default()
        },
    )?;
    let database = match &args.postgres_url {
        Some(url) => Some(FreshDatabase::create(url).await?),
        None => None,
    };
    let step = Duration::from_millis(args.step_ms);
    let plan = Plan {
        services: usize::try_from(args.services)?,
        sequential: args.sequential,
        sequential_among: args.sequential_among,
        deploy_timeout: Duration::from_secs(args.deploy_timeout_secs),
    };
    let options = Options {
        step,
        store_url: database.as_ref().map(|db| db.url.clone()),
        channels: args.channels.max(1),
    };
    eprintln!("starting the simulated cluster, the management service and the agent");
    let installation = Installation::start(&options)
        .await
        .context("starting the installation")?;
    let measured = scenario::run(&plan, &installation).await;
    let stopped = installation.stop().await;
    if let Some(db) = database {
        db.drop_database().await?;
    }
    telemetry.shutdown().await;
    let results = measured?;
    stopped?;
    let setup = Setup {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        step,
        store: if args.postgres_url.is_some() {
            "PostgreSQL, a fresh database"
        } else {
            "SQLite in a temp dir"
        },
        services: plan.services,
    };
    report::print(&setup, &results);
    Ok(())
}
