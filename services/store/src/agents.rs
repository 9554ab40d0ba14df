//! The agent link's durable state: desired-state revisions and change notices, join tokens,
//! enrolled agents, revoked certificates, the sealed CA, and what agents report.
//!
//! These queries are scoped by datacenter rather than tenant: an agent serves every tenant
//! with environments in its datacenter, and its identity (from its verified certificate)
//! names the datacenter. Reports are applied only to services placed in that datacenter.

use outpost_domain::{
    DatacenterName, EnvironmentName, ManagedServiceName, ResourceName, ServiceName, Timestamp,
    desired::{BuildTarget, ServiceTarget},
    managed::ManagedStatus,
    observed::{Agent, AgentReach, AgentReport, Capacity, ClusterCut, WorkloadStatus},
    resources::{Environment, Source},
};
use sqlx::{AnyConnection, FromRow};
use tokio::sync::broadcast;

use crate::{
    Result, Store, StoreError, Tx,
    error::backend,
    records::event_add,
    rows::{MetaRow, datacenter_ref},
};

/// A notice that datacenters' desired state may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatacenterChange {
    /// This datacenter changed (or was deleted).
    One {
        /// Its id.
        datacenter: String,
        /// W3C `traceparent` of the call that changed it; empty if unknown.
        traceparent: String,
    },
    /// Notices may have been missed: look at every datacenter again.
    All,
}

/// Forwards PostgreSQL `NOTIFY outpost_datacenters` to subscribers; stops when dropped.
#[derive(Debug)]
pub(crate) struct ListenerTask(tokio::task::JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ListenerTask {
    pub(crate) async fn start(
        url: &str,
        changes: broadcast::Sender<DatacenterChange>,
    ) -> Result<Self> {
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(backend)?;
        listener
            .listen("outpost_datacenters")
            .await
            .map_err(backend)?;
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        // The payload is `datacenter[ traceparent]`.
                        let (datacenter, traceparent) =
                            n.payload().split_once(' ').unwrap_or((n.payload(), ""));
                        let _ = changes.send(DatacenterChange::One {
                            datacenter: datacenter.to_owned(),
                            traceparent: traceparent.to_owned(),
                        });
                    }
                    // The connection dropped and was re-established: notices in between are
                    // lost, so everyone must look again.
                    Ok(None) => {
                        tracing::warn!("change listener reconnected to PostgreSQL");
                        let _ = changes.send(DatacenterChange::All);
                    }
                    Err(e) => {
                        tracing::warn!(error = %outpost_process::ErrorChain(&e), "change listener failed; retrying");
                        let _ = changes.send(DatacenterChange::All);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self(task))
    }
}

/// What a datacenter's desired state is computed from, read consistently: the revision is
/// read first, so the content is at least as new as the revision says.
#[derive(Debug, Clone)]
pub struct DesiredInputs {
    /// The datacenter's revision.
    pub revision: i64,
    /// Its environments.
    pub environments: Vec<Environment>,
    /// What the services of those environments should run; `secrets` still empty (the
    /// store holds them only sealed, in [`Self::sealed_secrets`]).
    pub targets: Vec<ServiceTarget>,
    /// The deployments of those services being built.
    pub builds: Vec<BuildTarget>,
    /// The secrets of those services, sealed.
    pub sealed_secrets: Vec<SealedSecret>,
    /// The managed services of those environments (deleted ones aside).
    pub managed: Vec<ManagedInput>,
}

/// A managed service as stored: what its provider renders into what runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedInput {
    /// The managed service.
    pub service: ManagedServiceName,
    /// Its uid.
    pub uid: String,
    /// Its provider's name.
    pub provider: String,
    /// Its generation.
    pub generation: i64,
    /// Its status.
    pub status: ManagedStatus,
    /// Its config.
    pub config: serde_json::Value,
    /// Its secrets (a JSON object), sealed under `{name}/secrets`.
    pub sealed_secrets: Vec<u8>,
}

/// One secret value as stored: sealed under the management side's key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Its service.
    pub service: ServiceName,
    /// Its name (the environment variable it becomes).
    pub name: String,
    /// The sealed value.
    pub sealed: Vec<u8>,
}

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
    /// The inputs of `dc`'s desired state, consistently (see [`DesiredInputs`]).
    /// [`StoreError::NotFound`] if the datacenter does not exist.
    pub async fn desired_inputs(&self, dc: &DatacenterName) -> Result<DesiredInputs> {
        let mut conn = self.read.acquire().await.map_err(backend)?;
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM datacenters WHERE name = $1")
                .bind(&dc.datacenter)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
        let revision = revision.ok_or_else(|| StoreError::NotFound {
            kind: "datacenter",
            name: dc.to_string(),
        })?;
        #[derive(FromRow)]
        struct EnvRow {
            tenant: String,
            project: String,
            name: String,
            display_name: String,
            first_deploy_time: Option<i64>,
            #[sqlx(flatten)]
            meta: MetaRow,
        }
        let envs: Vec<EnvRow> = sqlx::query_as(
            "SELECT tenant, project, name, display_name, first_deploy_time, uid, create_time, update_time, version \
             FROM environments WHERE datacenter = $1 ORDER BY tenant, project, name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct TargetRow {
            tenant: String,
            project: String,
            environment: String,
            name: String,
            generation: i64,
            stopped: i64,
            restart_time: i64,
            spec: String,
        }
        // The deployment to run: the one rolling out, else the live one (also while a
        // build runs or a cancel rolls back).
        let targets: Vec<TargetRow> = sqlx::query_as(
            "SELECT s.tenant, s.project, s.environment, s.name, s.generation, s.stopped, s.restart_time, d.spec \
             FROM services s JOIN environments e \
               ON e.tenant = s.tenant AND e.project = s.project AND e.name = s.environment \
             JOIN deployments d ON d.tenant = s.tenant AND d.project = s.project AND d.environment = s.environment \
               AND d.service = s.name \
               AND d.number = (CASE WHEN s.status = 'DEPLOYING' THEN s.current_deployment ELSE s.live_deployment END) \
             WHERE e.datacenter = $1 ORDER BY s.tenant, s.project, s.environment, s.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct BuildRow {
            tenant: String,
            project: String,
            environment: String,
            name: String,
            number: i64,
            spec: String,
        }
        let builds: Vec<BuildRow> = sqlx::query_as(
            "SELECT s.tenant, s.project, s.environment, s.name, d.number, d.spec \
             FROM services s JOIN environments e \
               ON e.tenant = s.tenant AND e.project = s.project AND e.name = s.environment \
             JOIN deployments d ON d.tenant = s.tenant AND d.project = s.project AND d.environment = s.environment \
               AND d.service = s.name AND d.number = s.current_deployment \
             WHERE e.datacenter = $1 AND s.status = 'BUILDING' ORDER BY s.tenant, s.project, s.environment, s.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct SecretRow {
            tenant: String,
            project: String,
            environment: String,
            service: String,
            name: String,
            sealed: Vec<u8>,
        }
        let secrets: Vec<SecretRow> = sqlx::query_as(
            "SELECT x.tenant, x.project, x.environment, x.service, x.name, x.sealed \
             FROM service_secrets x JOIN environments e \
               ON e.tenant = x.tenant AND e.project = x.project AND e.name = x.environment \
             WHERE e.datacenter = $1 ORDER BY x.tenant, x.project, x.environment, x.service, x.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let environments = envs
            .into_iter()
            .map(|r| Environment {
                name: EnvironmentName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.name,
                },
                display_name: r.display_name,
                datacenter: dc.clone(),
                first_deploy_time: r.first_deploy_time.map(Timestamp),
                meta: r.meta.into(),
            })
            .collect();
        let targets = targets
            .into_iter()
            .map(|r| {
                let service = ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.name,
                };
                let spec = crate::deployments::decode_deployment_spec(&r.spec, &service)?;
                Ok(ServiceTarget {
                    service,
                    generation: r.generation,
                    spec,
                    stopped: r.stopped != 0,
                    secrets: Vec::new(),
                    restart_time: r.restart_time,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let builds = builds
            .into_iter()
            .filter_map(|r| {
                let service = ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.name,
                };
                let spec = match crate::deployments::decode_deployment_spec(&r.spec, &service) {
                    Ok(spec) => spec,
                    Err(e) => return Some(Err(e)),
                };
                match spec.service.source {
                    Source::Git(source) => Some(Ok(BuildTarget {
                        service,
                        deployment: r.number,
                        source,
                    })),
                    _ => None,
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let sealed_secrets = secrets
            .into_iter()
            .map(|r| SealedSecret {
                service: ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.service,
                },
                name: r.name,
                sealed: r.sealed,
            })
            .collect();
        let managed = crate::managed::desired_inputs(&mut conn, &dc.datacenter).await?;
        Ok(DesiredInputs {
            revision,
            environments,
            targets,
            builds,
            sealed_secrets,
            managed,
        })
    }

    /// The datacenter's current revision; [`StoreError::NotFound`] if it does not exist.
    pub async fn datacenter_revision(&self, dc: &str) -> Result<i64> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM datacenters WHERE name = $1")
                .bind(dc)
                .fetch_optional(&self.read)
                .await
                .map_err(backend)?;
        revision.ok_or_else(|| StoreError::NotFound {
            kind: "datacenter",
            name: format!("datacenters/{dc}"),
        })
    }

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

    /// Applies reports from `dc`'s agent, in order, each exactly once: entries at or below
    /// the last applied sequence are skipped. Statuses and events about services not placed
    /// in `dc` are dropped (an agent speaks only for its own datacenter). Returns the highest
    /// sequence now applied, which the agent may forget up to.
    pub async fn agent_apply_reports(
        &self,
        dc: &str,
        reports: &[(u64, AgentReport)],
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT report_sequence FROM agents WHERE datacenter = $1")
                .bind(dc)
                .fetch_optional(&mut *tx.tx)
                .await
                .map_err(backend)?;
        let Some(applied) = applied else {
            return Err(StoreError::NotFound {
                kind: "agent",
                name: format!("datacenters/{dc}"),
            });
        };
        let mut highest = u64::try_from(applied).unwrap_or(0);
        for (sequence, report) in reports {
            if *sequence <= highest {
                continue;
            }
            highest = *sequence;
            match report {
                AgentReport::Status(status) => {
                    if !service_in_datacenter(&mut tx.tx, &status.service, dc).await? {
                        continue;
                    }
                    workload_status_put(&mut tx.tx, dc, status).await?;
                    tx.lifecycle_on_report(status).await?;
                }
                AgentReport::Build(outcome) => {
                    if service_in_datacenter(&mut tx.tx, &outcome.service, dc).await? {
                        tx.lifecycle_on_build(outcome).await?;
                    }
                }
                AgentReport::Managed(report) => {
                    if crate::managed::in_datacenter(&mut tx.tx, &report.service, dc).await? {
                        tx.managed_on_report(dc, report).await?;
                    }
                }
                AgentReport::Event {
                    resource,
                    reason,
                    message,
                } => {
                    let own_dc = format!("datacenters/{dc}");
                    let tenant = if *resource == own_dc {
                        String::new()
                    } else {
                        match ResourceName::parse(resource) {
                            Ok(ResourceName::Service(s))
                                if service_in_datacenter(&mut tx.tx, &s, dc).await? =>
                            {
                                s.tenant
                            }
                            Ok(ResourceName::ManagedService(m))
                                if crate::managed::in_datacenter(&mut tx.tx, &m, dc).await? =>
                            {
                                m.tenant
                            }
                            // Its namespace, repaired after a change behind the agent's back.
                            Ok(ResourceName::Environment(e))
                                if environment_in_datacenter(&mut tx.tx, &e, dc).await? =>
                            {
                                e.tenant
                            }
                            _ => continue,
                        }
                    };
                    event_add(&mut tx.tx, &tenant, resource, reason, message, &own_dc).await?;
                }
            }
        }
        sqlx::query("UPDATE agents SET report_sequence = $1, last_seen = $2 WHERE datacenter = $3")
            .bind(i64::try_from(highest).unwrap_or(i64::MAX))
            .bind(Timestamp::now().0)
            .bind(dc)
            .execute(&mut *tx.tx)
            .await
            .map_err(backend)?;
        tx.commit().await?;
        Ok(highest)
    }

    /// The last reported states of the services named `first..=last` in `environment` (a
    /// page of services), in one query.
    pub async fn workload_status_range(
        &self,
        environment: &EnvironmentName,
        first: &str,
        last: &str,
    ) -> Result<Vec<ReportedStatus>> {
        let rows: Vec<StatusRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM {STATUS_FROM} WHERE tenant = $1 AND project = $2 AND environment = $3 \
             AND service >= $4 AND service <= $5 ORDER BY service"
        )))
        .bind(&environment.tenant)
        .bind(&environment.project)
        .bind(&environment.environment)
        .bind(first)
        .bind(last)
        .fetch_all(&self.read)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_status(environment))
            .collect())
    }

    /// The last reported state of a service's workload, if its agent reported one.
    pub async fn workload_status_get(
        &self,
        service: &ServiceName,
    ) -> Result<Option<ReportedStatus>> {
        let row: Option<StatusRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM {STATUS_FROM} \
             WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4"
        )))
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .fetch_optional(&self.read)
        .await
        .map_err(backend)?;
        Ok(row.map(|r| r.into_status(&service.environment_name())))
    }
}

const STATUS_COLUMNS: &str = "service, revision, generation, reason, observed_generation, ready_replicas, updated_replicas, \
                              desired_replicas, phase, message, report_time, \
                              COALESCE(a.connected, 0) AS agent_connected, COALESCE(a.last_seen, 0) AS agent_last_seen, \
                              COALESCE(a.cluster_unreachable_since, 0) AS agent_cluster_unreachable_since";

/// The statuses joined with their datacenter's agent, to tell current from stale.
const STATUS_FROM: &str =
    "workload_statuses LEFT JOIN agents a ON a.datacenter = workload_statuses.datacenter";

/// A reported status, and whether it is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedStatus {
    /// What the agent last reported.
    pub status: WorkloadStatus,
    /// False when the datacenter's agent is not linked or does not reach its cluster:
    /// the report may be out of date.
    pub current: bool,
}

#[derive(FromRow)]
struct StatusRow {
    service: String,
    revision: i64,
    generation: i64,
    reason: String,
    observed_generation: i64,
    ready_replicas: i64,
    updated_replicas: i64,
    desired_replicas: i64,
    phase: String,
    message: String,
    report_time: i64,
    agent_connected: i64,
    agent_last_seen: i64,
    agent_cluster_unreachable_since: i64,
}

impl StatusRow {
    fn into_status(self, environment: &EnvironmentName) -> ReportedStatus {
        // A report is current only while the agent is linked and reaches its cluster.
        let current = outpost_domain::observed::link_is_live(
            self.agent_connected == 1,
            Timestamp(self.agent_last_seen),
            Timestamp::now(),
        ) && self.agent_cluster_unreachable_since == 0;
        let status = WorkloadStatus {
            service: ServiceName {
                tenant: environment.tenant.clone(),
                project: environment.project.clone(),
                environment: environment.environment.clone(),
                service: self.service,
            },
            revision: self.revision,
            generation: self.generation,
            reason: outpost_domain::deployment::FailureReason::parse(&self.reason),
            observed_generation: self.observed_generation,
            ready_replicas: self.ready_replicas,
            updated_replicas: self.updated_replicas,
            desired_replicas: self.desired_replicas,
            phase: outpost_domain::observed::WorkloadPhase::parse(&self.phase),
            message: self.message,
            report_time: Timestamp(self.report_time),
        };
        ReportedStatus { status, current }
    }
}

async fn environment_in_datacenter(
    conn: &mut AnyConnection,
    environment: &EnvironmentName,
    dc: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM environments WHERE tenant = $1 AND project = $2 AND name = $3 AND datacenter = $4",
    )
    .bind(&environment.tenant)
    .bind(&environment.project)
    .bind(&environment.environment)
    .bind(dc)
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    Ok(n > 0)
}

async fn service_in_datacenter(
    conn: &mut AnyConnection,
    service: &ServiceName,
    dc: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM services s JOIN environments e \
           ON e.tenant = s.tenant AND e.project = s.project AND e.name = s.environment \
         WHERE s.tenant = $1 AND s.project = $2 AND s.environment = $3 AND s.name = $4 AND e.datacenter = $5",
    )
    .bind(&service.tenant)
    .bind(&service.project)
    .bind(&service.environment)
    .bind(&service.service)
    .bind(dc)
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    Ok(n > 0)
}

async fn workload_status_put(conn: &mut AnyConnection, dc: &str, s: &WorkloadStatus) -> Result<()> {
    sqlx::query(
        "INSERT INTO workload_statuses (tenant, project, environment, service, datacenter, revision, observed_generation, \
           ready_replicas, updated_replicas, desired_replicas, phase, message, report_time, generation, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (tenant, project, environment, service) DO UPDATE SET datacenter = $5, revision = $6, \
           observed_generation = $7, ready_replicas = $8, updated_replicas = $9, desired_replicas = $10, phase = $11, \
           message = $12, report_time = $13, generation = $14, reason = $15",
    )
    .bind(&s.service.tenant)
    .bind(&s.service.project)
    .bind(&s.service.environment)
    .bind(&s.service.service)
    .bind(dc)
    .bind(s.revision)
    .bind(s.observed_generation)
    .bind(s.ready_replicas)
    .bind(s.updated_replicas)
    .bind(s.desired_replicas)
    .bind(s.phase.as_str())
    .bind(&s.message)
    .bind(s.report_time.0)
    .bind(s.generation)
    .bind(s.reason.map_or("", |r| r.as_str()))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
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
