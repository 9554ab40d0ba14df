//! Teams: named groups of a tenant's users, which role bindings can name.

use outpost_domain::{TeamName, TenantName, Timestamp, UserName, resources::Team};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Actor, Page, PageRequest, Queries, Result, StoreError, Tx,
    error::backend,
    fetch_limit, new_uid,
    records::event_add,
    rows::{MetaRow, check_version, expect_one_row},
    split_page,
    users::{user_get, user_name},
};

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

pub(crate) async fn team_get(conn: &mut AnyConnection, name: &TeamName) -> Result<Team> {
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

/// Reads on teams.
pub trait TeamQueries: Queries {
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
}

impl<Q: Queries> TeamQueries for Q {}

impl Tx {
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
}
