//! API tokens (their hashes only), and the lookup that turns a token into a [`Principal`].

use outpost_domain::{
    ApiTokenName, Timestamp, UserName,
    authz::{Principal, Role},
    resources::ApiToken,
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, Store, StoreError, Tx,
    error::backend,
    fetch_limit,
    records::event_add,
    split_page,
    users::{scope, user_get, user_name},
};

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

/// Reads on API tokens.
pub trait ApiTokenQueries: Queries {
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
}

impl<Q: Queries> ApiTokenQueries for Q {}

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
}
