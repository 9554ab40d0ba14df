//! Projects: a tenant's applications, each with its environments.

use outpost_domain::{
    DatacenterName, EnvironmentName, ProjectName, TenantName, Timestamp,
    resources::{DEFAULT_ENVIRONMENTS, Project},
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

/// Reads on projects.
pub trait ProjectQueries: Queries {
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
}

impl<Q: Queries> ProjectQueries for Q {}

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
        crate::lookups::refuse_while_holding_data(
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
}
