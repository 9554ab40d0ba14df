//! The running agent: the link, the reconcile loop and capacity measurement wired together
//! for one enrolled state directory. Shared by the `outpost-agent` binary and the local
//! installation, which differ only in how they enroll and when they stop.

use outpost_domain::observed::Capacity;
use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use outpost_proto::agent::v1::ClusterReach;
use tokio_util::sync::CancellationToken;

use crate::{
    drivers::{
        ceph::{Ceph, CephConfig, SecretKey},
        kube::{
            KubeCluster,
            build::BuildSettings,
            images::{ImageSource, Mirror},
            logs::PodLogs,
        },
    },
    link,
    plan::Rollout,
    reconcile,
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
    /// Where images are pulled from.
    pub images: ImageSource,
    /// The datacenter's Ceph; `None` means it has no object storage.
    pub ceph: Option<CephConfig>,
    /// Storage class of managed services' volumes (Ceph RBD through CSI); `None` means the
    /// cluster's default.
    pub block_storage_class: Option<String>,
}

/// Which images Outpost asks the cluster for and where from, as flags (shared by the agent's
/// `run` and `images`, so the list names the builder image that runs).
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// The image that builds from source (Kaniko's executor or one taking its flags).
    #[arg(long, env = "OUTPOST_AGENT_BUILDER_IMAGE", default_value_t = BuildSettings::default().builder_image)]
    pub builder_image: String,
    /// A registry holding copies of the images, `host[:port][/path]`, for a site without
    /// internet: every image Outpost chooses (`outpost-agent images`) and services' Docker
    /// Hub images are pulled from it, under their own path (`redis:7` as
    /// `HOST/library/redis:7`). Unset: as written.
    #[arg(long, env = "OUTPOST_AGENT_IMAGE_REGISTRY")]
    pub image_registry: Option<Mirror>,
}

impl ImageArgs {
    /// Where images are pulled from.
    pub fn source(&self) -> ImageSource {
        ImageSource::new(self.image_registry.clone())
    }
}

/// The datacenter's Ceph, as flags (shared by the agent and `outpost-local`); without
/// `--rgw-endpoint` the datacenter has no object storage.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CephArgs {
    /// The RADOS Gateway, `http(s)://host:port`.
    #[arg(long, env = "OUTPOST_AGENT_RGW_ENDPOINT", requires_all = ["rgw_access_key", "rgw_secret_key"])]
    pub rgw_endpoint: Option<http::Uri>,
    /// Access key of an RGW user with the `users=*;buckets=*` caps.
    #[arg(
        long,
        env = "OUTPOST_AGENT_RGW_ACCESS_KEY",
        requires = "rgw_endpoint",
        allow_hyphen_values = true
    )]
    pub rgw_access_key: Option<String>,
    /// Its secret key (prefer the environment variable: flags show in `ps`). Random keys may
    /// start with `-`, so the value is taken as it is.
    #[arg(
        long,
        env = "OUTPOST_AGENT_RGW_SECRET_KEY",
        hide_env_values = true,
        requires = "rgw_endpoint",
        allow_hyphen_values = true
    )]
    pub rgw_secret_key: Option<String>,
    /// `ceph.conf` for `ceph df` (capacity); unset means the `ceph` CLI's default.
    #[arg(long, env = "OUTPOST_AGENT_CEPH_CONF", requires = "rgw_endpoint")]
    pub ceph_conf: Option<PathBuf>,
}

impl CephArgs {
    /// The Ceph settings, when an endpoint was given.
    pub fn into_config(self) -> Option<CephConfig> {
        Some(CephConfig {
            rgw_endpoint: self.rgw_endpoint?,
            admin_access_key: self.rgw_access_key?,
            admin_secret_key: SecretKey::new(self.rgw_secret_key?),
            ceph_conf: self.ceph_conf,
        })
    }
}

/// How long tasks get to finish after shutdown is requested.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often cluster capacity is measured again.
const CAPACITY_INTERVAL: Duration = Duration::from_secs(30);

/// How soon a Ceph capacity that could not be read is tried again (a manager that just
/// started has no statistics for a few seconds).
const CAPACITY_RETRY: Duration = Duration::from_secs(2);

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
    tracing::info!(version = crate::VERSION, dc = %identity.datacenter, management = %identity.management.join(","), "outpost-agent starting");
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
    let cluster = KubeCluster::new(
        client.clone(),
        options.rollout,
        options.builds,
        options.images,
        options.block_storage_class,
    );
    let ceph = options
        .ceph
        .map(Ceph::new)
        .transpose()
        .context("the Ceph settings")?;

    let (desired, desired_changed) =
        tokio::sync::watch::channel((state.stored_revision().await?, String::new()));
    let (capacity_tx, capacity) =
        tokio::sync::watch::channel(measure(&cluster, ceph.as_ref()).await);
    let (connected, _) = tokio::sync::watch::channel(false);
    let (cluster_reach, reach) = tokio::sync::watch::channel(ClusterReach::default());
    let outbox = Arc::new(tokio::sync::Notify::new());
    let handles = link::stream::LinkHandles {
        desired,
        outbox: outbox.clone(),
        capacity,
        cluster: reach,
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
        ceph.clone(),
        desired_changed,
        outbox,
        cluster_reach,
        shutdown.clone(),
    ));
    let measuring = shutdown.clone();
    tasks.spawn(async move {
        loop {
            let unknown =
                capacity_tx.borrow().object_storage && capacity_tx.borrow().storage_bytes == 0;
            let next = if unknown {
                CAPACITY_RETRY
            } else {
                CAPACITY_INTERVAL
            };
            tokio::select! {
                _ = measuring.cancelled() => return,
                _ = tokio::time::sleep(next) => {
                    let measured = measure(&cluster, ceph.as_ref()).await;
                    capacity_tx.send_if_modified(|c| std::mem::replace(c, measured) != measured);
                }
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

/// The cluster's capacity with its Ceph's, if it has one. A Ceph that cannot be read now
/// (its manager has no statistics yet, say) counts as unknown (0 bytes), never as failed:
/// the next measurement tries again.
async fn measure(cluster: &KubeCluster, ceph: Option<&Ceph>) -> Capacity {
    let mut capacity = cluster.capacity().await;
    if let Some(ceph) = ceph {
        capacity.object_storage = true;
        match ceph.capacity().await {
            Ok(c) => {
                capacity.storage_bytes = i64::try_from(c.total_bytes).unwrap_or(i64::MAX);
                capacity.storage_used_bytes = i64::try_from(c.used_bytes).unwrap_or(i64::MAX);
            }
            Err(e) => {
                tracing::warn!(error = %outpost_process::ErrorChain(&e), "Ceph capacity unknown for now")
            }
        }
    }
    capacity
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        ceph: CephArgs,
    }

    #[test]
    fn ceph_keys_may_start_with_a_hyphen() {
        let flags = Flags::try_parse_from([
            "outpost-agent",
            "--rgw-endpoint",
            "http://127.0.0.1:7480",
            "--rgw-access-key",
            "-AK",
            "--rgw-secret-key",
            "-Jq1_secret",
        ])
        .expect("random keys are taken as they are");
        let config = flags.ceph.into_config().expect("a Ceph");
        assert_eq!(config.admin_access_key, "-AK");
        assert_eq!(config.admin_secret_key.expose(), "-Jq1_secret");
    }
}
