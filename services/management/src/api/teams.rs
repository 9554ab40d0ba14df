//! `TeamService`: groups of users that roles can be bound to.

use outpost_domain::{
    TeamName, TenantName, UserName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, team_service_server::TeamService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{Api, UpdateMask, check_etag, expected_version, required, respond};

/// Implements `TeamService`.
#[derive(Debug, Clone)]
pub struct TeamApi(pub Api);

/// Validated, parsed members (sorted, as stored).
fn members(v: &mut Violations, tenant: &str, raw: &[String]) -> Vec<UserName> {
    validate::team_members(v, "team.members", tenant, raw);
    let mut parsed: Vec<UserName> = raw.iter().filter_map(|m| UserName::parse(m).ok()).collect();
    parsed.sort();
    parsed.dedup();
    parsed
}

#[tonic::async_trait]
impl TeamService for TeamApi {
    async fn get_team(
        &self,
        req: Request<pb::GetTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<TeamName, _>(&req, "name", raw, Kind::Team, Verb::Read)
                .await?;
            Ok(api.reader().await?.team_get(&name).await?.into())
        })
        .await
    }

    async fn list_teams(
        &self,
        req: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        respond(async {
            let listed = self
                .0
                .list_under::<TenantName, _, _>(&req, Kind::Team, async |reader, parent, page| {
                    reader.team_list(parent, page).await
                })
                .await?;
            Ok(pb::ListTeamsResponse {
                next_page_token: listed.next_page_token,
                teams: listed.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_team(
        &self,
        req: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, parent) = api
                .authorized::<TenantName, _>(&req, "parent", &r.parent, Kind::Team, Verb::Create)
                .await?;
            let team = required("team", r.team.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "team_id", &r.team_id);
            validate::display_name(&mut v, "team.display_name", &team.display_name);
            let members = members(&mut v, &parent.tenant, &team.members);
            v.into_result()?;
            let name = TeamName {
                tenant: parent.tenant.clone(),
                team: r.team_id.clone(),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .team_create(&name, &team.display_name, &members, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_team(
        &self,
        req: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let team = required("team", r.team.as_ref())?;
            let name = api.authorize_name::<TeamName>(
                &ctx,
                "team.name",
                &team.name,
                Kind::Team,
                Verb::Update,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), &["display_name", "members"])?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.team_get(&name).await?;
                    check_etag(&team.etag, current.meta.version, "team", &team.name)?;
                    let mut v = Violations::default();
                    let (mut display_name, mut new_members) =
                        (current.display_name, current.members);
                    if mask.has("display_name") {
                        validate::display_name(&mut v, "team.display_name", &team.display_name);
                        display_name.clone_from(&team.display_name);
                    }
                    if mask.has("members") {
                        new_members = members(&mut v, &name.tenant, &team.members);
                    }
                    v.into_result()?;
                    Ok(tx
                        .team_update(
                            &name,
                            current.meta.version,
                            &display_name,
                            &new_members,
                            &actor,
                        )
                        .await?
                        .into())
                })
                .await?;
            api.credentials_changed();
            Ok(updated)
        })
        .await
    }

    async fn delete_team(
        &self,
        req: Request<pb::DeleteTeamRequest>,
    ) -> Result<Response<pb::DeleteTeamResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<TeamName, _>(&req, "name", &r.name, Kind::Team, Verb::Delete)
                .await?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.team_delete(&name, expected_version(&r.etag), &actor)
                        .await?;
                    Ok(pb::DeleteTeamResponse {
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
