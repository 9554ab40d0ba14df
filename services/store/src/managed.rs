//! Managed services: rows, queries and the lifecycle transitions of
//! [`outpost_domain::managed`], each in one transaction with its event and, when what
//! should run changed, a bump of the datacenter's revision.

use outpost_domain::{
    EnvironmentName, ManagedServiceName, Timestamp,
    managed::{ManagedAction, ManagedService, ManagedStatus, Observation, decide, on_report},
    observed::ManagedReport,
};
use serde_json::Value;
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, corrupt},
    split_page,
};

/// How long a deleted managed service stays listed as recently deleted.
pub const DELETED_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(FromRow)]
struct Row {
    tenant: String,
    project: String,
    environment: String,
    name: String,
    provider: String,
    display_name: String,
    config: String,
    status: String,
    status_message: String,
    generation: i64,
    details: String,
    delete_time: Option<i64>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

const COLUMNS: &str = "tenant, project, environment, name, provider, display_name, config, status, status_message, \
                       generation, details, delete_time, uid, create_time, update_time, version";

impl Row {
    fn decode(self) -> Result<ManagedService> {
        let name = ManagedServiceName {
            tenant: self.tenant,
            project: self.project,
            environment: self.environment,
            managed_service: self.name,
        };
        let bad = |what: &str| corrupt(format!("{what} of {name}"));
        let json = |text: &str, what: &str| -> Result<Value> {
            serde_json::from_str(text).map_err(|_| bad(what))
        };
        Ok(ManagedService {
            provider: self.provider,
            display_name: self.display_name,
            config: json(&self.config, "config")?,
            status: ManagedStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            message: self.status_message,
            generation: self.generation,
            details: json(&self.details, "details")?,
            delete_time: self.delete_time.map(Timestamp),
            meta: self.meta.into(),
            name,
        })
    }
}

async fn get(conn: &mut AnyConnection, name: &ManagedServiceName) -> Result<ManagedService> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM managed_services WHERE tenant = $1 AND project = $2 AND environment = $3 \
         AND name = $4 AND status <> 'DELETED'"
    )))
    .bind(&name.tenant)
    .bind(&name.project)
    .bind(&name.environment)
    .bind(&name.managed_service)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    found(row, name)
}

/// The service a query found, or [`StoreError::NotFound`] naming what was asked for.
fn found(row: Option<Row>, asked: impl std::fmt::Display) -> Result<ManagedService> {
    row.ok_or_else(|| StoreError::NotFound {
        kind: "managed service",
        name: asked.to_string(),
    })?
    .decode()
}

/// Reads on managed services.
pub trait ManagedQueries: Queries {
    /// One managed service (not a deleted one). [`StoreError::NotFound`] if absent.
    fn managed_get(
        &mut self,
        name: &ManagedServiceName,
    ) -> impl Future<Output = Result<ManagedService>> + Send {
        async move { get(self.conn(), name).await }
    }

    /// A page of an environment's managed services (deleted ones only when `deleted`, and
    /// then only those within the retention period), by name.
    fn managed_list(
        &mut self,
        environment: &EnvironmentName,
        deleted: bool,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<ManagedService>>> + Send {
        async move {
            let filter = if deleted {
                "status = 'DELETED' AND delete_time > $6"
            } else {
                "status <> 'DELETED' AND $6 = $6"
            };
            let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM managed_services WHERE tenant = $1 AND project = $2 AND environment = $3 \
                 AND name > $4 AND {filter} ORDER BY name, delete_time LIMIT $5"
            )))
            .bind(&environment.tenant)
            .bind(&environment.project)
            .bind(&environment.environment)
            .bind(page.after.as_deref().unwrap_or_default())
            .bind(fetch_limit(page))
            .bind(Timestamp::now().0 - DELETED_RETENTION_MS)
            .fetch_all(self.conn())
            .await
            .map_err(backend)?;
            let items = rows
                .into_iter()
                .map(Row::decode)
                .collect::<Result<Vec<_>>>()?;
            Ok(split_page(items, page.limit, |m| {
                m.name.managed_service.clone()
            }))
        }
    }

    /// The live managed service named `name`, else the one of that name deleted last (while
    /// it is kept): what a watch starts from. [`StoreError::NotFound`] if neither exists.
    fn managed_get_latest(
        &mut self,
        name: &ManagedServiceName,
    ) -> impl Future<Output = Result<ManagedService>> + Send {
        async move {
            let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM managed_services WHERE tenant = $1 AND project = $2 AND environment = $3 \
                 AND name = $4 ORDER BY CASE WHEN status = 'DELETED' THEN 1 ELSE 0 END, delete_time DESC LIMIT 1"
            )))
            .bind(&name.tenant)
            .bind(&name.project)
            .bind(&name.environment)
            .bind(&name.managed_service)
            .fetch_optional(self.conn())
            .await
            .map_err(backend)?;
            found(row, name)
        }
    }

    /// A managed service by uid, deleted or not (what a watch follows to its end).
    /// [`StoreError::NotFound`] once it is no longer kept.
    fn managed_get_by_uid(
        &mut self,
        uid: &str,
    ) -> impl Future<Output = Result<ManagedService>> + Send {
        async move {
            let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM managed_services WHERE uid = $1"
            )))
            .bind(uid)
            .fetch_optional(self.conn())
            .await
            .map_err(backend)?;
            found(row, uid)
        }
    }

    /// The sealed secrets of a managed service (for the agent's desired state only).
    fn managed_sealed_secrets(
        &mut self,
        name: &ManagedServiceName,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        async move {
            let sealed: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT sealed_secrets FROM managed_services WHERE tenant = $1 AND project = $2 \
                 AND environment = $3 AND name = $4 AND status <> 'DELETED'",
            )
            .bind(&name.tenant)
            .bind(&name.project)
            .bind(&name.environment)
            .bind(&name.managed_service)
            .fetch_optional(self.conn())
            .await
            .map_err(backend)?;
            sealed.ok_or_else(|| StoreError::NotFound {
                kind: "managed service",
                name: name.to_string(),
            })
        }
    }
}

impl<Q: Queries> ManagedQueries for Q {}

/// A new managed service, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewManaged<'a> {
    /// Its provider's name.
    pub provider: &'a str,
    /// For people.
    pub display_name: &'a str,
    /// Its config.
    pub config: &'a Value,
    /// Its secrets, sealed.
    pub sealed_secrets: &'a [u8],
}

impl Tx {
    /// Creates a managed service (`CREATING`); [`StoreError::AlreadyExists`] if one of that
    /// name exists (deleted ones aside).
    pub async fn managed_create(
        &mut self,
        name: &ManagedServiceName,
        new: NewManaged<'_>,
        actor: Actor<'_>,
    ) -> Result<ManagedService> {
        let env =
            crate::environments::environment_get(&mut self.tx, &name.environment_name()).await?;
        let t = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO managed_services (tenant, project, environment, name, uid, provider, display_name, config, \
               sealed_secrets, status, status_message, generation, details, delete_time, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'CREATING', $10, 1, '{}', NULL, $11, $11, 1)",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(&name.managed_service)
        .bind(new_uid())
        .bind(new.provider)
        .bind(new.display_name)
        .bind(new.config.to_string())
        .bind(new.sealed_secrets)
        .bind(format!("Creating in datacenter {}.", env.datacenter.datacenter))
        .bind(t)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("managed service", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Creating",
            &format!(
                "{} service created by {actor}; creating it in datacenter {}.",
                new.provider, env.datacenter.datacenter
            ),
            actor,
        )
        .await?;
        self.touch_datacenter(&env.datacenter.datacenter).await?;
        get(&mut self.tx, name).await
    }

    /// Applies `action` (not an update with a new config: see [`Tx::managed_update`]) if
    /// the status allows it, bumping the generation so the agent acts on it.
    pub async fn managed_act(
        &mut self,
        name: &ManagedServiceName,
        action: ManagedAction,
        pausable: bool,
        sealed_secrets: Option<&[u8]>,
        actor: Actor<'_>,
    ) -> Result<ManagedService> {
        let current = get(&mut self.tx, name).await?;
        self.managed_transition(&current, action, pausable, None, sealed_secrets, actor)
            .await
    }

    /// Replaces the config (already checked against the provider's schema and update
    /// rules), if the version is still `version` and the status allows an update.
    pub async fn managed_update(
        &mut self,
        name: &ManagedServiceName,
        version: Option<i64>,
        config: &Value,
        actor: Actor<'_>,
    ) -> Result<ManagedService> {
        let current = get(&mut self.tx, name).await?;
        crate::rows::check_version(version, current.meta.version, "managed service", name)?;
        self.managed_transition(
            &current,
            ManagedAction::Update,
            false,
            Some(config),
            None,
            actor,
        )
        .await
    }

    async fn managed_transition(
        &mut self,
        current: &ManagedService,
        action: ManagedAction,
        pausable: bool,
        config: Option<&Value>,
        sealed_secrets: Option<&[u8]>,
        actor: Actor<'_>,
    ) -> Result<ManagedService> {
        let name = &current.name;
        let next =
            decide(current.status, pausable, action).map_err(|e| StoreError::NotAllowed {
                kind: "managed service",
                name: name.to_string(),
                detail: e.to_string(),
            })?;
        let (reason, message) = match action {
            ManagedAction::Update => (
                "Updating",
                format!("Config updated by {actor}; applying it."),
            ),
            ManagedAction::Pause => (
                "Pausing",
                format!("Paused by {actor}: releasing compute, keeping the data."),
            ),
            ManagedAction::Resume => (
                "Resuming",
                format!("Resumed by {actor}: starting again on the same data."),
            ),
            ManagedAction::Delete => (
                "Deleting",
                format!("Deleted by {actor}: removing compute and data."),
            ),
            ManagedAction::ResetSecrets => (
                "SecretsReset",
                format!("Secrets reset by {actor}; clients using the old ones are cut off."),
            ),
        };
        let result = sqlx::query(
            "UPDATE managed_services SET status = $1, status_message = $2, generation = generation + 1, \
               config = COALESCE($3, config), sealed_secrets = COALESCE($4, sealed_secrets), update_time = $5, \
               version = version + 1 \
             WHERE uid = $6 AND version = $7",
        )
        .bind(next.as_str())
        .bind(&message)
        .bind(config.map(Value::to_string))
        .bind(sealed_secrets)
        .bind(Timestamp::now().0)
        .bind(&current.meta.uid)
        .bind(current.meta.version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        crate::rows::expect_one_row(result, "managed service", name)?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            reason,
            &message,
            actor,
        )
        .await?;
        let env =
            crate::environments::environment_get(&mut self.tx, &name.environment_name()).await?;
        self.touch_datacenter(&env.datacenter.datacenter).await?;
        self.notify_datacenter(&env.datacenter.datacenter);
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM managed_services WHERE uid = $1"
        )))
        .bind(&current.meta.uid)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        row.decode()
    }
}

/// The managed services (deleted ones aside) of the environments placed in `dc`, for its
/// desired state.
pub(crate) async fn desired_inputs(
    conn: &mut AnyConnection,
    dc: &str,
) -> Result<Vec<crate::ManagedInput>> {
    #[derive(FromRow)]
    struct InputRow {
        tenant: String,
        project: String,
        environment: String,
        name: String,
        uid: String,
        provider: String,
        generation: i64,
        status: String,
        config: String,
        sealed_secrets: Vec<u8>,
    }
    let rows: Vec<InputRow> = sqlx::query_as(
        "SELECT m.tenant, m.project, m.environment, m.name, m.uid, m.provider, m.generation, m.status, m.config, \
           m.sealed_secrets \
         FROM managed_services m JOIN environments e \
           ON e.tenant = m.tenant AND e.project = m.project AND e.name = m.environment \
         WHERE e.datacenter = $1 AND m.status <> 'DELETED' ORDER BY m.tenant, m.project, m.environment, m.name",
    )
    .bind(dc)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    rows.into_iter()
        .map(|r| {
            let service = ManagedServiceName {
                tenant: r.tenant,
                project: r.project,
                environment: r.environment,
                managed_service: r.name,
            };
            let bad = |what: &str| corrupt(format!("{what} of {service}"));
            Ok(crate::ManagedInput {
                status: ManagedStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
                config: serde_json::from_str(&r.config).map_err(|_| bad("config"))?,
                uid: r.uid,
                provider: r.provider,
                generation: r.generation,
                sealed_secrets: r.sealed_secrets,
                service,
            })
        })
        .collect()
}

/// Whether `name` is a live managed service in an environment placed in `dc`.
pub(crate) async fn in_datacenter(
    conn: &mut AnyConnection,
    name: &ManagedServiceName,
    dc: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM managed_services m JOIN environments e \
           ON e.tenant = m.tenant AND e.project = m.project AND e.name = m.environment \
         WHERE m.tenant = $1 AND m.project = $2 AND m.environment = $3 AND m.name = $4 \
           AND m.status <> 'DELETED' AND e.datacenter = $5",
    )
    .bind(&name.tenant)
    .bind(&name.project)
    .bind(&name.environment)
    .bind(&name.managed_service)
    .bind(dc)
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    Ok(n > 0)
}

impl Tx {
    /// Ends the operation under way if `report` (from `dc`'s agent) is about its
    /// generation and says how it ended, with an event; anything else changes nothing.
    pub(crate) async fn managed_on_report(
        &mut self,
        dc: &str,
        report: &ManagedReport,
    ) -> Result<()> {
        let current = get(&mut self.tx, &report.service).await?;
        let Some(next) = on_report(
            current.status,
            current.generation,
            report.generation,
            &report.observation,
        ) else {
            return Ok(());
        };
        let (reason, message) = match (&report.observation, next) {
            (Observation::Failed(why), _) => {
                ("Failed", format!("Failed in datacenter {dc}: {why}"))
            }
            (_, ManagedStatus::Paused) => (
                "Paused",
                "Paused: compute released, the data kept.".to_owned(),
            ),
            (_, ManagedStatus::Deleted) => (
                "Deleted",
                format!(
                    "Deleted: compute and data removed. Listed as recently deleted for {} days; not recoverable.",
                    DELETED_RETENTION_MS / (24 * 3600 * 1000)
                ),
            ),
            _ => (
                "Synchronized",
                format!("Running as configured: {}.", report.message),
            ),
        };
        let t = Timestamp::now().0;
        let details = match next {
            ManagedStatus::Synchronized => Some(Value::Object(report.details.clone()).to_string()),
            ManagedStatus::Deleted => Some("{}".to_owned()),
            _ => None,
        };
        let result = sqlx::query(
            "UPDATE managed_services SET status = $1, status_message = $2, details = COALESCE($3, details), \
               delete_time = $4, update_time = $5, version = version + 1 \
             WHERE uid = $6 AND version = $7",
        )
        .bind(next.as_str())
        .bind(&message)
        .bind(details)
        .bind((next == ManagedStatus::Deleted).then_some(t))
        .bind(t)
        .bind(&current.meta.uid)
        .bind(current.meta.version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        crate::rows::expect_one_row(result, "managed service", &current.name)?;
        let name = current.name.to_string();
        event_add(
            &mut self.tx,
            &current.name.tenant,
            &name,
            reason,
            &message,
            &format!("datacenters/{dc}"),
        )
        .await?;
        if next == ManagedStatus::Deleted {
            // The agent's desired state no longer needs to carry it.
            self.touch_datacenter(dc).await?;
        }
        self.notify_datacenter(dc);
        Ok(())
    }
}
