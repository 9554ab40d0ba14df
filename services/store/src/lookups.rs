//! Checks that span resources, kept apart so that no resource's module needs another's
//! in both directions: whether a tenant, project or environment still holds managed data,
//! and which datacenter a service runs in.

use outpost_domain::{DatacenterName, ProjectName, ServiceName};
use sqlx::AnyConnection;

use crate::{Result, StoreError, error::backend};

/// Refuses deleting a tenant, project or environment (`kind` named `name`) that still holds
/// live managed services, cascade or not: their data lives in their datacenter, and only
/// deleting each one (its id typed as confirmation) removes it there. A cascade never drops
/// data silently, nor leaves it behind unowned.
pub(crate) async fn refuse_while_holding_data(
    conn: &mut AnyConnection,
    kind: &'static str,
    name: &str,
    scope: [Option<&str>; 3],
) -> Result<()> {
    let [tenant, project, environment] = scope;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM managed_services WHERE tenant = $1 AND ($2 = '' OR project = $2) \
         AND ($3 = '' OR environment = $3) AND status <> 'DELETED'",
    )
    .bind(tenant.unwrap_or_default())
    .bind(project.unwrap_or_default())
    .bind(environment.unwrap_or_default())
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    if live > 0 {
        return Err(StoreError::InUse {
            kind,
            name: name.to_owned(),
            detail: format!(
                "still has {live} managed services, whose data lives in their datacenter; delete each one \
                 first (typing its id as confirmation): cascade never deletes managed data"
            ),
        });
    }
    Ok(())
}

/// The datacenter `name` runs in: its environment's.
pub(crate) async fn service_datacenter(
    conn: &mut AnyConnection,
    name: &ServiceName,
) -> Result<String> {
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

/// The default datacenter of project `name`, where its new environments go.
/// [`StoreError::NotFound`] if the project does not exist.
pub(crate) async fn project_datacenter(
    conn: &mut AnyConnection,
    name: &ProjectName,
) -> Result<DatacenterName> {
    let datacenter: Option<String> = sqlx::query_scalar(
        "SELECT default_datacenter FROM projects WHERE tenant = $1 AND name = $2",
    )
    .bind(&name.tenant)
    .bind(&name.project)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    datacenter
        .map(|d| crate::rows::datacenter_ref(&d))
        .ok_or_else(|| StoreError::NotFound {
            kind: "project",
            name: name.to_string(),
        })
}
