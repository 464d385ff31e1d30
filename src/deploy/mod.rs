//! Deploy: run an app on real platforms with zero downtime. The release
//! lifecycle (`release.rs`), lock, spec and strategies are shared; each
//! engine (`docker_host`, `swarm`, `kubernetes`) implements `Platform`.

pub mod docker_host;
pub mod engines;
pub mod events;
pub mod kubernetes;
pub mod lock;
pub mod migrate;
pub mod proxy;
pub mod release;
pub mod spec;
pub mod strategy;
pub mod swarm;

/// The Docker hosts a profile deploys to (its `hosts` setting), else local.
pub fn profile_hosts(p: &crate::state::Profile) -> Vec<String> {
    match p.settings.get("hosts") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|h| h.as_str().map(String::from))
            .collect(),
        Some(serde_json::Value::String(s)) => s.split(',').map(|h| h.trim().to_string()).collect(),
        _ => vec!["local".into()],
    }
}

/// Which engine deploys a profile: its `platform` setting (docker, swarm,
/// kubernetes), else its chosen `target` (swarm, or any target of the
/// Kubernetes family); plain Docker hosts otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    DockerHost,
    Swarm,
    Kubernetes,
}

pub fn engine_kind(p: &crate::state::Profile) -> EngineKind {
    let setting = |k: &str| p.settings.get(k).and_then(|v| v.as_str());
    if let Some(p) = setting("platform") {
        return match p {
            "swarm" => EngineKind::Swarm,
            "kubernetes" => EngineKind::Kubernetes,
            _ => EngineKind::DockerHost,
        };
    }
    let target = setting("target").unwrap_or("");
    let family = crate::catalog::Catalog::embedded()
        .target(target)
        .map(|t| t.family.clone())
        .unwrap_or_default();
    match (target, family.as_str()) {
        ("swarm", _) => EngineKind::Swarm,
        (_, "kubernetes") => EngineKind::Kubernetes,
        _ => EngineKind::DockerHost,
    }
}
