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
    /// The same nodes as `ssh://root@<address>`.
    swarm_ssh: Vec<String>,
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
        swarm_ssh: get("DM_RIG_SWARM_SSH"),
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

/// The nodes running tasks of a swarm service, one line per task.
fn running_on(manager: &str, service: &str) -> Vec<String> {
    lines(&docker(
        manager,
        &[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}}",
            service,
        ],
    ))
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
    replicas: u32,
}

impl Env {
    fn new(profile: &str, port: u16, image: &str, settings: &[(&str, &str)]) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            profile: profile.into(),
            port,
            image: image.into(),
            replicas: 2,
        };
        let app = env.app("v1");
        ok(env.dm(&["profile", "create", profile, app.to_str().unwrap()]));
        for (k, v) in settings {
            ok(env.dm(&["profile", "set", profile, k, v]));
        }
        env
    }

    /// One public service (2 replicas unless set) with a second of
    /// start-up, gated by the image's own probe.
    fn app(&self, version: &str) -> PathBuf {
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: {p}\nservices:\n  web:\n    {image}\n    ports:\n      - port: 8080\n        public: true\n        published: {port}\n    env:\n      VERSION: {version}\n      STARTUP_DELAY_MS: \"1000\"\n    replicas: {replicas}\n    health:\n      command: [\"/server\", \"healthcheck\"]\n      interval: 1s\n      retries: 2\n      start_period: 4s\n",
            p = self.profile,
            port = self.port,
            image = self.image,
            replicas = self.replicas,
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
    let nodes: std::collections::BTreeSet<String> =
        running_on(manager, &format!("dm-{profile}-web-r4"))
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
    common::build_context(&env.dir.path().join("ctx"));
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

/// With a registry (one on the rig's bridge, as a team's would be on its
/// network), the first host builds and pushes, the other pulls: nothing
/// is sent host to host.
#[test]
fn a_registry_profile_builds_once_pushes_and_every_other_host_pulls() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let Some(registry) = common::registry::Registry::start("10.77.0.1", 18341) else {
        return;
    };
    let (profile, port) = ("mh-reg", 18516);
    let repo = "10.77.0.1:18341/dm/mh-reg-web";
    purge(&rig.ssh_socks, profile, repo);
    let env = Env::new(
        profile,
        port,
        "build:\n      context: ctx",
        &[
            ("hosts", &rig.ssh_hosts.join(",")),
            ("registry", "10.77.0.1:18341/dm"),
        ],
    );
    common::build_context(&env.dir.path().join("ctx"));
    let plan = ok(env.deploy("v1", &["--dry-run", "--json"]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let image_lines: Vec<(String, String)> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "image")
        .map(|l| {
            (
                l["host"].as_str().unwrap_or_default().to_string(),
                l["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let (h1, h2) = (rig.ssh_hosts[0].clone(), rig.ssh_hosts[1].clone());
    // Preflight reads each host's free disk over the engine's own ssh.
    let preflight: Vec<&serde_json::Value> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "preflight")
        .collect();
    assert_eq!(preflight.len(), 2, "{plan}");
    for l in preflight {
        let detail = l["detail"].as_str().unwrap_or_default();
        assert_eq!(l["action"], "ok", "{detail}");
        assert!(
            detail.contains(" free, ") && !detail.contains("unknown"),
            "{detail}"
        );
    }
    assert_eq!(
        image_lines,
        [
            (h1.clone(), "build".to_string()),
            (h1.clone(), "push".into()),
            (h2.clone(), "pull".into())
        ],
        "{plan}"
    );

    let out = ok(env.deploy("v1", &[]));
    let said = stderr(&out);
    assert!(said.contains(&format!("pushed {repo}:")), "{said}");
    assert!(
        said.contains(&format!("on {h2} from the registry")),
        "{said}"
    );
    assert!(
        !said.contains("as a save/load") && !said.contains(" sent "),
        "{said}"
    );
    let tags = registry.tags("dm/mh-reg-web");
    assert_eq!(tags.len(), 1, "{tags:?}");
    for (addr, sock) in rig.ssh_addrs.iter().zip(&rig.ssh_socks) {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into()))
        );
        let held = lines(&docker(
            sock,
            &["images", "-q", &format!("{repo}:{}", tags[0])],
        ));
        assert_eq!(held.len(), 1, "{sock} lacks the pulled image");
    }
}

/// Runs `migrate P --to compose --hosts <h2> --yes` of a profile on h1
/// under load through h1's public port (the address clients still use)
/// and returns the load's requests, migrate's output and the new profile
/// (destroyed when dropped).
fn move_to_h2<'a>(rig: &Rig, env: &'a Env, new: &str, port: u16) -> (usize, Output, Moved<'a>) {
    move_to_h2_through(rig, env, new, port, &rig.ssh_addrs[..1], 2)
}

/// [`move_to_h2`] under load through each of `addrs` (`clients` each).
fn move_to_h2_through<'a>(
    rig: &Rig,
    env: &'a Env,
    new: &str,
    port: u16,
    addrs: &[String],
    clients: usize,
) -> (usize, Output, Moved<'a>) {
    let loads = addrs
        .iter()
        .map(|a| Load::start_at(a, port, clients))
        .collect();
    let configs = env.dir.path().join("configs");
    let out = ok(migrate_to_h2(
        rig,
        env,
        new,
        &["--yes", "--out", configs.to_str().unwrap()],
    ));
    let moved = Moved {
        env,
        profile: new.into(),
    };
    (none_failed(loads), out, moved)
}

/// `migrate P --to compose --name <new> --hosts <h2>` with `flags`.
fn migrate_to_h2(rig: &Rig, env: &Env, new: &str, flags: &[&str]) -> Output {
    let mut args = vec![
        "migrate",
        &env.profile,
        "--to",
        "compose",
        "--name",
        new,
        "--hosts",
        &rig.ssh_hosts[1],
    ];
    args.extend_from_slice(flags);
    env.dm(&args)
}

/// The profile a move made, destroyed (in the same state) when dropped.
struct Moved<'a> {
    env: &'a Env,
    profile: String,
}

impl Drop for Moved<'_> {
    fn drop(&mut self) {
        let _ = self.env.dm(&["destroy", &self.profile, "--volumes"]);
    }
}

/// A profile `old` on h1 with nothing left of `old` or `new` (the profile
/// a move to h2 makes) on either SSH host.
fn on_h1(rig: &Rig, old: &str, new: &str, port: u16) -> Env {
    purge(&rig.ssh_socks, old, "none-such");
    purge(&rig.ssh_socks, new, "none-such");
    Env::new(
        old,
        port,
        &format!("image: {IMAGE}"),
        &[("hosts", &rig.ssh_hosts[0])],
    )
}

/// Containers of `profile` running on an engine, by role label.
fn running_roles(sock: &str, profile: &str) -> Vec<String> {
    lines(&docker(
        sock,
        &[
            "ps",
            "--filter",
            &format!("label=dm.profile={profile}"),
            "--format",
            "{{.Label \"dm.role\"}}",
        ],
    ))
}

/// To another machine: the new profile comes up on h2, h1's proxy then
/// forwards to it and h1's app stops behind it; no request through h1's
/// address fails, and h2 answers directly.
#[test]
fn a_move_to_another_machine_forwards_and_fails_no_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (old, new, port) = ("mh-move", "mh-move-h2", 18517);
    let env = on_h1(&rig, old, new, port);
    ok(env.deploy("v1", &[]));
    let plan = ok(migrate_to_h2(&rig, &env, new, &["--dry-run", "--json"]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let actions: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "generate", "profile", "deploy", "forward", "stop", "dns", "keep"
        ],
        "{plan}"
    );

    let (sent, out, _moved) = move_to_h2(&rig, &env, new, port);
    let said = text(&out);
    eprintln!("moved h1 → h2 under load: {sent} requests, 0 failed");
    assert!(
        said.contains(&format!("forward to {}", rig.ssh_addrs[1])),
        "{said}"
    );
    for addr in &rig.ssh_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }
    assert_eq!(running_roles(&rig.ssh_socks[0], old), ["proxy"], "{said}");
    assert!(running_roles(&rig.ssh_socks[1], new).contains(&"app".to_string()));

    let (sent, said) = return_to_h1(&rig, &env, new, port);
    eprintln!("returned h2 → h1 under load through both: {sent} requests, 0 failed");
    assert!(
        said.contains(&format!("forward to {}", rig.ssh_addrs[0])),
        "{said}"
    );
    assert!(running_roles(&rig.ssh_socks[0], old).contains(&"app".to_string()));
    assert_eq!(running_roles(&rig.ssh_socks[1], new), ["proxy"], "{said}");
}

/// `migrate <new> --rollback --yes` under load through both hosts'
/// addresses (clients of either may remain while DNS moves); the requests
/// sent and what the command said. Both addresses answer v1 afterwards.
fn return_to_h1(rig: &Rig, env: &Env, new: &str, port: u16) -> (usize, String) {
    roll_back_through(env, new, port, &rig.ssh_addrs)
}

/// `migrate <new> --rollback --yes` under load through each of `addrs`,
/// which all answer v1 afterwards; the requests sent and what it said.
fn roll_back_through(env: &Env, new: &str, port: u16, addrs: &[String]) -> (usize, String) {
    let loads = addrs.iter().map(|a| Load::start_at(a, port, 2)).collect();
    let out = ok(env.dm(&["migrate", new, "--rollback", "--yes"]));
    let sent = none_failed(loads);
    for addr in addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }
    (sent, text(&out))
}

/// From the 3-node swarm to another machine: the new profile comes up on
/// h2, the proxies on every node then forward to it and the swarm's
/// services scale to zero behind them; no request through any node's
/// address fails.
#[test]
fn a_swarm_moves_to_another_machine_and_fails_no_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (old, new, port) = ("mh-swmove", "mh-swmove-h2", 18519);
    purge(&rig.swarm_nodes, old, "none-such");
    purge(&rig.ssh_socks, new, "none-such");
    let env = Env::new(
        old,
        port,
        &format!("image: {IMAGE}"),
        &[("target", "swarm"), ("hosts", &rig.swarm_nodes.join(","))],
    );
    ok(env.deploy("v1", &[]));
    let (sent, out, _moved) = move_to_h2_through(&rig, &env, new, port, &rig.swarm_addrs, 1);
    let said = text(&out);
    eprintln!("moved the swarm → h2 under load through 3 nodes: {sent} requests, 0 failed");
    assert!(
        said.contains(&format!("forward to {}", rig.ssh_addrs[1])),
        "{said}"
    );
    for addr in rig.swarm_addrs.iter().chain([&rig.ssh_addrs[1]]) {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }
    let manager = &rig.swarm_nodes[0];
    let replicas = lines(&docker(
        manager,
        &[
            "service",
            "ls",
            "--filter",
            &format!("label=dm.profile={old}"),
            "--format",
            "{{.Replicas}}",
        ],
    ));
    // Running/desired: every service is scaled to zero.
    assert!(
        !replicas.is_empty() && replicas.iter().all(|r| r.ends_with("/0")),
        "{replicas:?}"
    );
    // Tasks take their stop grace to exit; only the proxies stay.
    for node in &rig.swarm_nodes {
        let mut roles = running_roles(node, old);
        for _ in 0..60 {
            if roles == ["proxy"] {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            roles = running_roles(node, old);
        }
        assert_eq!(roles, ["proxy"], "{node}");
    }
}

/// The container of a swarm service's running task on one node's engine.
fn task_on(sock: &str, service: &str) -> String {
    for _ in 0..120 {
        let found = lines(&docker(
            sock,
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ],
        ));
        if let Some(id) = found.first() {
            return id.clone();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no task of {service} runs on {sock}");
}

/// From the swarm with real PostgreSQL and Redis servers whose tasks run
/// on two other nodes than the manager (the data is read through the
/// engine of the node that runs each): the proxies on every node hold,
/// the services scale to zero, both volumes are copied to h2 and checked,
/// the census matches, then the proxies forward. No request fails. Then,
/// with rows and keys written on h2, `--rollback` returns into the swarm
/// (named by SSH, so h2's proxy has the nodes' addresses to forward to):
/// what changed goes back to each dependency's pinned worker.
#[test]
fn a_swarm_with_data_on_worker_nodes_moves_to_another_machine_and_back() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    common::build_db_images();
    let (old, new, port) = ("mh-swdata", "mh-swdata-h2", 18509);
    purge(&rig.swarm_nodes, old, "none-such");
    purge(&rig.ssh_socks, new, "none-such");
    let env = Env::new(
        old,
        port,
        &format!("image: {IMAGE}"),
        &[("target", "swarm"), ("hosts", &rig.swarm_ssh.join(","))],
    );
    deploy_with_data(
        &env,
        "    placement:\n      constraints: [node.hostname==dm-n2]\n",
        "    placement:\n      constraints: [node.hostname==dm-n3]\n",
    );
    let (n2, n3) = (&rig.swarm_nodes[1], &rig.swarm_nodes[2]);
    let db = task_on(n2, &format!("dm-{old}-db"));
    let cache = task_on(n3, &format!("dm-{old}-cache"));
    let sum_before = seed((n2, &db), (n3, &cache), 1000, 50);

    let (sent, out, _moved) = move_to_h2_through(&rig, &env, new, port, &rig.swarm_addrs, 1);
    let said = text(&out);
    eprintln!(
        "moved the swarm's data (db on n2, cache on n3) → h2: {sent} requests, 0 failed; {said}"
    );
    assert!(
        said.contains("data check: db: 1 table(s), 1000 row(s) on both sides"),
        "{said}"
    );
    assert!(
        said.contains("data check: cache: 50 key(s) on both sides"),
        "{said}"
    );
    assert!(said.contains("requests were held"), "{said}");
    let h2 = &rig.ssh_socks[1];
    assert_eq!(psql(h2, &format!("dm-{new}-db"), ORDERS_SUM), sum_before);
    assert_eq!(
        redis_cli(h2, &format!("dm-{new}-cache"), &["get", "session:49"]),
        "user-49"
    );
    let everywhere: Vec<String> = rig
        .swarm_addrs
        .iter()
        .chain([&rig.ssh_addrs[1]])
        .cloned()
        .collect();
    for addr in &everywhere {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }

    let (db2, cache2) = (format!("dm-{new}-db"), format!("dm-{new}-cache"));
    psql(
        h2,
        &db2,
        "insert into orders select g, md5(g::text) from generate_series(1001, 1100) g",
    );
    for i in 50..80 {
        redis_cli(
            h2,
            &cache2,
            &["set", &format!("session:{i}"), &format!("user-{i}")],
        );
    }
    let sum_h2 = psql(h2, &db2, ORDERS_SUM);
    let (sent, said) = roll_back_through(&env, new, port, &everywhere);
    eprintln!(
        "returned h2 → the swarm (db to n2, cache to n3) with the data written on h2: {sent} requests, 0 failed; {said}"
    );
    assert!(
        said.contains("data check: db: 1 table(s), 1100 row(s) on both sides"),
        "{said}"
    );
    assert!(
        said.contains("data check: cache: 80 key(s) on both sides"),
        "{said}"
    );
    let db = task_on(n2, &format!("dm-{old}-db"));
    let cache = task_on(n3, &format!("dm-{old}-cache"));
    assert_eq!(psql(n2, &db, ORDERS_SUM), sum_h2);
    assert_eq!(redis_cli(n3, &cache, &["get", "session:79"]), "user-79");
    assert_eq!(running_roles(h2, new), ["proxy"], "{said}");
}

/// Into a swarm from another machine, with real PostgreSQL and Redis
/// data: each dependency is pinned to a worker (db to dm-n2, cache to
/// dm-n3), so its volume is copied to that node's engine and its task
/// starts there on the copy. h1's proxy holds, then forwards to the
/// swarm's nodes; no request fails and each server holds the data on its
/// worker.
#[test]
fn a_move_into_a_swarm_copies_each_dependency_s_data_to_its_pinned_node() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    common::build_db_images();
    let (old, new, port) = ("mh-intosw", "mh-intosw-sw", 18510);
    purge(&rig.swarm_nodes, new, "none-such");
    let (env, sum_before) = seeded_on_h1(
        &rig,
        (old, new, port),
        (
            "    placement:\n      constraints: [node.hostname==dm-n2]\n",
            "    placement:\n      constraints: [node.hostname==dm-n3]\n",
        ),
        (1000, 50),
    );

    let load = Load::start_at(&rig.ssh_addrs[0], port, 1);
    let configs = env.dir.path().join("configs");
    let out = env.dm(&[
        "migrate",
        old,
        "--to",
        "swarm",
        "--name",
        new,
        "--hosts",
        &rig.swarm_ssh.join(","),
        "--yes",
        "--out",
        configs.to_str().unwrap(),
    ]);
    let _moved = Moved {
        env: &env,
        profile: new.into(),
    };
    let said = text(&out);
    eprintln!("{said}");
    let sent = none_failed(vec![load]);
    assert!(out.status.success(), "{said}");
    eprintln!(
        "moved h1 → swarm, db to dm-n2 and cache to dm-n3: {sent} requests, 0 failed; {said}"
    );
    assert!(
        said.contains("data check: db: 1 table(s), 1000 row(s) on both sides"),
        "{said}"
    );
    assert!(
        said.contains("data check: cache: 50 key(s) on both sides"),
        "{said}"
    );
    // Read on each worker by the test itself.
    let (n2, n3) = (&rig.swarm_nodes[1], &rig.swarm_nodes[2]);
    let db2 = task_on(n2, &format!("dm-{new}-db"));
    let cache3 = task_on(n3, &format!("dm-{new}-cache"));
    assert_eq!(psql(n2, &db2, ORDERS_SUM), sum_before);
    assert_eq!(redis_cli(n3, &cache3, &["get", "session:49"]), "user-49");
    for addr in rig.swarm_addrs.iter().chain([&rig.ssh_addrs[0]]) {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }
}

/// Deploys v1 of `env`'s app with a PostgreSQL `db` and a Redis `cache`
/// (real servers, `common::build_db_images`), each followed by its own
/// extra YAML lines (a placement, say).
fn deploy_with_data(env: &Env, db_extra: &str, cache_extra: &str) {
    let app = env.app("v1");
    let yaml = std::fs::read_to_string(&app).unwrap()
        + &format!(
            "dependencies:\n  db:\n    kind: postgres\n    image: {}\n{db_extra}  cache:\n    kind: redis\n    image: {}\n{cache_extra}",
            common::POSTGRES_IMAGE,
            common::REDIS_IMAGE
        );
    std::fs::write(&app, yaml).unwrap();
    ok(env.dm(&[
        "deploy",
        &env.profile,
        "--app",
        app.to_str().unwrap(),
        "--bake",
        "1s",
    ]));
}

/// A profile `old` on h1 ([`on_h1`]) with its data deployed
/// ([`deploy_with_data`], each dependency's extra lines) and seeded
/// ([`seed`]: rows, keys); the orders' [`ORDERS_SUM`].
fn seeded_on_h1(
    rig: &Rig,
    (old, new, port): (&str, &str, u16),
    (db_extra, cache_extra): (&str, &str),
    (rows, keys): (u32, u32),
) -> (Env, String) {
    let env = on_h1(rig, old, new, port);
    deploy_with_data(&env, db_extra, cache_extra);
    let h1 = &rig.ssh_socks[0];
    let (db, cache) = (format!("dm-{old}-db"), format!("dm-{old}-cache"));
    let sum = seed((h1, &db), (h1, &cache), rows, keys);
    (env, sum)
}

/// Every order's row, counted and checksummed in one line.
const ORDERS_SUM: &str =
    "select count(*) || ' ' || md5(string_agg(o::text, ',' order by id)) from orders o";

/// Waits until both servers answer (they start beside the app), then
/// writes `rows` orders into PostgreSQL and `keys` keys `session:N` =
/// `user-N` into Redis; the orders' [`ORDERS_SUM`]. Each server is given
/// as (engine socket, container).
fn seed(db: (&str, &str), cache: (&str, &str), rows: u32, keys: u32) -> String {
    for _ in 0..60 {
        let up = docker(db.0, &["exec", db.1, "pg_isready", "-q"])
            .status
            .success()
            && docker(cache.0, &["exec", cache.1, "redis-cli", "ping"])
                .status
                .success();
        if up {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    psql(
        db.0,
        db.1,
        &format!(
            "create table orders(id int primary key, item text); insert into orders select g, md5(g::text) from generate_series(1, {rows}) g"
        ),
    );
    for i in 0..keys {
        redis_cli(
            cache.0,
            cache.1,
            &["set", &format!("session:{i}"), &format!("user-{i}")],
        );
    }
    psql(db.0, db.1, ORDERS_SUM)
}

/// `psql` in a PostgreSQL container of a rig engine; its output.
fn psql(sock: &str, container: &str, sql: &str) -> String {
    let o = docker(sock, &["exec", container, "psql", "-XAtq", "-c", sql]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `redis-cli` in a Redis container of a rig engine; its output.
fn redis_cli(sock: &str, container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container, "redis-cli"];
    all.extend_from_slice(args);
    let o = docker(sock, &all);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The same with real PostgreSQL and Redis servers holding data: h1's
/// proxy holds requests while the old stack stops and their volumes are
/// copied to h2 (file by file, owners and modes included), both servers
/// start there on the copies, their tables and keys are compared with
/// what h1's servers reported before stopping, and only then does h1
/// forward. No request fails and the data is on h2.
#[test]
fn a_move_to_another_machine_with_data_holds_copies_and_fails_no_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    common::build_db_images();
    let (old, new, port) = ("mh-data", "mh-data-h2", 18518);
    let (env, sum_before) = seeded_on_h1(&rig, (old, new, port), ("", ""), (5000, 200));
    let (h1, h2) = (&rig.ssh_socks[0], &rig.ssh_socks[1]);
    let (db, cache) = (format!("dm-{old}-db"), format!("dm-{old}-cache"));

    let (sent, out, _moved) = move_to_h2(&rig, &env, new, port);
    let said = text(&out);
    eprintln!(
        "moved h1 → h2 with PostgreSQL and Redis data under load: {sent} requests, 0 failed; {said}"
    );
    assert!(said.contains("requests were held"), "{said}");
    assert!(
        said.contains("file(s) verified (size, SHA-256, owner and mode)"),
        "{said}"
    );
    assert!(
        said.contains("data check: db: 1 table(s), 5000 row(s) on both sides"),
        "{said}"
    );
    assert!(
        said.contains("data check: cache: 200 key(s) on both sides"),
        "{said}"
    );
    // Read on h2 by the test itself, not only by the move's own check.
    let (db2, cache2) = (format!("dm-{new}-db"), format!("dm-{new}-cache"));
    assert_eq!(psql(h2, &db2, ORDERS_SUM), sum_before);
    assert_eq!(redis_cli(h2, &cache2, &["get", "session:199"]), "user-199");
    assert_eq!(redis_cli(h2, &cache2, &["dbsize"]), "200");
    for addr in &rig.ssh_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v1".into())),
            "{addr}"
        );
    }
    assert_eq!(running_roles(h1, old), ["proxy"], "{said}");

    // Written on h2 after the move, then back to h1: only what changed
    // travels, and h1's servers hold it all.
    psql(
        h2,
        &db2,
        "insert into orders select g, md5(g::text) from generate_series(5001, 5100) g",
    );
    for i in 200..250 {
        redis_cli(
            h2,
            &cache2,
            &["set", &format!("session:{i}"), &format!("user-{i}")],
        );
    }
    let sum_h2 = psql(h2, &db2, ORDERS_SUM);
    let (sent, said) = return_to_h1(&rig, &env, new, port);
    eprintln!("returned h2 → h1 with the data written on h2: {sent} requests, 0 failed; {said}");
    assert!(
        said.contains("data check: db: 1 table(s), 5100 row(s) on both sides"),
        "{said}"
    );
    assert!(
        said.contains("data check: cache: 250 key(s) on both sides"),
        "{said}"
    );
    assert!(said.contains("synced after the stop"), "{said}");
    assert_eq!(psql(h1, &db, ORDERS_SUM), sum_h2);
    assert_eq!(redis_cli(h1, &cache, &["get", "session:249"]), "user-249");
    assert_eq!(running_roles(h2, new), ["proxy"], "{said}");
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

/// The rig's name of the node behind an engine socket: its files are
/// under a directory of that name (its hostname is `dm-` and the name).
fn node_of(sock: &str) -> &str {
    sock.rsplit('/').nth(1).expect("a rig socket path")
}

/// A swarm node cut off the bridge (its link down, as a pulled cable or a
/// dead switch port), put back when dropped so a failing test leaves the
/// rig whole.
struct Cut(String);

impl Cut {
    fn new(sock: &str) -> Cut {
        let cut = Cut(format!("veth-{}-h", node_of(sock)));
        cut.set("down");
        cut
    }

    fn set(&self, state: &str) {
        let out = Command::new("ip")
            .args(["link", "set", &self.0, state])
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip link set {} {state}: {out:?}",
            self.0
        );
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.set("up");
    }
}

/// Waits until the manager sees every node ready again.
fn all_nodes_ready(manager: &str) {
    for _ in 0..120 {
        let states = lines(&docker(manager, &["node", "ls", "--format", "{{.Status}}"]));
        if !states.is_empty() && states.iter().all(|s| s == "Ready") {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the swarm's nodes did not all come back");
}

/// The failed requests of a load, each with when it ended relative to
/// `t0`, printed so that each one can be explained.
fn failures(loads: Vec<Load>, t0: std::time::Instant, what: &str) -> (usize, Vec<String>) {
    let mut all: Vec<Sample> = Vec::new();
    for l in loads {
        all.extend(l.samples());
    }
    let failed: Vec<String> = all
        .iter()
        .filter_map(|(t, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{:.1}s: {e}", t.duration_since(t0).as_secs_f64()))
        })
        .collect();
    eprintln!(
        "{what}: {} requests, {} failed{}",
        all.len(),
        failed.len(),
        failed
            .iter()
            .take(10)
            .map(|f| format!("\n  {f}"))
            .collect::<String>()
    );
    (all.len(), failed)
}

#[test]
fn a_worker_cut_off_in_steady_state_and_mid_deploy_fails_no_request() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (profile, port) = ("mh-loss", 18514);
    purge(&rig.swarm_nodes, profile, "dm-e2e/server");
    let mut env = Env::new(
        profile,
        port,
        &format!("image: {IMAGE}"),
        &[("target", "swarm"), ("hosts", &rig.swarm_nodes.join(","))],
    );
    env.replicas = 3;
    ok(env.deploy("v1", &[]));
    let manager = &rig.swarm_nodes[0];

    // The worker to lose: one that runs a task, so that cutting it matters.
    let task_nodes = running_on(manager, &format!("dm-{profile}-web"));
    let lost = (1..rig.swarm_nodes.len())
        .rev()
        .find(|&i| task_nodes.contains(&format!("dm-{}", node_of(&rig.swarm_nodes[i]))))
        .unwrap_or_else(|| panic!("no worker runs a task: {task_nodes:?}"));
    let kept: Vec<&String> = rig
        .swarm_addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lost)
        .map(|(_, a)| a)
        .collect();

    // Steady state: the proxies on the other nodes stop routing to the
    // lost task within the health-check window and retry what it held.
    let t0 = std::time::Instant::now();
    let loads: Vec<Load> = kept.iter().map(|a| Load::start_at(a, port, 2)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let cut = Cut::new(&rig.swarm_nodes[lost]);
    std::thread::sleep(Duration::from_secs(15));
    let (sent, failed) = failures(loads, t0, "a worker cut off in steady state");
    drop(cut);
    assert!(sent > 300, "the load sent only {sent} requests");
    assert!(failed.is_empty(), "{failed:?}");
    all_nodes_ready(manager);

    // Mid-deploy: the worker drops 3 s into a rolling update.
    let t0 = std::time::Instant::now();
    let loads: Vec<Load> = kept.iter().map(|a| Load::start_at(a, port, 2)).collect();
    let (out, after) = std::thread::scope(|s| {
        let deploy = s.spawn(|| env.deploy("v2", &[]));
        std::thread::sleep(Duration::from_secs(3));
        let cut = Cut::new(&rig.swarm_nodes[lost]);
        let out = deploy.join().unwrap();
        // What the surviving proxies route to once the deploy has returned.
        let after: Vec<_> = kept
            .iter()
            .flat_map(|a| (0..6).map(|_| common::load::get_from(a, port, "/", None)))
            .collect();
        drop(cut);
        (out, after)
    });
    let (sent, failed) = failures(loads, t0, "a worker cut off during a rolling update");
    let outcome = if out.status.success() {
        "completed on the remaining nodes"
    } else {
        "rolled back"
    };
    eprintln!("the rolling update {outcome}:\n{}", text(&out));
    let want = if out.status.success() { "v2" } else { "v1" };
    assert!(
        after.iter().all(|r| r == &Ok((200, want.to_string()))),
        "the deploy {outcome} but the proxies answer {after:?}"
    );
    assert!(sent > 300, "the load sent only {sent} requests");
    assert!(failed.is_empty(), "{failed:?}");

    // Back on the bridge, the next deploy converges on every node.
    all_nodes_ready(manager);
    ok(env.deploy("v3", &[]));
    for addr in &rig.swarm_addrs {
        assert_eq!(
            common::load::get_from(addr, port, "/", None),
            Ok((200, "v3".into()))
        );
    }
    purge(&rig.swarm_nodes, profile, "none-such");
}

/// A dependency keeps its data on one node's volume: with a constraint no
/// node meets, the deploy refuses before anything is created and names
/// each node's reason; once a node carries the label, the dependency's
/// task runs there and nowhere else.
#[test]
fn a_dependency_no_node_can_take_is_refused_and_runs_where_its_label_is() {
    let Some(rig) = rig() else { return };
    let _turn = turn();
    let (profile, port) = ("mh-place", 18515);
    purge(&rig.swarm_nodes, profile, "none-such");
    let manager = &rig.swarm_nodes[0];
    let label = |node: &str, add: bool| {
        let args: Vec<&str> = if add {
            vec!["node", "update", "--label-add", "dm-cache=yes", node]
        } else {
            vec!["node", "update", "--label-rm", "dm-cache", node]
        };
        docker(manager, &args)
    };
    for n in ["dm-n1", "dm-n2", "dm-n3"] {
        label(n, false);
    }
    let env = Env::new(
        profile,
        port,
        &format!("image: {IMAGE}"),
        &[("target", "swarm"), ("hosts", &rig.swarm_nodes.join(","))],
    );
    let app = env.dir.path().join("app-placed.yaml");
    std::fs::write(
        &app,
        format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: {profile}\nservices:\n  web:\n    image: {IMAGE}\n    ports:\n      - port: 8080\n        public: true\n        published: {port}\n    health:\n      command: [\"/server\", \"healthcheck\"]\n      interval: 1s\n      retries: 2\n      start_period: 4s\n    depends_on: [cache]\ndependencies:\n  cache:\n    kind: redis\n    image: {IMAGE}\n    placement:\n      constraints: [node.labels.dm-cache==yes]\n"
        ),
    )
    .unwrap();
    let app = app.to_str().unwrap();
    let deploy = || env.dm(&["deploy", profile, "--app", app, "--bake", "1s"]);
    let out = deploy();
    assert!(!out.status.success(), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains("no node of the swarm can take cache's volume"),
        "{said}"
    );
    assert!(
        said.contains("dm-n2: not node.labels.dm-cache==yes"),
        "{said}"
    );
    let filter = format!("label=dm.profile={profile}");
    assert!(
        lines(&docker(
            manager,
            &["service", "ls", "-q", "--filter", &filter]
        ))
        .is_empty(),
        "a refused deploy created services"
    );

    assert!(label("dm-n2", true).status.success());
    let out = deploy();
    let ran = std::panic::catch_unwind(|| {
        assert!(out.status.success(), "{}", text(&out));
        let nodes = running_on(manager, &format!("dm-{profile}-cache"));
        assert_eq!(nodes, ["dm-n2"]);
    });
    label("dm-n2", false);
    if let Err(e) = ran {
        std::panic::resume_unwind(e);
    }
}
