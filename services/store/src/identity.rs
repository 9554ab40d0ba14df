//! Who may call: users, teams, API tokens (hashes only) and role bindings, and the lookup
//! that turns a token into a [`Principal`].

use outpost_domain::{
    ApiTokenName, RoleBindingName, TeamName, TenantName, Timestamp, UserName,
    authz::{Principal, Role},
    resources::{ApiToken, Member, RoleBinding, Team, User},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, Store, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, check_version, corrupt, expect_one_row},
    split_page,
};

/// The `tenant` column value of a user: '' for platform users.
fn scope(user: &UserName) -> &str {
    user.tenant.as_deref().unwrap_or_default()
}

fn user_name(tenant: &str, user: String) -> UserName {
    UserName {
        tenant: (!tenant.is_empty()).then(|| tenant.to_owned()),
        user,
    }
}

#[derive(FromRow)]
struct UserRow {
    tenant: String,
    name: String,
    display_name: String,
    email: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            name: user_name(&r.tenant, r.name),
            display_name: r.display_name,
            email: r.email,
            meta: r.meta.into(),
        }
    }
}

macro_rules! user_columns {
    () => {
        "tenant, name, display_name, email, uid, create_time, update_time, version"
    };
}

async fn user_get(conn: &mut AnyConnection, name: &UserName) -> Result<User> {
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE tenant = $1 AND name = $2"
    ))
    .bind(scope(name))
    .bind(&name.user)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(User::from).ok_or_else(|| StoreError::NotFound {
        kind: "user",
        name: name.to_string(),
    })
}

async fn user_list(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
    page: &PageRequest,
) -> Result<Page<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE tenant = $1 AND name > $2 ORDER BY name LIMIT $3"
    ))
    .bind(tenant.unwrap_or_default())
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(User::from).collect(),
        page.limit,
        |u| u.name.user.clone(),
    ))
}

#[derive(FromRow)]
struct TeamRow {
    tenant: String,
    name: String,
    display_name: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

macro_rules! team_columns {
    () => {
        "tenant, name, display_name, uid, create_time, update_time, version"
    };
}

fn team_from(r: TeamRow, members: Vec<UserName>) -> Team {
    Team {
        name: TeamName {
            tenant: r.tenant,
            team: r.name,
        },
        display_name: r.display_name,
        members,
        meta: r.meta.into(),
    }
}

async fn team_get(conn: &mut AnyConnection, name: &TeamName) -> Result<Team> {
    let row: Option<TeamRow> = sqlx::query_as(concat!(
        "SELECT ",
        team_columns!(),
        " FROM teams WHERE tenant = $1 AND name = $2"
    ))
    .bind(&name.tenant)
    .bind(&name.team)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let row = row.ok_or_else(|| StoreError::NotFound {
        kind: "team",
        name: name.to_string(),
    })?;
    let members = team_members(conn, &name.tenant, &name.team, &name.team).await?;
    Ok(team_from(
        row,
        members.into_iter().map(|(_, m)| m).collect(),
    ))
}

/// Members of the teams named `first..=last` in `tenant`, as (team, member) in order: one
/// query for a whole page of teams.
async fn team_members(
    conn: &mut AnyConnection,
    tenant: &str,
    first: &str,
    last: &str,
) -> Result<Vec<(String, UserName)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT team, member FROM team_members WHERE tenant = $1 AND team >= $2 AND team <= $3 \
         ORDER BY team, member",
    )
    .bind(tenant)
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(team, member)| (team, user_name(tenant, member)))
        .collect())
}

async fn team_list(
    conn: &mut AnyConnection,
    tenant: &TenantName,
    page: &PageRequest,
) -> Result<Page<Team>> {
    let rows: Vec<TeamRow> = sqlx::query_as(concat!(
        "SELECT ",
        team_columns!(),
        " FROM teams WHERE tenant = $1 AND name > $2 ORDER BY name LIMIT $3"
    ))
    .bind(&tenant.tenant)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let page_rows = split_page(rows, page.limit, |t| t.name.clone());
    let (Some(first), Some(last)) = (page_rows.items.first(), page_rows.items.last()) else {
        return Ok(Page {
            items: Vec::new(),
            next_after: None,
        });
    };
    let mut members = team_members(conn, &tenant.tenant, &first.name, &last.name).await?;
    let items = page_rows
        .items
        .into_iter()
        .map(|row| {
            let mine: Vec<UserName> = members
                .extract_if(.., |(team, _)| *team == row.name)
                .map(|(_, m)| m)
                .collect();
            team_from(row, mine)
        })
        .collect();
    Ok(Page {
        items,
        next_after: page_rows.next_after,
    })
}

#[derive(FromRow)]
struct TokenRow {
    tenant: String,
    owner: String,
    name: String,
    display_name: String,
    create_time: i64,
    expire_time: i64,
    revoke_time: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            name: ApiTokenName {
                user: user_name(&r.tenant, r.owner),
                api_token: r.name,
            },
            display_name: r.display_name,
            create_time: Timestamp(r.create_time),
            expire_time: Timestamp(r.expire_time),
            revoke_time: r.revoke_time.map(Timestamp),
        }
    }
}

macro_rules! token_columns {
    () => {
        "tenant, owner, name, display_name, create_time, expire_time, revoke_time"
    };
}

async fn api_token_get(conn: &mut AnyConnection, name: &ApiTokenName) -> Result<ApiToken> {
    let row: Option<TokenRow> = sqlx::query_as(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE tenant = $1 AND owner = $2 AND name = $3"
    ))
    .bind(scope(&name.user))
    .bind(&name.user.user)
    .bind(&name.api_token)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(ApiToken::from).ok_or_else(|| StoreError::NotFound {
        kind: "API token",
        name: name.to_string(),
    })
}

async fn api_token_list(
    conn: &mut AnyConnection,
    owner: &UserName,
    page: &PageRequest,
) -> Result<Page<ApiToken>> {
    let rows: Vec<TokenRow> = sqlx::query_as(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE tenant = $1 AND owner = $2 AND name > $3 \
         ORDER BY name LIMIT $4"
    ))
    .bind(scope(owner))
    .bind(&owner.user)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(ApiToken::from).collect(),
        page.limit,
        |t| t.name.api_token.clone(),
    ))
}

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

/// Reads on users, teams, tokens and role bindings.
pub trait IdentityQueries: Queries {
    /// One user. [`StoreError::NotFound`] if absent.
    fn user_get(&mut self, name: &UserName) -> impl Future<Output = Result<User>> + Send {
        user_get(self.conn(), name)
    }
    /// One page of a tenant's users (platform users for `None`), by name.
    fn user_list(
        &mut self,
        tenant: Option<&str>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<User>>> + Send {
        user_list(self.conn(), tenant, page)
    }
    /// One team with its members. [`StoreError::NotFound`] if absent.
    fn team_get(&mut self, name: &TeamName) -> impl Future<Output = Result<Team>> + Send {
        team_get(self.conn(), name)
    }
    /// One page of a tenant's teams with their members, by name.
    fn team_list(
        &mut self,
        tenant: &TenantName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Team>>> + Send {
        team_list(self.conn(), tenant, page)
    }
    /// One token's metadata. [`StoreError::NotFound`] if absent.
    fn api_token_get(
        &mut self,
        name: &ApiTokenName,
    ) -> impl Future<Output = Result<ApiToken>> + Send {
        api_token_get(self.conn(), name)
    }
    /// One page of a user's tokens, by name.
    fn api_token_list(
        &mut self,
        owner: &UserName,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<ApiToken>>> + Send {
        api_token_list(self.conn(), owner, page)
    }
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

impl<Q: Queries> IdentityQueries for Q {}

impl Store {
    /// The caller a token authenticates, if the token (given as the hex SHA-256 of the
    /// secret) exists, is not revoked and has not expired at `at`. The role is the highest
    /// one bound to the user directly or through any of its teams.
    pub async fn principal_for_token(
        &self,
        secret_sha256: &str,
        at: Timestamp,
    ) -> Result<Option<Principal>> {
        let mut conn = self.read.acquire().await.map_err(backend)?;
        let owner: Option<(String, String)> = sqlx::query_as(
            "SELECT tenant, owner FROM api_tokens \
             WHERE secret_sha256 = $1 AND revoke_time IS NULL AND expire_time > $2",
        )
        .bind(secret_sha256)
        .bind(at.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        let Some((tenant, user)) = owner else {
            return Ok(None);
        };
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM role_bindings WHERE tenant = $1 AND (member_user = $2 OR member_team IN \
             (SELECT team FROM team_members WHERE tenant = $1 AND member = $2))",
        )
        .bind(&tenant)
        .bind(&user)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let role = roles.iter().filter_map(|r| Role::from_str_opt(r)).max();
        Ok(Some(Principal {
            user: user_name(&tenant, user),
            role,
        }))
    }
}

impl Tx {
    /// Creates a user. [`StoreError::AlreadyExists`] if taken; [`StoreError::NotFound`] if
    /// the tenant does not exist.
    pub async fn user_create(
        &mut self,
        name: &UserName,
        display_name: &str,
        email: &str,
        actor: Actor<'_>,
    ) -> Result<User> {
        if let Some(tenant) = &name.tenant {
            super::platform::PlatformQueries::tenant_get(self, &TenantName::new(tenant)).await?;
        }
        sqlx::query(
            "INSERT INTO users (tenant, name, uid, display_name, email, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
        )
        .bind(scope(name))
        .bind(&name.user)
        .bind(new_uid())
        .bind(display_name)
        .bind(email)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("user", name))?;
        event_add(
            &mut self.tx,
            scope(name),
            &name.to_string(),
            "Created",
            &format!("User created by {actor}."),
            actor,
        )
        .await?;
        user_get(&mut self.tx, name).await
    }

    /// Updates a user's display name and e-mail, if its version is still `version`.
    pub async fn user_update(
        &mut self,
        name: &UserName,
        version: i64,
        display_name: &str,
        email: &str,
        actor: Actor<'_>,
    ) -> Result<User> {
        let result = sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, update_time = $3, version = version + 1 \
             WHERE tenant = $4 AND name = $5 AND version = $6",
        )
        .bind(display_name)
        .bind(email)
        .bind(Timestamp::now().0)
        .bind(scope(name))
        .bind(&name.user)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        expect_one_row(result, "user", name)?;
        event_add(
            &mut self.tx,
            scope(name),
            &name.to_string(),
            "Updated",
            &format!("User updated by {actor}."),
            actor,
        )
        .await?;
        user_get(&mut self.tx, name).await
    }

    /// Deletes a user with its tokens, role bindings and team memberships.
    pub async fn user_delete(
        &mut self,
        name: &UserName,
        expected_version: Option<i64>,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = user_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "user", name)?;
        for sql in [
            "DELETE FROM api_tokens WHERE tenant = $1 AND owner = $2",
            "DELETE FROM role_bindings WHERE tenant = $1 AND member_user = $2",
            "DELETE FROM team_members WHERE tenant = $1 AND member = $2",
            "DELETE FROM users WHERE tenant = $1 AND name = $2",
        ] {
            sqlx::query(sql)
                .bind(scope(name))
                .bind(&name.user)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("user", name))?;
        }
        event_add(
            &mut self.tx,
            scope(name),
            &name.to_string(),
            "Deleted",
            &format!("User deleted by {actor}."),
            actor,
        )
        .await
    }

    async fn team_members_replace(&mut self, name: &TeamName, members: &[UserName]) -> Result<()> {
        sqlx::query("DELETE FROM team_members WHERE tenant = $1 AND team = $2")
            .bind(&name.tenant)
            .bind(&name.team)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        for member in members {
            user_get(&mut self.tx, member).await?;
            sqlx::query("INSERT INTO team_members (tenant, team, member) VALUES ($1, $2, $3)")
                .bind(&name.tenant)
                .bind(&name.team)
                .bind(&member.user)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("team member", member))?;
        }
        Ok(())
    }

    /// Creates a team. Every member must be an existing user of the team's tenant
    /// ([`StoreError::NotFound`] otherwise).
    pub async fn team_create(
        &mut self,
        name: &TeamName,
        display_name: &str,
        members: &[UserName],
        actor: Actor<'_>,
    ) -> Result<Team> {
        super::platform::PlatformQueries::tenant_get(self, &TenantName::new(&name.tenant)).await?;
        sqlx::query(
            "INSERT INTO teams (tenant, name, uid, display_name, create_time, update_time, version) \
             VALUES ($1, $2, $3, $4, $5, $5, 1)",
        )
        .bind(&name.tenant)
        .bind(&name.team)
        .bind(new_uid())
        .bind(display_name)
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("team", name))?;
        self.team_members_replace(name, members).await?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Created",
            &format!("Team created by {actor}."),
            actor,
        )
        .await?;
        team_get(&mut self.tx, name).await
    }

    /// Replaces a team's display name and members, if its version is still `version`.
    pub async fn team_update(
        &mut self,
        name: &TeamName,
        version: i64,
        display_name: &str,
        members: &[UserName],
        actor: Actor<'_>,
    ) -> Result<Team> {
        let result = sqlx::query(
            "UPDATE teams SET display_name = $1, update_time = $2, version = version + 1 \
             WHERE tenant = $3 AND name = $4 AND version = $5",
        )
        .bind(display_name)
        .bind(Timestamp::now().0)
        .bind(&name.tenant)
        .bind(&name.team)
        .bind(version)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        expect_one_row(result, "team", name)?;
        self.team_members_replace(name, members).await?;
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Updated",
            &format!("Team updated by {actor}."),
            actor,
        )
        .await?;
        team_get(&mut self.tx, name).await
    }

    /// Deletes a team and the role bindings that name it.
    pub async fn team_delete(
        &mut self,
        name: &TeamName,
        expected_version: Option<i64>,
        actor: Actor<'_>,
    ) -> Result<()> {
        let current = team_get(&mut self.tx, name).await?;
        check_version(expected_version, current.meta.version, "team", name)?;
        for sql in [
            "DELETE FROM role_bindings WHERE tenant = $1 AND member_team = $2",
            "DELETE FROM team_members WHERE tenant = $1 AND team = $2",
            "DELETE FROM teams WHERE tenant = $1 AND name = $2",
        ] {
            sqlx::query(sql)
                .bind(&name.tenant)
                .bind(&name.team)
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_write("team", name))?;
        }
        event_add(
            &mut self.tx,
            &name.tenant,
            &name.to_string(),
            "Deleted",
            &format!("Team deleted by {actor}."),
            actor,
        )
        .await
    }

    /// Stores a new token's metadata and the SHA-256 of its secret.
    pub async fn api_token_create(
        &mut self,
        name: &ApiTokenName,
        display_name: &str,
        secret_sha256: &str,
        expire_time: Timestamp,
        actor: Actor<'_>,
    ) -> Result<ApiToken> {
        user_get(&mut self.tx, &name.user).await?;
        sqlx::query(
            "INSERT INTO api_tokens (tenant, owner, name, display_name, secret_sha256, create_time, expire_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(scope(&name.user))
        .bind(&name.user.user)
        .bind(&name.api_token)
        .bind(display_name)
        .bind(secret_sha256)
        .bind(Timestamp::now().0)
        .bind(expire_time.0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("API token", name))?;
        event_add(
            &mut self.tx,
            scope(&name.user),
            &name.user.to_string(),
            "ApiTokenCreated",
            &format!("API token {} created by {actor}.", name.api_token),
            actor,
        )
        .await?;
        api_token_get(&mut self.tx, name).await
    }

    /// Revokes a token; revoking a revoked token changes nothing.
    pub async fn api_token_revoke(
        &mut self,
        name: &ApiTokenName,
        actor: Actor<'_>,
    ) -> Result<ApiToken> {
        let current = api_token_get(&mut self.tx, name).await?;
        if current.revoke_time.is_some() {
            return Ok(current);
        }
        sqlx::query(
            "UPDATE api_tokens SET revoke_time = $1 WHERE tenant = $2 AND owner = $3 AND name = $4",
        )
        .bind(Timestamp::now().0)
        .bind(scope(&name.user))
        .bind(&name.user.user)
        .bind(&name.api_token)
        .execute(&mut *self.tx)
        .await
        .map_err(backend)?;
        event_add(
            &mut self.tx,
            scope(&name.user),
            &name.user.to_string(),
            "ApiTokenRevoked",
            &format!("API token {} revoked by {actor}.", name.api_token),
            actor,
        )
        .await?;
        api_token_get(&mut self.tx, name).await
    }

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
