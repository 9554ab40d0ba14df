//! Deployments and the service lifecycle (DESIGN §5): each action reads the service, asks a
//! planner of [`outpost_domain::lifecycle`] what to do, and writes the [`Effects`] it returns
//! in one transaction: the deployment row, the service's lifecycle columns, the event in
//! words, and a bump of the datacenter's revision whenever what should run changed (which is
//! what reaches the agent).

use outpost_domain::{
    DeploymentName, ServiceName, Timestamp,
    deployment::{DeploymentStatus, FailureReason, ServiceAction},
    lifecycle::{
        DeployPlan, Deployment, DeploymentChange, DeploymentSpec, Effects, Event, Publish,
        RolloutChange, plan_build, plan_cancel, plan_deploy, plan_operation, plan_report,
        plan_secret_change, plan_start,
    },
    observed::{BuildOutcome, WorkloadStatus},
    resources::Service,
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, corrupt},
    services::service_get as service_get_in,
    split_page,
};

/// The actor of changes the lifecycle makes by itself (a report, a queue moving on).
const SYSTEM: &str = "outpost";

pub(crate) fn decode_deployment_spec(json: &str, service: &ServiceName) -> Result<DeploymentSpec> {
    serde_json::from_str(json).map_err(|_| corrupt(format!("deployment spec of {service}")))
}

#[derive(FromRow)]
struct DeploymentRow {
    number: i64,
    kind: String,
    origin: String,
    spec: String,
    status: String,
    reason: String,
    message: String,
    generation: i64,
    history: String,
    actor: String,
    end_time: i64,
    #[sqlx(flatten)]
    meta: MetaRow,
}

const DEPLOYMENT_COLUMNS: &str = "number, kind, origin, spec, status, reason, message, generation, history, actor, \
                                  end_time, uid, create_time, update_time, version";

impl DeploymentRow {
    fn decode(self, service: &ServiceName) -> Result<Deployment> {
        let name = DeploymentName::new(service, self.number);
        let bad = |what: &str| corrupt(format!("{what} of {name}"));
        Ok(Deployment {
            kind: ServiceAction::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            spec: decode_deployment_spec(&self.spec, service)?,
            status: DeploymentStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            reason: if self.reason.is_empty() {
                None
            } else {
                Some(FailureReason::parse(&self.reason).ok_or_else(|| bad("reason"))?)
            },
            history: serde_json::from_str::<Vec<(String, i64)>>(&self.history)
                .map_err(|_| bad("history"))?
                .into_iter()
                .map(|(status, at)| {
                    Ok((
                        DeploymentStatus::parse(&status).ok_or_else(|| bad("history"))?,
                        Timestamp(at),
                    ))
                })
                .collect::<Result<_>>()?,
            origin: self.origin,
            message: self.message,
            generation: self.generation,
            actor: self.actor,
            end_time: (self.end_time > 0).then_some(Timestamp(self.end_time)),
            meta: self.meta.into(),
            name,
        })
    }
}

async fn deployment_get(
    conn: &mut AnyConnection,
    service: &ServiceName,
    number: i64,
) -> Result<Deployment> {
    let row: Option<DeploymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
         WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4 AND number = $5"
    )))
    .bind(&service.tenant)
    .bind(&service.project)
    .bind(&service.environment)
    .bind(&service.service)
    .bind(number)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.ok_or_else(|| StoreError::NotFound {
        kind: "deployment",
        name: DeploymentName::new(service, number).to_string(),
    })?
    .decode(service)
}

/// Reads on deployments and secrets.
pub trait DeploymentQueries: Queries {
    /// One deployment. [`StoreError::NotFound`] if absent.
    fn deployment_get(
        &mut self,
        name: &DeploymentName,
    ) -> impl Future<Output = Result<Deployment>> + Send {
        async move { deployment_get(self.conn(), &name.service_name(), name.number()).await }
    }

    /// A service's deployments, newest first. [`StoreError::NotFound`] if the service does
    /// not exist.
    fn deployment_list(
        &mut self,
        service: &ServiceName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Deployment>>> + Send {
        async move {
            service_get_in(self.conn(), service).await?;
            let after: i64 = match &page.after {
                Some(a) => a.parse().map_err(|_| StoreError::InvalidPageToken)?,
                None => i64::MAX,
            };
            let rows: Vec<DeploymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
                 WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4 AND number < $5 \
                 ORDER BY number DESC LIMIT $6"
            )))
            .bind(&service.tenant)
            .bind(&service.project)
            .bind(&service.environment)
            .bind(&service.service)
            .bind(after)
            .bind(fetch_limit(page))
            .fetch_all(self.conn())
            .await
            .map_err(backend)?;
            let items = rows
                .into_iter()
                .map(|r| r.decode(service))
                .collect::<Result<Vec<_>>>()?;
            Ok(split_page(items, page.limit, |d| d.name.deployment.clone()))
        }
    }

    /// The names of a service's secrets and when each was last set, by name (values are
    /// never read back out through the API).
    fn secret_names(
        &mut self,
        service: &ServiceName,
    ) -> impl Future<Output = Result<Vec<(String, Timestamp)>>> + Send {
        async move {
            service_get_in(self.conn(), service).await?;
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT name, update_time FROM service_secrets \
                 WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4 ORDER BY name",
            )
            .bind(&service.tenant)
            .bind(&service.project)
            .bind(&service.environment)
            .bind(&service.service)
            .fetch_all(self.conn())
            .await
            .map_err(backend)?;
            Ok(rows.into_iter().map(|(n, t)| (n, Timestamp(t))).collect())
        }
    }
}

impl<Q: Queries> DeploymentQueries for Q {}

/// What a deploy call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    /// The new deployment, or the live one when nothing would change.
    pub deployment: Deployment,
    /// False when the spec equals what already runs, so nothing was deployed or restarted.
    pub changed: bool,
}

impl Tx {
    /// Deploys `spec` to `service` as `action` (deploy, redeploy, rollback or promote;
    /// `origin` names the deployment copied by the latter two). Starts at once, or queues
    /// behind the operation under way. Deploying exactly what runs already changes nothing
    /// and answers with the live deployment. The action must be allowed in the service's
    /// status ([`StoreError::NotAllowed`] otherwise).
    pub async fn service_deploy(
        &mut self,
        service: &ServiceName,
        action: ServiceAction,
        spec: DeploymentSpec,
        origin: &str,
        actor: Actor<'_>,
    ) -> Result<DeployOutcome> {
        let current = self.service_locked(service).await?;
        let live = self
            .deployment_numbered(service, current.rollout.live_deployment)
            .await?;
        let number = deployment_count(&mut self.tx, service).await? + 1;
        let plan = plan_deploy(
            &current,
            live.as_ref(),
            action,
            &spec,
            origin,
            actor,
            number,
        )
        .map_err(|e| not_allowed("service", service, e))?;
        match (plan, live) {
            (DeployPlan::Unchanged(event), Some(live)) => {
                self.event(service, &event, actor).await?;
                Ok(DeployOutcome {
                    deployment: live,
                    changed: false,
                })
            }
            (DeployPlan::Create { event, start }, _) => {
                self.deployment_insert(service, number, action, &spec, origin, actor)
                    .await?;
                self.event(service, &event, actor).await?;
                if start {
                    self.deployment_start(&current, number).await?;
                }
                Ok(DeployOutcome {
                    deployment: deployment_get(&mut self.tx, service, number).await?,
                    changed: true,
                })
            }
            (DeployPlan::Unchanged(_), None) => {
                Err(corrupt(format!("live deployment of {service}")))
            }
        }
    }

    async fn deployment_insert(
        &mut self,
        service: &ServiceName,
        number: i64,
        action: ServiceAction,
        spec: &DeploymentSpec,
        origin: &str,
        actor: Actor<'_>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE services SET deployment_count = $1 \
             WHERE tenant = $2 AND project = $3 AND environment = $4 AND name = $5",
        )
        .bind(number)
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        let spec_json = serde_json::to_string(spec).map_err(|_| corrupt("deployment spec"))?;
        let t = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO deployments (tenant, project, environment, service, number, uid, kind, origin, spec, \
               status, reason, message, generation, history, actor, create_time, update_time, end_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11, 0, $14, $12, $13, $13, 0, 1)",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(number)
        .bind(new_uid())
        .bind(action.as_str())
        .bind(origin)
        .bind(spec_json)
        .bind(DeploymentStatus::Queued.as_str())
        .bind("Waiting for its turn.")
        .bind(actor)
        .bind(t)
        .bind(history_append("[]", DeploymentStatus::Queued, t))
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("deployment", DeploymentName::new(service, number)))?;
        Ok(())
    }

    /// Starts queued deployment `number` of `service` (whose row is `service`).
    async fn deployment_start(&mut self, service: &Service, number: i64) -> Result<()> {
        let deployment = deployment_get(&mut self.tx, &service.name, number).await?;
        let effects = plan_start(service, &deployment)
            .ok_or_else(|| corrupt(format!("queued status of {}", deployment.name)))?;
        self.apply(&service.name, &effects, SYSTEM).await
    }

    /// Ends the build `outcome` reports, if it is the one under way.
    pub(crate) async fn lifecycle_on_build(&mut self, outcome: &BuildOutcome) -> Result<()> {
        let service = service_get_in(&mut self.tx, &outcome.service).await?;
        let current = self
            .deployment_numbered(&service.name, service.rollout.current_deployment)
            .await?;
        match plan_build(&service, current.as_ref(), outcome) {
            Some(effects) => self.settle(&service.name, &effects, SYSTEM).await,
            None => Ok(()),
        }
    }

    /// Scales a running service to zero, keeping its storage.
    pub async fn service_stop(
        &mut self,
        service: &ServiceName,
        actor: Actor<'_>,
    ) -> Result<Service> {
        self.service_operation(service, ServiceAction::Stop, actor)
            .await
    }

    /// Rolls a running service's pods without changing its spec.
    pub async fn service_restart(
        &mut self,
        service: &ServiceName,
        actor: Actor<'_>,
    ) -> Result<Service> {
        self.service_operation(service, ServiceAction::Restart, actor)
            .await
    }

    async fn service_operation(
        &mut self,
        service: &ServiceName,
        action: ServiceAction,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let current = self.service_locked(service).await?;
        let effects = plan_operation(&current, action, actor)
            .map_err(|e| not_allowed("service", service, e))?;
        self.settle(service, &effects, actor).await?;
        service_get_in(&mut self.tx, service).await
    }

    /// Cancels a queued, building or deploying deployment (see
    /// [`outpost_domain::lifecycle::plan_cancel`]).
    pub async fn deployment_cancel(
        &mut self,
        name: &DeploymentName,
        actor: Actor<'_>,
    ) -> Result<Deployment> {
        let service_name = name.service_name();
        let service = self.service_locked(&service_name).await?;
        let deployment = deployment_get(&mut self.tx, &service_name, name.number()).await?;
        let effects = plan_cancel(&service, &deployment, actor)
            .map_err(|e| not_allowed("deployment", name, e))?;
        self.settle(&service_name, &effects, actor).await?;
        deployment_get(&mut self.tx, &service_name, name.number()).await
    }

    /// Sets (creates or replaces) a secret, sealed by the caller. A running service gets a
    /// rolling restart so its pods see the new value.
    pub async fn secret_set(
        &mut self,
        service: &ServiceName,
        name: &str,
        sealed: &[u8],
        actor: Actor<'_>,
    ) -> Result<Service> {
        let current = self.service_locked(service).await?;
        let t = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO service_secrets (tenant, project, environment, service, name, sealed, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant, project, environment, service, name) DO UPDATE SET sealed = $6, update_time = $7",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(name)
        .bind(sealed)
        .bind(t)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        let effects = plan_secret_change(&current, &format!("Secret {name} set by {actor}"));
        self.settle(service, &effects, actor).await?;
        service_get_in(&mut self.tx, service).await
    }

    /// Deletes a secret; [`StoreError::NotFound`] if it does not exist.
    pub async fn secret_delete(
        &mut self,
        service: &ServiceName,
        name: &str,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let current = self.service_locked(service).await?;
        let deleted = sqlx::query(
            "DELETE FROM service_secrets WHERE tenant = $1 AND project = $2 AND environment = $3 \
             AND service = $4 AND name = $5",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(name)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "secret",
                name: service.secret_name(name),
            });
        }
        let effects = plan_secret_change(&current, &format!("Secret {name} deleted by {actor}"));
        self.settle(service, &effects, actor).await?;
        service_get_in(&mut self.tx, service).await
    }

    /// Ends the operation a report completes, if it completes one. Runs inside the report's
    /// transaction.
    pub(crate) async fn lifecycle_on_report(&mut self, report: &WorkloadStatus) -> Result<()> {
        let service = service_get_in(&mut self.tx, &report.service).await?;
        let r = &service.rollout;
        // Only an operation under way can end; most reports are of settled services.
        if !r.status.in_progress() {
            return Ok(());
        }
        let current = self
            .deployment_numbered(&service.name, r.current_deployment)
            .await?;
        match plan_report(&service, current.as_ref(), report) {
            Some(effects) => self.settle(&service.name, &effects, SYSTEM).await,
            None => Ok(()),
        }
    }

    /// The service's row, locked for this transaction: concurrent lifecycle calls on one
    /// service (on PostgreSQL, from other connections) wait instead of deciding on the same
    /// status. A no-op update is the lock both backends understand.
    async fn service_locked(&mut self, name: &ServiceName) -> Result<Service> {
        sqlx::query(
            "UPDATE services SET deployment_count = deployment_count \
             WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(&name.service)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        service_get_in(&mut self.tx, name).await
    }

    /// Deployment `number` of `service`, or `None` for 0 (a rollout pointer that points
    /// nowhere).
    async fn deployment_numbered(
        &mut self,
        service: &ServiceName,
        number: i64,
    ) -> Result<Option<Deployment>> {
        if number == 0 {
            return Ok(None);
        }
        deployment_get(&mut self.tx, service, number)
            .await
            .map(Some)
    }

    /// Writes `effects` to `service`, then starts the next queued deployment when they say
    /// nothing is under way any more.
    async fn settle(
        &mut self,
        service: &ServiceName,
        effects: &Effects,
        actor: Actor<'_>,
    ) -> Result<()> {
        self.apply(service, effects, actor).await?;
        if effects.start_next {
            self.start_next_queued(service).await?;
        }
        Ok(())
    }

    /// Writes `effects` to `service`'s rows in the order they list, with `actor` on the
    /// event.
    async fn apply(
        &mut self,
        service: &ServiceName,
        effects: &Effects,
        actor: Actor<'_>,
    ) -> Result<()> {
        if let Some(change) = &effects.deployment {
            self.deployment_set(service, change).await?;
        }
        if let Some((number, generation)) = effects.current_generation {
            sqlx::query(
                "UPDATE deployments SET generation = $1 WHERE tenant = $2 AND project = $3 \
                 AND environment = $4 AND service = $5 AND number = $6 AND generation > 0",
            )
            .bind(generation)
            .bind(&service.tenant)
            .bind(&service.project)
            .bind(&service.environment)
            .bind(&service.service)
            .bind(number)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        }
        if let Some(change) = &effects.rollout {
            self.rollout_set(service, change).await?;
        }
        if effects.environment_deployed {
            // From the first deployment on, the environment's datacenter is fixed.
            self.environment_mark_deployed(&service.environment_name(), Timestamp::now())
                .await?;
        }
        if let Some(event) = &effects.event {
            self.event(service, event, actor).await?;
        }
        if let Some(publish) = effects.publish {
            let dc = crate::lookups::service_datacenter(&mut self.tx, service).await?;
            match publish {
                Publish::Revision => self.touch_datacenter(&dc).await?,
                Publish::Watchers => self.notify_datacenter(&dc),
            }
        }
        Ok(())
    }

    async fn event(
        &mut self,
        service: &ServiceName,
        event: &Event,
        actor: Actor<'_>,
    ) -> Result<()> {
        event_add(
            &mut self.tx,
            &service.tenant,
            &service.to_string(),
            &event.reason,
            &event.message,
            actor,
        )
        .await
    }

    /// Starts the oldest queued deployment, if any, now that nothing is under way.
    async fn start_next_queued(&mut self, name: &ServiceName) -> Result<()> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(number) FROM deployments WHERE tenant = $1 AND project = $2 AND environment = $3 \
             AND service = $4 AND status = 'QUEUED'",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(&name.service)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        if let Some(number) = next {
            let service = service_get_in(&mut self.tx, name).await?;
            event_add(
                &mut self.tx,
                &name.tenant,
                &name.to_string(),
                "DeploymentStarted",
                &format!("Deployment {number} starts: the operation before it finished."),
                SYSTEM,
            )
            .await?;
            self.deployment_start(&service, number).await?;
        }
        Ok(())
    }

    async fn deployment_set(
        &mut self,
        service: &ServiceName,
        change: &DeploymentChange,
    ) -> Result<()> {
        let t = Timestamp::now().0;
        let history: String = sqlx::query_scalar(
            "SELECT history FROM deployments \
             WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4 AND number = $5",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(change.number)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        let spec = change
            .spec
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| corrupt("deployment spec"))?;
        sqlx::query(
            "UPDATE deployments SET status = $1, reason = $2, message = $3, generation = $4, update_time = $5, \
               end_time = $6, version = version + 1, history = $12, spec = COALESCE($13, spec) \
             WHERE tenant = $7 AND project = $8 AND environment = $9 AND service = $10 AND number = $11",
        )
        .bind(change.status.as_str())
        .bind(change.reason.map_or("", FailureReason::as_str))
        .bind(&change.message)
        .bind(change.generation)
        .bind(t)
        .bind(if change.status.is_final() { t } else { 0 })
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(change.number)
        .bind(history_append(&history, change.status, t))
        .bind(spec)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn rollout_set(&mut self, service: &ServiceName, change: &RolloutChange) -> Result<()> {
        sqlx::query(
            "UPDATE services SET status = $1, status_message = $2, generation = $3, live_deployment = $4, \
               current_deployment = $5, stopped = COALESCE($6, stopped), restart_time = COALESCE($7, restart_time) \
             WHERE tenant = $8 AND project = $9 AND environment = $10 AND name = $11",
        )
        .bind(change.status.as_str())
        .bind(&change.message)
        .bind(change.generation)
        .bind(change.live_deployment)
        .bind(change.current_deployment)
        .bind(change.stopped.map(i64::from))
        .bind(change.restart.then(|| Timestamp::now().0))
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

/// A lifecycle refusal as the store's error about `kind` `name`.
fn not_allowed(kind: &'static str, name: impl ToString, refusal: impl ToString) -> StoreError {
    StoreError::NotAllowed {
        kind,
        name: name.to_string(),
        detail: refusal.to_string(),
    }
}

async fn deployment_count(conn: &mut AnyConnection, service: &ServiceName) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT deployment_count FROM services \
         WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4",
    )
    .bind(&service.tenant)
    .bind(&service.project)
    .bind(&service.environment)
    .bind(&service.service)
    .fetch_one(conn)
    .await
    .map_err(backend)
}

/// `history` (JSON) with `status` entered at `at` appended; a repeated status (a secret
/// change during a rollout re-setting it) is not a new step.
fn history_append(history: &str, status: DeploymentStatus, at: i64) -> String {
    let mut steps: Vec<(String, i64)> = serde_json::from_str(history).unwrap_or_default();
    if steps.last().map(|(s, _)| s.as_str()) != Some(status.as_str()) {
        steps.push((status.as_str().to_owned(), at));
    }
    serde_json::to_string(&steps).unwrap_or_else(|_| "[]".to_owned())
}
