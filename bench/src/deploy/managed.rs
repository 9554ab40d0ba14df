//! The measured managed-service operations: PostgreSQL services created (and then deleted)
//! one after another, each alone; many created, paused, resumed and deleted all at once;
//! and, when the agent has a Ceph, buckets created and deleted the same two ways. Each
//! operation is timed from the start of its API call until its WatchManagedService stream
//! delivers the end state (SYNCHRONIZED, PAUSED or DELETED): the stream is pushed by the
//! management side's change notices, so the moment is not rounded up to a polling interval.
//!
//! Like the deploys, every group starts on a quiet link ([`Installation::settle`]), and
//! waits for one again after, so what the link did counts for the group that caused it.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use outpost_bench::{
    targets::{Client, create_project, create_tenant},
    usage::Usage,
};
use outpost_proto::{
    convert::json::to_struct,
    management::v1::{
        self as pb, ManagedServiceState,
        managed_service_service_client::ManagedServiceServiceClient,
    },
};
use serde_json::json;

use crate::{
    installation::{DATACENTER, Installation, wait_for_agent},
    together,
};

/// Apart from the deploys' tenant, so either part runs alone or both in any order.
const TENANT: &str = "data";
const PROJECT: &str = "store";
const ENVIRONMENT: &str = "production";
const POSTGRES_PASSWORD: &str = "bench-postgres-password";
const BUCKET_SECRET_KEY: &str = "benchBucketSecretKey0123456789";
/// How long the agent may take to report that it has object storage: it measures Ceph's
/// capacity when it starts, which a freshly started manager may not answer at once.
const OBJECT_STORAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// PostgreSQL services created, then deleted, one after another.
    pub postgres_sequential: usize,
    /// PostgreSQL services created, paused, resumed and deleted all at once.
    pub postgres: usize,
    /// Buckets created, then deleted, one after another; only with object storage.
    pub buckets_sequential: usize,
    /// Buckets created and deleted all at once; only with object storage.
    pub buckets: usize,
    /// Whether the agent was given a Ceph: without one, buckets are refused.
    pub object_storage: bool,
    /// How long one operation may take to reach its end state.
    pub timeout: Duration,
}

/// What a managed service is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Bucket,
}

impl Kind {
    fn request(self, parent: &str, id: &str) -> pb::CreateManagedServiceRequest {
        let (provider, config, secrets) = match self {
            Self::Postgres => (
                "providers/postgresql",
                json!({"version": "16", "storage_gib": 10, "shape": "FLX",
                       "database": "orders", "user": "shop"}),
                json!({"password": POSTGRES_PASSWORD}),
            ),
            Self::Bucket => (
                "providers/bucket",
                json!({"quota_gib": 1}),
                json!({"secret_key": BUCKET_SECRET_KEY}),
            ),
        };
        pb::CreateManagedServiceRequest {
            parent: parent.into(),
            managed_service_id: id.into(),
            managed_service: Some(pb::ManagedService {
                provider: provider.into(),
                config: Some(to_struct(&config)),
                ..Default::default()
            }),
            secrets: Some(to_struct(&secrets)),
            request_id: String::new(),
        }
    }
}

/// An API call on a managed service, with the state it ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create(Kind),
    Pause,
    Resume,
    Delete,
}

impl Op {
    /// The state the operation is done in.
    pub fn end(self) -> ManagedServiceState {
        match self {
            Self::Create(_) | Self::Resume => ManagedServiceState::Synchronized,
            Self::Pause => ManagedServiceState::Paused,
            Self::Delete => ManagedServiceState::Deleted,
        }
    }
}

/// One operation, measured.
#[derive(Debug)]
pub struct Operation {
    /// The API call alone.
    pub call: Duration,
    /// From the start of the call until the watch delivered the end state.
    pub to_end: Duration,
    /// When the call started, to find a group's wall time.
    pub started: Instant,
    /// The management side's own view: the service's update time in the call's answer to
    /// the one in the end state, by its millisecond clock.
    pub server: Option<Duration>,
}

/// A group of operations and what they cost.
#[derive(Debug)]
pub struct Group {
    /// What was done, for a person.
    pub what: String,
    /// The operation every member had.
    pub op: Op,
    /// Each operation.
    pub operations: Vec<Operation>,
    /// For operations made all at once: from the first call's start until the last end.
    pub wall: Option<Duration>,
    /// Desired-state revisions the group made.
    pub revisions: i64,
    /// Agent reports (statuses and events) the management side applied for the group.
    pub reports: i64,
    /// Resident memory of this whole process once the group was done.
    pub rss_bytes: u64,
}

/// Everything measured.
#[derive(Debug)]
pub struct Results {
    /// The groups, in the order they ran.
    pub groups: Vec<Group>,
    /// One controller step of the cluster with every PostgreSQL of the at-once groups
    /// running; `None` when there were none.
    pub step_with_postgres: Option<Duration>,
    /// Resident memory of this whole process before the first group.
    pub rss_before: u64,
}

/// Creates the tenant and project, then runs the groups.
pub async fn run(plan: &Plan, installation: &Installation) -> anyhow::Result<Results> {
    let client = &installation.client;
    create_tenant(client, TENANT).await?;
    create_project(client, 0, TENANT, PROJECT, DATACENTER).await?;
    let rss_before = Usage::of("self")?.rss_bytes;
    let mut groups = Vec::new();

    eprintln!(
        "{} PostgreSQL services created, then deleted, one after another",
        plan.postgres_sequential
    );
    let solo = ids("pg-solo", plan.postgres_sequential);
    let postgres = Op::Create(Kind::Postgres);
    for (op, what) in [
        (postgres, "one PostgreSQL created alone"),
        (Op::Delete, "one PostgreSQL deleted alone"),
    ] {
        groups.push(one_after_another(installation, &solo, op, what, plan.timeout).await?);
    }

    eprintln!(
        "{} PostgreSQL services created, paused, resumed and deleted all at once",
        plan.postgres
    );
    let many = ids("pg", plan.postgres);
    let mut step_with_postgres = None;
    for op in [postgres, Op::Pause, Op::Resume, Op::Delete] {
        let what = format!("{} PostgreSQL {} at once", plan.postgres, participle(op));
        groups.push(all_at_once(installation, &many, op, &what, plan.timeout).await?);
        if op == postgres && !many.is_empty() {
            step_with_postgres = Some(installation.cluster.step_time().await?);
        }
    }

    if plan.object_storage {
        wait_for_agent(
            client,
            "report object storage",
            OBJECT_STORAGE_TIMEOUT,
            |agent| agent.object_storage,
        )
        .await?;
        eprintln!(
            "{} buckets created, then deleted, one after another; {} at once",
            plan.buckets_sequential, plan.buckets
        );
        let bucket = Op::Create(Kind::Bucket);
        let solo = ids("bucket-solo", plan.buckets_sequential);
        for (op, what) in [
            (bucket, "one bucket created alone"),
            (Op::Delete, "one bucket deleted alone"),
        ] {
            groups.push(one_after_another(installation, &solo, op, what, plan.timeout).await?);
        }
        let many = ids("bucket", plan.buckets);
        for op in [bucket, Op::Delete] {
            let what = format!("{} buckets {} at once", plan.buckets, participle(op));
            groups.push(all_at_once(installation, &many, op, &what, plan.timeout).await?);
        }
    }
    Ok(Results {
        groups,
        step_with_postgres,
        rss_before,
    })
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:03}")).collect()
}

fn participle(op: Op) -> &'static str {
    match op {
        Op::Create(_) => "created",
        Op::Pause => "paused",
        Op::Resume => "resumed",
        Op::Delete => "deleted",
    }
}

/// Does `op` to each of `ids` in turn, each once the link is quiet after the previous one.
async fn one_after_another(
    installation: &Installation,
    ids: &[String],
    op: Op,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<Group> {
    let client = &installation.client;
    let mut operations = Vec::with_capacity(ids.len());
    let (mut revisions, mut reports) = (0, 0);
    for id in ids {
        let before = installation.settle().await?;
        operations.push(operate(client, 0, id, op, timeout).await?);
        let after = installation.settle().await?;
        revisions += after.revision - before.revision;
        reports += after.reports - before.reports;
    }
    Ok(Group {
        what: what.into(),
        op,
        operations,
        wall: None,
        revisions,
        reports,
        rss_bytes: Usage::of("self")?.rss_bytes,
    })
}

/// Does `op` to every one of `ids` at once, each on its own task, released together.
async fn all_at_once(
    installation: &Installation,
    ids: &[String],
    op: Op,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<Group> {
    let client = &installation.client;
    let before = installation.settle().await?;
    let operations = together::at_once(ids.len(), |worker| {
        let (client, id) = (client.clone(), ids[worker].clone());
        async move { operate(&client, worker, &id, op, timeout).await }
    })
    .await?;
    let after = installation.settle().await?;
    Ok(Group {
        what: what.into(),
        op,
        wall: together::wall(operations.iter().map(|o| (o.started, o.to_end))),
        operations,
        revisions: after.revision - before.revision,
        reports: after.reports - before.reports,
        rss_bytes: Usage::of("self")?.rss_bytes,
    })
}

/// Calls `op` on managed service `id` and watches it until it is no longer in progress. An
/// end in anything but the operation's end state is an error.
async fn operate(
    client: &Client,
    worker: usize,
    id: &str,
    op: Op,
    timeout: Duration,
) -> anyhow::Result<Operation> {
    let parent = format!("tenants/{TENANT}/projects/{PROJECT}/environments/{ENVIRONMENT}");
    let name = format!("{parent}/managedServices/{id}");
    let mut stub = ManagedServiceServiceClient::new(client.channel(worker));
    let started = Instant::now();
    let answered = match op {
        Op::Create(kind) => {
            stub.create_managed_service(client.request(kind.request(&parent, id)))
                .await
        }
        Op::Pause => {
            stub.pause_managed_service(client.request(pb::PauseManagedServiceRequest {
                name: name.clone(),
                request_id: String::new(),
            }))
            .await
        }
        Op::Resume => {
            stub.resume_managed_service(client.request(pb::ResumeManagedServiceRequest {
                name: name.clone(),
                request_id: String::new(),
            }))
            .await
        }
        Op::Delete => {
            stub.delete_managed_service(client.request(pb::DeleteManagedServiceRequest {
                name: name.clone(),
                confirm: id.into(),
                request_id: String::new(),
            }))
            .await
        }
    }
    .with_context(|| format!("{} {name}", participle(op)))?
    .into_inner();
    let call = started.elapsed();
    let mut watch = client.request(pb::WatchManagedServiceRequest { name: name.clone() });
    // The stream lives until the operation is over, far longer than a unary call.
    watch.set_timeout(timeout);
    let mut stream = stub
        .watch_managed_service(watch)
        .await
        .with_context(|| format!("watching {name}"))?
        .into_inner();
    let ended = loop {
        let Some(service) = stream
            .message()
            .await
            .with_context(|| format!("watching {name}"))?
        else {
            bail!(
                "the watch of {name} ended before it was {}",
                op.end().as_str_name()
            );
        };
        match service.state() {
            state if state == op.end() => break service,
            ManagedServiceState::Error => {
                bail!("{name} ended in ERROR: {}", service.state_message)
            }
            _ => {}
        }
    };
    let to_end = started.elapsed();
    let time = |s: &pb::ManagedService| s.update_time.and_then(|t| SystemTime::try_from(t).ok());
    let server = time(&answered)
        .zip(time(&ended))
        .map(|(from, to)| to.duration_since(from).unwrap_or_default());
    Ok(Operation {
        call,
        to_end,
        started,
        server,
    })
}
