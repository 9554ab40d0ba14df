//! The management side under test: the real `outpost-management` binary in a process of its
//! own (so its memory and CPU are its alone), on SQLite in a temp dir, on free loopback
//! ports, logging at its default level to a file there.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

use outpost_bench::usage::Usage;

/// How long the process may take to write its ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to drain after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// WARN and ERROR lines in the management log.
#[derive(Debug, Default)]
pub struct LogProblems {
    /// WARN lines.
    pub warnings: usize,
    /// ERROR lines.
    pub errors: usize,
    /// The first of either.
    pub first: Option<String>,
}

/// A running management process.
#[derive(Debug)]
pub struct Management {
    child: Child,
    pid: String,
    /// Its data directory, log and ready file; removed on drop.
    dir: tempfile::TempDir,
    /// The public API (plaintext gRPC).
    pub api: SocketAddr,
    /// The agent gateway (`host:port`, mutual TLS).
    pub gateway: String,
    /// SHA-256 fingerprint of the agent CA, which agents pin.
    pub ca_fingerprint: String,
    /// The bootstrap admin's token.
    pub admin_token: String,
}

impl Management {
    /// Starts `binary` and waits for its ready file. The child is killed if this value is
    /// dropped without [`Management::stop`].
    pub async fn start(binary: &Path) -> anyhow::Result<Self> {
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with cargo build --release -p outpost-management",
                binary.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("management.log"))?;
        let mut child = Command::new(binary)
            .arg("--ready-file")
            .arg(&ready)
            .env("OUTPOST_DATA_DIR", dir.path().join("data"))
            .env("OUTPOST_API__LISTEN", "127.0.0.1:0")
            .env("OUTPOST_GATEWAY__LISTEN", "127.0.0.1:0")
            .env("OUTPOST_METRICS__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let started = Instant::now();
        while !ready.is_file() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready:\n{}",
                    binary.display(),
                    std::fs::read_to_string(dir.path().join("management.log")).unwrap_or_default()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} wrote no ready file within {READY_TIMEOUT:?}",
                    binary.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ready)?)
            .context("reading the ready file")?;
        let field = |key: &str| {
            info[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("the ready file has no {key}"))
        };
        let token_file = PathBuf::from(field("admin_token_file")?);
        let admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading {}", token_file.display()))?
            .trim()
            .to_owned();
        let pid = child
            .id()
            .context("the management process has no pid")?
            .to_string();
        Ok(Self {
            api: field("api")?.parse().context("the ready file's api")?,
            gateway: field("gateway")?,
            ca_fingerprint: field("ca_fingerprint")?,
            admin_token,
            child,
            pid,
            dir,
        })
    }

    /// Its memory and CPU time now.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        Usage::of(&self.pid)
    }

    /// The last `lines` lines of its log, to show why something failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How many WARN and ERROR lines it logged so far, and the first of them.
    pub fn log_problems(&self) -> LogProblems {
        let log = self.log();
        let mut problems = LogProblems::default();
        for line in log.lines() {
            let warn = line.contains(" WARN ");
            let error = line.contains(" ERROR ");
            problems.warnings += usize::from(warn);
            problems.errors += usize::from(error);
            if (warn || error) && problems.first.is_none() {
                problems.first = Some(line.to_owned());
            }
        }
        problems
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("management.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for it to drain and exit; kills it if it takes too long.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self
            .pid
            .parse()
            .ok()
            .and_then(Pid::from_raw)
            .context("the management process's pid")?;
        kill_process(pid, Signal::TERM).context("sending SIGTERM")?;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("the management process exited with {status} after SIGTERM");
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the management process did not stop within {STOP_TIMEOUT:?}")
            }
        }
    }
}
