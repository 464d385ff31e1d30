//! Google Cloud Run: one Knative `Service` YAML per service, for
//! `gcloud run services replace`. Secrets come from Secret Manager by name,
//! scaling bounds from autoscaling, the request timeout from long_requests.

use super::compose::image_of;
use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::describe::app::{App, Protocol};
use crate::describe::secrets_list;
use serde_json::{Value, json};

pub fn render(app: &App) -> Vec<GeneratedFile> {
    let secrets = secrets_list(app);
    let mut out = Vec::new();
    for (name, s) in &app.services {
        let env = super::env_entries(
            s,
            name,
            &secrets,
            |n| json!({"name": n, "valueFrom": {"secretKeyRef": {"name": n.to_lowercase().replace('_', "-"), "key": "latest"}}}),
        );
        let mut container = json!({
            "image": image_of(app, name, s),
            "resources": {"limits": {"cpu": format!("{}", (s.cpu().cores() * 1000.0).round() as u64).to_string() + "m", "memory": format!("{}Mi", s.memory().as_mib().round() as u64)}},
        });
        if let Some(p) = s.ports.first() {
            container["ports"] = json!([{"name": if p.protocol == Protocol::Grpc { "h2c" } else { "http1" }, "containerPort": p.port}]);
        }
        if !s.command.is_empty() {
            container["command"] = json!(s.command);
        }
        if !env.is_empty() {
            container["env"] = Value::Array(env);
        }
        if let Some(h) = &s.health {
            let probe = if let Some(path) = &h.http {
                json!({"httpGet": {"path": path, "port": h.port.or(s.ports.first().map(|p| p.port)).unwrap_or(8080)}})
            } else if let Some(port) = h.tcp {
                json!({"tcpSocket": {"port": port}})
            } else if let Some(g) = &h.grpc {
                let mut grpc = json!({"port": g.port});
                if let Some(service) = &g.service {
                    grpc["service"] = json!(service);
                }
                json!({"grpc": grpc})
            } else {
                Value::Null
            };
            if !probe.is_null() {
                let mut startup = probe.clone();
                startup["periodSeconds"] = json!(h.interval.map_or(10, |d| d.0.clamp(1, 240)));
                startup["failureThreshold"] = json!(h.retries.unwrap_or(3) * 2);
                container["startupProbe"] = startup;
                let mut live = probe;
                live["periodSeconds"] = json!(h.interval.map_or(10, |d| d.0.clamp(1, 3600)));
                container["livenessProbe"] = live;
            }
        }
        let always_on = s.traits.background_worker || s.has_protocol(Protocol::Websocket);
        let mut template_annotations = json!({
            "autoscaling.knative.dev/minScale": (if always_on { s.min_replicas().max(1) } else { s.min_replicas().saturating_sub(1) }).to_string(),
            "autoscaling.knative.dev/maxScale": s.max_replicas().max(1).to_string(),
        });
        if always_on {
            template_annotations["run.googleapis.com/cpu-throttling"] = json!("false");
        }
        if s.traits.sticky_sessions {
            template_annotations["run.googleapis.com/sessionAffinity"] = json!("true");
        }
        let timeout = s.traits.long_requests.map_or(300, |d| d.0.clamp(1, 3600));
        let doc = json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {
                "name": format!("{}-{name}", app.name),
                "labels": {"app": app.name, "managed-by": "deployment-manager"},
                "annotations": {"run.googleapis.com/ingress": if s.is_public() { "all" } else { "internal" }},
            },
            "spec": {"template": {
                "metadata": {"annotations": template_annotations},
                "spec": {"containerConcurrency": 80, "timeoutSeconds": timeout, "containers": [container]}
            }}
        });
        let mut text = header(app, "#");
        text.push_str(&format!(
            "# Deploy: gcloud run services replace {name}.service.yaml --region us-central1\n"
        ));
        text.push_str(&to_yaml(&doc));
        out.push(GeneratedFile::new(format!("{name}.service.yaml"), text));
    }
    out
}
