//! Fly.io: one `fly.toml` per service (a Fly app each), with the HTTP
//! service and its checks, `[[services]]` for WebSocket and TCP ports,
//! volumes as `[[mounts]]`, machine size, and a deploy strategy that fits:
//! blue-green needs checks and no volumes (anchors §11).

use super::compose::image_of;
use super::{GeneratedFile, header};
use crate::analyse::graph::Graph;
use crate::describe::app::{App, Protocol, Service};
use serde_json::{Map, Value, json};

/// The smallest Fly preset with at least this much memory, in MB.
fn memory_mb(s: &Service) -> u64 {
    let want = s.memory().as_mib().ceil() as u64;
    [256, 512, 1024, 2048, 4096, 8192]
        .into_iter()
        .find(|m| *m >= want)
        .unwrap_or(want.div_ceil(1024) * 1024)
}

fn service_toml(app: &App, graph: &Graph, name: &str, s: &Service) -> String {
    let mut t = Map::new();
    t.insert("app".into(), json!(format!("{}-{name}", app.name)));
    t.insert("primary_region".into(), json!("iad"));
    t.insert("kill_signal".into(), json!("SIGTERM"));
    t.insert("kill_timeout".into(), json!(30));
    t.insert("build".into(), json!({"image": image_of(app, name, s)}));
    if !s.env.is_empty() {
        // Each service is its own Fly app: peers answer on the private
        // network as `<fly app>.internal`, not by their bare name.
        let env = super::peers::env_with_addresses(app, graph, name, |peer| {
            app.services
                .contains_key(peer)
                .then(|| format!("{}-{peer}.internal", app.name))
        });
        let env: Map<String, Value> = env.into_iter().map(|(k, v)| (k, json!(v))).collect();
        t.insert("env".into(), Value::Object(env));
    }
    let has_volume = s.persistent_volumes().next().is_some();
    let has_check = s
        .health
        .as_ref()
        .is_some_and(|h| h.http.is_some() || h.tcp_port().is_some());
    let strategy = if has_volume {
        "immediate"
    } else if has_check && s.min_replicas() > 1 {
        "bluegreen"
    } else {
        "rolling"
    };
    let mut deploy = json!({"strategy": strategy, "wait_timeout": "5m"});
    // Fly runs it once per deploy in a temporary Machine of the new image,
    // with the app's secrets, before any Machine is updated.
    if let Some(r) = app.release.as_ref().filter(|r| r.service == name) {
        deploy["release_command"] = json!(r.line());
    }
    t.insert("deploy".into(), deploy);
    let http = s
        .ports
        .iter()
        .find(|p| p.public && p.protocol == Protocol::Http);
    if let Some(p) = http {
        let mut hs = json!({
            "internal_port": p.port,
            "force_https": true,
            "auto_stop_machines": if s.traits.background_worker { "off" } else { "stop" },
            "auto_start_machines": true,
            "min_machines_running": s.min_replicas(),
            "concurrency": {"type": "requests", "soft_limit": 200, "hard_limit": 250},
        });
        if let Some(h) = s.health.as_ref().filter(|h| h.http.is_some()) {
            hs["checks"] = json!([{
                "grace_period": format!("{}s", h.start_period.map_or(10, |d| d.0)),
                "interval": format!("{}s", h.interval.map_or(15, |d| d.0)),
                "timeout": format!("{}s", h.timeout.map_or(5, |d| d.0)),
                "method": "GET",
                "path": h.http,
            }]);
        }
        t.insert("http_service".into(), hs);
    }
    let others: Vec<Value> = s
        .ports
        .iter()
        .filter(|p| p.public && Some(p.port) != http.map(|h| h.port))
        .map(|p| {
            let (proto, handlers) = match p.protocol {
                Protocol::Udp => ("udp", json!([])),
                Protocol::Tcp => ("tcp", json!([])),
                // WebSockets and gRPC ride HTTP/TLS; connections stay up.
                _ => ("tcp", json!(["tls", "http"])),
            };
            let mut svc = json!({"internal_port": p.port, "protocol": proto, "auto_stop_machines": "off", "auto_start_machines": true, "min_machines_running": s.min_replicas(),
                "concurrency": {"type": "connections", "soft_limit": 500, "hard_limit": 1000}});
            let port = if p.protocol == Protocol::Tcp || p.protocol == Protocol::Udp { json!([{"port": p.published.unwrap_or(p.port), "handlers": handlers}]) } else { json!([{"port": 443, "handlers": handlers}]) };
            svc["ports"] = port;
            if p.protocol != Protocol::Udp {
                svc["tcp_checks"] = json!([{"interval": "15s", "timeout": "2s", "grace_period": "10s"}]);
            }
            svc
        })
        .collect();
    if !others.is_empty() {
        t.insert("services".into(), Value::Array(others));
    }
    let mounts: Vec<Value> = s
        .persistent_volumes()
        .map(|v| json!({"source": format!("{}_{}", name.replace('-', "_"), v.name.replace('-', "_")), "destination": v.path, "initial_size": format!("{}gb", v.size.map_or(1, |z| z.as_gib().ceil() as u64))}))
        .collect();
    if mounts.len() == 1 {
        t.insert("mounts".into(), mounts[0].clone());
    } else if !mounts.is_empty() {
        t.insert("mounts".into(), Value::Array(mounts));
    }
    let cpus = s.cpu().cores().ceil().max(1.0) as u64;
    t.insert("vm".into(), json!([{"cpu_kind": if cpus > 1 { "performance" } else { "shared" }, "cpus": cpus, "memory": format!("{}mb", memory_mb(s))}]));
    let mut out = header(app, "#");
    out.push_str(&toml::to_string(&Value::Object(t)).expect("fly.toml is plain data"));
    out
}

pub fn render(app: &App) -> Vec<GeneratedFile> {
    let graph = Graph::of(app);
    app.services
        .iter()
        .map(|(name, s)| {
            GeneratedFile::new(
                format!("{name}/fly.toml"),
                service_toml(app, &graph, name, s),
            )
        })
        .collect()
}
