//! The running parts of the installation, each a task with its own stop token, stopped in
//! the reverse of the order they started: an agent never outlives the management service
//! it talks to, and the cluster is saved last, after nothing writes to it any more.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One part: its name for errors, how to stop it, and its task.
struct Part {
    name: &'static str,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The parts started so far.
pub struct Parts {
    /// Cancelled when any part ends by itself: nothing works without every part.
    all: CancellationToken,
    running: Vec<Part>,
}

impl Parts {
    /// No parts yet; a part that ends by itself cancels `all`.
    pub fn new(all: CancellationToken) -> Self {
        Self {
            all,
            running: Vec::new(),
        }
    }

    /// Spawns `run`, which must return once the token it is given is cancelled.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, run: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let running = run(stop.clone());
        let (own, all) = (stop.clone(), self.all.clone());
        let task = tokio::spawn(async move {
            let result = running.await;
            if own.is_cancelled() {
                return result;
            }
            all.cancel();
            let cause = result
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("ended unexpectedly"));
            Err(cause.context(format!("the {name} stopped")))
        });
        self.running.push(Part { name, stop, task });
    }

    /// Stops every part, newest first, each after the previous one has finished. Returns
    /// the first failure; later ones are logged.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for part in self.running.into_iter().rev() {
            part.stop.cancel();
            let result = part
                .task
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the {} panicked: {e}", part.name)));
            if let Err(e) = result {
                if first.is_ok() {
                    first = Err(e);
                } else {
                    tracing::error!(
                        part = part.name,
                        error = %outpost_process::ErrorChain(e.as_ref()),
                        "stopping failed"
                    );
                }
            }
        }
        first
    }
}
