//! `DatacenterService`: where environments run. Platform admins manage them; anyone reads.

use outpost_domain::{
    DatacenterName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, datacenter_service_server::DatacenterService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{
    Api, UpdateMask, check_etag, expected_version, next_page_token, page_request, parse_name,
    required, respond,
};

/// Implements `DatacenterService`.
#[derive(Debug, Clone)]
pub struct DatacenterApi(pub Api);

#[tonic::async_trait]
impl DatacenterService for DatacenterApi {
    async fn get_datacenter(
        &self,
        req: Request<pb::GetDatacenterRequest>,
    ) -> Result<Response<pb::Datacenter>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let raw = &req.get_ref().name;
            let name = parse_name("name", raw, DatacenterName::parse)?;
            api.authorize(&ctx, None, Kind::Datacenter, Verb::Read, "datacenter", raw)?;
            Ok(api.reader().await?.datacenter_get(&name).await?.into())
        })
        .await
    }

    async fn list_datacenters(
        &self,
        req: Request<pb::ListDatacentersRequest>,
    ) -> Result<Response<pb::ListDatacentersResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            api.authorize(
                &ctx,
                None,
                Kind::Datacenter,
                Verb::Read,
                "datacenter",
                "datacenters",
            )?;
            let page = page_request("", r.page_size, &r.page_token)?;
            let page = api.reader().await?.datacenter_list(&page).await?;
            Ok(pb::ListDatacentersResponse {
                next_page_token: next_page_token("", page.next_after),
                datacenters: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_datacenter(
        &self,
        req: Request<pb::CreateDatacenterRequest>,
    ) -> Result<Response<pb::Datacenter>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            api.authorize(
                &ctx,
                None,
                Kind::Datacenter,
                Verb::Create,
                "datacenter",
                &format!("datacenters/{}", r.datacenter_id),
            )?;
            let dc = required("datacenter", r.datacenter.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "datacenter_id", &r.datacenter_id);
            validate::display_name(&mut v, "datacenter.display_name", &dc.display_name);
            // Shown to people like a display name, so held to the same rules.
            validate::display_name(&mut v, "datacenter.location", &dc.location);
            v.into_result()?;
            let name = DatacenterName {
                datacenter: r.datacenter_id.clone(),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .datacenter_create(&name, &dc.display_name, &dc.location, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_datacenter(
        &self,
        req: Request<pb::UpdateDatacenterRequest>,
    ) -> Result<Response<pb::Datacenter>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let dc = required("datacenter", r.datacenter.as_ref())?;
            let name = parse_name("datacenter.name", &dc.name, DatacenterName::parse)?;
            api.authorize(
                &ctx,
                None,
                Kind::Datacenter,
                Verb::Update,
                "datacenter",
                &dc.name,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), &["display_name", "location"])?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.datacenter_get(&name).await?;
                    check_etag(&dc.etag, current.meta.version, "datacenter", &dc.name)?;
                    let mut v = Violations::default();
                    let (mut display_name, mut loc) = (current.display_name, current.location);
                    if mask.has("display_name") {
                        validate::display_name(&mut v, "datacenter.display_name", &dc.display_name);
                        display_name.clone_from(&dc.display_name);
                    }
                    if mask.has("location") {
                        validate::display_name(&mut v, "datacenter.location", &dc.location);
                        loc.clone_from(&dc.location);
                    }
                    v.into_result()?;
                    Ok(tx
                        .datacenter_update(&name, current.meta.version, &display_name, &loc, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_datacenter(
        &self,
        req: Request<pb::DeleteDatacenterRequest>,
    ) -> Result<Response<pb::DeleteDatacenterResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let name = parse_name("name", &r.name, DatacenterName::parse)?;
            api.authorize(
                &ctx,
                None,
                Kind::Datacenter,
                Verb::Delete,
                "datacenter",
                &r.name,
            )?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.datacenter_delete(&name, expected_version(&r.etag), &actor)
                        .await?;
                    Ok(pb::DeleteDatacenterResponse {
                        name: r.name.clone(),
                    })
                })
                .await?;
            Ok(deleted)
        })
        .await
    }
}
