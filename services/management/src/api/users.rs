//! `UserService`: tenant users and platform admins.

use outpost_domain::{
    TenantName, UserName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, user_service_server::UserService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{
    Api, UpdateMask, check_etag, expected_version, next_page_token, page_request, parse_name,
    required, respond,
};

/// Implements `UserService`.
#[derive(Debug, Clone)]
pub struct UserApi(pub Api);

/// The tenant a user `parent` field names: `None` for empty (the platform).
fn parent_tenant(parent: &str) -> Result<Option<TenantName>, crate::error::ApiError> {
    if parent.is_empty() {
        Ok(None)
    } else {
        parse_name("parent", parent, TenantName::parse).map(Some)
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<UserName, _>(&req, "name", raw, Kind::User, Verb::Read)
                .await?;
            Ok(api.reader().await?.user_get(&name).await?.into())
        })
        .await
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let tenant = parent_tenant(&r.parent)?;
            let tenant_id = tenant.as_ref().map(|t| t.tenant.as_str());
            api.authorize(&ctx, tenant_id, Kind::User, Verb::Read, "tenant", &r.parent)?;
            let page = page_request(&r.parent, r.page_size, &r.page_token)?;
            let mut reader = api.reader().await?;
            if let Some(t) = &tenant {
                reader.tenant_get(t).await?;
            }
            let page = reader.user_list(tenant_id, &page).await?;
            Ok(pb::ListUsersResponse {
                next_page_token: next_page_token(&r.parent, page.next_after),
                users: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let tenant = parent_tenant(&r.parent)?.map(|t| t.tenant);
            let name = UserName {
                tenant,
                user: r.user_id.clone(),
            };
            api.authorize(
                &ctx,
                name.tenant.as_deref(),
                Kind::User,
                Verb::Create,
                "tenant",
                &r.parent,
            )?;
            let user = required("user", r.user.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "user_id", &r.user_id);
            validate::display_name(&mut v, "user.display_name", &user.display_name);
            validate::email(&mut v, "user.email", &user.email);
            v.into_result()?;
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx
                        .user_create(&name, &user.display_name, &user.email, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let user = required("user", r.user.as_ref())?;
            let name = api.authorize_name::<UserName>(
                &ctx,
                "user.name",
                &user.name,
                Kind::User,
                Verb::Update,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), &["display_name", "email"])?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.user_get(&name).await?;
                    check_etag(&user.etag, current.meta.version, "user", &user.name)?;
                    let mut v = Violations::default();
                    let (mut display_name, mut email) = (current.display_name, current.email);
                    if mask.has("display_name") {
                        validate::display_name(&mut v, "user.display_name", &user.display_name);
                        display_name.clone_from(&user.display_name);
                    }
                    if mask.has("email") {
                        validate::email(&mut v, "user.email", &user.email);
                        email.clone_from(&user.email);
                    }
                    v.into_result()?;
                    Ok(tx
                        .user_update(&name, current.meta.version, &display_name, &email, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<UserName, _>(&req, "name", &r.name, Kind::User, Verb::Delete)
                .await?;
            if name == ctx.principal.user {
                return Err(crate::error::ApiError::FailedPrecondition {
                    subject: r.name.clone(),
                    description: "you cannot delete yourself; ask another admin".into(),
                });
            }
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.user_delete(&name, expected_version(&r.etag), &actor)
                        .await?;
                    Ok(pb::DeleteUserResponse {
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
