//! The simulator handle: owns the store, the clock, persistence and (in timed mode) the
//! stepping task, and hands out the HTTP router and in-process `kube::Client`s.
//!
//! Stepping follows omicron's simulated sled-agent: in [`Stepping::Explicit`] nothing moves
//! and the clock stands still until the caller steps or advances it, so tests are
//! deterministic; in [`Stepping::Timed`] a background task steps on an interval against the
//! system clock (the local installation).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio_util::task::TaskTracker;

use crate::clock::SimClock;
use crate::resource::Resource;
use crate::shared::{Access, Shared, StepReport};
use crate::store::persist::{self, PersistError};
use crate::store::write::{Part, WriteOpts};
use crate::store::{Key, Store};

/// How the simulated cluster moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stepping {
    /// Nothing moves until [`Sim::step`] or [`Sim::settle`] is called, and the clock stands
    /// still until [`Sim::advance`] moves it. For tests.
    Explicit,
    /// A background task steps every `interval`, and the clock follows the system clock.
    Timed {
        /// Time between steps.
        interval: Duration,
    },
}

/// Simulator configuration.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where the cluster's objects persist across restarts; `None`: in memory only.
    pub state_path: Option<PathBuf>,
    /// Explicit or timed stepping.
    pub stepping: Stepping,
}

impl SimConfig {
    /// In memory, explicit stepping: the configuration for deterministic tests.
    pub fn explicit() -> SimConfig {
        SimConfig {
            state_path: None,
            stepping: Stepping::Explicit,
        }
    }

    /// In memory, stepping every `interval` against the system clock.
    pub fn timed(interval: Duration) -> SimConfig {
        SimConfig {
            state_path: None,
            stepping: Stepping::Timed { interval },
        }
    }

    /// Persists objects to `path` (read at start, rewritten atomically after every change).
    pub fn with_state_path(mut self, path: impl Into<PathBuf>) -> SimConfig {
        self.state_path = Some(path.into());
        self
    }
}

/// The simulator failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Loading or saving the state file failed.
    #[error("persisting cluster state")]
    Persist(#[from] PersistError),
    /// [`Sim::settle`] gave up: the cluster kept changing.
    #[error("the simulated cluster did not settle within {steps} steps")]
    NotSettled {
        /// Steps taken.
        steps: usize,
    },
}

/// The most steps [`Sim::settle`] takes before reporting [`SimError::NotSettled`].
const SETTLE_LIMIT: usize = 1000;

/// Namespaces every cluster starts with.
const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

fn fresh_store(now: Timestamp) -> Store {
    let mut store = Store::with_objects(0, 0, Default::default());
    let opts = WriteOpts {
        now,
        dry_run: false,
    };
    for ns in INITIAL_NAMESPACES {
        let obj = serde_json::json!({ "metadata": { "name": ns } });
        if store.get(&Key::new(Resource::Namespace, "", ns)).is_none()
            && let Err(e) = store.object_create(Resource::Namespace, "", obj, Part::All, opts)
        {
            tracing::error!(error = %outpost_process::ErrorChain(&e), "creating an initial namespace failed");
        }
    }
    // One node, so that what reads cluster capacity (the agent) sees a cluster's worth.
    let node = serde_json::json!({
        "metadata": { "name": SIM_NODE, "labels": { "kubernetes.io/hostname": SIM_NODE } },
        "status": {
            "capacity": { "cpu": "8", "memory": "32Gi", "pods": "110" },
            "allocatable": { "cpu": "8", "memory": "32Gi", "pods": "110" },
            "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady" }]
        }
    });
    if store.get(&Key::new(Resource::Node, "", SIM_NODE)).is_none()
        && let Err(e) = store.object_create(Resource::Node, "", node, Part::All, opts)
    {
        tracing::error!(error = %outpost_process::ErrorChain(&e), "creating the simulated node failed");
    }
    store
}

/// The simulated cluster's one node: 8 CPUs and 32 GiB allocatable.
pub const SIM_NODE: &str = "sim-node-1";

/// A simulated Kubernetes API server. Cheap to clone; clones share one cluster.
#[derive(Clone, Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    tasks: TaskTracker,
}

impl Sim {
    /// Loads the state file (if configured and present) or starts an empty cluster with the
    /// usual namespaces, and in timed mode spawns the stepping task (which then requires a
    /// Tokio runtime). Errors: the state file exists but cannot be read or decoded.
    pub fn start(config: SimConfig) -> Result<Sim, SimError> {
        let clock = match config.stepping {
            Stepping::Explicit => SimClock::frozen_at(Timestamp::now()),
            Stepping::Timed { .. } => SimClock::wall(),
        };
        let loaded = match &config.state_path {
            Some(path) => persist::load(path)?,
            None => None,
        };
        let restored = loaded.is_some();
        let store = loaded.unwrap_or_else(|| fresh_store(clock.now()));
        let shared = Arc::new(Shared::new(store, clock, config.state_path, restored));
        shared.persist()?;
        let tasks = TaskTracker::new();
        if let Stepping::Timed { interval } = config.stepping {
            tasks.spawn(step_periodically(shared.clone(), interval));
        }
        tasks.close();
        Ok(Sim { shared, tasks })
    }

    /// What every request served so far needed, as RBAC would check it; to test that a
    /// role grants what a client uses (the simulator itself enforces no RBAC).
    pub fn requests(&self) -> BTreeSet<Access> {
        self.shared.requests()
    }

    /// The Kubernetes HTTP API of this cluster, for `axum::serve` or an in-process client.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.shared.clone())
    }

    /// A `kube::Client` talking to this cluster in-process (no socket), with default
    /// namespace `default`. Must be called within a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Runs every controller once at the current simulated time. Each pod advances at most
    /// one lifecycle transition per step. Errors: persisting the result failed.
    pub fn step(&self) -> Result<StepReport, SimError> {
        Ok(self.shared.step()?)
    }

    /// Steps until a step changes nothing; returns the number of steps that changed
    /// something. Time does not pass: work that waits on the clock (back-off, progress
    /// deadlines, minReadySeconds) needs [`Sim::advance`]. Errors: still changing after
    /// 1000 steps, or persisting failed.
    pub fn settle(&self) -> Result<usize, SimError> {
        for steps in 0..SETTLE_LIMIT {
            if self.step()?.changes == 0 {
                return Ok(steps);
            }
        }
        Err(SimError::NotSettled {
            steps: SETTLE_LIMIT,
        })
    }

    /// Moves the simulated clock forward (in either stepping mode). Nothing else happens
    /// until the next step.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The current simulated time.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// The cluster-wide resourceVersion (the version of the latest change).
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    /// Completes when [`Sim::shutdown`] has been called; for a server's graceful shutdown.
    pub fn shutdown_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shared.cancel.clone().cancelled_owned()
    }

    /// Stops the stepping task, ends every watch and log stream, waits for the task and
    /// writes the final state. Idempotent.
    pub async fn shutdown(&self) -> Result<(), SimError> {
        self.shared.cancel.cancel();
        self.tasks.wait().await;
        self.shared.persist()?;
        Ok(())
    }
}

async fn step_periodically(shared: Arc<Shared>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = shared.step() {
            tracing::warn!(error = %outpost_process::ErrorChain(&e), "simulation step failed");
        }
    }
}
