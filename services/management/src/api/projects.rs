//! `ProjectService`: projects, created with their default environments.

use outpost_domain::{
    ProjectName, TenantName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, project_service_server::ProjectService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{Api, UpdateMask, check_etag, datacenter_field, expected_version, required, respond};

/// Implements `ProjectService`.
#[derive(Debug, Clone)]
pub struct ProjectApi(pub Api);

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<ProjectName, _>(&req, "name", raw, Kind::Project, Verb::Read)
                .await?;
            Ok(api.reader().await?.project_get(&name).await?.into())
        })
        .await
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        respond(async {
            let listed = self
                .0
                .list_under::<TenantName, _, _>(
                    &req,
                    Kind::Project,
                    async |reader, parent, page| reader.project_list(parent, page).await,
                )
                .await?;
            Ok(pb::ListProjectsResponse {
                next_page_token: listed.next_page_token,
                projects: listed.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_project(
        &self,
        req: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, parent) = api
                .authorized::<TenantName, _>(&req, "parent", &r.parent, Kind::Project, Verb::Create)
                .await?;
            let project = required("project", r.project.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "project_id", &r.project_id);
            validate::display_name(&mut v, "project.display_name", &project.display_name);
            let dc = datacenter_field(
                &mut v,
                "project.default_datacenter",
                &project.default_datacenter,
            );
            v.into_result()?;
            let dc = dc.expect("a missing or malformed datacenter is a violation returned above");
            let name = ProjectName {
                tenant: parent.tenant.clone(),
                project: r.project_id.clone(),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .project_create(&name, &project.display_name, &dc, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_project(
        &self,
        req: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let project = required("project", r.project.as_ref())?;
            let name = api.authorize_name::<ProjectName>(
                &ctx,
                "project.name",
                &project.name,
                Kind::Project,
                Verb::Update,
            )?;
            let mask = UpdateMask::parse(
                r.update_mask.as_ref(),
                &["display_name", "default_datacenter"],
            )?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.project_get(&name).await?;
                    check_etag(
                        &project.etag,
                        current.meta.version,
                        "project",
                        &project.name,
                    )?;
                    let mut v = Violations::default();
                    let mut display_name = current.display_name;
                    let mut dc = current.default_datacenter;
                    if mask.has("display_name") {
                        validate::display_name(
                            &mut v,
                            "project.display_name",
                            &project.display_name,
                        );
                        display_name.clone_from(&project.display_name);
                    }
                    if mask.has("default_datacenter")
                        && let Some(new_dc) = datacenter_field(
                            &mut v,
                            "project.default_datacenter",
                            &project.default_datacenter,
                        )
                    {
                        dc = new_dc;
                    }
                    v.into_result()?;
                    Ok(tx
                        .project_update(&name, current.meta.version, &display_name, &dc, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<ProjectName, _>(&req, "name", &r.name, Kind::Project, Verb::Delete)
                .await?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.project_delete(&name, expected_version(&r.etag), r.cascade, &actor)
                        .await?;
                    Ok(pb::DeleteProjectResponse {
                        name: r.name.clone(),
                    })
                })
                .await?;
            Ok(deleted)
        })
        .await
    }
}
