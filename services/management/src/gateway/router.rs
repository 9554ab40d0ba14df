//! Routes change notices to the links of the datacenters they name, so a change wakes one
//! link rather than every link (waking all of them costs every agent's share of CPU on every
//! change). A notice that may hide others (a gap in the store's stream) wakes all links.

use std::{collections::HashMap, sync::Mutex};

use outpost_store::{DatacenterChange, Store};
use tokio::sync::{broadcast::error::RecvError, watch};
use tokio_util::sync::CancellationToken;

/// The latest notice for one datacenter: a counter that moves on every notice, and the
/// trace of the change behind it.
pub type Notice = (u64, String);

/// Per-datacenter notice channels.
#[derive(Debug, Default)]
pub struct ChangeRouter {
    channels: Mutex<HashMap<String, watch::Sender<Notice>>>,
}

impl ChangeRouter {
    /// Notices for `datacenter`, from now on. Subscribe before reading its state, so no
    /// change in between is missed.
    pub fn subscribe(&self, datacenter: &str) -> watch::Receiver<Notice> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry(datacenter.to_owned())
            .or_insert_with(|| watch::channel((0, String::new())).0)
            .subscribe()
    }

    fn notify(&self, datacenter: &str, traceparent: String) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = channels.get(datacenter) {
            sender.send_modify(|n| *n = (n.0.wrapping_add(1), traceparent));
        }
    }

    fn notify_all(&self) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for sender in channels.values() {
            sender.send_modify(|n| n.0 = n.0.wrapping_add(1));
        }
    }

    /// Forwards the store's notices until `shutdown`.
    pub async fn run(&self, store: Store, shutdown: CancellationToken) {
        let mut changes = store.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                notice = changes.recv() => match notice {
                    Ok(DatacenterChange::One { datacenter, traceparent }) => self.notify(&datacenter, traceparent),
                    Ok(DatacenterChange::All) | Err(RecvError::Lagged(_)) => self.notify_all(),
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
