//! Role bindings: which role a user or team holds in a tenant.

use outpost_domain::{
    RoleBindingName, TeamName, TenantName, Timestamp,
    authz::Role,
    resources::{Member, RoleBinding},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit,
    records::event_add,
    rows::corrupt,
    split_page,
    teams::team_get,
    users::{user_get, user_name},
};

#[derive(FromRow)]
struct RoleBindingRow {
    tenant: String,
    name: String,
    member_user: Option<String>,
    member_team: Option<String>,
    role: String,
    create_time: i64,
}

impl TryFrom<RoleBindingRow> for RoleBinding {
    type Error = StoreError;
    fn try_from(r: RoleBindingRow) -> Result<Self> {
        let member = match (r.member_user, r.member_team) {
            (Some(user), None) => Member::User(user_name(&r.tenant, user)),
            (None, Some(team)) => Member::Team(TeamName {
                tenant: r.tenant.clone(),
                team,
            }),
            _ => return Err(corrupt(format!("member of role binding {}", r.name))),
        };
        let role = Role::from_str_opt(&r.role)
            .ok_or_else(|| corrupt(format!("role of role binding {}", r.name)))?;
        Ok(RoleBinding {
            name: RoleBindingName {
                tenant: r.tenant,
                role_binding: r.name,
            },
            member,
            role,
            create_time: Timestamp(r.create_time),
        })
    }
}

macro_rules! binding_columns {
    () => {
        "tenant, name, member_user, member_team, role, create_time"
    };
}

async fn role_binding_get(conn: &mut AnyConnection, name: &RoleBindingName) -> Result<RoleBinding> {
    let row: Option<RoleBindingRow> = sqlx::query_as(concat!(
        "SELECT ",
        binding_columns!(),
        " FROM role_bindings WHERE tenant = $1 AND name = $2"
    ))
    .bind(&name.tenant)
    .bind(&name.role_binding)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.ok_or_else(|| StoreError::NotFound {
        kind: "role binding",
        name: name.to_string(),
    })?
    .try_into()
}

async fn role_binding_list(
    conn: &mut AnyConnection,
    tenant: &TenantName,
    page: &PageRequest,
) -> Result<Page<RoleBinding>> {
    let rows: Vec<RoleBindingRow> = sqlx::query_as(concat!(
        "SELECT ",
        binding_columns!(),
        " FROM role_bindings WHERE tenant = $1 AND name > $2 ORDER BY name LIMIT $3"
    ))
    .bind(&tenant.tenant)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    let items = rows
        .into_iter()
        .map(RoleBinding::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(split_page(items, page.limit, |b| {
        b.name.role_binding.clone()
    }))
}

/// Reads on role bindings.
pub trait RoleBindingQueries: Queries {
    /// One role binding. [`StoreError::NotFound`] if absent.
    fn role_binding_get(
        &mut self,
        name: &RoleBindingName,
    ) -> impl Future<Output = Result<RoleBinding>> + Send {
        role_binding_get(self.conn(), name)
    }
    /// One page of a tenant's role bindings, by name.
    fn role_binding_list(
        &mut self,
        tenant: &TenantName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<RoleBinding>>> + Send {
        role_binding_list(self.conn(), tenant, page)
    }
}

impl<Q: Queries> RoleBindingQueries for Q {}

impl Tx {
    /// Grants `role` to `member`. The member must exist in the binding's tenant.
    pub async fn role_binding_create(
        &mut self,
        name: &RoleBindingName,
        member: &Member,
        role: Role,
        actor: Actor<'_>,
    ) -> Result<RoleBinding> {
        let (member_user, member_team) = match member {
            Member::User(u) => {
                user_get(&mut self.tx, u).await?;
                (Some(u.user.as_str()), None)
            }
            Member::Team(t) => {
                team_get(&mut self.tx, t).await?;
                (None, Some(t.team.as_str()))
            }
        };
        sqlx::query(
            "INSERT INTO role_bindings (tenant, name, member_user, member_team, role, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&name.tenant)
        .bind(&name.role_binding)
        .bind(member_user)
        .bind(member_team)
        .bind(role.as_str())
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("role binding", name))?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &format!("tenants/{}", name.tenant),
            "RoleGranted",
            &format!("Role {} granted to {member} by {actor}.", role.as_str()),
            actor,
        )
        .await?;
        role_binding_get(&mut self.tx, name).await
    }

    /// Removes a grant.
    pub async fn role_binding_delete(
        &mut self,
        name: &RoleBindingName,
        actor: Actor<'_>,
    ) -> Result<RoleBinding> {
        let current = role_binding_get(&mut self.tx, name).await?;
        sqlx::query("DELETE FROM role_bindings WHERE tenant = $1 AND name = $2")
            .bind(&name.tenant)
            .bind(&name.role_binding)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &format!("tenants/{}", name.tenant),
            "RoleRevoked",
            &format!(
                "Role {} of {} revoked by {actor}.",
                current.role.as_str(),
                current.member
            ),
            actor,
        )
        .await?;
        Ok(current)
    }
}
