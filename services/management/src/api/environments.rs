//! `EnvironmentService`: the stages of a project, each placed in one datacenter.

use outpost_domain::{
    EnvironmentName, ProjectName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, environment_service_server::EnvironmentService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{
    Api, UpdateMask, check_etag, datacenter_field, expected_version, next_page_token, page_request,
    parse_name, required, respond,
};

/// Implements `EnvironmentService`.
#[derive(Debug, Clone)]
pub struct EnvironmentApi(pub Api);

#[tonic::async_trait]
impl EnvironmentService for EnvironmentApi {
    async fn get_environment(
        &self,
        req: Request<pb::GetEnvironmentRequest>,
    ) -> Result<Response<pb::Environment>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let raw = &req.get_ref().name;
            let name = parse_name("name", raw, EnvironmentName::parse)?;
            api.authorize(
                &ctx,
                Some(&name.tenant),
                Kind::Environment,
                Verb::Read,
                "environment",
                raw,
            )?;
            Ok(api.reader().await?.environment_get(&name).await?.into())
        })
        .await
    }

    async fn list_environments(
        &self,
        req: Request<pb::ListEnvironmentsRequest>,
    ) -> Result<Response<pb::ListEnvironmentsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let parent = parse_name("parent", &r.parent, ProjectName::parse)?;
            api.authorize(
                &ctx,
                Some(&parent.tenant),
                Kind::Environment,
                Verb::Read,
                "project",
                &r.parent,
            )?;
            let page = page_request(&r.parent, r.page_size, &r.page_token)?;
            let mut reader = api.reader().await?;
            // An empty list must not be mistaken for "the project exists but is empty".
            let page = reader.environment_list(&parent, &page).await?;
            // An empty page must not hide a parent that does not exist.
            if page.items.is_empty() {
                reader.project_get(&parent).await?;
            }
            Ok(pb::ListEnvironmentsResponse {
                next_page_token: next_page_token(&r.parent, page.next_after),
                environments: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_environment(
        &self,
        req: Request<pb::CreateEnvironmentRequest>,
    ) -> Result<Response<pb::Environment>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let parent = parse_name("parent", &r.parent, ProjectName::parse)?;
            api.authorize(
                &ctx,
                Some(&parent.tenant),
                Kind::Environment,
                Verb::Create,
                "project",
                &r.parent,
            )?;
            let env = required("environment", r.environment.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "environment_id", &r.environment_id);
            validate::display_name(&mut v, "environment.display_name", &env.display_name);
            let dc = if env.datacenter.is_empty() {
                None
            } else {
                datacenter_field(&mut v, "environment.datacenter", &env.datacenter)
            };
            v.into_result()?;
            let name = EnvironmentName {
                tenant: parent.tenant.clone(),
                project: parent.project.clone(),
                environment: r.environment_id.clone(),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .environment_create(&name, &env.display_name, dc.as_ref(), &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_environment(
        &self,
        req: Request<pb::UpdateEnvironmentRequest>,
    ) -> Result<Response<pb::Environment>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let env = required("environment", r.environment.as_ref())?;
            let name = parse_name("environment.name", &env.name, EnvironmentName::parse)?;
            api.authorize(
                &ctx,
                Some(&name.tenant),
                Kind::Environment,
                Verb::Update,
                "environment",
                &env.name,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), &["display_name", "datacenter"])?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.environment_get(&name).await?;
                    check_etag(&env.etag, current.meta.version, "environment", &env.name)?;
                    let mut v = Violations::default();
                    let mut display_name = current.display_name;
                    let mut dc = current.datacenter;
                    if mask.has("display_name") {
                        validate::display_name(
                            &mut v,
                            "environment.display_name",
                            &env.display_name,
                        );
                        display_name.clone_from(&env.display_name);
                    }
                    if mask.has("datacenter")
                        && let Some(new_dc) =
                            datacenter_field(&mut v, "environment.datacenter", &env.datacenter)
                    {
                        dc = new_dc;
                    }
                    v.into_result()?;
                    Ok(tx
                        .environment_update(&name, current.meta.version, &display_name, &dc, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_environment(
        &self,
        req: Request<pb::DeleteEnvironmentRequest>,
    ) -> Result<Response<pb::DeleteEnvironmentResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let name = parse_name("name", &r.name, EnvironmentName::parse)?;
            api.authorize(
                &ctx,
                Some(&name.tenant),
                Kind::Environment,
                Verb::Delete,
                "environment",
                &r.name,
            )?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.environment_delete(&name, expected_version(&r.etag), r.cascade, &actor)
                        .await?;
                    Ok(pb::DeleteEnvironmentResponse {
                        name: r.name.clone(),
                    })
                })
                .await?;
            Ok(deleted)
        })
        .await
    }
}
