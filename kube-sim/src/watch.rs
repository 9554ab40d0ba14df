//! Watch fan-out: a bounded history of changes (to resume a watch from a `resourceVersion`)
//! and the set of live subscribers. The hub lives inside the store and is driven under the
//! store's lock, so events reach every subscriber in resourceVersion order.
//!
//! Every subscriber has a bounded channel. A subscriber that falls a full channel behind is
//! disconnected (its stream ends), as a real API server drops a slow watcher; the client then
//! resumes from the last resourceVersion it saw, or relists on `410 Expired`.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::resource::Resource;
use crate::selector::{FieldSelectorExpr, LabelSelectorExpr};

/// How many changes are kept for resuming watches; older resourceVersions get `410 Expired`.
const HISTORY_CAPACITY: usize = 4096;
/// Frames buffered per subscriber before it is considered too slow and disconnected.
pub(crate) const SUBSCRIBER_CAPACITY: usize = 1024;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as recorded in the history.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub resource: Resource,
    pub namespace: String,
    pub kind: ChangeKind,
    /// The object before the change (`None` for an addition).
    pub old: Option<Arc<Value>>,
    /// The object after the change; for a deletion, the last state with the deletion's
    /// resourceVersion.
    pub new: Arc<Value>,
}

/// One line of a watch stream.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub event_type: &'static str,
    pub object: Arc<Value>,
}

impl Frame {
    /// The newline-terminated JSON line sent to the client.
    pub(crate) fn to_line(&self) -> Vec<u8> {
        let mut line = json!({ "type": self.event_type, "object": &*self.object })
            .to_string()
            .into_bytes();
        line.push(b'\n');
        line
    }
}

/// Which objects a watch is interested in.
#[derive(Debug, Clone)]
pub(crate) struct WatchFilter {
    pub resource: Resource,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub labels: LabelSelectorExpr,
    pub fields: FieldSelectorExpr,
}

impl WatchFilter {
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    /// The event a subscriber with this filter sees for `change`, if any. An object that
    /// starts or stops matching the selectors is reported as added or deleted, like a real
    /// server's filtered watch.
    pub(crate) fn frame_for(&self, change: &Change) -> Option<Frame> {
        if change.resource != self.resource
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.namespace)
        {
            return None;
        }
        let was = change.old.as_ref().is_some_and(|o| self.matches(o));
        let is = self.matches(&change.new);
        let event_type = match (change.kind, was, is) {
            (ChangeKind::Deleted, true, _) => "DELETED",
            (ChangeKind::Deleted, false, _) => return None,
            (_, false, true) => "ADDED",
            (_, true, true) => "MODIFIED",
            (_, true, false) => "DELETED",
            (_, false, false) => return None,
        };
        Some(Frame {
            event_type,
            object: change.new.clone(),
        })
    }
}

struct Subscriber {
    id: u64,
    filter: WatchFilter,
    tx: mpsc::Sender<Frame>,
}

/// Change history plus live subscribers.
pub(crate) struct WatchHub {
    /// The history holds every change with a resourceVersion above this one.
    floor: u64,
    history: VecDeque<Arc<Change>>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
}

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHub")
            .field("history", &self.history.len())
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl WatchHub {
    /// A hub whose history starts after resourceVersion `floor` (the store's version when it
    /// was loaded: changes before a restart cannot be replayed).
    pub(crate) fn new(floor: u64) -> WatchHub {
        WatchHub {
            floor,
            history: VecDeque::new(),
            subscribers: Vec::new(),
            next_id: 0,
        }
    }

    /// Records a change and offers it to every subscriber without blocking.
    pub(crate) fn publish(&mut self, change: Change) {
        let change = Arc::new(change);
        self.subscribers.retain(|s| {
            let Some(frame) = s.filter.frame_for(&change) else {
                return !s.tx.is_closed();
            };
            match s.tx.try_send(frame) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        resource = %s.filter.resource,
                        "watch subscriber too slow; disconnecting"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if self.history.len() == HISTORY_CAPACITY
            && let Some(dropped) = self.history.pop_front()
        {
            self.floor = dropped.rv;
        }
        self.history.push_back(change);
    }

    /// Frames for the changes after `rv` that `filter` selects, or `Err(oldest)` if changes
    /// after `rv` have already left the history.
    pub(crate) fn replay_after(&self, rv: u64, filter: &WatchFilter) -> Result<Vec<Frame>, u64> {
        if rv < self.floor {
            return Err(self.floor);
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.rv > rv)
            .filter_map(|c| filter.frame_for(c))
            .collect())
    }

    /// Registers a subscriber; returns its id (for [`WatchHub::unsubscribe`]) and receiver.
    pub(crate) fn subscribe(&mut self, filter: WatchFilter) -> (u64, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
        self.next_id += 1;
        let id = self.next_id;
        self.subscribers.push(Subscriber { id, filter, tx });
        (id, rx)
    }

    pub(crate) fn unsubscribe(&mut self, id: u64) {
        self.subscribers.retain(|s| s.id != id);
    }

    /// Live subscriber count (for tests of slow-watcher disconnection).
    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> WatchFilter {
        WatchFilter {
            resource: Resource::ConfigMap,
            namespace: Some("default".into()),
            labels: LabelSelectorExpr::parse("app=web").unwrap(),
            fields: FieldSelectorExpr::default(),
        }
    }

    fn change(rv: u64, kind: ChangeKind, old: Option<&str>, new: &str) -> Change {
        let obj = |app: &str| Arc::new(json!({"metadata": {"labels": {"app": app}}}));
        Change {
            rv,
            resource: Resource::ConfigMap,
            namespace: "default".into(),
            kind,
            old: old.map(obj),
            new: obj(new),
        }
    }

    #[test]
    fn objects_entering_and_leaving_a_selector_are_added_and_deleted() {
        let f = filter();
        let ty = |c: Change| f.frame_for(&c).map(|fr| fr.event_type);
        assert_eq!(ty(change(1, ChangeKind::Added, None, "web")), Some("ADDED"));
        assert_eq!(ty(change(2, ChangeKind::Added, None, "db")), None);
        assert_eq!(
            ty(change(3, ChangeKind::Modified, Some("db"), "web")),
            Some("ADDED")
        );
        assert_eq!(
            ty(change(4, ChangeKind::Modified, Some("web"), "web")),
            Some("MODIFIED")
        );
        assert_eq!(
            ty(change(5, ChangeKind::Modified, Some("web"), "db")),
            Some("DELETED")
        );
        assert_eq!(
            ty(change(6, ChangeKind::Deleted, Some("web"), "web")),
            Some("DELETED")
        );
    }

    #[test]
    fn a_slow_subscriber_is_disconnected_not_buffered() {
        let mut hub = WatchHub::new(0);
        let (_, mut rx) = hub.subscribe(filter());
        for rv in 1..=(SUBSCRIBER_CAPACITY as u64 + 1) {
            hub.publish(change(rv, ChangeKind::Added, None, "web"));
        }
        assert_eq!(hub.subscriber_count(), 0);
        let mut received = 0;
        while rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, SUBSCRIBER_CAPACITY);
    }

    #[test]
    fn resuming_from_an_expired_version_is_refused() {
        let mut hub = WatchHub::new(0);
        for rv in 1..=(HISTORY_CAPACITY as u64 + 10) {
            hub.publish(change(rv, ChangeKind::Added, None, "web"));
        }
        assert!(hub.replay_after(3, &filter()).is_err());
        let tail = hub
            .replay_after(HISTORY_CAPACITY as u64 + 8, &filter())
            .unwrap();
        assert_eq!(tail.len(), 2);
    }
}
