//! Live topology on the real Docker Engine. Each fixture app runs twice with
//! every image replaced by the test server, which connects to the peers it
//! is given and reports each result on `/peers`:
//! - **before**: the fixture's own compose file, as its team runs it;
//! - **after**: the compose.yaml we generate from its import.
//!
//! Every call of the app's graph must connect both times, every public
//! port must answer through its published host port, and after, no two
//! services that share no generated network may reach each other.
//!
//! `DM_TOPOLOGY_ONLY=<fixture>` runs one fixture, `DM_TOPOLOGY_KEEP=1`
//! leaves the stacks up for a look, `DM_TOPOLOGY_WORKERS` sets how many
//! stacks run at once (2).

mod common;

use deployment_manager::analyse::graph::{Graph, listening_ports, runs_as_container};
use deployment_manager::describe::app::App;
use deployment_manager::describe::load_path;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: &str = "dm-topology-test:1";
const APPS: &str = "tests/fixtures/apps";

#[derive(Deserialize)]
struct Expected {
    edges: Vec<String>,
    open: Vec<String>,
}

/// One probe: `from` tries `to:port`; `want` says whether it must connect.
#[derive(Clone, Debug)]
struct Probe {
    from: String,
    target: String,
    want: bool,
}

fn ports_of(app: &App, name: &str) -> Vec<u16> {
    listening_ports(app, name).iter().map(|p| p.port).collect()
}

/// Every call the fixture says the app makes, as `from → to:port`.
fn calls(app: &App, expected: &Expected) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut push = |from: &str, to: &str, port: Option<u16>| {
        let ports = port.map_or_else(|| ports_of(app, to), |p| vec![p]);
        for port in ports {
            out.push(Probe {
                from: from.into(),
                target: format!("{to}:{port}"),
                want: true,
            });
        }
    };
    for e in &expected.edges {
        let (from, to) = e.split_once(" -> ").unwrap();
        match to.split_once(':') {
            Some((to, port)) => push(from, to, Some(port.parse().unwrap())),
            None => push(from, to, None),
        }
    }
    for from in &expected.open {
        for to in app.services.keys().chain(app.dependencies.keys()) {
            if to != from && runs_as_container(app, to) {
                push(from, to, None);
            }
        }
    }
    out
}

/// Pairs that share no network of the generated file: they must not connect.
fn isolated_pairs(app: &App) -> Vec<Probe> {
    let layout = Graph::of(app).networks(app);
    let nets = |n: &str| -> BTreeSet<String> {
        layout.joins.get(n).map_or_else(
            || BTreeSet::from(["default".to_string()]),
            |j| j.iter().cloned().collect(),
        )
    };
    let names: Vec<&String> = app
        .services
        .keys()
        .chain(app.dependencies.keys())
        .filter(|n| runs_as_container(app, n))
        .collect();
    let mut out = Vec::new();
    for a in &names {
        for b in &names {
            if a == b || !nets(a).is_disjoint(&nets(b)) {
                continue;
            }
            if let Some(port) = ports_of(app, b).first() {
                out.push(Probe {
                    from: a.to_string(),
                    target: format!("{b}:{port}"),
                    want: false,
                });
            }
        }
    }
    out
}

/// The stack with every service replaced by the test server on its ports,
/// told which peers to try. Volumes, configs, secrets and builds go (the
/// topology does not need them); networks, aliases, links and depends_on
/// stay, and public ports are published on random host ports.
fn test_stack(doc: &Value, app: &App, probes: &[Probe]) -> Value {
    let mut services = Map::new();
    for (name, svc) in doc["services"].as_object().unwrap() {
        let ports = ports_of(app, name);
        let (first, rest) = ports
            .split_first()
            .map_or((8080, &[][..]), |(f, r)| (*f, r));
        let peers: Vec<&str> = probes
            .iter()
            .filter(|p| p.from == *name)
            .map(|p| p.target.as_str())
            .collect();
        let mut out = Map::new();
        out.insert("image".into(), json!(IMAGE));
        out.insert(
            "environment".into(),
            json!({
                "PORT": first.to_string(),
                "LISTEN": rest.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
                "PEERS": peers.join(","),
            }),
        );
        out.insert(
            "healthcheck".into(),
            json!({"test": ["CMD", "/server", "healthcheck"], "interval": "1s", "retries": 60}),
        );
        let public: Vec<String> = app
            .services
            .get(name)
            .map(|s| {
                s.ports
                    .iter()
                    .filter(|p| p.public)
                    .map(|p| p.port.to_string())
                    .collect()
            })
            .unwrap_or_default();
        if !public.is_empty() {
            out.insert("ports".into(), json!(public));
        }
        for key in ["networks", "links", "hostname"] {
            if let Some(v) = svc.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(d) = svc.get("depends_on") {
            let names: Vec<String> = match d {
                Value::Object(m) => m.keys().cloned().collect(),
                other => serde_json::from_value(other.clone()).unwrap_or_default(),
            };
            out.insert("depends_on".into(), json!(names));
        }
        services.insert(name.clone(), Value::Object(out));
    }
    let mut top = Map::new();
    top.insert("services".into(), Value::Object(services));
    if let Some(n) = doc.get("networks") {
        top.insert("networks".into(), n.clone());
    }
    Value::Object(top)
}

fn compose(file: &Path, project: &str) -> Command {
    let mut c = Command::new(common::venv_bin().join("docker-compose"));
    c.arg("-f").arg(file).args(["-p", project]);
    c
}

/// Brings the stack up, runs every probe from inside, checks public ports
/// from the host, and takes it down. Returns what went wrong.
fn run(label: &str, project: &str, stack: &Value, probes: &[Probe]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(stack).unwrap()).unwrap();
    let mut wrong = Vec::new();
    let up = compose(&file, project)
        .args(["up", "-d", "--wait", "--wait-timeout", "90"])
        .output()
        .unwrap();
    if !up.status.success() {
        wrong.push(format!(
            "{label}: up failed: {}",
            String::from_utf8_lossy(&up.stderr)
        ));
    } else {
        wrong.extend(check(label, project, &file, stack, probes));
    }
    if std::env::var("DM_TOPOLOGY_KEEP").is_ok() {
        std::mem::forget(dir);
        return wrong;
    }
    let _ = compose(&file, project)
        .args(["down", "-v", "--remove-orphans", "-t", "1"])
        .output();
    wrong
}

fn check(label: &str, project: &str, file: &Path, stack: &Value, probes: &[Probe]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, svc) in stack["services"].as_object().unwrap() {
        let id = common::sh(compose(file, project).args(["ps", "-q", name]));
        let ip = common::sh(
            Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                ])
                .arg(id.trim()),
        );
        let ip = ip.split_whitespace().next().unwrap_or("").to_string();
        let port: u16 = svc["environment"]["PORT"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let report = match common::load::get_from(&ip, port, "/peers", None) {
            Ok((200, body)) => body,
            other => {
                let logs = Command::new("docker")
                    .args(["logs", "-t"])
                    .arg(id.trim())
                    .output()
                    .unwrap();
                let state = common::sh(
                    Command::new("docker")
                        .args([
                            "inspect",
                            "-f",
                            "{{.State.Status}} {{.RestartCount}} {{.State.StartedAt}}",
                        ])
                        .arg(id.trim()),
                );
                wrong.push(format!("{label}: {name} at {ip}:{port} did not report: {other:?} state {state} logs {}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr)));
                continue;
            }
        };
        let results: BTreeMap<&str, bool> = report
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(peer, r)| (peer, r == "ok"))
            .collect();
        for p in probes.iter().filter(|p| p.from == *name) {
            match results.get(p.target.as_str()) {
                Some(got) if *got == p.want => {}
                got => wrong.push(format!(
                    "{label}: {name} -> {} should {}connect (report: {got:?}; {report:?})",
                    p.target,
                    if p.want { "" } else { "not " }
                )),
            }
        }
        for public in svc
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let container_port = public.as_str().unwrap();
            let mapped = common::sh(compose(file, project).args(["port", name, container_port]));
            let host_port: u16 = mapped.trim().rsplit(':').next().unwrap().parse().unwrap();
            if !matches!(common::load::get(host_port, "/", None), Ok((200, _))) {
                wrong.push(format!("{label}: public {name}:{container_port} does not answer on host port {host_port}"));
            }
        }
    }
    wrong
}

fn fixtures() -> Vec<(String, PathBuf, Expected)> {
    let mut out: Vec<(String, PathBuf, Expected)> = std::fs::read_dir(APPS)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("compose.yaml").is_file())
        .filter(|p| std::env::var("DM_TOPOLOGY_ONLY").map_or(true, |o| p.ends_with(&o)))
        .map(|p| {
            let text = std::fs::read_to_string(p.join("graph.yaml")).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, p, serde_saphyr::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_call_connects_before_and_after_import_and_generate() {
    common::build_test_image(IMAGE);
    let started = std::time::Instant::now();
    let fixtures = fixtures();
    let next = std::sync::Mutex::new(fixtures.iter());
    let wrong = std::sync::Mutex::new(Vec::new());
    let counts = std::sync::Mutex::new((0usize, 0usize));
    std::thread::scope(|s| {
        for _ in 0..workers() {
            s.spawn(|| {
                loop {
                    let Some((name, dir, expected)) = next.lock().unwrap().next() else {
                        break;
                    };
                    let app = load_path(&dir.join("compose.yaml"), &[]).unwrap().app;
                    let calls = calls(&app, expected);
                    let source: Value = serde_saphyr::from_str(
                        &std::fs::read_to_string(dir.join("compose.yaml")).unwrap(),
                    )
                    .unwrap();
                    let before = test_stack(&source, &app, &calls);
                    let mut found = run(
                        &format!("{name} before"),
                        &format!("dmtopo-{name}-a"),
                        &before,
                        &calls,
                    );
                    let generated = deployment_manager::render::compose::compose_value(&app);
                    let mut probes = calls.clone();
                    let isolated = isolated_pairs(&app);
                    probes.extend(isolated.iter().cloned());
                    let after = test_stack(&generated, &app, &probes);
                    found.extend(run(
                        &format!("{name} after"),
                        &format!("dmtopo-{name}-b"),
                        &after,
                        &probes,
                    ));
                    let mut c = counts.lock().unwrap();
                    c.0 += calls.len();
                    c.1 += isolated.len();
                    wrong.lock().unwrap().extend(found);
                }
            });
        }
    });
    let (calls, isolated) = counts.into_inner().unwrap();
    println!(
        "{} fixtures: {calls} calls connected before and after, {isolated} isolated pairs refused, in {:.1} s",
        fixtures.len(),
        started.elapsed().as_secs_f64()
    );
    let wrong = wrong.into_inner().unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn workers() -> usize {
    std::env::var("DM_TOPOLOGY_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}
