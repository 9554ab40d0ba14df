//! The simulated cluster, served on a loopback port from a thread and runtime of its own.
//!
//! A controller step runs synchronously while it holds the cluster, and with a hundred
//! workloads one step takes long. On the benchmark's runtime each step would block one of
//! its workers, and the management service and the agent would lose that worker for the
//! step's length; a real cluster's API server is a process of its own and takes nothing from
//! them but CPU. The thread gives the same separation without a second binary, and keeps the
//! handle that times a step.

use std::{
    path::{Path, PathBuf},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use outpost_kube_sim::{Sim, SimConfig, kubeconfig, serve_until};
use tokio_util::sync::CancellationToken;

/// How long the cluster gets to finish requests in flight when it stops.
const DRAIN: Duration = Duration::from_secs(1);
/// How long the thread may take to end after its requests drained.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Controller steps timed by [`Cluster::step_time`]; the median is reported.
const TIMED_STEPS: usize = 5;

/// A running simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    sim: Sim,
    stop: CancellationToken,
    thread: JoinHandle<anyhow::Result<()>>,
    /// Points at the cluster; in the directory given to [`Cluster::start`].
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts an empty in-memory cluster stepping every `step` and writes its kubeconfig
    /// into `dir`.
    pub async fn start(step: Duration, dir: &Path) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let kubeconfig_path = dir.join("kubeconfig");
        outpost_process::write_atomically(
            &kubeconfig_path,
            kubeconfig(&format!("http://{}", listener.local_addr()?)).as_bytes(),
            false,
        )
        .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
        let stop = CancellationToken::new();
        let (started, sim) = tokio::sync::oneshot::channel();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kube-sim".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    // The stepping task needs the runtime it is started on.
                    let sim = Sim::start(SimConfig::timed(step))
                        .context("starting the simulated cluster")?;
                    // Nobody to tell when the starter is gone: it fails by itself.
                    let _ = started.send(sim.clone());
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve_until(sim, listener, stopped.cancelled_owned(), DRAIN).await
                })
            })?;
        let Ok(sim) = sim.await else {
            let failure = thread
                .join()
                .map_err(|_| anyhow::anyhow!("the cluster thread panicked"))?;
            return Err(failure
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("the cluster ended at once")));
        };
        Ok(Self {
            sim,
            stop,
            thread,
            kubeconfig: kubeconfig_path,
        })
    }

    /// The median time of one controller step over everything in the cluster now: how long
    /// each timed step holds the cluster, whose API waits meanwhile. The extra steps change
    /// nothing a timed step would not.
    pub async fn step_time(&self) -> anyhow::Result<Duration> {
        let sim = self.sim.clone();
        let mut times = tokio::task::spawn_blocking(move || {
            (0..TIMED_STEPS)
                .map(|_| {
                    let started = Instant::now();
                    sim.step().map(|_| started.elapsed())
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .context("the timed steps panicked")?
        .context("stepping the simulated cluster")?;
        times.sort_unstable();
        Ok(times[TIMED_STEPS / 2])
    }

    /// Stops serving and stepping and waits for the thread.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let thread = self.thread;
        let joined = tokio::time::timeout(
            DRAIN + STOP_GRACE,
            tokio::task::spawn_blocking(move || thread.join()),
        )
        .await
        .context("the simulated cluster did not stop")?
        .context("waiting for the cluster thread")?;
        joined.map_err(|_| anyhow::anyhow!("the cluster thread panicked"))?
    }
}
