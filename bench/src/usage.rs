//! What a process costs, read from `/proc`: resident memory and CPU time (user + system,
//! all threads), and the open-file limit this program raises for itself and its child.

use std::time::Duration;

use anyhow::Context as _;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Resident set size (`VmRSS`).
    pub rss_bytes: u64,
    /// CPU time used so far, all threads, user plus system.
    pub cpu: Duration,
    /// Open file descriptors (sockets, database files, …).
    pub open_fds: usize,
}

impl Usage {
    /// Reads `/proc/<pid>/status`, `/proc/<pid>/stat` and `/proc/<pid>/fd`; `pid` may be
    /// `"self"`.
    pub fn of(pid: &str) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // The command name (field 2) may hold spaces and parentheses; fields after the last
        // `)` start with field 3, so utime (14) and stime (15) are the 12th and 13th there.
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("malformed /proc stat")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<u64> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .context("malformed /proc stat")
        };
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        let total_ticks = ticks(11)? + ticks(12)?;
        let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .with_context(|| format!("listing /proc/{pid}/fd"))?
            .count();
        Ok(Self {
            rss_bytes: rss_kib * 1024,
            cpu: Duration::from_secs_f64(total_ticks as f64 / per_second as f64),
            open_fds,
        })
    }
}

/// The open-file limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy)]
pub struct FdLimit {
    /// Soft limit the program started with.
    pub before: u64,
    /// Soft limit now (inherited by the management process).
    pub now: u64,
}

/// Raises this process's soft open-file limit towards `wanted`, at most to the hard limit.
/// Every simulated agent holds a socket here and one in the management process, which
/// inherits the limit, so the common default of 1024 is too low for 1,000 agents.
pub fn raise_fd_limit(wanted: u64) -> anyhow::Result<FdLimit> {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    if before >= wanted {
        return Ok(FdLimit {
            before,
            now: before,
        });
    }
    let now = limit.maximum.map_or(wanted, |hard| wanted.min(hard));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(now),
            maximum: limit.maximum,
        },
    )
    .context("raising the open-file limit")?;
    Ok(FdLimit { before, now })
}

/// `bytes` in MiB, for the printed tables.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
