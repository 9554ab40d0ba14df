//! The cluster's raw capacity, from the Ceph manager through `ceph df`.
//!
//! Why the CLI and not the manager's Prometheus endpoint: `ceph df` is what operators read,
//! it needs no optional manager module (Prometheus is often off, or serves cached values
//! seconds behind), and it authenticates with the cluster's own keyring from `ceph.conf`.
//! It costs a Python start (~0.2 s) per reading, which is nothing at the agent's interval.

use std::{process::Stdio, time::Duration};

use serde::Deserialize;

use super::{Ceph, CephError};

/// Deadline of one `ceph df`. `--connect-timeout` bounds reaching the monitors only; a
/// manager that does not answer would otherwise hang the CLI for 300 s.
const DF_TIMEOUT: Duration = Duration::from_secs(30);

/// Seconds the CLI waits for the monitors (it takes whole seconds).
const CONNECT_TIMEOUT_SECS: &str = "10";

/// The cluster's raw storage, as `ceph df` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Raw bytes of all OSDs.
    pub total_bytes: u64,
    /// Raw bytes in use (data times replication, plus overhead).
    pub used_bytes: u64,
    /// Raw bytes still free.
    pub available_bytes: u64,
}

impl Ceph {
    /// Reads the cluster's capacity with `ceph df -f json`. Fails with
    /// [`CephError::Unreachable`] when the monitors or manager do not answer in time,
    /// [`CephError::NotReady`] while the manager has no statistics yet (it reports zero
    /// bytes then, which must not read as "no storage"), and [`CephError::Cli`] when the
    /// CLI is missing or refuses (e.g. no keyring).
    pub async fn capacity(&self) -> Result<Capacity, CephError> {
        const OPERATION: &str = "read the cluster's capacity (ceph df)";
        let cli = |reason: String| CephError::Cli {
            operation: OPERATION.to_owned(),
            reason,
        };
        let mut command = tokio::process::Command::new("ceph");
        command.args(["--connect-timeout", CONNECT_TIMEOUT_SECS]);
        if let Some(conf) = &self.ceph_conf {
            command.arg("--conf").arg(conf);
        }
        command
            .args(["df", "--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A deadline that passes drops the future; this makes it end the process too.
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            cli(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "the `ceph` command is not installed (Debian package ceph-common)".to_owned()
                }
                _ => format!("cannot run `ceph`: {e}"),
            })
        })?;
        let output = match tokio::time::timeout(DF_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(cli(format!("cannot run `ceph`: {e}"))),
            Err(_) => {
                return Err(CephError::Unreachable {
                    operation: OPERATION.to_owned(),
                    peer: "the Ceph manager".to_owned(),
                    source: None,
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rfind(|l| !l.trim().is_empty());
            return Err(cli(format!(
                "`ceph df` {}: {}",
                output.status,
                last.unwrap_or("no message")
            )));
        }
        let capacity = parse_df(&output.stdout).map_err(|e| CephError::BadAnswer {
            operation: OPERATION.to_owned(),
            source: e.into(),
        })?;
        if capacity.total_bytes == 0 {
            return Err(CephError::NotReady {
                operation: OPERATION.to_owned(),
                reason: "the Ceph manager has no statistics from the OSDs yet".to_owned(),
            });
        }
        Ok(capacity)
    }
}

fn parse_df(json: &[u8]) -> Result<Capacity, serde_json::Error> {
    #[derive(Deserialize)]
    struct Df {
        stats: Stats,
    }
    #[derive(Deserialize)]
    struct Stats {
        total_bytes: u64,
        total_used_raw_bytes: u64,
        total_avail_bytes: u64,
    }
    let Df { stats } = serde_json::from_slice(json)?;
    Ok(Capacity {
        total_bytes: stats.total_bytes,
        used_bytes: stats.total_used_raw_bytes,
        available_bytes: stats.total_avail_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceph_df_is_read() {
        // Trimmed from Pacific 16.2.15's `ceph df -f json`.
        let json = br#"{"stats":{"total_bytes":1073741824,"total_avail_bytes":1073705347,"total_used_bytes":36477,"total_used_raw_bytes":36477,"total_used_raw_ratio":3.4e-05,"num_osds":1},"stats_by_class":{},"pools":[]}"#;
        assert_eq!(
            parse_df(json).unwrap(),
            Capacity {
                total_bytes: 1_073_741_824,
                used_bytes: 36_477,
                available_bytes: 1_073_705_347,
            }
        );
    }
}
