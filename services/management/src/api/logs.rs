//! `LogService`: recent and followed logs of a service's pods or of a deployment's build.
//! The lines come live from the datacenter's agent over its link to this instance
//! ([`crate::gateway::logs`]) and are never stored. A handler checks the query, authorizes,
//! finds the namespace and datacenter, and turns the agent's chunks into entries.

use std::{collections::VecDeque, pin::Pin, time::Duration};

use futures::Stream;
use outpost_domain::{
    authz::{Kind, Verb},
    desired::namespace_name,
    logs::{LogQuery, LogSource},
};
use outpost_proto::{
    agent::v1 as agent,
    management::v1::{self as pb, log_service_server::LogService},
};
use outpost_store::prelude::*;
use tonic::{Request, Response, Status};

use super::{Api, respond};
use crate::{
    error::ApiError,
    gateway::logs::{LogFailure, LogSubscription},
};

/// Implements `LogService`.
#[derive(Debug, Clone)]
pub struct LogApi(pub Api);

/// Most entries in one ReadLogs answer; the agent stops there.
const MAX_ANSWER_LINES: i32 = 10_000;
/// Most bytes of line text in one ReadLogs answer: well under the message size limit, with
/// room for each entry's pod, container and time.
const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// How long ReadLogs waits for the whole answer; under the API's default deadline, so the
/// caller learns why.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long StreamLogs waits for the agent to find the pods before it answers.
const FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a followed log runs; a caller wanting more calls again.
const MAX_FOLLOW: Duration = Duration::from_secs(3600);
/// How much longer the agent lets a request run than this side waits for it: this side's
/// deadline comes first and ends the answer cleanly; the agent's only guards against a
/// cancel lost with the link.
const AGENT_TIMEOUT_SLACK: Duration = Duration::from_secs(10);

impl LogApi {
    /// Checks a log request (`resource`, `container`, `tail_lines`, `since_seconds`),
    /// authorizes it (viewers and above of the resource's tenant; another tenant's is
    /// NOT_FOUND) and opens it on the link of the datacenter's agent.
    async fn open<T>(
        &self,
        req: &Request<T>,
        fields: (&str, &str, i32, i64),
        follow: bool,
    ) -> Result<(LogSubscription, LogSource), ApiError> {
        let api = &self.0;
        let ctx = api.context(req).await?;
        let (resource, container, tail_lines, since_seconds) = fields;
        let query = LogQuery::parse(resource, container, tail_lines, since_seconds)?;
        let service = query.source.service();
        let kind = match query.source {
            LogSource::Service(_) => "service",
            LogSource::Build(_) => "deployment",
        };
        api.authorize(
            &ctx,
            Some(&service.tenant),
            Kind::Service,
            Verb::Read,
            kind,
            resource,
        )?;
        // The connection goes back to the pool before the agent is asked.
        let (environment, build) = {
            let mut reader = api.reader().await?;
            let build = match &query.source {
                LogSource::Service(s) => {
                    reader.service_get(s).await?;
                    0
                }
                LogSource::Build(d) => reader.deployment_get(d).await?.name.number(),
            };
            let environment = reader.environment_get(&service.environment_name()).await?;
            (environment, build)
        };
        let timeout = if follow { MAX_FOLLOW } else { READ_TIMEOUT } + AGENT_TIMEOUT_SLACK;
        let request = agent::LogRequest {
            id: 0,
            namespace: namespace_name(&environment.name, &environment.meta.uid),
            workload: service.service.clone(),
            build,
            container: query.container.unwrap_or_default(),
            tail_lines: i32::try_from(query.tail_lines).unwrap_or(i32::MAX),
            since_seconds: query.since_seconds.unwrap_or(0),
            follow,
            max_lines: if follow { 0 } else { MAX_ANSWER_LINES },
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        };
        let subscription = api
            .log_relay()
            .open(&environment.datacenter.datacenter, request)
            .await
            .map_err(|f| failed(f, &query.source))?;
        Ok((subscription, query.source))
    }
}

/// The API's answer to a failed log request about `source`.
fn failed(failure: LogFailure, source: &LogSource) -> ApiError {
    match failure {
        LogFailure::NotFound(_) => ApiError::NotFound {
            kind: "build pod of deployment",
            name: source.to_string(),
        },
        f @ (LogFailure::TooMany | LogFailure::TooSlow) => {
            ApiError::ResourceExhausted(f.to_string())
        }
        f @ (LogFailure::NotLinked(_)
        | LogFailure::Disconnected
        | LogFailure::ClusterUnavailable(_)) => ApiError::Unavailable(f.to_string()),
    }
}

/// The agent did not answer within `waited`.
fn no_answer(waited: Duration) -> ApiError {
    ApiError::Unavailable(format!(
        "the datacenter's agent did not answer within {}s",
        waited.as_secs()
    ))
}

/// A chunk's lines as entries.
fn entries(chunk: agent::LogChunk) -> impl Iterator<Item = pb::LogEntry> {
    chunk.lines.into_iter().map(move |line| pb::LogEntry {
        pod: chunk.pod.clone(),
        container: chunk.container.clone(),
        time: line.time,
        line: line.text,
    })
}

/// A followed log: entry by entry until the answer ends, fails or runs for [`MAX_FOLLOW`].
/// Chunks are read from the subscription only as the caller takes entries, so a slow
/// caller fills its subscription (and loses it) instead of buffering here.
fn follow(
    subscription: LogSubscription,
    first: Option<agent::LogChunk>,
    source: LogSource,
) -> impl Stream<Item = Result<pb::LogEntry, Status>> + Send + 'static {
    struct State {
        subscription: LogSubscription,
        pending: VecDeque<pb::LogEntry>,
        source: LogSource,
        deadline: tokio::time::Instant,
    }
    let state = State {
        subscription,
        pending: first.into_iter().flat_map(entries).collect(),
        source,
        deadline: tokio::time::Instant::now() + MAX_FOLLOW,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(entry) = s.pending.pop_front() {
                return Some((Ok(entry), s));
            }
            match tokio::time::timeout_at(s.deadline, s.subscription.next()).await {
                Err(_) | Ok(Ok(None)) => return None,
                Ok(Ok(Some(chunk))) => s.pending.extend(entries(chunk)),
                Ok(Err(failure)) => {
                    let status = Status::from(failed(failure, &s.source));
                    return Some((Err(status), s));
                }
            }
        }
    })
}

#[tonic::async_trait]
impl LogService for LogApi {
    async fn read_logs(
        &self,
        req: Request<pb::ReadLogsRequest>,
    ) -> Result<Response<pb::ReadLogsResponse>, Status> {
        respond(async {
            let r = req.get_ref();
            let fields = (&*r.resource, &*r.container, r.tail_lines, r.since_seconds);
            let (mut subscription, source) = self.open(&req, fields, false).await?;
            let mut answer = pb::ReadLogsResponse::default();
            let mut bytes = 0;
            let collect = async {
                while let Some(chunk) = subscription.next().await? {
                    for entry in entries(chunk) {
                        bytes += entry.line.len();
                        if bytes > MAX_ANSWER_BYTES {
                            // Dropping the subscription stops the agent.
                            answer.truncated = true;
                            return Ok(());
                        }
                        answer.entries.push(entry);
                    }
                }
                Ok(())
            };
            tokio::time::timeout(READ_TIMEOUT, collect)
                .await
                .map_err(|_| no_answer(READ_TIMEOUT))?
                .map_err(|f| failed(f, &source))?;
            answer.truncated |= subscription.truncated();
            Ok(answer)
        })
        .await
    }

    type StreamLogsStream =
        Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send + 'static>>;

    async fn stream_logs(
        &self,
        req: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        respond(async {
            let r = req.get_ref();
            let fields = (&*r.resource, &*r.container, r.tail_lines, r.since_seconds);
            let (mut subscription, source) = self.open(&req, fields, true).await?;
            // The first chunk comes as soon as the agent found the pods, so a missing build
            // pod or an unreadable cluster is this call's status, not an error mid-stream.
            let first = tokio::time::timeout(FIRST_CHUNK_TIMEOUT, subscription.next())
                .await
                .map_err(|_| no_answer(FIRST_CHUNK_TIMEOUT))?
                .map_err(|f| failed(f, &source))?;
            let stream: Self::StreamLogsStream = Box::pin(follow(subscription, first, source));
            Ok(stream)
        })
        .await
    }
}
