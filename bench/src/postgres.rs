//! A throwaway database on the PostgreSQL server the benchmark is pointed at, so runs never
//! see each other's rows and leave nothing behind.
//!
//! `outpost_store::testing::fresh_postgres_url` does the creating half, but only for the
//! server named by the environment; this takes the URL from the command line and also drops
//! the database afterwards.

use anyhow::Context as _;
use sqlx::{AnyPool, AssertSqlSafe};

/// A database created for this run.
#[derive(Debug)]
pub struct FreshDatabase {
    server_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl FreshDatabase {
    /// Creates `outpost_bench_<uuid>` on the server of `server_url` (a `postgres://…/DB`
    /// URL whose user may create databases).
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        let Some((server, _)) = server_url.rsplit_once('/') else {
            anyhow::bail!("the PostgreSQL URL must end in /DATABASE");
        };
        let name = format!("outpost_bench_{}", uuid::Uuid::new_v4().simple());
        // The name is made from a UUID above, never from input.
        admin(server_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(Self {
            url: format!("{server}/{name}"),
            server_url: server_url.into(),
            name,
        })
    }

    /// Drops the database, disconnecting anything still attached.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        admin(
            &self.server_url,
            &format!("DROP DATABASE {} WITH (FORCE)", self.name),
        )
        .await
    }
}

async fn admin(server_url: &str, statement: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(server_url)
        .await
        .context("connecting to the PostgreSQL server")?;
    let result = sqlx::query(AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .with_context(|| format!("running `{statement}`"));
    pool.close().await;
    result.map(drop)
}
