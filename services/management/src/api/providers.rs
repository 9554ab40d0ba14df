//! `ProviderService`: the managed-service catalog. Every signed-in caller may read it.

use outpost_domain::authz::{Kind, Verb};
use outpost_proto::management::v1::{self as pb, provider_service_server::ProviderService};
use tonic::{Request, Response, Status};

use super::{Api, respond};
use crate::error::ApiError;

/// Implements `ProviderService`.
#[derive(Debug, Clone)]
pub struct ProviderApi(pub Api);

#[tonic::async_trait]
impl ProviderService for ProviderApi {
    async fn list_providers(
        &self,
        req: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            api.authorize(
                &ctx,
                None,
                Kind::Provider,
                Verb::Read,
                "providers",
                "providers",
            )?;
            Ok(pb::ListProvidersResponse {
                providers: api
                    .catalog()
                    .all()
                    .map(|p| pb::Provider::from(&p.definition))
                    .collect(),
            })
        })
        .await
    }

    async fn get_provider(
        &self,
        req: Request<pb::GetProviderRequest>,
    ) -> Result<Response<pb::Provider>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let raw = &req.get_ref().name;
            api.authorize(&ctx, None, Kind::Provider, Verb::Read, "provider", raw)?;
            let provider = raw
                .strip_prefix("providers/")
                .and_then(|name| api.catalog().get(name))
                .ok_or_else(|| {
                    if raw.starts_with("providers/") {
                        ApiError::NotFound {
                            kind: "provider",
                            name: raw.clone(),
                        }
                    } else {
                        ApiError::field("name", "must be providers/{provider}")
                    }
                })?;
            Ok(pb::Provider::from(&provider.definition))
        })
        .await
    }
}
