//! Faults on demand. A container misbehaves when either
//!
//! * its pod (template) carries the annotation `sim.outpost.dev/fault` with one of
//!   `image-pull`, `health`, `oom`, `crash-loop` (applies to every container of the pod), or
//! * its image tag contains `fail-pull`, `fail-health`, `fail-oom` or `fail-crash`
//!   (e.g. `registry.local/web:v2-fail-health`; applies to that container only).
//!
//! * one of its arguments contains such a marker (a build Job's git URL, say:
//!   `--context=git://git.example.com/shop/api-fail-crash.git` fails the build).
//!
//! The annotation wins when several are present. The image and argument forms let a test
//! trigger a fault through the fields a user controls (the image, a source URL); the
//! annotation form suits kubectl.

use std::collections::BTreeMap;

/// The pod annotation that selects a fault.
pub const FAULT_ANNOTATION: &str = "sim.outpost.dev/fault";

/// A way for a container to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The image cannot be pulled: the container waits in `ErrImagePull`, then
    /// `ImagePullBackOff`; the pod stays `Pending`.
    ImagePull,
    /// The container runs but never becomes ready (readiness probe fails).
    Health,
    /// The container is killed for memory: `lastState.terminated.reason: OOMKilled`
    /// (exit code 137), then `CrashLoopBackOff`, restarting with back-off.
    Oom,
    /// The container exits with an error (exit code 1), then `CrashLoopBackOff`, restarting
    /// with back-off.
    CrashLoop,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 4] = [
        Fault::ImagePull,
        Fault::Health,
        Fault::Oom,
        Fault::CrashLoop,
    ];

    /// The value of [`FAULT_ANNOTATION`] that selects this fault.
    pub fn annotation_value(self) -> &'static str {
        match self {
            Fault::ImagePull => "image-pull",
            Fault::Health => "health",
            Fault::Oom => "oom",
            Fault::CrashLoop => "crash-loop",
        }
    }

    /// The marker that selects this fault when it appears in an image tag.
    pub fn image_tag_marker(self) -> &'static str {
        match self {
            Fault::ImagePull => "fail-pull",
            Fault::Health => "fail-health",
            Fault::Oom => "fail-oom",
            Fault::CrashLoop => "fail-crash",
        }
    }
}

/// The tag of an image reference (`repo:tag`, ignoring a registry port and any digest).
fn image_tag(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map_or("", |(_, tag)| tag)
}

/// The fault of a container with `image` in a pod with `annotations`, if any.
pub(crate) fn for_container(annotations: &BTreeMap<String, String>, image: &str) -> Option<Fault> {
    if let Some(value) = annotations.get(FAULT_ANNOTATION) {
        return Fault::ALL
            .into_iter()
            .find(|f| f.annotation_value() == value);
    }
    let tag = image_tag(image);
    Fault::ALL
        .into_iter()
        .find(|f| tag.contains(f.image_tag_marker()))
}

/// The fault a marker in one of a container's `args` selects, if any.
pub(crate) fn in_args(args: &[String]) -> Option<Fault> {
    Fault::ALL
        .into_iter()
        .find(|f| args.iter().any(|a| a.contains(f.image_tag_marker())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_carry_faults_too() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            super::in_args(&args(&["--context=git://x/api-fail-crash.git"])),
            Some(super::Fault::CrashLoop)
        );
        assert_eq!(super::in_args(&args(&["--context=git://x/api.git"])), None);
    }

    use super::*;

    #[test]
    fn faults_come_from_the_annotation_or_the_image_tag() {
        let none = BTreeMap::new();
        let oom: BTreeMap<String, String> =
            [(FAULT_ANNOTATION.to_string(), "oom".to_string())].into();
        assert_eq!(for_container(&none, "web:v1"), None);
        assert_eq!(
            for_container(&none, "web:v2-fail-pull"),
            Some(Fault::ImagePull)
        );
        assert_eq!(
            for_container(&none, "localhost:5000/fail-crash/web:v1"),
            None
        );
        assert_eq!(
            for_container(&none, "r/web:fail-crash@sha256:1"),
            Some(Fault::CrashLoop)
        );
        assert_eq!(for_container(&oom, "web:v2-fail-pull"), Some(Fault::Oom));
        for f in Fault::ALL {
            let a: BTreeMap<String, String> = [(
                FAULT_ANNOTATION.to_string(),
                f.annotation_value().to_string(),
            )]
            .into();
            assert_eq!(for_container(&a, "web:v1"), Some(f));
            assert_eq!(
                for_container(&none, &format!("web:x-{}", f.image_tag_marker())),
                Some(f)
            );
        }
    }
}
