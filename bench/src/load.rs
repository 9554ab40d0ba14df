//! The closed-loop load generator: a fixed number of workers, each issuing one call at a
//! time for a fixed wall-clock duration, after a warm-up whose numbers are discarded; and
//! the percentiles every program reports.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;

/// How one cell of the table is measured.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Calls in flight at any moment.
    pub concurrency: usize,
    /// Run before measuring, to open connections, fill caches and grow pools.
    pub warmup: Duration,
    /// Measured run.
    pub duration: Duration,
}

/// What one measured run produced.
#[derive(Debug)]
pub struct Stats {
    /// Successful calls per second of wall time.
    pub rps: f64,
    /// Median latency of successful calls.
    pub p50: Duration,
    /// 99th-percentile latency of successful calls.
    pub p99: Duration,
    /// Failed calls.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

/// Warms up, then measures `call`. `call(worker)` starts one RPC; the worker index lets it
/// spread workers over channels.
pub async fn measure<F, Fut>(plan: Plan, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let call = Arc::new(call);
    run(plan.concurrency, plan.warmup, call.clone()).await;
    run(plan.concurrency, plan.duration, call).await
}

/// Per-worker results, merged after the run so the hot loop shares nothing.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn run<F, Fut>(concurrency: usize, duration: Duration, call: Arc<F>) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let call = call.clone();
        workers.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                match call(worker).await {
                    Ok(()) => tally.latencies.push(sent.elapsed()),
                    Err(status) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| status.to_string());
                    }
                }
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(mut tally) => {
                all.latencies.append(&mut tally.latencies);
                all.errors += tally.errors;
                if all.first_error.is_none() {
                    all.first_error = tally.first_error;
                }
            }
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("worker failed: {e}"));
            }
        }
    }
    // Calls started just before the deadline finish after it; count the time they took.
    let elapsed = start.elapsed();
    all.latencies.sort_unstable();
    Stats {
        rps: all.latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all.latencies, 50.0),
        p99: percentile(&all.latencies, 99.0),
        errors: all.errors,
        first_error: all.first_error,
    }
}

/// Nearest-rank percentile of sorted samples; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorted samples of one latency, as the report tables print them.
#[derive(Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Sorts `samples`.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank `p`th percentile; zero when there are none.
    pub fn p(&self, p: f64) -> Duration {
        percentile(&self.0, p)
    }

    /// The largest; zero when there are none.
    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }

    /// The arithmetic mean; zero when there are none.
    pub fn mean(&self) -> Duration {
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX).max(1);
        self.0.iter().sum::<Duration>() / n
    }

    /// `p50 … p99 … max …`, in milliseconds.
    pub fn summary(&self) -> String {
        format!(
            "p50 {}  p99 {}  max {}",
            ms(self.p(50.0)),
            ms(self.p(99.0)),
            ms(self.max())
        )
    }
}

/// `d` in milliseconds with one decimal, e.g. `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
