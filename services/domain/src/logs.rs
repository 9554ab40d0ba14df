//! Log queries: whose logs a caller asks for and how much of them, within the bounds that
//! keep one answer small. Outpost never stores log lines; they are read live from the
//! datacenter's cluster, so this is the whole of the domain's part in them.

use std::fmt;

use crate::{DeploymentName, ServiceName, Violations, names::is_dns_label};

/// Lines from the end of each pod's log when the caller asks for none.
pub const DEFAULT_TAIL_LINES: u32 = 100;
/// Most lines from the end of each pod's log a caller may ask for.
pub const MAX_TAIL_LINES: u32 = 10_000;
/// Longest look back a caller may ask for (30 days; clusters rarely keep more).
pub const MAX_SINCE_SECONDS: i64 = 30 * 24 * 3600;

/// Whose logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The pods a service runs.
    Service(ServiceName),
    /// The pod that built a deployment's image.
    Build(DeploymentName),
}

impl LogSource {
    /// The service the logs belong to (whose tenant and environment decide who may read
    /// them and where they are).
    pub fn service(&self) -> ServiceName {
        match self {
            Self::Service(s) => s.clone(),
            Self::Build(d) => d.service_name(),
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(s) => s.fmt(f),
            Self::Build(d) => d.fmt(f),
        }
    }
}

/// A checked request for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Whose logs.
    pub source: LogSource,
    /// The container to read; `None` for each pod's first container.
    pub container: Option<String>,
    /// Lines from the end of each pod's log, 1 to [`MAX_TAIL_LINES`].
    pub tail_lines: u32,
    /// Only lines written in the last this many seconds, 1 to [`MAX_SINCE_SECONDS`].
    pub since_seconds: Option<i64>,
}

impl LogQuery {
    /// Checks the fields of a log request as they come off the wire (0 meaning "not set"
    /// for the numbers), naming every bad one.
    pub fn parse(
        resource: &str,
        container: &str,
        tail_lines: i32,
        since_seconds: i64,
    ) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let source = if let Ok(d) = DeploymentName::parse(resource) {
            Some(LogSource::Build(d))
        } else if let Ok(s) = ServiceName::parse(resource) {
            Some(LogSource::Service(s))
        } else {
            v.add(
                "resource",
                "must name a service (tenants/{tenant}/projects/{project}/environments/{environment}/services/{service}) or one of its deployments (…/services/{service}/deployments/{deployment})",
            );
            None
        };
        if !container.is_empty() && !is_dns_label(container) {
            v.add(
                "container",
                "must be empty (each pod's first container) or a container name: 1 to 63 lowercase letters, digits or '-'",
            );
        }
        let tail_lines = match u32::try_from(tail_lines) {
            Ok(0) => DEFAULT_TAIL_LINES,
            Ok(n) if n <= MAX_TAIL_LINES => n,
            _ => {
                v.add(
                    "tail_lines",
                    format!(
                        "must be between 1 and {MAX_TAIL_LINES}, or 0 for {DEFAULT_TAIL_LINES}"
                    ),
                );
                DEFAULT_TAIL_LINES
            }
        };
        if !(0..=MAX_SINCE_SECONDS).contains(&since_seconds) {
            v.add(
                "since_seconds",
                format!("must be between 1 and {MAX_SINCE_SECONDS} (30 days), or 0 for no limit"),
            );
        }
        v.into_result()?;
        Ok(Self {
            source: source.expect("a missing source is a violation"),
            container: (!container.is_empty()).then(|| container.to_owned()),
            tail_lines,
            since_seconds: (since_seconds > 0).then_some(since_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "tenants/t/projects/p/environments/e/services/s";

    fn fields(r: Result<LogQuery, Violations>) -> Vec<String> {
        r.err()
            .map(|v| v.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_service_or_a_deployment_is_whose_logs() {
        let q = LogQuery::parse(SERVICE, "", 0, 0).expect("valid");
        assert_eq!(q.source.to_string(), SERVICE);
        assert!(matches!(q.source, LogSource::Service(_)));
        let build = format!("{SERVICE}/deployments/7");
        let q = LogQuery::parse(&build, "", 0, 0).expect("valid");
        assert!(matches!(&q.source, LogSource::Build(d) if d.number() == 7));
        assert_eq!(q.source.service().to_string(), SERVICE);
        assert_eq!(q.source.to_string(), build);
    }

    #[test]
    fn unset_numbers_take_their_defaults() {
        let q = LogQuery::parse(SERVICE, "", 0, 0).expect("valid");
        assert_eq!(
            (q.tail_lines, q.since_seconds, q.container),
            (DEFAULT_TAIL_LINES, None, None)
        );
        let q = LogQuery::parse(SERVICE, "app", 10_000, 60).expect("valid");
        assert_eq!(
            (q.tail_lines, q.since_seconds, q.container.as_deref()),
            (10_000, Some(60), Some("app"))
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        for (resource, container, tail, since, expected) in [
            ("tenants/t", "", 0, 0, vec!["resource"]),
            (
                "tenants/t/projects/p/environments/e/services/s/deployments/x",
                "",
                0,
                0,
                vec!["resource"],
            ),
            (SERVICE, "App!", 0, 0, vec!["container"]),
            (SERVICE, "", -1, 0, vec!["tail_lines"]),
            (SERVICE, "", 10_001, 0, vec!["tail_lines"]),
            (SERVICE, "", i32::MIN, 0, vec!["tail_lines"]),
            (SERVICE, "", 0, -1, vec!["since_seconds"]),
            (SERVICE, "", 0, MAX_SINCE_SECONDS + 1, vec!["since_seconds"]),
            (
                "",
                "../x",
                i32::MAX,
                i64::MAX,
                vec!["resource", "container", "tail_lines", "since_seconds"],
            ),
        ] {
            assert_eq!(
                fields(LogQuery::parse(resource, container, tail, since)),
                expected,
                "{resource} {container} {tail} {since}"
            );
        }
    }
}
