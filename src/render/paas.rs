//! Platforms configured by one small file: Render (`render.yaml` blueprint),
//! Railway (`railway.json` per service), Heroku (`app.json` + `heroku.yml`),
//! AWS App Runner (CreateService input; `apprunner.yaml` only describes
//! source builds), Azure Container Instances (container group YAML) and
//! Vercel (`vercel.json`). Secrets are declared by name only: `sync: false`
//! on Render, `required` on Heroku, `secureValue` placeholders filled by the
//! deploy shell on ACI.

use super::compose::{dependency_image, image_of};
use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::describe::app::{App, Protocol, Service};
use crate::describe::known::known;
use crate::describe::secrets_list;
use serde_json::{Map, Value, json};

fn plan_for(s: &Service, plans: &[(&'static str, f64, f64)]) -> &'static str {
    let (cpu, mem) = (s.cpu().cores(), s.memory().as_gib());
    plans
        .iter()
        .find(|(_, c, m)| *c >= cpu && *m >= mem)
        .or(plans.last())
        .map_or("standard", |p| p.0)
}

fn managed_family(kind: &str) -> Option<String> {
    known().get(kind).and_then(|k| k.managed_as.clone())
}

pub fn render_com(app: &App) -> Vec<GeneratedFile> {
    let secrets = secrets_list(app);
    let plans = [
        ("starter", 0.5, 0.5),
        ("standard", 1.0, 2.0),
        ("pro", 2.0, 4.0),
        ("pro plus", 4.0, 8.0),
        ("pro max", 4.0, 16.0),
    ];
    let mut services = Vec::new();
    let mut databases = Vec::new();
    for (name, d) in &app.dependencies {
        match managed_family(&d.kind).as_deref() {
            Some("postgres") => databases.push(json!({"name": name, "plan": "basic-256mb", "postgresMajorVersion": d.version.as_deref().and_then(|v| v.split(['.', '-']).next()).unwrap_or("16")})),
            Some("redis") => services.push(json!({"type": "keyvalue", "name": name, "plan": "starter", "ipAllowList": []})),
            _ => {}
        }
    }
    let graph = crate::analyse::graph::Graph::of(app);
    for (name, s) in &app.services {
        // A value that is a peer's address becomes Render's reference to it
        // (its private host has a suffix only Render knows).
        let reference = |v: &str| {
            graph.callees_of(name).find_map(|e| {
                let peer = app.services.get(&e.to)?;
                let ty = if peer.is_public() { "web" } else { "pserv" };
                let port = peer.ports.first().map(|p| p.port);
                let property = if v == e.to {
                    "host"
                } else if port.is_some_and(|p| v == format!("{}:{p}", e.to)) {
                    "hostport"
                } else {
                    return None;
                };
                Some(json!({"type": ty, "name": e.to, "property": property}))
            })
        };
        let mut env: Vec<Value> = s
            .env
            .iter()
            .map(|(k, v)| match reference(v) {
                Some(r) => json!({"key": k, "fromService": r}),
                None => json!({"key": k, "value": v}),
            })
            .collect();
        for x in secrets.iter().filter(|x| x.used_by.contains(name)) {
            // DATABASE_URL-style secrets wire to the managed database when there is one.
            let db = app
                .dependencies
                .iter()
                .find(|(_, d)| managed_family(&d.kind).as_deref() == Some("postgres"))
                .map(|(n, _)| n);
            match (x.name.as_str(), db) {
                ("DATABASE_URL", Some(db)) => env.push(json!({"key": x.name, "fromDatabase": {"name": db, "property": "connectionString"}})),
                _ if x.class == "per_install_generated" => env.push(json!({"key": x.name, "generateValue": true})),
                _ => env.push(json!({"key": x.name, "sync": false})),
            }
        }
        let ty = if s.traits.cron.is_some() {
            "cron"
        } else if s.is_public() {
            "web"
        } else if s.ports.is_empty() {
            "worker"
        } else {
            "pserv"
        };
        let mut svc = json!({"type": ty, "name": name, "runtime": "image", "image": {"url": image_of(app, name, s)}, "plan": plan_for(s, &plans), "region": "oregon"});
        if let Some(c) = &s.traits.cron {
            svc["schedule"] = json!(c);
        } else if let Some(a) = &s.autoscaling {
            svc["scaling"] = json!({"minInstances": a.min, "maxInstances": a.max, "targetCPUPercent": a.cpu_percent.unwrap_or(70)});
        } else {
            svc["numInstances"] = json!(s.min_replicas());
        }
        if let Some(path) = s
            .health
            .as_ref()
            .and_then(|h| h.http.as_ref())
            .filter(|_| ty == "web")
        {
            svc["healthCheckPath"] = json!(path);
        }
        if !s.command.is_empty() {
            svc["dockerCommand"] = json!(s.command.join(" "));
        }
        // Render runs it after the build, before the new instances start.
        if let Some(r) = app.release.as_ref().filter(|r| &r.service == name) {
            svc["preDeployCommand"] = json!(r.line());
        }
        if let Some(v) = s.persistent_volumes().next() {
            svc["disk"] = json!({"name": v.name, "mountPath": v.path, "sizeGB": v.size.map_or(1, |z| z.as_gib().ceil() as u64)});
        }
        if !env.is_empty() {
            svc["envVars"] = Value::Array(env);
        }
        services.push(svc);
    }
    let mut bp = json!({"services": services});
    if !databases.is_empty() {
        bp["databases"] = Value::Array(databases);
    }
    let mut text = header(app, "#");
    text.push_str(&to_yaml(&bp));
    vec![GeneratedFile::new("render.yaml", text)]
}

pub fn railway(app: &App) -> Vec<GeneratedFile> {
    app.services
        .iter()
        .map(|(name, s)| {
            let mut deploy = json!({"numReplicas": s.min_replicas(), "restartPolicyType": "ON_FAILURE", "restartPolicyMaxRetries": 10, "drainingSeconds": 30, "overlapSeconds": 30, "sleepApplication": false});
            if let Some(path) = s.health.as_ref().and_then(|h| h.http.as_ref()) {
                deploy["healthcheckPath"] = json!(path);
                deploy["healthcheckTimeout"] = json!(s.health.as_ref().and_then(|h| h.start_period).map_or(100, |d| d.0.max(30)));
            }
            if !s.command.is_empty() {
                deploy["startCommand"] = json!(s.command.join(" "));
            }
            if let Some(r) = app.release.as_ref().filter(|r| &r.service == name) {
                deploy["preDeployCommand"] = json!([r.line()]);
            }
            if let Some(c) = &s.traits.cron {
                deploy["cronSchedule"] = json!(c);
            }
            let build = match &s.build {
                Some(b) => json!({"builder": "DOCKERFILE", "dockerfilePath": b.dockerfile.clone().map_or_else(|| format!("deploy/railway/dockerfiles/{name}.Dockerfile"), |d| format!("{}/{d}", b.context))}),
                None => json!({"builder": "DOCKERFILE"}),
            };
            let cfg = json!({"$schema": "https://railway.com/railway.schema.json", "build": build, "deploy": deploy});
            GeneratedFile::new(format!("{name}/railway.json"), serde_json::to_string_pretty(&cfg).expect("plain data") + "\n")
        })
        .collect()
}

pub fn heroku(app: &App) -> Vec<GeneratedFile> {
    let secrets = secrets_list(app);
    let mut env = Map::new();
    for s in app.services.values() {
        for (k, v) in &s.env {
            env.insert(k.clone(), json!({"value": v, "required": false}));
        }
    }
    for x in &secrets {
        let mut e = json!({"description": format!("{} secret used by {}", x.class, x.used_by.join(", ")), "required": true});
        if x.class == "per_install_generated" {
            e = json!({"description": "generated at app creation", "generator": "secret"});
        }
        env.insert(x.name.clone(), e);
    }
    let mut formation = Map::new();
    let mut processes = Map::new();
    for (name, s) in &app.services {
        let ptype = if s.is_public() && !formation.contains_key("web") {
            "web".to_string()
        } else {
            name.clone()
        };
        formation.insert(ptype.clone(), json!({"quantity": s.min_replicas(), "size": if s.memory().as_gib() > 0.5 { "standard-2x" } else { "basic" }}));
        processes.insert(
            ptype,
            json!(if s.command.is_empty() {
                format!("/entrypoint-{name}")
            } else {
                s.command.join(" ")
            }),
        );
    }
    let addons: Vec<Value> = app
        .dependencies
        .values()
        .filter_map(|d| match managed_family(&d.kind).as_deref() {
            Some("postgres") => {
                Some(json!({"plan": "heroku-postgresql:essential-0", "as": "DATABASE"}))
            }
            Some("redis") => Some(json!({"plan": "heroku-redis:mini", "as": "REDIS"})),
            _ => None,
        })
        .collect();
    let mut appjson = json!({"name": app.name, "description": app.description.clone().unwrap_or_else(|| format!("{} deployed by deployment-manager", app.name)), "stack": "container", "env": env, "formation": formation});
    if !addons.is_empty() {
        appjson["addons"] = Value::Array(addons);
    }
    let mut yml = Map::new();
    let build: Map<String, Value> = app
        .services
        .iter()
        .filter_map(|(n, s)| {
            s.build.as_ref().map(|b| {
                (
                    n.clone(),
                    json!(b.dockerfile.clone().map_or_else(
                        || format!("deploy/heroku/dockerfiles/{n}.Dockerfile"),
                        |d| format!("{}/{d}", b.context)
                    )),
                )
            })
        })
        .collect();
    if !build.is_empty() {
        yml.insert("build".into(), json!({"docker": build}));
    }
    // Heroku's release phase: a one-off dyno of that process's image runs
    // it after the build, before the new release takes traffic.
    if let Some(r) = &app.release {
        // The first public service is the `web` process (as above).
        let web = app
            .services
            .iter()
            .find(|(_, s)| s.is_public())
            .map(|(n, _)| n);
        let ptype = if web == Some(&r.service) {
            "web".to_string()
        } else {
            r.service.clone()
        };
        yml.insert(
            "release".into(),
            json!({"image": ptype, "command": [r.line()]}),
        );
    }
    yml.insert("run".into(), Value::Object(processes));
    let mut heroku_yml = header(app, "#");
    heroku_yml.push_str(&to_yaml(&Value::Object(yml)));
    vec![
        GeneratedFile::new(
            "app.json",
            serde_json::to_string_pretty(&appjson).expect("plain data") + "\n",
        ),
        GeneratedFile::new("heroku.yml", heroku_yml),
    ]
}

pub fn app_runner(app: &App) -> Vec<GeneratedFile> {
    let secrets = secrets_list(app);
    let mut out = Vec::new();
    for (name, s) in &app.services {
        let mut cfg = json!({"Port": s.ports.first().map_or(8080, |p| p.port).to_string()});
        if !s.env.is_empty() {
            cfg["RuntimeEnvironmentVariables"] = json!(s.env);
        }
        let mine: Map<String, Value> = secrets
            .iter()
            .filter(|x| x.used_by.contains(name))
            .map(|x| {
                (
                    x.name.clone(),
                    json!(format!(
                        "arn:aws:secretsmanager:us-east-1:ACCOUNT_ID:secret:{}/{}",
                        app.name, x.name
                    )),
                )
            })
            .collect();
        if !mine.is_empty() {
            cfg["RuntimeEnvironmentSecrets"] = Value::Object(mine);
        }
        if !s.command.is_empty() {
            cfg["StartCommand"] = json!(s.command.join(" "));
        }
        let cpu = if s.cpu().cores() <= 0.25 {
            "256"
        } else if s.cpu().cores() <= 0.5 {
            "512"
        } else if s.cpu().cores() <= 1.0 {
            "1024"
        } else if s.cpu().cores() <= 2.0 {
            "2048"
        } else {
            "4096"
        };
        let mem_gb = s.memory().as_gib();
        let memory = [0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0]
            .into_iter()
            .find(|m| *m >= mem_gb)
            .unwrap_or(12.0);
        let mut input = json!({
            "ServiceName": format!("{}-{name}", app.name),
            "SourceConfiguration": {"ImageRepository": {"ImageIdentifier": image_of(app, name, s), "ImageRepositoryType": "ECR", "ImageConfiguration": cfg}, "AutoDeploymentsEnabled": false, "AuthenticationConfiguration": {"AccessRoleArn": "arn:aws:iam::ACCOUNT_ID:role/AppRunnerECRAccess"}},
            "InstanceConfiguration": {"Cpu": cpu, "Memory": format!("{}", (memory * 1024.0) as u64), "InstanceRoleArn": format!("arn:aws:iam::ACCOUNT_ID:role/{}-{name}", app.name)},
            "NetworkConfiguration": {"IngressConfiguration": {"IsPubliclyAccessible": s.is_public()}},
        });
        if let Some(h) = &s.health {
            let mut hc = json!({"Protocol": if h.http.is_some() { "HTTP" } else { "TCP" }, "Interval": h.interval.map_or(10, |d| d.0.clamp(1, 20)), "Timeout": h.timeout.map_or(5, |d| d.0.clamp(1, 20)), "HealthyThreshold": 1, "UnhealthyThreshold": h.retries.unwrap_or(3).clamp(1, 20)});
            if let Some(p) = &h.http {
                hc["Path"] = json!(p);
            }
            input["HealthCheckConfiguration"] = hc;
        }
        out.push(GeneratedFile::new(
            format!("{name}.apprunner-service.json"),
            serde_json::to_string_pretty(&input).expect("plain data") + "\n",
        ));
    }
    out.push(GeneratedFile::new("README.txt", header(app, "").trim_start().to_string() + "Images come from ECR; App Runner's apprunner.yaml only configures source-code builds, so each service is a CreateService input:\n\n    aws apprunner create-service --cli-input-json file://<service>.apprunner-service.json\n\nApp Runner is closed to new customers since 2026-04-30.\n"));
    out
}

pub fn aci(app: &App) -> Vec<GeneratedFile> {
    let graph = crate::analyse::graph::Graph::of(app);
    let secrets = secrets_list(app);
    let mut containers = Vec::new();
    let mut public_ports = Vec::new();
    for (name, s) in &app.services {
        // One container group shares one network namespace: every peer
        // answers on localhost.
        let mut s = s.clone();
        s.env = super::peers::env_with_addresses(app, &graph, name, |_| Some("localhost".into()))
            .into_iter()
            .collect();
        let s = &s;
        // Secure values are filled in by `envsubst` from the deploying shell.
        let env = super::env_entries(
            s,
            name,
            &secrets,
            |n| json!({"name": n, "secureValue": format!("${{{n}}}")}),
        );
        let mut props = json!({"image": image_of(app, name, s), "resources": {"requests": {"cpu": (s.cpu().cores() * 10.0).ceil() / 10.0, "memoryInGB": (s.memory().as_gib() * 10.0).ceil() / 10.0}}});
        if !s.ports.is_empty() {
            props["ports"] = json!(s.ports.iter().map(|p| json!({"port": p.port, "protocol": if p.protocol == Protocol::Udp { "UDP" } else { "TCP" }})).collect::<Vec<_>>());
        }
        for p in s.ports.iter().filter(|p| p.public) {
            public_ports.push(json!({"port": p.port, "protocol": if p.protocol == Protocol::Udp { "UDP" } else { "TCP" }}));
        }
        if !env.is_empty() {
            props["environmentVariables"] = Value::Array(env);
        }
        if !s.command.is_empty() {
            props["command"] = json!(s.command);
        }
        if let Some(h) = &s.health
            && let Some(path) = &h.http
        {
            let probe = json!({"httpGet": {"path": path, "port": h.port.or(s.ports.first().map(|p| p.port)).unwrap_or(80), "scheme": "http"}, "periodSeconds": h.interval.map_or(10, |d| d.0), "timeoutSeconds": h.timeout.map_or(5, |d| d.0), "initialDelaySeconds": h.start_period.map_or(10, |d| d.0)});
            props["livenessProbe"] = probe.clone();
            props["readinessProbe"] = probe;
        }
        containers.push(json!({"name": name, "properties": props}));
    }
    for (name, d) in &app.dependencies {
        let k = known().get(&d.kind);
        if k.is_some_and(|k| k.external || k.class == "embedded") {
            continue;
        }
        let mem = d
            .memory
            .or(k.and_then(|k| k.memory))
            .map_or(0.5, |m| m.as_gib());
        containers.push(json!({"name": name, "properties": {"image": dependency_image(&d.kind, d.version.as_deref(), d.image.as_deref()), "resources": {"requests": {"cpu": 0.5, "memoryInGB": (mem * 10.0).ceil() / 10.0}}}}));
    }
    let mut props = json!({"containers": containers, "osType": "Linux", "restartPolicy": "Always"});
    if !public_ports.is_empty() {
        props["ipAddress"] =
            json!({"type": "Public", "ports": public_ports, "dnsNameLabel": app.name});
    }
    let group = json!({"apiVersion": "2021-10-01", "location": "eastus", "name": app.name, "type": "Microsoft.ContainerInstance/containerGroups", "properties": props});
    let mut text = header(app, "#");
    text.push_str("# Deploy: envsubst < aci.yaml > /dev/stdin | az container create --resource-group RG --file /dev/stdin (secrets come from the shell)\n");
    text.push_str(&to_yaml(&group));
    vec![GeneratedFile::new("aci.yaml", text)]
}

pub fn vercel(app: &App) -> Vec<GeneratedFile> {
    let max = app
        .services
        .values()
        .filter_map(|s| s.traits.long_requests)
        .map(|d| d.0)
        .max()
        .unwrap_or(60)
        .clamp(1, 800);
    let mem = app
        .services
        .values()
        .map(|s| s.memory().as_mib().round() as u64)
        .max()
        .unwrap_or(1024)
        .clamp(128, 3009);
    let cfg = json!({
        "$schema": "https://openapi.vercel.sh/vercel.json",
        "functions": {"api/**": {"maxDuration": max, "memory": mem}},
        "headers": [{"source": "/(.*)", "headers": [{"key": "X-Content-Type-Options", "value": "nosniff"}, {"key": "Referrer-Policy", "value": "strict-origin-when-cross-origin"}]}],
    });
    vec![GeneratedFile::new(
        "vercel.json",
        serde_json::to_string_pretty(&cfg).expect("plain data") + "\n",
    )]
}
