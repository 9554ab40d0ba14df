//! Simulated container logs (`GET …/pods/NAME/log`). Lines are derived from the container's
//! status, so they tell the same story as the pod: a start line, a listening line, readiness
//! or probe failures, and for a terminated instance the reason it ended (completed, out of
//! memory, crash). Errors mirror the kubelet's: a container that has not started, or a
//! `previous` instance that does not exist, is a 400. Each line carries the time it was
//! written, for `timestamps` and `sinceSeconds`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::error::ApiError;
use crate::faults::{self, Fault};

fn decode_pod(pod: &Value) -> Result<Pod, ApiError> {
    serde_json::from_value(pod.clone()).map_err(|e| ApiError::Internal(Box::new(e)))
}

/// The container a log request is about: the one asked for, or the only one.
pub(crate) fn container_name(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let pod = decode_pod(pod)?;
    let name = pod.metadata.name.unwrap_or_default();
    let names: Vec<String> = pod
        .spec
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    match asked {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => match names.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            ))),
        },
    }
}

/// One line of a container's log and when it was written (unknown if the container
/// status lacks the time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) time: Option<Timestamp>,
    pub(crate) text: String,
}

impl Line {
    /// The line as served, with the kubelet's RFC 3339 prefix when `timestamps` is asked
    /// for, and its newline.
    pub(crate) fn render(&self, timestamps: bool) -> String {
        match (timestamps, self.time) {
            (true, Some(t)) => format!("{} {}\n", crate::clock::format_time(t), self.text),
            _ => format!("{}\n", self.text),
        }
    }
}

fn instance_lines(
    image: &str,
    fault: Option<Fault>,
    state: &ContainerState,
    ready: bool,
) -> Vec<Line> {
    let started_at = state
        .running
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .or_else(|| {
            state
                .terminated
                .as_ref()
                .and_then(|t| t.started_at.as_ref())
        })
        .map(|t| t.0);
    let started = started_at
        .map(crate::clock::format_time)
        .unwrap_or_default();
    let at_start = |text: String| Line {
        time: started_at,
        text,
    };
    let mut lines = vec![
        at_start(format!("{started} INFO starting {image}")),
        at_start(format!("{started} INFO listening on 0.0.0.0:8080")),
    ];
    if let Some(t) = &state.terminated {
        let finished_at = t.finished_at.as_ref().map(|t| t.0);
        let finished = finished_at
            .map(crate::clock::format_time)
            .unwrap_or_default();
        lines.push(Line {
            time: finished_at,
            text: match t.reason.as_deref() {
                Some("Completed") => format!("{finished} INFO work complete, exiting"),
                Some("OOMKilled") => format!("{finished} FATAL runtime: out of memory"),
                _ => format!(
                    "{finished} ERROR panic: simulated crash, exiting with status {}",
                    t.exit_code
                ),
            },
        });
    } else if fault == Some(Fault::Health) {
        lines.push(at_start(format!(
            "{started} WARN readiness check failed: dependency unavailable"
        )));
    } else if ready {
        lines.push(at_start(format!("{started} INFO ready")));
    }
    lines
}

/// Log lines of the current (or, with `previous`, the last terminated) instance of
/// `container`. Errors: 400 if that instance has not started or does not exist.
pub(crate) fn lines(
    pod_obj: &Value,
    container: &str,
    previous: bool,
) -> Result<Vec<Line>, ApiError> {
    let pod = decode_pod(pod_obj)?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let image = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let fault = faults::for_container(&annotations, &image);
    let status: Option<ContainerStatus> = pod
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().find(|c| c.name == container));
    let waiting = |reason: &str| {
        ApiError::BadRequest(format!(
            "container {container:?} in pod {name:?} is waiting to start: {reason}"
        ))
    };
    let Some(status) = status else {
        return Err(waiting("ContainerCreating"));
    };
    let last = status.last_state.clone().filter(|s| s.terminated.is_some());
    let state = status.state.clone().unwrap_or_default();
    let (instance, ready) = match (previous, state.waiting.as_ref(), last) {
        (true, _, Some(last)) => (last, false),
        (true, _, None) => {
            return Err(ApiError::BadRequest(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            )));
        }
        // Between restarts the kubelet serves the instance that just ended.
        (false, Some(_), Some(last)) => (last, false),
        (false, Some(w), None) => {
            return Err(waiting(w.reason.as_deref().unwrap_or("ContainerCreating")));
        }
        (false, None, _) => (state, status.ready),
    };
    Ok(instance_lines(&image, fault, &instance, ready))
}

/// What a log request selects: the last `tail` lines (all with `None`) of those written at
/// or after `since` (all with `None`), as the kubelet applies `sinceSeconds` before
/// `tailLines`.
pub(crate) fn select(
    mut lines: Vec<Line>,
    since: Option<Timestamp>,
    tail: Option<usize>,
) -> Vec<Line> {
    if let Some(since) = since {
        // A line of unknown time is kept: dropping it would hide output, not old output.
        lines.retain(|l| l.time.is_none_or(|t| t >= since));
    }
    if let Some(n) = tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    lines
}

/// Lines as a `text/plain` response body.
pub(crate) fn response(lines: &[Line], timestamps: bool) -> Response {
    let body: String = lines.iter().map(|l| l.render(timestamps)).collect();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}
