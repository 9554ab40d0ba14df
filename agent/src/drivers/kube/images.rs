//! The images the agent asks a cluster to pull, and where from.
//!
//! [`listed`] is the one list of every image Outpost itself chooses: the builder's and
//! every provider's, for every version their schemas allow. `outpost-agent images` prints
//! it and the offline bundle ships it as `images.txt`, so what a site mirrors is what the
//! code can ask for.
//!
//! A [`Mirror`] (`--image-registry`) moves images onto a site's registry: the registry is
//! replaced and the repository path kept, Docker Hub's official images with their implicit
//! `library/` (`redis:7` → `mirror.site:5000/library/redis:7`), the layout `skopeo copy`
//! or `crane copy` makes and the one Kaniko's `--registry-mirror` reads. Outpost's own
//! images always move. A service's own image moves only when it is from Docker Hub
//! (`nginx:1.27`, named without a registry), which no site without internet reaches: an
//! image that names a registry names where its owner keeps it, often the site's own (builds
//! from source push to one), and must be pulled from there.

use std::{collections::BTreeSet, fmt, str::FromStr};

use oci_spec::distribution::Reference;
use outpost_domain::provider::Catalog;

/// The registry of an image named without one.
const DOCKER_HUB: &str = "docker.io";

/// A site's registry holding copies of the images: `host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    registry: String,
    path: String,
}

/// A `--image-registry` value that is not a registry.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a registry: write host[:port][/path], with a dot or a port in the host \
     (mirror.example or mirror:5000)"
)]
pub struct MirrorError(String);

impl FromStr for Mirror {
    type Err = MirrorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim_end_matches('/');
        let (registry, path) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        // Read as a runtime reads an image under it: a host it would take for a Docker Hub
        // namespace (`mirror/…`) would send every pull to Docker Hub.
        let probe = format!("{trimmed}/probe:1")
            .parse::<Reference>()
            .map_err(|_| MirrorError(text.to_owned()))?;
        if probe.registry() != registry {
            return Err(MirrorError(text.to_owned()));
        }
        Ok(Self {
            registry: registry.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_str() {
            "" => f.write_str(&self.registry),
            path => write!(f, "{}/{path}", self.registry),
        }
    }
}

impl Mirror {
    /// `image` on this mirror; one on the mirror already stays as it is.
    fn rewrite(&self, image: &Reference) -> String {
        if image.registry() == self.registry {
            return image.whole();
        }
        let repository = match self.path.as_str() {
            "" => image.repository().to_owned(),
            path => format!("{path}/{}", image.repository()),
        };
        let moved = match (image.tag(), image.digest()) {
            (Some(tag), Some(digest)) => Reference::with_tag_and_digest(
                self.registry.clone(),
                repository,
                tag.to_owned(),
                digest.to_owned(),
            ),
            (None, Some(digest)) => {
                Reference::with_digest(self.registry.clone(), repository, digest.to_owned())
            }
            // The parser gives every reference without a digest a tag (`latest` at least).
            (tag, None) => Reference::with_tag(
                self.registry.clone(),
                repository,
                tag.unwrap_or("latest").to_owned(),
            ),
        };
        moved.whole()
    }
}

/// Where the images in the agent's manifests come from: as written, or a site's mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSource {
    mirror: Option<Mirror>,
}

impl ImageSource {
    /// Images from `mirror`, or as written when `None`.
    pub fn new(mirror: Option<Mirror>) -> Self {
        Self { mirror }
    }

    /// The mirror, if there is one.
    pub fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_ref()
    }

    /// An image Outpost chose (the builder's, a provider's): on the mirror, if any.
    pub fn outpost(&self, image: &str) -> String {
        self.pull(image, |_| true)
    }

    /// A service's own image: on the mirror, if any, only when it is from Docker Hub.
    pub fn service(&self, image: &str) -> String {
        self.pull(image, |r| r.registry() == DOCKER_HUB)
    }

    fn pull(&self, image: &str, moves: impl Fn(&Reference) -> bool) -> String {
        let Some(mirror) = &self.mirror else {
            return image.to_owned();
        };
        match image.parse::<Reference>() {
            Ok(reference) if moves(&reference) => mirror.rewrite(&reference),
            // Not a reference (the API refuses those): the cluster's failed pull names it.
            _ => image.to_owned(),
        }
    }
}

/// An image of the list that is not an image reference.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an image reference")]
pub struct ImageError(String);

/// The agent's own image at this version, as `outpost-agent install` runs it.
pub fn agent_image() -> String {
    format!("outpost/agent:{}", crate::VERSION)
}

/// The management service's image at this version, as `deploy/kubernetes` runs it.
pub fn management_image() -> String {
    format!("outpost/management:{}", crate::VERSION)
}

/// Every image Outpost itself can ask a cluster to pull, fully qualified
/// (`docker.io/library/postgres:16`) and sorted: its own (the agent's and the management
/// service's), `builder_image` and every image of every provider of `catalog`. Services'
/// own images are their owners' and not listed.
pub fn listed(catalog: &Catalog, builder_image: &str) -> Result<BTreeSet<String>, ImageError> {
    let own = [agent_image(), management_image()];
    catalog
        .all()
        .flat_map(|p| p.images().iter().map(String::as_str))
        .chain([builder_image])
        .chain(own.iter().map(String::as_str))
        .map(|image| {
            image
                .parse::<Reference>()
                .map(|r| r.whole())
                .map_err(|_| ImageError(image.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::kube::{build, managed, manifests};

    fn mirror(text: &str) -> ImageSource {
        ImageSource::new(Some(text.parse().expect("a mirror")))
    }

    #[test]
    fn images_move_to_the_mirror_keeping_their_repository_path() {
        let at = mirror("mirror.site:5000");
        for (image, moved) in [
            ("redis:7", "mirror.site:5000/library/redis:7"),
            ("postgres", "mirror.site:5000/library/postgres:latest"),
            (
                "docker.io/bitnami/redis:7.2",
                "mirror.site:5000/bitnami/redis:7.2",
            ),
            (
                "gcr.io/kaniko-project/executor:v1.23.2",
                "mirror.site:5000/kaniko-project/executor:v1.23.2",
            ),
            (
                "quay.io/ceph/ceph:v18@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "mirror.site:5000/ceph/ceph:v18@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                "mirror.site:5000/library/redis:7",
                "mirror.site:5000/library/redis:7",
            ),
        ] {
            assert_eq!(at.outpost(image), moved, "{image}");
        }
        assert_eq!(
            mirror("harbor.site/outpost/").outpost("redis:7"),
            "harbor.site/outpost/library/redis:7"
        );
        assert_eq!(ImageSource::default().outpost("redis:7"), "redis:7");
    }

    #[test]
    fn a_services_image_moves_only_when_it_is_from_docker_hub() {
        let at = mirror("mirror.site:5000");
        assert_eq!(
            at.service("nginx:1.27"),
            "mirror.site:5000/library/nginx:1.27"
        );
        assert_eq!(
            at.service("docker.io/library/nginx:1.27"),
            "mirror.site:5000/library/nginx:1.27"
        );
        for kept in [
            "registry.example.com/shop/api:1.4.2",
            "registry.outpost.local:5000/acme-shop-staging-1234abcd/api:build-4",
            "localhost:5000/api:1",
            "not a valid image!",
        ] {
            assert_eq!(at.service(kept), kept);
        }
    }

    #[test]
    fn a_mirror_must_name_a_registry_host() {
        for good in [
            "mirror.site",
            "mirror:5000",
            "localhost/outpost",
            "10.0.0.5:5000/a/b",
        ] {
            assert!(good.parse::<Mirror>().is_ok(), "{good}");
        }
        for bad in [
            "mirror",
            "mirror/outpost",
            "",
            "Mirror.site/UPPER",
            "mirror.site:5000/a b",
        ] {
            let err = bad.parse::<Mirror>().expect_err(bad);
            assert!(err.to_string().contains("host[:port][/path]"), "{err}");
        }
    }

    #[test]
    fn the_list_is_outposts_own_the_builder_and_every_providers_images_fully_qualified() {
        let catalog = Catalog::with(&[]).expect("built-in catalog");
        let builder = build::BuildSettings::default().builder_image;
        let images = listed(&catalog, &builder).expect("valid images");
        assert_eq!(
            images.into_iter().collect::<Vec<_>>(),
            [
                "docker.io/library/postgres:15",
                "docker.io/library/postgres:16",
                "docker.io/library/redis:7",
                &format!("docker.io/{}", agent_image()),
                &format!("docker.io/{}", management_image()),
                "gcr.io/kaniko-project/executor:v1.23.2",
            ]
        );
        assert!(listed(&Catalog::default(), "Not/An:Image!").is_err());
    }

    /// Every `image` anywhere in `object`, as Kubernetes reads it.
    fn images_in(object: &impl serde::Serialize) -> BTreeSet<String> {
        fn walk(value: &serde_json::Value, found: &mut BTreeSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            ("image", serde_json::Value::String(image)) => {
                                found.insert(image.clone());
                            }
                            _ => walk(value, found),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut found = BTreeSet::new();
        walk(&serde_json::to_value(object).expect("json"), &mut found);
        found
    }

    /// Whatever a manifest may hold besides a service's own image: the list, moved to the
    /// mirror when there is one.
    #[test]
    fn every_image_a_manifest_names_is_listed_or_the_services_own() {
        use outpost_domain::{desired::Workload, provider::Run};

        let catalog = Catalog::with(&[]).expect("built-in catalog");
        let settings = build::BuildSettings::default();
        let listed = listed(&catalog, &settings.builder_image).expect("valid images");
        let workload = Workload {
            image: "nginx:1.27".into(),
            ..crate::fixtures::workload("api")
        };
        let build = crate::fixtures::build("api", 1);
        let provider_images: Vec<&String> = catalog.all().flat_map(|p| p.images()).collect();
        assert!(!provider_images.is_empty());
        for source in [ImageSource::default(), mirror("mirror.site:5000/outpost")] {
            let allowed: BTreeSet<String> = listed.iter().map(|i| source.outpost(i)).collect();
            let qualified = |images: BTreeSet<String>| -> BTreeSet<String> {
                images
                    .iter()
                    .map(|i| i.parse::<Reference>().expect("a reference").whole())
                    .collect()
            };
            let job = build::job(&build, &settings, &source);
            assert!(qualified(images_in(&job)).is_subset(&allowed), "{job:?}");
            for image in &provider_images {
                let mut managed = crate::fixtures::stateful("db");
                let Run::Stateful(run) = &mut managed.run else {
                    unreachable!("the fixture is stateful")
                };
                run.image = (*image).clone();
                let run = run.clone();
                let set = managed::stateful_set(&managed, &run, &source);
                assert!(qualified(images_in(&set)).is_subset(&allowed), "{set:?}");
            }
            // A Deployment holds the service's image and nothing else.
            let deployment =
                manifests::deployment(&workload, std::time::Duration::from_secs(60), &source);
            assert_eq!(
                images_in(&deployment),
                BTreeSet::from([source.service(&workload.image)])
            );
        }
    }

    #[test]
    fn no_two_listed_images_share_a_mirrored_name() {
        let catalog = Catalog::with(&[]).expect("built-in catalog");
        let builder = build::BuildSettings::default().builder_image;
        let listed = listed(&catalog, &builder).expect("valid images");
        let at = mirror("mirror.site:5000/outpost");
        let moved: BTreeSet<String> = listed.iter().map(|i| at.outpost(i)).collect();
        assert_eq!(moved.len(), listed.len(), "{moved:?}");
    }
}
