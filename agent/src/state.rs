//! The agent's durable state in its state directory:
//!
//! - `identity.json` (management gateway addresses, datacenter, pinned CA fingerprint), `agent.key`
//!   (mode 0600, never leaves the machine), `agent.crt` and `ca.crt`;
//! - `agent.db` (SQLite): the last desired state stored and the outbox of reports.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use outpost_domain::{desired::DesiredState, observed::AgentReport};
use outpost_proto::{agent::v1 as pb, convert::agent::report};
use prost::Message;
use serde::{Deserialize, Serialize};
use sqlx::{SqlitePool, sqlite::SqliteConnectOptions};

use crate::plan::Summary;

/// Where the agent enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The management side's gateway addresses, `host:port`, tried in turn: every instance
    /// of a federation on one database serves every agent. Never empty.
    #[serde(deserialize_with = "one_or_many")]
    pub management: Vec<String>,
    /// The datacenter, `datacenters/{datacenter}`.
    pub datacenter: String,
    /// Pinned SHA-256 fingerprint of the management CA.
    pub ca_fingerprint: String,
}

/// Reads `management` as one address (what agents before federation wrote) or a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Addresses {
        One(String),
        Many(Vec<String>),
    }
    let addresses = match Addresses::deserialize(d)? {
        Addresses::One(one) => vec![one],
        Addresses::Many(many) => many,
    };
    if addresses.is_empty() {
        return Err(serde::de::Error::custom("no management address"));
    }
    Ok(addresses)
}

/// The agent's files and database.
#[derive(Debug, Clone)]
pub struct LocalState {
    dir: PathBuf,
    db: SqlitePool,
}

impl LocalState {
    /// Opens (creating if needed) the state in `dir`.
    pub async fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join("agent.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let db = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .context("opening the agent database")?;
        sqlx::migrate!("./migrations")
            .run(&db)
            .await
            .context("migrating the agent database")?;
        Ok(Self {
            dir: dir.to_owned(),
            db,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Marks the agent alive now: its reconcile loop has turned (see [`alive_age`]).
    pub fn mark_alive(&self) {
        if let Err(e) = std::fs::write(self.path(ALIVE_MARK), b"") {
            tracing::debug!(error = %outpost_process::ErrorChain(&e), "cannot mark the agent alive");
        }
    }

    /// The enrollment, if the agent has enrolled.
    pub fn identity(&self) -> anyhow::Result<Option<Identity>> {
        let path = self.path("identity.json");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
        ))
    }

    /// Stores a fresh enrollment. The key is written with mode 0600; the identity file last,
    /// so a crash half-way leaves the agent not enrolled rather than broken.
    pub fn save_enrollment(
        &self,
        identity: &Identity,
        key_pem: &str,
        cert_pem: &str,
        ca_pem: &str,
    ) -> anyhow::Result<()> {
        write_file(&self.path("agent.key"), key_pem, true)?;
        write_file(&self.path("agent.crt"), cert_pem, false)?;
        write_file(&self.path("ca.crt"), ca_pem, false)?;
        write_file(
            &self.path("identity.json"),
            &serde_json::to_string_pretty(identity)?,
            false,
        )
    }

    /// Points an existing enrollment at the same management side's gateways at other
    /// addresses (one moved, or instances came and went); the certificate and the pinned CA
    /// stay valid.
    pub fn save_management(&self, management: &[String]) -> anyhow::Result<()> {
        anyhow::ensure!(!management.is_empty(), "no management address");
        let mut identity = self.identity()?.context("not enrolled")?;
        identity.management = management.to_vec();
        write_file(
            &self.path("identity.json"),
            &serde_json::to_string_pretty(&identity)?,
            false,
        )
    }

    /// Replaces the certificate (and key) after a renewal.
    pub fn save_renewal(&self, key_pem: &str, cert_pem: &str) -> anyhow::Result<()> {
        write_file(&self.path("agent.key"), key_pem, true)?;
        write_file(&self.path("agent.crt"), cert_pem, false)
    }

    /// `(cert_pem, key_pem, ca_pem)`.
    pub fn credentials(&self) -> anyhow::Result<(String, String, String)> {
        let read = |n: &str| {
            std::fs::read_to_string(self.path(n))
                .with_context(|| format!("reading {n}; enroll first"))
        };
        Ok((read("agent.crt")?, read("agent.key")?, read("ca.crt")?))
    }

    /// Highest desired-state revision stored; 0 when none.
    pub async fn stored_revision(&self) -> anyhow::Result<i64> {
        let r: Option<i64> = sqlx::query_scalar("SELECT revision FROM desired_state WHERE id = 1")
            .fetch_optional(&self.db)
            .await?;
        Ok(r.unwrap_or(0))
    }

    /// Stores `state` if it is newer than the stored one; returns whether it was.
    pub async fn store_desired(&self, state: &pb::DesiredState) -> anyhow::Result<bool> {
        let result = sqlx::query(
            "INSERT INTO desired_state (id, revision, body) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET revision = $1, body = $2 WHERE desired_state.revision < $1",
        )
        .bind(state.revision)
        .bind(state.encode_to_vec())
        .execute(&self.db)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The stored desired state, if any.
    pub async fn desired(&self) -> anyhow::Result<Option<DesiredState>> {
        let body: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT body FROM desired_state WHERE id = 1")
                .fetch_optional(&self.db)
                .await?;
        let Some(body) = body else { return Ok(None) };
        let wire = pb::DesiredState::decode(body.as_slice())
            .context("decoding the stored desired state")?;
        Ok(Some(DesiredState::try_from(&wire).context(
            "the stored desired state names an invalid resource",
        )?))
    }

    /// Up to `limit` reports after sequence `after`, ready to send.
    pub async fn outbox_after(&self, after: u64, limit: u32) -> anyhow::Result<Vec<pb::Report>> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT sequence, body FROM outbox WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await?;
        rows.into_iter()
            .map(|(sequence, body)| {
                let mut r =
                    pb::Report::decode(body.as_slice()).context("decoding an outbox entry")?;
                r.sequence = u64::try_from(sequence).unwrap_or(0);
                Ok(r)
            })
            .collect()
    }

    /// Forgets reports the management side has stored.
    pub async fn outbox_ack(&self, upto: u64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM outbox WHERE sequence <= $1")
            .bind(i64::try_from(upto).unwrap_or(i64::MAX))
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// The summary last reported for `service`; `None` also for one this build cannot read,
    /// which is then reported again.
    pub async fn reported(&self, service: &str) -> anyhow::Result<Option<Summary>> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT summary FROM reported WHERE service = $1")
                .bind(service)
                .fetch_optional(&self.db)
                .await?;
        Ok(text.as_deref().and_then(Summary::parse))
    }

    /// Queues `entries` and records `summary` as reported for `service`, atomically: after a
    /// crash either both happened or neither.
    pub async fn report(
        &self,
        service: &str,
        summary: Summary,
        entries: &[AgentReport],
    ) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        queue_in(&mut tx, entries).await?;
        sqlx::query("INSERT INTO reported (service, summary) VALUES ($1, $2) ON CONFLICT (service) DO UPDATE SET summary = $2")
            .bind(service)
            .bind(summary.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues `entries` that need no record of having been reported (each happens once).
    pub async fn queue(&self, entries: &[AgentReport]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        queue_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reports not yet acknowledged.
    pub async fn outbox_len(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.db)
            .await?)
    }
}

async fn queue_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entries: &[AgentReport],
) -> anyhow::Result<()> {
    for entry in entries {
        sqlx::query("INSERT INTO outbox (body) VALUES ($1)")
            .bind(report(0, entry, outpost_domain::Timestamp::now()).encode_to_vec())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The file whose modification time says when the agent's reconcile loop last turned.
const ALIVE_MARK: &str = "alive";

/// How long ago the agent whose state is in `dir` last marked itself alive; for probes,
/// which must not open the agent's database. Errors: it never did.
pub fn alive_age(dir: &Path) -> std::io::Result<std::time::Duration> {
    let modified = std::fs::metadata(dir.join(ALIVE_MARK))?.modified()?;
    Ok(modified.elapsed().unwrap_or_default())
}

/// Writes a file atomically; `private` makes it mode 0600.
fn write_file(path: &Path, content: &str, private: bool) -> anyhow::Result<()> {
    outpost_process::write_atomically(path, content.as_bytes(), private)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_written_before_federation_reads_as_one_address() {
        let old =
            r#"{"management": "gw:7443", "datacenter": "datacenters/a", "ca_fingerprint": "ab"}"#;
        let identity: Identity = serde_json::from_str(old).expect("an old identity");
        assert_eq!(identity.management, ["gw:7443"]);
        let written = serde_json::to_string(&identity).expect("json");
        assert_eq!(
            serde_json::from_str::<Identity>(&written).expect("a new identity"),
            identity
        );
        let empty = old.replace("\"gw:7443\"", "[]");
        assert!(serde_json::from_str::<Identity>(&empty).is_err());
    }
}
