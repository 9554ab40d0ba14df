//! What the benchmark asks of the public API: datacenters and join tokens for the fleet,
//! content in every datacenter, the measured changes, and each datacenter's current
//! desired-state revision (to know when the agents have caught up).

use std::collections::HashMap;

use anyhow::Context as _;
use outpost_bench::targets::{
    Client, create_datacenter, create_project, create_service_request, create_tenant,
};
use outpost_proto::management::v1::{
    self as pb, datacenter_service_client::DatacenterServiceClient,
    service_service_client::ServiceServiceClient, tenant_service_client::TenantServiceClient,
};

use crate::bounded;

/// Every datacenter gets a project of this tenant, with one service in production.
pub const FLEET_TENANT: &str = "fleet";
/// Largest page ListDatacenters returns.
const DATACENTER_PAGE: i32 = 1000;

/// The id of the `index`th datacenter.
pub fn datacenter_id(index: usize) -> String {
    format!("dc-{index:05}")
}

/// The service the one-datacenter changes update: the fleet service of datacenter 0.
pub fn changed_service() -> String {
    format!(
        "tenants/{FLEET_TENANT}/projects/{}/environments/production/services/api",
        project_id(0)
    )
}

fn project_id(index: usize) -> String {
    format!("p-{index:05}")
}

/// The management API, as the bootstrap admin.
#[derive(Debug, Clone)]
pub struct Platform {
    client: Client,
}

impl Platform {
    /// Wraps a connected admin client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates datacenters `0..count` and a join token for each; returns the tokens, by
    /// datacenter index.
    pub async fn create_datacenters(
        &self,
        count: usize,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        let created = bounded::collect((0..count).collect(), limit, |index| {
            let client = self.client.clone();
            async move {
                let id = datacenter_id(index);
                create_datacenter(&client, index, &id).await?;
                let mut stub = DatacenterServiceClient::new(client.channel(index));
                let token = stub
                    .create_join_token(client.request(pb::CreateJoinTokenRequest {
                        datacenter: format!("datacenters/{id}"),
                        ttl: None,
                    }))
                    .await
                    .with_context(|| format!("creating a join token for {id}"))?
                    .into_inner()
                    .token;
                Ok((index, token))
            }
        })
        .await?;
        let mut tokens = vec![String::new(); count];
        for (index, token) in created {
            tokens[index] = token;
        }
        Ok(tokens)
    }

    /// Creates `tenant` with one project per datacenter `0..count`, placed there (so each
    /// datacenter gets the project's three environments), and, with `with_service`, one
    /// service in each project's production environment.
    pub async fn create_tenant_across(
        &self,
        tenant: &str,
        count: usize,
        with_service: bool,
        limit: usize,
    ) -> anyhow::Result<()> {
        create_tenant(&self.client, tenant).await?;
        bounded::each(
            (0..count).collect(),
            limit,
            |index| {
                let client = self.client.clone();
                let tenant = tenant.to_owned();
                async move {
                    let project = project_id(index);
                    create_project(&client, index, &tenant, &project, &datacenter_id(index))
                        .await?;
                    if with_service {
                        let env =
                            format!("tenants/{tenant}/projects/{project}/environments/production");
                        ServiceServiceClient::new(client.channel(index))
                            .create_service(
                                client.request(create_service_request(&env, "api".into())),
                            )
                            .await
                            .with_context(|| format!("creating a service in {env}"))?;
                    }
                    Ok(())
                }
            },
            |()| {},
        )
        .await
    }

    /// Deletes `tenant` with everything in it: one call that changes the desired state of
    /// every datacenter holding one of its environments.
    pub async fn delete_tenant(&self, tenant: &str) -> anyhow::Result<()> {
        TenantServiceClient::new(self.client.channel(0))
            .delete_tenant(self.client.request(pb::DeleteTenantRequest {
                name: format!("tenants/{tenant}"),
                etag: String::new(),
                cascade: true,
                request_id: String::new(),
            }))
            .await
            .with_context(|| format!("deleting tenant {tenant}"))?;
        Ok(())
    }

    /// Sets an environment variable of [`changed_service`] to `value`: a spec change that
    /// bumps one datacenter's revision.
    pub async fn update_changed_service(&self, value: usize) -> anyhow::Result<()> {
        ServiceServiceClient::new(self.client.channel(0))
            .update_service(self.client.request(pb::UpdateServiceRequest {
                service: Some(pb::Service {
                    name: changed_service(),
                    env: vec![pb::EnvVar {
                        name: "CHANGE".into(),
                        value: value.to_string(),
                    }],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["env".into()],
                }),
                request_id: String::new(),
            }))
            .await
            .context("updating the service")?;
        Ok(())
    }

    /// Every datacenter's current desired-state revision, by datacenter id.
    pub async fn desired_revisions(&self) -> anyhow::Result<HashMap<String, i64>> {
        Ok(self
            .agent_statuses()
            .await?
            .into_iter()
            .map(|(dc, agent)| (dc, agent.desired_revision))
            .collect())
    }

    /// How many agents the management side shows as connected.
    pub async fn connected_agents(&self) -> anyhow::Result<usize> {
        Ok(self
            .agent_statuses()
            .await?
            .values()
            .filter(|a| a.state() == pb::agent_status::State::Connected)
            .count())
    }

    /// Every datacenter's agent status, by datacenter id.
    async fn agent_statuses(&self) -> anyhow::Result<HashMap<String, pb::AgentStatus>> {
        let mut stub = DatacenterServiceClient::new(self.client.channel(0));
        let mut statuses = HashMap::new();
        let mut page_token = String::new();
        loop {
            let page = stub
                .list_datacenters(self.client.request(pb::ListDatacentersRequest {
                    page_size: DATACENTER_PAGE,
                    page_token,
                }))
                .await
                .context("listing datacenters")?
                .into_inner();
            for dc in page.datacenters {
                let id = dc.name.trim_start_matches("datacenters/").to_owned();
                statuses.insert(id, dc.agent.unwrap_or_default());
            }
            if page.next_page_token.is_empty() {
                return Ok(statuses);
            }
            page_token = page.next_page_token;
        }
    }
}
