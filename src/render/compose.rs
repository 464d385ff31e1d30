//! Docker Compose: `compose.yaml` with healthchecks, health-gated
//! `depends_on`, resource limits, named volumes, secrets as files, restart
//! policies and networks that carry the app's service graph (one per called
//! component, see [`NetworkLayout`]). Services that start containers get a
//! socket proxy that allows only container calls instead of the raw Docker
//! socket.

use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::analyse::graph::{Graph, NetworkLayout};
use crate::describe::app::{App, HealthCheck, Protocol, Service};
use crate::describe::known::known;
use crate::describe::secrets_list;
use serde_json::{Map, Value, json};

/// A pinned socket proxy that filters the Docker API by endpoint.
pub const SOCKET_PROXY_IMAGE: &str = "tecnativa/docker-socket-proxy:0.3.0";

pub fn render(app: &App) -> Vec<GeneratedFile> {
    render_with_dockerfiles(app, &[])
}

/// `generated` names the services whose Dockerfile this tool wrote into
/// `deploy/compose/dockerfiles/`; their build points there.
pub fn render_with_dockerfiles(app: &App, generated: &[String]) -> Vec<GeneratedFile> {
    let mut app = app.clone();
    for name in generated {
        if let Some(b) = app.services.get_mut(name).and_then(|s| s.build.as_mut()) {
            // The Dockerfile path is relative to the build context, which is
            // relative to the repository root (`--project-directory .`).
            let depth = std::path::Path::new(&b.context)
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .count();
            if !b.context.contains("..") {
                b.dockerfile = Some(format!(
                    "{}deploy/compose/dockerfiles/{name}.Dockerfile",
                    "../".repeat(depth)
                ));
            }
        }
    }
    let app = &app;
    let mut files = vec![GeneratedFile::new("compose.yaml", compose_yaml(app))];
    let secrets = secrets_list(app);
    if !secrets.is_empty() {
        let mut env = String::from(
            "# Secret names this app needs; fill in values on the host, never commit them.\n",
        );
        for s in &secrets {
            env.push_str(&format!("{}=\n", s.name));
        }
        files.push(GeneratedFile::new("secrets.env.example", env));
    }
    files
}

pub fn image_of(app: &App, name: &str, s: &Service) -> String {
    s.image.clone().unwrap_or_else(|| {
        format!(
            "{}-{name}:{}",
            app.name,
            app.version.as_deref().unwrap_or("latest")
        )
    })
}

/// A health check command that needs nothing but a shell and wget or nc.
pub fn health_test(h: &HealthCheck, first_port: Option<u16>) -> Value {
    if let Some(path) = &h.http {
        let port = h.port.or(first_port).unwrap_or(80);
        json!([
            "CMD-SHELL",
            format!("wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1")
        ])
    } else if let Some(port) = h.tcp_port() {
        // gRPC too: images rarely ship a gRPC health client.
        json!(["CMD-SHELL", format!("nc -z 127.0.0.1 {port} || exit 1")])
    } else {
        let mut v = vec![json!("CMD")];
        v.extend(h.command.iter().map(|c| json!(c)));
        Value::Array(v)
    }
}

fn health_block(h: &HealthCheck, first_port: Option<u16>) -> Value {
    let mut m = Map::new();
    m.insert("test".into(), health_test(h, first_port));
    m.insert(
        "interval".into(),
        json!(format!("{}s", h.interval.map_or(10, |d| d.0))),
    );
    m.insert(
        "timeout".into(),
        json!(format!("{}s", h.timeout.map_or(5, |d| d.0))),
    );
    m.insert("retries".into(), json!(h.retries.unwrap_or(3)));
    m.insert(
        "start_period".into(),
        json!(format!("{}s", h.start_period.map_or(10, |d| d.0))),
    );
    Value::Object(m)
}

/// Health checks for well-known dependencies, using their own images' tools.
fn dependency_health(kind: &str) -> Option<Value> {
    let test = match kind {
        "postgres" => json!(["CMD-SHELL", "pg_isready -U postgres || exit 1"]),
        "mysql" | "mariadb" => json!(["CMD-SHELL", "mysqladmin ping -h 127.0.0.1 || exit 1"]),
        "redis" | "valkey" => json!(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
        "mongodb" => json!([
            "CMD-SHELL",
            "mongosh --quiet --eval 'db.runCommand({ ping: 1 }).ok' || exit 1"
        ]),
        _ => return None,
    };
    Some(
        json!({"test": test, "interval": "10s", "timeout": "5s", "retries": 5, "start_period": "20s"}),
    )
}

/// Where each well-known dependency keeps its data.
pub fn data_path(kind: &str) -> &'static str {
    match kind {
        "postgres" => "/var/lib/postgresql/data",
        "mysql" | "mariadb" => "/var/lib/mysql",
        "mongodb" => "/data/db",
        "redis" | "valkey" => "/data",
        "chromadb" => "/chroma/chroma",
        "qdrant" => "/qdrant/storage",
        "neo4j" => "/data",
        "ollama" => "/root/.ollama",
        "elasticsearch" | "opensearch" => "/usr/share/elasticsearch/data",
        "rabbitmq" => "/var/lib/rabbitmq",
        "minio" => "/data",
        _ => "/data",
    }
}

/// The image a self-hosted dependency runs, pinned to its declared version.
pub fn dependency_image(kind: &str, version: Option<&str>, image: Option<&str>) -> String {
    if let Some(i) = image {
        return i.to_string();
    }
    let k = known().get(kind);
    let repo = k
        .and_then(|k| k.images.first().cloned())
        .unwrap_or_else(|| kind.to_string());
    // Never `latest`: an unpinned tag changes under a running deployment.
    let tag = version
        .map(String::from)
        .or_else(|| k.and_then(|k| k.default_tag.clone()))
        .unwrap_or_else(|| "stable".into());
    format!("{repo}:{tag}")
}

fn compose_yaml(app: &App) -> String {
    let mut out = header(app, "#");
    if app.services.values().any(|s| s.traits.spawns_containers) {
        out.push_str("# Risk: `docker-proxy` still lets the app create containers on this host. It allows only container endpoints (no exec, images, volumes or swarm); run this stack on a dedicated VM.\n");
    }
    let mut model = compose_value(app);
    with_release_command(app, &mut model);
    out.push_str(&to_yaml(&model));
    out
}

/// The release command as Compose runs it natively: a one-off service
/// (`<service>-release`) of the service's image, settings, secrets and
/// networks, never restarted, which the service waits for with
/// `service_completed_successfully`. Only for Compose: a swarm stack has
/// no one-off services (the swarm engine runs it as a job).
fn with_release_command(app: &App, model: &mut Value) {
    let Some(r) = &app.release else { return };
    let services = &mut model["services"];
    let Some(base) = services.get(&r.service).cloned() else {
        return;
    };
    let mut job = base;
    if let Some(o) = job.as_object_mut() {
        for k in ["ports", "expose", "healthcheck", "deploy"] {
            o.remove(k);
        }
        o.insert("command".into(), json!(r.command));
        o.insert("restart".into(), json!("no"));
    }
    let name = format!("{}-release", r.service);
    let deps = &mut services[&r.service]["depends_on"];
    if !deps.is_object() {
        *deps = json!({});
    }
    deps[&name] = json!({"condition": "service_completed_successfully"});
    services[&name] = job;
}

/// The network the socket proxy shares with the services that start containers.
const DOCKER_API_NETWORK: &str = "docker-api";

/// The `networks` of one component: its graph networks and `extra`; none
/// (the project's default network) when it calls and is called by nothing.
fn networks_of(layout: &NetworkLayout, name: &str, extra: Option<&str>) -> Option<Value> {
    let nets: Vec<&str> = layout
        .joins
        .get(name)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(extra)
        .collect();
    (!nets.is_empty()).then(|| json!(nets))
}

/// The Compose model of the app (also the base of the Swarm stack).
pub fn compose_value(app: &App) -> Value {
    let mut services = Map::new();
    let mut volumes = Map::new();
    let secrets = secrets_list(app);
    let spawner = app.services.values().any(|s| s.traits.spawns_containers);
    let layout = Graph::of(app).networks(app);

    for (name, d) in &app.dependencies {
        if !d.runs_as_container() {
            continue;
        }
        let k = known().get(&d.kind);
        let mut svc = Map::new();
        svc.insert(
            "image".into(),
            json!(dependency_image(
                &d.kind,
                d.version.as_deref(),
                d.image.as_deref()
            )),
        );
        svc.insert("restart".into(), json!("unless-stopped"));
        if d.kind == "postgres" {
            svc.insert(
                "environment".into(),
                json!({"POSTGRES_PASSWORD_FILE": "/run/secrets/POSTGRES_PASSWORD"}),
            );
            svc.insert("secrets".into(), json!(["POSTGRES_PASSWORD"]));
        }
        if let Some(h) = dependency_health(&d.kind) {
            svc.insert("healthcheck".into(), h);
        }
        let cache_only = k.is_some_and(|k| k.class == "cache") && d.size.is_none();
        if !cache_only {
            let vol = format!("{name}-data");
            svc.insert(
                "volumes".into(),
                json!([format!("{vol}:{}", data_path(&d.kind))]),
            );
            volumes.insert(vol, json!({}));
        }
        let mem = d.memory.or(k.and_then(|k| k.memory));
        let cpu = d.cpu.or(k.and_then(|k| k.cpu));
        let mut limits = Map::new();
        if let Some(c) = cpu {
            limits.insert("cpus".into(), json!(format!("{}", c.cores())));
        }
        if let Some(m) = mem {
            limits.insert(
                "memory".into(),
                json!(format!("{}M", m.as_mib().round() as u64)),
            );
        }
        if !limits.is_empty() {
            svc.insert("deploy".into(), json!({"resources": {"limits": limits}}));
        }
        if let Some(nets) = networks_of(&layout, name, None) {
            svc.insert("networks".into(), nets);
        }
        services.insert(name.clone(), Value::Object(svc));
    }

    if spawner {
        // Only container endpoints; no exec, images, volumes, networks, swarm.
        services.insert(
            "docker-proxy".into(),
            json!({
                "image": SOCKET_PROXY_IMAGE,
                "restart": "unless-stopped",
                "environment": {"CONTAINERS": "1", "POST": "1", "ALLOW_START": "1", "ALLOW_STOP": "1", "ALLOW_RESTARTS": "0", "EXEC": "0", "IMAGES": "0", "VOLUMES": "0", "NETWORKS": "0", "SWARM": "0", "SYSTEM": "0"},
                "volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro"],
                "read_only": true,
                "tmpfs": ["/run"],
                "networks": [DOCKER_API_NETWORK],
            }),
        );
    }

    for (name, s) in &app.services {
        let mut svc = Map::new();
        svc.insert("image".into(), json!(image_of(app, name, s)));
        if let Some(b) = &s.build {
            let mut build = Map::new();
            build.insert("context".into(), json!(b.context));
            if let Some(df) = &b.dockerfile {
                build.insert("dockerfile".into(), json!(df));
            }
            if !b.args.is_empty() {
                build.insert("args".into(), json!(b.args));
            }
            svc.insert("build".into(), Value::Object(build));
        }
        if !s.command.is_empty() {
            svc.insert("command".into(), json!(s.command));
        }
        svc.insert("restart".into(), json!("unless-stopped"));
        let public: Vec<Value> = s
            .ports
            .iter()
            .filter(|p| p.public)
            .map(|p| {
                let proto = if p.protocol == Protocol::Udp {
                    "/udp"
                } else {
                    ""
                };
                // Replicas cannot share one host port: publish a range, one each.
                let first = p.published.unwrap_or(p.port);
                let replicas = s.replicas.unwrap_or(1).max(1) as u16;
                if replicas > 1 {
                    json!(format!(
                        "{first}-{}:{}{proto}",
                        first + replicas - 1,
                        p.port
                    ))
                } else {
                    json!(format!("{first}:{}{proto}", p.port))
                }
            })
            .collect();
        if !public.is_empty() {
            svc.insert("ports".into(), Value::Array(public));
        }
        let private: Vec<Value> = s
            .ports
            .iter()
            .filter(|p| !p.public)
            .map(|p| json!(p.port.to_string()))
            .collect();
        if !private.is_empty() {
            svc.insert("expose".into(), Value::Array(private));
        }
        let mut env: Map<String, Value> =
            s.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        if s.traits.spawns_containers {
            env.insert("DOCKER_HOST".into(), json!("tcp://docker-proxy:2375"));
        }
        let mine: Vec<&str> = secrets
            .iter()
            .filter(|x| x.used_by.contains(name))
            .map(|x| x.name.as_str())
            .collect();
        for sname in &mine {
            env.insert(
                format!("{sname}_FILE"),
                json!(format!("/run/secrets/{sname}")),
            );
        }
        if !env.is_empty() {
            svc.insert("environment".into(), Value::Object(env));
        }
        if !mine.is_empty() {
            svc.insert("secrets".into(), json!(mine));
        }
        if let Some(h) = &s.health {
            svc.insert(
                "healthcheck".into(),
                health_block(h, s.ports.first().map(|p| p.port)),
            );
        }
        let mut deps = Map::new();
        for d in &s.depends_on {
            let healthy = app.services.get(d).is_some_and(|x| x.health.is_some())
                || app
                    .dependencies
                    .get(d)
                    .is_some_and(|x| dependency_health(&x.kind).is_some());
            let external = app
                .dependencies
                .get(d)
                .is_some_and(|x| !x.runs_as_container());
            if !external {
                deps.insert(d.clone(), json!({"condition": if healthy { "service_healthy" } else { "service_started" }}));
            }
        }
        if s.traits.spawns_containers {
            deps.insert(
                "docker-proxy".into(),
                json!({"condition": "service_started"}),
            );
        }
        if !deps.is_empty() {
            svc.insert("depends_on".into(), Value::Object(deps));
        }
        let mut mounts = Vec::new();
        for v in &s.volumes {
            if v.persistent {
                let vol = format!("{name}-{}", v.name);
                mounts.push(json!(format!("{vol}:{}", v.path)));
                volumes.insert(vol, json!({}));
            }
        }
        if !mounts.is_empty() {
            svc.insert("volumes".into(), Value::Array(mounts));
        }
        let tmp: Vec<Value> = s
            .volumes
            .iter()
            .filter(|v| !v.persistent)
            .map(|v| json!(v.path))
            .collect();
        if !tmp.is_empty() {
            svc.insert("tmpfs".into(), Value::Array(tmp));
        }
        let mut deploy = Map::new();
        if let Some(r) = s.replicas.filter(|r| *r > 1) {
            deploy.insert("replicas".into(), json!(r));
        }
        let mut limits = Map::new();
        let mut reservations = Map::new();
        let cpu_l = s.resources.as_ref().and_then(|r| r.cpu_limit.or(r.cpu));
        let mem_l = s
            .resources
            .as_ref()
            .and_then(|r| r.memory_limit.or(r.memory));
        if let Some(c) = cpu_l {
            limits.insert("cpus".into(), json!(format!("{}", c.cores())));
        }
        if let Some(m) = mem_l {
            limits.insert(
                "memory".into(),
                json!(format!("{}M", m.as_mib().round() as u64)),
            );
        }
        if let Some(c) = s.resources.as_ref().and_then(|r| r.cpu) {
            reservations.insert("cpus".into(), json!(format!("{}", c.cores())));
        }
        if let Some(m) = s.resources.as_ref().and_then(|r| r.memory) {
            reservations.insert(
                "memory".into(),
                json!(format!("{}M", m.as_mib().round() as u64)),
            );
        }
        if !limits.is_empty() || !reservations.is_empty() {
            let mut res = Map::new();
            if !limits.is_empty() {
                res.insert("limits".into(), Value::Object(limits));
            }
            if !reservations.is_empty() {
                res.insert("reservations".into(), Value::Object(reservations));
            }
            deploy.insert("resources".into(), Value::Object(res));
        }
        if !deploy.is_empty() {
            svc.insert("deploy".into(), Value::Object(deploy));
        }
        svc.insert("security_opt".into(), json!(["no-new-privileges:true"]));
        let docker_api = s.traits.spawns_containers.then_some(DOCKER_API_NETWORK);
        if let Some(nets) = networks_of(&layout, name, docker_api) {
            svc.insert("networks".into(), nets);
        }
        services.insert(name.clone(), Value::Object(svc));
    }

    let mut top = Map::new();
    top.insert("name".into(), json!(app.name));
    top.insert("services".into(), Value::Object(services));
    let mut networks: Map<String, Value> = layout
        .networks
        .iter()
        .map(|n| (n.clone(), json!({})))
        .collect();
    if spawner {
        networks.insert(DOCKER_API_NETWORK.into(), json!({}));
    }
    if !networks.is_empty() {
        top.insert("networks".into(), Value::Object(networks));
    }
    if !volumes.is_empty() {
        top.insert("volumes".into(), Value::Object(volumes));
    }
    let mut all_secrets: Vec<String> = secrets.iter().map(|s| s.name.clone()).collect();
    if app
        .dependencies
        .values()
        .any(|d| d.kind == "postgres" && known().get(&d.kind).is_some_and(|k| !k.external))
        && !all_secrets.iter().any(|s| s == "POSTGRES_PASSWORD")
    {
        all_secrets.push("POSTGRES_PASSWORD".into());
    }
    if !all_secrets.is_empty() {
        // Values come from the deploying shell's environment and are mounted
        // as files under /run/secrets; nothing is written here.
        let m: Map<String, Value> = all_secrets
            .iter()
            .map(|n| (n.clone(), json!({"environment": n})))
            .collect();
        top.insert("secrets".into(), Value::Object(m));
    }
    Value::Object(top)
}
