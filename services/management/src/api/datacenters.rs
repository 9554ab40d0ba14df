//! `DatacenterService`: where environments run. Platform admins manage them; anyone reads.

use outpost_domain::{
    DatacenterName, Timestamp,
    authz::{Kind, Verb},
    observed::{Agent, AgentReach, link_is_live},
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, datacenter_service_server::DatacenterService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use std::time::Duration;

use super::{
    Api, UpdateMask, check_etag, expected_version, next_page_token, page_request, required, respond,
};

/// Implements `DatacenterService`.
#[derive(Debug, Clone)]
pub struct DatacenterApi(pub Api);

/// Lifetime of a join token created without a `ttl`.
const DEFAULT_JOIN_TOKEN_TTL: Duration = Duration::from_secs(3600);
const MAX_JOIN_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The wire form of a datacenter's agent at its current `revision`.
fn agent_status(agent: Option<&Agent>, revision: i64) -> pb::AgentStatus {
    use outpost_proto::convert::timestamp;
    use pb::agent_status::State;
    let Some(a) = agent else {
        return pb::AgentStatus {
            state: State::NotEnrolled.into(),
            desired_revision: revision,
            ..Default::default()
        };
    };
    let reach = &a.reach;
    let live = link_is_live(reach.connected, reach.last_seen, Timestamp::now());
    let state = if live {
        State::Connected
    } else {
        State::Disconnected
    };
    let capacity = &a.capacity;
    pb::AgentStatus {
        state: state.into(),
        last_seen_time: Some(timestamp(reach.last_seen)),
        agent_version: a.version.clone(),
        applied_revision: a.stored_revision,
        desired_revision: revision,
        cpu_millis: capacity.cpu_millis,
        memory_bytes: capacity.memory_bytes,
        certificate_expire_time: Some(timestamp(a.certificate_expire_time)),
        storage_bytes: capacity.storage_bytes,
        storage_used_bytes: capacity.storage_used_bytes,
        object_storage: capacity.object_storage,
        cluster: Some(cluster_status(reach, live)),
    }
}

/// Whether the agent reaches its cluster; not known while the agent is not linked, though
/// since when it last could not is still said.
fn cluster_status(reach: &AgentReach, live: bool) -> pb::ClusterStatus {
    use pb::cluster_status::State;
    let state = match (&reach.cluster, live) {
        (_, false) => State::Unknown,
        (Some(_), true) => State::Unreachable,
        (None, true) => State::Reachable,
    };
    pb::ClusterStatus {
        state: state.into(),
        unreachable_since: reach
            .cluster
            .as_ref()
            .map(|c| outpost_proto::convert::timestamp(c.since)),
        message: reach
            .cluster
            .as_ref()
            .map(|c| c.error.clone())
            .unwrap_or_default(),
    }
}

impl DatacenterApi {
    /// A datacenter with its agent's status.
    async fn with_agent(
        &self,
        dc: outpost_domain::resources::Datacenter,
    ) -> Result<pb::Datacenter, crate::error::ApiError> {
        let agent = self.0.store().agent_get(&dc.name).await?;
        let revision = dc.revision;
        let mut out = pb::Datacenter::from(dc);
        out.agent = Some(agent_status(agent.as_ref(), revision));
        Ok(out)
    }
}

#[tonic::async_trait]
impl DatacenterService for DatacenterApi {
    async fn get_datacenter(
        &self,
        req: Request<pb::GetDatacenterRequest>,
    ) -> Result<Response<pb::Datacenter>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<DatacenterName, _>(&req, "name", raw, Kind::Datacenter, Verb::Read)
                .await?;
            let dc = api.reader().await?.datacenter_get(&name).await?;
            self.with_agent(dc).await
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
            let agents = match (page.items.first(), page.items.last()) {
                (Some(first), Some(last)) => {
                    api.store()
                        .agent_list_range(&first.name, &last.name)
                        .await?
                }
                _ => Vec::new(),
            };
            let datacenters = page
                .items
                .into_iter()
                .map(|dc| {
                    let agent = agents.iter().find(|a| a.datacenter == dc.name);
                    let revision = dc.revision;
                    let mut out = pb::Datacenter::from(dc);
                    out.agent = Some(agent_status(agent, revision));
                    out
                })
                .collect();
            Ok(pb::ListDatacentersResponse {
                next_page_token: next_page_token("", page.next_after),
                datacenters,
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
            let name = api.authorize_name::<DatacenterName>(
                &ctx,
                "datacenter.name",
                &dc.name,
                Kind::Datacenter,
                Verb::Update,
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
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<DatacenterName, _>(
                    &req,
                    "name",
                    &r.name,
                    Kind::Datacenter,
                    Verb::Delete,
                )
                .await?;
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

    async fn create_join_token(
        &self,
        req: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<DatacenterName, _>(&req, "datacenter", &r.datacenter, Kind::Datacenter, Verb::Update)
                .await?;
            let ttl = match &r.ttl {
                None => DEFAULT_JOIN_TOKEN_TTL,
                Some(d) => match u64::try_from(d.seconds).ok().filter(|_| d.nanos >= 0).map(Duration::from_secs) {
                    Some(t) if (Duration::from_secs(60)..=MAX_JOIN_TOKEN_TTL).contains(&t) => t,
                    _ => return Err(crate::error::ApiError::field("ttl", "must be between 60s and 7 days (604800s)")),
                },
            };
            if api.ca_fingerprint().is_empty() {
                return Err(crate::error::ApiError::FailedPrecondition {
                    subject: r.datacenter.clone(),
                    description: "this management instance runs no agent gateway; create the token on one that does".into(),
                });
            }
            let token = outpost_ca::JoinToken::generate();
            let expire = outpost_domain::Timestamp(
                outpost_domain::Timestamp::now().0.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            );
            let actor = ctx.actor();
            let mut tx = api.store().begin().await?;
            tx.datacenter_get(&name).await?;
            tx.join_token_create(&name, token.hash(), expire, &actor).await?;
            tx.commit().await?;
            Ok(pb::CreateJoinTokenResponse {
                token: token.text().to_owned(),
                expire_time: Some(outpost_proto::convert::timestamp(expire)),
                ca_fingerprint: api.ca_fingerprint().to_owned(),
            })
        })
        .await
    }

    async fn revoke_agent(
        &self,
        req: Request<pb::RevokeAgentRequest>,
    ) -> Result<Response<pb::Datacenter>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<DatacenterName, _>(
                    &req,
                    "name",
                    &r.name,
                    Kind::Datacenter,
                    Verb::Update,
                )
                .await?;
            let actor = ctx.actor();
            let revoked = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let dc = tx.datacenter_get(&name).await?;
                    tx.agent_revoke(&name, &actor).await?;
                    Ok(pb::Datacenter::from(dc))
                })
                .await?;
            let dc = api.reader().await?.datacenter_get(&name).await?;
            let mut out = self.with_agent(dc).await?;
            out.etag = revoked.etag;
            Ok(out)
        })
        .await
    }
}
