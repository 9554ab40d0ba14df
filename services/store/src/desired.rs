//! What a datacenter's desired state is computed from, read in one consistent pass, and the
//! revision that numbers it.

use outpost_domain::{
    DatacenterName, EnvironmentName, ManagedServiceName, ServiceName, Timestamp,
    desired::{BuildTarget, ServiceTarget},
    managed::ManagedStatus,
    resources::{Environment, Source},
};
use sqlx::FromRow;

use crate::{Result, Store, StoreError, error::backend, rows::MetaRow};

/// What a datacenter's desired state is computed from, read consistently: the revision is
/// read first, so the content is at least as new as the revision says.
#[derive(Debug, Clone)]
pub struct DesiredInputs {
    /// The datacenter's revision.
    pub revision: i64,
    /// Its environments.
    pub environments: Vec<Environment>,
    /// What the services of those environments should run; `secrets` still empty (the
    /// store holds them only sealed, in [`Self::sealed_secrets`]).
    pub targets: Vec<ServiceTarget>,
    /// The deployments of those services being built.
    pub builds: Vec<BuildTarget>,
    /// The secrets of those services, sealed.
    pub sealed_secrets: Vec<SealedSecret>,
    /// The managed services of those environments (deleted ones aside).
    pub managed: Vec<ManagedInput>,
}

/// A managed service as stored: what its provider renders into what runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedInput {
    /// The managed service.
    pub service: ManagedServiceName,
    /// Its uid.
    pub uid: String,
    /// Its provider's name.
    pub provider: String,
    /// Its generation.
    pub generation: i64,
    /// Its status.
    pub status: ManagedStatus,
    /// Its config.
    pub config: serde_json::Value,
    /// Its secrets (a JSON object), sealed under `{name}/secrets`.
    pub sealed_secrets: Vec<u8>,
}

/// One secret value as stored: sealed under the management side's key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Its service.
    pub service: ServiceName,
    /// Its name (the environment variable it becomes).
    pub name: String,
    /// The sealed value.
    pub sealed: Vec<u8>,
}

impl Store {
    /// The inputs of `dc`'s desired state, consistently (see [`DesiredInputs`]).
    /// [`StoreError::NotFound`] if the datacenter does not exist.
    pub async fn desired_inputs(&self, dc: &DatacenterName) -> Result<DesiredInputs> {
        let mut conn = self.read.acquire().await.map_err(backend)?;
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM datacenters WHERE name = $1")
                .bind(&dc.datacenter)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
        let revision = revision.ok_or_else(|| StoreError::NotFound {
            kind: "datacenter",
            name: dc.to_string(),
        })?;
        #[derive(FromRow)]
        struct EnvRow {
            tenant: String,
            project: String,
            name: String,
            display_name: String,
            first_deploy_time: Option<i64>,
            #[sqlx(flatten)]
            meta: MetaRow,
        }
        let envs: Vec<EnvRow> = sqlx::query_as(
            "SELECT tenant, project, name, display_name, first_deploy_time, uid, create_time, update_time, version \
             FROM environments WHERE datacenter = $1 ORDER BY tenant, project, name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct TargetRow {
            tenant: String,
            project: String,
            environment: String,
            name: String,
            generation: i64,
            stopped: i64,
            restart_time: i64,
            spec: String,
        }
        // The deployment to run: the one rolling out, else the live one (also while a
        // build runs or a cancel rolls back).
        let targets: Vec<TargetRow> = sqlx::query_as(
            "SELECT s.tenant, s.project, s.environment, s.name, s.generation, s.stopped, s.restart_time, d.spec \
             FROM services s JOIN environments e \
               ON e.tenant = s.tenant AND e.project = s.project AND e.name = s.environment \
             JOIN deployments d ON d.tenant = s.tenant AND d.project = s.project AND d.environment = s.environment \
               AND d.service = s.name \
               AND d.number = (CASE WHEN s.status = 'DEPLOYING' THEN s.current_deployment ELSE s.live_deployment END) \
             WHERE e.datacenter = $1 ORDER BY s.tenant, s.project, s.environment, s.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct BuildRow {
            tenant: String,
            project: String,
            environment: String,
            name: String,
            number: i64,
            spec: String,
        }
        let builds: Vec<BuildRow> = sqlx::query_as(
            "SELECT s.tenant, s.project, s.environment, s.name, d.number, d.spec \
             FROM services s JOIN environments e \
               ON e.tenant = s.tenant AND e.project = s.project AND e.name = s.environment \
             JOIN deployments d ON d.tenant = s.tenant AND d.project = s.project AND d.environment = s.environment \
               AND d.service = s.name AND d.number = s.current_deployment \
             WHERE e.datacenter = $1 AND s.status = 'BUILDING' ORDER BY s.tenant, s.project, s.environment, s.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        #[derive(FromRow)]
        struct SecretRow {
            tenant: String,
            project: String,
            environment: String,
            service: String,
            name: String,
            sealed: Vec<u8>,
        }
        let secrets: Vec<SecretRow> = sqlx::query_as(
            "SELECT x.tenant, x.project, x.environment, x.service, x.name, x.sealed \
             FROM service_secrets x JOIN environments e \
               ON e.tenant = x.tenant AND e.project = x.project AND e.name = x.environment \
             WHERE e.datacenter = $1 ORDER BY x.tenant, x.project, x.environment, x.service, x.name",
        )
        .bind(&dc.datacenter)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let environments = envs
            .into_iter()
            .map(|r| Environment {
                name: EnvironmentName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.name,
                },
                display_name: r.display_name,
                datacenter: dc.clone(),
                first_deploy_time: r.first_deploy_time.map(Timestamp),
                meta: r.meta.into(),
            })
            .collect();
        let targets = targets
            .into_iter()
            .map(|r| {
                let service = ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.name,
                };
                let spec = crate::deployments::decode_deployment_spec(&r.spec, &service)?;
                Ok(ServiceTarget {
                    service,
                    generation: r.generation,
                    spec,
                    stopped: r.stopped != 0,
                    secrets: Vec::new(),
                    restart_time: r.restart_time,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let builds = builds
            .into_iter()
            .filter_map(|r| {
                let service = ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.name,
                };
                let spec = match crate::deployments::decode_deployment_spec(&r.spec, &service) {
                    Ok(spec) => spec,
                    Err(e) => return Some(Err(e)),
                };
                match spec.service.source {
                    Source::Git(source) => Some(Ok(BuildTarget {
                        service,
                        deployment: r.number,
                        source,
                    })),
                    _ => None,
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let sealed_secrets = secrets
            .into_iter()
            .map(|r| SealedSecret {
                service: ServiceName {
                    tenant: r.tenant,
                    project: r.project,
                    environment: r.environment,
                    service: r.service,
                },
                name: r.name,
                sealed: r.sealed,
            })
            .collect();
        let managed = crate::managed::desired_inputs(&mut conn, &dc.datacenter).await?;
        Ok(DesiredInputs {
            revision,
            environments,
            targets,
            builds,
            sealed_secrets,
            managed,
        })
    }

    /// The datacenter's current revision; [`StoreError::NotFound`] if it does not exist.
    pub async fn datacenter_revision(&self, dc: &str) -> Result<i64> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM datacenters WHERE name = $1")
                .bind(dc)
                .fetch_optional(&self.read)
                .await
                .map_err(backend)?;
        revision.ok_or_else(|| StoreError::NotFound {
            kind: "datacenter",
            name: format!("datacenters/{dc}"),
        })
    }
}
