//! `ManagedServiceService`: databases, caches and buckets from the provider catalog. The
//! provider's schemas validate config and secrets (field violations name the exact field),
//! its update rules guard changes, and the lifecycle rules live in
//! `outpost_domain::managed`. Secrets are sealed before they are stored and never returned.

use futures::future::BoxFuture;
use outpost_domain::{
    EnvironmentName, ManagedServiceName,
    authz::{Kind, Verb},
    managed::{ManagedAction, ManagedStatus},
    provider::{Needs, Provider},
    validate::{self, Violations},
};
use outpost_proto::{
    convert::json,
    management::v1::{self as pb, managed_service_service_server::ManagedServiceService},
};
use outpost_store::{NewManaged, Store, prelude::*};
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::{
    Api, ListRequest, Listed, check_etag, parse_name, reach, required, respond,
    watch::{WatchStream, watch},
};
use crate::error::ApiError;

/// Implements `ManagedServiceService`.
#[derive(Debug, Clone)]
pub struct ManagedApi(pub Api);

impl ManagedApi {
    fn provider(&self, field: &str, name: &str) -> Result<&Provider, ApiError> {
        let id = name.strip_prefix("providers/").unwrap_or(name);
        self.0.catalog().get(id).ok_or_else(|| {
            let known: Vec<&str> = self
                .0
                .catalog()
                .all()
                .map(|p| p.definition.name.as_str())
                .collect();
            ApiError::field(
                field,
                format!(
                    "is not a known provider; one of: providers/{}",
                    known.join(", providers/")
                ),
            )
        })
    }

    /// Refuses a provider that needs object storage in an environment whose datacenter's
    /// agent said it has none, saying how to add it. Until the agent has connected nothing
    /// is known, and the service waits in CREATING for it.
    async fn check_datacenter_offers(
        &self,
        provider: &Provider,
        environment: &EnvironmentName,
    ) -> Result<(), ApiError> {
        if provider.definition.needs != Needs::ObjectStorage {
            return Ok(());
        }
        let store = self.0.store();
        let env = store.reader().await?.environment_get(environment).await?;
        let dc = &env.datacenter.datacenter;
        match store.agent_get(&env.datacenter).await? {
            Some(agent) if !agent.capacity.object_storage => Err(ApiError::FailedPrecondition {
                subject: env.datacenter.to_string(),
                description: format!(
                    "datacenter {dc} has no object storage: its agent runs without a Ceph object gateway. \
                     Give the agent one with --rgw-endpoint, --rgw-access-key and --rgw-secret-key \
                     (or OUTPOST_AGENT_RGW_*) and restart it; for outpost-local, install Ceph (see the \
                     README) or pass the same flags"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// A lifecycle action on the managed service named `raw`, as developers and above.
    async fn act<T>(
        &self,
        req: &Request<T>,
        raw: &str,
        request_id: &str,
        action: ManagedAction,
        secrets: Option<&prost_types::Struct>,
    ) -> Result<pb::ManagedService, ApiError> {
        let api = &self.0;
        let ctx = api.context(req).await?;
        let name = api.authorize_name::<ManagedServiceName>(
            &ctx,
            "name",
            raw,
            Kind::Service,
            Verb::Update,
        )?;
        let actor = ctx.actor();
        api.mutate(&ctx, request_id, async |tx| {
            let current = tx.managed_get(&name).await?;
            let provider = self.provider("provider", &current.provider)?;
            // New secrets are checked only once the caller may act on the service.
            let sealed = match action {
                ManagedAction::ResetSecrets => Some(self.seal(provider, &name, secrets)?),
                _ => None,
            };
            let pausable = provider.definition.capabilities.pausable;
            Ok(tx
                .managed_act(&name, action, pausable, sealed.as_deref(), &actor)
                .await?
                .into())
        })
        .await
    }

    /// Checks `secrets` against the provider and seals them for `name`.
    fn seal(
        &self,
        provider: &Provider,
        name: &ManagedServiceName,
        secrets: Option<&prost_types::Struct>,
    ) -> Result<Vec<u8>, ApiError> {
        let secrets = secrets.map(json::from_struct).unwrap_or(Value::Null);
        let mut v = Violations::default();
        provider.check_secrets(&mut v, "secrets", &secrets);
        v.into_result()?;
        Ok(self
            .0
            .kek()
            .seal_secret(secrets.to_string().as_bytes(), &name.secrets_owner()))
    }
}

#[tonic::async_trait]
impl ManagedServiceService for ManagedApi {
    async fn get_managed_service(
        &self,
        req: Request<pb::GetManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<ManagedServiceName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let managed = api.reader().await?.managed_get(&name).await?;
            let unreachable = reach::of_environment(api.store(), &name.environment_name()).await?;
            Ok(reach::wire(managed, unreachable.as_ref()))
        })
        .await
    }

    async fn list_managed_services(
        &self,
        req: Request<pb::ListManagedServicesRequest>,
    ) -> Result<Response<pb::ListManagedServicesResponse>, Status> {
        respond(list(&self.0, &req, false)).await
    }

    async fn list_deleted_managed_services(
        &self,
        req: Request<pb::ListDeletedManagedServicesRequest>,
    ) -> Result<Response<pb::ListManagedServicesResponse>, Status> {
        respond(list(&self.0, &req, true)).await
    }

    async fn create_managed_service(
        &self,
        req: Request<pb::CreateManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
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
            let given = required("managed_service", r.managed_service.as_ref())?;
            let mut v = Violations::default();
            validate::resource_id(&mut v, "managed_service_id", &r.managed_service_id);
            validate::display_name(&mut v, "managed_service.display_name", &given.display_name);
            v.into_result()?;
            let provider = self.provider("managed_service.provider", &given.provider)?;
            let config = given
                .config
                .as_ref()
                .map(json::from_struct)
                .unwrap_or(Value::Null);
            let mut v = Violations::default();
            provider.check_config(&mut v, "managed_service.config", &config);
            v.into_result()?;
            let name = ManagedServiceName {
                tenant: parent.tenant.clone(),
                project: parent.project.clone(),
                environment: parent.environment.clone(),
                managed_service: r.managed_service_id.clone(),
            };
            let sealed = self.seal(provider, &name, r.secrets.as_ref())?;
            self.check_datacenter_offers(provider, &parent).await?;
            let actor = ctx.actor();
            api.mutate(&ctx, &r.request_id, async |tx| {
                let new = NewManaged {
                    provider: &provider.definition.name,
                    display_name: &given.display_name,
                    config: &config,
                    sealed_secrets: &sealed,
                };
                Ok(tx.managed_create(&name, new, &actor).await?.into())
            })
            .await
        })
        .await
    }

    async fn update_managed_service(
        &self,
        req: Request<pb::UpdateManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
        respond(async {
            let api = &self.0;
            let ctx = api.context(&req).await?;
            let r = req.get_ref();
            let given = required("managed_service", r.managed_service.as_ref())?;
            let name = api.authorize_name::<ManagedServiceName>(
                &ctx,
                "managed_service.name",
                &given.name,
                Kind::Service,
                Verb::Update,
            )?;
            let config = given
                .config
                .as_ref()
                .map(json::from_struct)
                .unwrap_or(Value::Null);
            let actor = ctx.actor();
            api.mutate(&ctx, &r.request_id, async |tx| {
                let current = tx.managed_get(&name).await?;
                check_etag(
                    &given.etag,
                    current.meta.version,
                    "managed service",
                    &given.name,
                )?;
                let provider = self.provider("provider", &current.provider)?;
                let mut v = Violations::default();
                provider.check_config(&mut v, "managed_service.config", &config);
                provider.check_update(&mut v, "managed_service.config", &current.config, &config);
                v.into_result()?;
                Ok(tx
                    .managed_update(&name, Some(current.meta.version), &config, &actor)
                    .await?
                    .into())
            })
            .await
        })
        .await
    }

    async fn pause_managed_service(
        &self,
        req: Request<pb::PauseManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
        respond(async {
            let r = req.get_ref();
            self.act(&req, &r.name, &r.request_id, ManagedAction::Pause, None)
                .await
        })
        .await
    }

    async fn resume_managed_service(
        &self,
        req: Request<pb::ResumeManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
        respond(async {
            let r = req.get_ref();
            self.act(&req, &r.name, &r.request_id, ManagedAction::Resume, None)
                .await
        })
        .await
    }

    async fn delete_managed_service(
        &self,
        req: Request<pb::DeleteManagedServiceRequest>,
    ) -> Result<Response<pb::ManagedService>, Status> {
        respond(async {
            let r = req.get_ref();
            let name = parse_name("name", &r.name, ManagedServiceName::parse)?;
            if r.confirm != name.managed_service {
                return Err(ApiError::field(
                    "confirm",
                    format!(
                        "must be the service's id, {}, typed as confirmation: deleting removes its data for good",
                        name.managed_service
                    ),
                ));
            }
            self.act(&req, &r.name, &r.request_id, ManagedAction::Delete, None)
                .await
        })
        .await
    }

    async fn reset_managed_service_secrets(
        &self,
        req: Request<pb::ResetManagedServiceSecretsRequest>,
    ) -> Result<Response<pb::ResetManagedServiceSecretsResponse>, Status> {
        respond(async {
            let r = req.get_ref();
            let service = self
                .act(&req, &r.name, &r.request_id, ManagedAction::ResetSecrets, r.secrets.as_ref())
                .await?;
            Ok(pb::ResetManagedServiceSecretsResponse {
                managed_service: Some(service),
                warning: "The service restarts with the new secrets: expect a short downtime, and clients using the old ones are cut off.".into(),
            })
        })
        .await
    }

    type WatchManagedServiceStream = WatchStream<pb::ManagedService>;

    async fn watch_managed_service(
        &self,
        req: Request<pb::WatchManagedServiceRequest>,
    ) -> Result<Response<Self::WatchManagedServiceStream>, Status> {
        respond(async {
            let api = &self.0;
            let raw = &req.get_ref().name;
            let (_, name) = api
                .authorized::<ManagedServiceName, _>(&req, "name", raw, Kind::Service, Verb::Read)
                .await?;
            let store = api.store().clone();
            // Subscribed before the first read, so no change can fall in between.
            let changes = store.subscribe();
            let (first, datacenter) = {
                let mut reader = api.reader().await?;
                let first = reader.managed_get_latest(&name).await?;
                let env = reader.environment_get(&name.environment_name()).await?;
                (first, env.datacenter)
            };
            // Followed by uid, so the watch of a deletion ends with DELETED (the name no longer
            // finds a deleted service, and may name a new one).
            let uid = first.meta.uid.clone();
            let read = reach::watched(datacenter.clone(), move |store: Store| {
                let uid = uid.clone();
                Box::pin(async move { Ok(store.reader().await?.managed_get_by_uid(&uid).await?) })
                    as BoxFuture<'static, Result<_, ApiError>>
            });
            let first: pb::ManagedService = read(store.clone()).await?;
            Ok(watch(
                store,
                changes,
                datacenter.datacenter,
                first,
                read,
                |m| ManagedStatus::try_from(m.state()).map_or(true, |s| !s.in_progress()),
            ))
        })
        .await
    }
}

/// A page of an environment's managed services, live or recently deleted.
async fn list<R: ListRequest>(
    api: &Api,
    req: &Request<R>,
    deleted: bool,
) -> Result<pb::ListManagedServicesResponse, ApiError> {
    let Listed {
        parent,
        items,
        next_page_token,
    } = api
        .list_under::<EnvironmentName, _, _>(req, Kind::Service, async |reader, parent, page| {
            reader.managed_list(parent, deleted, page).await
        })
        .await?;
    let unreachable = reach::of_environment(api.store(), &parent).await?;
    Ok(pb::ListManagedServicesResponse {
        next_page_token,
        managed_services: items
            .into_iter()
            .map(|m| reach::wire(m, unreachable.as_ref()))
            .collect(),
    })
}
