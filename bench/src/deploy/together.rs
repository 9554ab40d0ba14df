//! Timed operations started all at once, and the wall time a group of them took.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::{sync::Barrier, task::JoinSet};

/// Runs `operation(i)` for every `i` below `count`, each on its own task. A barrier releases
/// them together, so the first does not run alone while the last are still being spawned.
/// Returns the results in the order they finished, or the first failure.
pub async fn at_once<T, F, Fut>(count: usize, operation: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(Barrier::new(count));
    let mut running = JoinSet::new();
    for i in 0..count {
        let (start, operation) = (start.clone(), operation(i));
        running.spawn(async move {
            start.wait().await;
            operation.await
        });
    }
    let mut done = Vec::with_capacity(count);
    while let Some(joined) = running.join_next().await {
        done.push(joined.context("a timed task panicked")??);
    }
    Ok(done)
}

/// From the earliest start to the latest end of `spans` (each a start and how long it
/// took); `None` without spans.
pub fn wall(spans: impl IntoIterator<Item = (Instant, Duration)>) -> Option<Duration> {
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (start, took) in spans {
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(start + took, |l| l.max(start + took)));
    }
    first.zip(last).map(|(first, last)| last - first)
}
