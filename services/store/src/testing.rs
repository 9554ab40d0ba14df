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

/// A summary of everything a refused call must leave untouched: row counts of every table,
/// plus the sum of versions (which every update bumps) and of revocation times. Audit
/// records are left out: every call, refused or not, writes one by design.
pub async fn fingerprint(store: &Store) -> Vec<i64> {
    const QUERIES: [&str; 12] = [
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM tenants",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM users",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM teams",
        "SELECT COUNT(*) FROM team_members",
        "SELECT COUNT(*) + COALESCE(SUM(COALESCE(revoke_time, 0)), 0) FROM api_tokens",
        "SELECT COUNT(*) FROM role_bindings",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM datacenters",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM projects",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM environments",
        "SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM services",
        "SELECT COUNT(*) FROM events",
        "SELECT COUNT(*) FROM idempotency_keys",
    ];
    let mut out = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        let n: i64 = sqlx::query_scalar(q)
            .fetch_one(&store.read)
            .await
            .expect("fingerprint query");
        out.push(n);
    }
    out
}
