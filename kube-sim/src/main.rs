//! `outpost-kube-sim`: serves a simulated Kubernetes API on a loopback port, stepping the
//! simulation on a timer, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use outpost_kube_sim::{Sim, SimConfig, kubeconfig, serve_until};
use outpost_process::{EXIT_USAGE, ErrorChain, stop_signal, write_atomically};
use tokio::net::TcpListener;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// A simulated Kubernetes API server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// State file: objects survive restarts. Without it the cluster lives in memory.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Written after binding: `{"url":"http://ADDR"}`.
    #[arg(long, env = "OUTPOST_READY_FILE")]
    ready_file: Option<PathBuf>,
    /// Milliseconds between simulation steps (at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    step_ms: u64,
    /// Written after binding: a kubeconfig whose current context points at this server.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %ErrorChain(e.as_ref()), "kube-sim failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = SimConfig::timed(Duration::from_millis(args.step_ms));
    if let Some(state) = &args.state {
        config = config.with_state_path(state);
    }
    let sim = Sim::start(config).context("starting the simulation")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    if let Some(path) = &args.kubeconfig_out {
        write_atomically(path, kubeconfig(&url).as_bytes(), false)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.ready_file {
        let ready = serde_json::json!({ "url": url }).to_string();
        write_atomically(path, ready.as_bytes(), false)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), %url, state = ?args.state, step_ms = args.step_ms, "kube-sim listening");
    serve_until(sim, listener, stop_signal(), DRAIN_DEADLINE).await?;
    tracing::info!("kube-sim stopped");
    Ok(())
}
