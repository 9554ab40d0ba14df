//! Services: what an environment runs, and its lifecycle columns.

use outpost_domain::{
    EnvironmentName, ServiceName, Timestamp,
    resources::{Service, ServiceSpec},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    environments::environment_get,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, RolloutRow, check_version, decode_spec, encode_spec, expect_one_row},
    split_page,
};

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

/// Reads on services.
pub trait ServiceQueries: Queries {
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

impl<Q: Queries> ServiceQueries for Q {}

impl Tx {
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
