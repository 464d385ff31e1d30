//! The table of well-known backing services (`data/dependencies.yaml`), used to
//! recognise images on import and to classify dependencies for fitness.

use super::units::{Cpu, Size};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnownKind {
    pub class: String,
    pub heavy: bool,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub memory: Option<Size>,
    #[serde(default)]
    pub size: Option<Size>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub license_risk: Option<String>,
    /// The managed-offering family a provider can replace it with.
    #[serde(default)]
    pub managed_as: Option<String>,
    /// Lives outside the app (an API or hosted service): nothing to run.
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    /// Tag pinned by generators when the app gives no version.
    #[serde(default)]
    pub default_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    pub kinds: IndexMap<String, KnownKind>,
    pub edge_proxies: Vec<String>,
}

static KNOWN: LazyLock<Known> = LazyLock::new(|| {
    serde_saphyr::from_str(include_str!("../../data/dependencies.yaml"))
        .expect("embedded data/dependencies.yaml is valid (checked by tests)")
});

pub fn known() -> &'static Known {
    &KNOWN
}

/// The repository part of an image reference, without registry host
/// (for Docker Hub), tag or digest: `docker.io/library/postgres:16` → `postgres`.
pub fn image_repository(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    // A tag is after the last ':' that follows the last '/'.
    let slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match no_digest[slash..].find(':') {
        Some(i) => &no_digest[..slash + i],
        None => no_digest,
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    repo.strip_prefix("library/").unwrap_or(repo).to_lowercase()
}

pub fn image_tag(image: &str) -> Option<String> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    no_digest[slash..]
        .split_once(':')
        .map(|(_, t)| t.to_string())
        .filter(|t| t != "latest")
}

impl Known {
    /// The dependency kind an image is, if it is a well-known backing service.
    pub fn kind_of_image(&self, image: &str) -> Option<&str> {
        let repo = image_repository(image);
        self.kinds
            .iter()
            .find(|(_, k)| k.images.contains(&repo))
            .map(|(name, _)| name.as_str())
    }

    pub fn is_edge_proxy(&self, image: &str) -> bool {
        let repo = image_repository(image);
        self.edge_proxies.contains(&repo)
    }

    pub fn get(&self, kind: &str) -> Option<&KnownKind> {
        self.kinds.get(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_with_registries_tags_and_digests() {
        let k = known();
        assert_eq!(k.kind_of_image("postgres:16-alpine"), Some("postgres"));
        assert_eq!(k.kind_of_image("docker.io/library/redis:7"), Some("redis"));
        assert_eq!(k.kind_of_image("chromadb/chroma:0.5.0"), Some("chromadb"));
        assert_eq!(k.kind_of_image("valkey/valkey@sha256:abc"), Some("valkey"));
        assert_eq!(k.kind_of_image("mongo"), Some("mongodb"));
        assert_eq!(k.kind_of_image("ghcr.io/acme/api:1.2"), None);
        assert!(k.is_edge_proxy("nginx:alpine"));
        assert_eq!(image_tag("localhost:5000/app"), None);
        assert_eq!(image_tag("postgres:16"), Some("16".into()));
    }
}
