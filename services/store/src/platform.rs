//! Platform-level resources: tenants and datacenters.

use outpost_domain::{
    DatacenterName, TenantName, Timestamp,
    resources::{Datacenter, Tenant},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, check_version, expect_one_row},
    split_page,
};

#[derive(FromRow)]
struct TenantRow {
    name: String,
    display_name: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            name: TenantName::new(r.name),
            display_name: r.display_name,
            meta: r.meta.into(),
        }
    }
}

macro_rules! tenant_columns {
    () => {
        "name, display_name, uid, create_time, update_time, version"
    };
}

async fn tenant_get(conn: &mut AnyConnection, name: &TenantName) -> Result<Tenant> {
    // `name <> ''` keeps the platform's own row out of reach.
    let row: Option<TenantRow> = sqlx::query_as(concat!(
        "SELECT ",
        tenant_columns!(),
        " FROM tenants WHERE name = $1 AND name <> ''"
    ))
    .bind(&name.tenant)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(Tenant::from).ok_or_else(|| StoreError::NotFound {
        kind: "tenant",
        name: name.to_string(),
    })
}

async fn tenant_list(conn: &mut AnyConnection, page: &PageRequest) -> Result<Page<Tenant>> {
    let rows: Vec<TenantRow> = sqlx::query_as(concat!(
        "SELECT ",
        tenant_columns!(),
        " FROM tenants WHERE name > $1 ORDER BY name LIMIT $2"
    ))
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(Tenant::from).collect(),
        page.limit,
        |t| t.name.tenant.clone(),
    ))
}

#[derive(FromRow)]
struct DatacenterRow {
    name: String,
    display_name: String,
    location: String,
    revision: i64,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<DatacenterRow> for Datacenter {
    fn from(r: DatacenterRow) -> Self {
        Datacenter {
            name: DatacenterName { datacenter: r.name },
            display_name: r.display_name,
            location: r.location,
            revision: r.revision,
            meta: r.meta.into(),
        }
    }
}

macro_rules! datacenter_columns {
    () => {
        "name, display_name, location, revision, uid, create_time, update_time, version"
    };
}

async fn datacenter_get(conn: &mut AnyConnection, name: &DatacenterName) -> Result<Datacenter> {
    let row: Option<DatacenterRow> = sqlx::query_as(concat!(
        "SELECT ",
        datacenter_columns!(),
        " FROM datacenters WHERE name = $1"
    ))
    .bind(&name.datacenter)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(Datacenter::from)
        .ok_or_else(|| StoreError::NotFound {
            kind: "datacenter",
            name: name.to_string(),
        })
}

async fn datacenter_list(conn: &mut AnyConnection, page: &PageRequest) -> Result<Page<Datacenter>> {
    let rows: Vec<DatacenterRow> = sqlx::query_as(concat!(
        "SELECT ",
        datacenter_columns!(),
        " FROM datacenters WHERE name > $1 ORDER BY name LIMIT $2"
    ))
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(Datacenter::from).collect(),
        page.limit,
        |d| d.name.datacenter.clone(),
    ))
}

/// Reads on tenants and datacenters.
pub trait PlatformQueries: Queries {
    /// One tenant. [`StoreError::NotFound`] if absent.
    fn tenant_get(&mut self, name: &TenantName) -> impl Future<Output = Result<Tenant>> + Send {
        tenant_get(self.conn(), name)
    }
    /// One page of tenants, by name.
    fn tenant_list(
        &mut self,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Tenant>>> + Send {
        tenant_list(self.conn(), page)
    }
    /// One datacenter. [`StoreError::NotFound`] if absent.
    fn datacenter_get(
        &mut self,
        name: &DatacenterName,
    ) -> impl Future<Output = Result<Datacenter>> + Send {
        datacenter_get(self.conn(), name)
    }
    /// One page of datacenters, by name.
    fn datacenter_list(
        &mut self,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Datacenter>>> + Send {
        datacenter_list(self.conn(), page)
    }
}

impl<Q: Queries> PlatformQueries for Q {}

impl Tx {
    /// Creates a tenant. [`StoreError::AlreadyExists`] if the name is taken.
    pub async fn tenant_create(
        &mut self,
        name: &TenantName,
        display_name: &str,
        actor: Actor<'_>,
    ) -> Result<Tenant> {
        let t = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO tenants (name, uid, display_name, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $4, 1)",
        )
        .bind(&name.tenant)
        .bind(new_uid())
        .bind(display_name)
        .bind(t)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("tenant", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Created",
            &format!("Tenant created by {actor}."),
            actor,
        )
        .await?;
        tenant_get(&mut self.tx, name).await
    }

    /// Sets a tenant's display name, if its version is still `version`.
    pub async fn tenant_update(
        &mut self,
        name: &TenantName,
        version: i64,
        display_name: &str,
        actor: Actor<'_>,
    ) -> Result<Tenant> {
        let result = sqlx::query(
            "UPDATE tenants SET display_name = $1, update_time = $2, version = version + 1 \
             WHERE name = $3 AND version = $4",
        )
        .bind(display_name)
        .bind(Timestamp::now().0)
        .bind(&name.tenant)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        expect_one_row(result, "tenant", name)?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Updated",
            &format!("Tenant updated by {actor}."),
            actor,
        )
        .await?;
        tenant_get(&mut self.tx, name).await
    }

    /// Deletes a tenant. Without `cascade`, refused with [`StoreError::InUse`] while it owns
    /// projects, users, teams or role bindings; with it, deletes all of them first.
    pub async fn tenant_delete(
        &mut self,
        name: &TenantName,
        expected_version: Option<i64>,
        cascade: bool,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = tenant_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "tenant", name)?;
        crate::lookups::refuse_while_holding_data(
            &mut self.tx,
            "tenant",
            &name.to_string(),
            [Some(&name.tenant), None, None],
        )
        .await?;
        const CHILDREN: [(&str, &str); 4] = [
            (
                "SELECT COUNT(*) FROM projects WHERE tenant = $1",
                "projects",
            ),
            ("SELECT COUNT(*) FROM users WHERE tenant = $1", "users"),
            ("SELECT COUNT(*) FROM teams WHERE tenant = $1", "teams"),
            (
                "SELECT COUNT(*) FROM role_bindings WHERE tenant = $1",
                "role bindings",
            ),
        ];
        if !cascade {
            for (count_sql, what) in CHILDREN {
                let count: i64 = sqlx::query_scalar(count_sql)
                    .bind(&name.tenant)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(backend)?;
                if count > 0 {
                    return Err(StoreError::InUse {
                        kind: "tenant",
                        name: name.to_string(),
                        detail: format!(
                            "still has {count} {what}; delete them first or set cascade"
                        ),
                    });
                }
            }
        }
        self.touch_datacenters_where(
            "SELECT DISTINCT datacenter FROM environments WHERE tenant = $1",
            &[&name.tenant],
        )
        .await?;
        // Children before parents, so the foreign keys hold at every step.
        for delete_sql in [
            "DELETE FROM workload_statuses WHERE tenant = $1",
            "DELETE FROM deployments WHERE tenant = $1",
            "DELETE FROM service_secrets WHERE tenant = $1",
            "DELETE FROM managed_services WHERE tenant = $1",
            "DELETE FROM services WHERE tenant = $1",
            "DELETE FROM environments WHERE tenant = $1",
            "DELETE FROM projects WHERE tenant = $1",
            "DELETE FROM role_bindings WHERE tenant = $1",
            "DELETE FROM team_members WHERE tenant = $1",
            "DELETE FROM teams WHERE tenant = $1",
            "DELETE FROM api_tokens WHERE tenant = $1",
            "DELETE FROM users WHERE tenant = $1",
        ] {
            sqlx::query(delete_sql)
                .bind(&name.tenant)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("tenant", name))?;
        }
        sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(&name.tenant)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_write("tenant", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Deleted",
            &format!("Tenant deleted by {actor}."),
            actor,
        )
        .await
    }

    /// Registers a datacenter. [`StoreError::AlreadyExists`] if the name is taken.
    pub async fn datacenter_create(
        &mut self,
        name: &DatacenterName,
        display_name: &str,
        location: &str,
        actor: Actor<'_>,
    ) -> Result<Datacenter> {
        sqlx::query(
            "INSERT INTO datacenters (name, uid, display_name, location, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $5, 1)",
        )
        .bind(&name.datacenter)
        .bind(new_uid())
        .bind(display_name)
        .bind(location)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("datacenter", name))?;
        event_add(
            &mut self.tx,
            "",
            &name.to_string(),
            "Created",
            &format!("Datacenter registered by {actor}."),
            actor,
        )
        .await?;
        datacenter_get(&mut self.tx, name).await
    }

    /// Updates a datacenter's display name and location, if its version is still `version`.
    pub async fn datacenter_update(
        &mut self,
        name: &DatacenterName,
        version: i64,
        display_name: &str,
        location: &str,
        actor: Actor<'_>,
    ) -> Result<Datacenter> {
        let result = sqlx::query(
            "UPDATE datacenters SET display_name = $1, location = $2, update_time = $3, version = version + 1 \
             WHERE name = $4 AND version = $5",
        )
        .bind(display_name)
        .bind(location)
        .bind(Timestamp::now().0)
        .bind(&name.datacenter)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        expect_one_row(result, "datacenter", name)?;
        event_add(
            &mut self.tx,
            "",
            &name.to_string(),
            "Updated",
            &format!("Datacenter updated by {actor}."),
            actor,
        )
        .await?;
        datacenter_get(&mut self.tx, name).await
    }

    /// Removes a datacenter; [`StoreError::InUse`] while projects or environments use it.
    pub async fn datacenter_delete(
        &mut self,
        name: &DatacenterName,
        expected_version: Option<i64>,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = datacenter_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "datacenter", name)?;
        let (projects, environments): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM projects WHERE default_datacenter = $1), \
                    (SELECT COUNT(*) FROM environments WHERE datacenter = $1)",
        )
        .bind(&name.datacenter)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(backend)?;
        if projects + environments > 0 {
            return Err(StoreError::InUse {
                kind: "datacenter",
                name: name.to_string(),
                detail: format!(
                    "is still used by {environments} environments and as the default of {projects} projects; move them first"
                ),
            });
        }
        // Its agent goes with it: the certificate is revoked and its link closed.
        sqlx::query(
            "INSERT INTO revoked_certificates (serial, datacenter, revoke_time) \
             SELECT serial, datacenter, $2 FROM agents WHERE datacenter = $1",
        )
        .bind(&name.datacenter)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        for sql in [
            "DELETE FROM agents WHERE datacenter = $1",
            "DELETE FROM join_tokens WHERE datacenter = $1",
        ] {
            sqlx::query(sql)
                .bind(&name.datacenter)
                .execute(&mut *self.tx)
                .await
                .map_err(backend)?;
        }
        self.touched.insert(name.datacenter.clone());
        sqlx::query("DELETE FROM datacenters WHERE name = $1")
            .bind(&name.datacenter)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_write("datacenter", name))?;
        event_add(
            &mut self.tx,
            "",
            &name.to_string(),
            "Deleted",
            &format!("Datacenter removed by {actor}."),
            actor,
        )
        .await
    }
}
