//! `TenantService`: the unit of isolation, managed by platform admins.

use outpost_domain::{
    TenantName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, tenant_service_server::TenantService};
use outpost_store::{Page, prelude::*};
use tonic::{Request, Response, Status};

use super::{
    Api, UpdateMask, check_etag, expected_version, next_page_token, page_request, required, respond,
};

/// Implements `TenantService`.
#[derive(Debug, Clone)]
pub struct TenantApi(pub Api);

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn get_tenant(
        &self,
        req: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<TenantName, _>(&req, "name", raw, Kind::Tenant, Verb::Read)
                .await?;
            Ok(api.reader().await?.tenant_get(&name).await?.into())
        })
        .await
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let page = page_request("", r.page_size, &r.page_token)?;
            let mut reader = api.reader().await?;
            // A tenant member sees exactly their own tenant; only platform admins list them all.
            let page = match ctx.principal.user.tenant.clone() {
                None => reader.tenant_list(&page).await?,
                Some(own) => {
                    let own = TenantName::new(own);
                    api.authorize(
                        &ctx,
                        Some(&own.tenant),
                        Kind::Tenant,
                        Verb::Read,
                        "tenant",
                        &own.to_string(),
                    )?;
                    let items = if page.after.is_none() {
                        vec![reader.tenant_get(&own).await?]
                    } else {
                        Vec::new()
                    };
                    Page {
                        items,
                        next_after: None,
                    }
                }
            };
            Ok(pb::ListTenantsResponse {
                next_page_token: next_page_token("", page.next_after),
                tenants: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_tenant(
        &self,
        req: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            api.authorize(
                &ctx,
                None,
                Kind::Tenant,
                Verb::Create,
                "tenant",
                &format!("tenants/{}", r.tenant_id),
            )?;
            let tenant = required("tenant", r.tenant.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "tenant_id", &r.tenant_id);
            validate::display_name(&mut v, "tenant.display_name", &tenant.display_name);
            v.into_result()?;
            let name = TenantName::new(&r.tenant_id);
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .tenant_create(&name, &tenant.display_name, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let tenant = required("tenant", r.tenant.as_ref())?;
            let name = api.authorize_name::<TenantName>(
                &ctx,
                "tenant.name",
                &tenant.name,
                Kind::Tenant,
                Verb::Update,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), &["display_name"])?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.tenant_get(&name).await?;
                    check_etag(&tenant.etag, current.meta.version, "tenant", &tenant.name)?;
                    let mut display_name = current.display_name;
                    if mask.has("display_name") {
                        let mut v = Violations::default();
                        validate::display_name(&mut v, "tenant.display_name", &tenant.display_name);
                        v.into_result()?;
                        display_name.clone_from(&tenant.display_name);
                    }
                    Ok(tx
                        .tenant_update(&name, current.meta.version, &display_name, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_tenant(
        &self,
        req: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::DeleteTenantResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<TenantName, _>(&req, "name", &r.name, Kind::Tenant, Verb::Delete)
                .await?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.tenant_delete(&name, expected_version(&r.etag), r.cascade, &actor)
                        .await?;
                    Ok(pb::DeleteTenantResponse {
                        name: r.name.clone(),
                    })
                })
                .await?;
            api.credentials_changed();
            Ok(deleted)
        })
        .await
    }
}
