//! `EnvironmentService`: the stages of a project, each placed in one datacenter.

use futures::future::BoxFuture;
use outpost_domain::{
    DatacenterName, EnvironmentName, ProjectName,
    authz::{Kind, Verb},
    deployment::{EnvironmentStatus, ServiceAction},
    lifecycle::{EnvironmentStep, environment_steps},
    resources::Service,
    validate::{self, Violations},
};
use outpost_proto::{
    convert::datacenter_unreachable,
    management::v1::{self as pb, environment_service_server::EnvironmentService},
};
use outpost_store::{PageRequest, Store, prelude::*};
use tonic::{Request, Response, Status};

use super::{
    Api, Listed, UpdateMask, check_etag, datacenter_field, expected_version, reach, required,
    respond,
    services::with_reported_status,
    watch::{WatchStream, watch},
};
use crate::error::ApiError;

/// Implements `EnvironmentService`.
#[derive(Debug, Clone)]
pub struct EnvironmentApi(pub Api);

/// Every service of `environment`, by name.
async fn all_services<Q: ServiceQueries>(
    q: &mut Q,
    environment: &EnvironmentName,
) -> Result<Vec<Service>, ApiError> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: 1000,
    };
    loop {
        let got = q.service_list(environment, &page).await?;
        all.extend(got.items);
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(all),
        }
    }
}

/// The environment's derived state and its services as the API shows them.
async fn status_of(
    store: &Store,
    environment: &EnvironmentName,
    services: Vec<Service>,
) -> Result<pb::EnvironmentStatus, ApiError> {
    let state = EnvironmentStatus::of(
        &services
            .iter()
            .map(|s| s.rollout.status)
            .collect::<Vec<_>>(),
    );
    let unreachable = reach::of_environment(store, environment).await?;
    Ok(pb::EnvironmentStatus {
        environment: environment.to_string(),
        state: pb::EnvironmentState::from(state).into(),
        services: with_reported_status(store, environment, services, unreachable.as_ref()).await?,
        datacenter_unreachable: unreachable
            .map(|u| datacenter_unreachable(&u, !state.is_settled())),
    })
}

impl EnvironmentApi {
    /// An action on every service of the environment named `raw`, in one transaction (all
    /// or none), as developers and above; answers with the environment's status after it.
    async fn for_each_service<T>(
        &self,
        req: &Request<T>,
        raw: &str,
        request_id: &str,
        action: ServiceAction,
    ) -> Result<pb::EnvironmentStatus, ApiError> {
        let api = &self.0;
        let ctx = api.context(req).await?;
        let name =
            api.authorize_name::<EnvironmentName>(&ctx, "name", raw, Kind::Service, Verb::Update)?;
        let actor = ctx.actor();
        let store = api.store().clone();
        api.mutate(&ctx, request_id, async |tx| {
            tx.environment_get(&name).await?;
            let services = all_services(tx, &name).await?;
            for (service, step) in environment_steps(&services, action)? {
                match step {
                    EnvironmentStep::Deploy(spec) => {
                        tx.service_deploy(&service, action, *spec, "", &actor)
                            .await?;
                    }
                    EnvironmentStep::Stop => {
                        tx.service_stop(&service, &actor).await?;
                    }
                    EnvironmentStep::Restart => {
                        tx.service_restart(&service, &actor).await?;
                    }
                }
            }
            let services = all_services(tx, &name).await?;
            status_of(&store, &name, services).await
        })
        .await
    }
}

#[tonic::async_trait]
impl EnvironmentService for EnvironmentApi {
    async fn deploy_environment(
        &self,
        req: Request<pb::DeployEnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        respond(async {
            let r = req.get_ref();
            self.for_each_service(&req, &r.name, &r.request_id, ServiceAction::Deploy)
                .await
        })
        .await
    }

    async fn stop_environment(
        &self,
        req: Request<pb::StopEnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        respond(async {
            let r = req.get_ref();
            self.for_each_service(&req, &r.name, &r.request_id, ServiceAction::Stop)
                .await
        })
        .await
    }

    async fn restart_environment(
        &self,
        req: Request<pb::RestartEnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        respond(async {
            let r = req.get_ref();
            self.for_each_service(&req, &r.name, &r.request_id, ServiceAction::Restart)
                .await
        })
        .await
    }

    type WatchEnvironmentStream = WatchStream<pb::EnvironmentStatus>;

    async fn watch_environment(
        &self,
        req: Request<pb::WatchEnvironmentRequest>,
    ) -> Result<Response<Self::WatchEnvironmentStream>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<EnvironmentName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let store = api.store().clone();
            // Subscribed before the first read, so no change can fall in between.
            let changes = store.subscribe();
            let read = move |store: Store| {
                let name = name.clone();
                Box::pin(async move {
                    let (environment, services) = {
                        let mut reader = store.reader().await?;
                        (
                            reader.environment_get(&name).await?,
                            all_services(&mut reader, &name).await?,
                        )
                    };
                    let status = status_of(&store, &name, services).await?;
                    Ok((environment.datacenter.datacenter, status))
                })
                    as BoxFuture<'static, Result<(String, pb::EnvironmentStatus), ApiError>>
            };
            let (datacenter, first) = read(store.clone()).await?;
            let next = move |store: Store| {
                let read = read(store);
                Box::pin(async move { Ok(read.await?.1) })
                    as BoxFuture<'static, Result<pb::EnvironmentStatus, ApiError>>
            };
            Ok(watch(store, changes, datacenter, first, next, |e| {
                EnvironmentStatus::try_from(e.state()).map_or(true, EnvironmentStatus::is_settled)
            }))
        })
        .await
    }

    async fn get_environment(
        &self,
        req: Request<pb::GetEnvironmentRequest>,
    ) -> Result<Response<pb::Environment>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<EnvironmentName, _>(&req, "name", raw, Kind::Environment, Verb::Read)
                .await?;
            let environment = api.reader().await?.environment_get(&name).await?;
            let unreachable = reach::of_datacenter(api.store(), &environment.datacenter).await?;
            let mut out = pb::Environment::from(environment);
            out.datacenter_unreachable = unreachable.map(|u| datacenter_unreachable(&u, false));
            Ok(out)
        })
        .await
    }

    async fn list_environments(
        &self,
        req: Request<pb::ListEnvironmentsRequest>,
    ) -> Result<Response<pb::ListEnvironmentsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let Listed {
                items,
                next_page_token,
                ..
            } = api
                .list_under::<ProjectName, _, _>(
                    &req,
                    Kind::Environment,
                    async |reader, parent, page| reader.environment_list(parent, page).await,
                )
                .await?;
            // Each datacenter asked once, however many environments it holds.
            let mut datacenters: Vec<(DatacenterName, Option<pb::DatacenterUnreachable>)> =
                Vec::new();
            let mut environments = Vec::with_capacity(items.len());
            for environment in items {
                let notice = match datacenters
                    .iter()
                    .find(|(dc, _)| *dc == environment.datacenter)
                {
                    Some((_, notice)) => notice.clone(),
                    None => {
                        let notice = reach::of_datacenter(api.store(), &environment.datacenter)
                            .await?
                            .map(|u| datacenter_unreachable(&u, false));
                        datacenters.push((environment.datacenter.clone(), notice.clone()));
                        notice
                    }
                };
                let mut out = pb::Environment::from(environment);
                out.datacenter_unreachable = notice;
                environments.push(out);
            }
            Ok(pb::ListEnvironmentsResponse {
                next_page_token,
                environments,
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
            let r = req.get_ref();
            let (ctx, parent) = api
                .authorized::<ProjectName, _>(
                    &req,
                    "parent",
                    &r.parent,
                    Kind::Environment,
                    Verb::Create,
                )
                .await?;
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
            let name = api.authorize_name::<EnvironmentName>(
                &ctx,
                "environment.name",
                &env.name,
                Kind::Environment,
                Verb::Update,
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
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<EnvironmentName, _>(
                    &req,
                    "name",
                    &r.name,
                    Kind::Environment,
                    Verb::Delete,
                )
                .await?;
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
