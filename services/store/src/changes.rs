//! Notices that datacenters' desired state may have changed: within one process through a
//! broadcast channel, and across the instances sharing a PostgreSQL through `NOTIFY`.

use tokio::sync::broadcast;

use crate::{Result, error::backend};

/// A notice that datacenters' desired state may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatacenterChange {
    /// This datacenter changed (or was deleted).
    One {
        /// Its id.
        datacenter: String,
        /// W3C `traceparent` of the call that changed it; empty if unknown.
        traceparent: String,
    },
    /// Notices may have been missed: look at every datacenter again.
    All,
}

/// Forwards PostgreSQL `NOTIFY outpost_datacenters` to subscribers; stops when dropped.
#[derive(Debug)]
pub(crate) struct ListenerTask(tokio::task::JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ListenerTask {
    pub(crate) async fn start(
        url: &str,
        changes: broadcast::Sender<DatacenterChange>,
    ) -> Result<Self> {
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(backend)?;
        listener
            .listen("outpost_datacenters")
            .await
            .map_err(backend)?;
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        // The payload is `datacenter[ traceparent]`.
                        let (datacenter, traceparent) =
                            n.payload().split_once(' ').unwrap_or((n.payload(), ""));
                        let _ = changes.send(DatacenterChange::One {
                            datacenter: datacenter.to_owned(),
                            traceparent: traceparent.to_owned(),
                        });
                    }
                    // The connection dropped and was re-established: notices in between are
                    // lost, so everyone must look again.
                    Ok(None) => {
                        tracing::warn!("change listener reconnected to PostgreSQL");
                        let _ = changes.send(DatacenterChange::All);
                    }
                    Err(e) => {
                        tracing::warn!(error = %outpost_process::ErrorChain(&e), "change listener failed; retrying");
                        let _ = changes.send(DatacenterChange::All);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self(task))
    }
}
