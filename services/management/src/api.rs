//! The public API's tonic services, one module per resource, and what they share: the call
//! context, authorization, transactions with idempotency, paging and update masks.
//!
//! A handler decodes, authorizes, validates through the domain, calls the store and encodes;
//! nothing else. Audit records and per-call tracing live in [`crate::rpc`], so no handler can
//! forget them.

mod audit;
mod datacenters;
mod deployments;
mod environments;
mod events;
mod logs;
mod managed;
mod projects;
mod providers;
mod reach;
mod role_bindings;
mod services;
mod teams;
mod tenants;
mod tokens;
mod users;
mod watch;

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use outpost_ca::KeyEncryptionKey;
use outpost_domain::provider::Catalog;
use outpost_domain::{
    DatacenterName, EnvironmentName, NameError, Named, ProjectName, ServiceName, TenantName,
    UserName, Violations,
    authz::{self, Kind, Principal, Verb},
    resources::version_of_etag,
};
use outpost_proto::management::v1 as pb;
use outpost_store::{Page, PageRequest, Reader, Store, Tx, prelude::*};
use prost::Message;
use tonic::Request;

use crate::{
    auth::Authenticator,
    error::ApiError,
    gateway::logs::LogRelay,
    rpc::{CallRecord, CallSlot},
};

pub use self::{
    audit::AuditApi, datacenters::DatacenterApi, deployments::DeploymentApi,
    environments::EnvironmentApi, events::EventApi, logs::LogApi, managed::ManagedApi,
    projects::ProjectApi, providers::ProviderApi, role_bindings::RoleBindingApi,
    services::ServiceApi, teams::TeamApi, tenants::TenantApi, tokens::ApiTokenApi, users::UserApi,
};

/// State every API service shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    auth: Authenticator,
    /// What agents pin; empty when this instance runs no agent gateway.
    ca_fingerprint: String,
    kek: KeyEncryptionKey,
    /// The links of this instance's agent gateway, which log requests go through.
    log_relay: Arc<LogRelay>,
    /// The managed-service providers offered.
    catalog: Arc<Catalog>,
}

/// Who is calling, from where, and which method.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub principal: Principal,
    /// `/package.Service/Method`.
    pub method: String,
    call: Option<CallSlot>,
}

impl Ctx {
    /// The caller's resource name, recorded as the actor of events and audit records.
    pub fn actor(&self) -> String {
        self.principal.user.to_string()
    }

    fn record(&self, update: impl FnOnce(&mut CallRecord)) {
        if let Some(slot) = &self.call {
            update(
                &mut slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }
    }
}

/// Longest accepted `request_id`.
const MAX_REQUEST_ID_LEN: usize = 64;
/// Page size when the caller gives none.
const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page; bigger requests are clamped (AIP-158).
const MAX_PAGE_SIZE: u32 = 1000;

impl Api {
    /// API state over `store`; `ca_fingerprint` is handed out with join tokens.
    pub fn new(store: Store, ca_fingerprint: String, kek: KeyEncryptionKey) -> Self {
        // The built-in definitions are checked by tests; an empty catalog is the fallback.
        Self::with_catalog(
            store,
            ca_fingerprint,
            kek,
            Catalog::with(&[]).unwrap_or_default(),
        )
    }

    /// [`Api::new`] with an operator's provider catalog.
    pub fn with_catalog(
        store: Store,
        ca_fingerprint: String,
        kek: KeyEncryptionKey,
        catalog: Catalog,
    ) -> Self {
        let auth = Authenticator::new(store.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                auth,
                ca_fingerprint,
                kek,
                log_relay: Arc::default(),
                catalog: Arc::new(catalog),
            }),
        }
    }

    /// The managed-service providers offered (shared with the agent gateway, which renders
    /// what managed services run).
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// Where the agent gateway served next to this API registers its links, so log
    /// requests reach the agents linked to this instance.
    pub fn log_relay(&self) -> &Arc<LogRelay> {
        &self.inner.log_relay
    }

    /// The key that seals secret values before they are stored.
    pub(crate) fn kek(&self) -> &KeyEncryptionKey {
        &self.inner.kek
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// What agents pin; empty when this instance runs no agent gateway.
    pub(crate) fn ca_fingerprint(&self) -> &str {
        &self.inner.ca_fingerprint
    }

    /// Drops cached credentials after a change to who may do what.
    pub(crate) fn credentials_changed(&self) {
        self.inner.auth.invalidate();
    }

    /// Authenticates the request and records the caller for the audit log.
    pub(crate) async fn context<T>(&self, req: &Request<T>) -> Result<Ctx, ApiError> {
        let authorization = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let principal = self.inner.auth.authenticate(authorization).await?;
        // Set by the per-RPC layer, which every served call passes through.
        let call = req.extensions().get::<CallSlot>().cloned();
        let method = call
            .as_ref()
            .map(|slot| {
                slot.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .method
                    .clone()
            })
            .ok_or(ApiError::Internal)?;
        let ctx = Ctx {
            principal,
            method,
            call,
        };
        let actor = ctx.actor();
        let tenant = ctx.principal.user.tenant.clone();
        ctx.record(|r| {
            r.actor = Some(actor);
            r.tenant = tenant;
        });
        Ok(ctx)
    }

    /// Checks the policy for `verb` on `kind` named `name` in `tenant`, and records the
    /// target for tracing and the audit log. A resource in a tenant the caller cannot see is
    /// reported as not found.
    pub(crate) fn authorize(
        &self,
        ctx: &Ctx,
        tenant: Option<&str>,
        kind: Kind,
        verb: Verb,
        kind_name: &'static str,
        name: &str,
    ) -> Result<(), ApiError> {
        if let Some(t) = tenant {
            tracing::Span::current().record("tenant", t);
        }
        let visible_tenant = tenant.map(str::to_owned);
        let target = name.to_owned();
        ctx.record(|r| {
            // Calls about another tenant are audited in the caller's tenant, never in the
            // target's: a tenant's log must not reveal who probed it.
            if ctx.principal.is_platform_admin() || r.tenant == visible_tenant {
                r.tenant = visible_tenant;
            }
            r.target = target;
        });
        authz::authorize(&ctx.principal, tenant, kind, verb)
            .map_err(|d| ApiError::denied(d, kind_name, name))
    }

    /// The preamble of every call about a named resource: authenticates the caller, parses
    /// request field `field` (`raw`) as an `N`, and authorizes `verb` on `kind` in the name's
    /// tenant; a refusal names the resource by `N`'s noun.
    pub(crate) async fn authorized<N: Named, T>(
        &self,
        req: &Request<T>,
        field: &str,
        raw: &str,
        kind: Kind,
        verb: Verb,
    ) -> Result<(Ctx, N), ApiError> {
        let ctx = self.context(req).await?;
        let name = self.authorize_name(&ctx, field, raw, kind, verb)?;
        Ok((ctx, name))
    }

    /// [`Api::authorized`] for a caller already authenticated (when the request is checked
    /// for a required field in between): parses `raw` from `field` as an `N` and authorizes
    /// `verb` on `kind` in its tenant.
    pub(crate) fn authorize_name<N: Named>(
        &self,
        ctx: &Ctx,
        field: &str,
        raw: &str,
        kind: Kind,
        verb: Verb,
    ) -> Result<N, ApiError> {
        self.authorize_name_as(ctx, field, raw, |_| kind, verb)
    }

    /// [`Api::authorize_name`] where the name decides which kind of resource it is to the
    /// policy (one's own API tokens and other people's, say).
    pub(crate) fn authorize_name_as<N: Named>(
        &self,
        ctx: &Ctx,
        field: &str,
        raw: &str,
        kind: impl FnOnce(&N) -> Kind,
        verb: Verb,
    ) -> Result<N, ApiError> {
        let name = parse_name(field, raw, N::parse)?;
        self.authorize(ctx, name.tenant(), kind(&name), verb, N::NOUN, raw)?;
        Ok(name)
    }

    /// One page of `kind` under the request's parent: authenticates, parses the parent as a
    /// `P`, authorizes reading `kind` in its tenant, and reads the page with `list`. For an
    /// empty page it makes sure the parent exists, so the page never hides a parent that does
    /// not (`NOT_FOUND` instead). Returns the parent with the items and the next page token.
    pub(crate) async fn list_under<P: Parent, T, R: ListRequest>(
        &self,
        req: &Request<R>,
        kind: Kind,
        list: impl AsyncFnOnce(&mut Reader, &P, &PageRequest) -> outpost_store::Result<Page<T>>,
    ) -> Result<Listed<P, T>, ApiError> {
        let r = req.get_ref();
        let (_, parent) = self
            .authorized::<P, _>(req, "parent", r.parent(), kind, Verb::Read)
            .await?;
        let (items, next_page_token) = self
            .list_page(
                r,
                async |reader, page| list(reader, &parent, page).await,
                &parent,
            )
            .await?;
        Ok(Listed {
            parent,
            items,
            next_page_token,
        })
    }

    /// [`Api::list_under`] after the caller is authorized: one page under `parent`, the
    /// request's, with the check that an empty page does not hide a missing parent. The
    /// reader is released before this returns.
    pub(crate) async fn list_page<P: Parent, T>(
        &self,
        request: &impl ListRequest,
        list: impl AsyncFnOnce(&mut Reader, &PageRequest) -> outpost_store::Result<Page<T>>,
        parent: &P,
    ) -> Result<(Vec<T>, String), ApiError> {
        let raw = request.parent();
        let page = page_request(raw, request.page_size(), request.page_token())?;
        let mut reader = self.reader().await?;
        let page = list(&mut reader, &page).await?;
        if page.items.is_empty() {
            P::exists(&mut reader, parent).await?;
        }
        Ok((page.items, next_page_token(raw, page.next_after)))
    }

    /// Records the request's idempotency key for the audit log.
    pub(crate) fn note_request_id(&self, ctx: &Ctx, request_id: &str) {
        let id = request_id.to_owned();
        ctx.record(|r| r.request_id = id);
    }

    /// A transaction that passes the current call's trace on to the agents its changes
    /// reach.
    async fn begin(&self) -> Result<Tx, ApiError> {
        let mut tx = self.inner.store.begin().await?;
        tx.set_traceparent(outpost_telemetry::current_traceparent());
        Ok(tx)
    }

    /// A connection for reads.
    pub(crate) async fn reader(&self) -> Result<Reader, ApiError> {
        Ok(self.inner.store.reader().await?)
    }

    /// Runs `op` in a transaction and commits. With a `request_id`, the answer is stored in
    /// the same transaction; a retry with that key returns it without running `op` again,
    /// and a concurrent duplicate that loses the race gets the winner's answer.
    pub(crate) async fn mutate<T, F>(
        &self,
        ctx: &Ctx,
        request_id: &str,
        op: F,
    ) -> Result<T, ApiError>
    where
        T: Message + Default,
        F: AsyncFnOnce(&mut Tx) -> Result<T, ApiError>,
    {
        self.mutate_storing(ctx, request_id, T::encode_to_vec, op)
            .await
    }

    /// [`Api::mutate`] with control over what is stored for retries (to leave out secrets).
    pub(crate) async fn mutate_storing<T, F>(
        &self,
        ctx: &Ctx,
        request_id: &str,
        stored_form: impl FnOnce(&T) -> Vec<u8>,
        op: F,
    ) -> Result<T, ApiError>
    where
        T: Message + Default,
        F: AsyncFnOnce(&mut Tx) -> Result<T, ApiError>,
    {
        self.note_request_id(ctx, request_id);
        if request_id.is_empty() {
            let mut tx = self.begin().await?;
            let answer = op(&mut tx).await?;
            tx.commit().await?;
            return Ok(answer);
        }
        if request_id.len() > MAX_REQUEST_ID_LEN
            || !request_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::field(
                "request_id",
                format!(
                    "must be at most {MAX_REQUEST_ID_LEN} printable ASCII characters, e.g. a UUID"
                ),
            ));
        }
        let actor = ctx.actor();
        if let Some(answer) = self.stored_answer(ctx, &actor, request_id).await? {
            return Ok(answer);
        }
        // The transaction ends (commits or rolls back) before a lost race is looked up.
        let result = {
            let mut tx = self.begin().await?;
            match op(&mut tx).await {
                Ok(answer) => {
                    let stored = stored_form(&answer);
                    match tx
                        .idempotency_put(&actor, request_id, &ctx.method, &stored)
                        .await
                    {
                        Ok(()) => tx.commit().await.map(|()| answer).map_err(ApiError::from),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Err(e) if e.may_be_retry_race() => {
                match self.stored_answer(ctx, &actor, request_id).await? {
                    Some(answer) => Ok(answer),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn stored_answer<T: Message + Default>(
        &self,
        ctx: &Ctx,
        actor: &str,
        request_id: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(stored) = self
            .reader()
            .await?
            .idempotency_get(actor, request_id)
            .await?
        else {
            return Ok(None);
        };
        if stored.method != ctx.method {
            return Err(ApiError::field(
                "request_id",
                format!(
                    "was already used for {}; use a new id for each distinct request",
                    stored.method
                ),
            ));
        }
        T::decode(stored.response.as_slice())
            .map(Some)
            .map_err(|e| {
                tracing::error!(error = %outpost_process::ErrorChain(&e), "stored idempotent answer does not decode");
                ApiError::Internal
            })
    }
}

/// Runs a handler body written with `?` over [`ApiError`] and answers with its result: the
/// one place handler errors become a `Status`.
pub(crate) async fn respond<T>(
    body: impl Future<Output = Result<T, ApiError>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    body.await.map(tonic::Response::new).map_err(Into::into)
}

/// Parses a resource name from request field `field`.
pub(crate) fn parse_name<N>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<N, NameError>,
) -> Result<N, ApiError> {
    parse(value).map_err(|e| ApiError::field(field, e.to_string()))
}

/// The store's page request for `page_size`/`page_token` of a list over `parent`.
pub(crate) fn page_request(
    parent: &str,
    page_size: i32,
    page_token: &str,
) -> Result<PageRequest, ApiError> {
    let limit = match u32::try_from(page_size) {
        Err(_) => return Err(ApiError::field("page_size", "must not be negative")),
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
    };
    if page_token.is_empty() {
        return Ok(PageRequest { after: None, limit });
    }
    let bad = || ApiError::field("page_token", outpost_store::PAGE_TOKEN_MISMATCH);
    let decoded = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (token_parent, after) = decoded.split_once('\n').ok_or_else(bad)?;
    if token_parent != parent || after.is_empty() {
        return Err(bad());
    }
    Ok(PageRequest {
        after: Some(after.to_owned()),
        limit,
    })
}

/// The `next_page_token` for a page that ended at `next_after`.
pub(crate) fn next_page_token(parent: &str, next_after: Option<String>) -> String {
    next_after
        .map(|after| URL_SAFE_NO_PAD.encode(format!("{parent}\n{after}")))
        .unwrap_or_default()
}

/// The fields an update touches: the mask's paths, or all of `mutable` when it is empty.
pub(crate) struct UpdateMask(Vec<String>);

impl UpdateMask {
    pub(crate) fn parse(
        mask: Option<&prost_types::FieldMask>,
        mutable: &[&str],
    ) -> Result<Self, ApiError> {
        let paths = mask.map(|m| m.paths.clone()).unwrap_or_default();
        if paths.is_empty() || paths == ["*"] {
            return Ok(Self(mutable.iter().map(|s| (*s).to_owned()).collect()));
        }
        let mut v = outpost_domain::Violations::default();
        for p in &paths {
            if !mutable.contains(&p.as_str()) {
                let shown: String = p.chars().take(64).collect();
                v.add(
                    "update_mask",
                    format!(
                        "{shown:?} is not an updatable field; use {}",
                        mutable.join(", ")
                    ),
                );
            }
        }
        v.into_result()?;
        Ok(Self(paths))
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.iter().any(|p| p == field)
    }
}

/// Refuses an update whose `etag` is set and not the current one.
pub(crate) fn check_etag(
    etag: &str,
    current_version: i64,
    kind: &str,
    name: &str,
) -> Result<(), ApiError> {
    if etag.is_empty() || version_of_etag(etag) == Some(current_version) {
        Ok(())
    } else {
        Err(ApiError::Aborted(format!(
            "{kind} {name} was changed by someone else (stale etag); read it again and retry"
        )))
    }
}

/// The version a delete's `etag` requires: `None` when unset; a malformed etag requires a
/// version no resource has, so it is refused as stale.
pub(crate) fn expected_version(etag: &str) -> Option<i64> {
    (!etag.is_empty()).then(|| version_of_etag(etag).unwrap_or(-1))
}

/// Parses a datacenter reference given in `field`, as a field violation when malformed.
pub(crate) fn datacenter_field(
    v: &mut Violations,
    field: &str,
    value: &str,
) -> Option<DatacenterName> {
    match DatacenterName::parse(value) {
        Ok(dc) => Some(dc),
        Err(_) if value.is_empty() => {
            v.add(
                field,
                "is required: the datacenter to place environments in, e.g. datacenters/local",
            );
            None
        }
        Err(e) => {
            v.add(field, e.to_string());
            None
        }
    }
}

/// Checks that a required message field is present.
pub(crate) fn required<'a, T>(field: &str, value: Option<&'a T>) -> Result<&'a T, ApiError> {
    value.ok_or_else(|| ApiError::field(field, "is required"))
}

/// A page of a list and where it came from.
pub(crate) struct Listed<P, T> {
    /// The parent, parsed.
    pub parent: P,
    /// The page.
    pub items: Vec<T>,
    /// The token for the next page; empty after the last.
    pub next_page_token: String,
}

/// A list request: its parent (as the caller spelled it) and the page it asks for.
pub(crate) trait ListRequest {
    fn parent(&self) -> &str;
    fn page_size(&self) -> i32;
    fn page_token(&self) -> &str;
}

macro_rules! list_requests {
    ($($request:ty),* $(,)?) => {$(
        impl ListRequest for $request {
            fn parent(&self) -> &str {
                &self.parent
            }
            fn page_size(&self) -> i32 {
                self.page_size
            }
            fn page_token(&self) -> &str {
                &self.page_token
            }
        }
    )*};
}

list_requests!(
    pb::ListProjectsRequest,
    pb::ListEnvironmentsRequest,
    pb::ListServicesRequest,
    pb::ListDeploymentsRequest,
    pb::ListManagedServicesRequest,
    pb::ListDeletedManagedServicesRequest,
    pb::ListTeamsRequest,
    pb::ListRoleBindingsRequest,
    pb::ListApiTokensRequest,
);

/// A resource other resources are listed under: for an empty page, whether it exists.
pub(crate) trait Parent: Named {
    fn exists(
        reader: &mut Reader,
        name: &Self,
    ) -> impl Future<Output = outpost_store::Result<()>> + Send;
}

macro_rules! parents {
    ($($name:ty => $get:ident),* $(,)?) => {$(
        impl Parent for $name {
            async fn exists(reader: &mut Reader, name: &Self) -> outpost_store::Result<()> {
                reader.$get(name).await.map(drop)
            }
        }
    )*};
}

parents!(
    TenantName => tenant_get,
    ProjectName => project_get,
    EnvironmentName => environment_get,
    ServiceName => service_get,
    UserName => user_get,
);
