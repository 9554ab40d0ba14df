//! `outpost-local`: a whole Outpost on one machine, in one process, with nothing to set up:
//! the management service on SQLite, a simulated Kubernetes API and one agent enrolled for
//! datacenter `local`. Everything is kept under one data directory, so a restart picks up
//! where the last run stopped; SIGINT or SIGTERM stops every part in order and exits 0.
//!
//! Datacenter `local` has object storage when a Ceph is named with the agent's flags, or
//! when Ceph's packages are installed (outpost-local then runs a single-node Ceph under the
//! data directory); without either it says it has none, and buckets are refused saying how
//! to add it.
//!
//! The parts are the same libraries the separate binaries run (`outpost-management`,
//! `outpost-kube-sim`, `outpost-agent`); the datacenter is created and the agent enrolled
//! through the public API, so validation and audit are the same as for any operator.

mod admin;
mod banner;
mod ceph;
mod parts;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use clap::Parser;
use outpost_agent::{
    runtime::{self, CephArgs},
    state::LocalState,
};
use outpost_kube_sim::{Sim, SimConfig, kubeconfig, serve_until};
use outpost_management::{bootstrap, config::Config, instance::Instance, server::BindError};
use outpost_process::write_atomically;
use tokio_util::sync::CancellationToken;

use crate::{admin::Admin, ceph::Offer, parts::Parts};

/// How long the agent may take to show as connected before the start counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the simulated cluster moves its objects along.
const CLUSTER_STEP: Duration = Duration::from_millis(200);

/// How long in-flight Kubernetes requests get to finish at shutdown.
const CLUSTER_DRAIN: Duration = Duration::from_secs(10);

/// Outpost on this machine: the management service (SQLite), a simulated Kubernetes and one
/// agent for datacenter `local`. Every port is on 127.0.0.1; 0 picks a free one.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Directory for all state, created if missing and reused on the next start: the
    /// management service's (database, admin token, CA key) at its top, as for
    /// `outpost-management`, the simulated cluster in `cluster.json`, the agent in `agent/`.
    #[arg(long, env = "OUTPOST_LOCAL_DATA_DIR", default_value = "outpost-data")]
    data_dir: PathBuf,
    /// Port of the management API (gRPC).
    #[arg(long, env = "OUTPOST_LOCAL_API_PORT", default_value_t = 7070)]
    api_port: u16,
    /// Port of the agent gateway (mutual TLS).
    #[arg(long, env = "OUTPOST_LOCAL_GATEWAY_PORT", default_value_t = 7443)]
    gateway_port: u16,
    /// Port of the Prometheus endpoint.
    #[arg(long, env = "OUTPOST_LOCAL_METRICS_PORT", default_value_t = 9470)]
    metrics_port: u16,
    /// Port of the simulated Kubernetes API.
    #[arg(long, env = "OUTPOST_LOCAL_KUBE_PORT", default_value_t = 7643)]
    kube_port: u16,
    /// Port of the RADOS Gateway (S3) of the Ceph outpost-local runs when Ceph's packages
    /// are installed (its data in `ceph/` under the data directory).
    #[arg(long, env = "OUTPOST_LOCAL_CEPH_PORT", default_value_t = 7480)]
    ceph_port: u16,
    /// Do not run a Ceph even though its packages are installed: the datacenter then has
    /// no object storage.
    #[arg(long, env = "OUTPOST_LOCAL_NO_CEPH", conflicts_with = "rgw_endpoint")]
    no_ceph: bool,
    /// A Ceph of your own for the datacenter, as for outpost-agent; outpost-local then
    /// runs none.
    #[command(flatten)]
    ceph: CephArgs,
    /// Once everything is up, write the endpoints here as JSON.
    #[arg(long, env = "OUTPOST_READY_FILE")]
    ready_file: Option<PathBuf>,
    /// Log filter in `tracing` syntax.
    #[arg(long, env = "OUTPOST_LOCAL_LOG", default_value = "info")]
    log: String,
    /// OTLP/gRPC collector for traces, e.g. `http://127.0.0.1:4317`.
    #[arg(long, env = "OUTPOST_LOCAL_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

impl Args {
    /// Each port flag with its loopback address, for binding and for naming the flag of a
    /// port that is taken.
    fn ports(&self) -> [(&'static str, SocketAddr); 5] {
        let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        [
            ("--api-port", at(self.api_port)),
            ("--gateway-port", at(self.gateway_port)),
            ("--metrics-port", at(self.metrics_port)),
            ("--kube-port", at(self.kube_port)),
            ("--ceph-port", at(self.ceph_port)),
        ]
    }

    /// Refuses two parts on one fixed port before anything is bound.
    fn validate(&self) -> Result<(), String> {
        let ports = self.ports();
        for (i, (flag, addr)) in ports.iter().enumerate() {
            if let Some((other, _)) = ports[i + 1..]
                .iter()
                .find(|(_, a)| addr.port() != 0 && a == addr)
            {
                return Err(format!("{flag} and {other} are both {}", addr.port()));
            }
        }
        Ok(())
    }
}

/// Where each part keeps its state under the data directory. The management service's
/// files are at the top, where `outpost-management` keeps them, so the README's commands
/// (`cat outpost-data/admin-token`) work with either, and either can open the data later.
struct Layout {
    root: PathBuf,
    agent: PathBuf,
    ceph: PathBuf,
    cluster_state: PathBuf,
    kubeconfig: PathBuf,
}

impl Layout {
    /// Creates the data directory; paths are absolute, so the printed commands work from
    /// any directory.
    fn create(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let root = std::fs::canonicalize(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        Ok(Self {
            agent: root.join("agent"),
            ceph: root.join("ceph"),
            cluster_state: root.join("cluster.json"),
            kubeconfig: root.join("kubeconfig"),
            root,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(outpost_process::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(e) = args.validate() {
        eprintln!("outpost-local: {e}");
        return ExitCode::from(outpost_process::EXIT_USAGE);
    }
    let telemetry = outpost_telemetry::TelemetryConfig {
        log_filter: args.log.clone(),
        otlp_endpoint: args.otlp_endpoint.clone(),
        ..Default::default()
    };
    let telemetry = match outpost_telemetry::Telemetry::init("outpost-local", &telemetry) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("outpost-local: {e:#}");
            return ExitCode::from(outpost_process::EXIT_USAGE);
        }
    };
    let stop = CancellationToken::new();
    let result = match stop_on_signal(stop.clone()) {
        Ok(()) => run(&args, stop).await,
        Err(e) => Err(anyhow::Error::new(e).context("listening for signals")),
    };
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-local: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `stop` on the first SIGINT or SIGTERM; a second one exits at once, for when a
/// part takes its full grace period to stop. The handlers are installed before this
/// returns, so a signal during start-up also stops the parts in order.
fn stop_on_signal(stop: CancellationToken) -> std::io::Result<()> {
    let mut signals = outpost_process::StopSignals::install()?;
    tokio::spawn(async move {
        tokio::select! {
            () = signals.recv() => {}
            // A part failed; the stop is under way already.
            () = stop.cancelled() => {}
        }
        if !stop.is_cancelled() {
            tracing::info!("stopping (signal again to exit at once)");
            stop.cancel();
        }
        signals.recv().await;
        tracing::warn!("second signal; exiting without waiting for the parts to stop");
        std::process::exit(130);
    });
    Ok(())
}

/// Starts every part, runs until `stop` (a signal, or a part that ended by itself), then
/// stops them in order: agent, management, cluster.
async fn run(args: &Args, stop: CancellationToken) -> anyhow::Result<()> {
    let mut parts = Parts::new(stop.clone());
    let started = tokio::select! {
        started = start(args, &mut parts) => started,
        // A signal, or a part that failed, while starting.
        () = stop.cancelled() => Ok(()),
    };
    if started.is_ok() {
        stop.cancelled().await;
    }
    let stopped = parts.stop().await;
    started?;
    stopped?;
    tracing::info!("outpost-local stopped");
    Ok(())
}

/// Brings up the cluster, Ceph (if any), the management service and the agent, makes sure
/// datacenter `local` exists with the agent enrolled, waits until it is connected and
/// prints where everything is.
async fn start(args: &Args, parts: &mut Parts) -> anyhow::Result<()> {
    let layout = Layout::create(&args.data_dir)?;
    let [api, gateway, metrics, kube, _] = args.ports();

    // The cluster first: the agent reads its capacity as soon as it starts.
    let sim = Sim::start(SimConfig::timed(CLUSTER_STEP).with_state_path(&layout.cluster_state))
        .with_context(|| {
            format!(
                "opening the cluster state {}",
                layout.cluster_state.display()
            )
        })?;
    let listener = tokio::net::TcpListener::bind(kube.1)
        .await
        .map_err(|e| bind_error(kube, "simulated Kubernetes API", e))?;
    let kube_url = format!("http://{}", listener.local_addr()?);
    write_atomically(&layout.kubeconfig, kubeconfig(&kube_url).as_bytes(), false)
        .with_context(|| format!("writing {}", layout.kubeconfig.display()))?;
    tracing::info!(url = %kube_url, state = %layout.cluster_state.display(), "simulated Kubernetes listening");
    parts.spawn("simulated Kubernetes", |stop| {
        serve_until(sim, listener, stop.cancelled_owned(), CLUSTER_DRAIN)
    });

    // Ceph starts next and comes up while the management service does.
    let object_storage = ceph::plan(args.ceph.clone(), args.no_ceph, ceph::missing).begin(
        &layout.ceph,
        args.ceph_port,
        parts,
    )?;

    let mut config = Config {
        data_dir: layout.root.clone(),
        ..Config::default()
    };
    config.api.listen = api.1;
    config.gateway.listen = gateway.1;
    config.metrics.listen = metrics.1;
    let instance = Instance::start(config)
        .await
        .map_err(|e| name_the_flag(e, &args.ports()))?;
    let bootstrap_token = instance.bootstrap_token.clone();
    let endpoints = instance.ready_info()?;
    let field = |key: &str| endpoints[key].as_str().unwrap_or_default().to_owned();
    let (api_addr, gateway_addr) = (field("api"), field("gateway"));
    parts.spawn("management service", |stop| {
        instance.serve(async move { stop.cancelled().await })
    });

    let token_file = layout.root.join(bootstrap::ADMIN_TOKEN_FILE);
    let admin = Admin::connect(&api_addr, &token_file)?;
    let state = LocalState::open(&layout.agent).await?;
    admin.ensure_enrolled(&state, &gateway_addr).await?;
    let (ceph, object_storage) = object_storage.ready().await?;
    match &object_storage {
        Offer::Without(absent) => {
            tracing::info!(reason = ?absent, "no object storage: buckets are refused")
        }
        offer => tracing::info!(endpoint = offer.endpoint(), "object storage: Ceph"),
    }
    let since = SystemTime::now();
    let options = runtime::Options {
        kubeconfig: Some(layout.kubeconfig.clone()),
        ceph,
        ..Default::default()
    };
    parts.spawn("agent", |stop| runtime::run(state, options, |_| {}, stop));
    let datacenter = admin
        .wait_connected(since, READY_TIMEOUT)
        .await
        .with_context(|| {
            format!(
                "datacenter `local` is not up (to enroll its agent afresh: stop, remove {}, start again)",
                layout.agent.display()
            )
        })?;

    let ready = banner::Ready {
        data_dir: &layout.root,
        api: &api_addr,
        gateway: &gateway_addr,
        metrics: &field("metrics"),
        kube_url: &kube_url,
        kubeconfig: &layout.kubeconfig,
        token_file: &token_file,
        bootstrap_token: bootstrap_token.as_deref(),
        datacenter: &datacenter,
        object_storage: &object_storage,
    };
    banner::print(&ready)?;
    if let Some(path) = &args.ready_file {
        write_atomically(path, ready.json().to_string().as_bytes(), false)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(api = %api_addr, datacenter = %datacenter.name, "outpost-local ready");
    Ok(())
}

/// A taken port, named with the flag that moves it.
fn port_in_use(flag: &str, port: u16, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "port {port} for the {what} is in use (another Outpost running?); choose another with {flag} (0 picks a free one)"
    )
}

fn bind_error((flag, addr): (&str, SocketAddr), what: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        return port_in_use(flag, addr.port(), what);
    }
    anyhow::Error::new(e).context(format!("binding the {what} listener on {addr}"))
}

/// The management service's bind failure, naming our flag when its port is taken.
fn name_the_flag(e: anyhow::Error, ports: &[(&'static str, SocketAddr)]) -> anyhow::Error {
    let taken = e
        .chain()
        .find_map(|c| c.downcast_ref::<BindError>())
        .filter(|b| b.source.kind() == std::io::ErrorKind::AddrInUse)
        .and_then(|b| {
            let (flag, _) = ports.iter().find(|(_, addr)| *addr == b.addr)?;
            Some(port_in_use(flag, b.addr.port(), b.what))
        });
    taken.unwrap_or(e)
}
