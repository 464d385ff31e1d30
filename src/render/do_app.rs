//! DigitalOcean App Platform: one app spec (`.do/app.yaml`) with services
//! (public HTTP), workers (no port, or a cron schedule run in-process), managed databases for
//! the dependencies DigitalOcean offers, and secrets as SECRET variables
//! whose values are set in the console or with doctl, never here.

use super::compose::image_of;
use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::describe::app::{App, Service};
use crate::describe::known::{image_repository, image_tag, known};
use crate::describe::secrets_list;
use serde_json::{Value, json};

/// The smallest App Platform size with this much memory (catalog sizes).
fn size_slug(s: &Service) -> &'static str {
    let mem = s.memory().as_gib();
    let cpu = s.cpu().cores();
    if cpu <= 1.0 && mem <= 0.5 {
        "apps-s-1vcpu-0.5gb"
    } else if cpu <= 1.0 && mem <= 1.0 {
        "apps-s-1vcpu-1gb"
    } else if cpu <= 1.0 && mem <= 2.0 {
        "apps-s-1vcpu-2gb"
    } else if cpu <= 2.0 && mem <= 4.0 {
        "apps-s-2vcpu-4gb"
    } else if cpu <= 2.0 && mem <= 8.0 {
        "apps-d-2vcpu-8gb"
    } else {
        "apps-d-4vcpu-16gb"
    }
}

fn image_source(image: &str) -> Value {
    let repo = image_repository(image);
    let tag = image_tag(image).unwrap_or_else(|| "latest".into());
    if let Some(rest) = repo.strip_prefix("ghcr.io/") {
        let (registry, repository) = rest.split_once('/').unwrap_or((rest, rest));
        json!({"registry_type": "GHCR", "registry": registry, "repository": repository, "tag": tag})
    } else if let Some(rest) = repo.strip_prefix("registry.digitalocean.com/") {
        let (registry, repository) = rest.split_once('/').unwrap_or((rest, rest));
        json!({"registry_type": "DOCR", "registry": registry, "repository": repository, "tag": tag})
    } else {
        let (registry, repository) = repo.split_once('/').unwrap_or(("library", repo.as_str()));
        json!({"registry_type": "DOCKER_HUB", "registry": registry, "repository": repository, "tag": tag})
    }
}

pub fn render(app: &App) -> Vec<GeneratedFile> {
    let secrets = secrets_list(app);
    let (mut services, mut workers, mut databases) = (Vec::new(), Vec::new(), Vec::new());
    let mut jobs: Vec<Value> = Vec::new();
    for (name, s) in &app.services {
        let mut envs: Vec<Value> = s
            .env
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v, "scope": "RUN_TIME", "type": "GENERAL"}))
            .collect();
        for x in secrets.iter().filter(|x| x.used_by.contains(name)) {
            envs.push(json!({"key": x.name, "scope": "RUN_TIME", "type": "SECRET"}));
        }
        let mut c = json!({"name": name, "image": image_source(&image_of(app, name, s)), "instance_size_slug": size_slug(s)});
        if !envs.is_empty() {
            c["envs"] = Value::Array(envs);
        }
        // A PRE_DEPLOY job: App Platform runs it after the build and before
        // the new components take traffic; a failure stops the deploy.
        if let Some(r) = app.release.as_ref().filter(|r| &r.service == name) {
            let mut job = json!({"name": format!("{name}-release"), "kind": "PRE_DEPLOY", "image": c["image"].clone(), "instance_size_slug": c["instance_size_slug"].clone(), "run_command": r.line()});
            if let Some(e) = c.get("envs") {
                job["envs"] = e.clone();
            }
            jobs.push(job);
        }
        if !s.command.is_empty() {
            c["run_command"] = json!(s.command.join(" "));
        }
        if let Some(cron) = &s.traits.cron {
            // The app spec's jobs run around deploys only; a schedule has to
            // run inside a worker (e.g. supercronic) with this crontab.
            c["instance_count"] = json!(1);
            let schedule = json!({"key": "CRON_SCHEDULE", "value": cron, "scope": "RUN_TIME", "type": "GENERAL"});
            match c["envs"].as_array_mut() {
                Some(envs) => envs.push(schedule),
                None => c["envs"] = json!([schedule]),
            }
            workers.push(c);
            continue;
        }
        match s.ports.iter().find(|p| p.public).or(s.ports.first()) {
            Some(p) => {
                c["http_port"] = json!(p.port);
                c["instance_count"] = json!(s.min_replicas());
                if let Some(h) = &s.health {
                    let mut hc = json!({"initial_delay_seconds": h.start_period.map_or(10, |d| d.0), "period_seconds": h.interval.map_or(10, |d| d.0), "timeout_seconds": h.timeout.map_or(5, |d| d.0), "failure_threshold": h.retries.unwrap_or(3)});
                    if let Some(path) = &h.http {
                        hc["http_path"] = json!(path);
                    }
                    c["health_check"] = hc;
                }
                if !s.is_public() {
                    c["internal_ports"] = json!([p.port]);
                }
                services.push(c);
            }
            None => {
                c["instance_count"] = json!(s.min_replicas());
                workers.push(c);
            }
        }
    }
    for (name, d) in &app.dependencies {
        let family = known().get(&d.kind).and_then(|k| k.managed_as.clone());
        let engine = match family.as_deref() {
            Some("postgres") => "PG",
            Some("mysql") => "MYSQL",
            Some("redis") => "VALKEY",
            Some("mongodb") => "MONGODB",
            _ => continue,
        };
        let mut db = json!({"name": name, "engine": engine, "production": true, "cluster_name": format!("{}-{name}", app.name)});
        if let Some(v) = &d.version {
            db["version"] = json!(v.split(['-', '.']).next().unwrap_or(v));
        }
        databases.push(db);
    }
    let mut spec = json!({"name": app.name, "region": "nyc"});
    if !services.is_empty() {
        spec["services"] = Value::Array(services);
    }
    if !workers.is_empty() {
        spec["workers"] = Value::Array(workers);
    }
    if !jobs.is_empty() {
        spec["jobs"] = Value::Array(jobs);
    }
    if !databases.is_empty() {
        spec["databases"] = Value::Array(databases);
    }
    if let Some(d) = &app.domain {
        spec["domains"] = json!([{"domain": d, "type": "PRIMARY"}]);
    }
    let mut text = header(app, "#");
    text.push_str("# Deploy: doctl apps create --spec .do/app.yaml (then doctl apps update ID --spec .do/app.yaml)\n");
    text.push_str(&to_yaml(&spec));
    vec![GeneratedFile::new(".do/app.yaml", text)]
}
