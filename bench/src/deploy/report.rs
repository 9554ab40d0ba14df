//! The printed markdown tables: the deploy and managed-service latencies with the management
//! side's view of where the time went, then what the link, the cluster and the process did
//! meanwhile.

use std::time::Duration;

use outpost_bench::{
    load::{Samples, ms},
    usage::mib,
};
use outpost_proto::management::v1::ManagedServiceState;

use crate::{
    managed::{self, Operation},
    scenario::{Deploy, Group, Results},
};

/// How the numbers were obtained, printed above them.
#[derive(Debug)]
pub struct Setup {
    /// Cores every part shares.
    pub cores: usize,
    /// The simulated cluster's step interval.
    pub step: Duration,
    /// The management service's database, for a person.
    pub store: &'static str,
    /// Services deployed at once.
    pub services: usize,
}

/// Prints the parts that ran to stdout.
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
pub fn print(setup: &Setup, deploys: Option<&Results>, managed: Option<&managed::Results>) {
    println!(
        "deploy-bench: the management service ({}), a simulated Kubernetes stepping every {} ms \
         and one agent, in one process on {} cores; every group starts on a quiet link",
        setup.store,
        setup.step.as_secs_f64() * 1000.0,
        setup.cores,
    );
    // In the order they ran.
    if let Some(r) = managed {
        print_managed(setup, r);
    }
    if let Some(r) = deploys {
        print_deploys(setup, r);
    }
}

/// The deploys' tables.
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
fn print_deploys(setup: &Setup, r: &Results) {
    let n = setup.services;
    println!();
    println!(
        "deploys: services of 1 replica; each deploy timed from the DeployService call to \
         DEPLOYED on its WatchDeployment stream (pushed, not polled)"
    );
    println!();
    println!("| deploys | n | p50 | p99 | max | mean | all done |");
    println!("|---|--:|--:|--:|--:|--:|--:|");
    let groups = [
        ("one service, new versions one after another", &r.solo),
        (&*format!("{n} services' first deploys at once"), &r.first),
        (
            &*format!("{n} services' new versions at once"),
            &r.concurrent,
        ),
        (
            &*format!("one service among {n} deployed, new versions one after another"),
            &r.among,
        ),
    ];
    for (what, group) in groups {
        rows(what, group);
    }
    println!();
    println!(
        "management side: the deployment's own create and end times (ms). Waiting for a later \
         agent pass: for the deploys whose applying pass found the new version not ready yet, \
         from that pass's report (`WorkloadProgressing`) to the report of the pass that found it \
         ready (`WorkloadAvailable`); the others were ready when the applying pass looked."
    );
    println!();
    println!("| group | deploys | desired-state revisions | agent reports applied | per deploy |");
    println!("|---|--:|--:|--:|--:|");
    for (what, group) in groups {
        let count = group.deploys.len().max(1) as f64;
        println!(
            "| {what} | {} | {} | {} | {:.1} revisions, {:.1} reports |",
            group.deploys.len(),
            group.revisions,
            group.reports,
            group.revisions as f64 / count,
            group.reports as f64 / count,
        );
    }
    println!();
    println!(
        "one controller step of the simulated cluster (the API waits while it runs): {} with one \
         service deployed, {} with {} deployed",
        ms(r.step_solo),
        ms(r.step_all),
        n + 1
    );
    if r.step_all > setup.step {
        println!(
            "note: with {} services a step takes longer than the step interval ({}), so the \
             simulated API is busy most of the time and every agent call waits for a step: the \
             rows with {n} services measure the simulator as much as the platform (compare \
             --step-ms 200)",
            n + 1,
            ms(setup.step)
        );
    }
}

/// The rows of one group: whole deploys, the call alone, the management side's view, and
/// the wait for a later agent pass where there was one.
fn rows(what: &str, group: &Group) {
    let deploys = &group.deploys;
    let samples =
        |f: fn(&Deploy) -> Option<Duration>| Samples::new(deploys.iter().filter_map(f).collect());
    row(
        &format!("**{what}: call → DEPLOYED**"),
        &samples(|d| Some(d.to_deployed)),
        group.wall,
    );
    row(
        "  DeployService call alone",
        &samples(|d| Some(d.call)),
        None,
    );
    row(
        "  management side: created → DEPLOYED",
        &samples(|d| Some(d.stages.server)),
        None,
    );
    row(
        "  waiting for a later agent pass (n: deploys that did)",
        &samples(|d| d.stages.waited),
        None,
    );
}

/// The managed services' tables.
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
fn print_managed(setup: &Setup, r: &managed::Results) {
    println!();
    println!(
        "managed services: each operation timed from its API call to the end state on its \
         WatchManagedService stream (pushed, not polled); PostgreSQL 16, FLX, 10 GiB; buckets \
         of 1 GiB"
    );
    println!();
    println!("| operations | n | p50 | p99 | max | mean | all done |");
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for group in &r.groups {
        let operations = &group.operations;
        let samples = |f: fn(&Operation) -> Option<Duration>| {
            Samples::new(operations.iter().filter_map(f).collect())
        };
        row(
            &format!("**{}: call → {}**", group.what, end_state(group.op.end())),
            &samples(|o| Some(o.to_end)),
            group.wall,
        );
        row("  the call alone", &samples(|o| Some(o.call)), None);
        row(
            "  management side: the call's update time → the end's",
            &samples(|o| o.server),
            None,
        );
    }
    println!();
    println!(
        "resident memory is this whole process's (management service, agent, simulated cluster \
         and the benchmark's client), read from /proc once the group's link was quiet again; \
         before the first group: {}",
        mib(r.rss_before)
    );
    println!();
    println!(
        "| group | operations | desired-state revisions | agent reports applied | per operation \
         | resident memory after |"
    );
    println!("|---|--:|--:|--:|--:|--:|");
    for group in &r.groups {
        let count = group.operations.len().max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {:.1} revisions, {:.1} reports | {} |",
            group.what,
            group.operations.len(),
            group.revisions,
            group.reports,
            group.revisions as f64 / count,
            group.reports as f64 / count,
            mib(group.rss_bytes),
        );
    }
    if let Some(step) = r.step_with_postgres {
        println!();
        println!(
            "one controller step of the simulated cluster with the at-once PostgreSQL services \
             running: {}",
            ms(step)
        );
        if step > setup.step {
            println!(
                "note: that is longer than the step interval ({}), so the simulated API is busy \
                 most of the time and every agent call waits for a step: the at-once rows measure \
                 the simulator as much as the platform (compare --step-ms 50)",
                ms(setup.step)
            );
        }
    }
}

/// `SYNCHRONIZED` for `MANAGED_SERVICE_STATE_SYNCHRONIZED`.
fn end_state(state: ManagedServiceState) -> &'static str {
    let name = state.as_str_name();
    name.strip_prefix("MANAGED_SERVICE_STATE_").unwrap_or(name)
}

#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
fn row(what: &str, samples: &Samples, wall: Option<Duration>) {
    let cell = |d: Duration| {
        if samples.is_empty() {
            "–".to_owned()
        } else {
            ms(d)
        }
    };
    println!(
        "| {what} | {} | {} | {} | {} | {} | {} |",
        samples.len(),
        cell(samples.p(50.0)),
        cell(samples.p(99.0)),
        cell(samples.max()),
        cell(samples.mean()),
        wall.map_or(String::new(), ms),
    );
}
