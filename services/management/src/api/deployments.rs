//! `DeploymentService`: deploy, redeploy, roll back, cancel, promote and watch. The rules
//! (what is allowed when, what a report ends) live in `outpost_domain::deployment`; the store
//! applies them in one transaction per call.

use outpost_domain::{
    DeploymentName, EnvironmentName, ServiceName,
    authz::{Kind, Verb},
    deployment::{DeploymentStatus, ServiceAction},
    lifecycle::DeploymentSpec,
};
use outpost_proto::management::v1::{self as pb, deployment_service_server::DeploymentService};
use outpost_store::{Tx, prelude::*};
use tonic::{Request, Response, Status};

use super::{
    Api, Listed, parse_name, reach, respond,
    watch::{WatchStream, watch},
};
use crate::error::ApiError;

/// Implements `DeploymentService`.
#[derive(Debug, Clone)]
pub struct DeploymentApi(pub Api);

impl DeploymentApi {
    /// Deploys the service's current spec as `action` (deploy or redeploy).
    async fn deploy_current(
        &self,
        ctx_req: (&super::Ctx, &str),
        raw: &str,
        action: ServiceAction,
    ) -> Result<pb::Deployment, ApiError> {
        let (ctx, request_id) = ctx_req;
        let api = &self.0;
        let name =
            api.authorize_name::<ServiceName>(ctx, "name", raw, Kind::Service, Verb::Update)?;
        let actor = ctx.actor();
        api.mutate(ctx, request_id, async |tx| {
            let service = tx.service_get(&name).await?;
            let spec = DeploymentSpec::of(&service)?;
            deploy(tx, &name, action, spec, "", &actor).await
        })
        .await
    }
}

/// Makes `spec` the service's configuration (creating the service if needed), so what it
/// says is what runs after a rollback or promotion, and a later redeploy deploys that
/// rather than reverting it.
async fn adopt(
    tx: &mut Tx,
    name: &ServiceName,
    spec: &DeploymentSpec,
    actor: &str,
) -> Result<(), ApiError> {
    match tx.service_get(name).await {
        Ok(current) if current.spec != spec.service => {
            tx.service_update(name, current.meta.version, &spec.service, actor)
                .await?;
        }
        Ok(_) => {}
        Err(outpost_store::StoreError::NotFound { .. }) => {
            tx.service_create(name, &spec.service, actor).await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Runs a deploy in `tx`.
async fn deploy(
    tx: &mut Tx,
    name: &ServiceName,
    action: ServiceAction,
    spec: DeploymentSpec,
    origin: &str,
    actor: &str,
) -> Result<pb::Deployment, ApiError> {
    let outcome = tx.service_deploy(name, action, spec, origin, actor).await?;
    Ok(outcome.deployment.into())
}

#[tonic::async_trait]
impl DeploymentService for DeploymentApi {
    async fn deploy_service(
        &self,
        req: Request<pb::DeployServiceRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let ctx = self.0.context(&req).await?;
            let r = req.get_ref();
            self.deploy_current((&ctx, &r.request_id), &r.name, ServiceAction::Deploy)
                .await
        })
        .await
    }

    async fn redeploy_service(
        &self,
        req: Request<pb::RedeployServiceRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let ctx = self.0.context(&req).await?;
            let r = req.get_ref();
            self.deploy_current((&ctx, &r.request_id), &r.name, ServiceAction::Redeploy)
                .await
        })
        .await
    }

    async fn rollback_service(
        &self,
        req: Request<pb::RollbackServiceRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<ServiceName, _>(&req, "name", &r.name, Kind::Service, Verb::Update)
                .await?;
            let target = parse_name("deployment", &r.deployment, DeploymentName::parse)?;
            if target.service_name() != name {
                return Err(ApiError::field(
                    "deployment",
                    format!("must be a deployment of {name}"),
                ));
            }
            let actor = ctx.actor();
            api.mutate(&ctx, &r.request_id, async |tx| {
                let earlier = tx.deployment_get(&target).await?;
                if earlier.spec.image.is_empty() {
                    return Err(ApiError::FailedPrecondition {
                        description: format!(
                            "deployment {target} never had an image (its build did not finish), so there is nothing to roll back to"
                        ),
                        subject: target.to_string(),
                    });
                }
                adopt(tx, &name, &earlier.spec, &actor).await?;
                deploy(tx, &name, ServiceAction::Rollback, earlier.spec, &r.deployment, &actor)
                    .await
            })
            .await
        })
        .await
    }

    async fn get_deployment(
        &self,
        req: Request<pb::GetDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<DeploymentName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let deployment = api.reader().await?.deployment_get(&name).await?;
            let environment = name.service_name().environment_name();
            let unreachable = reach::of_environment(api.store(), &environment).await?;
            Ok(reach::wire(deployment, unreachable.as_ref()))
        })
        .await
    }

    async fn list_deployments(
        &self,
        req: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let Listed {
                parent,
                items,
                next_page_token,
            } = api
                .list_under::<ServiceName, _, _>(
                    &req,
                    Kind::Service,
                    async |reader, parent, page| reader.deployment_list(parent, page).await,
                )
                .await?;
            let unreachable =
                reach::of_environment(api.store(), &parent.environment_name()).await?;
            Ok(pb::ListDeploymentsResponse {
                next_page_token,
                deployments: items
                    .into_iter()
                    .map(|d| reach::wire(d, unreachable.as_ref()))
                    .collect(),
            })
        })
        .await
    }

    async fn cancel_deployment(
        &self,
        req: Request<pb::CancelDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<DeploymentName, _>(&req, "name", &r.name, Kind::Service, Verb::Update)
                .await?;
            let actor = ctx.actor();
            api.mutate(&ctx, &r.request_id, async |tx| {
                Ok(tx.deployment_cancel(&name, &actor).await?.into())
            })
            .await
        })
        .await
    }

    async fn promote_deployment(
        &self,
        req: Request<pb::PromoteDeploymentRequest>,
    ) -> Result<Response<pb::Deployment>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, source) = api
                .authorized::<DeploymentName, _>(&req, "name", &r.name, Kind::Service, Verb::Read)
                .await?;
            let env = api.authorize_name::<EnvironmentName>(&ctx, "target_environment", &r.target_environment, Kind::Service, Verb::Update)?;
            if env.project_name() != source.service_name().environment_name().project_name() {
                return Err(ApiError::field(
                    "target_environment",
                    "must be an environment of the deployment's project",
                ));
            }
            if env == source.service_name().environment_name() {
                return Err(ApiError::field(
                    "target_environment",
                    "is the deployment's own environment; use RollbackService or RedeployService there",
                ));
            }
            let target = ServiceName {
                tenant: env.tenant.clone(),
                project: env.project.clone(),
                environment: env.environment.clone(),
                service: source.service.clone(),
            };
            let actor = ctx.actor();
            api.mutate(&ctx, &r.request_id, async |tx| {
                let promoted = tx.deployment_get(&source).await?;
                if promoted.spec.image.is_empty() {
                    return Err(ApiError::FailedPrecondition {
                        description: format!("deployment {source} has no image yet; promote it once it is built"),
                        subject: source.to_string(),
                    });
                }
                adopt(tx, &target, &promoted.spec, &actor).await?;
                deploy(tx, &target, ServiceAction::Promote, promoted.spec, &r.name, &actor).await
            })
            .await
        })
        .await
    }

    type WatchDeploymentStream = WatchStream<pb::Deployment>;

    async fn watch_deployment(
        &self,
        req: Request<pb::WatchDeploymentRequest>,
    ) -> Result<Response<Self::WatchDeploymentStream>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<DeploymentName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let store = api.store().clone();
            // Subscribed before the first read, so no change can fall in between.
            let changes = store.subscribe();
            let datacenter = {
                let mut reader = api.reader().await?;
                // A missing deployment is named as such, not by its environment.
                reader.deployment_get(&name).await?;
                reader
                    .environment_get(&name.service_name().environment_name())
                    .await?
                    .datacenter
            };
            let read = reach::watched(datacenter.clone(), move |store: outpost_store::Store| {
                let name = name.clone();
                Box::pin(async move { Ok(store.reader().await?.deployment_get(&name).await?) })
                    as futures::future::BoxFuture<'static, Result<_, ApiError>>
            });
            let first: pb::Deployment = read(store.clone()).await?;
            Ok(watch(
                store,
                changes,
                datacenter.datacenter,
                first,
                read,
                |d| DeploymentStatus::try_from(d.status()).map_or(true, DeploymentStatus::is_final),
            ))
        })
        .await
    }
}
