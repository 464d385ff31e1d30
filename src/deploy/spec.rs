//! What a release runs, platform-neutral: the app's services and
//! dependencies reduced to containers. Stored with each release (secret
//! names only, never values) so a rollback can rebuild exactly this.

use crate::describe::app::{App, Protocol};
use crate::describe::node_placement::NodePlacement;
use crate::render::compose::{data_path, dependency_image, image_of};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleaseSpec {
    pub services: Vec<ServiceSpec>,
    pub accessories: Vec<AccessorySpec>,
    /// The whole app, kept by engines that render their objects from it
    /// (Kubernetes) so a rollback can rebuild them; secret names only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<Box<App>>,
    /// Run once before any traffic moves (migrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseStep>,
}

/// The release command as the engines run it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleaseStep {
    /// Whose image, settings and secrets it runs with.
    pub service: String,
    pub command: Vec<String>,
    pub timeout_s: u64,
}

impl ReleaseStep {
    /// One line for messages: `api: alembic upgrade head`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.service, self.command.join(" "))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub image: String,
    /// The image's content id on the host, filled in at deploy time.
    #[serde(default)]
    pub image_id: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub replicas: u32,
    /// Container port the proxy sends traffic to.
    pub port: Option<u16>,
    /// Host port the proxy listens on; `None` for internal services.
    pub public_port: Option<u16>,
    pub websocket: bool,
    /// The public port speaks gRPC: the proxy talks HTTP/2 (h2c) to the
    /// replicas, which serve nothing else.
    #[serde(default)]
    pub grpc: bool,
    pub sticky: bool,
    pub health: HealthSpec,
    pub memory_limit: Option<u64>,
    pub nano_cpus: Option<i64>,
    /// `volume-name:/path` or `/host/path:/path`.
    pub volumes: Vec<String>,
    /// Seconds a container gets to finish after SIGTERM.
    pub stop_grace: u64,
    /// An init process is PID 1, so SIGTERM reaches the server.
    #[serde(default = "yes")]
    pub init: bool,
    /// Built by the deploy from this context (`deploy::images`); cleared
    /// once the build is tagged, so a stored release names only its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// The nodes of a swarm its tasks may run on.
    #[serde(default, skip_serializing_if = "NodePlacement::is_empty")]
    pub placement: NodePlacement,
}

/// A service's build: context folder (absolute once resolved), Dockerfile
/// and build arguments.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildSpec {
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthSpec {
    /// HTTP path probed by the proxy.
    pub http: Option<String>,
    /// The gRPC service the proxy asks `grpc.health.v1.Health/Check`
    /// about (empty: the server), when the check is on the service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// Port for the health check when it is not the service port.
    pub port: Option<u16>,
    /// Command run in the container by the engine (Docker HEALTHCHECK).
    pub command: Vec<String>,
    pub interval_s: u64,
    pub timeout_s: u64,
    pub retries: u32,
    pub start_period_s: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AccessorySpec {
    pub name: String,
    pub kind: String,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub volume: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "NodePlacement::is_empty")]
    pub placement: NodePlacement,
}

impl ReleaseSpec {
    /// Every image the release runs (services and dependencies), sorted,
    /// each once.
    pub fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = self
            .services
            .iter()
            .map(|s| s.image.clone())
            .chain(self.accessories.iter().map(|a| a.image.clone()))
            .collect();
        images.sort();
        images.dedup();
        images
    }

    pub fn from_app(app: &App) -> Result<ReleaseSpec, String> {
        let mut services = Vec::new();
        for (name, s) in &app.services {
            let first = s.ports.first();
            let public = s.ports.iter().find(|p| {
                p.public
                    && matches!(
                        p.protocol,
                        Protocol::Http | Protocol::Websocket | Protocol::Grpc
                    )
            });
            let h = s.health.clone().unwrap_or_default();
            let port = public.or(first).map(|p| p.port);
            services.push(ServiceSpec {
                name: name.clone(),
                image: image_of(app, name, s),
                image_id: String::new(),
                command: s.command.clone(),
                env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                secrets: s.secrets.clone(),
                replicas: s.replicas.unwrap_or(1).max(1),
                port,
                public_port: public.map(|p| p.published.unwrap_or(p.port)),
                websocket: s.ports.iter().any(|p| p.protocol == Protocol::Websocket),
                grpc: public.is_some_and(|p| p.protocol == Protocol::Grpc),
                sticky: s.traits.sticky_sessions,
                health: HealthSpec {
                    http: h.http.clone(),
                    // The proxy reaches replicas on the service port only;
                    // a gRPC check on another port stays a port check.
                    grpc: h
                        .grpc
                        .as_ref()
                        .filter(|g| Some(g.port) == port)
                        .map(|g| g.service.clone().unwrap_or_default()),
                    port: h.port.or(h.tcp_port()),
                    command: h.command.clone(),
                    interval_s: h.interval.map_or(1, |d| d.0.max(1)),
                    timeout_s: h.timeout.map_or(5, |d| d.0.max(1)),
                    retries: h.retries.unwrap_or(3),
                    start_period_s: h.start_period.map_or(0, |d| d.0),
                },
                memory_limit: s
                    .resources
                    .as_ref()
                    .and_then(|r| r.memory_limit.or(r.memory))
                    .map(|m| m.0),
                nano_cpus: s
                    .resources
                    .as_ref()
                    .and_then(|r| r.cpu_limit.or(r.cpu))
                    .map(|c| c.0 as i64 * 1_000_000),
                volumes: s
                    .volumes
                    .iter()
                    .map(|v| match &v.host_path {
                        Some(h) => format!("{h}:{}", v.path),
                        None => format!("{}-{}:{}", app.name, v.name, v.path),
                    })
                    .collect(),
                stop_grace: s.stop_grace_period.map_or_else(
                    || s.traits.long_requests.map_or(30, |d| d.0.clamp(10, 600)),
                    |d| d.0.min(3600),
                ),
                init: s.init.unwrap_or(true),
                build: s.build.as_ref().map(|b| BuildSpec {
                    context: b.context.clone(),
                    dockerfile: b.dockerfile.clone(),
                    args: b.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                }),
                placement: s.placement.clone().unwrap_or_default(),
            });
        }
        let accessories = app
            .dependencies
            .iter()
            // On a Docker host every dependency runs beside the app, except
            // the ones that live inside it.
            .filter(|(_, d)| d.kind != "sqlite")
            .map(|(name, d)| AccessorySpec {
                name: name.clone(),
                kind: d.kind.clone(),
                image: dependency_image(&d.kind, d.version.as_deref(), d.image.as_deref()),
                env: BTreeMap::new(),
                secrets: d.secrets.clone(),
                volume: Some((format!("{name}-data"), data_path(&d.kind).to_string())),
                placement: d.placement.clone().unwrap_or_default(),
            })
            .collect();
        Ok(ReleaseSpec {
            services,
            accessories,
            app: None,
            release: app.release.as_ref().map(|r| ReleaseStep {
                service: r.service.clone(),
                command: r.command.clone(),
                timeout_s: r.timeout_s(),
            }),
        })
    }

    /// Build contexts relative to `base` (the folder of app.yaml) become
    /// absolute, so the build reads what the app description meant.
    pub fn resolve_contexts(&mut self, base: &std::path::Path) {
        for b in self.services.iter_mut().filter_map(|s| s.build.as_mut()) {
            let path = base.join(&b.context);
            b.context = std::fs::canonicalize(&path)
                .unwrap_or(path)
                .display()
                .to_string();
        }
    }

    /// The service the release command runs with.
    pub fn release_service(&self, step: &ReleaseStep) -> Result<&ServiceSpec, String> {
        self.services
            .iter()
            .find(|s| s.name == step.service)
            .ok_or_else(|| format!("no service {} in this release", step.service))
    }

    /// Every secret name the release needs.
    pub fn secret_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| s.secrets.iter())
            .chain(self.accessories.iter().flat_map(|a| a.secrets.iter()))
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// A digest of what would run: same fingerprint, same containers.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(&self.services).unwrap_or_default();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}

/// Secret values for one deploy: from an env file and the environment, in
/// memory only. Missing names are an error before anything changes.
pub fn collect_secrets(
    names: &[String],
    env_file: Option<&std::path::Path>,
) -> Result<BTreeMap<String, String>, String> {
    let mut from_file = BTreeMap::new();
    if let Some(f) = env_file {
        let text = crate::describe::files::read_text(f, crate::describe::files::MAX_ENV_FILE)
            .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .unwrap_or(v);
                from_file.insert(
                    k.trim().trim_start_matches("export ").to_string(),
                    v.to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for n in names {
        match std::env::var(n).ok().or_else(|| from_file.get(n).cloned()) {
            Some(v) if !v.is_empty() => {
                out.insert(n.clone(), v);
            }
            _ => missing.push(n.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "secrets not provided: {} (set them in the environment or pass --env-file); nothing was changed",
            missing.join(", ")
        ));
    }
    Ok(out)
}
