//! The running agent: the link, the reconcile loop and capacity measurement wired together
//! for one enrolled state directory. Shared by the `outpost-agent` binary and the local
//! installation, which differ only in how they enroll and when they stop.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    drivers::{
        ceph::CephConfig,
        kube::{KubeCluster, build::BuildSettings, logs::PodLogs},
    },
    link,
    reconcile::{self, Rollout},
    state::{Identity, LocalState},
};

/// How to reach the cluster and how to judge rollouts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Kubeconfig of the datacenter's cluster; `None` means the in-cluster or default one.
    pub kubeconfig: Option<PathBuf>,
    /// Rollout deadlines.
    pub rollout: Rollout,
    /// Where builds push and what builds them.
    pub builds: BuildSettings,
    /// The datacenter's Ceph; `None` means it has no object storage.
    pub ceph: Option<CephConfig>,
}

/// How long tasks get to finish after shutdown is requested.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often cluster capacity is measured again.
const CAPACITY_INTERVAL: Duration = Duration::from_secs(30);

/// Runs the enrolled agent in `state` until `shutdown`, calling `started` once it is linked
/// up (the link itself connects and reconnects in the background).
pub async fn run(
    state: LocalState,
    options: Options,
    started: impl FnOnce(&Identity),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = state
        .identity()?
        .context("not enrolled: pass --management, --token and --ca-fingerprint")?;
    tracing::info!(version = crate::VERSION, dc = %identity.datacenter, management = %identity.management, "outpost-agent starting");
    let kube_config = match &options.kubeconfig {
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
    let client = kube::Client::try_from(kube_config)?;
    let cluster = KubeCluster::new(client.clone(), options.rollout, options.builds);

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
        logs: PodLogs::new(client),
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
                _ = tokio::time::sleep(CAPACITY_INTERVAL) => { capacity_tx.send_replace(cluster.capacity().await); }
            }
        }
    });
    started(&identity);
    shutdown.cancelled().await;
    tracing::info!("shutting down");
    if tokio::time::timeout(STOP_GRACE, async {
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
