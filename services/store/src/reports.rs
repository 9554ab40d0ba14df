//! What agents report, applied once each and only within the reporting agent's datacenter,
//! and the last reported state of each workload.

use outpost_domain::{
    EnvironmentName, ResourceName, ServiceName, Timestamp,
    observed::{AgentReport, WorkloadStatus},
};
use sqlx::{AnyConnection, FromRow};

use crate::{Result, Store, StoreError, error::backend, records::event_add};

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

impl Store {
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
