//! A profile's settings, typed and checked in one place: `profile set`
//! and every reader go through here. Stored as the same JSON map as
//! before (`users` was text, `hosts` a comma list once), so older state
//! databases read unchanged.

use crate::catalog::{Catalog, Target};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// How a new release replaces the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    Rolling,
    Recreate,
    #[serde(alias = "bluegreen")]
    BlueGreen,
    Canary,
}

impl Strategy {
    /// The name users type and the release history records.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::Recreate => "recreate",
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary => "canary",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rolling" => Ok(Strategy::Rolling),
            "recreate" => Ok(Strategy::Recreate),
            "blue-green" | "bluegreen" => Ok(Strategy::BlueGreen),
            "canary" => Ok(Strategy::Canary),
            o => Err(format!(
                "unknown strategy `{o}`; use rolling, recreate, blue-green or canary"
            )),
        }
    }
}

/// Which deploy engine runs a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// One or several Docker hosts, each with our proxy.
    #[serde(rename = "docker")]
    DockerHost,
    Swarm,
    Kubernetes,
}

impl EngineKind {
    /// Our engine for a catalog target, if we have one (PaaS targets are
    /// deployed by their own tools).
    pub fn ours(catalog: &Catalog, target: &str) -> Option<EngineKind> {
        let family = catalog.target(target)?.family.as_str();
        match (target, family) {
            ("swarm", _) => Some(EngineKind::Swarm),
            (_, "kubernetes") => Some(EngineKind::Kubernetes),
            ("local" | "compose", _) | (_, "vm") => Some(EngineKind::DockerHost),
            _ => None,
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "docker" => Ok(EngineKind::DockerHost),
            "swarm" => Ok(EngineKind::Swarm),
            "kubernetes" => Ok(EngineKind::Kubernetes),
            o => Err(format!(
                "platform must be docker, swarm or kubernetes, not `{o}`"
            )),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// A catalog target id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Overrides the engine the target implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<EngineKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_text"
    )]
    pub users: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_text"
    )]
    pub scale: Option<u32>,
    /// Docker hosts (or the swarm manager) the profile deploys to.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list_or_text"
    )]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// An existing Gateway, `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
    /// A registry (`host[:port]/namespace`) that built images are pushed
    /// to and every target pulls from, instead of shipping them engine to
    /// engine. Kubernetes needs one for services built from source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The profile `migrate` moved this one from, while it exists:
    /// `migrate --rollback` returns there. Set by `migrate` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<String>,
    /// `env.NAME` values (never secrets), and keys of newer versions kept
    /// as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The keys `profile set` accepts besides `tier` and `name`.
pub const KEYS: &str = "tier, target, platform, provider, region, strategy, domain, users, scale, hosts, registry, gateway, gateway-class, ingress-class, name or env.NAME";

fn number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(u32),
        T(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::N(n)) => Ok(Some(n)),
        Some(Either::T(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a count"))),
    }
}

fn list_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        L(Vec<String>),
        T(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => vec![],
        Some(Either::L(l)) => l,
        Some(Either::T(t)) => split_hosts(&t),
    })
}

fn split_hosts(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect()
}

/// A registry and optional namespace images are pushed under:
/// `ghcr.io/acme`, `registry.example.com:5000`, `localhost:5000/team`.
/// The first part must name a host (a dot, a port or `localhost`), or
/// Docker would read it as a Docker Hub namespace; no scheme, tag or
/// digest, and lowercase as image names are. A trailing `/` is dropped.
pub fn check_registry(value: &str) -> Result<String, String> {
    let v = value.trim().trim_end_matches('/');
    let (host, path) = v.split_once('/').unwrap_or((v, ""));
    let host_like = host == "localhost" || host.contains('.') || host.contains(':');
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    let path_ok = path.split('/').all(|seg| {
        (path.is_empty() || !seg.is_empty())
            && seg
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    });
    if !host_like || !host_ok || !path_ok || v.contains("://") {
        return Err(format!(
            "`{value}` is not a registry; use host[:port][/namespace], e.g. ghcr.io/acme or localhost:5000"
        ));
    }
    Ok(v.to_string())
}

impl Settings {
    /// Checks `value` for `key` and sets it; the message says why not.
    /// `tier` and `name` belong to the profile, not here.
    pub fn set(&mut self, catalog: &Catalog, key: &str, value: &str) -> Result<(), String> {
        let text = || Some(value.to_string());
        let count = || {
            value
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("{key} must be a positive number"))
        };
        match key {
            "target" => {
                catalog
                    .target(value)
                    .ok_or_else(|| format!("unknown target `{value}`"))?;
                self.target = text();
            }
            "platform" => self.platform = Some(value.parse()?),
            "strategy" => self.strategy = Some(value.parse()?),
            "users" => self.users = count()?,
            "scale" => self.scale = count()?,
            "hosts" => {
                let hosts = split_hosts(value);
                if let Some(bad) = hosts.iter().find(|h| {
                    *h != "local"
                        && !["unix://", "tcp://", "ssh://"]
                            .iter()
                            .any(|p| h.starts_with(p))
                }) {
                    return Err(format!(
                        "`{bad}` is not a Docker host; use local, unix:///path, tcp://host:port or ssh://user@host"
                    ));
                }
                self.hosts = hosts;
            }
            "registry" => self.registry = Some(check_registry(value)?),
            "provider" => self.provider = text(),
            "region" => self.region = text(),
            "domain" => self.domain = text(),
            "gateway" => self.gateway = text(),
            "gateway-class" => self.gateway_class = text(),
            "ingress-class" => self.ingress_class = text(),
            k if k.starts_with("env.") => {
                let name = &k[4..];
                if crate::describe::secrets_detect::looks_secret(name) {
                    return Err(format!(
                        "`{name}` looks like a secret; secrets are never stored in profiles (use `secrets template`)"
                    ));
                }
                self.other.insert(k.to_string(), value.into());
            }
            other => return Err(format!("unknown key `{other}`; use {KEYS}")),
        }
        Ok(())
    }

    /// The keys that are set, sorted, for listings.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec![],
        };
        keys.sort();
        keys
    }

    /// The strategy a deploy uses: the one asked for, else the profile's.
    pub fn strategy_or(&self, asked: Option<Strategy>) -> Strategy {
        asked.or(self.strategy).unwrap_or_default()
    }

    /// The target the profile is aimed at: `target`, else the VM of
    /// `provider`; choosing the cheapest fit is the caller's business.
    pub fn target_in<'a>(&self, catalog: &'a Catalog) -> Option<&'a Target> {
        if let Some(t) = &self.target {
            return catalog.target(t);
        }
        let provider = self.provider.as_deref()?;
        catalog
            .targets
            .iter()
            .find(|t| t.provider == provider && t.family == "vm")
            .or_else(|| {
                catalog
                    .targets
                    .iter()
                    .find(|t| t.provider == provider || t.id == provider)
            })
    }

    /// The engine that deploys the profile: `platform`, else its target's
    /// (swarm, or any target of the Kubernetes family), else Docker hosts.
    pub fn engine(&self, catalog: &Catalog) -> EngineKind {
        if let Some(p) = self.platform {
            return p;
        }
        let target = self.target.as_deref().unwrap_or("");
        let family = catalog.target(target).map(|t| t.family.as_str());
        match (target, family) {
            ("swarm", _) => EngineKind::Swarm,
            (_, Some("kubernetes")) => EngineKind::Kubernetes,
            _ => EngineKind::DockerHost,
        }
    }

    /// Docker hosts to deploy to; the local engine when none are set.
    pub fn hosts_or_local(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec!["local".into()]
        } else {
            self.hosts.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_stored_settings_read_as_typed_and_write_back_the_same_keys() {
        let old = serde_json::json!({
            "target": "swarm", "strategy": "blue-green", "users": "1000",
            "hosts": "ssh://a, ssh://b", "gateway-class": "eg", "env.MODE": "x",
            "platform": "docker"
        });
        let s: Settings = serde_json::from_value(old).unwrap();
        assert_eq!(s.users, Some(1000));
        assert_eq!(s.hosts, ["ssh://a", "ssh://b"]);
        assert_eq!(s.strategy, Some(Strategy::BlueGreen));
        assert_eq!(s.platform, Some(EngineKind::DockerHost));
        assert_eq!(s.gateway_class.as_deref(), Some("eg"));
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["env.MODE"], "x");
        assert_eq!(back["platform"], "docker");
        assert_eq!(back["hosts"], serde_json::json!(["ssh://a", "ssh://b"]));
        let again: Settings = serde_json::from_value(back).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn set_checks_each_key_and_the_strategy_falls_back_to_the_profile() {
        let catalog = Catalog::embedded();
        let mut s = Settings::default();
        assert!(s.set(&catalog, "target", "no-such").is_err());
        assert!(s.set(&catalog, "strategy", "sideways").is_err());
        assert!(s.set(&catalog, "hosts", "ftp://x").is_err());
        assert!(s.set(&catalog, "users", "-3").is_err());
        assert!(s.set(&catalog, "env.DB_PASSWORD", "x").is_err());
        assert!(s.set(&catalog, "colour", "red").is_err());
        assert_eq!(s, Settings::default(), "a refused value changes nothing");
        s.set(&catalog, "strategy", "canary").unwrap();
        assert_eq!(s.strategy_or(None), Strategy::Canary);
        assert_eq!(
            s.strategy_or(Some(Strategy::Rolling)),
            Strategy::Rolling,
            "what a deploy asks for wins"
        );
        assert_eq!(Settings::default().strategy_or(None), Strategy::Rolling);
        s.set(&catalog, "target", "swarm").unwrap();
        assert_eq!(s.engine(&catalog), EngineKind::Swarm);
        s.set(&catalog, "platform", "kubernetes").unwrap();
        assert_eq!(s.engine(&catalog), EngineKind::Kubernetes);
        assert_eq!(s.keys(), ["platform", "strategy", "target"]);
    }

    #[test]
    fn a_registry_names_a_host_and_an_optional_lowercase_namespace() {
        for good in [
            "ghcr.io/acme",
            "localhost:5000",
            "10.77.0.1:5000/dm/team",
            "registry.example.com/",
        ] {
            assert!(check_registry(good).is_ok(), "{good}");
        }
        assert_eq!(
            check_registry("registry.example.com/").unwrap(),
            "registry.example.com"
        );
        for bad in [
            "acme",
            "https://ghcr.io/acme",
            "ghcr.io/Acme",
            "ghcr.io//x",
            "ghcr.io/acme:1",
            "",
        ] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
    }
}
