//! A management service, and a whole installation (management, simulated cluster and an
//! agent), started as real processes.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::{process::read, *};

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
        let process = Process::start("outpost-management", dir, args, &all)?;
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
        let enrollment =
            enroll.map(|(token, fingerprint)| (self.server.gateway.as_str(), token, fingerprint));
        self.agent = Some(agent_with(
            dir,
            &self.kubeconfig,
            enrollment,
            extra,
            &[crate::process::AGENT_LOG],
        ));
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
