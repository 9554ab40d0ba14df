//! Builds from source as Kubernetes Jobs: the Job for a deployment's build (pure, checked
//! field by field in tests) and how a finished Job reads.
//!
//! A build pod carries `outpost.dev/build-of` and `outpost.dev/build` but not the workload
//! label: the workload's Service and Deployment select by that label, and must never route
//! traffic to, or count, a build pod.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{Container, PodSpec, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use outpost_domain::desired::Build;

use super::{
    images::ImageSource,
    manifests::{MANAGED_BY, SERVICE_ANNOTATION},
};
use crate::plan::JobState;

/// Label naming the workload a build pod builds for.
pub const BUILD_OF_LABEL: &str = "outpost.dev/build-of";
/// Label with the deployment number a build pod builds.
pub const BUILD_LABEL: &str = "outpost.dev/build";

/// Where builds push and what builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// Registry the built images are pushed to and pulled from, `host[:port][/path]`.
    pub registry: String,
    /// The builder image (Kaniko's executor or one with the same flags).
    pub builder_image: String,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            registry: "registry.outpost.local:5000".into(),
            builder_image: "gcr.io/kaniko-project/executor:v1.23.2".into(),
        }
    }
}

/// How long a finished build Job (and its logs) stays before Kubernetes removes it.
const KEEP_FINISHED_SECS: i32 = 7 * 24 * 3600;
/// A build that runs longer than this fails.
const BUILD_DEADLINE_SECS: i64 = 3600;

/// The image a build pushes: per namespace, service and deployment, so it never
/// overwrites another deployment's image (a rollback runs exactly what was built).
pub fn image(b: &Build, settings: &BuildSettings) -> String {
    format!(
        "{}/{}/{}:build-{}",
        settings.registry.trim_end_matches('/'),
        b.namespace,
        b.service.service,
        b.deployment
    )
}

/// Kaniko's git context: `git://host/path` with `#ref` when one is given.
fn context(b: &Build) -> String {
    let url = &b.source.url;
    let bare = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
        .unwrap_or(url);
    if b.source.git_ref.is_empty() {
        format!("git://{bare}")
    } else {
        format!("git://{bare}#{}", b.source.git_ref)
    }
}

/// The Job that builds `b`: one attempt, a deadline, kept a week for its logs. The builder
/// image, and with a mirror the Dockerfile's Docker Hub base images too, come from where
/// `images` says.
pub fn job(b: &Build, settings: &BuildSettings, images: &ImageSource) -> Job {
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (BUILD_OF_LABEL.to_owned(), b.service.service.clone()),
        (BUILD_LABEL.to_owned(), b.deployment.to_string()),
    ]);
    let dockerfile = if b.source.dockerfile_path.is_empty() {
        "Dockerfile"
    } else {
        &b.source.dockerfile_path
    };
    let mut args = vec![
        format!("--context={}", context(b)),
        format!("--dockerfile={dockerfile}"),
        format!("--destination={}", image(b, settings)),
    ];
    if let Some(mirror) = images.mirror() {
        // Kaniko pulls a base image named without a registry from here instead of Docker
        // Hub, at the path the mirror keeps it (`library/alpine`).
        args.push(format!("--registry-mirror={mirror}"));
    }
    Job {
        metadata: ObjectMeta {
            name: Some(b.job_name()),
            namespace: Some(b.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                SERVICE_ANNOTATION.to_owned(),
                b.service.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            // Set, so a build someone suspends is drift, and resumed.
            suspend: Some(false),
            active_deadline_seconds: Some(BUILD_DEADLINE_SECS),
            ttl_seconds_after_finished: Some(KEEP_FINISHED_SECS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "build".into(),
                        image: Some(images.outpost(&settings.builder_image)),
                        args: Some(args),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Job's state from its conditions.
pub fn state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let holds = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    if holds("Complete").is_some() {
        JobState::Succeeded
    } else if let Some(failed) = holds("Failed") {
        JobState::Failed(
            failed
                .message
                .clone()
                .or_else(|| failed.reason.clone())
                .unwrap_or_else(|| "the build job failed".into()),
        )
    } else {
        JobState::Running
    }
}

#[cfg(test)]
mod tests {
    use outpost_domain::{ServiceName, resources::GitSource};
    use serde_json::json;

    use super::*;

    fn build() -> Build {
        Build {
            service: ServiceName::parse("tenants/t/projects/p/environments/e/services/api")
                .expect("name"),
            deployment: 4,
            namespace: "t-p-e-1234abcd".into(),
            source: GitSource {
                url: "https://git.example.com/shop/api.git".into(),
                git_ref: "refs/heads/main".into(),
                dockerfile_path: String::new(),
            },
        }
    }

    #[test]
    fn the_job_builds_once_pushes_per_deployment_and_is_never_selected_as_the_workload() {
        let settings = BuildSettings::default();
        let job = job(&build(), &settings, &ImageSource::default());
        assert_eq!(job.metadata.name.as_deref(), Some("api-build-4"));
        let spec = job.spec.expect("spec");
        assert_eq!(spec.backoff_limit, Some(0), "a failed build is not retried");
        assert!(spec.active_deadline_seconds.is_some());
        let pod = spec.template;
        let labels = pod.metadata.expect("meta").labels.expect("labels");
        assert_eq!(labels.get(BUILD_OF_LABEL).map(String::as_str), Some("api"));
        assert_eq!(labels.get(BUILD_LABEL).map(String::as_str), Some("4"));
        assert!(
            !labels.contains_key(super::super::manifests::WORKLOAD_LABEL),
            "the workload's Service must not select build pods"
        );
        let pod = pod.spec.expect("pod");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let args = pod.containers[0].args.clone().expect("args");
        assert_eq!(
            args,
            [
                "--context=git://git.example.com/shop/api.git#refs/heads/main",
                "--dockerfile=Dockerfile",
                "--destination=registry.outpost.local:5000/t-p-e-1234abcd/api:build-4",
            ]
        );
    }

    #[test]
    fn job_conditions_say_how_a_build_ended() {
        let with = |conditions: serde_json::Value| -> Job {
            serde_json::from_value(
                json!({"metadata": {"name": "j"}, "status": {"conditions": conditions}}),
            )
            .expect("job")
        };
        assert_eq!(state(&with(json!([]))), JobState::Running);
        assert_eq!(
            state(&with(json!([{"type": "Complete", "status": "True"}]))),
            JobState::Succeeded
        );
        assert_eq!(
            state(&with(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                 "message": "Job has reached the specified backoff limit"}])
            )),
            JobState::Failed("Job has reached the specified backoff limit".into())
        );
    }
}
