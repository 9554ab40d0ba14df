//! `agents-bench`: connects many simulated agents (each with its own key, certificate and
//! mutual-TLS stream) to one real `outpost-management` process and measures enrollment and
//! attach throughput, the management side's memory per connected agent and idle CPU, and
//! how long a change takes to be acknowledged: by one datacenter's agent, and by every
//! agent at once. See README.md for what the numbers mean.

mod bounded;
mod fleet;
mod management;
mod platform;
mod report;
mod scenario;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::{management::Management, report::Setup, scenario::Plan};

/// Connects many simulated agents to one management process.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Simulated agents, one datacenter each.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Enrollments, attaches or seeding calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// One-datacenter changes, made one after another.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Changes to every datacenter at once (each a tenant deletion).
    #[arg(long, default_value_t = 3)]
    all_dc_rounds: usize,
    /// Seconds the connected fleet idles before its memory is read.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// The management binary. Default: `outpost-management` next to this program.
    #[arg(long)]
    management_bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    // A socket per agent here, and one per agent in the management process, which inherits
    // the limit; the rest is headroom for files, listeners and the API client.
    let fd_limit = outpost_bench::usage::raise_fd_limit(args.agents as u64 + 1024)?;
    let binary = match &args.management_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("outpost-management"),
    };
    eprintln!("starting {}", binary.display());
    let management = Management::start(&binary).await?;
    let plan = Plan {
        agents: args.agents,
        concurrency: args.concurrency.max(1),
        changes: args.changes,
        all_dc_rounds: args.all_dc_rounds,
        idle: Duration::from_secs(args.idle_secs),
    };
    let measured = scenario::run(&plan, &management).await;
    if measured.is_err() {
        eprintln!(
            "the end of the management log:\n{}",
            management.log_tail(20)
        );
    }
    let stopped = management.stop().await;
    let results = measured?;
    stopped?;
    let setup = Setup {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        agents: plan.agents,
        concurrency: plan.concurrency,
        fd_limit,
    };
    report::print(&setup, &results);
    Ok(())
}
