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
        let results = parse_report(&report);
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

/// Joins the swarm the e2e tests use (a single node, `swarm init` once).
fn ensure_swarm() {
    let state = Command::new("docker")
        .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .output()
        .expect("docker CLI");
    if String::from_utf8_lossy(&state.stdout).trim() != "active" {
        common::sh(Command::new("docker").args(["swarm", "init", "--advertise-addr", "127.0.0.1"]));
    }
}

/// The generated Swarm stack with the test server for every service, each
/// published on a free host port so the host can ask it.
/// Placement constraints go: they wait for node labels an operator sets.
fn swarm_test_stack(stack: &Value, app: &App, probes: &[Probe]) -> Value {
    let mut v = test_stack(stack, app, probes);
    for svc in v["services"].as_object_mut().unwrap().values_mut() {
        let port = svc["environment"]["PORT"]
            .as_str()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        svc.as_object_mut().unwrap().remove("depends_on");
        // Host mode on a free port: the routing mesh's ingress network is
        // not available on every engine (it is not on these machines).
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        svc["ports"] = json!([{"target": port, "published": free, "mode": "host"}]);
        // DNS round robin: virtual IPs need IPVS in the kernel, which these
        // machines lack (the deploy engine uses dnsrr for the same reason).
        svc["deploy"] = json!({"replicas": 1, "endpoint_mode": "dnsrr", "restart_policy": {"condition": "any"}});
    }
    v
}

fn run_swarm(label: &str, stack_name: &str, stack: &Value, probes: &[Probe]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(stack).unwrap()).unwrap();
    let mut wrong = Vec::new();
    let deploy = Command::new("docker")
        .args(["stack", "deploy", "--detach=true", "-c"])
        .arg(&file)
        .arg(stack_name)
        .output()
        .unwrap();
    if !deploy.status.success() {
        wrong.push(format!(
            "{label}: stack deploy failed: {}",
            String::from_utf8_lossy(&deploy.stderr)
        ));
    } else {
        wrong.extend(check_swarm(label, stack, probes));
    }
    let _ = Command::new("docker")
        .args(["stack", "rm", stack_name])
        .output();
    // Removal is asynchronous: wait for the stack's networks to go, so the
    // next stack does not find the address pools taken.
    for _ in 0..60 {
        let left = common::sh(Command::new("docker").args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack_name}"),
        ]));
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    wrong
}

fn check_swarm(label: &str, stack: &Value, probes: &[Probe]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, svc) in stack["services"].as_object().unwrap() {
        // The port this test chose when it wrote the stack: asking the
        // engine races with the service's endpoint being filled in.
        let port = svc["ports"][0]["published"].as_u64().unwrap() as u16;
        // Tasks start, then answer through the mesh; probes of peers that
        // are not up yet fail, so ask until all wanted calls connect.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let mut last = String::new();
        let ok = loop {
            match common::load::get(port, "/peers", None) {
                Ok((200, body)) => {
                    let results = parse_report(&body);
                    let bad: Vec<String> = probes
                        .iter()
                        .filter(|p| p.from == *name)
                        .filter(|p| results.get(p.target.as_str()) != Some(&p.want))
                        .map(|p| {
                            format!(
                                "{} should {}connect",
                                p.target,
                                if p.want { "" } else { "not " }
                            )
                        })
                        .collect();
                    if bad.is_empty() {
                        break true;
                    }
                    last = format!("{bad:?} (report: {body:?})");
                }
                other => last = format!("{other:?}"),
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        };
        if !ok {
            wrong.push(format!("{label}: {name} on published port {port}: {last}"));
        }
    }
    wrong
}

/// The same calls on a real (single-node) swarm: the generated stack.yaml's
/// overlay networks carry every call and keep unconnected services apart.
#[test]
fn every_call_connects_on_the_generated_swarm_stack() {
    common::build_test_image(IMAGE);
    ensure_swarm();
    let started = std::time::Instant::now();
    let (mut calls_n, mut isolated_n) = (0, 0);
    let mut wrong = Vec::new();
    let fixtures = fixtures();
    for (name, dir, expected) in &fixtures {
        let app = load_path(&dir.join("compose.yaml"), &[]).unwrap().app;
        let calls = calls(&app, expected);
        let isolated = isolated_pairs(&app);
        let mut probes = calls.clone();
        probes.extend(isolated.iter().cloned());
        let files = deployment_manager::render::swarm::render(&app);
        let generated: Value = serde_saphyr::from_str(&files[0].content).unwrap();
        let stack = swarm_test_stack(&generated, &app, &probes);
        wrong.extend(run_swarm(
            &format!("{name} swarm"),
            &format!("dmtopo-{name}"),
            &stack,
            &probes,
        ));
        calls_n += calls.len();
        isolated_n += isolated.len();
    }
    println!(
        "{} fixtures on swarm: {calls_n} calls connected, {isolated_n} isolated pairs refused, in {:.1} s",
        fixtures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The test server's `/peers` report: each `host:port` and whether it connected.
fn parse_report(body: &str) -> BTreeMap<&str, bool> {
    body.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(peer, r)| (peer, r == "ok"))
        .collect()
}
