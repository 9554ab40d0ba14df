//! Pod logs through the `pods/{name}/log` endpoint: which containers a log request covers,
//! and their lines read incrementally with a bound on each, so one runaway line cannot grow
//! the agent's memory. Only pods the agent owns are read.

use std::{io, pin::Pin};

use futures::{AsyncBufRead, AsyncBufReadExt as _};
use k8s_openapi::{api::core::v1::Pod, jiff};
use kube::{
    Api, Client,
    api::{ListParams, LogParams},
};

use super::{
    build::{BUILD_LABEL, BUILD_OF_LABEL},
    manifests::{OWNED_SELECTOR, WORKLOAD_LABEL},
};
/// Longest line passed on, in bytes; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Ends a line cut at [`MAX_LINE_BYTES`].
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// One container whose log a request covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// The pod.
    pub pod: String,
    /// The container in it.
    pub container: String,
}

/// Reads pod logs. Cheap to clone.
#[derive(Clone)]
pub struct PodLogs {
    client: Client,
}

impl std::fmt::Debug for PodLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PodLogs")
    }
}

/// The label selector of a log request's pods: the workload's own pods, or with `build` the
/// pods of its build for that deployment number (which do not carry the workload label).
pub fn selector(workload: &str, build: Option<i64>) -> String {
    match build {
        Some(n) => format!("{OWNED_SELECTOR},{BUILD_OF_LABEL}={workload},{BUILD_LABEL}={n}"),
        None => format!("{OWNED_SELECTOR},{WORKLOAD_LABEL}={workload}"),
    }
}

impl PodLogs {
    /// Logs read through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The containers to read, pods in name order: `container` of each pod selected by
    /// [`selector`] in `namespace`, or each pod's first container.
    pub async fn targets(
        &self,
        namespace: &str,
        workload: &str,
        build: Option<i64>,
        container: Option<&str>,
    ) -> Result<Vec<LogTarget>, kube::Error> {
        let list = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default().labels(&selector(workload, build)))
            .await?;
        let mut targets: Vec<LogTarget> = list
            .into_iter()
            .filter_map(|pod| {
                let first = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .map(|c| c.name.clone());
                Some(LogTarget {
                    pod: pod.metadata.name?,
                    container: container.map(str::to_owned).or(first)?,
                })
            })
            .collect();
        targets.sort_by(|a, b| a.pod.cmp(&b.pod));
        Ok(targets)
    }

    /// Opens one container's log as `params` ask (the container is the target's). Errors:
    /// the API server's, e.g. 400 for a container that has not started.
    pub async fn open(
        &self,
        namespace: &str,
        target: &LogTarget,
        params: &LogParams,
    ) -> Result<LineReader, kube::Error> {
        let params = LogParams {
            container: Some(target.container.clone()),
            ..params.clone()
        };
        let reader = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .log_stream(&target.pod, &params)
            .await?;
        Ok(LineReader::new(reader))
    }
}

/// Lines from a byte stream, each cut at [`MAX_LINE_BYTES`]: memory stays bounded however
/// long a line is. Invalid UTF-8 is replaced, a `\r` before the newline dropped.
pub struct LineReader {
    inner: Pin<Box<dyn AsyncBufRead + Send>>,
}

impl LineReader {
    /// Lines of `inner`.
    pub fn new(inner: impl AsyncBufRead + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next line without its newline; `None` at the end. Not cancel-safe: a line half
    /// read when the future is dropped is lost.
    pub async fn next_line(&mut self) -> Option<io::Result<String>> {
        let mut line = Vec::new();
        let mut cut = false;
        loop {
            let buf = match self.inner.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => return Some(Err(e)),
            };
            if buf.is_empty() {
                // The end; a last line without a newline still counts.
                return (!line.is_empty() || cut).then(|| Ok(finish(line, cut)));
            }
            let newline = buf.iter().position(|b| *b == b'\n');
            let upto = newline.unwrap_or(buf.len());
            let room = MAX_LINE_BYTES.saturating_sub(line.len());
            cut |= upto > room;
            line.extend_from_slice(&buf[..upto.min(room)]);
            let consumed = newline.map_or(upto, |n| n + 1);
            self.inner.consume_unpin(consumed);
            if newline.is_some() {
                return Some(Ok(finish(line, cut)));
            }
        }
    }
}

fn finish(mut line: Vec<u8>, cut: bool) -> String {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(&line).into_owned();
    if cut {
        // A cut may split a character; its lossy replacement is dropped with it.
        if text.ends_with('\u{fffd}') {
            text.pop();
        }
        text.push_str(TRUNCATED_MARK);
    }
    text
}

/// Splits the RFC 3339 time the API server puts before each line (`timestamps=true`) from
/// the line; a line without one is returned whole.
pub fn split_time(line: &str) -> (Option<outpost_domain::Timestamp>, &str) {
    let Some((first, rest)) = line.split_once(' ') else {
        return (None, line);
    };
    match first.parse::<jiff::Timestamp>() {
        Ok(t) => (Some(outpost_domain::Timestamp(t.as_millisecond())), rest),
        Err(_) => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use futures::io::{BufReader, Cursor};

    use super::*;

    async fn read_all(bytes: &[u8], buffer: usize) -> Vec<String> {
        let mut reader = LineReader::new(BufReader::with_capacity(
            buffer,
            Cursor::new(bytes.to_vec()),
        ));
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await {
            lines.push(line.expect("in-memory read"));
        }
        lines
    }

    #[tokio::test]
    async fn lines_are_split_whatever_the_buffer_size() {
        for buffer in [1, 3, 8192] {
            assert_eq!(
                read_all(b"one\ntwo\r\n\nlast", buffer).await,
                ["one", "two", "", "last"],
                "buffer {buffer}"
            );
            assert!(read_all(b"", buffer).await.is_empty());
        }
    }

    #[tokio::test]
    async fn a_long_line_is_cut_and_the_next_one_is_whole() {
        // Two-byte characters after one ASCII byte: the cut falls inside a character.
        let mut bytes = format!("x{}", "é".repeat(MAX_LINE_BYTES)).into_bytes();
        bytes.extend_from_slice(b"\nnext\n");
        for buffer in [7, 8192] {
            let lines = read_all(&bytes, buffer).await;
            assert_eq!(lines.len(), 2);
            let cut = lines[0].strip_suffix(TRUNCATED_MARK).expect("marked");
            // The split character is dropped, not shown as a replacement character.
            assert_eq!(cut, format!("x{}", "é".repeat((MAX_LINE_BYTES - 1) / 2)));
            assert_eq!(lines[1], "next");
        }
        let lines = read_all("x".repeat(MAX_LINE_BYTES + 1).as_bytes(), 100).await;
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn the_api_servers_time_is_split_from_the_line() {
        let (time, text) = split_time("2025-03-01T10:00:00.123456789Z INFO ready");
        assert_eq!(text, "INFO ready");
        assert_eq!(time, Some(outpost_domain::Timestamp(1_740_823_200_123)));
        assert_eq!(split_time("INFO no time"), (None, "INFO no time"));
        assert_eq!(split_time("single"), (None, "single"));
    }

    #[test]
    fn a_workload_and_its_builds_are_selected_apart() {
        assert_eq!(
            selector("web", None),
            "app.kubernetes.io/managed-by=outpost-agent,outpost.dev/workload=web"
        );
        assert_eq!(
            selector("web", Some(3)),
            "app.kubernetes.io/managed-by=outpost-agent,outpost.dev/build-of=web,outpost.dev/build=3"
        );
    }
}
