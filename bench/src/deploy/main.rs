//! `deploy-bench`: the platform's own deploy and managed-service overhead. The management
//! service, a simulated Kubernetes whose pods become ready within a few controller steps of a
//! small interval, and one agent (with a Ceph when given) run in this process; the benchmark
//! times deploys from the DeployService call to DEPLOYED, and managed services from each API
//! call to its end state, one after another and many at once, and shows where the time goes.
//! See README.md.

mod args;
mod cluster;
mod installation;
mod managed;
mod report;
mod scenario;
mod together;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use outpost_bench::postgres::FreshDatabase;
use outpost_telemetry::{Telemetry, TelemetryConfig};

use crate::{
    args::{Args, Part},
    installation::{Installation, Options},
    report::Setup,
};

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
    let plan = args.plan()?;
    let ceph = args.ceph.clone().into_config();
    let managed_plan = args.managed_plan(ceph.is_some());
    let options = Options {
        step,
        store_url: database.as_ref().map(|db| db.url.clone()),
        channels: args.channels.max(1),
        ceph,
    };
    eprintln!("starting the simulated cluster, the management service and the agent");
    let installation = Installation::start(&options)
        .await
        .context("starting the installation")?;
    // Managed services first: they are all deleted at the end, so the deploys still start on
    // an empty cluster, while the deploys' hundred services would stay and slow every
    // controller step the managed services wait for.
    let measured = async {
        let managed = if args.runs(Part::Managed) {
            Some(managed::run(&managed_plan, &installation).await?)
        } else {
            None
        };
        let deploys = if args.runs(Part::Deploys) {
            Some(scenario::run(&plan, &installation).await?)
        } else {
            None
        };
        anyhow::Ok((deploys, managed))
    }
    .await;
    let stopped = installation.stop().await;
    if let Some(db) = database {
        db.drop_database().await?;
    }
    telemetry.shutdown().await;
    let (deploys, managed) = measured?;
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
    report::print(&setup, deploys.as_ref(), managed.as_ref());
    Ok(())
}
