//! `EventService`: what happened to a resource, readable by whoever can read the resource.

use outpost_domain::{
    ResourceName,
    authz::{Kind, Verb},
};
use outpost_proto::management::v1::{self as pb, event_service_server::EventService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{Api, next_page_token, page_request, parse_name, respond};

/// Implements `EventService`.
#[derive(Debug, Clone)]
pub struct EventApi(pub Api);

#[tonic::async_trait]
impl EventService for EventApi {
    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let resource = parse_name("parent", &r.parent, ResourceName::parse)?;
            api.authorize(
                &ctx,
                resource.tenant(),
                Kind::Event,
                Verb::Read,
                "resource",
                &r.parent,
            )?;
            let page = page_request(&r.parent, r.page_size, &r.page_token)?;
            let page = api
                .reader()
                .await?
                .event_list(&resource.to_string(), &page)
                .await?;
            Ok(pb::ListEventsResponse {
                next_page_token: next_page_token(&r.parent, page.next_after),
                events: page.items.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }
}
