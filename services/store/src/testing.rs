//! Fresh databases for tests: a SQLite file in a temp dir, or a new database on the
//! PostgreSQL server named by `OUTPOST_TEST_POSTGRES_URL`.

use crate::Store;

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
