//! What tenants run: projects, their environments, and the services in them.

use outpost_domain::{
    DatacenterName, EnvironmentName, ProjectName, ServiceName, TenantName, Timestamp,
    resources::{DEFAULT_ENVIRONMENTS, Environment, Project, Service, ServiceSpec},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    platform::PlatformQueries,
    records::event_add,
    rows::{
        MetaRow, RolloutRow, check_version, datacenter_ref, decode_spec, encode_spec,
        expect_one_row,
    },
    split_page,
};

#[derive(FromRow)]
struct ProjectRow {
    tenant: String,
    name: String,
    display_name: String,
    default_datacenter: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<ProjectRow> for Project {
    fn from(r: ProjectRow) -> Self {
        Project {
            name: ProjectName {
                tenant: r.tenant,
                project: r.name,
            },
            display_name: r.display_name,
            default_datacenter: datacenter_ref(&r.default_datacenter),
            meta: r.meta.into(),
        }
    }
}

macro_rules! project_columns {
    () => {
        "tenant, name, display_name, default_datacenter, uid, create_time, update_time, version"
    };
}

async fn project_get(conn: &mut AnyConnection, name: &ProjectName) -> Result<Project> {
    let row: Option<ProjectRow> = sqlx::query_as(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE tenant = $1 AND name = $2"
    ))
    .bind(&name.tenant)
    .bind(&name.project)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(Project::from).ok_or_else(|| StoreError::NotFound {
        kind: "project",
        name: name.to_string(),
    })
}

async fn project_list(
    conn: &mut AnyConnection,
    tenant: &TenantName,
    page: &PageRequest,
) -> Result<Page<Project>> {
    let rows: Vec<ProjectRow> = sqlx::query_as(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE tenant = $1 AND name > $2 ORDER BY name LIMIT $3"
    ))
    .bind(&tenant.tenant)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(Project::from).collect(),
        page.limit,
        |p| p.name.project.clone(),
    ))
}

#[derive(FromRow)]
struct EnvironmentRow {
    tenant: String,
    project: String,
    name: String,
    display_name: String,
    datacenter: String,
    first_deploy_time: Option<i64>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<EnvironmentRow> for Environment {
    fn from(r: EnvironmentRow) -> Self {
        Environment {
            name: EnvironmentName {
                tenant: r.tenant,
                project: r.project,
                environment: r.name,
            },
            display_name: r.display_name,
            datacenter: datacenter_ref(&r.datacenter),
            first_deploy_time: r.first_deploy_time.map(Timestamp),
            meta: r.meta.into(),
        }
    }
}

macro_rules! environment_columns {
    () => {
        "tenant, project, name, display_name, datacenter, first_deploy_time, uid, create_time, update_time, version"
    };
}

pub(crate) async fn environment_get(
    conn: &mut AnyConnection,
    name: &EnvironmentName,
) -> Result<Environment> {
    let row: Option<EnvironmentRow> = sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments WHERE tenant = $1 AND project = $2 AND name = $3"
    ))
    .bind(&name.tenant)
    .bind(&name.project)
    .bind(&name.environment)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(Environment::from)
        .ok_or_else(|| StoreError::NotFound {
            kind: "environment",
            name: name.to_string(),
        })
}

async fn environment_list(
    conn: &mut AnyConnection,
    project: &ProjectName,
    page: &PageRequest,
) -> Result<Page<Environment>> {
    let rows: Vec<EnvironmentRow> = sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments WHERE tenant = $1 AND project = $2 AND name > $3 \
         ORDER BY name LIMIT $4"
    ))
    .bind(&project.tenant)
    .bind(&project.project)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(Environment::from).collect(),
        page.limit,
        |e| e.name.environment.clone(),
    ))
}

#[derive(FromRow)]
pub(crate) struct ServiceRow {
    tenant: String,
    project: String,
    environment: String,
    name: String,
    spec: String,
    #[sqlx(flatten)]
    rollout: RolloutRow,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl TryFrom<ServiceRow> for Service {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> Result<Self> {
        let name = ServiceName {
            tenant: r.tenant,
            project: r.project,
            environment: r.environment,
            service: r.name,
        };
        let spec = decode_spec(&r.spec, &name.to_string())?;
        Ok(Service {
            rollout: r.rollout.decode(&name)?,
            name,
            spec,
            meta: r.meta.into(),
        })
    }
}

/// The service columns (unqualified, for queries on `services` alone).
macro_rules! service_columns {
    () => {
        "tenant, project, environment, name, spec, status, status_message, generation, live_deployment, \
         current_deployment, stopped, restart_time, uid, create_time, update_time, version"
    };
}

pub(crate) async fn service_get(conn: &mut AnyConnection, name: &ServiceName) -> Result<Service> {
    let row: Option<ServiceRow> = sqlx::query_as(concat!(
        "SELECT ",
        service_columns!(),
        " FROM services WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4"
    ))
    .bind(&name.tenant)
    .bind(&name.project)
    .bind(&name.environment)
    .bind(&name.service)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.ok_or_else(|| StoreError::NotFound {
        kind: "service",
        name: name.to_string(),
    })?
    .try_into()
}

async fn service_list(
    conn: &mut AnyConnection,
    environment: &EnvironmentName,
    page: &PageRequest,
) -> Result<Page<Service>> {
    let rows: Vec<ServiceRow> = sqlx::query_as(concat!(
        "SELECT ",
        service_columns!(),
        " FROM services WHERE tenant = $1 AND project = $2 AND environment = $3 \
         AND name > $4 ORDER BY name LIMIT $5"
    ))
    .bind(&environment.tenant)
    .bind(&environment.project)
    .bind(&environment.environment)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let items = rows
        .into_iter()
        .map(Service::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(split_page(items, page.limit, |s| s.name.service.clone()))
}

/// Reads on projects, environments and services.
pub trait WorkloadQueries: Queries {
    /// One project. [`StoreError::NotFound`] if absent.
    fn project_get(&mut self, name: &ProjectName) -> impl Future<Output = Result<Project>> + Send {
        project_get(self.conn(), name)
    }
    /// One page of a tenant's projects, by name.
    fn project_list(
        &mut self,
        tenant: &TenantName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Project>>> + Send {
        project_list(self.conn(), tenant, page)
    }
    /// One environment. [`StoreError::NotFound`] if absent.
    fn environment_get(
        &mut self,
        name: &EnvironmentName,
    ) -> impl Future<Output = Result<Environment>> + Send {
        environment_get(self.conn(), name)
    }
    /// One page of a project's environments, by name.
    fn environment_list(
        &mut self,
        project: &ProjectName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Environment>>> + Send {
        environment_list(self.conn(), project, page)
    }
    /// One service. [`StoreError::NotFound`] if absent.
    fn service_get(&mut self, name: &ServiceName) -> impl Future<Output = Result<Service>> + Send {
        service_get(self.conn(), name)
    }
    /// One page of an environment's services, by name.
    fn service_list(
        &mut self,
        environment: &EnvironmentName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Service>>> + Send {
        service_list(self.conn(), environment, page)
    }
}

impl<Q: Queries> WorkloadQueries for Q {}

impl Tx {
    /// Creates a project and its default environments, all placed in `default_datacenter`.
    /// [`StoreError::NotFound`] if the tenant or the datacenter does not exist.
    pub async fn project_create(
        &mut self,
        name: &ProjectName,
        display_name: &str,
        default_datacenter: &DatacenterName,
        actor: Actor<'_>,
    ) -> Result<Project> {
        self.tenant_get(&name.tenant_name()).await?;
        self.datacenter_get(default_datacenter).await?;
        let t = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO projects (tenant, name, uid, display_name, default_datacenter, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(new_uid())
        .bind(display_name)
        .bind(&default_datacenter.datacenter)
        .bind(t)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("project", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Created",
            &format!("Project created by {actor}."),
            actor,
        )
        .await?;
        for env in DEFAULT_ENVIRONMENTS {
            let env_name = EnvironmentName {
                tenant: name.tenant.clone(),
                project: name.project.clone(),
                environment: env.into(),
            };
            self.environment_insert(&env_name, "", default_datacenter, actor)
                .await?;
        }
        project_get(&mut self.tx, name).await
    }

    /// Updates a project's display name and default datacenter, if its version is still
    /// `version`.
    pub async fn project_update(
        &mut self,
        name: &ProjectName,
        version: i64,
        display_name: &str,
        default_datacenter: &DatacenterName,
        actor: Actor<'_>,
    ) -> Result<Project> {
        self.datacenter_get(default_datacenter).await?;
        let result = sqlx::query(
            "UPDATE projects SET display_name = $1, default_datacenter = $2, update_time = $3, version = version + 1 \
             WHERE tenant = $4 AND name = $5 AND version = $6",
        )
        .bind(display_name)
        .bind(&default_datacenter.datacenter)
        .bind(Timestamp::now().0)
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("project", name))?;
        expect_one_row(result, "project", name)?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Updated",
            &format!("Project updated by {actor}."),
            actor,
        )
        .await?;
        project_get(&mut self.tx, name).await
    }

    /// Deletes a project and its environments. Without `cascade`, refused with
    /// [`StoreError::InUse`] while any environment has services.
    pub async fn project_delete(
        &mut self,
        name: &ProjectName,
        expected_version: Option<i64>,
        cascade: bool,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = project_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "project", name)?;
        crate::managed::refuse_while_holding_data(
            &mut self.tx,
            "project",
            &name.to_string(),
            [Some(&name.tenant), Some(&name.project), None],
        )
        .await?;
        let services: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE tenant = $1 AND project = $2")
                .bind(&name.tenant)
                .bind(&name.project)
                .fetch_one(&mut *self.tx)
                .await
                .map_err(backend)?;
        if services > 0 && !cascade {
            return Err(StoreError::InUse {
                kind: "project",
                name: name.to_string(),
                detail: format!("still has {services} services; delete them first or set cascade"),
            });
        }
        self.touch_datacenters_where(
            "SELECT DISTINCT datacenter FROM environments WHERE tenant = $1 AND project = $2",
            &[&name.tenant, &name.project],
        )
        .await?;
        for delete_sql in [
            "DELETE FROM workload_statuses WHERE tenant = $1 AND project = $2",
            "DELETE FROM deployments WHERE tenant = $1 AND project = $2",
            "DELETE FROM service_secrets WHERE tenant = $1 AND project = $2",
            "DELETE FROM managed_services WHERE tenant = $1 AND project = $2",
            "DELETE FROM services WHERE tenant = $1 AND project = $2",
            "DELETE FROM environments WHERE tenant = $1 AND project = $2",
        ] {
            sqlx::query(delete_sql)
                .bind(&name.tenant)
                .bind(&name.project)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("project", name))?;
        }
        sqlx::query("DELETE FROM projects WHERE tenant = $1 AND name = $2")
            .bind(&name.tenant)
            .bind(&name.project)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_write("project", name))?;
        let message = if cascade && services > 0 {
            format!("Project deleted with its environments and {services} services by {actor}.")
        } else {
            format!("Project deleted with its environments by {actor}.")
        };
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Deleted",
            &message,
            actor,
        )
        .await
    }

    async fn environment_insert(
        &mut self,
        name: &EnvironmentName,
        display_name: &str,
        datacenter: &DatacenterName,
        actor: Actor<'_>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO environments (tenant, project, name, uid, display_name, datacenter, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(new_uid())
        .bind(display_name)
        .bind(&datacenter.datacenter)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("environment", name))?;
        self.touch_datacenter(&datacenter.datacenter).await?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Created",
            &format!("Environment created in {datacenter} by {actor}."),
            actor,
        )
        .await
    }

    /// Adds an environment to a project, in `datacenter` or, if `None`, the project's
    /// default datacenter.
    pub async fn environment_create(
        &mut self,
        name: &EnvironmentName,
        display_name: &str,
        datacenter: Option<&DatacenterName>,
        actor: Actor<'_>,
    ) -> Result<Environment> {
        let project = project_get(&mut self.tx, &name.project_name()).await?;
        let datacenter = datacenter.unwrap_or(&project.default_datacenter);
        self.datacenter_get(datacenter).await?;
        self.environment_insert(name, display_name, datacenter, actor)
            .await?;
        environment_get(&mut self.tx, name).await
    }

    /// Updates an environment's display name and datacenter, if its version is still
    /// `version`. Moving an environment that has been deployed to is refused with
    /// [`StoreError::InUse`]: its workloads and data live in the old datacenter.
    pub async fn environment_update(
        &mut self,
        name: &EnvironmentName,
        version: i64,
        display_name: &str,
        datacenter: &DatacenterName,
        actor: Actor<'_>,
    ) -> Result<Environment> {
        let current = environment_get(&mut self.tx, name).await?;
        if current.datacenter != *datacenter {
            if current.first_deploy_time.is_some() {
                return Err(StoreError::InUse {
                    kind: "environment",
                    name: name.to_string(),
                    detail: format!(
                        "has been deployed to, so it stays in {}; create a new environment to use {datacenter}",
                        current.datacenter
                    ),
                });
            }
            self.datacenter_get(datacenter).await?;
        }
        let result = sqlx::query(
            "UPDATE environments SET display_name = $1, datacenter = $2, update_time = $3, version = version + 1 \
             WHERE tenant = $4 AND project = $5 AND name = $6 AND version = $7",
        )
        .bind(display_name)
        .bind(&datacenter.datacenter)
        .bind(Timestamp::now().0)
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("environment", name))?;
        expect_one_row(result, "environment", name)?;
        if current.datacenter != *datacenter {
            self.touch_datacenter(&current.datacenter.datacenter)
                .await?;
            self.touch_datacenter(&datacenter.datacenter).await?;
        }
        let message = if current.datacenter == *datacenter {
            format!("Environment updated by {actor}.")
        } else {
            format!(
                "Environment moved from {} to {datacenter} by {actor}.",
                current.datacenter
            )
        };
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Updated",
            &message,
            actor,
        )
        .await?;
        environment_get(&mut self.tx, name).await
    }

    /// Records the environment's first deployment (a no-op after the first): from then on
    /// its datacenter is fixed.
    pub async fn environment_mark_deployed(
        &mut self,
        name: &EnvironmentName,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE environments SET first_deploy_time = $1 \
             WHERE tenant = $2 AND project = $3 AND name = $4 AND first_deploy_time IS NULL",
        )
        .bind(at.0)
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Deletes an environment. Without `cascade`, refused with [`StoreError::InUse`] while it
    /// has services.
    pub async fn environment_delete(
        &mut self,
        name: &EnvironmentName,
        expected_version: Option<i64>,
        cascade: bool,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = environment_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "environment", name)?;
        crate::managed::refuse_while_holding_data(
            &mut self.tx,
            "environment",
            &name.to_string(),
            [
                Some(&name.tenant),
                Some(&name.project),
                Some(&name.environment),
            ],
        )
        .await?;
        let services: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM services WHERE tenant = $1 AND project = $2 AND environment = $3",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        if services > 0 && !cascade {
            return Err(StoreError::InUse {
                kind: "environment",
                name: name.to_string(),
                detail: format!("still has {services} services; delete them first or set cascade"),
            });
        }
        self.touch_datacenter(&current.datacenter.datacenter)
            .await?;
        for sql in [
            "DELETE FROM workload_statuses WHERE tenant = $1 AND project = $2 AND environment = $3",
            "DELETE FROM deployments WHERE tenant = $1 AND project = $2 AND environment = $3",
            "DELETE FROM service_secrets WHERE tenant = $1 AND project = $2 AND environment = $3",
            "DELETE FROM managed_services WHERE tenant = $1 AND project = $2 AND environment = $3",
            "DELETE FROM services WHERE tenant = $1 AND project = $2 AND environment = $3",
            "DELETE FROM environments WHERE tenant = $1 AND project = $2 AND name = $3",
        ] {
            sqlx::query(sql)
                .bind(&name.tenant)
                .bind(&name.project)
                .bind(&name.environment)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("environment", name))?;
        }
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Deleted",
            &format!("Environment deleted by {actor}."),
            actor,
        )
        .await
    }

    /// Creates a service (its spec already validated). [`StoreError::NotFound`] if the
    /// environment does not exist.
    pub async fn service_create(
        &mut self,
        name: &ServiceName,
        spec: &ServiceSpec,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let environment = environment_get(&mut self.tx, &name.environment_name()).await?;
        self.touch_datacenter(&environment.datacenter.datacenter)
            .await?;
        sqlx::query(
            "INSERT INTO services (tenant, project, environment, name, uid, spec, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
        )
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(&name.service)
        .bind(new_uid())
        .bind(encode_spec(spec)?)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("service", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Created",
            &format!("Service created by {actor}."),
            actor,
        )
        .await?;
        service_get(&mut self.tx, name).await
    }

    /// Replaces a service's spec, if its version is still `version`.
    pub async fn service_update(
        &mut self,
        name: &ServiceName,
        version: i64,
        spec: &ServiceSpec,
        actor: Actor<'_>,
    ) -> Result<Service> {
        let result = sqlx::query(
            "UPDATE services SET spec = $1, update_time = $2, version = version + 1 \
             WHERE tenant = $3 AND project = $4 AND environment = $5 AND name = $6 AND version = $7",
        )
        .bind(encode_spec(spec)?)
        .bind(Timestamp::now().0)
        .bind(&name.tenant)
        .bind(&name.project)
        .bind(&name.environment)
        .bind(&name.service)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        expect_one_row(result, "service", name)?;
        self.touch_service_datacenter(name).await?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Updated",
            &format!("Service updated by {actor}."),
            actor,
        )
        .await?;
        service_get(&mut self.tx, name).await
    }

    /// Deletes a service.
    pub async fn service_delete(
        &mut self,
        name: &ServiceName,
        expected_version: Option<i64>,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = service_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "service", name)?;
        self.touch_service_datacenter(name).await?;
        for sql in [
            "DELETE FROM workload_statuses WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4",
            "DELETE FROM deployments WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4",
            "DELETE FROM service_secrets WHERE tenant = $1 AND project = $2 AND environment = $3 AND service = $4",
            "DELETE FROM services WHERE tenant = $1 AND project = $2 AND environment = $3 AND name = $4",
        ] {
            sqlx::query(sql)
                .bind(&name.tenant)
                .bind(&name.project)
                .bind(&name.environment)
                .bind(&name.service)
                .execute(&mut *self.tx)
                .await
                .map_err(backend)?;
        }
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Deleted",
            &format!("Service deleted by {actor}."),
            actor,
        )
        .await
    }

    /// Bumps the revision of the datacenter a service's environment is placed in.
    async fn touch_service_datacenter(&mut self, name: &ServiceName) -> Result<()> {
        self.touch_datacenters_where(
            "SELECT DISTINCT datacenter FROM environments WHERE tenant = $1 AND project = $2 AND name = $3",
            &[&name.tenant, &name.project, &name.environment],
        )
        .await
    }
}
