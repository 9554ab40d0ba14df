//! Request paths and query parameters, parsed into what the request is about. Parsing is
//! total: any path the simulator does not serve is [`ApiError::NoRoute`] (404), any malformed
//! parameter is a 400.

use std::time::Duration;

use axum::http::Uri;
use serde::Deserialize;

use crate::api::{Page, Selectors};
use crate::error::ApiError;
use crate::resource::Resource;
use crate::selector::{FieldSelectorExpr, LabelSelectorExpr};

/// A subresource the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Status,
    Log,
    /// `autoscaling/v1 Scale` of a Deployment, ReplicaSet or StatefulSet.
    Scale,
}

/// What a path under `/api` or `/apis` addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `/apis/GROUP`.
    Group(String),
    /// `/api/v1`, `/apis/GROUP/VERSION`.
    ResourceList { group: String, version: String },
    /// A collection, in one namespace or (`None`) across all.
    Collection {
        resource: Resource,
        namespace: Option<String>,
    },
    /// One object, or one of its subresources.
    Object {
        resource: Resource,
        namespace: String,
        name: String,
        sub: Option<Sub>,
    },
}

fn subresource(resource: Resource, name: &str) -> Result<Sub, ApiError> {
    match name {
        "status" if resource.info().status_subresource => Ok(Sub::Status),
        "log" if resource == Resource::Pod => Ok(Sub::Log),
        "scale" if resource.scalable() => Ok(Sub::Scale),
        _ => Err(ApiError::NoRoute),
    }
}

impl Target {
    /// Parses the path after `/api/` (`core`) or `/apis/`.
    pub(crate) fn parse(core: bool, rest: &str) -> Result<Target, ApiError> {
        let segs: Vec<&str> = rest.split('/').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(ApiError::NoRoute);
        }
        let (group, version, segs) = match (core, segs.as_slice()) {
            (true, ["v1", tail @ ..]) => ("", "v1", tail),
            (false, [group]) => return Ok(Target::Group((*group).to_string())),
            (false, [group, version, tail @ ..]) => (*group, *version, tail),
            _ => return Err(ApiError::NoRoute),
        };
        let resource =
            |plural: &str| Resource::from_path(group, version, plural).ok_or(ApiError::NoRoute);
        let namespaced = |plural: &str| {
            resource(plural).and_then(|r| {
                if r.namespaced() {
                    Ok(r)
                } else {
                    Err(ApiError::NoRoute)
                }
            })
        };
        let cluster = |plural: &str| {
            resource(plural).and_then(|r| {
                if r.namespaced() {
                    Err(ApiError::NoRoute)
                } else {
                    Ok(r)
                }
            })
        };
        match segs {
            [] => Ok(Target::ResourceList {
                group: group.to_string(),
                version: version.to_string(),
            }),
            [plural] => Ok(Target::Collection {
                resource: resource(plural)?,
                namespace: None,
            }),
            ["namespaces", ns, plural] if !matches!(*plural, "status" | "finalize") => {
                Ok(Target::Collection {
                    resource: namespaced(plural)?,
                    namespace: Some((*ns).to_string()),
                })
            }
            ["namespaces", ns, plural, name, sub @ ..] if sub.len() <= 1 => {
                let resource = namespaced(plural)?;
                Ok(Target::Object {
                    resource,
                    namespace: (*ns).to_string(),
                    name: (*name).to_string(),
                    sub: sub.first().map(|s| subresource(resource, s)).transpose()?,
                })
            }
            [plural, name, sub @ ..] if sub.len() <= 1 => {
                let resource = cluster(plural)?;
                Ok(Target::Object {
                    resource,
                    namespace: String::new(),
                    name: (*name).to_string(),
                    sub: sub.first().map(|s| subresource(resource, s)).transpose()?,
                })
            }
            _ => Err(ApiError::NoRoute),
        }
    }
}

/// Query parameters of every verb; all optional, parsed leniently as strings first so a bad
/// value is reported as a Kubernetes `Status`, not a framework rejection.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Params {
    watch: Option<String>,
    resource_version: Option<String>,
    timeout_seconds: Option<String>,
    allow_watch_bookmarks: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<String>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    field_manager: Option<String>,
    force: Option<String>,
    dry_run: Option<String>,
    propagation_policy: Option<String>,
    follow: Option<String>,
    tail_lines: Option<String>,
    container: Option<String>,
    previous: Option<String>,
    timestamps: Option<String>,
    since_seconds: Option<String>,
    send_initial_events: Option<String>,
}

fn flag(name: &str, v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "invalid value {other:?} for {name}"
        ))),
    }
}

fn number<T: std::str::FromStr>(name: &str, v: Option<&str>) -> Result<Option<T>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid value {s:?} for {name}"))),
    }
}

impl Params {
    pub(crate) fn from_uri(uri: &Uri) -> Result<Params, ApiError> {
        axum::extract::Query::<Params>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))
    }

    pub(crate) fn watch(&self) -> Result<bool, ApiError> {
        flag("watch", self.watch.as_deref())
    }

    pub(crate) fn force(&self) -> Result<bool, ApiError> {
        flag("force", self.force.as_deref())
    }

    pub(crate) fn follow(&self) -> Result<bool, ApiError> {
        flag("follow", self.follow.as_deref())
    }

    pub(crate) fn previous(&self) -> Result<bool, ApiError> {
        flag("previous", self.previous.as_deref())
    }

    /// `timestamps=true`: each log line starts with the time it was written.
    pub(crate) fn timestamps(&self) -> Result<bool, ApiError> {
        flag("timestamps", self.timestamps.as_deref())
    }

    /// `sinceSeconds`: only log lines written that many seconds ago or later.
    pub(crate) fn since_seconds(&self) -> Result<Option<u64>, ApiError> {
        number("sinceSeconds", self.since_seconds.as_deref())
    }

    /// `sendInitialEvents=true`: a streaming list (kube-rs `watcher` with `streaming_lists`).
    pub(crate) fn send_initial_events(&self) -> Result<bool, ApiError> {
        flag("sendInitialEvents", self.send_initial_events.as_deref())
    }

    pub(crate) fn bookmarks(&self) -> Result<bool, ApiError> {
        flag("allowWatchBookmarks", self.allow_watch_bookmarks.as_deref())
    }

    /// `dryRun=All` (the only value Kubernetes accepts besides absent).
    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.dry_run.as_deref() {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unsupported dryRun value {other:?}"
            ))),
        }
    }

    pub(crate) fn field_manager(&self) -> &str {
        self.field_manager.as_deref().unwrap_or_default()
    }

    pub(crate) fn propagation_policy(&self) -> Option<&str> {
        self.propagation_policy.as_deref()
    }

    pub(crate) fn container(&self) -> Option<&str> {
        self.container.as_deref().filter(|c| !c.is_empty())
    }

    pub(crate) fn tail_lines(&self) -> Result<Option<usize>, ApiError> {
        number("tailLines", self.tail_lines.as_deref())
    }

    /// The watch's starting point: `None` for absent or `"0"` (start with the current
    /// objects), `Some(rv)` to resume after `rv`.
    pub(crate) fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        Ok(
            number::<u64>("resourceVersion", self.resource_version.as_deref())?
                .filter(|rv| *rv != 0),
        )
    }

    /// The watch timeout: as asked, capped at an hour; 30 minutes if absent.
    pub(crate) fn timeout(&self) -> Result<Duration, ApiError> {
        let secs =
            number::<u64>("timeoutSeconds", self.timeout_seconds.as_deref())?.unwrap_or(1800);
        Ok(Duration::from_secs(secs.min(3600)))
    }

    pub(crate) fn selectors(&self) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelectorExpr::parse(self.label_selector.as_deref().unwrap_or_default())
                .map_err(ApiError::BadRequest)?,
            fields: FieldSelectorExpr::parse(self.field_selector.as_deref().unwrap_or_default())
                .map_err(ApiError::BadRequest)?,
        })
    }

    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: number::<usize>("limit", self.limit.as_deref())?.filter(|l| *l > 0),
            after: self.continue_token.clone().filter(|c| !c.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_kubernetes_api() {
        let ok = [
            (
                "v1",
                true,
                Target::ResourceList {
                    group: "".into(),
                    version: "v1".into(),
                },
            ),
            (
                "v1/namespaces",
                true,
                Target::Collection {
                    resource: Resource::Namespace,
                    namespace: None,
                },
            ),
            (
                "v1/pods",
                true,
                Target::Collection {
                    resource: Resource::Pod,
                    namespace: None,
                },
            ),
            (
                "v1/namespaces/a",
                true,
                Target::Object {
                    resource: Resource::Namespace,
                    namespace: "".into(),
                    name: "a".into(),
                    sub: None,
                },
            ),
            (
                "v1/namespaces/a/status",
                true,
                Target::Object {
                    resource: Resource::Namespace,
                    namespace: "".into(),
                    name: "a".into(),
                    sub: Some(Sub::Status),
                },
            ),
            (
                "v1/namespaces/a/pods",
                true,
                Target::Collection {
                    resource: Resource::Pod,
                    namespace: Some("a".into()),
                },
            ),
            (
                "v1/namespaces/a/pods/p/log",
                true,
                Target::Object {
                    resource: Resource::Pod,
                    namespace: "a".into(),
                    name: "p".into(),
                    sub: Some(Sub::Log),
                },
            ),
            ("apps", false, Target::Group("apps".into())),
            (
                "apps/v1/namespaces/a/deployments/d/status",
                false,
                Target::Object {
                    resource: Resource::Deployment,
                    namespace: "a".into(),
                    name: "d".into(),
                    sub: Some(Sub::Status),
                },
            ),
        ];
        for (path, core, want) in ok {
            assert_eq!(Target::parse(core, path).unwrap(), want, "{path}");
        }
        for (path, core) in [
            ("v2", true),
            ("v1/pods/p", true),
            ("v1/namespaces/a/secrets/s/status", true),
            ("v1/namespaces/a/namespaces", true),
            ("v1/namespaces/a/pods/p/log/x", true),
            ("apps/v1/widgets", false),
            ("v1//pods", true),
            ("v1/namespaces/a/pods/p/scale", true),
        ] {
            assert!(
                matches!(Target::parse(core, path), Err(ApiError::NoRoute)),
                "{path}"
            );
        }
    }
}
