//! Environments: a project's stages (production, staging, …), each placed in one datacenter.

use outpost_domain::{
    DatacenterName, EnvironmentName, ProjectName, Timestamp, resources::Environment,
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    platform::PlatformQueries,
    records::event_add,
    rows::{MetaRow, check_version, datacenter_ref, expect_one_row},
    split_page,
};

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

/// Reads on environments.
pub trait EnvironmentQueries: Queries {
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
}

impl<Q: Queries> EnvironmentQueries for Q {}

impl Tx {
    /// Adds an environment to a project, in `datacenter` or, if `None`, the project's
    /// default datacenter.
    pub async fn environment_create(
        &mut self,
        name: &EnvironmentName,
        display_name: &str,
        datacenter: Option<&DatacenterName>,
        actor: Actor<'_>,
    ) -> Result<Environment> {
        let default_datacenter =
            crate::lookups::project_datacenter(&mut self.tx, &name.project_name()).await?;
        let datacenter = datacenter.unwrap_or(&default_datacenter);
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
        crate::lookups::refuse_while_holding_data(
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

    /// Inserts environment `name` in `datacenter`: for a new project's defaults and for
    /// one added later.
    pub(crate) async fn environment_insert(
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
}
