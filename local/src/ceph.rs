//! Object storage for datacenter `local`: the Ceph named with the agent's flags, else a
//! single-node Ceph that outpost-local runs itself under the data directory when Ceph's
//! packages are installed, else none, and the datacenter says so (buckets are refused).
//!
//! The Ceph of its own is `scripts/ceph run`, built into the binary: one recipe for the
//! tests' throwaway Ceph and this lasting one. Its OSD is bluestore in a sparse file, so
//! buckets and their objects survive a restart like the rest of the data directory.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use outpost_agent::{
    drivers::ceph::{CephConfig, SecretKey},
    runtime::CephArgs,
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::oneshot,
};
use tokio_util::sync::CancellationToken;

use crate::parts::Parts;

/// The recipe, run with bash.
const SCRIPT: &str = include_str!("../../scripts/ceph");

/// How long the script gets to stop its daemons (it needs ~2 s; its own graces add up to 25).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The Debian packages that give the datacenter object storage.
pub const PACKAGES: &str = "ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime";

/// Where datacenter `local`'s object storage comes from.
#[derive(Debug)]
pub enum Plan {
    /// The Ceph named with `--rgw-endpoint` and its companions.
    Given(CephConfig),
    /// A Ceph of our own, under the data directory.
    Own,
    /// None.
    Without(Absent),
}

/// Why there is no object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Absent {
    /// `--no-ceph`.
    Disabled,
    /// These commands, which running a Ceph needs, are not installed.
    NotInstalled(Vec<String>),
}

/// Decides where object storage comes from: flags win, then `--no-ceph`, then whether Ceph
/// is installed (`missing` lists the commands that are not, and is only asked when needed).
pub fn plan(args: CephArgs, no_ceph: bool, missing: impl FnOnce() -> Vec<String>) -> Plan {
    if let Some(config) = args.into_config() {
        return Plan::Given(config);
    }
    if no_ceph {
        return Plan::Without(Absent::Disabled);
    }
    match missing() {
        missing if missing.is_empty() => Plan::Own,
        missing => Plan::Without(Absent::NotInstalled(missing)),
    }
}

/// The commands the script needs that are not on `PATH`; bash itself when it cannot run.
/// Blocking, and quick: it runs once, before anything else starts.
pub fn missing() -> Vec<String> {
    let out = script(&["missing"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        _ => vec!["bash".to_owned()],
    }
}

/// What the datacenter's object storage is, for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The Ceph named with the flags, at its RADOS Gateway.
    Given {
        endpoint: String,
    },
    /// Our own Ceph, at its RADOS Gateway, with its data in `dir`.
    Own {
        endpoint: String,
        dir: PathBuf,
    },
    Without(Absent),
}

impl Offer {
    /// The RADOS Gateway, when there is one.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Self::Given { endpoint } | Self::Own { endpoint, .. } => Some(endpoint),
            Self::Without(_) => None,
        }
    }
}

impl Plan {
    /// Carries the plan out: for [`Plan::Own`], starts the Ceph in `dir` (creating it at
    /// the first start) with its RADOS Gateway on `port` (0: a free one), as a part of
    /// `parts`. [`Pending::ready`] waits for it, so other parts can start meanwhile.
    pub fn begin(self, dir: &Path, port: u16, parts: &mut Parts) -> anyhow::Result<Pending> {
        let (config, offer) = match self {
            Self::Given(config) => {
                let endpoint = config.rgw_endpoint.to_string();
                (Some(config), Offer::Given { endpoint })
            }
            Self::Without(absent) => (None, Offer::Without(absent)),
            Self::Own => return start(dir, port, parts),
        };
        Ok(Pending::Known(config, offer))
    }
}

/// Object storage on its way.
pub enum Pending {
    Known(Option<CephConfig>, Offer),
    Starting {
        started: oneshot::Receiver<CephConfig>,
        dir: PathBuf,
    },
}

impl Pending {
    /// The agent's settings (`None`: no object storage) and what to tell the operator, once
    /// our own Ceph's RADOS Gateway answers and it reports capacity.
    pub async fn ready(self) -> anyhow::Result<(Option<CephConfig>, Offer)> {
        let (started, dir) = match self {
            Self::Known(config, offer) => return Ok((config, offer)),
            Self::Starting { started, dir } => (started, dir),
        };
        let config = started.await.map_err(|_| {
            anyhow::anyhow!(
                "the local Ceph did not start: its `ceph:` lines above say why, and the daemons' logs are in {} \
                 (a taken port: choose another with --ceph-port; to go without: --no-ceph)",
                dir.join("log").display()
            )
        })?;
        let endpoint = config.rgw_endpoint.to_string();
        Ok((Some(config), Offer::Own { endpoint, dir }))
    }
}

fn start(dir: &Path, port: u16, parts: &mut Parts) -> anyhow::Result<Pending> {
    let child = Command::from(script(&[
        "run",
        &dir.display().to_string(),
        &port.to_string(),
    ]))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Its own group: Ctrl-C in a terminal reaches only us, and we stop Ceph after the
    // agent that uses it.
    .process_group(0)
    .kill_on_drop(true)
    .spawn()
    .context("running bash for Ceph")?;
    let (ready, started) = oneshot::channel();
    parts.spawn("Ceph", |stop| run(child, ready, stop));
    Ok(Pending::Starting {
        started,
        dir: dir.to_owned(),
    })
}

/// `scripts/ceph` with `args`, run by bash.
fn script(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command.arg("-c").arg(SCRIPT).arg("ceph").args(args);
    command
}

/// Reads the script's `export` lines into a config for `ready`, then runs until `stop` or
/// until the script ends (a daemon died), and stops it with SIGTERM.
async fn run(
    mut child: Child,
    ready: oneshot::Sender<CephConfig>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let stderr = child.stderr.take().context("the script's stderr")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // Its own lines; the rest is daemon logs it tails when a start fails.
            if line.starts_with("ceph: ") {
                tracing::info!("{line}");
            } else {
                tracing::debug!("{line}");
            }
        }
    });
    let stdout = child.stdout.take().context("the script's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut vars = BTreeMap::new();
    let exited = loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => {
                    if let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                        vars.insert(key.to_owned(), value.to_owned());
                    }
                    if let Some(config) = config(&vars) {
                        let _ = ready.send(config);
                        break None;
                    }
                }
                None => break Some(child.wait().await?),
            },
            () = stop.cancelled() => return terminate(child).await,
        }
    };
    let status = match exited {
        Some(status) => status,
        None => tokio::select! {
            status = child.wait() => status?,
            () = stop.cancelled() => return terminate(child).await,
        },
    };
    anyhow::bail!("Ceph ended ({status})")
}

/// The agent's settings from the script's `export` lines, once all are there.
fn config(vars: &BTreeMap<String, String>) -> Option<CephConfig> {
    let var = |name: &str| vars.get(&format!("OUTPOST_TEST_{name}")).cloned();
    Some(CephConfig {
        rgw_endpoint: var("RGW_ENDPOINT")?.parse().ok()?,
        admin_access_key: var("RGW_ACCESS_KEY")?,
        admin_secret_key: SecretKey::new(var("RGW_SECRET_KEY")?),
        ceph_conf: Some(var("CEPH_CONF")?.into()),
    })
}

/// Asks the script to stop its daemons, keeping their data; kills the whole group if it
/// takes too long (bluestore recovers from that as from a power cut).
async fn terminate(mut child: Child) -> anyhow::Result<()> {
    let Some(pid) = child.id() else {
        return Ok(());
    };
    signal("-TERM", &pid.to_string()).await?;
    if let Ok(status) = tokio::time::timeout(STOP_GRACE, child.wait()).await {
        let status = status?;
        anyhow::ensure!(status.success(), "stopping Ceph failed ({status})");
        return Ok(());
    }
    signal("-KILL", &format!("-{pid}")).await?;
    child.wait().await?;
    anyhow::bail!(
        "Ceph did not stop within {}s; killed it",
        STOP_GRACE.as_secs()
    )
}

/// Sends a signal with kill(1): the standard library can only send SIGKILL, and a group
/// needs a negative pid.
async fn signal(signal: &str, target: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, "--", target])
        .status()
        .await
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill {signal} {target} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given() -> CephArgs {
        CephArgs {
            rgw_endpoint: Some("http://127.0.0.1:7480".parse().unwrap()),
            rgw_access_key: Some("AK".into()),
            rgw_secret_key: Some("secret".into()),
            ceph_conf: None,
        }
    }

    #[test]
    fn flags_win_then_no_ceph_then_what_is_installed() {
        let unasked = || panic!("asked what is installed");
        assert!(
            matches!(plan(given(), false, unasked), Plan::Given(c) if c.admin_access_key == "AK")
        );
        assert!(matches!(
            plan(CephArgs::default(), true, unasked),
            Plan::Without(Absent::Disabled)
        ));
        assert!(matches!(
            plan(CephArgs::default(), false, Vec::new),
            Plan::Own
        ));
        assert!(matches!(
            plan(CephArgs::default(), false, || vec!["radosgw".into()]),
            Plan::Without(Absent::NotInstalled(m)) if m == ["radosgw"]
        ));
    }

    #[test]
    fn the_config_needs_every_export_line() {
        let mut vars: BTreeMap<String, String> = [
            ("OUTPOST_TEST_CEPH_DIR", "/d/ceph"),
            ("OUTPOST_TEST_CEPH_CONF", "/d/ceph/ceph.conf"),
            ("OUTPOST_TEST_RGW_ENDPOINT", "http://127.0.0.1:7480"),
            ("OUTPOST_TEST_RGW_ACCESS_KEY", "AK"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert!(config(&vars).is_none());
        vars.insert("OUTPOST_TEST_RGW_SECRET_KEY".into(), "secret".into());
        let config = config(&vars).expect("complete");
        assert_eq!(config.rgw_endpoint, "http://127.0.0.1:7480/");
        assert_eq!(config.admin_secret_key.expose(), "secret");
        assert_eq!(
            config.ceph_conf.as_deref(),
            Some(Path::new("/d/ceph/ceph.conf"))
        );
    }

    /// The script itself answers what is missing, so this binary keeps no list of its own.
    #[test]
    fn the_script_lists_what_is_missing() {
        let missing = missing();
        assert!(!missing.contains(&"bash".to_owned()), "{missing:?}");
        let on_path = |cmd: &str| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|d| d.join(cmd).is_file())
        };
        for cmd in ["ceph-mon", "radosgw", "ceph"] {
            assert_eq!(
                missing.contains(&cmd.to_owned()),
                !on_path(cmd),
                "{cmd}: {missing:?}"
            );
        }
    }
}
