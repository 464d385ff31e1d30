//! Imports of real-world-shaped Compose files and Kubernetes manifests:
//! snapshots of the resulting app description and of the per-key report.

mod common;

use deployment_manager::describe::compose::{ComposeOptions, import_compose};
use deployment_manager::describe::findings::Severity;
use deployment_manager::describe::kubernetes::import_manifests;
use std::collections::HashMap;
use std::path::Path;

fn compose_full() -> deployment_manager::describe::compose::ComposeImport {
    let src = std::fs::read_to_string("tests/fixtures/compose/full.yml").unwrap();
    let env: HashMap<String, String> = [("DB_PASSWORD", "s3cret")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = ComposeOptions {
        env,
        profiles: vec![],
        base_dir: Some("tests/fixtures/compose".into()),
        ..Default::default()
    };
    import_compose("full.yml", &src, &opts).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn compose_import_snapshot() {
    let c = compose_full();
    insta::assert_yaml_snapshot!("compose_full_app", c.app);
    let report: Vec<String> = c
        .findings
        .0
        .iter()
        .map(|f| format!("{} {}: {}", f.severity, f.path, f.message))
        .collect();
    insta::assert_yaml_snapshot!("compose_full_findings", report);
}

#[test]
fn compose_import_semantics() {
    let c = compose_full();
    let app = &c.app;
    assert_eq!(app.name, "shop");
    // Well-known images become dependencies; the edge proxy is dropped.
    assert_eq!(app.dependencies["db"].kind, "postgres");
    assert_eq!(app.dependencies["cache"].kind, "redis");
    assert!(!app.services.contains_key("proxy"));
    // Profiles: `worker` is only in the `jobs` profile.
    assert!(!app.services.contains_key("worker"));
    let web = &app.services["web"];
    assert_eq!(web.replicas, Some(2));
    assert_eq!(web.env["PORT"], "3000", "default from ${{WEB_PORT:-3000}}");
    assert_eq!(
        web.health.as_ref().unwrap().http.as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        web.build.as_ref().unwrap().dockerfile.as_deref(),
        Some("Dockerfile.prod")
    );
    assert!(
        web.ports
            .iter()
            .any(|p| p.port == 3000 && p.public && p.published == Some(80))
    );
    let api = &app.services["api"];
    assert!(api.traits.spawns_containers, "docker.sock mount");
    assert!(api.secrets.contains(&"DATABASE_URL".to_string()));
    assert!(
        api.secrets.contains(&"API_TOKEN".to_string()),
        "from env_file"
    );
    assert_eq!(
        api.env["LOG_LEVEL"], "info",
        "environment overrides env_file"
    );
    assert!(
        api.volumes
            .iter()
            .any(|v| v.host_path.as_deref() == Some("./config"))
    );
    // Nothing silently dropped.
    let paths: Vec<&str> = c.findings.0.iter().map(|f| f.path.as_str()).collect();
    for key in [
        "services.mystery.frobnicate",
        "services.api.cap_add",
        "services.web.build.target",
        "version",
        "x-common",
        "services.proxy",
        "services.worker.profiles",
    ] {
        assert!(paths.contains(&key), "no finding for {key}: {paths:?}");
    }
    let cap = c
        .findings
        .0
        .iter()
        .find(|f| f.path == "services.api.cap_add")
        .unwrap();
    assert_eq!(cap.per_target["paas"], Severity::Error);
    assert_eq!(cap.per_target["vm"], Severity::Info);
    let yaml = serde_saphyr::to_string(&c.app).unwrap();
    assert!(!yaml.contains("sk_live_notreal") && !yaml.contains("s3cret") && !yaml.contains("abc"));
}

#[test]
fn compose_profiles_and_required_variables() {
    let src = std::fs::read_to_string("tests/fixtures/compose/full.yml").unwrap();
    let opts = ComposeOptions {
        profiles: vec!["jobs".into()],
        ..ComposeOptions::default()
    };
    let c = import_compose("full.yml", &src, &opts).unwrap();
    assert!(c.app.services.contains_key("worker"));
    let bad = "services:\n  a:\n    image: \"x:${TAG:?set TAG first}\"\n";
    let e = import_compose("c.yml", bad, &ComposeOptions::default())
        .err()
        .expect("required variable");
    assert!(e.message.contains("set TAG first"));
    assert_eq!((e.line, e.column), (3, 12));
}

#[test]
fn kubernetes_import_snapshot_and_semantics() {
    let k = import_manifests(Path::new("tests/fixtures/k8s")).unwrap_or_else(|e| panic!("{e:?}"));
    insta::assert_yaml_snapshot!("k8s_app", k.app);
    let app = &k.app;
    assert_eq!(app.name, "coding-platform");
    let backend = &app.services["backend"];
    assert!(backend.ports[0].public, "exposed through the Ingress");
    assert_eq!(backend.autoscaling.as_ref().unwrap().max, 10);
    assert_eq!(backend.secrets, vec!["DATABASE_URL".to_string()]);
    assert_eq!(backend.env["FASTAPI_ENV"], "production");
    assert!(
        backend.traits.spawns_containers,
        "its service account may create pods"
    );
    assert_eq!(
        app.dependencies["postgres"].size.unwrap().to_string(),
        "20Gi"
    );
    assert_eq!(
        app.services["cleanup"].traits.cron.as_deref(),
        Some("*/30 * * * *")
    );
    let text = serde_saphyr::to_string(app).unwrap();
    assert!(
        !text.contains("never-read"),
        "Secret values must not be imported"
    );
    assert!(k.findings.0.iter().any(|f| f.message.contains("sidecar")));
    assert!(
        k.findings
            .0
            .iter()
            .any(|f| f.path.contains("PodDisruptionBudget"))
    );
}

#[test]
fn inexpressible_compose_is_a_located_error_not_a_bad_app() {
    let cases = [
        (
            "services:\n  a:\n    image: nginxinc/app\n    ports: [\"0:0\"]\n",
            (4, 13),
            "port 0",
        ),
        (
            "services:\n  a_b:\n    image: one\n  a-b:\n    image: two\n",
            (4, 3),
            "already has",
        ),
        (
            "services:\n  a:\n    image: one\n    depends_on: [ghost]\n",
            (4, 5),
            "not defined",
        ),
        (
            "services:\n  a:\n    image: one\n    depends_on: [b]\n  b:\n    image: two\n    depends_on: [a]\n",
            (4, 5),
            "cycle",
        ),
        (
            "services:\n  a:\n    image: one\n    volumes: [\"data:relative/path\"]\nvolumes: {data: {}}\n",
            (4, 15),
            "must be absolute",
        ),
    ];
    for (src, (line, col), needle) in cases {
        let e = import_compose("c.yml", src, &ComposeOptions::default())
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{src}"));
        assert!(e.message.contains(needle), "{}: {src}", e.message);
        assert_eq!((e.line, e.column), (line, col), "{}: {src}", e.message);
    }
}

/// Compose's project-name rules: COMPOSE_PROJECT_NAME, then `name:`, then
/// the folder the file is in (also when named relative to the current one).
#[test]
fn compose_apps_are_named_as_compose_names_projects() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("WordPress_MySQL");
    std::fs::create_dir(&folder).unwrap();
    let plain = "services:\n  web:\n    image: shop/web:1\n";
    std::fs::write(folder.join("docker-compose.yml"), plain).unwrap();
    let file = folder.join("docker-compose.yml").display().to_string();
    let name_of = |src: &str, env: &[(&str, &str)]| {
        let opts = ComposeOptions {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        import_compose(&file, src, &opts).unwrap().app.name
    };
    assert_eq!(name_of(plain, &[]), "wordpress-mysql");
    let named = format!("name: shop\n{plain}");
    assert_eq!(name_of(&named, &[]), "shop");
    assert_eq!(name_of(&named, &[("COMPOSE_PROJECT_NAME", "Blog")]), "blog");
    // Relative to the current folder, through the CLI.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(["import", "docker-compose.yml", "--json"])
        .current_dir(&folder)
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["app"]["name"], "wordpress-mysql", "{v}");
    assert!(
        v.to_string().contains("after its folder"),
        "the name's origin is a finding: {v}"
    );
}

/// Probes of every kind are carried over or named in a finding, named ports
/// resolve, and a port's protocol follows its name whether the container or
/// the Service gives it.
#[test]
fn kubernetes_probes_and_named_ports_are_carried_or_reported() {
    let k =
        import_manifests(Path::new("tests/fixtures/k8s-grpc")).unwrap_or_else(|e| panic!("{e:?}"));
    let svc = |n: &str| &k.app.services[n];
    let protocol = |n: &str| format!("{:?}", svc(n).ports[0].protocol);
    assert_eq!(protocol("cart"), "Grpc");
    assert_eq!(protocol("checkout"), "Grpc");
    assert_eq!(protocol("web"), "Http");
    let web = svc("web").health.as_ref().unwrap();
    assert_eq!(
        (web.http.as_deref(), web.port),
        (Some("/healthz"), Some(8080))
    );
    let cart = svc("cart").health.as_ref().unwrap();
    assert_eq!(cart.grpc.as_ref().map(|g| g.port), Some(7070));
    let said: Vec<String> = k.findings.0.iter().map(|f| f.message.clone()).collect();
    let about = |probe: &str, service: &str, what: &str| {
        said.iter()
            .any(|m| m.contains(&format!("`{probe}` of `{service}`")) && m.contains(what))
    };
    assert!(
        about("readinessProbe", "cart", "gRPC health probe on port 7070"),
        "{said:#?}"
    );
    assert!(
        !said.iter().any(|m| m.contains("`livenessProbe` of `cart`")),
        "the same check twice is carried, not reported: {said:#?}"
    );
    assert!(
        about("livenessProbe", "web", "names port `metrics`"),
        "{said:#?}"
    );
}

/// A compose file whose only service is a web server serving its own
/// mounted site imports, with that server as the app; beside an app
/// service the same server is still an edge proxy the targets replace.
#[test]
fn a_web_server_that_is_the_whole_app_is_kept() {
    let site = "services:\n  web:\n    image: nginx:1.27-alpine\n    ports: [\"8080:80\"]\n    volumes: [\"./site:/usr/share/nginx/html:ro\"]\n";
    let k = import_compose("docker-compose.yml", site, &ComposeOptions::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let web = &k.app.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.27-alpine"));
    assert_eq!(web.ports[0].port, 80);
    assert!(web.ports[0].public);
    assert_eq!(web.volumes[0].host_path.as_deref(), Some("./site"));
    let said: Vec<&str> = k.findings.0.iter().map(|f| f.message.as_str()).collect();
    assert!(
        said.iter().any(|m| m.contains("imported as its service")),
        "{said:#?}"
    );
    assert!(
        !said.iter().any(|m| m.contains("is an edge proxy")),
        "{said:#?}"
    );

    let fronted = format!("{site}  api:\n    image: shop/api:1\n    ports: [\"9000:9000\"]\n");
    let k = import_compose("docker-compose.yml", &fronted, &ComposeOptions::default()).unwrap();
    assert!(!k.app.services.contains_key("web"));
    assert!(k.app.services.contains_key("api"));

    // A bare proxy with nothing to serve is still no app.
    let bare = "services:\n  proxy:\n    image: nginx:1.27\n";
    let Err(e) = import_compose("docker-compose.yml", bare, &ComposeOptions::default()) else {
        panic!("a bare proxy imported");
    };
    assert!(e.to_string().contains("no application service left"), "{e}");
}

/// Nothing dropped in silence: every key of every Kubernetes fixture is read
/// by the import or named in a finding, and what is read shows up in the
/// app (images, ports, commands, plain env values, probe paths).
#[test]
fn every_key_of_every_manifest_fixture_is_carried_or_named() {
    use deployment_manager::describe::compose::sanitize_name;
    use deployment_manager::describe::kubernetes_keys::{is_read, leaves};
    let mut folders = vec![
        "tests/fixtures/k8s".to_string(),
        "tests/fixtures/k8s-grpc".to_string(),
    ];
    for app in std::fs::read_dir("tests/fixtures/apps").unwrap().flatten() {
        if app.path().join("k8s").is_dir() {
            folders.push(app.path().join("k8s").display().to_string());
        }
    }
    let (mut keys, mut named, mut dropped) = (0, 0, Vec::new());
    for folder in &folders {
        let k = import_manifests(Path::new(folder)).unwrap_or_else(|e| panic!("{e:?}"));
        let yaml = serde_saphyr::to_string(&k.app).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).unwrap();
            for doc in docs.iter().filter(|d| !d.is_null()) {
                let kind = doc["kind"].as_str().unwrap_or("");
                let at = format!(
                    "{}:{kind}/{}",
                    file.display(),
                    doc["metadata"]["name"].as_str().unwrap_or("unnamed")
                );
                let said: Vec<&str> = k
                    .findings
                    .0
                    .iter()
                    .filter(|f| f.path.starts_with(&at))
                    .map(|f| f.message.as_str())
                    .collect();
                for path in leaves(doc) {
                    keys += 1;
                    let dotted = path.join(".");
                    let name = doc["metadata"]["name"].as_str().unwrap_or("");
                    let dependency = k.app.dependencies.contains_key(&sanitize_name(name));
                    if !is_read(kind, &path, dependency) {
                        if said.iter().any(|m| m.contains(&dotted)) {
                            named += 1;
                        } else {
                            dropped.push(format!("{at} {dotted}"));
                        }
                        continue;
                    }
                    // Read values that must appear in the app as written.
                    let last = path.last().unwrap().as_str();
                    let value = path.iter().try_fold(doc, |v, seg| match v {
                        serde_json::Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
                        other => other.get(seg),
                    });
                    let carried = matches!(last, "image" | "containerPort")
                        || (path.contains(&"command".to_string())
                            || path.contains(&"args".to_string()))
                        || (last == "path" && path.iter().any(|p| p.ends_with("Probe")));
                    let main = path.windows(2).any(|w| w[0] == "containers" && w[1] == "0");
                    // A dependency's port and image options follow its kind.
                    if carried && main && !dependency {
                        let text = match value {
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => continue,
                        };
                        // A second probe that checks something else is named instead.
                        let probe_named = path.iter().any(|p| {
                            p.ends_with("Probe")
                                && said.iter().any(|m| m.contains(&format!("`{p}`")))
                        });
                        assert!(
                            yaml.contains(&text) || probe_named,
                            "{at} {dotted} = {text} not in the app:\n{yaml}"
                        );
                    }
                }
            }
        }
    }
    println!(
        "{keys} keys in {} folders: {named} named in findings, {} dropped",
        folders.len(),
        dropped.len()
    );
    assert!(
        dropped.is_empty(),
        "dropped in silence:\n{}",
        dropped.join("\n")
    );
}

/// A one-off service that the web service waits for
/// (`service_completed_successfully`) and a migrating init container are
/// both the release command: once per release, not once per start.
#[test]
fn one_off_migrations_become_the_release_command() {
    use deployment_manager::describe::load_path;
    for source in [
        "tests/fixtures/release/compose.yaml",
        "tests/fixtures/release/k8s",
    ] {
        let l = load_path(Path::new(source), &[]).unwrap_or_else(|e| panic!("{source}: {e:?}"));
        let r = l
            .app
            .release
            .as_ref()
            .unwrap_or_else(|| panic!("{source}: no release command"));
        assert_eq!(r.service, "web", "{source}");
        assert_eq!(
            r.command,
            ["python", "manage.py", "migrate", "--noinput"],
            "{source}"
        );
        assert!(
            !l.app.services.contains_key("migrate"),
            "{source}: the one-off is not a service"
        );
        assert!(
            l.app.services["web"]
                .depends_on
                .iter()
                .all(|d| d != "migrate"),
            "{source}"
        );
        assert!(
            l.findings
                .0
                .iter()
                .any(|f| f.message.contains("imported as the release command")),
            "{source}"
        );
    }
}

#[test]
fn swarm_placement_carries_into_app_yaml_the_stack_file_and_kubernetes() {
    let src = std::fs::read_to_string("tests/fixtures/compose/swarm-placement.yml").unwrap();
    let opts = ComposeOptions {
        base_dir: Some("tests/fixtures/compose".into()),
        ..Default::default()
    };
    let c = import_compose("swarm-placement.yml", &src, &opts).unwrap_or_else(|e| panic!("{e:?}"));
    let web = c.app.services["web"].placement.clone().unwrap();
    assert_eq!(
        web.constraints,
        ["node.role == worker", "node.platform.arch == x86_64"]
    );
    assert_eq!(web.spread, ["zone"]);
    assert_eq!(web.max_per_node, Some(2));
    let db = c.app.dependencies["db"].placement.clone().unwrap();
    assert_eq!(db.constraints, ["node.labels.db == true"]);
    // `=` is not swarm's operator: reported where it is, not carried.
    assert!(c.app.services["worker"].placement.is_none());
    assert!(
        c.findings.0.iter().any(|f| f.path.contains("worker")
            && f.path.contains("constraints[0]")
            && f.message.contains("`==` or `!=`")),
        "{:?}",
        c.findings.0
    );

    // The stack file keeps the declared placement (not the default pin).
    let stack_file = deployment_manager::render::swarm::render(&c.app);
    let stack: serde_json::Value = serde_saphyr::from_str(&stack_file[0].content).unwrap();
    let web_p = &stack["services"]["web"]["deploy"]["placement"];
    assert_eq!(web_p["preferences"][0]["spread"], "node.labels.zone");
    assert_eq!(web_p["max_replicas_per_node"], 2);
    assert_eq!(
        stack["services"]["db"]["deploy"]["placement"]["constraints"][0],
        "node.labels.db == true"
    );

    // Kubernetes: node-label, OS and architecture constraints as required
    // node affinity (x86_64 is amd64 there), spread as topology spread;
    // the swarm role has no counterpart.
    let routing = deployment_manager::render::gateway::Routing::for_target("k8s-doks");
    let objects = deployment_manager::render::kubernetes::objects(&c.app, &routing);
    let all: Vec<&serde_json::Value> = objects.iter().flat_map(|(_, d)| d).collect();
    let pod = |kind: &str, name: &str| {
        all.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .map(|o| o["spec"]["template"]["spec"].clone())
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let web_pod = pod("Deployment", "web");
    let terms = &web_pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"];
    assert_eq!(
        terms,
        &serde_json::json!([{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}])
    );
    assert_eq!(
        web_pod["topologySpreadConstraints"][0]["topologyKey"],
        "zone"
    );
    let db_pod = pod("StatefulSet", "db");
    assert_eq!(
        db_pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0],
        serde_json::json!({"key": "db", "operator": "In", "values": ["true"]})
    );

    // Both pass the independent validators: Compose v5 reads the stack
    // file's placement, kubernetes-validate the pods' scheduling.
    let bin = common::venv_bin();
    let dir = tempfile::tempdir().unwrap();
    let stack_path = dir.path().join("stack.yml");
    std::fs::write(&stack_path, &stack_file[0].content).unwrap();
    common::sh(
        std::process::Command::new(bin.join("docker-compose"))
            .arg("-f")
            .arg(&stack_path)
            .args(["config", "-q"])
            .env("DB_PASSWORD", "x"),
    );
    for (kind, name) in [("Deployment", "web"), ("StatefulSet", "db")] {
        let doc = all
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap();
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, doc.to_string()).unwrap();
        let text = common::sh(
            std::process::Command::new(bin.join("kubernetes-validate"))
                .args(["--strict", "-k", "1.37.0"])
                .arg(&path),
        );
        assert!(!text.contains("ERROR"), "{kind} {name}: {text}");
    }
}

#[test]
fn a_kubernetes_node_selector_becomes_placement_constraints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      nodeSelector:
        kubernetes.io/arch: amd64
        pool: general
      containers:
        - name: api
          image: ghcr.io/acme/api:1.4.0
          ports: [{containerPort: 8000}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {kubernetes.io/hostname: db-node-1}
      containers:
        - name: db
          image: postgres:16
          ports: [{containerPort: 5432}]
"#,
    )
    .unwrap();
    let k = import_manifests(dir.path()).unwrap_or_else(|e| panic!("{e:?}"));
    let api = k.app.services["api"].placement.clone().unwrap();
    assert_eq!(
        api.constraints,
        ["node.platform.arch==x86_64", "node.labels.pool==general"]
    );
    let db = k.app.dependencies["db"].placement.clone().unwrap();
    assert_eq!(db.constraints, ["node.hostname==db-node-1"]);
    // Read, so not reported as dropped.
    assert!(
        !k.findings.0.iter().any(|f| f.path.contains("nodeSelector")),
        "{:?}",
        k.findings.0
    );
}
