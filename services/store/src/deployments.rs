//! Deployments and the service lifecycle (DESIGN §5): each action runs the pure decisions of
//! [`outpost_domain::deployment`] and records their effect in one transaction: the
//! deployment row, the service's lifecycle columns, events in words, and a bump of the
//! datacenter's revision whenever what should run changed (which is what reaches the agent).

use outpost_domain::{
    DeploymentName, ServiceName, Timestamp,
    deployment::{
        Completion, Decision, Deployment, DeploymentEvent, DeploymentSpec, DeploymentStatus,
        FailureReason, ServiceAction, ServiceStatus, check_cancel, decide, on_workload,
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
    split_page,
    workloads::service_get as service_get_in,
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
        let current = service_get_in(&mut self.tx, service).await?;
        let r = &current.rollout;
        let decision = decide(r.status, r.live_deployment > 0, action).map_err(|e| {
            StoreError::NotAllowed {
                kind: "service",
                name: service.to_string(),
                detail: e.to_string(),
            }
        })?;
        if decision == Decision::StartDeployment && r.live_deployment > 0 && !r.stopped {
            let live = deployment_get(&mut self.tx, service, r.live_deployment).await?;
            if live.spec.same_workload(&spec) {
                let message = format!(
                    "Nothing to deploy: the spec equals deployment {}, which is live; nothing was restarted.",
                    live.name.deployment
                );
                event_add(
                    &mut self.tx,
                    &service.tenant,
                    &service.to_string(),
                    "NoChanges",
                    &message,
                    actor,
                )
                .await?;
                return Ok(DeployOutcome {
                    deployment: live,
                    changed: false,
                });
            }
        }
        let number = self
            .deployment_insert(service, action, &spec, origin, actor)
            .await?;
        let what = match action {
            ServiceAction::Rollback => format!("rolling back to {origin}"),
            ServiceAction::Promote => format!("promoting {origin}"),
            _ => format!("{} {}", action.verb(), deployment_source(&spec)),
        };
        if decision == Decision::QueueDeployment {
            event_add(
                &mut self.tx,
                &service.tenant,
                &service.to_string(),
                "DeploymentQueued",
                &format!(
                    "Deployment {number} ({what}) by {actor} is queued: the service is {}; it starts when that finishes.",
                    r.status
                ),
                actor,
            )
            .await?;
        } else {
            event_add(
                &mut self.tx,
                &service.tenant,
                &service.to_string(),
                "DeploymentCreated",
                &format!("Deployment {number} ({what}) by {actor}."),
                actor,
            )
            .await?;
            self.deployment_start(&current, number).await?;
        }
        Ok(DeployOutcome {
            deployment: deployment_get(&mut self.tx, service, number).await?,
            changed: true,
        })
    }

    async fn deployment_insert(
        &mut self,
        service: &ServiceName,
        action: ServiceAction,
        spec: &DeploymentSpec,
        origin: &str,
        actor: Actor<'_>,
    ) -> Result<i64> {
        sqlx::query(
            "UPDATE services SET deployment_count = deployment_count + 1 \
             WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        let number: i64 = sqlx::query_scalar(
            "SELECT deployment_count FROM services \
             WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4",
        )
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .fetch_one(&mut *self.tx)
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
        Ok(number)
    }

    /// Starts queued deployment `number` of `service` (whose row is `service`): it builds
    /// first when it has no image yet, otherwise it rolls out at a new generation.
    async fn deployment_start(&mut self, service: &Service, number: i64) -> Result<()> {
        let name = &service.name;
        let deployment = deployment_get(&mut self.tx, name, number).await?;
        let needs_build = deployment.spec.image.is_empty();
        let status = deployment
            .status
            .next(DeploymentEvent::Started { needs_build })
            .ok_or_else(|| corrupt(format!("queued status of {}", deployment.name)))?;
        let generation = service.rollout.generation + 1;
        let message = if needs_build {
            "Building the image from source."
        } else {
            "Rolling out; the previous version keeps serving until the new one is healthy."
        };
        self.deployment_set(
            name,
            number,
            status,
            None,
            message,
            if needs_build { 0 } else { generation },
        )
        .await?;
        // A build leaves the workload as it is until there is an image (the agent learns
        // of the build from the new revision all the same).
        let (service_generation, stopped) = if needs_build {
            (service.rollout.generation, None)
        } else {
            (generation, Some(false))
        };
        self.rollout_set(
            name,
            ServiceStatus::of_deployment(status),
            &format!("Deployment {number}: {message}"),
            service_generation,
            RolloutPointers {
                live: service.rollout.live_deployment,
                current: number,
            },
            stopped,
            None,
        )
        .await?;
        // From the first deployment on, the environment's datacenter is fixed.
        self.environment_mark_deployed(&name.environment_name(), Timestamp::now())
            .await?;
        self.touch_service(name).await
    }

    /// Ends the build of deployment `outcome.deployment`, if it is the one building: with
    /// an image it rolls out; without, it ends `BUILD_ERROR` and the live version serves on.
    pub(crate) async fn lifecycle_on_build(&mut self, outcome: &BuildOutcome) -> Result<()> {
        let name = &outcome.service;
        let service = service_get_in(&mut self.tx, name).await?;
        let r = service.rollout.clone();
        if r.status != ServiceStatus::Building || r.current_deployment != outcome.deployment {
            // A late or repeated report of a build that is no longer current.
            return Ok(());
        }
        let number = outcome.deployment;
        let deployment = deployment_get(&mut self.tx, name, number).await?;
        match &outcome.image {
            Some(image) => {
                let mut spec = deployment.spec.clone();
                spec.image.clone_from(image);
                let spec_json =
                    serde_json::to_string(&spec).map_err(|_| corrupt("deployment spec"))?;
                sqlx::query(
                    "UPDATE deployments SET spec = $1 \
                     WHERE tenant = $2 AND project = $3 AND environment = $4 AND service = $5 AND number = $6",
                )
                .bind(spec_json)
                .bind(&name.tenant)
                .bind(&name.project)
                .bind(&name.environment)
                .bind(&name.service)
                .bind(number)
                .execute(&mut *self.tx)
                .await
                .map_err(backend)?;
                let generation = r.generation + 1;
                let message = format!(
                    "Built {image}; rolling out, the previous version keeps serving until the new one is healthy."
                );
                self.deployment_set(
                    name,
                    number,
                    DeploymentStatus::Deploying,
                    None,
                    &message,
                    generation,
                )
                .await?;
                self.rollout_set(
                    name,
                    ServiceStatus::Deploying,
                    &format!("Deployment {number}: {message}"),
                    generation,
                    RolloutPointers {
                        live: r.live_deployment,
                        current: number,
                    },
                    Some(false),
                    None,
                )
                .await?;
                event_add(
                    &mut self.tx,
                    &name.tenant,
                    &name.to_string(),
                    "DeploymentBuilt",
                    &format!("Deployment {number}: {message}"),
                    SYSTEM,
                )
                .await?;
                self.touch_service(name).await
            }
            None => {
                let previous = if r.live_deployment > 0 {
                    format!("deployment {} keeps serving", r.live_deployment)
                } else {
                    "nothing was serving before".to_owned()
                };
                let message = format!(
                    "Failed: {} ({}); {previous}.",
                    FailureReason::BuildFailed.explain(),
                    outcome.message
                );
                self.deployment_set(
                    name,
                    number,
                    DeploymentStatus::BuildError,
                    Some(FailureReason::BuildFailed),
                    &message,
                    0,
                )
                .await?;
                self.rollout_set(
                    name,
                    ServiceStatus::BuildError,
                    &format!("Deployment {number}: {message}"),
                    r.generation,
                    RolloutPointers {
                        live: r.live_deployment,
                        current: 0,
                    },
                    None,
                    None,
                )
                .await?;
                event_add(
                    &mut self.tx,
                    &name.tenant,
                    &name.to_string(),
                    "DeploymentBuildError",
                    &format!("Deployment {number}: {message}"),
                    SYSTEM,
                )
                .await?;
                // The build leaves the desired state: a new revision.
                self.touch_service(name).await?;
                self.start_next_queued(name).await
            }
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
        let current = service_get_in(&mut self.tx, service).await?;
        let r = &current.rollout;
        decide(r.status, r.live_deployment > 0, action).map_err(|e| StoreError::NotAllowed {
            kind: "service",
            name: service.to_string(),
            detail: e.to_string(),
        })?;
        let pointers = RolloutPointers {
            live: r.live_deployment,
            current: 0,
        };
        let (status, reason, message, stopped, restart) = if action == ServiceAction::Stop {
            (
                ServiceStatus::Stopping,
                "Stopping",
                format!("Stopping (scaling to zero) by {actor}; storage is kept."),
                Some(true),
                None,
            )
        } else {
            (
                ServiceStatus::Restarting,
                "Restarting",
                format!(
                    "Rolling restart by {actor}: pods are replaced one by one, without a config change."
                ),
                None,
                Some(Timestamp::now()),
            )
        };
        self.rollout_set(
            service,
            status,
            &message,
            r.generation + 1,
            pointers,
            stopped,
            restart,
        )
        .await?;
        event_add(
            &mut self.tx,
            &service.tenant,
            &service.to_string(),
            reason,
            &message,
            actor,
        )
        .await?;
        self.touch_service(service).await?;
        service_get_in(&mut self.tx, service).await
    }

    /// Cancels a queued, building or deploying deployment. One under way rolls the service
    /// back to its live version (`CANCELING` until that is done); without a live version the
    /// workload is removed and the cancel is immediate.
    pub async fn deployment_cancel(
        &mut self,
        name: &DeploymentName,
        actor: Actor<'_>,
    ) -> Result<Deployment> {
        let service_name = name.service_name();
        let service = service_get_in(&mut self.tx, &service_name).await?;
        let deployment = deployment_get(&mut self.tx, &service_name, name.number()).await?;
        check_cancel(deployment.status).map_err(|e| StoreError::NotAllowed {
            kind: "deployment",
            name: name.to_string(),
            detail: e.to_string(),
        })?;
        let r = &service.rollout;
        let rollback = r.live_deployment > 0;
        let status = deployment
            .status
            .next(DeploymentEvent::CancelRequested { rollback })
            .ok_or_else(|| corrupt(format!("status of {name}")))?;
        let message = match status {
            DeploymentStatus::Canceling => format!(
                "Canceled by {actor}; rolling back to deployment {}.",
                r.live_deployment
            ),
            _ => format!("Canceled by {actor}."),
        };
        let under_way = deployment.status != DeploymentStatus::Queued;
        self.deployment_set(
            &service_name,
            name.number(),
            status,
            None,
            &message,
            deployment.generation,
        )
        .await?;
        event_add(
            &mut self.tx,
            &service_name.tenant,
            &service_name.to_string(),
            "DeploymentCanceled",
            &format!("Deployment {}: {message}", name.deployment),
            actor,
        )
        .await?;
        if under_way {
            let (service_status, current) = if status == DeploymentStatus::Canceling {
                (ServiceStatus::Canceling, name.number())
            } else {
                (ServiceStatus::Canceled, 0)
            };
            self.rollout_set(
                &service_name,
                service_status,
                &format!("Deployment {}: {message}", name.deployment),
                r.generation + 1,
                RolloutPointers {
                    live: r.live_deployment,
                    current,
                },
                None,
                None,
            )
            .await?;
            self.touch_service(&service_name).await?;
            if current == 0 {
                self.start_next_queued(&service_name).await?;
            }
        }
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
        let current = service_get_in(&mut self.tx, service).await?;
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
        self.secrets_changed(&current, &format!("Secret {name} set by {actor}"), actor)
            .await
    }

    /// Deletes a secret; [`StoreError::NotFound`] if it does not exist.
    pub async fn secret_delete(
        &mut self,
        service: &ServiceName,
        name: &str,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let current = service_get_in(&mut self.tx, service).await?;
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
        self.secrets_changed(
            &current,
            &format!("Secret {name} deleted by {actor}"),
            actor,
        )
        .await
    }

    /// After a secret change: a running service restarts (pods read secrets at start); one
    /// under way picks the change up in its rollout; one not running gets it when it runs.
    async fn secrets_changed(
        &mut self,
        service: &Service,
        what: &str,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let name = &service.name;
        let r = &service.rollout;
        let running = r.live_deployment > 0 && !r.stopped && !r.status.in_progress();
        let message = if running {
            self.rollout_set(
                name,
                ServiceStatus::Restarting,
                &format!("{what}; rolling restart so the pods see it."),
                r.generation + 1,
                RolloutPointers {
                    live: r.live_deployment,
                    current: 0,
                },
                None,
                Some(Timestamp::now()),
            )
            .await?;
            format!("{what}; rolling restart so the pods see it.")
        } else if r.status.in_progress() {
            // The rollout under way applies it: bump the generation it waits for.
            self.rollout_set(
                name,
                r.status,
                &r.message,
                r.generation + 1,
                RolloutPointers {
                    live: r.live_deployment,
                    current: r.current_deployment,
                },
                None,
                Some(Timestamp::now()),
            )
            .await?;
            if r.current_deployment > 0 {
                sqlx::query(
                    "UPDATE deployments SET generation = $1 WHERE tenant = $2 AND project = $3 \
                     AND environment = $4 AND service = $5 AND number = $6 AND generation > 0",
                )
                .bind(r.generation + 1)
                .bind(&name.tenant)
                .bind(&name.project)
                .bind(&name.environment)
                .bind(&name.service)
                .bind(r.current_deployment)
                .execute(&mut *self.tx)
                .await
                .map_err(backend)?;
            }
            format!("{what}; the {} under way applies it.", r.status)
        } else {
            format!("{what}; it applies when the service next runs.")
        };
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "SecretChanged",
            &message,
            actor,
        )
        .await?;
        self.touch_service(name).await?;
        service_get_in(&mut self.tx, name).await
    }

    /// Ends the operation a report completes, if it completes one (see
    /// [`outpost_domain::deployment::on_workload`]). Runs inside the report's transaction.
    pub(crate) async fn lifecycle_on_report(&mut self, report: &WorkloadStatus) -> Result<()> {
        let name = &report.service;
        let service = service_get_in(&mut self.tx, name).await?;
        let r = service.rollout.clone();
        let outcome = report.outcome();
        let Some(completion) = on_workload(r.status, r.generation, report.generation, &outcome)
        else {
            return Ok(());
        };
        let reason = match outcome {
            outpost_domain::deployment::WorkloadOutcome::Failed(reason) => Some(reason),
            _ => None,
        };
        match completion {
            Completion::Deployment(event, service_status) => {
                let number = r.current_deployment;
                let deployment = deployment_get(&mut self.tx, name, number).await?;
                let Some(status) = deployment.status.next(event) else {
                    return Ok(());
                };
                let (message, live, generation, reason) = match status {
                    DeploymentStatus::Deployed => (
                        format!("Deployed: {}.", report.message),
                        number,
                        r.generation,
                        None,
                    ),
                    DeploymentStatus::DeploymentError => {
                        let why = reason.unwrap_or(FailureReason::TimedOut);
                        let previous = if r.live_deployment > 0 {
                            format!("deployment {} keeps serving", r.live_deployment)
                        } else {
                            "nothing was serving before".to_owned()
                        };
                        (
                            format!(
                                "Failed: {} ({}); the rollout was aborted and {previous}.",
                                why.explain(),
                                report.message
                            ),
                            r.live_deployment,
                            // Back to the live spec, at a new generation.
                            r.generation + 1,
                            Some(why),
                        )
                    }
                    _ => (
                        format!(
                            "Canceled; deployment {} is serving again.",
                            r.live_deployment
                        ),
                        r.live_deployment,
                        r.generation,
                        None,
                    ),
                };
                self.deployment_set(
                    name,
                    number,
                    status,
                    reason,
                    &message,
                    deployment.generation,
                )
                .await?;
                self.rollout_set(
                    name,
                    service_status,
                    &format!("Deployment {number}: {message}"),
                    generation,
                    RolloutPointers { live, current: 0 },
                    None,
                    None,
                )
                .await?;
                event_add(
                    &mut self.tx,
                    &name.tenant,
                    &name.to_string(),
                    &format!("Deployment{}", camel(status.as_str())),
                    &format!("Deployment {number}: {message}"),
                    SYSTEM,
                )
                .await?;
                if generation != r.generation {
                    self.touch_service(name).await?;
                } else {
                    self.notify_service(name).await?;
                }
            }
            Completion::Service(status) => {
                let message = match (status, reason) {
                    (ServiceStatus::Stopped, _) => "Stopped; storage is kept.".to_owned(),
                    (ServiceStatus::Restarted, _) => {
                        format!("Restarted: {}.", report.message)
                    }
                    (_, why) => format!(
                        "Restart failed: {} ({}); the pods that were ready keep serving.",
                        why.unwrap_or(FailureReason::TimedOut).explain(),
                        report.message
                    ),
                };
                self.rollout_set(
                    name,
                    status,
                    &message,
                    r.generation,
                    RolloutPointers {
                        live: r.live_deployment,
                        current: 0,
                    },
                    None,
                    None,
                )
                .await?;
                event_add(
                    &mut self.tx,
                    &name.tenant,
                    &name.to_string(),
                    &camel(status.as_str()),
                    &message,
                    SYSTEM,
                )
                .await?;
                self.notify_service(name).await?;
            }
        }
        self.start_next_queued(name).await
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
        number: i64,
        status: DeploymentStatus,
        reason: Option<FailureReason>,
        message: &str,
        generation: i64,
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
        .bind(number)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "UPDATE deployments SET status = $1, reason = $2, message = $3, generation = $4, update_time = $5, \
               end_time = $6, version = version + 1, history = $12 \
             WHERE tenant = $7 AND project = $8 AND environment = $9 AND service = $10 AND number = $11",
        )
        .bind(status.as_str())
        .bind(reason.map_or("", FailureReason::as_str))
        .bind(message)
        .bind(generation)
        .bind(t)
        .bind(if status.is_final() { t } else { 0 })
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .bind(number)
        .bind(history_append(&history, status, t))
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    #[expect(clippy::too_many_arguments, reason = "one row's lifecycle columns")]
    async fn rollout_set(
        &mut self,
        service: &ServiceName,
        status: ServiceStatus,
        message: &str,
        generation: i64,
        pointers: RolloutPointers,
        stopped: Option<bool>,
        restart_time: Option<Timestamp>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE services SET status = $1, status_message = $2, generation = $3, live_deployment = $4, \
               current_deployment = $5, stopped = COALESCE($6, stopped), restart_time = COALESCE($7, restart_time) \
             WHERE tenant = $8 AND project = $9 AND environment = $10 AND name = $11",
        )
        .bind(status.as_str())
        .bind(message)
        .bind(generation)
        .bind(pointers.live)
        .bind(pointers.current)
        .bind(stopped.map(i64::from))
        .bind(restart_time.map(|t| t.0))
        .bind(&service.tenant)
        .bind(&service.project)
        .bind(&service.environment)
        .bind(&service.service)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// What should run changed: bump the service's datacenter revision.
    async fn touch_service(&mut self, name: &ServiceName) -> Result<()> {
        let dc = service_datacenter(&mut self.tx, name).await?;
        self.touch_datacenter(&dc).await
    }

    /// Only the lifecycle moved: tell watchers, without a new desired state.
    async fn notify_service(&mut self, name: &ServiceName) -> Result<()> {
        let dc = service_datacenter(&mut self.tx, name).await?;
        self.notify_datacenter(&dc);
        Ok(())
    }
}

/// Which deployments a service points at.
#[derive(Debug, Clone, Copy)]
struct RolloutPointers {
    live: i64,
    current: i64,
}

async fn service_datacenter(conn: &mut AnyConnection, name: &ServiceName) -> Result<String> {
    sqlx::query_scalar(
        "SELECT datacenter FROM environments WHERE tenant = $1 AND project = $2 AND name = $3",
    )
    .bind(&name.tenant)
    .bind(&name.project)
    .bind(&name.environment)
    .fetch_optional(conn)
    .await
    .map_err(backend)?
    .ok_or_else(|| StoreError::NotFound {
        kind: "environment",
        name: name.environment_name().to_string(),
    })
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

/// `DEPLOYMENT_ERROR` → `DeploymentError`, for event reasons.
fn camel(upper_snake: &str) -> String {
    upper_snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

/// The source of a deployment, in words.
fn deployment_source(spec: &DeploymentSpec) -> String {
    match &spec.service.source {
        outpost_domain::resources::Source::Git(g) => format!("git {}", g.url),
        outpost_domain::resources::Source::Image(image) => image.clone(),
        outpost_domain::resources::Source::Unset => "nothing".to_owned(),
    }
}
