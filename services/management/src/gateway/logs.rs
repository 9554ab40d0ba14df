//! Log requests relayed over agent links. Logs are read live from a datacenter's cluster and
//! never stored: an API call opens a request on the link of the datacenter's agent
//! ([`LogRelay::open`]), the link sends it to the agent, and hands the agent's chunks to the
//! waiting call ([`LogSubscription`]).
//!
//! Only agents linked to *this* instance are reachable. With several instances sharing a
//! database, an agent is linked to one of them and a call served by another answers
//! UNAVAILABLE; relaying log requests between instances is not done.
//!
//! Everything is bounded, and the link never waits for a caller: at most
//! [`MAX_OPEN_PER_LINK`] requests per link, at most [`CHUNK_BUFFER`] chunks buffered per
//! request. A caller that falls behind loses its request (the agent is told to stop), never
//! the link; a caller that goes away has its request canceled at the agent.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{StreamExt, stream::FuturesUnordered};
use outpost_proto::agent::v1::{self as pb, attach_response::Kind as Out};
use tokio::sync::mpsc;

/// Requests one link forwards at once; more answer [`LogFailure::TooMany`].
pub const MAX_OPEN_PER_LINK: usize = 16;
/// Chunks buffered for one caller; beyond, the caller is too slow.
pub const CHUNK_BUFFER: usize = 16;
/// Requests waiting for a link to pick them up.
const OPEN_QUEUE: usize = 8;

/// Why a log answer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogFailure {
    /// The datacenter's agent has no link to this instance.
    #[error(
        "the agent of datacenters/{0} is not connected to this management instance; logs are read through it"
    )]
    NotLinked(String),
    /// The link ended before the answer did.
    #[error("the datacenter's agent disconnected")]
    Disconnected,
    /// No pod matched (a build's pod).
    #[error("{0}")]
    NotFound(String),
    /// The agent could not read its cluster.
    #[error("the datacenter's cluster could not be read: {0}")]
    ClusterUnavailable(String),
    /// As many requests as allowed are open for the datacenter.
    #[error("too many log requests are open for this datacenter; try again later")]
    TooMany,
    /// The caller read more slowly than the pods wrote.
    #[error("the log was written faster than it was read; the stream was stopped")]
    TooSlow,
}

/// What the link hands a caller.
#[derive(Debug)]
enum Event {
    Chunk(pb::LogChunk),
    Failed(LogFailure),
}

/// A request on its way to a link.
struct Open {
    request: pb::LogRequest,
    traceparent: String,
    events: mpsc::Sender<Event>,
}

struct Registered {
    link: u64,
    opens: mpsc::Sender<Open>,
}

/// The links of this instance that take log requests, by datacenter. Shared by the API
/// (which opens requests) and the gateway (whose links register).
#[derive(Default)]
pub struct LogRelay {
    links: Mutex<HashMap<String, Registered>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for LogRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogRelay")
    }
}

impl LogRelay {
    /// Sends `request` (its id is assigned here) to the agent of `datacenter`. Waits only
    /// while the link's short queue is full. Errors: [`LogFailure::NotLinked`],
    /// [`LogFailure::Disconnected`].
    pub async fn open(
        &self,
        datacenter: &str,
        mut request: pb::LogRequest,
    ) -> Result<LogSubscription, LogFailure> {
        let opens = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(datacenter)
            .map(|r| r.opens.clone())
            .ok_or_else(|| LogFailure::NotLinked(datacenter.to_owned()))?;
        request.id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        // One slot more than the chunks a caller may fall behind by: the end always fits.
        let (events, receiver) = mpsc::channel(CHUNK_BUFFER + 1);
        let open = Open {
            request,
            traceparent: outpost_telemetry::current_traceparent(),
            events,
        };
        opens
            .send(open)
            .await
            .map_err(|_| LogFailure::Disconnected)?;
        Ok(LogSubscription {
            events: receiver,
            done: false,
            truncated: false,
        })
    }

    fn register(&self, datacenter: &str, link: u64) -> mpsc::Receiver<Open> {
        let (opens, receiver) = mpsc::channel(OPEN_QUEUE);
        // A newer link of the same agent replaces an older one still closing.
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(datacenter.to_owned(), Registered { link, opens });
        receiver
    }

    fn unregister(&self, datacenter: &str, link: u64) {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if links.get(datacenter).is_some_and(|r| r.link == link) {
            links.remove(datacenter);
        }
    }
}

/// A caller's view of one log answer. Dropping it cancels the request at the agent.
#[derive(Debug)]
pub struct LogSubscription {
    events: mpsc::Receiver<Event>,
    done: bool,
    truncated: bool,
}

impl LogSubscription {
    /// The next chunk of lines (the first may have none: the agent found the pods), or
    /// `Ok(None)` once the answer is complete; after the end or an error, `Ok(None)` again.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<pb::LogChunk>, LogFailure> {
        if self.done {
            return Ok(None);
        }
        let event = self.events.recv().await;
        let chunk = match event {
            Some(Event::Chunk(chunk)) => chunk,
            Some(Event::Failed(failure)) => {
                self.done = true;
                return Err(failure);
            }
            None => {
                self.done = true;
                return Err(LogFailure::Disconnected);
            }
        };
        let Some(end) = chunk.end.clone() else {
            return Ok(Some(chunk));
        };
        self.done = true;
        self.truncated = end.truncated;
        match end.code() {
            pb::LogEndCode::Complete => {}
            pb::LogEndCode::NotFound => return Err(LogFailure::NotFound(end.message)),
            pb::LogEndCode::Exhausted => return Err(LogFailure::TooMany),
            pb::LogEndCode::Unavailable | pb::LogEndCode::Unspecified => {
                return Err(LogFailure::ClusterUnavailable(end.message));
            }
        }
        Ok((!chunk.lines.is_empty()).then_some(chunk))
    }

    /// Whether the agent left lines out at the request's `max_lines`; known at the end.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

type Abandoned = Pin<Box<dyn Future<Output = u64> + Send>>;

/// One link's side: the requests it forwards and the callers waiting for their answers.
/// Registered with the relay while it exists; dropping it ends every open answer with
/// [`LogFailure::Disconnected`].
pub struct LinkLogs {
    relay: Arc<LogRelay>,
    datacenter: String,
    link: u64,
    opens: mpsc::Receiver<Open>,
    pending: HashMap<u64, mpsc::Sender<Event>>,
    /// Resolves with a request's id once its caller has gone.
    abandoned: FuturesUnordered<Abandoned>,
}

impl LinkLogs {
    /// Registers a link of `datacenter`'s agent; from now on log requests for it come here.
    pub fn register(relay: Arc<LogRelay>, datacenter: &str) -> Self {
        let link = relay.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let opens = relay.register(datacenter, link);
        Self {
            relay,
            datacenter: datacenter.to_owned(),
            link,
            opens,
            pending: HashMap::new(),
            abandoned: FuturesUnordered::new(),
        }
    }

    /// What the link is to send the agent next, with the trace of the call behind it: a
    /// new request, or a cancel for one whose caller went away (forgotten here). Cancel-safe.
    pub async fn next_for_agent(&mut self) -> (Out, String) {
        loop {
            tokio::select! {
                Some(open) = self.opens.recv() => {
                    if let Some(request) = self.accept(open) {
                        return request;
                    }
                }
                Some(id) = self.abandoned.next() => {
                    if self.pending.remove(&id).is_some() {
                        return (Out::LogCancel(pb::LogCancel { id }), String::new());
                    }
                }
                // Replaced by a newer link, and no caller left to watch.
                else => return std::future::pending().await,
            }
        }
    }

    /// Takes on a request unless [`MAX_OPEN_PER_LINK`] are open already.
    fn accept(&mut self, open: Open) -> Option<(Out, String)> {
        if self.pending.len() >= MAX_OPEN_PER_LINK {
            // A fresh channel always has room.
            let _ = open.events.try_send(Event::Failed(LogFailure::TooMany));
            return None;
        }
        let id = open.request.id;
        let events = open.events.clone();
        self.abandoned.push(Box::pin(async move {
            events.closed().await;
            id
        }));
        self.pending.insert(id, open.events);
        Some((Out::LogRequest(open.request), open.traceparent))
    }

    /// Hands a chunk to its caller without ever waiting. Returns the id of a request the
    /// agent is to stop answering because its caller fell [`CHUNK_BUFFER`] chunks behind.
    /// Chunks of unknown (already ended or canceled) requests are dropped.
    pub fn deliver(&mut self, chunk: pb::LogChunk) -> Option<u64> {
        let id = chunk.id;
        let events = self.pending.get(&id)?;
        if chunk.end.is_some() {
            // The slot kept free for the end.
            let _ = events.try_send(Event::Chunk(chunk));
            self.pending.remove(&id);
            return None;
        }
        // This link is the only sender, so the free slots cannot shrink between the check
        // and the send. A closed channel is the abandoned future's business.
        if events.capacity() > 1 {
            let _ = events.try_send(Event::Chunk(chunk));
            return None;
        }
        let _ = events.try_send(Event::Failed(LogFailure::TooSlow));
        self.pending.remove(&id);
        Some(id)
    }
}

impl Drop for LinkLogs {
    fn drop(&mut self) {
        self.relay.unregister(&self.datacenter, self.link);
    }
}

#[cfg(test)]
mod tests;
