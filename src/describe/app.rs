//! The app description (`app.yaml`, `apiVersion: deployment-manager/v1`):
//! everything the analysis needs to know about one application, and nothing
//! about where it runs. Profiles add the "where".

use super::node_placement::NodePlacement;
use super::units::{Cpu, Duration, Size};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "deployment-manager/v1";

/// One application: its services, the backing services it depends on, how
/// much it is used, and the containers it starts per user session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[schemars(title = "deployment-manager app description")]
pub struct App {
    /// Must be `deployment-manager/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Must be `App`.
    pub kind: String,
    /// DNS-style name: lowercase letters, digits and `-`.
    pub name: String,
    /// The app's own version (shown in generated files and reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Public hostname, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The app's own long-running processes, by name.
    #[serde(default)]
    pub services: IndexMap<String, Service>,
    /// Backing services (databases, caches, vector stores, model servers…), by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub dependencies: IndexMap<String, Dependency>,
    /// Expected use; everything left out is derived from `users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Containers a service starts per user session (sandboxes, compilers, notebooks).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sessions: IndexMap<String, SessionWorkload>,
    /// A command run once per release, after the new images exist and
    /// before any traffic moves: database migrations. A failure stops the
    /// deploy and nothing switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseCommand>,
}

/// The release step: a one-off container of `service` (its image,
/// settings and secrets) running `command`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseCommand {
    pub service: String,
    pub command: Vec<String>,
    /// How long it may run (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

impl ReleaseCommand {
    pub const DEFAULT_TIMEOUT_S: u64 = 600;

    pub fn timeout_s(&self) -> u64 {
        self.timeout.map_or(Self::DEFAULT_TIMEOUT_S, |d| d.0.max(1))
    }

    /// The command as one shell-like line, for messages and generated files.
    pub fn line(&self) -> String {
        self.command
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c))
                {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Service {
    /// Container image reference. Either `image` or `build` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Plain configuration. Never put secret values here: list them under `secrets`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Names of the secrets this service reads (values never live in app.yaml).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Fixed replica count (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Services or dependencies that must be up first (each is also a
    /// connection this service makes, on every port of the peer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Services and dependencies this one calls: the app's service graph.
    /// Targets that isolate traffic (Kubernetes NetworkPolicies, Compose and
    /// Swarm networks) allow exactly these calls and `depends_on`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connects_to: Vec<Connection>,
    /// Its peers cannot be known from the description (read from a file or
    /// a secret it does not hold): targets keep it able to reach every
    /// service and dependency of the app, as Compose's default network does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connects_to_any: bool,
    #[serde(default, skip_serializing_if = "Traits::is_empty")]
    pub traits: Traits,
    /// Run a small init process as PID 1 (default true where we deploy):
    /// it forwards SIGTERM to the server and reaps zombies. A server
    /// started as PID 1 without a handler ignores SIGTERM and is killed
    /// only when the stop timeout runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Time between SIGTERM and SIGKILL when a container stops (default
    /// 30 s, or the longest request when `long_requests` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Which nodes of a cluster may run it (swarm constraints, spread,
    /// replicas per node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<NodePlacement>,
}

/// One call this service makes to a peer of the same app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// A service or dependency of this app.
    pub to: String,
    /// The port called (default: every port the peer listens on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Websocket,
    Grpc,
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Websocket => "websocket",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The port the container listens on.
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// Reachable from the internet (through the target's edge or load balancer).
    #[serde(default)]
    pub public: bool,
    /// Host port when it must differ from `port` (Compose-style publishing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU reserved for one replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Memory reserved for one replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<Size>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    /// Target average CPU utilisation in percent (default 70).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<u8>,
}

/// Exactly one of `http`, `tcp`, `grpc` or `command`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// HTTP path that answers 2xx when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// TCP port that accepts connections when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u16>,
    /// The standard gRPC health service (`grpc.health.v1.Health/Check`).
    /// Kubernetes and Cloud Run call it natively, and so does our proxy on
    /// Docker hosts and Swarm when it is on the service's port; Compose and
    /// VMs check that its port accepts connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealth>,
    /// Command run inside the container; exit 0 means healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Port for the `http` check (default: the service's first port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcHealth {
    pub port: u16,
    /// The service name asked about (default: the server as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl HealthCheck {
    /// The port a plain connection check uses: `tcp`, or the gRPC port
    /// where no gRPC client is at hand.
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp.or(self.grpc.as_ref().map(|g| g.port))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    /// Mount path inside the container.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Data must survive restarts and redeploys (default true).
    #[serde(default = "yes")]
    pub persistent: bool,
    /// A host path (Compose bind mount); not portable to most targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Traits {
    /// Starts containers at runtime (one per user session), via a container
    /// runtime API such as the Docker socket or Kubernetes Jobs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spawns_containers: bool,
    /// Clients must keep reaching the same replica (e.g. WebSocket state).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sticky_sessions: bool,
    /// Longest request the service must be able to serve, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_requests: Option<Duration>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gpu: bool,
    /// Works off a queue with no inbound traffic; must stay running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background_worker: bool,
    /// Runs on a schedule (cron syntax) instead of continuously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Needs a privileged container or host access.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

impl Traits {
    pub fn is_empty(&self) -> bool {
        *self == Traits::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// postgres, mysql, mariadb, mongodb, redis, valkey, chromadb, qdrant,
    /// pgvector, neo4j, ollama, elasticsearch, rabbitmq, kafka, nats,
    /// object-storage, sqlite, … (see `deployment-manager catalog`).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Image when the dependency runs as a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Data size it holds (disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// May a managed offering (RDS, DO Managed DB, …) replace it? Default true.
    #[serde(default = "yes")]
    pub managed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Peers it calls itself (a workflow engine's database, a broker's
    /// coordinator), as for services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connects_to: Vec<Connection>,
    /// Which nodes of a cluster may run it: a dependency keeping its data
    /// on a node's volume should be pinned to that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<NodePlacement>,
    /// Set by a placement, never written in app.yaml: the provider's managed
    /// offering that hosts it, so no container runs it.
    #[serde(skip)]
    #[schemars(skip)]
    pub managed_by: Option<String>,
}

impl Dependency {
    /// Does it run as a container of the app: not an outside service, not
    /// embedded in another, not hosted by a managed offering?
    pub fn runs_as_container(&self) -> bool {
        self.managed_by.is_none()
            && !crate::describe::known::known()
                .get(&self.kind)
                .is_some_and(|k| k.external || k.class == "embedded")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Registered users expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// Peak requests per minute across the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Data stored by the app in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size: Option<Size>,
    /// Internet egress per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_per_month: Option<Size>,
    /// Share of users active at the busiest hour (0–1, default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_concurrency: Option<f64>,
    /// Set by a split placement, never written in app.yaml: the share of
    /// the app's egress that leaves from this part of it.
    #[serde(skip)]
    #[schemars(skip)]
    pub egress_share: Option<f64>,
}

/// A container started per user session by one of the app's services.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionWorkload {
    pub image: String,
    /// The service that starts these containers (must have `spawns_containers`).
    pub spawned_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_user: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<u32>,
    /// Containers kept started and idle to hide start-up time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Duration>,
    /// Per-session disk that outlives a container restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Size>,
    /// Outbound network access from the sandbox (default false: none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
}

impl App {
    pub fn new(name: &str) -> Self {
        App {
            api_version: API_VERSION.into(),
            kind: "App".into(),
            name: name.into(),
            ..App::default()
        }
    }

    pub fn users(&self) -> u32 {
        self.usage.as_ref().and_then(|u| u.users).unwrap_or(10)
    }
}

impl Service {
    pub fn cpu(&self) -> Cpu {
        self.resources
            .as_ref()
            .and_then(|r| r.cpu)
            .unwrap_or(Cpu(250))
    }
    pub fn memory(&self) -> Size {
        self.resources
            .as_ref()
            .and_then(|r| r.memory)
            .unwrap_or(Size::mib(256))
    }
    /// Replicas at rest: the autoscaling floor or the fixed count.
    pub fn min_replicas(&self) -> u32 {
        match &self.autoscaling {
            Some(a) => a.min.max(1),
            None => self.replicas.unwrap_or(1).max(1),
        }
    }
    pub fn max_replicas(&self) -> u32 {
        match &self.autoscaling {
            Some(a) => a.max.max(a.min).max(1),
            None => self.replicas.unwrap_or(1).max(1),
        }
    }
    pub fn is_public(&self) -> bool {
        self.ports.iter().any(|p| p.public)
    }
    pub fn has_protocol(&self, p: Protocol) -> bool {
        self.ports.iter().any(|x| x.protocol == p)
    }
    pub fn persistent_volumes(&self) -> impl Iterator<Item = &Volume> {
        self.volumes.iter().filter(|v| v.persistent)
    }
}
