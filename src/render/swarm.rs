//! Docker Swarm: a stack file for `docker stack deploy`. Updates start the
//! new task first and roll back by themselves when it fails; the monitor
//! window covers the health check's start period and retries (anchors §8).

use super::compose::compose_value;
use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::describe::app::App;
use crate::describe::node_placement::NodePlacement;
use serde_json::{Value, json};

pub fn render(app: &App) -> Vec<GeneratedFile> {
    let mut v = compose_value(app);
    let Some(services) = v["services"].as_object_mut() else {
        return Vec::new();
    };
    for (name, svc) in services.iter_mut() {
        let obj = svc.as_object_mut().expect("services are mappings");
        // Swarm ignores these; drop them rather than print warnings.
        for k in [
            "build",
            "restart",
            "depends_on",
            "security_opt",
            "expose",
            "tmpfs",
        ] {
            obj.remove(k);
        }
        let stateful = obj.get("volumes").is_some_and(|v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|m| !m.as_str().unwrap_or("").starts_with('/')))
        });
        let hc = obj.get("healthcheck").cloned();
        let secs = |k: &str, d: u64| {
            hc.as_ref()
                .and_then(|h| h[k].as_str())
                .and_then(|s| s.trim_end_matches('s').parse::<u64>().ok())
                .unwrap_or(d)
        };
        let retries = hc.as_ref().and_then(|h| h["retries"].as_u64()).unwrap_or(3);
        let monitor = secs("start_period", 10) + secs("interval", 10) * retries;
        let deploy = obj.entry("deploy").or_insert_with(|| json!({}));
        let app_service = app.services.contains_key(name);
        deploy["update_config"] = json!({
            "parallelism": 1,
            "delay": "5s",
            "order": if stateful || !app_service { "stop-first" } else { "start-first" },
            "failure_action": "rollback",
            "monitor": format!("{monitor}s"),
            "max_failure_ratio": 0
        });
        deploy["rollback_config"] = json!({"parallelism": 1, "order": if stateful || !app_service { "stop-first" } else { "start-first" }, "monitor": format!("{monitor}s")});
        deploy["restart_policy"] = json!({"condition": "any", "delay": "5s", "window": "120s"});
        let declared = app
            .services
            .get(name)
            .and_then(|s| s.placement.as_ref())
            .or_else(|| {
                app.dependencies
                    .get(name)
                    .and_then(|d| d.placement.as_ref())
            })
            .filter(|p| !p.is_empty());
        if let Some(p) = declared {
            deploy["placement"] = stack_placement(p);
        } else if stateful {
            // A node-local volume: keep the task on the node that holds it.
            deploy["placement"] =
                json!({"constraints": [format!("node.labels.{}.{name} == true", app.name)]});
        }
        if name == "docker-proxy" {
            deploy["placement"] = json!({"constraints": ["node.role == manager"]});
        }
    }
    // The graph's networks, as overlays that span the nodes.
    if let Some(nets) = v.get_mut("networks").and_then(Value::as_object_mut) {
        for n in nets.values_mut() {
            *n = json!({"driver": "overlay"});
        }
    }
    if let Some(secrets) = v.get_mut("secrets").and_then(|s| s.as_object_mut()) {
        for s in secrets.values_mut() {
            // Created once with `docker secret create NAME -`; never in the file.
            *s = json!({"external": true});
        }
    }
    let mut out = header(app, "#");
    out.push_str(&format!(
        "# Deploy: docker stack deploy --detach=false -c stack.yaml {}\n",
        app.name
    ));
    out.push_str(&to_yaml(&v));
    vec![GeneratedFile::new("stack.yaml", out)]
}

/// app.yaml's placement in a stack file's words.
fn stack_placement(p: &NodePlacement) -> Value {
    let mut v = json!({});
    if !p.constraints.is_empty() {
        v["constraints"] = json!(p.constraints);
    }
    if !p.spread.is_empty() {
        let prefs: Vec<Value> = p
            .spread
            .iter()
            .map(|l| json!({"spread": format!("node.labels.{l}")}))
            .collect();
        v["preferences"] = json!(prefs);
    }
    if let Some(m) = p.max_per_node {
        v["max_replicas_per_node"] = json!(m);
    }
    v
}
