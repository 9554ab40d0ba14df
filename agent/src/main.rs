//! `outpost-agent`: enroll once, then run: link to the management side and reconcile the
//! cluster until SIGINT/SIGTERM.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use outpost_agent::{drivers::kube::KubeCluster, link, reconcile, state::LocalState};
use tokio_util::sync::CancellationToken;

/// The Outpost agent for one datacenter.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Directory for the agent's key, certificates and local database.
    #[arg(long, env = "OUTPOST_AGENT_STATE_DIR", default_value = "outpost-agent")]
    state_dir: PathBuf,
    /// Log filter in `tracing` syntax.
    #[arg(long, env = "OUTPOST_AGENT_LOG", default_value = "info")]
    log: String,
    /// OTLP/gRPC collector for traces, e.g. `http://127.0.0.1:4317`.
    #[arg(long, env = "OUTPOST_AGENT_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrolls with a join token and exits.
    Enroll(Enrollment),
    /// Runs the agent (enrolling first if a join token is given and it is not enrolled).
    Run {
        #[command(flatten)]
        enrollment: Option<Enrollment>,
        /// Kubeconfig of the datacenter's cluster; unset means the in-cluster or default one.
        #[arg(long, env = "OUTPOST_AGENT_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// After starting, write `{"datacenter": …}` here.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
}

#[derive(clap::Args, Clone)]
#[group(requires_all = ["management", "token", "ca_fingerprint"], multiple = true)]
struct Enrollment {
    /// The management gateway, `host:port`.
    #[arg(long, env = "OUTPOST_AGENT_MANAGEMENT")]
    management: Option<String>,
    /// The join token from `DatacenterService/CreateJoinToken`.
    #[arg(long, env = "OUTPOST_AGENT_TOKEN")]
    token: Option<String>,
    /// The CA fingerprint printed with the join token.
    #[arg(long, env = "OUTPOST_AGENT_CA_FINGERPRINT")]
    ca_fingerprint: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = outpost_telemetry::TelemetryConfig {
        log_filter: args.log.clone(),
        otlp_endpoint: args.otlp_endpoint.clone(),
        ..Default::default()
    };
    let telemetry = match outpost_telemetry::Telemetry::init("outpost-agent", &config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("outpost-agent: {e:#}");
            return ExitCode::from(64);
        }
    };
    let code = match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "outpost-agent failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

async fn enroll(state: &LocalState, e: &Enrollment) -> anyhow::Result<()> {
    let (Some(management), Some(token), Some(fingerprint)) =
        (&e.management, &e.token, &e.ca_fingerprint)
    else {
        anyhow::bail!("enrolling needs --management, --token and --ca-fingerprint");
    };
    link::enroll::enroll(state, management, token, fingerprint).await?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let state = LocalState::open(&args.state_dir).await?;
    let (enrollment, kubeconfig, ready_file) = match args.command {
        Command::Enroll(e) => return enroll(&state, &e).await,
        Command::Run {
            enrollment,
            kubeconfig,
            ready_file,
        } => (enrollment, kubeconfig, ready_file),
    };
    if state.identity()?.is_none() {
        let e =
            enrollment.context("not enrolled: pass --management, --token and --ca-fingerprint")?;
        enroll(&state, &e).await?;
    }
    let identity = state.identity()?.context("enrollment did not complete")?;
    tracing::info!(version = outpost_agent::VERSION, dc = %identity.datacenter, management = %identity.management, "outpost-agent starting");
    let kube_config = match &kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer()
            .await
            .context("finding the cluster (set --kubeconfig)")?,
    };
    let cluster = KubeCluster::new(kube::Client::try_from(kube_config)?);

    let shutdown = CancellationToken::new();
    let (desired, desired_changed) =
        tokio::sync::watch::channel((state.stored_revision().await?, String::new()));
    let (capacity_tx, capacity) = tokio::sync::watch::channel(cluster.capacity().await);
    let (connected, _) = tokio::sync::watch::channel(false);
    let outbox = Arc::new(tokio::sync::Notify::new());
    let handles = link::stream::LinkHandles {
        desired,
        outbox: outbox.clone(),
        capacity,
        connected,
    };

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(link::stream::run(
        state.clone(),
        identity.clone(),
        handles,
        shutdown.clone(),
    ));
    tasks.spawn(reconcile::run(
        state.clone(),
        cluster.clone(),
        desired_changed,
        outbox,
        shutdown.clone(),
    ));
    let measuring = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = measuring.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => { capacity_tx.send_replace(cluster.capacity().await); }
            }
        }
    });
    if let Some(path) = ready_file {
        std::fs::write(
            &path,
            serde_json::json!({ "datacenter": identity.datacenter }).to_string(),
        )?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    if tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("tasks still running after 10s; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}
