//! `outpost-agent`: enroll once, then run: link to the management side and reconcile the
//! cluster until SIGINT/SIGTERM.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use outpost_agent::{
    drivers::kube::{build::BuildSettings, images},
    link,
    plan::Rollout,
    runtime::{self, ImageArgs},
    state::LocalState,
};
use outpost_domain::provider::Catalog;
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
    /// Runs the agent (enrolling first if a join token is given and it is not enrolled;
    /// `--management` alone points an enrolled agent at other gateway addresses).
    Run(Box<RunArgs>),
    /// Prints the Kubernetes manifests that run the agent inside its datacenter's cluster,
    /// for `kubectl apply -f -`: namespace, service account, exactly the rights the agent
    /// uses, the join token in a Secret, a volume for its state, and the agent itself.
    Install(InstallArgs),
    /// Exits 0 when the agent whose state is in --state-dir is alive: its reconcile loop
    /// turned within --max-age (for Kubernetes probes and service managers).
    Probe {
        /// How recently the loop must have turned.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        max_age: Duration,
    },
    /// Prints every image Outpost can ask the cluster to pull (the builder's and every
    /// provider's, for every version), one a line; with `--image-registry`, each followed
    /// by its name on the mirror. Services' own images are their owners' and not listed.
    Images(ImagesArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// The management gateways, `host:port`, comma-separated or repeated.
    #[arg(long, required = true, value_delimiter = ',', value_parser = gateway_address)]
    management: Vec<String>,
    /// The join token from `DatacenterService/CreateJoinToken`; it goes into a Secret.
    #[arg(long, env = "OUTPOST_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// The CA fingerprint printed with the join token.
    #[arg(long)]
    ca_fingerprint: String,
    /// The datacenter, for the objects' labels (the join token decides which one it is).
    #[arg(long, value_parser = dns_label)]
    datacenter: Option<String>,
    /// The namespace the agent runs in.
    #[arg(long, default_value = "outpost-system", value_parser = dns_label)]
    namespace: String,
    /// The agent's container image; unset, Outpost's own at this version
    /// (`outpost-agent images` lists it), from the --image-registry mirror if one is given.
    #[arg(long)]
    image: Option<String>,
    /// A registry holding copies of the images, `host[:port][/path]`, as for `run`.
    #[arg(long, env = "OUTPOST_AGENT_IMAGE_REGISTRY")]
    image_registry: Option<images::Mirror>,
    /// Storage class of the agent's state volume; unset means the cluster's default.
    #[arg(long)]
    storage_class: Option<String>,
}

/// A Kubernetes name: a DNS label.
fn dns_label(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a DNS label (lowercase letters, digits and `-`, at most 63)"
        ))
    }
}

#[derive(clap::Args)]
struct ImagesArgs {
    #[command(flatten)]
    images: ImageArgs,
    /// Provider definitions of your own (the files in the management service's
    /// `[providers] dir`), besides the built-in ones.
    providers: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    enrollment: Option<Enrollment>,
    /// Kubeconfig of the datacenter's cluster; unset means the in-cluster or default one.
    #[arg(long, env = "OUTPOST_AGENT_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// After starting, write `{"datacenter": …}` here.
    #[arg(long, env = "OUTPOST_READY_FILE")]
    ready_file: Option<PathBuf>,
    /// A new version whose pods run but never pass their health check for this long fails
    /// with "health check failed".
    #[arg(long, env = "OUTPOST_AGENT_HEALTH_GRACE", default_value = "60s", value_parser = humantime::parse_duration)]
    health_grace: Duration,
    /// A rollout that makes no progress for this long fails as timed out.
    #[arg(long, env = "OUTPOST_AGENT_PROGRESS_DEADLINE", default_value = "10m", value_parser = humantime::parse_duration)]
    progress_deadline: Duration,
    /// Registry that images built from source are pushed to (and pulled from).
    #[arg(long, env = "OUTPOST_AGENT_BUILD_REGISTRY", default_value_t = BuildSettings::default().registry)]
    build_registry: String,
    #[command(flatten)]
    images: ImageArgs,
    /// Storage class of managed services' volumes (Ceph RBD through its CSI driver); unset
    /// means the cluster's default.
    #[arg(long, env = "OUTPOST_AGENT_BLOCK_STORAGE_CLASS")]
    block_storage_class: Option<String>,
    #[command(flatten)]
    ceph: runtime::CephArgs,
}

#[derive(clap::Args, Clone)]
struct Enrollment {
    /// The management gateways, `host:port`, comma-separated or repeated: every instance of
    /// a federation on one database (or one name resolving to several). The link uses the
    /// first that answers and moves to the next when it fails.
    #[arg(long, env = "OUTPOST_AGENT_MANAGEMENT", value_delimiter = ',', value_parser = gateway_address)]
    management: Vec<String>,
    /// The join token from `DatacenterService/CreateJoinToken`.
    #[arg(long, env = "OUTPOST_AGENT_TOKEN", hide_env_values = true, requires_all = ["management", "ca_fingerprint"])]
    token: Option<String>,
    /// The CA fingerprint printed with the join token.
    #[arg(long, env = "OUTPOST_AGENT_CA_FINGERPRINT", requires = "token")]
    ca_fingerprint: Option<String>,
}

/// A gateway address: `host:port` with a port number.
fn gateway_address(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_owned())
        }
        _ => Err(format!("`{text}` is not host:port")),
    }
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
            return ExitCode::from(outpost_process::EXIT_USAGE);
        }
    };
    let code = match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %outpost_process::ErrorChain(e.as_ref()), "outpost-agent failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

async fn enroll(state: &LocalState, e: &Enrollment) -> anyhow::Result<()> {
    let (false, Some(token), Some(fingerprint)) =
        (e.management.is_empty(), &e.token, &e.ca_fingerprint)
    else {
        anyhow::bail!("enrolling needs --management, --token and --ca-fingerprint");
    };
    link::enroll::enroll(state, &e.management, token, fingerprint).await?;
    Ok(())
}

/// Writes the image list to stdout.
fn print_images(args: &ImagesArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let extra = args
        .providers
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok((path.display().to_string(), text))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let catalog = Catalog::with(&extra)?;
    let source = args.images.source();
    let mut out = std::io::stdout().lock();
    for image in images::listed(&catalog, &args.images.builder_image)? {
        match source.mirror() {
            Some(_) => writeln!(out, "{image} {}", source.outpost(&image))?,
            None => writeln!(out, "{image}")?,
        }
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let run = match args.command {
        Command::Install(i) => return install(i),
        Command::Probe { max_age } => return probe(&args.state_dir, max_age),
        Command::Images(images) => return print_images(&images),
        Command::Enroll(e) => {
            return enroll(&LocalState::open(&args.state_dir).await?, &e).await;
        }
        Command::Run(run) => *run,
    };
    let state = LocalState::open(&args.state_dir).await?;
    match state.identity()? {
        None => {
            let e = run
                .enrollment
                .context("not enrolled: pass --management, --token and --ca-fingerprint")?;
            enroll(&state, &e).await?;
        }
        // Enrolled: a join token given again is spent already, but the addresses are news.
        Some(identity) => {
            if let Some(e) = run.enrollment.filter(|e| !e.management.is_empty())
                && e.management != identity.management
            {
                state.save_management(&e.management)?;
                tracing::info!(management = %e.management.join(","), "management addresses updated");
            }
        }
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        outpost_process::stop_signal().await;
        on_signal.cancel();
    });
    let options = runtime::Options {
        kubeconfig: run.kubeconfig,
        rollout: Rollout {
            health_grace: run.health_grace,
            progress_deadline: run.progress_deadline,
        },
        builds: BuildSettings {
            registry: run.build_registry,
            builder_image: run.images.builder_image.clone(),
        },
        images: run.images.source(),
        ceph: run.ceph.into_config(),
        block_storage_class: run.block_storage_class,
    };
    let ready_file = run.ready_file;
    runtime::run(
        state,
        options,
        |identity| {
            if let Some(path) = ready_file {
                let ready = serde_json::json!({ "datacenter": identity.datacenter }).to_string();
                if let Err(e) = outpost_process::write_atomically(&path, ready.as_bytes(), false) {
                    tracing::warn!(error = %outpost_process::ErrorChain(&e), path = %path.display(), "cannot write the ready file");
                }
            }
        },
        shutdown,
    )
    .await
}

fn install(args: InstallArgs) -> anyhow::Result<()> {
    let manifests = outpost_agent::install::manifests(&outpost_agent::install::Install {
        management: args.management,
        token: args.token,
        ca_fingerprint: args.ca_fingerprint,
        datacenter: args.datacenter,
        namespace: args.namespace,
        image: args.image.unwrap_or_else(|| {
            images::ImageSource::new(args.image_registry).outpost(&images::agent_image())
        }),
        storage_class: args.storage_class,
    });
    // The manifests are the command's output, for `kubectl apply -f -`.
    std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        manifests.to_yaml()?.as_bytes(),
    )?;
    Ok(())
}

fn probe(state_dir: &std::path::Path, max_age: Duration) -> anyhow::Result<()> {
    let age = outpost_agent::state::alive_age(state_dir)
        .with_context(|| format!("no agent has run with state in {}", state_dir.display()))?;
    anyhow::ensure!(
        age <= max_age,
        "the agent's loop last turned {} ago (more than {})",
        humantime::format_duration(Duration::from_secs(age.as_secs())),
        humantime::format_duration(max_age)
    );
    Ok(())
}
