//! Many independent jobs, each on its own task (so they spread over the runtime's threads),
//! with at most a fixed number in flight.

use std::future::Future;

use anyhow::Context as _;
use tokio::task::JoinSet;

/// Runs `job(item)` for every item, at most `limit` at a time, and hands each result to
/// `done` as it completes. Stops at the first failure; the jobs still running are aborted
/// when the set is dropped.
pub async fn each<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    job: F,
    mut done: impl FnMut(R),
) -> anyhow::Result<()>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
    R: Send + 'static,
{
    let mut pending = items.into_iter();
    let mut running = JoinSet::new();
    for item in pending.by_ref().take(limit.max(1)) {
        running.spawn(job(item));
    }
    while let Some(joined) = running.join_next().await {
        done(joined.context("a job panicked")??);
        if let Some(item) = pending.next() {
            running.spawn(job(item));
        }
    }
    Ok(())
}

/// [`each`], collecting the results in completion order.
pub async fn collect<T, R, F, Fut>(items: Vec<T>, limit: usize, job: F) -> anyhow::Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
    R: Send + 'static,
{
    let mut results = Vec::with_capacity(items.len());
    each(items, limit, job, |r| results.push(r)).await?;
    Ok(results)
}
