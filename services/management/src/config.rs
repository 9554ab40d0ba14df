//! The management service's configuration: a TOML file, overridden by environment variables
//! `OUTPOST_<SECTION>__<KEY>` (for example `OUTPOST_API__LISTEN=127.0.0.1:7070`), validated
//! before anything is bound. This is the only module that reads the environment.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use outpost_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Top-level sections, the only `OUTPOST_*` variables read as configuration; other
/// `OUTPOST_*` variables (used by tests and scripts) are not this binary's business.
const SECTIONS: [&str; 8] = [
    "data_dir",
    "api",
    "gateway",
    "ca",
    "providers",
    "store",
    "metrics",
    "telemetry",
];

/// Everything the management service can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded SQLite database, the bootstrap admin token and (unless
    /// `[ca] key_file` says otherwise) the sealing key. Default `./outpost-data`; created if
    /// missing.
    pub data_dir: PathBuf,
    /// The public gRPC API.
    pub api: ApiConfig,
    /// The mutual-TLS endpoint agents dial.
    pub gateway: GatewayConfig,
    /// The internal CA for agent certificates.
    pub ca: CaConfig,
    /// The managed-service catalog.
    pub providers: ProvidersConfig,
    /// The database.
    pub store: StoreConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
}

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address. Default `127.0.0.1:7070`; port 0 picks a free port (see `--ready-file`).
    pub listen: SocketAddr,
    /// Largest request or response message in bytes. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Deadline for calls whose client sets none. Default 30.
    pub default_deadline_secs: u64,
    /// Concurrent calls per client connection. Default 256.
    pub max_concurrent_requests_per_connection: usize,
    /// HTTP/2 keepalive ping interval. Default 30.
    pub keepalive_secs: u64,
    /// How long in-flight calls may finish after SIGTERM. Default 10.
    pub shutdown_grace_secs: u64,
    /// TLS for the API. Default none: plaintext, which only a loopback `listen` allows
    /// unless `insecure` is set.
    pub tls: Option<ApiTlsConfig>,
    /// Serve plaintext on a non-loopback address anyway (behind a TLS-terminating proxy,
    /// say); logged as a warning at every start. Default false.
    pub insecure: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            max_message_bytes: 4 * 1024 * 1024,
            default_deadline_secs: 30,
            max_concurrent_requests_per_connection: 256,
            keepalive_secs: 30,
            shutdown_grace_secs: 10,
            tls: None,
            insecure: false,
        }
    }
}

/// `[api.tls]`: the operator's certificate (`cert_file` and `key_file`), or one the internal
/// CA issues at every start for `hostnames` (clients then trust `<data_dir>/ca.crt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiTlsConfig {
    /// PEM certificate chain, leaf first. Default none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Default none.
    pub key_file: Option<PathBuf>,
    /// Names (DNS or IP) clients dial, for a certificate from the internal CA. Default none.
    pub hostnames: Vec<String>,
    /// PEM CA whose client certificates alone may connect (mutual TLS); callers still
    /// authenticate with their tokens. Default none: no client certificate asked.
    pub client_ca_file: Option<PathBuf>,
}

/// `[gateway]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Listen address for agents. Default `127.0.0.1:7443`.
    pub listen: SocketAddr,
    /// Names (DNS or IP) agents use to reach the gateway; they go into its certificate.
    /// Default `["localhost", "127.0.0.1"]`.
    pub hostnames: Vec<String>,
    /// Lifetime of agent certificates; agents renew at half of it. Default 43200 (12 h).
    pub certificate_ttl_secs: u64,
    /// A link whose agent is silent this long is closed as dead. Default 30.
    pub agent_silence_limit_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            certificate_ttl_secs: 12 * 3600,
            agent_silence_limit_secs: 30,
        }
    }
}

/// `[ca]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// File holding the key that seals the CA's private key and every tenant secret in the
    /// database; created (mode 0600) on first start. Every instance sharing a database needs
    /// the same file.
    /// Default `<data_dir>/ca.key`.
    pub key_file: Option<PathBuf>,
}

/// `[providers]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// Directory of extra provider definitions (`*.json`), added to the built-in
    /// postgresql, bucket and redis (one with a built-in's name replaces it). A bad file
    /// stops the start, naming the file. Default: none.
    pub dir: Option<PathBuf>,
}

/// Reads the `*.json` files of `dir` as (file name, text), sorted by name.
pub fn provider_files(dir: &std::path::Path) -> std::io::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push((path.display().to_string(), std::fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST:PORT/DB`. Default: SQLite at
    /// `<data_dir>/outpost.db`.
    pub url: Option<String>,
    /// Connection pool size. Default 16.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Listen address of `GET /metrics`. Default `127.0.0.1:9470`.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9470)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("outpost-data"),
            api: ApiConfig::default(),
            gateway: GatewayConfig::default(),
            ca: CaConfig::default(),
            providers: ProvidersConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

/// Why configuration was refused; the message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` (if given), then `OUTPOST_*` environment variables, and
    /// validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("OUTPOST_").split("__").filter(|key| {
            // Normalized here because the key may be seen before or after `split`.
            let key = key.as_str().to_ascii_lowercase().replace("__", ".");
            SECTIONS
                .iter()
                .any(|s| key == *s || key.starts_with(&format!("{s}.")))
        });
        figment = figment.merge(env);
        let config: Config = figment.extract().map_err(|e| {
            // figment's Display names the key and the source (file or variable) of each error.
            ConfigError(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if self.api.max_message_bytes < 1024 {
            return bad("api.max_message_bytes", "must be at least 1024");
        }
        if self.api.default_deadline_secs == 0 {
            return bad("api.default_deadline_secs", "must be at least 1");
        }
        if self.api.max_concurrent_requests_per_connection == 0 {
            return bad(
                "api.max_concurrent_requests_per_connection",
                "must be at least 1",
            );
        }
        if self.api.keepalive_secs == 0 {
            return bad("api.keepalive_secs", "must be at least 1");
        }
        match &self.api.tls {
            None if !self.api.listen.ip().is_loopback() && !self.api.insecure => {
                return bad(
                    "api.listen",
                    "is not a loopback address: serving the API there needs [api.tls] \
                     (or api.insecure = true to allow plaintext)",
                );
            }
            None => {}
            Some(tls) => {
                let files = (tls.cert_file.is_some(), tls.key_file.is_some());
                if files.0 != files.1 {
                    return bad(
                        "api.tls.cert_file",
                        "and api.tls.key_file must be given together",
                    );
                }
                // Exactly one source of the certificate.
                if files.0 != tls.hostnames.is_empty() {
                    return bad(
                        "api.tls",
                        "needs either cert_file and key_file, or hostnames for a certificate \
                         from the internal CA",
                    );
                }
            }
        }
        if self.gateway.hostnames.is_empty() {
            return bad(
                "gateway.hostnames",
                "must name at least one host agents dial",
            );
        }
        if self.gateway.certificate_ttl_secs < 60 {
            return bad("gateway.certificate_ttl_secs", "must be at least 60");
        }
        if self.gateway.agent_silence_limit_secs < 5 {
            return bad("gateway.agent_silence_limit_secs", "must be at least 5");
        }
        if self.store.max_connections == 0 {
            return bad("store.max_connections", "must be at least 1");
        }
        if let Some(url) = &self.store.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
        {
            return bad("store.url", "must start with sqlite: or postgres:");
        }
        if self
            .telemetry
            .log_filter
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return bad(
                "telemetry.log_filter",
                "is not a valid tracing filter, e.g. info or outpost=debug,info",
            );
        }
        Ok(())
    }

    /// The database URL: the configured one, or SQLite under the data dir.
    pub fn store_url(&self) -> String {
        self.store.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("outpost.db").display()
            )
        })
    }

    /// The CA key file.
    pub fn ca_key_file(&self) -> PathBuf {
        self.ca
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("ca.key"))
    }

    /// The gateway's settings.
    pub fn gateway_settings(&self) -> crate::gateway::GatewaySettings {
        crate::gateway::GatewaySettings {
            certificate_ttl: Duration::from_secs(self.gateway.certificate_ttl_secs),
            agent_silence_limit: Duration::from_secs(self.gateway.agent_silence_limit_secs),
            ..Default::default()
        }
    }

    /// The default deadline as a `Duration`.
    pub fn default_deadline(&self) -> Duration {
        Duration::from_secs(self.api.default_deadline_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` while no other test changes the environment: loading reads
    /// `OUTPOST_*` variables, which `environment_overrides_the_file` sets (inside a
    /// `figment::Jail`, whose lock this takes too).
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure's error type"
    )]
    fn with_quiet_environment(check: impl FnOnce()) {
        figment::Jail::expect_with(|_| {
            check();
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        with_quiet_environment(unknown_keys_and_bad_values);
    }

    fn unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[api]\nlisten = \"127.0.0.1:0\"\nlistn = 1\n").expect("write");
        let err = Config::load(Some(&path))
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("listn"), "{err}");
        std::fs::write(&path, "[api]\ndefault_deadline_secs = 0\n").expect("write");
        let err = Config::load(Some(&path))
            .expect_err("bad value")
            .to_string();
        assert!(err.contains("api.default_deadline_secs"), "{err}");
        std::fs::write(&path, "[api]\nlisten = \"not an address\"\n").expect("write");
        let err = Config::load(Some(&path))
            .expect_err("bad address")
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure's error type"
    )]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OUTPOST_API__LISTEN", "127.0.0.1:0");
            jail.set_env("OUTPOST_TEST_SOMETHING_ELSE", "ignored");
            let config = Config::load(None).expect("valid");
            assert_eq!(config.api.listen.port(), 0);
            jail.set_env("OUTPOST_API__LISTN", "x");
            let err = Config::load(None).expect_err("unknown key").to_string();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_example_config_parses() {
        with_quiet_environment(|| {
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/management.example.toml");
            let config = Config::load(Some(&path)).expect("example config is valid");
            assert_eq!(config.api.listen.port(), 7070);
        });
    }

    #[test]
    fn plaintext_off_loopback_and_half_a_tls_setting_are_refused() {
        with_quiet_environment(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("c.toml");
            let load = |toml: &str| {
                std::fs::write(&path, toml).expect("write");
                Config::load(Some(&path)).map_err(|e| e.to_string())
            };
            let open = "[api]\nlisten = \"10.1.2.3:7070\"\n";
            let err = load(open).expect_err("plaintext off loopback");
            assert!(
                err.contains("api.listen") && err.contains("api.tls"),
                "{err}"
            );
            load(&format!("{open}insecure = true\n")).expect("plaintext allowed explicitly");
            load(&format!(
                "{open}[api.tls]\nhostnames = [\"api.example.internal\"]\n"
            ))
            .expect("a certificate from the internal CA");
            load(&format!(
                "{open}[api.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
            ))
            .expect("the operator's certificate");
            for half in [
                "[api.tls]\ncert_file = \"c.pem\"\n",
                "[api.tls]\n",
                "[api.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nhostnames = [\"a\"]\n",
            ] {
                let err = load(&format!("{open}{half}")).expect_err(half);
                assert!(err.contains("api.tls"), "{half}: {err}");
            }
        });
    }
}
