//! Facts about each component of an app (services, dependencies, session
//! workloads) that fitness rules match on. Classification happens here:
//! class (database, cache, vector store, …), heavy or light, licence risk.

use crate::describe::app::{App, Protocol};
use crate::describe::known::known;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One thing the app needs running, with its facts.
#[derive(Clone, Debug)]
pub struct Component {
    pub name: String,
    pub facts: BTreeMap<String, Value>,
}

impl Component {
    pub fn fact(&self, k: &str) -> Option<&Value> {
        self.facts.get(k)
    }
    pub fn kind(&self) -> &str {
        self.facts.get("kind").and_then(Value::as_str).unwrap_or("")
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn components(app: &App) -> Vec<Component> {
    let mut out = Vec::new();
    for (name, s) in &app.services {
        let mut f = BTreeMap::new();
        let vol_gb: f64 = s
            .persistent_volumes()
            .map(|v| v.size.map_or(1.0, |z| z.as_gib()))
            .sum();
        f.insert("kind".into(), json!("service"));
        f.insert(
            "class".into(),
            json!(if s.traits.spawns_containers {
                "execution"
            } else {
                "service"
            }),
        );
        f.insert("heavy".into(), json!(s.memory().as_gib() >= 4.0));
        f.insert("external".into(), json!(false));
        f.insert(
            "spawns_containers".into(),
            json!(s.traits.spawns_containers),
        );
        f.insert("sticky_sessions".into(), json!(s.traits.sticky_sessions));
        f.insert("gpu".into(), json!(s.traits.gpu));
        f.insert("privileged".into(), json!(s.traits.privileged));
        f.insert(
            "background_worker".into(),
            json!(s.traits.background_worker),
        );
        f.insert("cron".into(), json!(s.traits.cron.is_some()));
        f.insert(
            "websocket".into(),
            json!(s.has_protocol(Protocol::Websocket)),
        );
        f.insert("public".into(), json!(s.is_public()));
        f.insert("source_build".into(), json!(s.build.is_some()));
        f.insert(
            "udp_public".into(),
            json!(
                s.ports
                    .iter()
                    .any(|p| p.public && p.protocol == Protocol::Udp)
            ),
        );
        f.insert(
            "tcp_public".into(),
            json!(
                s.ports
                    .iter()
                    .any(|p| p.public && p.protocol == Protocol::Tcp)
            ),
        );
        f.insert(
            "needs_volume".into(),
            json!(s.persistent_volumes().next().is_some()),
        );
        f.insert(
            "bind_mount".into(),
            json!(s.volumes.iter().any(|v| v.host_path.is_some())),
        );
        f.insert("volume_gb".into(), json!(round1(vol_gb)));
        f.insert("memory_gb".into(), json!(round1(s.memory().as_gib())));
        f.insert("max_replicas".into(), json!(s.max_replicas()));
        if let Some(l) = s.traits.long_requests {
            f.insert("long_request_s".into(), json!(l.0));
        }
        out.push(Component {
            name: name.clone(),
            facts: f,
        });
    }
    for (name, d) in &app.dependencies {
        let k = known().get(&d.kind);
        let mut f = BTreeMap::new();
        let external = k.is_some_and(|k| k.external);
        let size = d
            .size
            .or(k.and_then(|k| k.size))
            .map_or(0.0, |s| s.as_gib());
        let mem = d
            .memory
            .or(k.and_then(|k| k.memory))
            .map_or(0.5, |s| s.as_gib());
        f.insert("kind".into(), json!("dependency"));
        f.insert("dep_kind".into(), json!(d.kind));
        f.insert(
            "class".into(),
            json!(k.map_or("unknown", |k| k.class.as_str())),
        );
        // Size makes a light store heavy: seed 003's ChromaDB is "too large".
        f.insert(
            "heavy".into(),
            json!(k.is_some_and(|k| k.heavy) || size >= 50.0 || mem >= 4.0),
        );
        f.insert("external".into(), json!(external));
        f.insert("managed_allowed".into(), json!(d.managed));
        f.insert(
            "managed_as".into(),
            json!(k.and_then(|k| k.managed_as.clone())),
        );
        // A cache keeps nothing worth a disk unless the app sizes one explicitly.
        let class = k.map_or("unknown", |k| k.class.as_str());
        let needs_volume = !external
            && class != "embedded"
            && size > 0.0
            && (class != "cache" || d.size.is_some());
        f.insert("needs_volume".into(), json!(needs_volume));
        f.insert("volume_gb".into(), json!(round1(size)));
        f.insert("memory_gb".into(), json!(round1(mem)));
        f.insert(
            "gpu".into(),
            json!(k.and_then(|k| k.gpu.as_deref()) == Some("required")),
        );
        f.insert("privileged".into(), json!(k.is_some_and(|k| k.privileged)));
        f.insert(
            "license".into(),
            json!(
                k.and_then(|k| k.license.clone())
                    .unwrap_or_else(|| "unknown".into())
            ),
        );
        f.insert(
            "license_risk".into(),
            json!(
                k.and_then(|k| k.license_risk.clone())
                    .unwrap_or_else(|| "unknown".into())
            ),
        );
        f.insert("max_replicas".into(), json!(1));
        out.push(Component {
            name: name.clone(),
            facts: f,
        });
    }
    for (name, s) in &app.sessions {
        let mut f = BTreeMap::new();
        f.insert("kind".into(), json!("session"));
        f.insert("class".into(), json!("execution"));
        f.insert("heavy".into(), json!(true));
        f.insert("external".into(), json!(false));
        f.insert("needs_volume".into(), json!(false));
        f.insert(
            "memory_gb".into(),
            json!(round1(s.memory.map_or(0.25, |m| m.as_gib()))),
        );
        f.insert("max_total".into(), json!(s.max_total.unwrap_or(10)));
        f.insert("spawned_by".into(), json!(s.spawned_by));
        out.push(Component {
            name: name.clone(),
            facts: f,
        });
    }
    out
}
