//! Deploys across real hosts: a 3-node swarm and 2 Docker hosts reached
//! over SSH, each a network namespace with its own dockerd, made by
//! `scripts/multi-host.sh up` (scripts/test.sh runs it). Images reach the
//! nodes only through the deploy's own shipping: the test builds them on
//! this machine's engine (or gives a build context) and removes them from
//! every node first. Load runs through the public entry point of each
//! node and no request may fail.

mod common;

use common::load::{Load, Sample};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const IMAGE: &str = "dm-e2e/server:1";

/// The hosts `scripts/multi-host.sh up` made, from its env file.
struct Rig {
    swarm_nodes: Vec<String>,
    swarm_addrs: Vec<String>,
    ssh_hosts: Vec<String>,
    ssh_addrs: Vec<String>,
    ssh_socks: Vec<String>,
}

fn rig() -> Option<Rig> {
    let dir = std::env::var("DM_RIG_DIR").unwrap_or_else(|_| "/tmp/dm-rig".into());
    let Ok(text) = std::fs::read_to_string(format!("{dir}/env")) else {
        let why = format!(
            "no test hosts in {dir}: run `bash scripts/multi-host.sh up` (scripts/test.sh does)"
        );
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return None;
    };
    let get = |k: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    Some(Rig {
        swarm_nodes: get("DM_RIG_SWARM_NODES"),
        swarm_addrs: get("DM_RIG_SWARM_ADDRS"),
        ssh_hosts: get("DM_RIG_SSH_HOSTS"),
        ssh_addrs: get("DM_RIG_SSH_ADDRS"),
        ssh_socks: get("DM_RIG_SSH_SOCKS"),
    })
}

/// One multi-host test at a time: all nodes share 2 cores.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    static IMAGE_BUILT: OnceLock<()> = OnceLock::new();
    IMAGE_BUILT.get_or_init(|| common::build_test_image(IMAGE));
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// `docker` against one of the rig's engines (by its socket).
fn docker(sock: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(sock)
        .args(args)
        .output()
        .expect("docker CLI")
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Leaves nothing of `profile` or of `image_repo` on the engines, so the
/// deploy has to ship (or build) every image itself.
fn purge(socks: &[String], profile: &str, image_repo: &str) {
    let label = format!("label=dm.profile={profile}");
    for s in socks {
        let services = lines(&docker(s, &["service", "ls", "-q", "--filter", &label]));
        if !services.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(services.iter().map(String::as_str));
            docker(s, &args);
        }
    }
    for s in socks {
        for _ in 0..40 {
            let left = lines(&docker(s, &["ps", "-aq", "--filter", &label]));
            if left.is_empty() {
                break;
            }
            let mut args = vec!["rm", "-f"];
            args.extend(left.iter().map(String::as_str));
            docker(s, &args);
            std::thread::sleep(Duration::from_millis(250));
        }
        let images = lines(&docker(s, &["images", "-q", image_repo]));
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            docker(s, &args);
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
    profile: String,
    port: u16,
    /// The service's image line (`image: …` or a `build:` block).
    image: String,
}

impl Env {
    fn new(profile: &str, port: u16, image: &str, settings: &[(&str, &str)]) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            profile: profile.into(),
            port,
            image: image.into(),
        };
        let app = env.app("v1");
        ok(env.dm(&["profile", "create", profile, app.to_str().unwrap()]));
        for (k, v) in settings {
            ok(env.dm(&["profile", "set", profile, k, v]));
        }
        env
    }

    /// One public service of 2 replicas with a second of start-up, gated
    /// by the image's own probe.
    fn app(&self, version: &str) -> PathBuf {
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: {p}\nservices:\n  web:\n    {image}\n    ports:\n      - port: 8080\n        public: true\n        published: {port}\n    env:\n      VERSION: {version}\n      STARTUP_DELAY_MS: \"1000\"\n    replicas: 2\n    health:\n      command: [\"/server\", \"healthcheck\"]\n      interval: 1s\n      retries: 2\n      start_period: 4s\n",
            p = self.profile,
            port = self.port,
            image = self.image,
        );
        let path = self.dir.path().join(format!("app-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn dm(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(args)
            .env("DEPLOYMENT_MANAGER_STATE", self.dir.path().join("state.db"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run deployment-manager")
    }

    fn deploy(&self, version: &str, flags: &[&str]) -> Output {
        let app = self.app(version);
        let mut args = vec![
            "deploy",
            &self.profile,
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "1s",
        ];
        args.extend_from_slice(flags);
        self.dm(&args)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.dm(&["destroy", &self.profile, "--volumes"]);
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CANARY: [&str; 8] = [
    "--strategy",
    "canary",
    "--canary-steps",
    "50,100",
    "--pause",
    "2s",
    "--analysis-interval",
    "1s",
];

/// Every request of every load succeeded; returns how many there were.
fn none_failed(loads: Vec<Load>) -> usize {
    let mut all: Vec<Sample> = Vec::new();
    for l in loads {
        all.extend(l.samples());
    }
    let failed: Vec<&Sample> = all.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}",
        failed.len(),
        all.len(),
        failed.first().map(|f| &f.1)
    );
    assert!(all.len() > 300, "the load sent only {} requests", all.len());
    all.len()
}

#[test]
fn a_three_node_swarm_ships_its_image_serves_from_every_node_and_fails_no_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (profile, port) = ("mh-swarm", 18511);
    purge(&rig.swarm_nodes, profile, "dm-e2e/server");
    let env = Env::new(
        profile,
        port,
        &format!("image: {IMAGE}"),
        &[("target", "swarm"), ("hosts", &rig.swarm_nodes.join(","))],
    );
    let out = ok(env.deploy("v1", &[]));
    let said = stderr(&out);
    for node in &rig.swarm_nodes {
        assert!(
            said.contains(&format!("sent {IMAGE} from this machine to {node}")),
            "{said}"
        );
    }
    let manager = &rig.swarm_nodes[0];
    let proxy = format!("dm-{profile}-web-proxy");
    for addr in &rig.swarm_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into()))
        );
    }

    let loads: Vec<Load> = rig
        .swarm_addrs
        .iter()
        .map(|a| Load::start_at(a, port, 2))
        .collect();
    let out = ok(env.deploy("v2", &[]));
    assert!(
        stderr(&out).contains("already on their host(s), not sent"),
        "{}",
        text(&out)
    );
    ok(env.deploy("v3", &["--strategy", "blue-green"]));
    let out = ok(env.deploy("v4", &CANARY));
    assert!(
        stderr(&out).contains("50% of traffic on release 4"),
        "{}",
        text(&out)
    );
    let sent = none_failed(loads);
    eprintln!("rolling, blue-green and canary on 3 nodes: {sent} requests, 0 failed");

    // The replicas run on more than one node.
    let nodes: std::collections::BTreeSet<String> = lines(&docker(
        manager,
        &[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}}",
            &format!("dm-{profile}-web-r4"),
        ],
    ))
    .into_iter()
    .collect();
    assert!(nodes.len() >= 2, "tasks on {nodes:?}");

    // The manager's entry point dies: the other nodes' keep serving.
    let loads: Vec<Load> = rig.swarm_addrs[1..]
        .iter()
        .map(|a| Load::start_at(a, port, 2))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(docker(manager, &["kill", &proxy]).status.success());
    std::thread::sleep(Duration::from_secs(3));
    let sent = none_failed(loads);
    eprintln!("manager's proxy killed: {sent} requests through the other nodes, 0 failed");
    // The next deploy brings it back.
    ok(env.deploy("v5", &[]));
    assert_eq!(
        common::load::get_from(&rig.swarm_addrs[0], port, "/", None),
        Ok((200, "v5".into()))
    );
}

/// A build context whose Dockerfile copies the static test server onto
/// an empty image.
fn build_context(dir: &std::path::Path) {
    let server = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/dm-testserver-target/x86_64-unknown-linux-gnu/release/dm-testserver");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(server, dir.join("server")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY server /server\nUSER 10001:10001\nENTRYPOINT [\"/server\"]\n",
    )
    .unwrap();
}

#[test]
fn two_ssh_hosts_build_once_ship_and_run_every_strategy_without_a_failed_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (profile, port) = ("mh-ssh", 18512);
    purge(&rig.ssh_socks, profile, "mh-ssh-web");
    let env = Env::new(
        profile,
        port,
        "build:\n      context: ctx",
        &[("hosts", &rig.ssh_hosts.join(","))],
    );
    build_context(&env.dir.path().join("ctx"));
    let out = ok(env.deploy("v1", &[]));
    let said = stderr(&out);
    assert!(said.contains("web: built mh-ssh-web:"), "{said}");
    assert!(
        said.contains(&format!(
            "from {} to {}",
            rig.ssh_hosts[0], rig.ssh_hosts[1]
        )),
        "{said}"
    );
    for addr in &rig.ssh_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into()))
        );
    }

    let loads: Vec<Load> = rig
        .ssh_addrs
        .iter()
        .map(|a| Load::start_at(a, port, 2))
        .collect();
    let out = ok(env.deploy("v2", &[]));
    assert!(stderr(&out).contains("is built already"), "{}", text(&out));
    ok(env.deploy("v3", &CANARY));
    ok(env.deploy("v4", &["--strategy", "blue-green"]));
    let sent = none_failed(loads);
    eprintln!("rolling, canary and blue-green on 2 SSH hosts: {sent} requests, 0 failed");
    for addr in &rig.ssh_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v4".into()))
        );
    }
}

#[test]
fn an_unreachable_host_fails_the_deploy_before_any_host_changes() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (profile, port) = ("mh-gone", 18513);
    purge(&rig.ssh_socks[..1], profile, "none-such");
    // 10.77.0.99 is on the test bridge and answers nobody.
    let hosts = format!("{},ssh://root@10.77.0.99", rig.ssh_hosts[0]);
    let env = Env::new(
        profile,
        port,
        &format!("image: {IMAGE}"),
        &[("hosts", &hosts)],
    );
    let out = env.deploy("v1", &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("10.77.0.99"), "{}", text(&out));
    let label = format!("label=dm.profile={profile}");
    assert!(
        lines(&docker(
            &rig.ssh_socks[0],
            &["ps", "-aq", "--filter", &label]
        ))
        .is_empty()
    );
}
