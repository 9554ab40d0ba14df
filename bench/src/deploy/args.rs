//! The command line: what to start and which groups to run.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use outpost_agent::runtime::CephArgs;

use crate::{managed, scenario};

/// Times deploys and managed services on a simulated cluster whose pods become ready at once.
#[derive(Parser)]
#[command(about)]
pub struct Args {
    /// Services deployed all at once (first deploys, then new versions).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub services: u64,
    /// New versions of one service deployed one after another on an otherwise empty cluster.
    #[arg(long, default_value_t = 30)]
    pub sequential: usize,
    /// New versions of that service deployed one after another once the other services are
    /// deployed too.
    #[arg(long, default_value_t = 10)]
    pub sequential_among: usize,
    /// Milliseconds between the simulated cluster's controller steps; 1 is the smallest the
    /// simulator supports, so the cluster adds as little as it can.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub step_ms: u64,
    /// PostgreSQL services created, paused, resumed and deleted all at once.
    #[arg(long, default_value_t = 50)]
    pub managed: usize,
    /// PostgreSQL services created, then deleted, one after another.
    #[arg(long, default_value_t = 10)]
    pub managed_sequential: usize,
    /// With Ceph: buckets created and deleted all at once.
    #[arg(long, default_value_t = 20)]
    pub buckets: usize,
    /// With Ceph: buckets created, then deleted, one after another.
    #[arg(long, default_value_t = 5)]
    pub buckets_sequential: usize,
    /// The agent's Ceph, for the buckets; without it there are none.
    #[command(flatten)]
    pub ceph: CephArgs,
    /// Runs only this part; default: the managed services, then the deploys.
    #[arg(long, value_enum)]
    pub only: Option<Part>,
    /// Seconds one deploy or managed-service operation may take to end before the run fails.
    #[arg(long, default_value_t = 60)]
    pub deploy_timeout_secs: u64,
    /// API client connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// PostgreSQL URL whose user may create databases: the management service runs on a
    /// fresh database there, dropped afterwards. Default: SQLite in a temp dir.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Log filter (`tracing` syntax) for every part, to stderr.
    #[arg(long, default_value = "warn")]
    pub log: String,
}

/// A part of the benchmark.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// The deploys.
    Deploys,
    /// The managed services.
    Managed,
}

impl Args {
    /// Whether `part` runs.
    pub fn runs(&self, part: Part) -> bool {
        self.only.is_none_or(|only| only == part)
    }

    /// The deploys to run.
    pub fn plan(&self) -> anyhow::Result<scenario::Plan> {
        Ok(scenario::Plan {
            services: usize::try_from(self.services)?,
            sequential: self.sequential,
            sequential_among: self.sequential_among,
            deploy_timeout: self.timeout(),
        })
    }

    /// The managed-service operations to run; buckets only with `object_storage`.
    pub fn managed_plan(&self, object_storage: bool) -> managed::Plan {
        managed::Plan {
            postgres_sequential: self.managed_sequential,
            postgres: self.managed,
            buckets_sequential: self.buckets_sequential,
            buckets: self.buckets,
            object_storage,
            timeout: self.timeout(),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.deploy_timeout_secs)
    }
}
