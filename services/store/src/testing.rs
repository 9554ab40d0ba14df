//! Fresh databases for tests: a SQLite file in a temp dir, or a new database on the
//! PostgreSQL server named by `OUTPOST_TEST_POSTGRES_URL`.

use std::collections::BTreeMap;

use sqlx::Row as _;

use crate::{Backend, Store};

/// Environment variable holding a PostgreSQL URL whose user may create databases.
pub const POSTGRES_URL_VAR: &str = "OUTPOST_TEST_POSTGRES_URL";

/// A store on a fresh SQLite file; the file lives as long as the returned dir.
pub async fn fresh_sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir for a test database");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("outpost.db").display()
    );
    let store = Store::connect(&url, 8)
        .await
        .expect("open fresh SQLite store");
    (store, dir)
}

/// A store on a new, empty PostgreSQL database. Panics, naming the variable, when
/// `OUTPOST_TEST_POSTGRES_URL` is unset: PostgreSQL runs are never skipped silently.
pub async fn fresh_postgres() -> Store {
    let base = fresh_postgres_url().await;
    Store::connect(&base, 8)
        .await
        .expect("open fresh PostgreSQL store")
}

/// Creates a new empty database and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let base = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!("{POSTGRES_URL_VAR} is not set: start PostgreSQL (scripts/test does) and set it to its URL")
    });
    sqlx::any::install_default_drivers();
    let db = format!("outpost_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("connect to the test PostgreSQL server");
    // The name is generated above from a UUID, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{db}"),
        None => panic!("{POSTGRES_URL_VAR} must end in /DATABASE"),
    }
}

/// Summaries of everything a refused call must leave untouched, for every table the schema
/// has (found in the database's own catalog, so a table added later is covered without a
/// change here): its row count, the sum of each integer column (versions, times and ids, which
/// every write moves) and the total length of every other column. Computed by the database,
/// so it stays cheap on large tables. Audit records are left out: every call, refused or
/// not, writes one by design.
#[derive(Debug)]
pub struct Fingerprints {
    /// A table and the query that sums it up.
    queries: Vec<(String, String)>,
}

impl Fingerprints {
    /// Reads `store`'s schema once and prepares a query for each table.
    pub async fn of(store: &Store) -> Self {
        let mut queries = Vec::new();
        for (table, columns) in schema(store).await {
            if table == "audit_records" {
                continue;
            }
            let mut sums = vec!["COUNT(*)".to_owned()];
            for (column, integer) in columns {
                let value = if integer {
                    column
                } else {
                    format!("LENGTH(CAST({column} AS TEXT))")
                };
                sums.push(format!("CAST(COALESCE(SUM({value}), 0) AS BIGINT)"));
            }
            let query = format!("SELECT {} FROM {table}", sums.join(", "));
            queries.push((table, query));
        }
        Self { queries }
    }

    /// The summary of every table now, by table name.
    pub async fn take(&self, store: &Store) -> BTreeMap<String, Vec<i64>> {
        let mut digests = BTreeMap::new();
        for (table, query) in &self.queries {
            // Built from the database's own catalog, never from input.
            let row = sqlx::query(sqlx::AssertSqlSafe(query.clone()))
                .fetch_one(&store.read)
                .await
                .expect("a table's digest");
            let values = (0..row.len())
                .map(|i| row.try_get::<i64, _>(i).expect("a digest value"))
                .collect();
            digests.insert(table.clone(), values);
        }
        digests
    }
}

/// Every table of the schema (but sqlx's own), with its columns and whether each holds
/// integers.
async fn schema(store: &Store) -> Vec<(String, Vec<(String, bool)>)> {
    let (tables, columns) = match store.backend() {
        Backend::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
            "SELECT name, UPPER(type) LIKE '%INT%' FROM pragma_table_info($1)",
        ),
        Backend::Postgres => (
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_sqlx%'",
            "SELECT CAST(column_name AS TEXT), data_type IN ('bigint', 'integer', 'smallint') \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        ),
    };
    let names: Vec<String> = sqlx::query_scalar(tables)
        .fetch_all(&store.read)
        .await
        .expect("the database's tables");
    let mut schema = Vec::new();
    for table in names {
        let rows = sqlx::query(columns)
            .bind(&table)
            .fetch_all(&store.read)
            .await
            .expect("a table's columns");
        let columns = rows
            .iter()
            .map(|r| {
                let integer = r
                    .try_get::<bool, _>(1)
                    .or_else(|_| r.try_get::<i64, _>(1).map(|n| n != 0))
                    .expect("whether a column holds integers");
                (r.try_get::<String, _>(0).expect("a column name"), integer)
            })
            .collect();
        schema.push((table, columns));
    }
    schema
}
