//! Outpost binaries as real processes: where cargo put them, started in a directory of
//! their own with their output in files there, waited for through their ready file, and
//! stopped with their logs checked.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// Where cargo put this workspace's binaries: next to the test executable's `deps/`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build --bins)",
        path.display()
    );
    path
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return Ok(());
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the one place that polls, bounded by the timeout"
        )]
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// Warnings no test fails on: sqlx's note that a statement took over a second says how
/// loaded the machine is (CI runs every test at once on two cores), not how Outpost
/// behaves; the benchmarks measure speed.
const ALLOWED_EVERYWHERE: [&str; 1] = ["slow statement: execution time exceeded alert threshold"];

/// A running Outpost process in its own working directory, with its output in files there.
pub struct Process {
    child: Option<Child>,
    name: &'static str,
    /// Its working directory (data, logs, ready file).
    pub dir: tempfile::TempDir,
    /// What it wrote to its ready file.
    pub ready: serde_json::Value,
}

impl Process {
    /// Starts binary `name` in `dir` with `args` and `env`, naming its ready file in
    /// `OUTPOST_READY_FILE` (every Outpost binary reads it as its `--ready-file`), and waits
    /// until the file appears.
    pub fn start(
        name: &'static str,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_program(name, &bin(name), dir, args, env)
    }

    /// As [`Process::start`], running `program` (an installed binary, or a script that
    /// runs one) under the name `name`.
    pub fn start_program(
        name: &'static str,
        program: &Path,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let ready = dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("stdout.log"))?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("stderr.log"))?;
        let mut cmd = Command::new(program);
        cmd.current_dir(dir.path())
            .args(args)
            .env("OUTPOST_READY_FILE", &ready)
            .stdout(stdout)
            .stderr(stderr)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let started = wait_for(
            &format!("{name}'s ready file"),
            Duration::from_secs(60),
            || ready.is_file() || matches!(child.try_wait(), Ok(Some(_))),
        );
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{name} exited with {status}: {}",
                read(&dir.path().join("stderr.log"))
            );
        }
        started?;
        let info = serde_json::from_str(&std::fs::read_to_string(&ready)?)?;
        Ok(Self {
            child: Some(child),
            name,
            dir,
            ready: info,
        })
    }

    /// A string field of the ready file.
    pub fn ready_field(&self, key: &str) -> String {
        self.ready[key].as_str().unwrap_or_default().to_owned()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        read(&self.dir.path().join("stderr.log"))
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills it at once (SIGKILL), as a crash would, and hands back its directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Sends SIGTERM, waits for a clean exit, checks the log for unexpected WARN or ERROR
    /// lines, and hands back the directory (to restart on the same data).
    pub fn stop(self, allowed: &[&str]) -> anyhow::Result<tempfile::TempDir> {
        self.stop_with("TERM", allowed)
    }

    /// As [`Process::stop`], with `signal` (`TERM`, `INT`, …) instead of SIGTERM.
    pub fn stop_with(
        mut self,
        signal: &str,
        allowed: &[&str],
    ) -> anyhow::Result<tempfile::TempDir> {
        let mut child = self.child.take().context("already stopped")?;
        let pid = child.id().to_string();
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()?;
        let mut status = None;
        wait_for(
            &format!("{} to exit after SIG{signal}", self.name),
            Duration::from_secs(20),
            || {
                status = child.try_wait().ok().flatten();
                status.is_some()
            },
        )?;
        let status = status.context("exit status")?;
        if !status.success() {
            bail!("{} exited with {status} after SIG{signal}", self.name);
        }
        let log = self.log();
        let unexpected: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .filter(|l| {
                !allowed
                    .iter()
                    .chain(&ALLOWED_EVERYWHERE)
                    .any(|a| l.contains(a))
            })
            .collect();
        if !unexpected.is_empty() {
            bail!(
                "unexpected WARN/ERROR lines from {}:\n{}",
                self.name,
                unexpected.join("\n")
            );
        }
        Ok(std::mem::replace(&mut self.dir, tempfile::tempdir()?))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // Keep the directory of a failed test for inspection.
            if std::thread::panicking() {
                let kept =
                    std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")).keep();
                eprintln!("kept {}'s directory: {}", self.name, kept.display());
            }
        }
    }
}

pub fn cluster() -> (Process, std::path::PathBuf) {
    let sim = Process::start(
        "outpost-kube-sim",
        tempfile::tempdir().expect("dir"),
        &[
            "--step-ms",
            "50",
            "--kubeconfig-out",
            "kubeconfig",
            "--state",
            "cluster.json",
        ],
        &[],
    )
    .expect("kube-sim starts");
    let kubeconfig = sim.dir.path().join("kubeconfig");
    (sim, kubeconfig)
}

/// The agent's log filter in tests: its own decisions at debug.
pub const AGENT_LOG: (&str, &str) = ("OUTPOST_AGENT_LOG", "info,outpost_agent=debug");

/// An agent for the cluster behind `kubeconfig`, in `dir` (a fresh one, or a killed agent's
/// to restart it); with `enrollment` (`gateways`, comma-separated; `token`; `fingerprint`) it
/// enrolls first.
pub fn agent(
    dir: tempfile::TempDir,
    kubeconfig: &Path,
    enrollment: Option<(&str, &str, &str)>,
) -> Process {
    agent_with(dir, kubeconfig, enrollment, &[], &[AGENT_LOG])
}

/// [`agent`] with further `run` flags and the environment `env` (an installation's own
/// settings, say): the one way the tests start an agent.
pub fn agent_with(
    dir: tempfile::TempDir,
    kubeconfig: &Path,
    enrollment: Option<(&str, &str, &str)>,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Process {
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let mut args = vec!["--state-dir", "state", "run", "--kubeconfig", kubeconfig];
    args.extend_from_slice(flags);
    if let Some((gateway, token, fingerprint)) = enrollment {
        args.extend([
            "--management",
            gateway,
            "--token",
            token,
            "--ca-fingerprint",
            fingerprint,
        ]);
    }
    Process::start("outpost-agent", dir, &args, env).expect("agent starts")
}

/// The `OUTPOST_AGENT_*` names the agent reads, from its `--help` (`[env: NAME=…]`).
pub fn agent_variables() -> Vec<String> {
    let mut names = Vec::new();
    for args in [&["--help"][..], &["run", "--help"], &["enroll", "--help"]] {
        let out = Command::new(bin("outpost-agent"))
            .args(args)
            .output()
            .expect("outpost-agent runs");
        assert!(out.status.success(), "{args:?}: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        for part in help.split("[env: ").skip(1) {
            let end = part.find(['=', ']']).unwrap_or(part.len());
            names.push(part[..end].to_owned());
        }
    }
    names
}

/// The `NAME=value` lines of an agent's environment file (comments and blank lines left
/// out), each a name the agent reads: it ignores names it does not know, so a misspelled
/// one must fail here.
pub fn agent_settings(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).expect("the environment file");
    let settings: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let known = agent_variables();
    for (name, _) in &settings {
        assert!(
            known.contains(name),
            "{}: the agent has no setting {name}",
            file.display()
        );
    }
    assert!(!settings.is_empty(), "{} sets nothing", file.display());
    settings
}

/// A file's text; empty when it cannot be read.
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
