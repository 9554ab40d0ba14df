//! `AuditService`: the audit log, for tenant admins and platform admins.

use outpost_domain::{
    TenantName,
    authz::{Kind, Verb},
};
use outpost_proto::management::v1::{self as pb, audit_service_server::AuditService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{Api, next_page_token, page_request, parse_name, respond};

/// Implements `AuditService`.
#[derive(Debug, Clone)]
pub struct AuditApi(pub Api);

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_records(
        &self,
        req: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let tenant = if r.parent.is_empty() {
                None
            } else {
                Some(parse_name("parent", &r.parent, TenantName::parse)?.tenant)
            };
            api.authorize(
                &ctx,
                tenant.as_deref(),
                Kind::AuditRecord,
                Verb::Read,
                "tenant",
                &r.parent,
            )?;
            let page = page_request(&r.parent, r.page_size, &r.page_token)?;
            let page = api
                .reader()
                .await?
                .audit_record_list(tenant.as_deref(), &page)
                .await?;
            Ok(pb::ListAuditRecordsResponse {
                next_page_token: next_page_token(&r.parent, page.next_after),
                audit_records: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }
}
