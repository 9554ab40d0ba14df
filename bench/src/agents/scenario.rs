//! The measured scenario, phase by phase: seed the API, enroll every agent, attach every
//! agent, idle, make one-datacenter changes, then changes to every datacenter at once, and
//! finally let every agent leave. Each phase waits for a state (every agent acknowledged
//! revision R) rather than for time, except the idle window, which is what it measures.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use outpost_bench::{load::Samples, targets::Client, usage::Usage};

use crate::{
    bounded,
    fleet::{self, Agent, Fleet, Joining, Link},
    management::Management,
    platform::{FLEET_TENANT, Platform, datacenter_id},
    report::{AllDc, OneDc, Phase, Results},
};

/// How long one agent may take to acknowledge a one-datacenter change.
const ONE_DC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole fleet may take to catch up with a change to every datacenter.
const ALL_DC_TIMEOUT: Duration = Duration::from_secs(120);
/// API client connections.
const API_CHANNELS: usize = 4;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Simulated agents, one datacenter each.
    pub agents: usize,
    /// Enrollments, attaches or seeding calls in flight at once.
    pub concurrency: usize,
    /// One-datacenter changes.
    pub changes: usize,
    /// Changes to every datacenter at once.
    pub all_dc_rounds: usize,
    /// The idle window with every agent connected.
    pub idle: Duration,
}

/// Runs every phase against `management`, in order, and returns what was measured.
pub async fn run(plan: &Plan, management: &Management) -> anyhow::Result<Results> {
    let n = plan.agents;
    let limit = plan.concurrency.max(1);
    let client = Client::connect(management.api, API_CHANNELS, Some(&management.admin_token))
        .await
        .context("connecting to the API")?;
    let platform = Platform::new(client);

    eprintln!(
        "seeding {n} datacenters, a join token for each, and a project with a service in each"
    );
    let tokens = platform.create_datacenters(n, limit).await?;
    platform
        .create_tenant_across(FLEET_TENANT, n, true, limit)
        .await?;
    let seeded = format!(
        "{n} datacenters, each with one project (3 environments) and one service of tenant {FLEET_TENANT}"
    );
    let before = management.usage()?;

    eprintln!("making {n} agent keys and CSRs");
    let joining = tokens
        .into_iter()
        .enumerate()
        .map(|(index, token)| Joining::new(index, token))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gateway: Arc<str> = management.gateway.as_str().into();
    let fingerprint: Arc<str> = management.ca_fingerprint.as_str().into();

    eprintln!("enrolling {n} agents, {limit} at a time");
    let (enrolled, enroll) = timed(management, async {
        let mut latencies = Vec::with_capacity(n);
        let enrolled = bounded::collect(joining, limit, |j| {
            fleet::enroll(gateway.clone(), fingerprint.clone(), j)
        })
        .await?
        .into_iter()
        .map(|(enrolled, took)| {
            latencies.push(took);
            enrolled
        })
        .collect::<Vec<_>>();
        Ok((enrolled, latencies))
    })
    .await?;

    let enrolled_usage = management.usage()?;

    eprintln!("attaching {n} agents, {limit} at a time");
    let mut fleet = Fleet::new();
    let ((), connect) = timed(management, async {
        let mut latencies = Vec::with_capacity(n);
        bounded::each(
            enrolled,
            limit,
            |e| Link::open(gateway.clone(), e),
            |(link, took)| {
                latencies.push(took);
                fleet.add(link);
            },
        )
        .await?;
        Ok(((), latencies))
    })
    .await?;
    settle(&platform, &fleet).await?;

    eprintln!("idling {} s with {n} agents connected", plan.idle.as_secs());
    let idle_start = management.usage()?;
    let idle = plan.idle;
    tokio::time::sleep(idle).await;
    let idle_end = management.usage()?;

    eprintln!("{} one-datacenter changes", plan.changes);
    let one_dc = one_dc_changes(&platform, &fleet, management, plan.changes).await?;

    let mut all_dc = Vec::with_capacity(plan.all_dc_rounds);
    for round in 0..plan.all_dc_rounds {
        let tenant = format!("wave-{round}");
        eprintln!(
            "all-datacenter change {}/{}: creating tenant {tenant} across {n} datacenters, then deleting it",
            round + 1,
            plan.all_dc_rounds
        );
        platform
            .create_tenant_across(&tenant, n, false, limit)
            .await?;
        settle(&platform, &fleet).await?;
        all_dc.push(all_dc_change(&platform, &fleet, management, &tenant).await?);
    }
    let end = management.usage()?;
    let links_ended = fleet.ended();
    fleet.stop().await;
    eprintln!("waiting for the management side to see every agent disconnected");
    wait_all_disconnected(&platform).await?;
    let disconnected = management.usage()?;
    let log_problems = management.log_problems();
    Ok(Results {
        enroll,
        connect,
        seeded,
        before,
        enrolled: enrolled_usage,
        idle_end,
        end,
        disconnected,
        idle,
        idle_cpu: idle_end.cpu.saturating_sub(idle_start.cpu),
        one_dc,
        all_dc,
        bench_cpu: Usage::of("self")?.cpu,
        links_ended,
        log_problems,
    })
}

/// Runs a phase that does one thing per agent and returns each agent's time, and measures
/// its wall time and the management process's CPU.
async fn timed<T>(
    management: &Management,
    phase: impl Future<Output = anyhow::Result<(T, Vec<Duration>)>>,
) -> anyhow::Result<(T, Phase)> {
    let cpu = management.usage()?.cpu;
    let started = Instant::now();
    let (value, latencies) = phase.await?;
    let elapsed = started.elapsed();
    let management_cpu = management.usage()?.cpu.saturating_sub(cpu);
    Ok((
        value,
        Phase {
            elapsed,
            latencies,
            management_cpu,
        },
    ))
}

/// Waits until every agent has acknowledged its datacenter's current revision, so the next
/// change is the only one in flight.
async fn settle(platform: &Platform, fleet: &Fleet) -> anyhow::Result<()> {
    let revisions = platform.desired_revisions().await?;
    let deadline = Instant::now() + ALL_DC_TIMEOUT;
    for agent in fleet.agents() {
        let dc = datacenter_id(agent.index);
        let revision = *revisions
            .get(&dc)
            .with_context(|| format!("datacenter {dc} is not listed"))?;
        agent
            .acked_at_least(revision, deadline.saturating_duration_since(Instant::now()))
            .await?;
    }
    Ok(())
}

/// Polls until the management side shows no agent connected; bounded.
async fn wait_all_disconnected(platform: &Platform) -> anyhow::Result<()> {
    let deadline = Instant::now() + ALL_DC_TIMEOUT;
    loop {
        let connected = platform.connected_agents().await?;
        if connected == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{connected} agents still shown connected {ALL_DC_TIMEOUT:?} after they left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Updates one service `changes` times, each after the previous one was acknowledged, and
/// times each ack by the agent of that service's datacenter.
async fn one_dc_changes(
    platform: &Platform,
    fleet: &Fleet,
    management: &Management,
    changes: usize,
) -> anyhow::Result<OneDc> {
    let agent: &Agent = fleet
        .agents()
        .first()
        .filter(|a| a.index == 0)
        .context("the agent of datacenter 0 is not connected")?;
    let mut from_return = Vec::with_capacity(changes);
    let mut from_call = Vec::with_capacity(changes);
    let mut calls = Vec::with_capacity(changes);
    let mut acked_before_return = 0;
    let cpu = management.usage()?.cpu;
    for change in 0..changes {
        let baseline = agent.acked().revision;
        let called = Instant::now();
        platform.update_changed_service(change).await?;
        let returned = Instant::now();
        let ack = agent.acked_at_least(baseline + 1, ONE_DC_TIMEOUT).await?;
        if ack.at < returned {
            acked_before_return += 1;
        }
        from_return.push(ack.at.saturating_duration_since(returned));
        from_call.push(ack.at.saturating_duration_since(called));
        calls.push(returned - called);
    }
    Ok(OneDc {
        from_return: Samples::new(from_return),
        from_call: Samples::new(from_call),
        calls: Samples::new(calls),
        acked_before_return,
        management_cpu: management.usage()?.cpu.saturating_sub(cpu),
    })
}

/// Deletes `tenant`, which has environments in every datacenter, and times every agent's
/// ack of the resulting revision.
async fn all_dc_change(
    platform: &Platform,
    fleet: &Fleet,
    management: &Management,
    tenant: &str,
) -> anyhow::Result<AllDc> {
    let baselines: Vec<i64> = fleet.agents().iter().map(|a| a.acked().revision).collect();
    let cpu = management.usage()?.cpu;
    let called = Instant::now();
    platform.delete_tenant(tenant).await?;
    let returned = Instant::now();
    let deadline = returned + ALL_DC_TIMEOUT;
    let mut per_agent = Vec::with_capacity(baselines.len());
    let mut acked_before_return = 0;
    // Each agent's task stamps its own ack, so waiting for them one by one loses nothing.
    for (agent, baseline) in fleet.agents().iter().zip(baselines) {
        let ack = agent
            .acked_at_least(
                baseline + 1,
                deadline.saturating_duration_since(Instant::now()),
            )
            .await?;
        if ack.at < returned {
            acked_before_return += 1;
        }
        per_agent.push(ack.at.saturating_duration_since(returned));
    }
    Ok(AllDc {
        call: returned - called,
        per_agent: Samples::new(per_agent),
        acked_before_return,
        management_cpu: management.usage()?.cpu.saturating_sub(cpu),
    })
}
