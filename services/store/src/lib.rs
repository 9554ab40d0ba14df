//! Outpost's durable store: every resource of the management API, on SQLite (the embedded
//! default) or PostgreSQL (shared installations), through one code path (`sqlx::Any` and one
//! portable migration folder).
//!
//! **Durable** here: tenants, users, teams, tokens (hashes only), role bindings, datacenters,
//! projects, environments, services, events, audit records and idempotency answers.
//! **Derived**, never stored: etags (from `version`), a caller's effective role (from role
//! bindings and team membership).
//!
//! Every query is scoped by tenant: methods take typed names that carry their tenant, and
//! every `WHERE` clause includes it, so one tenant's rows cannot be reached through another's
//! names. Authorization (who may call what) is the API layer's job; scoping is this one's.
//!
//! Writes go through a [`Tx`]. On SQLite all writes share one connection, because SQLite
//! allows one writer and a second would fail with `SQLITE_BUSY` instead of waiting; reads use
//! their own pool and see the last committed state (WAL mode).
#![warn(missing_docs)]

mod agents;
mod api_tokens;
mod changes;
mod deployments;
mod desired;
mod environments;
mod error;
mod lookups;
mod managed;
mod platform;
mod projects;
mod records;
mod reports;
mod role_bindings;
mod rows;
mod services;
mod teams;
mod users;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

use std::{collections::BTreeSet, sync::Arc};

use sqlx::{AnyConnection, AnyPool, Executor, any::AnyPoolOptions, pool::PoolConnection};
use tokio::sync::broadcast;

pub use agents::SealedAuthority;
pub use api_tokens::ApiTokenQueries;
pub use changes::DatacenterChange;
pub use deployments::{DeployOutcome, DeploymentQueries};
pub use desired::{DesiredInputs, ManagedInput, SealedSecret};
pub use environments::EnvironmentQueries;
pub use error::{PAGE_TOKEN_MISMATCH, StoreError};
pub use managed::{DELETED_RETENTION_MS, ManagedQueries, NewManaged};
pub use platform::PlatformQueries;
pub use projects::ProjectQueries;
pub use records::{NewAuditRecord, RecordQueries, StoredAnswer};
pub use reports::ReportedStatus;
pub use role_bindings::RoleBindingQueries;
pub use services::ServiceQueries;
pub use teams::TeamQueries;
pub use users::UserQueries;

/// Every query trait, for `use outpost_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        ApiTokenQueries, DeploymentQueries, EnvironmentQueries, ManagedQueries, PlatformQueries,
        ProjectQueries, Queries, RecordQueries, RoleBindingQueries, ServiceQueries, TeamQueries,
        UserQueries,
    };
}

/// Result of store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Key to pass as [`PageRequest::after`] for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// Which page of a list to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Continue after this key (from [`Page::next_after`]).
    pub after: Option<String>,
    /// Page size, already bounded by the caller.
    pub limit: u32,
}

/// Who made a change, for events.
pub type Actor<'a> = &'a str;

/// Handle to the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    changes: broadcast::Sender<DatacenterChange>,
    /// Forwards PostgreSQL notifications while any clone of the store lives.
    _listener: Option<Arc<changes::ListenerTask>>,
}

/// How many change notices a slow subscriber may fall behind before it is told to resync.
const CHANGE_BUFFER: usize = 1024;

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) and runs pending
    /// migrations. Safe to call from several processes at once on one PostgreSQL: the
    /// migrator takes an advisory lock.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let store = match backend {
            Backend::Sqlite => {
                let write = sqlite_pool(url, 1).await?;
                // WAL lets readers proceed while the writer commits; it is a property of the
                // file, so setting it once on the writer is enough.
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&write)
                    .await
                    .map_err(error::backend)?;
                sqlx::migrate!("./migrations")
                    .run(&write)
                    .await
                    .map_err(StoreError::Migrate)?;
                let read = sqlite_pool(url, max_connections.max(1)).await?;
                let (changes, _) = broadcast::channel(CHANGE_BUFFER);
                Self {
                    read,
                    write,
                    backend,
                    changes,
                    _listener: None,
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    // A broken connection fails its query and is replaced; pinging every connection on
                    // every acquire costs as much as a simple query.
                    .test_before_acquire(false)
                    .max_connections(max_connections.max(2))
                    .connect(url)
                    .await
                    .map_err(error::backend)?;
                sqlx::migrate!("./migrations")
                    .run(&pool)
                    .await
                    .map_err(StoreError::Migrate)?;
                let (changes, _) = broadcast::channel(CHANGE_BUFFER);
                let listener = changes::ListenerTask::start(url, changes.clone()).await?;
                Self {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    changes,
                    _listener: Some(Arc::new(listener)),
                }
            }
        };
        Ok(store)
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a read-write transaction. Dropping it without [`Tx::commit`] rolls back.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = self.write.begin().await.map_err(error::backend)?;
        Ok(Tx {
            tx,
            touched: BTreeSet::new(),
            traceparent: String::new(),
            backend: self.backend,
            changes: self.changes.clone(),
        })
    }

    /// Notices of committed changes to datacenters' desired state, from this process and,
    /// on PostgreSQL, from every other instance sharing the database. Level-triggered: a
    /// notice says "look again", and [`DatacenterChange::All`] follows any gap.
    pub fn subscribe(&self) -> broadcast::Receiver<DatacenterChange> {
        self.changes.subscribe()
    }

    /// A connection for reads outside any transaction.
    pub async fn reader(&self) -> Result<Reader> {
        let conn = self.read.acquire().await.map_err(error::backend)?;
        Ok(Reader { conn })
    }

    /// Closes every connection; used on shutdown.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool> {
    AnyPoolOptions::new()
        // A broken connection fails its query and is replaced; pinging every connection on
        // every acquire costs as much as a simple query.
        .test_before_acquire(false)
        .max_connections(max)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // NORMAL is durable in WAL mode except for the last commits on power loss;
                // busy_timeout makes a reader wait out a checkpoint instead of failing.
                conn.execute(
                    "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(error::backend)
}

/// A pooled connection for reads. Implements [`Queries`].
#[derive(Debug)]
pub struct Reader {
    conn: PoolConnection<sqlx::Any>,
}

/// A read-write transaction. Implements [`Queries`] (reads see its own writes) and every
/// mutating method. Rolls back unless [`Tx::commit`] is called.
#[derive(Debug)]
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    /// Datacenters whose desired state this transaction changed.
    touched: BTreeSet<String>,
    /// The trace of the call making the change, passed on with the change notices.
    traceparent: String,
    backend: Backend,
    changes: broadcast::Sender<DatacenterChange>,
}

impl Tx {
    /// Makes every change of this transaction durable, or none of them, then tells
    /// subscribers which datacenters changed.
    pub async fn commit(mut self) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        if self.backend == Backend::Postgres {
            // NOTIFY is transactional: delivered to every instance only if this commits.
            for dc in &touched {
                let payload = if self.traceparent.is_empty() {
                    dc.clone()
                } else {
                    format!("{dc} {}", self.traceparent)
                };
                sqlx::query("SELECT pg_notify('outpost_datacenters', $1)")
                    .bind(payload)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(error::backend)?;
            }
        }
        self.tx.commit().await.map_err(error::backend)?;
        if self.backend == Backend::Sqlite {
            for dc in touched {
                // No subscriber is fine: nobody is waiting.
                let _ = self.changes.send(DatacenterChange::One {
                    datacenter: dc,
                    traceparent: self.traceparent.clone(),
                });
            }
        }
        Ok(())
    }

    /// Names the trace (W3C `traceparent`) of the call this transaction serves, so the
    /// agents that act on its changes continue that trace.
    pub fn set_traceparent(&mut self, traceparent: String) {
        self.traceparent = traceparent;
    }

    /// Tells subscribers, once this commits, that something about `datacenter` changed
    /// without a new desired state (a lifecycle status, say): they look again.
    pub(crate) fn notify_datacenter(&mut self, datacenter: &str) {
        self.touched.insert(datacenter.to_owned());
    }

    /// Bumps a datacenter's desired-state revision, within this transaction.
    pub(crate) async fn touch_datacenter(&mut self, datacenter: &str) -> Result<()> {
        sqlx::query("UPDATE datacenters SET revision = revision + 1 WHERE name = $1")
            .bind(datacenter)
            .execute(&mut *self.tx)
            .await
            .map_err(error::backend)?;
        self.touched.insert(datacenter.to_owned());
        Ok(())
    }

    /// Bumps the revision of every datacenter holding an environment that matches `sql`
    /// (a `SELECT DISTINCT datacenter …` with the tenant as `$1` and optional `$2`, `$3`).
    pub(crate) async fn touch_datacenters_where(
        &mut self,
        sql: &'static str,
        binds: &[&str],
    ) -> Result<()> {
        let mut query = sqlx::query_scalar::<_, String>(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let dcs = query
            .fetch_all(&mut *self.tx)
            .await
            .map_err(error::backend)?;
        for dc in dcs {
            self.touch_datacenter(&dc).await?;
        }
        Ok(())
    }
}

/// Read queries, available on a [`Reader`] and inside a [`Tx`]. The methods live in the
/// per-resource modules.
pub trait Queries: Send {
    /// The underlying connection.
    fn conn(&mut self) -> &mut AnyConnection;
}

impl Queries for Reader {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Queries for Tx {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// A new random id for `uid` columns.
fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new id that sorts by creation time, for history rows (events, audit records).
fn new_time_ordered_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Fetch one more row than asked, to learn whether another page follows.
fn split_page<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let next_after = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(&key)
    } else {
        None
    };
    Page {
        items: rows,
        next_after,
    }
}

/// `LIMIT` for a page request: one extra row to detect a following page.
fn fetch_limit(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}
