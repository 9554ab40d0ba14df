//! Enrolled agents and what they last said of themselves (link, reach, capacity), join
//! tokens, revoked certificates and the sealed CA.
//!
//! These queries are scoped by datacenter rather than tenant: an agent serves every tenant
//! with environments in its datacenter, and its identity (from its verified certificate)
//! names the datacenter.

use outpost_domain::{
    DatacenterName, Timestamp,
    observed::{Agent, AgentReach, Capacity, ClusterCut},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Result, Store, StoreError, Tx, error::backend, records::event_add, rows::datacenter_ref,
};

/// The CA certificate and its sealed key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAuthority {
    /// CA certificate, PEM.
    pub cert_pem: String,
    /// The CA key, encrypted with a key the database never holds.
    pub sealed_key: Vec<u8>,
}

/// An agent's row.
#[derive(FromRow)]
struct AgentRow {
    datacenter: String,
    serial: String,
    not_after: i64,
    enroll_time: i64,
    connected: i64,
    last_seen: i64,
    agent_version: String,
    stored_revision: i64,
    cpu_millis: i64,
    memory_bytes: i64,
    report_sequence: i64,
    storage_bytes: i64,
    storage_used_bytes: i64,
    object_storage: i64,
    cluster_unreachable_since: i64,
    cluster_error: String,
}

impl From<AgentRow> for Agent {
    fn from(r: AgentRow) -> Self {
        Agent {
            datacenter: datacenter_ref(&r.datacenter),
            serial: r.serial,
            certificate_expire_time: Timestamp(r.not_after),
            enroll_time: Timestamp(r.enroll_time),
            reach: AgentReach {
                connected: r.connected == 1,
                last_seen: Timestamp(r.last_seen),
                cluster: (r.cluster_unreachable_since > 0).then_some(ClusterCut {
                    since: Timestamp(r.cluster_unreachable_since),
                    error: r.cluster_error,
                }),
            },
            version: r.agent_version,
            stored_revision: r.stored_revision,
            report_sequence: r.report_sequence,
            capacity: Capacity {
                cpu_millis: r.cpu_millis,
                memory_bytes: r.memory_bytes,
                storage_bytes: r.storage_bytes,
                storage_used_bytes: r.storage_used_bytes,
                object_storage: r.object_storage == 1,
            },
        }
    }
}

const AGENT_COLUMNS: &str = "datacenter, serial, not_after, enroll_time, connected, last_seen, agent_version, \
                             stored_revision, cpu_millis, memory_bytes, report_sequence, storage_bytes, \
                             storage_used_bytes, object_storage, cluster_unreachable_since, cluster_error";

async fn agent_get(conn: &mut AnyConnection, dc: &str) -> Result<Option<Agent>> {
    let row: Option<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE datacenter = $1"
    )))
    .bind(dc)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    Ok(row.map(Agent::from))
}

impl Store {
    /// The stored CA, if one was made.
    pub async fn authority_get(&self) -> Result<Option<SealedAuthority>> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT cert_pem, sealed_key FROM certificate_authorities WHERE id = 'agents'",
        )
        .fetch_optional(&self.read)
        .await
        .map_err(backend)?;
        Ok(row.map(|(cert_pem, sealed_key)| SealedAuthority {
            cert_pem,
            sealed_key,
        }))
    }

    /// Stores `candidate` as the CA unless one exists, and returns the one that is stored:
    /// when several instances start at once on one database, all end up with the same CA.
    pub async fn authority_get_or_create(
        &self,
        candidate: &SealedAuthority,
    ) -> Result<SealedAuthority> {
        sqlx::query(
            "INSERT INTO certificate_authorities (id, cert_pem, sealed_key, create_time) VALUES ('agents', $1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate.cert_pem)
        .bind(candidate.sealed_key.clone())
        .bind(Timestamp::now().0)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        self.authority_get()
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "certificate authority".into(),
            })
    }

    /// The enrolled agent of `dc`, if any.
    pub async fn agent_get(&self, dc: &DatacenterName) -> Result<Option<Agent>> {
        let mut conn = self.read.acquire().await.map_err(backend)?;
        agent_get(&mut conn, &dc.datacenter).await
    }

    /// Agents of the datacenters named `first..=last` (a page of datacenters), in one query.
    pub async fn agent_list_range(
        &self,
        first: &DatacenterName,
        last: &DatacenterName,
    ) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE datacenter >= $1 AND datacenter <= $2 ORDER BY datacenter"
        )))
        .bind(&first.datacenter)
        .bind(&last.datacenter)
        .fetch_all(&self.read)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Agent::from).collect())
    }

    /// Every revoked certificate serial with its revocation time, for the CRL.
    pub async fn revoked_serials(&self) -> Result<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT serial, revoke_time FROM revoked_certificates ORDER BY serial")
                .fetch_all(&self.read)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(s, t)| (s, Timestamp(t))).collect())
    }

    /// Records that `dc`'s agent opened a stream.
    pub async fn agent_connected(
        &self,
        dc: &str,
        agent_version: &str,
        stored_revision: i64,
        capacity: &Capacity,
        cluster: Option<&ClusterCut>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET connected = 1, agent_version = $1, stored_revision = $2 WHERE datacenter = $3",
        )
        .bind(agent_version)
        .bind(stored_revision)
        .bind(dc)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        self.agent_capacity(dc, capacity).await?;
        self.agent_cluster(dc, cluster).await
    }

    /// Records whether `dc`'s agent reaches its cluster's API server: `cluster` says since
    /// when and why not; `None` while it does.
    pub async fn agent_cluster(&self, dc: &str, cluster: Option<&ClusterCut>) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET last_seen = $1, cluster_unreachable_since = $2, cluster_error = $3 WHERE datacenter = $4",
        )
        .bind(Timestamp::now().0)
        .bind(cluster.map_or(0, |c| c.since.0))
        .bind(cluster.map_or("", |c| c.error.as_str()))
        .bind(dc)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Records the capacity `dc`'s agent measured anew.
    pub async fn agent_capacity(&self, dc: &str, capacity: &Capacity) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET last_seen = $1, cpu_millis = $2, memory_bytes = $3, storage_bytes = $4, \
             storage_used_bytes = $5, object_storage = $6 WHERE datacenter = $7",
        )
        .bind(Timestamp::now().0)
        .bind(capacity.cpu_millis)
        .bind(capacity.memory_bytes)
        .bind(capacity.storage_bytes)
        .bind(capacity.storage_used_bytes)
        .bind(i64::from(capacity.object_storage))
        .bind(dc)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Records a message from `dc`'s agent; with `stored_revision`, also an acknowledgement.
    pub async fn agent_seen(&self, dc: &str, stored_revision: Option<i64>) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET last_seen = $1, stored_revision = CASE WHEN $2 > stored_revision THEN $2 ELSE stored_revision END \
             WHERE datacenter = $3",
        )
        .bind(Timestamp::now().0)
        .bind(stored_revision.unwrap_or(-1))
        .bind(dc)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Records that `dc`'s agent stream closed.
    pub async fn agent_disconnected(&self, dc: &str) -> Result<()> {
        sqlx::query("UPDATE agents SET connected = 0, last_seen = $1 WHERE datacenter = $2")
            .bind(Timestamp::now().0)
            .bind(dc)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl Tx {
    /// Stores a join token (its hash) for `dc`, valid until `expire_time`.
    pub async fn join_token_create(
        &mut self,
        dc: &DatacenterName,
        secret_sha256: &str,
        expire_time: Timestamp,
        actor: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO join_tokens (secret_sha256, datacenter, create_time, expire_time) VALUES ($1, $2, $3, $4)")
            .bind(secret_sha256)
            .bind(&dc.datacenter)
            .bind(Timestamp::now().0)
            .bind(expire_time.0)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_write("join token", dc))?;
        event_add(
            &mut self.tx,
            "",
            &dc.to_string(),
            "JoinTokenCreated",
            &format!("Join token created by {actor}."),
            actor,
        )
        .await
    }

    /// Uses up a join token: the datacenter it was made for, or `None` if it is unknown,
    /// used or expired. Atomic: of two concurrent uses, one wins.
    pub async fn join_token_consume(
        &mut self,
        secret_sha256: &str,
        at: Timestamp,
    ) -> Result<Option<DatacenterName>> {
        let dc: Option<String> = sqlx::query_scalar(
            "UPDATE join_tokens SET used_time = $1 \
             WHERE secret_sha256 = $2 AND used_time IS NULL AND expire_time > $1 RETURNING datacenter",
        )
        .bind(at.0)
        .bind(secret_sha256)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(dc.map(|datacenter| DatacenterName { datacenter }))
    }

    /// Records `dc`'s agent with its new certificate. A previous agent's certificate is
    /// revoked: one datacenter, one agent.
    pub async fn agent_enroll(
        &mut self,
        dc: &DatacenterName,
        serial: &str,
        not_after: Timestamp,
        version: &str,
    ) -> Result<()> {
        self.agent_revoke_current(&dc.datacenter).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO agents ({AGENT_COLUMNS}) VALUES ($1, $2, $3, $4, 0, $4, $5, 0, 0, 0, 0, 0, 0, 0, 0, '')"
        )))
        .bind(&dc.datacenter)
        .bind(serial)
        .bind(not_after.0)
        .bind(Timestamp::now().0)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        event_add(
            &mut self.tx,
            "",
            &dc.to_string(),
            "AgentEnrolled",
            &format!("Agent {version} enrolled."),
            "system",
        )
        .await
    }

    /// Points `dc`'s agent record at a renewed certificate. The old certificate stays valid
    /// until it expires, so a renewal racing a reconnect cannot lock the agent out.
    pub async fn agent_renewed(
        &mut self,
        dc: &str,
        serial: &str,
        not_after: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE agents SET serial = $1, not_after = $2 WHERE datacenter = $3")
            .bind(serial)
            .bind(not_after.0)
            .bind(dc)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Revokes `dc`'s agent: its certificate is refused from now on and its stream closed.
    /// Returns whether there was an agent.
    pub async fn agent_revoke(&mut self, dc: &DatacenterName, actor: &str) -> Result<bool> {
        let had = self.agent_revoke_current(&dc.datacenter).await?;
        if had {
            event_add(
                &mut self.tx,
                "",
                &dc.to_string(),
                "AgentRevoked",
                &format!("Agent revoked by {actor}."),
                actor,
            )
            .await?;
        }
        Ok(had)
    }

    async fn agent_revoke_current(&mut self, dc: &str) -> Result<bool> {
        let Some(agent) = agent_get(&mut self.tx, dc).await? else {
            return Ok(false);
        };
        sqlx::query("INSERT INTO revoked_certificates (serial, datacenter, revoke_time) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING")
            .bind(&agent.serial)
            .bind(dc)
            .bind(Timestamp::now().0)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM agents WHERE datacenter = $1")
            .bind(dc)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        // Tell the gateway holding its stream to look again (and close it).
        self.touched.insert(dc.to_owned());
        Ok(true)
    }
}
