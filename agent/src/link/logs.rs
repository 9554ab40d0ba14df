//! Log requests from the management side, answered while the stream that carried them is
//! up. Their chunks go straight onto the stream, never through the durable outbox: logs
//! are ephemeral, and a request ends with its stream (dropping [`LogRequests`] stops every
//! answer).
//!
//! Every answer is bounded: lines are cut at
//! [`MAX_LINE_BYTES`](crate::drivers::kube::logs::MAX_LINE_BYTES), chunks hold at most
//! [`MAX_CHUNK_LINES`] lines and [`MAX_CHUNK_BYTES`] bytes, an answer stops at the request's
//! `max_lines` and its timeout (at most [`MAX_TIMEOUT`]), and at most [`MAX_REQUESTS`] run at
//! once. Sending waits for room on the stream, so a busy link slows the reading of logs
//! rather than buffering them.

use std::{collections::HashMap, io, pin::Pin, time::Duration};

use futures::{Stream, StreamExt as _, stream};
use kube::api::LogParams;
use outpost_proto::{
    agent::v1::{self as pb, attach_request::Kind as Out},
    convert::timestamp,
};
use tokio::{sync::mpsc, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::drivers::kube::logs::{LineReader, LogTarget, PodLogs, split_time};

/// Requests answered at once; more are refused at once. Above the management side's limit
/// per link, so a cancel still on its way does not get a new request refused.
pub const MAX_REQUESTS: usize = 32;
/// Lines in one chunk at most.
pub const MAX_CHUNK_LINES: usize = 500;
/// Bytes of line text in one chunk at most; four of the longest lines.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// Longest an answer runs, whatever its request asks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// A followed log's lines wait at most this long for more before they are sent.
const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// How long opening one container's log may take before that container is left out.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The log requests of one stream.
pub struct LogRequests {
    pods: PodLogs,
    outbound: mpsc::Sender<pb::AttachRequest>,
    tasks: JoinSet<()>,
    running: HashMap<u64, (CancellationToken, tokio::task::Id)>,
}

impl LogRequests {
    /// Answers go to `outbound`, the stream's sender.
    pub fn new(pods: PodLogs, outbound: mpsc::Sender<pb::AttachRequest>) -> Self {
        Self {
            pods,
            outbound,
            tasks: JoinSet::new(),
            running: HashMap::new(),
        }
    }

    /// Starts answering `request`. A repeated id is ignored; beyond [`MAX_REQUESTS`] the
    /// answer is an EXHAUSTED end, sent from a task like any other answer.
    pub fn start(&mut self, request: pb::LogRequest) {
        self.reap();
        let id = request.id;
        if self.running.contains_key(&id) {
            return;
        }
        let cancel = CancellationToken::new();
        let chunks = ChunkSender {
            id,
            outbound: self.outbound.clone(),
        };
        let handle = if self.running.len() >= MAX_REQUESTS {
            self.tasks.spawn(async move {
                let message = "the agent answers too many log requests at once".to_owned();
                chunks.end(end(pb::LogEndCode::Exhausted, message)).await;
            })
        } else {
            let pods = self.pods.clone();
            let token = cancel.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    // Canceled: the management side has forgotten the id; say nothing.
                    () = token.cancelled() => tracing::debug!("log request canceled"),
                    end = answer(&pods, &request, &chunks) => {
                        tracing::debug!("log request answered");
                        chunks.end(end).await;
                    }
                }
            })
        };
        self.running.insert(id, (cancel, handle.id()));
    }

    /// Stops answering request `id`; unknown or finished ids are ignored.
    pub fn cancel(&mut self, id: u64) {
        if let Some((token, _)) = self.running.remove(&id) {
            token.cancel();
        }
        self.reap();
    }

    /// Forgets finished answers.
    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            let task = match done {
                Ok((task, ())) => task,
                Err(e) => e.id(),
            };
            self.running.retain(|_, (_, t)| *t != task);
        }
    }
}

/// Sends the chunks of one answer.
struct ChunkSender {
    id: u64,
    outbound: mpsc::Sender<pb::AttachRequest>,
}

impl ChunkSender {
    /// Sends lines of one container; `Err` once the stream is gone.
    async fn send(&self, target: Option<&LogTarget>, lines: Vec<pb::LogLine>) -> Result<(), ()> {
        self.chunk(pb::LogChunk {
            id: self.id,
            pod: target.map(|t| t.pod.clone()).unwrap_or_default(),
            container: target.map(|t| t.container.clone()).unwrap_or_default(),
            lines,
            end: None,
        })
        .await
    }

    /// Sends the last chunk.
    async fn end(&self, end: pb::LogEnd) {
        let _ = self
            .chunk(pb::LogChunk {
                id: self.id,
                end: Some(end),
                ..Default::default()
            })
            .await;
    }

    async fn chunk(&self, chunk: pb::LogChunk) -> Result<(), ()> {
        let message = pb::AttachRequest {
            traceparent: String::new(),
            kind: Some(Out::LogChunk(chunk)),
        };
        self.outbound.send(message).await.map_err(|_| ())
    }
}

fn end(code: pb::LogEndCode, message: String) -> pb::LogEnd {
    pb::LogEnd {
        code: code.into(),
        message,
        truncated: false,
    }
}

/// Which of the request's containers a line came from, and the line.
type Line = (usize, io::Result<String>);

/// Reads what `request` asks for and sends it in chunks; returns how the answer ended.
async fn answer(pods: &PodLogs, request: &pb::LogRequest, chunks: &ChunkSender) -> pb::LogEnd {
    let timeout = u64::try_from(request.timeout_ms).map_or(Duration::ZERO, Duration::from_millis);
    let deadline = Instant::now() + timeout.min(MAX_TIMEOUT);
    let build = (request.build > 0).then_some(request.build);
    let container = (!request.container.is_empty()).then_some(request.container.as_str());
    let listing = pods.targets(&request.namespace, &request.workload, build, container);
    let targets = match tokio::time::timeout_at(deadline, listing).await {
        Ok(Ok(targets)) => targets,
        Ok(Err(e)) => {
            tracing::debug!(error = %outpost_process::ErrorChain(&e), "listing pods for a log request failed");
            return end(pb::LogEndCode::Unavailable, format!("listing pods: {e}"));
        }
        Err(_) => {
            let message = "listing pods timed out".to_owned();
            return end(pb::LogEndCode::Unavailable, message);
        }
    };
    if let Some(n) = build
        && targets.is_empty()
    {
        let message = format!("no build pod for deployment {n} of {}", request.workload);
        return end(pb::LogEndCode::NotFound, message);
    }
    // The pods are found: say so before reading, which may take a while.
    if chunks.send(None, Vec::new()).await.is_err() {
        return end(pb::LogEndCode::Complete, String::new());
    }
    let params = LogParams {
        follow: request.follow,
        tail_lines: (request.tail_lines > 0).then_some(i64::from(request.tail_lines)),
        since_seconds: (request.since_seconds > 0).then_some(request.since_seconds),
        timestamps: true,
        ..LogParams::default()
    };
    let mut readers = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        match tokio::time::timeout(OPEN_TIMEOUT, pods.open(&request.namespace, target, &params))
            .await
        {
            Ok(Ok(reader)) => readers.push(lines_of(index, reader).boxed()),
            // A container that has not started has no log yet: nothing to show, not an error.
            Ok(Err(e)) => {
                tracing::debug!(error = %outpost_process::ErrorChain(&e), "pod log not readable")
            }
            Err(_) => tracing::debug!("opening a pod log timed out"),
        }
    }
    // Followed logs interleave as lines come; recent lines come pod by pod.
    let mut lines: Pin<Box<dyn Stream<Item = Line> + Send>> = if request.follow {
        Box::pin(stream::select_all(readers))
    } else {
        Box::pin(stream::iter(readers).flatten())
    };
    let max_lines = usize::try_from(request.max_lines).unwrap_or(0);
    let mut chunker = Chunker::new((max_lines > 0).then_some(max_lines));
    let mut flush_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            () = tokio::time::sleep_until(flush_at.unwrap_or(deadline)), if flush_at.is_some() => {
                flush_at = None;
                if send(chunks, &targets, chunker.take()).await.is_err() { break }
            }
            next = lines.next() => match next {
                None => break,
                Some((_, Err(e))) => tracing::debug!(error = %outpost_process::ErrorChain(&e), "a pod log ended early"),
                Some((index, Ok(text))) => {
                    let (time, text) = split_time(&text);
                    let line = pb::LogLine { time: time.map(timestamp), text: text.to_owned() };
                    let full = chunker.push(index, line);
                    flush_at = flush_at.or(Some(Instant::now() + FLUSH_AFTER));
                    if send(chunks, &targets, full).await.is_err() || chunker.limit_reached() {
                        break;
                    }
                }
            },
        }
    }
    let _ = send(chunks, &targets, chunker.take()).await;
    pb::LogEnd {
        truncated: chunker.limit_reached(),
        ..end(pb::LogEndCode::Complete, String::new())
    }
}

/// Sends a full chunk, if there is one.
async fn send(
    chunks: &ChunkSender,
    targets: &[LogTarget],
    chunk: Option<Chunk<usize>>,
) -> Result<(), ()> {
    match chunk {
        Some(c) => chunks.send(targets.get(c.source), c.lines).await,
        None => Ok(()),
    }
}

/// The lines of one container's log, tagged with its index.
fn lines_of(index: usize, reader: LineReader) -> impl Stream<Item = Line> + Send {
    stream::unfold(reader, move |mut reader| async move {
        let line = reader.next_line().await?;
        Some(((index, line), reader))
    })
}

/// Lines of one source, ready to send.
#[derive(Debug, PartialEq)]
struct Chunk<S> {
    source: S,
    lines: Vec<pb::LogLine>,
}

/// Gathers lines into chunks: one source per chunk, at most [`MAX_CHUNK_LINES`] lines and
/// [`MAX_CHUNK_BYTES`] bytes each, and at most `max_lines` lines in all.
struct Chunker<S> {
    current: Option<Chunk<S>>,
    bytes: usize,
    total: usize,
    max_lines: Option<usize>,
}

impl<S: PartialEq> Chunker<S> {
    fn new(max_lines: Option<usize>) -> Self {
        Self {
            current: None,
            bytes: 0,
            total: 0,
            max_lines,
        }
    }

    /// Adds a line of `source`; returns the chunk to send first when the line cannot join
    /// it. Lines past `max_lines` are dropped.
    fn push(&mut self, source: S, line: pb::LogLine) -> Option<Chunk<S>> {
        if self.limit_reached() {
            return None;
        }
        self.total += 1;
        let fits = self.current.as_ref().is_some_and(|c| {
            c.source == source
                && c.lines.len() < MAX_CHUNK_LINES
                && self.bytes + line.text.len() <= MAX_CHUNK_BYTES
        });
        let full = if fits { None } else { self.take() };
        self.bytes += line.text.len();
        self.current
            .get_or_insert_with(|| Chunk {
                source,
                lines: Vec::new(),
            })
            .lines
            .push(line);
        full
    }

    /// The lines gathered so far, if any.
    fn take(&mut self) -> Option<Chunk<S>> {
        self.bytes = 0;
        self.current.take()
    }

    /// Whether `max_lines` lines were taken.
    fn limit_reached(&self) -> bool {
        self.max_lines.is_some_and(|m| self.total >= m)
    }
}

#[cfg(test)]
mod tests;
