//! The measured deploys, in four groups: new versions of one service one after another on
//! an otherwise empty cluster; a hundred services' first deploys all at once; a new version
//! of each of them all at once; and again new versions of the one service, now among the
//! hundred. Each deploy is timed from the start of its DeployService call until its
//! WatchDeployment stream delivers DEPLOYED: the stream is pushed by the management side's
//! change notices, so the moment is not rounded up to a polling interval.
//!
//! Every group starts on a quiet link ([`Installation::settle`]): the UpdateService calls
//! that make the new versions, and everything the agent does about them, are over before the
//! clock starts.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use outpost_bench::targets::{Client, create_project, create_service_request, create_tenant};
use outpost_proto::management::v1::{
    self as pb, DeploymentStatus, deployment_service_client::DeploymentServiceClient,
    event_service_client::EventServiceClient, service_service_client::ServiceServiceClient,
};

use crate::{
    installation::{Counters, DATACENTER, Installation},
    together,
};

const TENANT: &str = "bench";
const PROJECT: &str = "shop";
const ENVIRONMENT: &str = "production";
/// The service deployed one version after another.
const SOLO: &str = "solo";
/// The image every version is a tag of; the tag alone makes a new version.
const IMAGE: &str = "registry.example.com/bench/web";
/// Events read per service to find the agent's reports of one deployment; a deployment adds
/// a handful, and the events are read right after it finished.
const EVENTS_PAGE: i32 = 100;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Services deployed all at once.
    pub services: usize,
    /// Deploys one after another on an otherwise empty cluster.
    pub sequential: usize,
    /// Deploys one after another among the other services.
    pub sequential_among: usize,
    /// How long one deploy may take to reach DEPLOYED.
    pub deploy_timeout: Duration,
}

/// A deploy that reached DEPLOYED, before the management side's view of it is read.
#[derive(Debug)]
struct Deployed {
    call: Duration,
    to_deployed: Duration,
    started: Instant,
    worker: usize,
    service: String,
    deployment: pb::Deployment,
}

impl Deployed {
    /// Reads how the management side saw it; done once nothing else is being timed, as it
    /// reads the service's events.
    async fn measured(self, client: &Client) -> anyhow::Result<Deploy> {
        let stages = stages(client, self.worker, &self.service, &self.deployment).await?;
        Ok(Deploy {
            call: self.call,
            to_deployed: self.to_deployed,
            started: self.started,
            stages,
        })
    }
}

/// One deploy, measured.
#[derive(Debug)]
pub struct Deploy {
    /// The DeployService call alone.
    pub call: Duration,
    /// From the start of the call until the watch delivered DEPLOYED.
    pub to_deployed: Duration,
    /// When the call started, to find a group's wall time.
    pub started: Instant,
    /// The management side's own view, from its timestamps.
    pub stages: Stages,
}

/// A deploy as the management side recorded it, by its millisecond clock.
#[derive(Debug, Clone, Copy)]
pub struct Stages {
    /// The deployment created → ended (DEPLOYED).
    pub server: Duration,
    /// Only for a version the agent's applying pass found not ready yet: from that pass's
    /// report (event `WorkloadProgressing`) to the report of the pass that found it ready
    /// (`WorkloadAvailable`). A version ready when the applying pass looks gets neither
    /// event, since its reported phase never changes.
    pub waited: Option<Duration>,
}

/// A group of deploys and what the link did for them.
#[derive(Debug)]
pub struct Group {
    /// Each deploy.
    pub deploys: Vec<Deploy>,
    /// For deploys made all at once: from the first call's start until the last DEPLOYED.
    pub wall: Option<Duration>,
    /// Desired-state revisions the group made.
    pub revisions: i64,
    /// Agent reports (statuses and events) the management side applied for the group.
    pub reports: i64,
}

/// Everything measured.
#[derive(Debug)]
pub struct Results {
    /// New versions of one service, one after another, nothing else deployed.
    pub solo: Group,
    /// Every service's first deploy, all at once (the workloads are created).
    pub first: Group,
    /// A new version of every service, all at once (rolling updates).
    pub concurrent: Group,
    /// New versions of one service, one after another, with every other service deployed.
    pub among: Group,
    /// One controller step of the cluster with only the one service deployed.
    pub step_solo: Duration,
    /// One controller step with every service deployed.
    pub step_all: Duration,
}

/// Seeds the tenant, project and services, then runs the four groups.
pub async fn run(plan: &Plan, installation: &Installation) -> anyhow::Result<Results> {
    let client = &installation.client;
    eprintln!(
        "creating tenant {TENANT}, project {PROJECT} and {} services",
        plan.services + 1
    );
    let (solo, services) = seed(client, plan.services).await?;
    let timeout = plan.deploy_timeout;
    // Not measured: the solo service's first deploy, so the group measures new versions.
    deploy(client, 0, &solo, timeout).await?;
    installation.settle().await?;

    eprintln!(
        "{} new versions of one service, one after another",
        plan.sequential
    );
    let mut version = 0;
    let solo_group =
        one_after_another(installation, &solo, &mut version, plan.sequential, timeout).await?;
    let step_solo = installation.cluster.step_time().await?;

    eprintln!("first deploys of {} services at once", plan.services);
    let first = all_at_once(installation, &services, None, timeout).await?;

    eprintln!("new versions of {} services at once", plan.services);
    let concurrent = all_at_once(installation, &services, Some(1), timeout).await?;

    eprintln!(
        "{} new versions of one service among {} deployed, one after another",
        plan.sequential_among, plan.services
    );
    let among = one_after_another(
        installation,
        &solo,
        &mut version,
        plan.sequential_among,
        timeout,
    )
    .await?;
    let step_all = installation.cluster.step_time().await?;
    Ok(Results {
        solo: solo_group,
        first,
        concurrent,
        among,
        step_solo,
        step_all,
    })
}

/// Deploys `count` new versions of `service`, each once the previous one and its image
/// change have settled.
async fn one_after_another(
    installation: &Installation,
    service: &str,
    version: &mut usize,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Group> {
    let client = &installation.client;
    let mut deploys = Vec::with_capacity(count);
    let (mut revisions, mut reports) = (0, 0);
    for _ in 0..count {
        *version += 1;
        set_image(client, 0, service, *version).await?;
        let before = installation.settle().await?;
        let deployed = deploy(client, 0, service, timeout).await?;
        let after = installation.settle().await?;
        deploys.push(deployed.measured(client).await?);
        revisions += after.revision - before.revision;
        reports += after.reports - before.reports;
    }
    Ok(Group {
        deploys,
        wall: None,
        revisions,
        reports,
    })
}

/// Creates the tenant, its project in the datacenter, the solo service and `count` more in
/// production; returns the solo service's name and the others'.
async fn seed(client: &Client, count: usize) -> anyhow::Result<(String, Vec<String>)> {
    create_tenant(client, TENANT).await?;
    create_project(client, 0, TENANT, PROJECT, DATACENTER).await?;
    let parent = format!("tenants/{TENANT}/projects/{PROJECT}/environments/{ENVIRONMENT}");
    let ids = std::iter::once(SOLO.to_owned()).chain((0..count).map(|i| format!("web-{i:03}")));
    let mut names = Vec::with_capacity(count + 1);
    for (worker, id) in ids.enumerate() {
        let mut request = create_service_request(&parent, id);
        if let Some(service) = &mut request.service {
            service.source = Some(pb::service::Source::Image(image(0)));
        }
        let created = client
            .stub(worker)
            .create_service(client.request(request))
            .await
            .context("creating a service")?;
        names.push(created.into_inner().name);
    }
    let solo = names.remove(0);
    Ok((solo, names))
}

fn image(version: usize) -> String {
    format!("{IMAGE}:1.{version}")
}

/// Sets the image of `service` to `version`: the next deploy rolls out a new version.
async fn set_image(
    client: &Client,
    worker: usize,
    service: &str,
    version: usize,
) -> anyhow::Result<()> {
    ServiceServiceClient::new(client.channel(worker))
        .update_service(client.request(pb::UpdateServiceRequest {
            service: Some(pb::Service {
                name: service.into(),
                source: Some(pb::service::Source::Image(image(version))),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["image".into()],
            }),
            request_id: String::new(),
        }))
        .await
        .with_context(|| format!("setting a new image on {service}"))?;
    Ok(())
}

/// Deploys every service at once, each on its own task, released together; with
/// `version`, each first gets that image (not measured, and settled before the start).
async fn all_at_once(
    installation: &Installation,
    services: &[String],
    version: Option<usize>,
    timeout: Duration,
) -> anyhow::Result<Group> {
    let client = &installation.client;
    if let Some(version) = version {
        for (worker, service) in services.iter().enumerate() {
            set_image(client, worker, service, version).await?;
        }
    }
    let before = installation.settle().await?;
    let deployed = together::at_once(services.len(), |worker| {
        let (client, service) = (client.clone(), services[worker].clone());
        async move { deploy(&client, worker, &service, timeout).await }
    })
    .await?;
    let after: Counters = installation.settle().await?;
    let mut deploys = Vec::with_capacity(deployed.len());
    for d in deployed {
        deploys.push(d.measured(client).await?);
    }
    let wall = together::wall(deploys.iter().map(|d| (d.started, d.to_deployed)));
    Ok(Group {
        deploys,
        wall,
        revisions: after.revision - before.revision,
        reports: after.reports - before.reports,
    })
}

/// Calls DeployService on `service` and watches the new deployment until it is final. A
/// deployment that ends in anything but DEPLOYED, or a deploy that changes nothing, is an
/// error.
async fn deploy(
    client: &Client,
    worker: usize,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<Deployed> {
    let started = Instant::now();
    let mut stub = DeploymentServiceClient::new(client.channel(worker));
    let created = stub
        .deploy_service(client.request(pb::DeployServiceRequest {
            name: service.into(),
            request_id: String::new(),
        }))
        .await
        .with_context(|| format!("deploying {service}"))?
        .into_inner();
    let call = started.elapsed();
    if created.status() != DeploymentStatus::Deploying {
        bail!(
            "deploying {service} answered {} ({}), not DEPLOYING",
            created.status().as_str_name(),
            created.message
        );
    }
    let mut watch = client.request(pb::WatchDeploymentRequest {
        name: created.name.clone(),
    });
    // The stream lives until the deployment is final, far longer than a unary call.
    watch.set_timeout(timeout);
    let mut stream = stub
        .watch_deployment(watch)
        .await
        .with_context(|| format!("watching {}", created.name))?
        .into_inner();
    let deployed = loop {
        let Some(d) = stream
            .message()
            .await
            .with_context(|| format!("watching {}", created.name))?
        else {
            bail!("the watch of {} ended before it was final", created.name);
        };
        match d.status() {
            DeploymentStatus::Deployed => break d,
            DeploymentStatus::Queued | DeploymentStatus::Deploying => {}
            other => bail!(
                "{} ended {}: {}",
                created.name,
                other.as_str_name(),
                d.message
            ),
        }
    };
    Ok(Deployed {
        call,
        to_deployed: started.elapsed(),
        started,
        worker,
        service: service.into(),
        deployment: deployed,
    })
}

/// How the management side saw `deployment` of `service`: its own times, and the agent's
/// first `WorkloadProgressing` and last `WorkloadAvailable` event between them.
async fn stages(
    client: &Client,
    worker: usize,
    service: &str,
    deployment: &pb::Deployment,
) -> anyhow::Result<Stages> {
    let time = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| SystemTime::try_from(t).ok())
            .with_context(|| format!("{} has no valid times", deployment.name))
    };
    let (created, ended) = (time(deployment.create_time)?, time(deployment.end_time)?);
    let events = EventServiceClient::new(client.channel(worker))
        .list_events(client.request(pb::ListEventsRequest {
            parent: service.into(),
            page_size: EVENTS_PAGE,
            page_token: String::new(),
        }))
        .await
        .with_context(|| format!("listing the events of {service}"))?
        .into_inner()
        .events;
    // Newest first: the last match is the earliest.
    let mut applied = None;
    let mut ready = None;
    for event in &events {
        let Some(at) = event.create_time.and_then(|t| SystemTime::try_from(t).ok()) else {
            continue;
        };
        if at < created || at > ended {
            continue;
        }
        match event.reason.as_str() {
            "WorkloadProgressing" => applied = Some(at),
            "WorkloadAvailable" if ready.is_none() => ready = Some(at),
            _ => {}
        }
    }
    let between = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    Ok(Stages {
        server: between(created, ended),
        waited: applied.zip(ready).map(|(a, r)| between(a, r)),
    })
}
