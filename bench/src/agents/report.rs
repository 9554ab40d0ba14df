//! The printed table and the check against the design targets (DESIGN.md §7).

use std::time::Duration;

use outpost_bench::{
    load::{Samples, ms},
    usage::{FdLimit, Usage, mib},
};

use crate::management::LogProblems;

/// The design target for a one-datacenter change, acknowledged by its agent (p99).
const ONE_DC_TARGET: Duration = Duration::from_millis(100);
/// The fleet one management instance must carry on 2 cores.
const TARGET_AGENTS: usize = 10_000;

/// How the run was set up, printed above the numbers.
#[derive(Debug)]
pub struct Setup {
    /// Cores both processes share.
    pub cores: usize,
    /// Simulated agents.
    pub agents: usize,
    /// Enrollments or attaches in flight.
    pub concurrency: usize,
    /// The open-file limit.
    pub fd_limit: FdLimit,
}

/// A phase that did one thing per agent: enroll, or attach.
#[derive(Debug)]
pub struct Phase {
    /// Wall time for all agents.
    pub elapsed: Duration,
    /// Each agent's time, sorted.
    pub latencies: Vec<Duration>,
    /// CPU the management process used meanwhile.
    pub management_cpu: Duration,
}

/// The one-datacenter changes.
#[derive(Debug)]
pub struct OneDc {
    /// From the API call's return to the agent's ack (zero when the ack came first).
    pub from_return: Samples,
    /// From the API call's start to the agent's ack.
    pub from_call: Samples,
    /// The UpdateService calls alone.
    pub calls: Samples,
    /// Acks sent before the API response reached the caller.
    pub acked_before_return: usize,
    /// CPU the management process used over all the changes.
    pub management_cpu: Duration,
}

/// One all-datacenter change.
#[derive(Debug)]
pub struct AllDc {
    /// The DeleteTenant call.
    pub call: Duration,
    /// Each agent's ack, from the call's return (zero when the ack came first).
    pub per_agent: Samples,
    /// Acks sent before the API response reached the caller.
    pub acked_before_return: usize,
    /// CPU the management process used from the call until the last ack.
    pub management_cpu: Duration,
}

/// Everything measured.
#[derive(Debug)]
pub struct Results {
    /// Enrollment of every agent.
    pub enroll: Phase,
    /// Attach of every agent until its first desired state.
    pub connect: Phase,
    /// What was seeded before the agents came.
    pub seeded: String,
    /// The management process before any agent.
    pub before: Usage,
    /// After every agent enrolled, before any attached.
    pub enrolled: Usage,
    /// With every agent connected, after the idle window.
    pub idle_end: Usage,
    /// After the changes, agents still connected.
    pub end: Usage,
    /// Once every agent left.
    pub disconnected: Usage,
    /// The idle window.
    pub idle: Duration,
    /// Management CPU during the idle window.
    pub idle_cpu: Duration,
    /// The one-datacenter changes.
    pub one_dc: OneDc,
    /// The all-datacenter changes, one per round.
    pub all_dc: Vec<AllDc>,
    /// CPU this program (the simulated agents and the API client) used in all.
    pub bench_cpu: Duration,
    /// Links the management side ended during the run, and why the first one ended.
    pub links_ended: (usize, Option<String>),
    /// WARN and ERROR lines the management process logged during the run.
    pub log_problems: LogProblems,
}

/// Prints the table to stdout.
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
pub fn print(setup: &Setup, r: &Results) {
    let n = setup.agents;
    println!(
        "agents-bench: {n} simulated agents, each with its own certificate and mTLS stream, on one \
         management process; {} cores shared by both processes; {} enrollments or attaches in flight; \
         open-file limit {}{}",
        setup.cores,
        setup.concurrency,
        setup.fd_limit.now,
        if setup.fd_limit.now == setup.fd_limit.before {
            String::new()
        } else {
            format!(" (raised from {})", setup.fd_limit.before)
        }
    );
    println!(
        "management: the real outpost-management binary, SQLite in a temp dir, log level info (to a file); \
         RSS and CPU from /proc. Seeded: {}",
        r.seeded
    );
    println!();
    let row = |what: &str, value: String, detail: String| {
        println!("{what:<48} {value:>16}   {detail}");
    };
    println!("{:<48} {:>16}   detail", "measure", "value");
    for (what, phase, action) in [
        ("enroll", &r.enroll, "new TLS connection + Enroll"),
        (
            "connect (attach until first desired state)",
            &r.connect,
            "mTLS connection + Attach + hello + first desired state",
        ),
    ] {
        let per_call = Samples::new(phase.latencies.clone());
        row(
            what,
            format!("{:.0} /s", n as f64 / phase.elapsed.as_secs_f64()),
            format!(
                "{n} in {:.2} s; per agent ({action}): {}; management CPU {:.2} s ({:.2} ms per agent)",
                phase.elapsed.as_secs_f64(),
                per_call.summary(),
                phase.management_cpu.as_secs_f64(),
                phase.management_cpu.as_secs_f64() * 1000.0 / n as f64,
            ),
        );
    }
    let per_agent = r.idle_end.rss_bytes.saturating_sub(r.before.rss_bytes) as f64 / n as f64;
    let memory = |what: &str, usage: &Usage, when: &str| {
        row(
            what,
            mib(usage.rss_bytes),
            format!("{when}; {} open fds", usage.open_fds),
        );
    };
    memory(
        "management RSS, before agents",
        &r.before,
        "after seeding, before the first enrollment",
    );
    memory(
        "management RSS, after enrollment",
        &r.enrolled,
        "every agent enrolled, none attached yet",
    );
    memory(
        &format!("management RSS, {n} agents connected, idle"),
        &r.idle_end,
        &format!("after {:.0} s idle", r.idle.as_secs_f64()),
    );
    row(
        "management RSS per connected agent",
        format!("{:.1} KiB", per_agent / 1024.0),
        "(connected - before) / agents".into(),
    );
    let idle_share = r.idle_cpu.as_secs_f64() / r.idle.as_secs_f64() * 100.0;
    row(
        &format!("management CPU, {n} idle agents"),
        format!("{idle_share:.1} % core"),
        format!(
            "{:.2} s CPU in {:.0} s: a heartbeat per agent every 10 s plus HTTP/2 keepalive pings",
            r.idle_cpu.as_secs_f64(),
            r.idle.as_secs_f64()
        ),
    );
    let one = &r.one_dc;
    let changes = one.calls.len();
    row(
        "one-DC change -> ack, from API return",
        ms(one.from_return.p(99.0)) + " p99",
        format!(
            "{}; {changes} UpdateService calls in a row; acks before the API response: {}",
            one.from_return.summary(),
            one.acked_before_return
        ),
    );
    row(
        "one-DC change -> ack, from API call start",
        ms(one.from_call.p(99.0)) + " p99",
        one.from_call.summary(),
    );
    row(
        "one-DC UpdateService call alone",
        ms(one.calls.p(99.0)) + " p99",
        format!(
            "{}; management CPU {:.2} ms per change (call + push + ack)",
            one.calls.summary(),
            one.management_cpu.as_secs_f64() * 1000.0 / changes.max(1) as f64
        ),
    );
    for (round, all) in r.all_dc.iter().enumerate() {
        row(
            &format!("all-DC change, round {}: all {n} acked", round + 1),
            ms(all.per_agent.max()),
            format!(
                "after the DeleteTenant call returned ({} to return); per agent {}; acks before the \
                 response: {}; management CPU {:.2} s ({:.2} ms per agent)",
                ms(all.call),
                all.per_agent.summary(),
                all.acked_before_return,
                all.management_cpu.as_secs_f64(),
                all.management_cpu.as_secs_f64() * 1000.0 / n as f64
            ),
        );
    }
    memory(
        "management RSS after the changes",
        &r.end,
        "agents still connected",
    );
    memory(
        "management RSS after every agent left",
        &r.disconnected,
        "once the API shows no agent connected",
    );
    row(
        "links ended by the management side",
        r.links_ended.0.to_string(),
        r.links_ended.1.clone().unwrap_or_default(),
    );
    row(
        "management log: WARN / ERROR lines",
        format!("{} / {}", r.log_problems.warnings, r.log_problems.errors),
        r.log_problems.first.clone().unwrap_or_default(),
    );
    row(
        "benchmark process CPU (agents + API client)",
        format!("{:.1} s", r.bench_cpu.as_secs_f64()),
        "shares the cores with the management process".into(),
    );
    println!();
    println!("design targets (DESIGN.md §7):");
    let p99 = one.from_return.p(99.0);
    println!(
        "  one-DC change acknowledged by its agent in p99 < {}: {} from API return, {} from call start  {}",
        ms(ONE_DC_TARGET),
        ms(p99),
        ms(one.from_call.p(99.0)),
        if p99 < ONE_DC_TARGET { "met" } else { "MISSED" }
    );
    if n >= TARGET_AGENTS {
        println!(
            "  {TARGET_AGENTS} agents on 2 cores, measured with {n}: RSS {} for the agents; idle CPU {idle_share:.0} % \
             of a core; enrolling all {:.0} s, attaching all {:.0} s",
            mib((per_agent * n as f64) as u64),
            r.enroll.elapsed.as_secs_f64(),
            r.connect.elapsed.as_secs_f64(),
        );
    } else {
        let scale = TARGET_AGENTS as f64 / n as f64;
        println!(
            "  {TARGET_AGENTS} agents on 2 cores, extrapolated linearly from {n} (run --agents {TARGET_AGENTS} to \
             measure): RSS ~{} for the agents; idle CPU ~{:.0} % of a core; enrolling all ~{:.0} s, \
             attaching all ~{:.0} s",
            mib((per_agent * TARGET_AGENTS as f64) as u64),
            idle_share * scale,
            r.enroll.elapsed.as_secs_f64() * scale,
            r.connect.elapsed.as_secs_f64() * scale,
        );
    }
}
