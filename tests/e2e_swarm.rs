//! Deploys for real to a single-node Docker Swarm (`docker swarm init` on
//! the local engine) under load from loopback clients: a rolling update
//! with swarm's start-first `update_config`, swarm's automatic rollback of
//! an unhealthy release, blue-green and canary through our proxy, a
//! rollback, secrets delivered as files and absent from every spec, and
//! recovery after the tool is killed mid-deploy. Images are built FROM
//! scratch from the project's test server.

mod common;

use common::load::{Load, Sample, all_from, get, version};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const IMAGE: &str = "dm-e2e/server:1";
const SECRET: &str = "swarm-secret-7f3a9c";

/// One swarm test at a time: the 2-core machine starts each replica with
/// a second of start-up, and parallel updates would only measure the CPU.
fn turn() -> MutexGuard<'static, ()> {
    static SWARM: OnceLock<()> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    SWARM.get_or_init(|| {
        common::build_test_image(IMAGE);
        let state = Command::new("docker")
            .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .output()
            .expect("docker CLI");
        if String::from_utf8_lossy(&state.stdout).trim() != "active" {
            common::sh(Command::new("docker").args([
                "swarm",
                "init",
                "--advertise-addr",
                "127.0.0.1",
            ]));
        }
    });
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes whatever an earlier, interrupted run of a test left.
fn purge(profile: &str) {
    let label = format!("label=dm.profile={profile}");
    let ids = |args: &[&str]| -> Vec<String> {
        let out = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let services = ids(&["service", "ls", "-q", "--filter", &label]);
    if !services.is_empty() {
        let _ = Command::new("docker")
            .args(["service", "rm"])
            .args(&services)
            .output();
    }
    let containers = ids(&["ps", "-aq", "--filter", &label]);
    if !containers.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&containers)
            .output();
    }
    let secrets = ids(&["secret", "ls", "-q", "--filter", &label]);
    if !secrets.is_empty() {
        let _ = Command::new("docker")
            .args(["secret", "rm"])
            .args(&secrets)
            .output();
    }
}

struct Env {
    dir: tempfile::TempDir,
    profile: String,
    port: u16,
}

impl Env {
    fn new(profile: &str, port: u16) -> Env {
        purge(profile);
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            profile: profile.into(),
            port,
        };
        let app = env.app("v1", &[]);
        ok(env.dm(&["profile", "create", profile, app.to_str().unwrap()]));
        ok(env.dm(&["profile", "set", profile, "target", "swarm"]));
        env
    }

    /// One public service of 2 replicas with a second of start-up, gated
    /// by the image's own probe (no shell or curl in a scratch image).
    fn app(&self, version: &str, env: &[(&str, &str)]) -> PathBuf {
        let extra: String = env
            .iter()
            .map(|(k, v)| format!("      {k}: \"{v}\"\n"))
            .collect();
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: {p}\nservices:\n  web:\n    image: {IMAGE}\n    ports:\n      - port: 8080\n        public: true\n        published: {port}\n    env:\n      VERSION: {version}\n      STARTUP_DELAY_MS: \"1000\"\n{extra}    secrets: [API_TOKEN]\n    replicas: 2\n    health:\n      command: [\"/server\", \"healthcheck\"]\n      interval: 1s\n      retries: 2\n      start_period: 4s\n",
            p = self.profile,
            port = self.port
        );
        let path = self.dir.path().join(format!("app-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deployment-manager"));
        c.args(args)
            .env("DEPLOYMENT_MANAGER_STATE", self.dir.path().join("state.db"))
            .env("API_TOKEN", SECRET)
            .env("NO_COLOR", "1");
        c
    }

    fn dm(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run deployment-manager")
    }

    fn deploy(&self, version: &str, env: &[(&str, &str)], flags: &[&str]) -> Output {
        let app = self.app(version, env);
        let mut args = vec![
            "deploy",
            &self.profile,
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "2s",
        ];
        args.extend_from_slice(flags);
        self.dm(&args)
    }

    fn releases(&self) -> Vec<serde_json::Value> {
        let out = ok(self.dm(&["releases", &self.profile, "--json"]));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let out = ok(self.dm(&["status", &self.profile, "--json"]));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)))
    }

    /// (swarm service, release, replicas) of every service of the profile.
    fn services(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> = self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["release"].as_str().unwrap().to_string(),
                    s["replicas"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn routes(&self) -> serde_json::Value {
        self.status()["proxies"][0]["routes"].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.dm(&["destroy", &self.profile, "--volumes"]);
        purge(&self.profile);
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

/// Writes `text` to `local`, then copies it to `container:path`.
fn put_file(local: &std::path::Path, text: &str, to: &str) {
    std::fs::write(local, text).unwrap();
    common::sh(Command::new("docker").arg("cp").arg(local).arg(to));
}

/// `container:path` as `docker cp` streams it (a tar), or `None` when it
/// is not there.
fn read_file(from: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["cp", from, "-"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// Names of the running containers that match a `docker ps` filter.
fn running_names(filter: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "--format", "{{.Names}}", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn answered_by(log: &[Sample], version: &str) -> usize {
    log.iter()
        .filter(|(_, r)| r.as_deref() == Ok(version))
        .count()
}

#[test]
fn rolling_update_drops_no_request_and_secrets_are_files_only() {
    let _turn = turn();
    let env = Env::new("swarm-roll", 18321);
    let out = ok(env.deploy("v1", &[], &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("release 1 is live"));
    assert_eq!(version(env.port), "v1");

    // A dry run names the update and changes nothing.
    let app = env.app("v2", &[]);
    let out = ok(env.dm(&[
        "deploy",
        &env.profile,
        "--app",
        app.to_str().unwrap(),
        "--dry-run",
    ]));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("update") && plan.contains("dm-swarm-roll-web"),
        "{plan}"
    );
    assert_eq!(env.releases().len(), 1);

    let load = Load::start(env.port, 4);
    let out = ok(env.deploy("v2", &[], &[]));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let log = load.finish();
    all_from(&log, done, "v2");
    assert!(
        answered_by(&log, "v1") > 0,
        "the load started before the update"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("start-first"), "{said}");

    // Swarm did the update: one service, its tasks on release 2.
    assert_eq!(
        env.services(),
        vec![("dm-swarm-roll-web".into(), "2".into(), 2)]
    );
    let st = env.status();
    let running: Vec<&serde_json::Value> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["desired"] == "running" && t["state"] == "running")
        .collect();
    assert_eq!(running.len(), 2, "{st}");
    assert!(
        running
            .iter()
            .all(|t| t["release"] == "2" && !t["node"].as_str().unwrap().is_empty())
    );
    assert_eq!(env.routes(), serde_json::json!({"2": 100}));

    // The secret is a file in the task, and nowhere else.
    assert_eq!(
        get(env.port, "/file-of/API_TOKEN_FILE", None),
        Ok((200, SECRET.to_string()))
    );
    let inspect = Command::new("docker")
        .args(["service", "inspect", "dm-swarm-roll-web"])
        .output()
        .unwrap();
    let inspect = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        inspect.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"),
        "{inspect}"
    );
    assert!(!inspect.contains(SECRET));
    for f in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.dir.path().join(f)) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{f} holds the secret"
            );
        }
    }
    let logs = ok(env.dm(&["logs", &env.profile, "web", "--tail", "20"]));
    assert!(String::from_utf8_lossy(&logs.stdout).contains("listening on 8080 as v2"));
}

#[test]
fn swarm_rolls_an_unhealthy_release_back() {
    let _turn = turn();
    let env = Env::new("swarm-bad", 18322);
    ok(env.deploy("v1", &[], &[]));
    let load = Load::start(env.port, 4);
    let out = env.deploy("v2", &[("FAIL_HEALTH", "1")], &[]);
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let log = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("swarm rolled the update of dm-swarm-bad-web back"),
        "{said}"
    );
    assert_eq!(
        answered_by(&log, "v2"),
        0,
        "the unhealthy release got traffic"
    );
    all_from(&log, done, "v1");
    let releases = env.releases();
    assert_eq!(releases[0]["status"], "failed");
    assert_eq!(releases[1]["status"], "succeeded");
    assert_eq!(
        env.services(),
        vec![("dm-swarm-bad-web".into(), "1".into(), 2)]
    );
    assert_eq!(env.routes(), serde_json::json!({"1": 100}));
}

#[test]
fn blue_green_canary_and_rollback_switch_through_the_proxy() {
    let _turn = turn();
    let env = Env::new("swarm-bg", 18323);
    ok(env.deploy("v1", &[], &[]));
    let load = Load::start(env.port, 4);

    ok(env.deploy("v2", &[], &["--strategy", "blue-green"]));
    let after_bg = Instant::now();
    assert_eq!(version(env.port), "v2");
    // The previous service stays warm for an instant rollback.
    assert_eq!(
        env.services(),
        vec![
            ("dm-swarm-bg-web".into(), "1".into(), 2),
            ("dm-swarm-bg-web-r2".into(), "2".into(), 2)
        ]
    );

    let canary = [
        "--strategy",
        "canary",
        "--canary-steps",
        "50,100",
        "--pause",
        "3s",
        "--analysis-interval",
        "1s",
    ];
    let out = ok(env.deploy("v3", &[], &canary));
    let after_canary = Instant::now();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("50% of traffic on release 3"), "{said}");

    let out = ok(env.dm(&["rollback", &env.profile]));
    let after_rollback = Instant::now();
    assert!(String::from_utf8_lossy(&out.stdout).contains("what release 2 ran"));
    std::thread::sleep(Duration::from_millis(500));
    let log = load.finish();

    // Between the blue-green switch and the end of the canary both v2
    // and v3 answered; after each command only the new release did.
    let during: Vec<Sample> = log
        .iter()
        .filter(|(t, _)| *t > after_bg && *t < after_canary)
        .cloned()
        .collect();
    assert!(answered_by(&during, "v2") > 0 && answered_by(&during, "v3") > 0);
    let after: Vec<Sample> = log
        .iter()
        .filter(|(t, _)| *t > after_rollback)
        .cloned()
        .collect();
    all_from(&after, after_rollback, "v2");
    assert_eq!(env.routes(), serde_json::json!({"2": 100}));
    let releases = env.releases();
    assert_eq!(releases[0]["strategy"], "rollback");
    assert_eq!(releases[0]["runs"], 2);
}

/// Starts a deploy and SIGKILLs it after `after`.
fn killed_deploy(env: &Env, version: &str, flags: &[&str], after: Duration) {
    let app = env.app(version, &[]);
    let mut args = vec!["deploy", &env.profile, "--app", app.to_str().unwrap()];
    args.extend_from_slice(flags);
    let mut child = env
        .cmd(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_deploy_killed_midway_is_undone_by_the_next_run() {
    let _turn = turn();
    let env = Env::new("swarm-kill", 18324);
    ok(env.deploy("v1", &[], &[]));
    let load = Load::start(env.port, 4);

    // Killed during swarm's rolling update, then during a blue-green.
    killed_deploy(&env, "v2", &[], Duration::from_millis(2500));
    let out = ok(env.deploy("v1", &[], &[]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("release 2: the deploying process stopped"),
        "{said}"
    );
    assert_eq!(
        env.services(),
        vec![("dm-swarm-kill-web".into(), "1".into(), 2)]
    );

    killed_deploy(
        &env,
        "v3",
        &["--strategy", "blue-green"],
        Duration::from_millis(2500),
    );
    let out = ok(env.deploy("v1", &[], &[]));
    let back = Instant::now();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("release 3: the deploying process stopped"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = load.finish();
    all_from(&log, back, "v1");

    // Only the live release is left and routed.
    assert_eq!(
        env.services(),
        vec![("dm-swarm-kill-web".into(), "1".into(), 2)]
    );
    assert_eq!(env.routes(), serde_json::json!({"1": 100}));
    let statuses: Vec<String> = env
        .releases()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, vec!["interrupted", "interrupted", "succeeded"]);
}

#[test]
fn migrate_moves_a_docker_host_app_and_its_data_to_the_swarm() {
    let _turn = turn();
    let (old, new, port) = ("swarm-mig", "swarm-mig-swarm", 18326u16);
    purge(old);
    purge(new);
    let env = Env::new(old, port);
    // Env::new set the target to swarm; this profile starts on a plain
    // Docker host and has a dependency that keeps data in a volume.
    ok(env.dm(&["profile", "set", old, "platform", "docker"]));
    // Real servers: Debian's Redis 7, PostgreSQL 15 and MariaDB 10.11.
    common::build_db_images();
    let yaml = std::fs::read_to_string(env.app("v1", &[])).unwrap()
        + &format!(
            "dependencies:\n  cache:\n    kind: redis\n    image: {}\n  db:\n    kind: postgres\n    image: {}\n  shop:\n    kind: mariadb\n    image: {}\n",
            common::REDIS_IMAGE,
            common::POSTGRES_IMAGE,
            common::MARIADB_IMAGE
        );
    let app = env.dir.path().join("app-with-cache.yaml");
    std::fs::write(&app, yaml).unwrap();
    ok(env.dm(&[
        "deploy",
        old,
        "--app",
        app.to_str().unwrap(),
        "--bake",
        "1s",
    ]));
    assert_eq!(version(port), "v1");
    let db = format!("dm-{old}-db");
    for _ in 0..60 {
        let o = Command::new("docker")
            .args(["exec", &db, "pg_isready", "-q"])
            .output()
            .unwrap();
        if o.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    common::sh(Command::new("docker").args([
        "exec",
        &db,
        "psql",
        "-Xqc",
        "create table orders(id int primary key, item text); insert into orders select g, md5(g::text) from generate_series(1, 1000) g",
    ]));
    // The image's root has no password until one is given.
    let mariadb = common::mariadb_sql(&format!("dm-{old}-shop"), "");
    let o = mariadb(
        "create database shop; create table shop.orders(id int primary key, item varchar(40), note text); insert into shop.orders with recursive g(n) as (select 1 union all select n + 1 from g where n < 500) select n, md5(n), if(n % 7 = 0, null, '') from g",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let marker = env.dir.path().join("marker.txt");
    put_file(
        &marker,
        "written before the move",
        &format!("dm-{old}-cache:/data/marker.txt"),
    );

    // The plan names the configs, the data and the cut-over; nothing moves.
    let out = ok(env.dm(&["migrate", old, "--to", "swarm", "--dry-run", "--json"]));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "generate",
            "profile",
            "hand-over",
            "copy",
            "copy",
            "copy",
            "stop",
            "deploy",
            "keep"
        ],
        "{plan}"
    );
    assert_eq!(plan["new_profile"], new);
    assert_eq!(version(port), "v1");
    // Without a terminal and without --yes nothing happens.
    let refused = env.dm(&["migrate", old, "--to", "swarm"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        !env.dm(&["releases", new]).status.success(),
        "no profile was created"
    );

    let out_dir = env.dir.path().join("configs");
    // Under load: the proxy holds the requests while the volume is copied
    // cold, then hands them to the new stack; none fails.
    let load = Load::start(port, 4);
    let out = ok(env.dm(&[
        "migrate",
        old,
        "--to",
        "swarm",
        "--yes",
        "--out",
        out_dir.to_str().unwrap(),
    ]));
    let log = load.finish();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{new} now runs on swarm")), "{said}");
    assert!(said.contains("its public port never closed"), "{said}");
    assert!(said.contains("requests were held"), "{said}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("cache: ")
            && progress.contains("file(s) verified (size, SHA-256, owner and mode)"),
        "{progress}"
    );
    // Read by the servers themselves on both sides of the move.
    assert!(
        progress.contains("data check: db: 1 table(s), 1000 row(s) on both sides"),
        "{progress}"
    );
    assert!(progress.contains("data check: cache: "), "{progress}");
    // MariaDB's rows, NULLs among them, by count and checksum.
    assert!(
        progress.contains("data check: shop: 1 table(s), 500 row(s) on both sides"),
        "{progress}"
    );
    eprintln!(
        "{} requests during the move, none failed; {said}",
        log.len()
    );
    assert!(out_dir.join("stack.yaml").exists());
    assert_eq!(version(port), "v1");
    // The new dependency service holds the old volume's data.
    let task = Command::new("docker")
        .args(["ps", "-q", "--filter"])
        .arg(format!(
            "label=com.docker.swarm.service.name=dm-{new}-cache"
        ))
        .output()
        .unwrap();
    let task = String::from_utf8_lossy(&task.stdout).trim().to_string();
    let copied = read_file(&format!("{task}:/data/marker.txt")).unwrap_or_default();
    assert!(copied.contains("written before the move"));
    // The old stack is stopped, not removed; the proxy it created serves
    // the new profile under the new profile's name.
    assert_eq!(
        running_names(&format!("label=dm.profile={old}")),
        format!("dm-{new}-web-proxy")
    );

    // Back again: what the swarm's dependency wrote since the move comes
    // back with it, under load, and the proxy returns to the old profile.
    put_file(
        &marker,
        "written on the swarm",
        &format!("{task}:/data/after.txt"),
    );
    // A file only the old side has (written while it was stopped) does
    // not survive: the copy replaces the volume's content.
    put_file(&marker, "stale", &format!("dm-{old}-cache:/data/stale.txt"));
    let plan = ok(env.dm(&["migrate", new, "--rollback", "--dry-run"]));
    let said = String::from_utf8_lossy(&plan.stdout);
    assert!(
        said.contains(&format!("copied back into dm-{old}-")),
        "{said}"
    );
    let load = Load::start(port, 4);
    let out = ok(env.dm(&["migrate", new, "--rollback", "--yes"]));
    let log = load.finish();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{old} now runs on")), "{said}");
    eprintln!(
        "{} requests during the way back, none failed; {said}",
        log.len()
    );
    assert_eq!(version(port), "v1");
    let back = read_file(&format!("dm-{old}-cache:/data/after.txt")).unwrap_or_default();
    assert!(back.contains("written on the swarm"));
    assert!(
        read_file(&format!("dm-{old}-cache:/data/stale.txt")).is_none(),
        "the stale file was left in the volume"
    );
    assert!(
        running_names("name=-web-proxy").contains(&format!("dm-{old}-web-proxy")),
        "the proxy is the old profile's again"
    );
    // A profile that was not moved has nowhere to return to.
    let refused = env.dm(&["migrate", old, "--rollback", "--yes"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let _ = env.dm(&["destroy", new, "--volumes"]);
    purge(new);
}

/// A move along the growth path and back, under load through the public
/// port: Swarm → Docker host → Swarm on this engine. The running proxy is
/// handed from profile to profile, so its port never closes; the new
/// stack rolls over the old one health-gated, and the old stack stops
/// last. Before this, a move failed 17,488 of 20,001 requests. (Docker
/// host → Swarm with data is the test above.)
#[test]
fn migrate_between_engines_fails_no_request() {
    let _turn = turn();
    let (first, second, third, port) = ("hop", "hop-docker", "hop-swarm", 18328u16);
    for p in [first, second, third] {
        purge(p);
    }
    let env = Env::new(first, port);
    let app = env.app("v1", &[]);
    ok(env.dm(&[
        "deploy",
        first,
        "--app",
        app.to_str().unwrap(),
        "--bake",
        "1s",
    ]));
    assert_eq!(version(port), "v1");

    let out_dir = |p: &str| env.dir.path().join(p).to_str().unwrap().to_string();
    let (out1, out2) = (out_dir(second), out_dir(third));
    let load = Load::start(port, 4);
    let started = Instant::now();
    // `compose` is the catalog's single Docker host.
    let out = ok(env.dm(&[
        "migrate", first, "--to", "compose", "--name", second, "--yes", "--out", &out1,
    ]));
    let to_docker = started.elapsed();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("its public port never closed"), "{said}");
    assert!(said.contains(&format!("dm-{second}-web-proxy")), "{said}");
    let started = Instant::now();
    let out = ok(env.dm(&[
        "migrate", second, "--to", "swarm", "--name", third, "--yes", "--out", &out2,
    ]));
    let back = started.elapsed();
    let log = load.finish();
    eprintln!(
        "{} requests, none failed; to a Docker host {:.1}s, back to swarm {:.1}s",
        log.len(),
        to_docker.as_secs_f64(),
        back.as_secs_f64()
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("its public port never closed"), "{said}");
    assert_eq!(version(port), "v1");

    // The proxy is the last profile's; the others run nothing.
    let status = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&ok(env.dm(&["status", p, "--json"])).stdout).unwrap()
    };
    let last = status(third);
    assert_eq!(last["proxies"].as_array().map(Vec::len), Some(1), "{last}");
    let names = |p: &str| running_names(&format!("label=dm.profile={p}"));
    // The label of the profile that created the proxy stays on it.
    assert_eq!(names(first), format!("dm-{third}-web-proxy"));
    assert_eq!(names(second), "");
    let replicas = Command::new("docker")
        .args(["service", "ls", "--format", "{{.Replicas}}", "--filter"])
        .arg(format!("label=dm.profile={first}"))
        .output()
        .unwrap();
    let replicas = String::from_utf8_lossy(&replicas.stdout).to_string();
    assert!(
        replicas.lines().all(|l| l.starts_with("0/")),
        "the first swarm stack is scaled to zero: {replicas}"
    );
    // Destroying the profiles the proxy left does not touch it.
    ok(env.dm(&["destroy", second, "--volumes"]));
    ok(env.dm(&["destroy", first, "--volumes"]));
    assert_eq!(version(port), "v1");
    ok(env.dm(&["destroy", third, "--volumes"]));
    for p in [first, second, third] {
        purge(p);
    }
}

/// A move whose new deploy fails changes nothing for users: the proxy
/// goes back to the old profile with its table, and no request fails. (A
/// Docker host to a Docker host; the new deploy lacks a secret's value.)
#[test]
fn a_failed_move_hands_the_proxy_back_and_fails_no_request() {
    let _turn = turn();
    let (old, new, port) = ("hop-fail", "hop-fail-compose", 18329u16);
    purge(new);
    let env = Env::new(old, port);
    ok(env.dm(&["profile", "set", old, "platform", "docker"]));
    let app = env.app("v1", &[]);
    let yaml = std::fs::read_to_string(&app)
        .unwrap()
        .replace("secrets: [API_TOKEN]", "secrets: [API_TOKEN, DB_PASSWORD]");
    std::fs::write(&app, yaml).unwrap();
    let deployed = env
        .cmd(&[
            "deploy",
            old,
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "1s",
        ])
        .env("DB_PASSWORD", "s3cret")
        .output()
        .unwrap();
    ok(deployed);
    let load = Load::start(port, 4);
    let out_dir = env.dir.path().join("configs");
    let failed = env
        .cmd(&[
            "migrate", old, "--to", "compose", "--name", new, "--yes", "--out",
        ])
        .arg(&out_dir)
        .env_remove("DB_PASSWORD")
        .output()
        .unwrap();
    let log = load.finish();
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains(&format!("the proxy is back with {old}")),
        "{}",
        text(&failed)
    );
    eprintln!("{} requests during the failed move, none failed", log.len());
    assert_eq!(version(port), "v1");
    let proxies = env.status()["proxies"].clone();
    assert_eq!(proxies.as_array().map(Vec::len), Some(1), "{proxies}");
    assert_eq!(env.routes(), serde_json::json!({"1": 100}));
    assert_eq!(
        running_names(&format!("name=^dm-{old}-web-proxy$")),
        format!("dm-{old}-web-proxy")
    );
    let _ = env.dm(&["destroy", new, "--volumes"]);
    purge(new);
}

/// The release command on a swarm: a one-off job service of the new image
/// with the service's settings and secrets, on the stack's network beside
/// its dependency (the test server standing in for a database records what
/// it is sent). It runs once per release before the update; one that fails
/// stops the deploy and the old release serves on.
#[test]
fn the_release_command_runs_as_a_swarm_job_before_the_update() {
    let _turn = turn();
    let profile = "swarm-release";
    let env = Env::new(profile, 18327);
    let deploy = |version: &str, command: &str| {
        let app = env.app(version, &[]);
        let yaml = std::fs::read_to_string(&app).unwrap()
            + &format!(
                "dependencies:\n  cache:\n    kind: redis\n    image: {IMAGE}\nrelease:\n  service: web\n  command: {command}\n  timeout: 60s\n"
            );
        std::fs::write(&app, yaml).unwrap();
        env.dm(&[
            "deploy",
            profile,
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "0s",
        ])
    };
    let records = || {
        let id = common::sh(Command::new("docker").args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name=dm-{profile}-cache"),
        ]));
        let id = id
            .lines()
            .next()
            .expect("the dependency's task")
            .to_string();
        common::sh(Command::new("docker").args([
            "exec",
            &id,
            "/server",
            "call",
            "http://127.0.0.1:8080/records",
        ]))
        .trim()
        .to_string()
    };
    let record = |v: &str| format!("[call, \"http://cache:8080/record?v={v}\"]");
    ok(deploy("v1", &record("v1")));
    assert_eq!(records(), "v1");
    ok(deploy("v2", &record("v2")));
    assert_eq!(records(), "v1\nv2");
    assert_eq!(version(env.port), "v2");
    let out = deploy("v3", "[fail]");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("release command"), "{}", text(&out));
    assert_eq!(version(env.port), "v2");
    assert_eq!(env.releases()[0]["status"], "failed");
    assert!(
        !common::sh(Command::new("docker").args(["service", "ls", "--format", "{{.Name}}"]))
            .contains("release-command"),
        "the job is removed"
    );
    assert_eq!(records(), "v1\nv2");
}
