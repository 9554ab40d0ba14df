//! `ServiceService`: the applications a tenant runs in an environment.

use outpost_domain::{
    EnvironmentName, ServiceName,
    authz::{Kind, Verb},
    observed::Unreachable,
    resources::ServiceSpec,
    validate::{self, Violations},
};
use outpost_proto::management::v1::{self as pb, service_service_server::ServiceService};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use crate::error::ApiError;

use super::{Api, Listed, UpdateMask, check_etag, expected_version, reach, required, respond};

/// Implements `ServiceService`.
#[derive(Debug, Clone)]
pub struct ServiceApi(pub Api);

/// The fields an update mask may name. `image` and `git` both set the source.
const MUTABLE: &[&str] = &[
    "display_name",
    "image",
    "git",
    "shape",
    "replicas",
    "env",
    "ports",
    "health_check_path",
];

/// The spec after applying the masked fields of `given` to `current`.
fn merge(current: ServiceSpec, given: ServiceSpec, mask: &UpdateMask) -> ServiceSpec {
    let mut spec = current;
    if mask.has("display_name") {
        spec.display_name = given.display_name;
    }
    if mask.has("image") || mask.has("git") {
        spec.source = given.source;
    }
    if mask.has("shape") {
        spec.shape = given.shape;
    }
    if mask.has("replicas") {
        spec.replicas = given.replicas;
    }
    if mask.has("env") {
        spec.env = given.env;
    }
    if mask.has("ports") {
        spec.ports = given.ports;
    }
    if mask.has("health_check_path") {
        spec.health_check_path = given.health_check_path;
    }
    spec
}

/// `services` (of `environment`, in name order) on the wire, each with what its agent last
/// reported, read in one query, and marked when their datacenter is `unreachable`.
pub(crate) async fn with_reported_status(
    store: &outpost_store::Store,
    environment: &EnvironmentName,
    services: Vec<outpost_domain::resources::Service>,
    unreachable: Option<&Unreachable>,
) -> Result<Vec<pb::Service>, ApiError> {
    let statuses = match (services.first(), services.last()) {
        (Some(first), Some(last)) => {
            store
                .workload_status_range(environment, &first.name.service, &last.name.service)
                .await?
        }
        _ => Vec::new(),
    };
    Ok(services
        .into_iter()
        .map(|s| {
            let status = statuses
                .iter()
                .find(|st| st.status.service == s.name)
                .map(reported);
            let mut out: pb::Service = reach::wire(s, unreachable);
            out.status = status;
            out
        })
        .collect())
}

/// The wire status of a report, marked stale unless its agent is linked now.
fn reported(r: &outpost_store::ReportedStatus) -> pb::ServiceStatus {
    let mut status = pb::ServiceStatus::from(&r.status);
    status.stale = !r.current;
    status
}

impl ServiceApi {
    /// A lifecycle operation on the service named `raw` (developers and above): `op` runs
    /// in a transaction that carries the caller's trace to the agent.
    async fn operate<T>(
        &self,
        req: &Request<T>,
        raw: &str,
        request_id: &str,
        op: impl AsyncFnOnce(
            &mut outpost_store::Tx,
            &ServiceName,
            &str,
        ) -> Result<outpost_domain::resources::Service, ApiError>,
    ) -> Result<pb::Service, ApiError> {
        let api = &self.0;
        let ctx = api.context(req).await?;
        let name =
            api.authorize_name::<ServiceName>(&ctx, "name", raw, Kind::Service, Verb::Update)?;
        let actor = ctx.actor();
        api.mutate(&ctx, request_id, async |tx| {
            Ok(op(tx, &name, &actor).await?.into())
        })
        .await
    }
}

#[tonic::async_trait]
impl ServiceService for ServiceApi {
    async fn get_service(
        &self,
        req: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<ServiceName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let service = api.reader().await?.service_get(&name).await?;
            let status = api.store().workload_status_get(&name).await?;
            let unreachable = reach::of_environment(api.store(), &name.environment_name()).await?;
            let mut out: pb::Service = reach::wire(service, unreachable.as_ref());
            out.status = status.as_ref().map(reported);
            Ok(out)
        })
        .await
    }

    async fn list_services(
        &self,
        req: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        respond(async {
            let api = &self.0;
            // The reader is released before the status query below: a request holds one
            // pooled connection at a time, or concurrent lists could exhaust the pool.
            let Listed {
                parent,
                items,
                next_page_token,
            } = api
                .list_under::<EnvironmentName, _, _>(
                    &req,
                    Kind::Service,
                    async |reader, parent, page| reader.service_list(parent, page).await,
                )
                .await?;
            let unreachable = reach::of_environment(api.store(), &parent).await?;
            let services =
                with_reported_status(api.store(), &parent, items, unreachable.as_ref()).await?;
            Ok(pb::ListServicesResponse {
                next_page_token,
                services,
            })
        })
        .await
    }

    async fn create_service(
        &self,
        req: Request<pb::CreateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, parent) = api
                .authorized::<EnvironmentName, _>(
                    &req,
                    "parent",
                    &r.parent,
                    Kind::Service,
                    Verb::Create,
                )
                .await?;
            let service = required("service", r.service.as_ref())?;
            let spec = ServiceSpec::from(service);
            let mut v = Violations::default();
            validate::resource_id(&mut v, "service_id", &r.service_id);
            validate::service_spec(&mut v, "service", &spec);
            v.into_result()?;
            let name = ServiceName {
                tenant: parent.tenant.clone(),
                project: parent.project.clone(),
                environment: parent.environment.clone(),
                service: r.service_id.clone(),
            };
            let actor = ctx.actor();
            let created = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    Ok(tx.service_create(&name, &spec, &actor).await?.into())
                })
                .await?;
            Ok(created)
        })
        .await
    }

    async fn update_service(
        &self,
        req: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let service = required("service", r.service.as_ref())?;
            let name = api.authorize_name::<ServiceName>(
                &ctx,
                "service.name",
                &service.name,
                Kind::Service,
                Verb::Update,
            )?;
            let mask = UpdateMask::parse(r.update_mask.as_ref(), MUTABLE)?;
            let actor = ctx.actor();
            let updated = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    let current = tx.service_get(&name).await?;
                    check_etag(
                        &service.etag,
                        current.meta.version,
                        "service",
                        &service.name,
                    )?;
                    let spec = merge(current.spec, ServiceSpec::from(service), &mask);
                    let mut v = Violations::default();
                    validate::service_spec(&mut v, "service", &spec);
                    v.into_result()?;
                    Ok(tx
                        .service_update(&name, current.meta.version, &spec, &actor)
                        .await?
                        .into())
                })
                .await?;
            Ok(updated)
        })
        .await
    }

    async fn stop_service(
        &self,
        req: Request<pb::StopServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let r = req.get_ref();
            self.operate(&req, &r.name, &r.request_id, async |tx, name, actor| {
                Ok(tx.service_stop(name, actor).await?)
            })
            .await
        })
        .await
    }

    async fn restart_service(
        &self,
        req: Request<pb::RestartServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let r = req.get_ref();
            self.operate(&req, &r.name, &r.request_id, async |tx, name, actor| {
                Ok(tx.service_restart(name, actor).await?)
            })
            .await
        })
        .await
    }

    async fn set_service_secret(
        &self,
        req: Request<pb::SetServiceSecretRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let r = req.get_ref();
            let kek = self.0.kek().clone();
            self.operate(&req, &r.name, &r.request_id, async |tx, name, actor| {
                let service = tx.service_get(name).await?;
                let mut v = Violations::default();
                validate::secret(&mut v, &service.spec, &r.secret, &r.value);
                v.into_result()?;
                let sealed = kek.seal_secret(r.value.as_bytes(), &name.secret_name(&r.secret));
                Ok(tx.secret_set(name, &r.secret, &sealed, actor).await?)
            })
            .await
        })
        .await
    }

    async fn delete_service_secret(
        &self,
        req: Request<pb::DeleteServiceSecretRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        respond(async {
            let r = req.get_ref();
            self.operate(&req, &r.name, &r.request_id, async |tx, name, actor| {
                Ok(tx.secret_delete(name, &r.secret, actor).await?)
            })
            .await
        })
        .await
    }

    async fn list_service_secrets(
        &self,
        req: Request<pb::ListServiceSecretsRequest>,
    ) -> Result<Response<pb::ListServiceSecretsResponse>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<ServiceName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let secrets = api.reader().await?.secret_names(&name).await?;
            Ok(pb::ListServiceSecretsResponse {
                secrets: secrets
                    .into_iter()
                    .map(|(name, time)| pb::ServiceSecret {
                        name,
                        update_time: Some(outpost_proto::convert::timestamp(time)),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn delete_service(
        &self,
        req: Request<pb::DeleteServiceRequest>,
    ) -> Result<Response<pb::DeleteServiceResponse>, Status> {
        respond(async {
            let api = &self.0;
            let r = req.get_ref();
            let (ctx, name) = api
                .authorized::<ServiceName, _>(&req, "name", &r.name, Kind::Service, Verb::Delete)
                .await?;
            let actor = ctx.actor();
            let deleted = api
                .mutate(&ctx, &r.request_id, async |tx| {
                    tx.service_delete(&name, expected_version(&r.etag), &actor)
                        .await?;
                    Ok(pb::DeleteServiceResponse {
                        name: r.name.clone(),
                    })
                })
                .await?;
            Ok(deleted)
        })
        .await
    }
}
