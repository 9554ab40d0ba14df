//! History: events per resource, the audit log, and stored first answers for idempotent
//! retries.

use outpost_domain::{
    Timestamp,
    resources::{AuditRecord, Event},
};
use sqlx::{AnyConnection, FromRow};

use crate::{
    Page, PageRequest, Queries, Result, Store, StoreError, Tx, error::backend, fetch_limit,
    new_time_ordered_id, split_page,
};

#[derive(FromRow)]
struct EventRow {
    id: String,
    resource: String,
    reason: String,
    message: String,
    actor: String,
    create_time: i64,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            resource: r.resource,
            reason: r.reason,
            message: r.message,
            actor: r.actor,
            create_time: Timestamp(r.create_time),
        }
    }
}

/// Appends an event to `resource`'s history, inside the transaction that made the change.
pub(crate) async fn event_add(
    conn: &mut AnyConnection,
    tenant: &str,
    resource: &str,
    reason: &str,
    message: &str,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (id, tenant, resource, reason, message, actor, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_time_ordered_id())
    .bind(tenant)
    .bind(resource)
    .bind(reason)
    .bind(message)
    .bind(actor)
    .bind(Timestamp::now().0)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn event_list(
    conn: &mut AnyConnection,
    resource: &str,
    page: &PageRequest,
) -> Result<Page<Event>> {
    // Newest first: ids are time-ordered, so the keyset runs downwards.
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, resource, reason, message, actor, create_time FROM events \
         WHERE resource = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(resource)
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(Event::from).collect(),
        page.limit,
        |e| e.id.clone(),
    ))
}

/// What the API layer knows about a finished mutating call.
#[derive(Debug, Clone, Default)]
pub struct NewAuditRecord {
    /// Tenant targeted; `None` for platform-level calls.
    pub tenant: Option<String>,
    /// Caller's user name.
    pub actor: String,
    /// Full gRPC method.
    pub method: String,
    /// Resource acted on.
    pub target: String,
    /// gRPC code name of the result.
    pub result: String,
    /// Caller's address.
    pub peer: String,
    /// Idempotency key, possibly empty.
    pub request_id: String,
}

#[derive(FromRow)]
struct AuditRow {
    id: String,
    tenant: String,
    actor: String,
    method: String,
    target: String,
    result: String,
    peer: String,
    request_id: String,
    create_time: i64,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            tenant: (!r.tenant.is_empty()).then_some(r.tenant),
            actor: r.actor,
            method: r.method,
            target: r.target,
            result: r.result,
            peer: r.peer,
            request_id: r.request_id,
            create_time: Timestamp(r.create_time),
        }
    }
}

impl Store {
    /// Appends one audit record in its own transaction: the audit log records refused and
    /// failed calls too, whose own transactions rolled back.
    pub async fn audit_record_add(&self, record: &NewAuditRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_records (id, tenant, actor, method, target, result, peer, request_id, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_time_ordered_id())
        .bind(record.tenant.as_deref().unwrap_or_default())
        .bind(&record.actor)
        .bind(&record.method)
        .bind(&record.target)
        .bind(&record.result)
        .bind(&record.peer)
        .bind(&record.request_id)
        .bind(Timestamp::now().0)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

pub(crate) async fn audit_record_list(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
    page: &PageRequest,
) -> Result<Page<AuditRecord>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, tenant, actor, method, target, result, peer, request_id, create_time \
         FROM audit_records WHERE tenant = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant.unwrap_or_default())
    .bind(page.after.as_deref().unwrap_or_default())
    .bind(fetch_limit(page))
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    Ok(split_page(
        rows.into_iter().map(AuditRecord::from).collect(),
        page.limit,
        |r| r.id.clone(),
    ))
}

/// The first answer to an earlier request with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The gRPC method the key was first used with.
    pub method: String,
    /// The encoded response.
    pub response: Vec<u8>,
}

pub(crate) async fn idempotency_get(
    conn: &mut AnyConnection,
    principal: &str,
    request_id: &str,
) -> Result<Option<StoredAnswer>> {
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT method, response FROM idempotency_keys WHERE principal = $1 AND request_id = $2",
    )
    .bind(principal)
    .bind(request_id)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    Ok(row.map(|(method, response)| StoredAnswer { method, response }))
}

impl Tx {
    /// Stores the answer to a request with an idempotency key, in the same transaction as
    /// the change it answers, so the change and its answer commit together or not at all.
    /// A concurrent request with the same key fails here with
    /// [`StoreError::AlreadyExists`] and rolls back; its caller then finds this answer.
    pub async fn idempotency_put(
        &mut self,
        principal: &str,
        request_id: &str,
        method: &str,
        response: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency_keys (principal, request_id, method, response, create_time) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(principal)
        .bind(request_id)
        .bind(method)
        .bind(response.to_vec())
        .bind(Timestamp::now().0)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_write("request", request_id))?;
        Ok(())
    }
}

/// Reads on events, audit records and idempotency answers.
pub trait RecordQueries: Queries {
    /// One page of `resource`'s events, newest first.
    fn event_list(
        &mut self,
        resource: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Event>>> + Send {
        event_list(self.conn(), resource, page)
    }

    /// One page of a tenant's (or, for `None`, the platform's) audit records, newest first.
    fn audit_record_list(
        &mut self,
        tenant: Option<&str>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AuditRecord>>> + Send {
        audit_record_list(self.conn(), tenant, page)
    }

    /// The stored answer for `principal`'s `request_id`, if any.
    fn idempotency_get(
        &mut self,
        principal: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<StoredAnswer>>> + Send {
        idempotency_get(self.conn(), principal, request_id)
    }
}

impl<Q: Queries> RecordQueries for Q {}
