//! The service graph on apps of real shapes (tests/fixtures/apps): every
//! import finds exactly the calls the app makes, and the generated
//! Kubernetes NetworkPolicies allow those calls and nothing else, as an
//! independent analyser (network-config-analyzer) reads them.

mod common;

use deployment_manager::analyse::graph::{Graph, PortSpec, Reach, listening_ports};
use deployment_manager::describe::app::App;
use deployment_manager::describe::load_path;
use deployment_manager::render::gateway::Routing;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const APPS: &str = "tests/fixtures/apps";

#[derive(Deserialize)]
struct Expected {
    edges: Vec<String>,
    open: Vec<String>,
}

/// Every fixture source (compose file, manifest folder) with its expected graph.
fn sources() -> Vec<(PathBuf, Expected)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(APPS)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("graph.yaml"))
            .unwrap_or_else(|e| panic!("{}: graph.yaml: {e}", dir.display()));
        for source in [dir.join("compose.yaml"), dir.join("k8s")] {
            if source.exists() {
                let expected: Expected = serde_saphyr::from_str(&text).unwrap();
                out.push((source, expected));
            }
        }
    }
    assert!(out.len() >= 12, "fixtures missing: {}", out.len());
    out
}

fn load(source: &Path) -> App {
    load_path(source, &[])
        .unwrap_or_else(|e| panic!("{}: {e:?}", source.display()))
        .app
}

/// "from -> to:port" or "from -> to" (every port of the peer).
fn parse_edge(app: &App, line: &str) -> (String, String, Reach) {
    let (from, to) = line.split_once(" -> ").expect("`from -> to`");
    let (to, reach) = match to.split_once(':') {
        Some((to, port)) => (
            to,
            Reach::Ports(BTreeSet::from([PortSpec {
                port: port.parse().unwrap(),
                udp: false,
            }])),
        ),
        None => {
            let ports = listening_ports(app, to);
            (
                to,
                if ports.is_empty() {
                    Reach::AnyPort
                } else {
                    Reach::Ports(ports)
                },
            )
        }
    };
    (from.to_string(), to.to_string(), reach)
}

#[test]
fn imports_find_exactly_the_calls_each_app_makes() {
    let mut wrong = Vec::new();
    for (source, expected) in sources() {
        let app = load(&source);
        let graph = Graph::of(&app);
        let want: BTreeSet<String> = expected
            .edges
            .iter()
            .map(|e| {
                let (f, t, r) = parse_edge(&app, e);
                format!("{f} -> {t} {r:?}")
            })
            .collect();
        let got: BTreeSet<String> = graph
            .edges
            .iter()
            .filter(|e| !graph.open.contains(&e.from))
            .map(|e| format!("{} -> {} {:?}", e.from, e.to, e.reach))
            .collect();
        if want != got || graph.open != expected.open {
            wrong.push(format!(
                "{}:\n  missing: {:?}\n  extra: {:?}\n  open: {:?} (want {:?})",
                source.display(),
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>(),
                graph.open,
                expected.open
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What network-config-analyzer says may connect inside the app's
/// namespace: (from, to) → the ports allowed (`None`: every port).
type Allowed = BTreeMap<(String, String), Option<BTreeSet<PortSpec>>>;

fn nca(dir: &Path, namespace: &str) -> Allowed {
    let out = common::sh(
        Command::new(common::venv_bin().join("nca"))
            .arg("--connectivity")
            .arg("--resource_list")
            .arg(dir)
            .args(["--output_format", "txt_no_fw_rules"])
            .args(["--output_endpoints", "deployments"]),
    );
    let workload = |side: &str| -> Option<String> {
        let (ns, rest) = side.trim().split_once('/')?;
        (ns == namespace).then(|| rest.split('[').next().unwrap_or(rest).to_string())
    };
    let mut allowed = Allowed::new();
    for line in out.lines() {
        let Some((pair, conn)) = line.split_once(" : ") else {
            continue;
        };
        let Some((a, b)) = pair.split_once(" => ") else {
            continue;
        };
        let (Some(a), Some(b)) = (workload(a), workload(b)) else {
            continue;
        };
        allowed.insert((a, b), parse_connections(conn));
    }
    allowed
}

/// `All connections` or `{protocols:TCP,dst_ports:80,8000-8001},{…}`.
fn parse_connections(conn: &str) -> Option<BTreeSet<PortSpec>> {
    if conn.trim() == "All connections" {
        return None;
    }
    let mut ports = BTreeSet::new();
    for group in conn.split('}') {
        let group = group.trim_start_matches([',', '{', ' ']);
        if group.is_empty() {
            continue;
        }
        let (protocols, dst) = group.split_once("dst_ports:")?;
        let udp = protocols.contains("UDP");
        let tcp = protocols.contains("TCP");
        for item in dst.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (lo, hi) = item.split_once('-').unwrap_or((item, item));
            let (lo, hi): (u16, u16) = (lo.parse().ok()?, hi.parse().ok()?);
            for port in lo..=hi {
                if tcp {
                    ports.insert(PortSpec { port, udp: false });
                }
                if udp {
                    ports.insert(PortSpec { port, udp: true });
                }
            }
        }
    }
    Some(ports)
}

fn check_policies(label: &str, app: &App, failures: &mut Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    for f in deployment_manager::render::kubernetes::render(app, &Routing::for_target("k8s-doks")) {
        let path = dir.path().join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.content).unwrap();
    }
    let allowed = nca(dir.path(), &app.name);
    let graph = Graph::of(app);
    let has_pod =
        |n: &str| allowed.keys().any(|(a, b)| a == n || b == n) || app.services.contains_key(n);
    for e in &graph.edges {
        if !has_pod(&e.to) && app.dependencies.contains_key(&e.to) {
            continue; // external or embedded: no pod to reach
        }
        let ok = match (allowed.get(&(e.from.clone(), e.to.clone())), &e.reach) {
            (None, _) => false,
            (Some(None), _) => true,
            (Some(Some(_)), Reach::AnyPort) => false,
            (Some(Some(got)), Reach::Ports(want)) => want.is_subset(got),
        };
        if !ok {
            failures.push(format!(
                "{label}: {} -> {} {:?} is blocked (allowed: {:?})",
                e.from,
                e.to,
                e.reach,
                allowed.get(&(e.from.clone(), e.to.clone()))
            ));
        }
    }
    for ((a, b), ports) in &allowed {
        let Some(e) = graph.edges.iter().find(|e| e.from == *a && e.to == *b) else {
            failures.push(format!(
                "{label}: {a} -> {b} is allowed but not in the graph"
            ));
            continue;
        };
        if let (Reach::Ports(want), Some(got)) = (&e.reach, ports)
            && !got.is_subset(want)
        {
            failures.push(format!(
                "{label}: {a} -> {b} allows {got:?}, more than {want:?}"
            ));
        }
        if let (Reach::Ports(want), None) = (&e.reach, ports) {
            failures.push(format!(
                "{label}: {a} -> {b} allows every port, not only {want:?}"
            ));
        }
    }
}

#[test]
fn network_policies_allow_every_call_and_nothing_else() {
    let started = std::time::Instant::now();
    let mut apps: Vec<(String, App)> = sources()
        .into_iter()
        .map(|(source, _)| (source.display().to_string(), load(&source)))
        .collect();
    for example in std::fs::read_dir("examples").unwrap().flatten() {
        let path = example.path().join("app.yaml");
        apps.push((path.display().to_string(), load(&path)));
    }
    // The analyser is a Python process per app: run them side by side.
    let next = std::sync::Mutex::new(apps.iter());
    let failures = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some((label, app)) = next.lock().unwrap().next() else {
                        break;
                    };
                    let mut found = Vec::new();
                    check_policies(label, app, &mut found);
                    failures.lock().unwrap().extend(found);
                }
            });
        }
    });
    println!(
        "network-config-analyzer checked {} apps in {:.1} s",
        apps.len(),
        started.elapsed().as_secs_f64()
    );
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fixtures are what their own tools accept: each compose file passes
/// `docker-compose config` (Compose v5), each manifest kubernetes-validate.
#[test]
fn fixtures_are_accepted_by_compose_and_kubernetes() {
    let bin = common::venv_bin();
    for (source, _) in sources() {
        if source.is_dir() {
            for file in std::fs::read_dir(&source).unwrap().flatten() {
                let text = common::sh(
                    Command::new(bin.join("kubernetes-validate"))
                        .args(["--strict", "-k", "1.33.0"])
                        .arg(file.path()),
                );
                assert!(!text.contains("ERROR"), "{}: {text}", file.path().display());
            }
        } else {
            common::sh(
                Command::new(bin.join("docker-compose"))
                    .arg("-f")
                    .arg(&source)
                    .args(["config", "-q"]),
            );
        }
    }
}

/// gRPC health probes survive the round trip: imported as `health.grpc`,
/// rendered as native `grpc` probes that kubernetes-validate accepts, and
/// as a port check in Compose (images rarely ship a gRPC client).
#[test]
fn grpc_health_probes_round_trip() {
    let app = load(Path::new("tests/fixtures/apps/shop-grpc/k8s"));
    for name in [
        "cart", "catalog", "currency", "checkout", "payment", "email",
    ] {
        let h = app.services[name].health.as_ref().unwrap();
        assert!(h.grpc.is_some(), "{name}: {h:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let files =
        deployment_manager::render::kubernetes::render(&app, &Routing::for_target("k8s-doks"));
    let cart = files.iter().find(|f| f.path == "cart.yaml").unwrap();
    let docs: Vec<serde_json::Value> = cart
        .content
        .split("\n---")
        .filter_map(|d| serde_saphyr::from_str(d).ok())
        .collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["grpc"]["port"], 7070);
    std::fs::write(dir.path().join("cart.yaml"), &cart.content).unwrap();
    let text = common::sh(
        Command::new(common::venv_bin().join("kubernetes-validate"))
            .args(["--strict", "-k", "1.33.0"])
            .arg(dir.path().join("cart.yaml")),
    );
    assert!(!text.contains("ERROR"), "{text}");
    let compose = deployment_manager::render::compose::compose_value(&app);
    assert_eq!(
        compose["services"]["cart"]["healthcheck"]["test"][1],
        "nc -z 127.0.0.1 7070 || exit 1"
    );
}
