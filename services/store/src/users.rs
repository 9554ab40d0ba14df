//! Users: people of a tenant, or of the platform (no tenant).

use outpost_domain::{TenantName, Timestamp, UserName, resources::User};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, check_version, expect_one_row},
    split_page,
};

/// The `tenant` column value of a user: '' for platform users.
pub(crate) fn scope(user: &UserName) -> &str {
    user.tenant.as_deref().unwrap_or_default()
}

pub(crate) fn user_name(tenant: &str, user: String) -> UserName {
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

pub(crate) async fn user_get(conn: &mut AnyConnection, name: &UserName) -> Result<User> {
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

/// Reads on users.
pub trait UserQueries: Queries {
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
}

impl<Q: Queries> UserQueries for Q {}

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
}
