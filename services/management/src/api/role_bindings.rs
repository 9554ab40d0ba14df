//! `RoleBindingService`: grants of roles to users and teams of a tenant.

use outpost_domain::{
    RoleBindingName, TeamName, TenantName, UserName,
    authz::{Kind, Role, Verb},
    resources::Member,
};
use outpost_proto::{
    convert::from_role,
    management::v1::{self as pb, role_binding_service_server::RoleBindingService},
};
use outpost_store::prelude::*;
use rand::RngCore;
use tonic::{Request, Response, Status};

use super::{Api, required, respond};
use crate::error::ApiError;

/// Implements `RoleBindingService`.
#[derive(Debug, Clone)]
pub struct RoleBindingApi(pub Api);

/// Granting or removing owner needs an owner; other roles need an admin.
fn kind_for(role: Role) -> Kind {
    if role == Role::Owner {
        Kind::OwnerRoleBinding
    } else {
        Kind::RoleBinding
    }
}

fn member(tenant: &str, raw: &str) -> Result<Member, ApiError> {
    let member = UserName::parse(raw)
        .ok()
        .filter(|u| u.tenant.as_deref() == Some(tenant))
        .map(Member::User)
        .or_else(|| {
            TeamName::parse(raw)
                .ok()
                .filter(|t| t.tenant == tenant)
                .map(Member::Team)
        });
    member.ok_or_else(|| {
        ApiError::field(
            "role_binding.member",
            format!("must be a user or team of this tenant: tenants/{tenant}/users/{{user}} or tenants/{tenant}/teams/{{team}}"),
        )
    })
}

#[tonic::async_trait]
impl RoleBindingService for RoleBindingApi {
    async fn get_role_binding(
        &self,
        req: Request<pb::GetRoleBindingRequest>,
    ) -> Result<Response<pb::RoleBinding>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<RoleBindingName, _>(&req, "name", raw, Kind::RoleBinding, Verb::Read)
                .await?;
            Ok(api.reader().await?.role_binding_get(&name).await?.into())
        })
        .await
    }

    async fn list_role_bindings(
        &self,
        req: Request<pb::ListRoleBindingsRequest>,
    ) -> Result<Response<pb::ListRoleBindingsResponse>, Status> {
        respond(async {
            let listed = self
                .0
                .list_under::<TenantName, _, _>(
                    &req,
                    Kind::RoleBinding,
                    async |reader, parent, page| reader.role_binding_list(parent, page).await,
                )
                .await?;
            Ok(pb::ListRoleBindingsResponse {
                next_page_token: listed.next_page_token,
                role_bindings: listed.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_role_binding(
        &self,
        req: Request<pb::CreateRoleBindingRequest>,
    ) -> Result<Response<pb::RoleBinding>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let binding = required("role_binding", r.role_binding.as_ref())?;
            let role = from_role(binding.role).ok_or_else(|| {
                ApiError::field(
                    "role_binding.role",
                    "is required: ROLE_VIEWER, ROLE_DEVELOPER, ROLE_ADMIN or ROLE_OWNER",
                )
            });
            // Authorize before reporting anything about the body, so other tenants learn nothing.
            let kind = kind_for(*role.as_ref().unwrap_or(&Role::Viewer));
            let parent =
                api.authorize_name::<TenantName>(&ctx, "parent", &r.parent, kind, Verb::Create)?;
            let role = role?;
            let member = member(&parent.tenant, &binding.member)?;
            let mut id = [0u8; 6];
            rand::rng().fill_bytes(&mut id);
            let name = RoleBindingName {
                tenant: parent.tenant.clone(),
                role_binding: format!("rb{}", hex::encode(id)),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .role_binding_create(&name, &member, role, &actor)
                        .await?
                        .into())
                })
                .await?;
            api.credentials_changed();
            Ok(created)
        })
        .await
    }

    async fn delete_role_binding(
        &self,
        req: Request<pb::DeleteRoleBindingRequest>,
    ) -> Result<Response<pb::DeleteRoleBindingResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<RoleBindingName, _>(
                    &req,
                    "name",
                    &r.name,
                    Kind::RoleBinding,
                    Verb::Delete,
                )
                .await?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.role_binding_get(&name).await?;
                    api.authorize(
                        &ctx,
                        Some(&name.tenant),
                        kind_for(current.role),
                        Verb::Delete,
                        "role binding",
                        &r.name,
                    )?;
                    tx.role_binding_delete(&name, &actor).await?;
                    Ok(pb::DeleteRoleBindingResponse {
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
