//! `api-bench`: requests/second and p50/p99 latency of the management API's GetService,
//! ListServices and CreateService on SQLite and PostgreSQL, next to a bare tonic server
//! answering the same messages on the same transport. Everything runs in this process over
//! TCP loopback; see README.md for what the numbers mean.

mod bare;
mod report;
mod rpcs;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use outpost_bench::{
    load::Plan,
    postgres::FreshDatabase,
    targets::{Client, Outpost, Workload},
};
use outpost_store::testing::POSTGRES_URL_VAR;

use crate::{
    bare::Bare,
    report::{BARE, Row},
    rpcs::Rpc,
};

/// Benchmarks the management API against a bare tonic server.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Measured seconds per cell (server × call).
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Warm-up seconds before each cell; not measured.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Calls in flight at any moment.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Client connections (tonic Channels) the calls are spread over.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// PostgreSQL URL whose user may create databases; a fresh database is created on that
    /// server and dropped afterwards. Default: $OUTPOST_TEST_POSTGRES_URL. Without either,
    /// the PostgreSQL rows are skipped.
    #[arg(long)]
    postgres_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan {
        concurrency: args.concurrency.max(1),
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs.max(1)),
    };
    let postgres_url = args
        .postgres_url
        .or_else(|| std::env::var(POSTGRES_URL_VAR).ok())
        .filter(|url| !url.is_empty());
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // SQLite first: the bare server answers with messages taken from it.
    let sqlite_dir = tempfile::tempdir()?;
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        sqlite_dir.path().join("outpost.db").display()
    );
    eprintln!("starting the API on SQLite and seeding it");
    let sqlite = Outpost::start(&sqlite_url, sqlite_dir.path(), args.channels).await?;
    let (service, page) = sqlite.samples().await?;
    let bare = Bare::start(service, page, args.channels).await?;
    measure_all(plan, BARE, &bare.client, &sqlite.workload, &mut rows).await;
    bare.stop().await?;
    measure_all(plan, "sqlite", &sqlite.client, &sqlite.workload, &mut rows).await;
    sqlite.stop().await?;

    match postgres_url {
        Some(url) => {
            eprintln!("starting the API on a fresh PostgreSQL database and seeding it");
            let db = FreshDatabase::create(&url).await?;
            let data_dir = tempfile::tempdir()?;
            let pg = Outpost::start(&db.url, data_dir.path(), args.channels)
                .await
                .context("starting the API on PostgreSQL")?;
            measure_all(plan, "postgres", &pg.client, &pg.workload, &mut rows).await;
            pg.stop().await?;
            db.drop_database().await?;
        }
        None => notes.push(format!(
            "postgres: skipped, because neither --postgres-url nor {POSTGRES_URL_VAR} is set \
             (start one with: eval \"$(scripts/postgres)\")"
        )),
    }

    let setup = report::Setup {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        concurrency: plan.concurrency,
        channels: args.channels,
        warmup: plan.warmup,
        duration: plan.duration,
    };
    report::print(&setup, &rows, &notes);
    Ok(())
}

async fn measure_all(
    plan: Plan,
    server: &'static str,
    client: &Client,
    workload: &Workload,
    rows: &mut Vec<Row>,
) {
    for rpc in Rpc::ALL {
        eprintln!("measuring {} on {server}", rpc.label());
        let stats = rpc.measure(plan, client, workload).await;
        rows.push(Row { rpc, server, stats });
    }
}
