//! The printed table: one row per call and server, then the design-target check.

use std::time::Duration;

use outpost_bench::load::Stats;

use crate::rpcs::Rpc;

/// Label of the baseline server's rows.
pub const BARE: &str = "bare tonic";
/// Outpost's Get and List must reach this share of the bare server's GetService.
const TARGET_PERCENT: f64 = 50.0;

/// One measured cell.
#[derive(Debug)]
pub struct Row {
    /// The call.
    pub rpc: Rpc,
    /// The server: [`BARE`], `sqlite` or `postgres`.
    pub server: &'static str,
    /// What was measured.
    pub stats: Stats,
}

/// How the numbers were obtained, printed above them.
#[derive(Debug)]
pub struct Setup {
    /// Cores the runtime may use (servers and clients share them).
    pub cores: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Client connections.
    pub channels: usize,
    /// Warm-up per cell.
    pub warmup: Duration,
    /// Measurement per cell.
    pub duration: Duration,
}

/// Prints the table to stdout, followed by `notes` (skipped columns and the like).
#[expect(clippy::print_stdout, reason = "the table is the benchmark's output")]
pub fn print(setup: &Setup, rows: &[Row], notes: &[String]) {
    println!(
        "api-bench: {} cores (servers and clients share them), {} calls in flight over {} connections, \
         {:?} warm-up + {:?} measured per cell",
        setup.cores, setup.concurrency, setup.channels, setup.warmup, setup.duration
    );
    println!();
    println!(
        "{:<26} {:<11} {:>9} {:>9} {:>9} {:>7} {:>11}",
        "rpc", "server", "req/s", "p50 ms", "p99 ms", "errors", "% bare Get"
    );
    let bare_get = rows
        .iter()
        .find(|r| r.rpc == Rpc::Get && r.server == BARE)
        .map(|r| r.stats.rps);
    let share = |row: &Row| match (row.rpc, bare_get) {
        (Rpc::Get | Rpc::List, Some(base)) if base > 0.0 => Some(row.stats.rps / base * 100.0),
        _ => None,
    };
    for rpc in Rpc::ALL {
        for row in rows.iter().filter(|r| r.rpc == rpc) {
            let s = &row.stats;
            println!(
                "{:<26} {:<11} {:>9.0} {:>9.2} {:>9.2} {:>7} {:>11}",
                rpc.label(),
                row.server,
                s.rps,
                millis(s.p50),
                millis(s.p99),
                s.errors,
                share(row).map_or("-".into(), |p| format!("{p:.0}%")),
            );
        }
    }
    println!();
    println!(
        "design target: Outpost GetService and ListServices >= {TARGET_PERCENT:.0}% of bare GetService"
    );
    for row in rows.iter().filter(|r| r.server != BARE) {
        if let Some(p) = share(row) {
            let verdict = if p >= TARGET_PERCENT { "met" } else { "MISSED" };
            println!(
                "  {:<9} {:<26} {p:>4.0}%  {verdict}",
                row.server,
                row.rpc.label()
            );
        }
    }
    for row in rows.iter().filter(|r| r.stats.errors > 0) {
        if let Some(e) = &row.stats.first_error {
            println!("first error, {} on {}: {e}", row.rpc.label(), row.server);
        }
    }
    for note in notes {
        println!("{note}");
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
