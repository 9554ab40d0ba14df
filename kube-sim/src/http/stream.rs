//! Streaming responses: watches and followed logs. Each stream owns a bounded subscription
//! to the watch hub and ends on its timeout, on simulator shutdown, when the client goes
//! away (the dropped receiver unsubscribes it), or when the hub disconnects it for being too
//! slow. Nothing is buffered beyond the subscription's bound and the snapshot it started
//! with.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::stream;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::streaming;
use super::target::Params;
use crate::api::Selectors;
use crate::error::ApiError;
use crate::logs;
use crate::resource::Resource;
use crate::selector::{FieldSelectorExpr, LabelSelectorExpr};
use crate::shared::Shared;
use crate::store::Key;
use crate::watch::{Frame, WatchFilter};

/// What woke a stream up.
enum Wake {
    Frame(Option<Frame>),
    Shutdown,
    Timeout,
}

struct Subscription {
    shared: Arc<Shared>,
    id: u64,
    rx: mpsc::Receiver<Frame>,
    sleep: Pin<Box<Sleep>>,
}

impl Subscription {
    async fn next(&mut self) -> Wake {
        tokio::select! {
            biased;
            frame = self.rx.recv() => Wake::Frame(frame),
            () = self.shared.cancel.cancelled() => Wake::Shutdown,
            () = &mut self.sleep => Wake::Timeout,
        }
    }

    /// Unsubscribes and returns the frames already delivered to it, plus the cluster
    /// version they bring the client up to.
    fn close(&mut self) -> (Vec<Frame>, u64) {
        let rv = {
            let mut store = self.shared.store();
            store.hub_mut().unsubscribe(self.id);
            store.rv()
        };
        let mut rest = Vec::new();
        while let Ok(f) = self.rx.try_recv() {
            rest.push(f);
        }
        (rest, rv)
    }
}

struct WatchStream {
    pending: VecDeque<Vec<u8>>,
    sub: Option<Subscription>,
    resource: Resource,
    bookmarks: bool,
}

/// A BOOKMARK line at `rv`; `initial_end` marks the end of a streaming list's initial
/// events (`sendInitialEvents=true`).
fn bookmark(resource: Resource, rv: u64, initial_end: bool) -> Vec<u8> {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    let mut line = json!({
        "type": "BOOKMARK",
        "object": {
            "kind": resource.kind(),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
        },
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// A watch response: the starting events (the current objects for a watch without a
/// resourceVersion or a streaming list — then ended by an `initial-events-end` bookmark —
/// or the changes after the resourceVersion), then live changes until `timeoutSeconds`. A
/// resourceVersion older than the retained history yields one `ERROR` event with a
/// `410 Expired` status, as on a real server. On timeout, with `allowWatchBookmarks`, a last
/// `BOOKMARK` carries the current resourceVersion.
pub(super) fn watch(
    shared: Arc<Shared>,
    resource: Resource,
    namespace: Option<String>,
    selectors: Selectors,
    params: &Params,
) -> Result<Response, ApiError> {
    let filter = WatchFilter {
        resource,
        namespace,
        labels: selectors.labels,
        fields: selectors.fields,
    };
    let deadline = Instant::now() + params.timeout()?;
    let bookmarks = params.bookmarks()?;
    let streaming_list = params.send_initial_events()?;
    let start = params.resource_version()?.filter(|_| !streaming_list);
    let mut store = shared.store();
    let initial: Vec<Frame> = match start {
        None => store
            .list(resource, filter.namespace.as_deref())
            .filter(|(_, obj)| filter.matches(obj))
            .map(|(_, obj)| Frame {
                event_type: "ADDED",
                object: obj.clone(),
            })
            .collect(),
        Some(rv) => match store.hub_mut().replay_after(rv, &filter) {
            Ok(frames) => frames,
            Err(oldest) => {
                let status = ApiError::Expired {
                    requested: rv,
                    oldest,
                }
                .status();
                let line = Frame {
                    event_type: "ERROR",
                    object: Arc::new(status),
                }
                .to_line();
                return Ok(streaming("application/json", Body::from(line)));
            }
        },
    };
    let (id, rx) = store.hub_mut().subscribe(filter);
    let mut pending: VecDeque<Vec<u8>> = initial.iter().map(Frame::to_line).collect();
    if streaming_list {
        pending.push_back(bookmark(resource, store.rv(), true));
    }
    drop(store);
    let state = WatchStream {
        pending,
        sub: Some(Subscription {
            shared,
            id,
            rx,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }),
        resource,
        bookmarks,
    };
    let body = stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(Bytes::from(line)), st));
            }
            let sub = st.sub.as_mut()?;
            match sub.next().await {
                Wake::Frame(Some(frame)) => st.pending.push_back(frame.to_line()),
                // Disconnected as too slow, or shutting down: end without a bookmark.
                Wake::Frame(None) | Wake::Shutdown => st.sub = None,
                Wake::Timeout => {
                    let (rest, rv) = sub.close();
                    st.pending.extend(rest.iter().map(Frame::to_line));
                    if st.bookmarks {
                        st.pending.push_back(bookmark(st.resource, rv, false));
                    }
                    st.sub = None;
                }
            }
        }
    });
    Ok(streaming("application/json", Body::from_stream(body)))
}

struct LogStream {
    pending: VecDeque<logs::Line>,
    sub: Option<Subscription>,
    container: String,
    sent: usize,
    restarts: Option<i64>,
    timestamps: bool,
}

/// Which lines a followed log starts with, and how they are written.
pub(super) struct LogFormat {
    /// Only lines written at or after this time (`sinceSeconds`).
    pub(super) since: Option<k8s_openapi::jiff::Timestamp>,
    /// The last this many of them (`tailLines`).
    pub(super) tail: Option<usize>,
    /// Each line prefixed with its time (`timestamps`).
    pub(super) timestamps: bool,
}

fn container_status<'a>(
    pod: &'a serde_json::Value,
    container: &str,
) -> Option<&'a serde_json::Value> {
    pod.pointer("/status/containerStatuses")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(container))
}

fn restart_count(pod: &serde_json::Value, container: &str) -> Option<i64> {
    container_status(pod, container)?
        .get("restartCount")?
        .as_i64()
}

/// Whether the container's current instance has ended: its log will not grow.
fn terminated(pod: &serde_json::Value, container: &str) -> bool {
    container_status(pod, container).is_some_and(|c| c.pointer("/state/terminated").is_some())
}

/// A followed log: the current lines (as `format` selects them), then new lines as the
/// container progresses, until its instance ends (restart or termination; at once if it had
/// ended already, as for a finished Job's pod), the pod goes, shutdown, or a one-hour cap.
pub(super) fn follow_logs(
    shared: Arc<Shared>,
    key: Key,
    container: String,
    format: LogFormat,
) -> Response {
    let filter = WatchFilter {
        resource: Resource::Pod,
        namespace: Some(key.namespace.clone()),
        labels: LabelSelectorExpr::default(),
        fields: FieldSelectorExpr::parse(&format!("metadata.name={}", key.name))
            .unwrap_or_default(),
    };
    let mut store = shared.store();
    let pod = store.get(&key).cloned();
    // Nothing more to follow of an instance that has ended (or a pod that is gone).
    let ended = pod.as_ref().is_none_or(|p| terminated(p, &container));
    let subscribed = (!ended).then(|| store.hub_mut().subscribe(filter));
    drop(store);
    let lines = pod
        .as_ref()
        .and_then(|p| logs::lines(p, &container, false).ok())
        .unwrap_or_default();
    let sent = lines.len();
    let state = LogStream {
        pending: logs::select(lines, format.since, format.tail).into(),
        sub: subscribed.map(|(id, rx)| Subscription {
            shared,
            id,
            rx,
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::from_secs(3600))),
        }),
        restarts: pod.as_ref().and_then(|p| restart_count(p, &container)),
        container,
        sent,
        timestamps: format.timestamps,
    };
    let body = stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.pending.pop_front() {
                let line = line.render(st.timestamps);
                return Some((Ok::<_, Infallible>(Bytes::from(line)), st));
            }
            let sub = st.sub.as_mut()?;
            let frame = match sub.next().await {
                Wake::Frame(Some(frame)) if frame.event_type != "DELETED" => frame,
                _ => {
                    st.sub = None;
                    continue;
                }
            };
            let restarts = restart_count(&frame.object, &st.container);
            // A restart ends the followed instance; its final lines are now the previous
            // instance's.
            let ended = st.restarts.is_some() && restarts != st.restarts;
            let lines = logs::lines(&frame.object, &st.container, ended).unwrap_or_default();
            st.restarts = st.restarts.or(restarts);
            st.pending.extend(lines.iter().skip(st.sent).cloned());
            st.sent = st.sent.max(lines.len());
            if ended || terminated(&frame.object, &st.container) {
                st.sub = None;
            }
        }
    });
    streaming("text/plain", Body::from_stream(body))
}
