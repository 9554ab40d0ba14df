//! `ApiTokenService`: bearer tokens. The secret is returned once, by CreateApiToken, and never
//! stored: not in the tokens table, not in the idempotency answer, not in any log.

use std::time::Duration;

use outpost_domain::{
    ApiTokenName, Timestamp, UserName,
    authz::{Kind, Verb},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, api_token_service_server::ApiTokenService};
use outpost_store::prelude::*;
use prost::Message;
use rand::RngCore;
use tonic::{Request, Response, Status};

use super::{Api, Ctx, respond};
use crate::auth::new_token;

/// Implements `ApiTokenService`.
#[derive(Debug, Clone)]
pub struct ApiTokenApi(pub Api);

/// Lifetime of a token created without a `ttl`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const MIN_TOKEN_TTL: Duration = Duration::from_secs(60);
const MAX_TOKEN_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Own tokens and other people's tokens are different kinds to the policy.
fn kind_for(ctx: &Ctx, owner: &UserName) -> Kind {
    if *owner == ctx.principal.user {
        Kind::OwnApiToken
    } else {
        Kind::ApiToken
    }
}

/// A new token id: a DNS label, random so ids reveal nothing about how many tokens exist.
fn new_token_id() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("t{}", hex::encode(bytes))
}

fn ttl(v: &mut Violations, given: Option<&prost_types::Duration>) -> Duration {
    let Some(d) = given else {
        return DEFAULT_TOKEN_TTL;
    };
    let secs = u64::try_from(d.seconds).ok().filter(|_| d.nanos >= 0);
    match secs.map(Duration::from_secs) {
        Some(t) if (MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&t) => t,
        _ => {
            v.add("ttl", "must be between 60s and 366 days (31622400s)");
            DEFAULT_TOKEN_TTL
        }
    }
}

#[tonic::async_trait]
impl ApiTokenService for ApiTokenApi {
    async fn get_api_token(
        &self,
        req: Request<pb::GetApiTokenRequest>,
    ) -> Result<Response<pb::ApiToken>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let raw = &req.get_ref().name;
            let name = api.authorize_name_as::<ApiTokenName>(
                &ctx,
                "name",
                raw,
                |n| kind_for(&ctx, &n.user),
                Verb::Read,
            )?;
            Ok(api.reader().await?.api_token_get(&name).await?.into())
        })
        .await
    }

    async fn list_api_tokens(
        &self,
        req: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let owner = api.authorize_name_as::<UserName>(
                &ctx,
                "parent",
                &r.parent,
                |n| kind_for(&ctx, n),
                Verb::Read,
            )?;
            let (items, next_page_token) = api
                .list_page(
                    r,
                    async |reader, page| reader.api_token_list(&owner, page).await,
                    &owner,
                )
                .await?;
            Ok(pb::ListApiTokensResponse {
                next_page_token,
                api_tokens: items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn create_api_token(
        &self,
        req: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let owner = api.authorize_name_as::<UserName>(
                &ctx,
                "parent",
                &r.parent,
                |n| kind_for(&ctx, n),
                Verb::Create,
            )?;
            let mut v = Violations::default();
            let display_name = r
                .api_token
                .as_ref()
                .map(|t| t.display_name.clone())
                .unwrap_or_default();
            validate::display_name(&mut v, "api_token.display_name", &display_name);
            let ttl = ttl(&mut v, r.ttl.as_ref());
            v.into_result()?;
            let name = ApiTokenName {
                user: owner,
                api_token: new_token_id(),
            };
            let expire_time = Timestamp(
                outpost_domain::Timestamp::now()
                    .0
                    .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            );
            let actor = ctx.actor();
            let (token, hash) = new_token();
            // A retry gets the metadata back but not the token: the server keeps no copy of it.
            let without_secret = |answer: &pb::CreateApiTokenResponse| {
                pb::CreateApiTokenResponse {
                    api_token: answer.api_token.clone(),
                    token: String::new(),
                }
                .encode_to_vec()
            };
            let created = api
                .mutate_storing(&ctx, &r.request_id, without_secret, async |tx| {
                    let stored = tx
                        .api_token_create(&name, &display_name, &hash, expire_time, &actor)
                        .await?;
                    Ok(pb::CreateApiTokenResponse {
                        api_token: Some(stored.into()),
                        token: token.clone(),
                    })
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn revoke_api_token(
        &self,
        req: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::ApiToken>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let name = api.authorize_name_as::<ApiTokenName>(
                &ctx,
                "name",
                &r.name,
                |n| kind_for(&ctx, &n.user),
                Verb::Update,
            )?;
            let actor = ctx.actor();
            let revoked = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx.api_token_revoke(&name, &actor).await?.into())
                })
                .await?;
            api.credentials_changed();
            Ok(revoked)
        })
        .await
    }
}
