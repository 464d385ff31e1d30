//! Deploys for real on the local Docker Engine, through our proxy, under
//! load from a client on loopback: every strategy with zero failed
//! requests, WebSockets kept through a switch until drained, canary
//! shares and cohorts, automatic rollbacks, the deploy lock, and recovery
//! after the tool is killed mid-deploy. Images are built FROM scratch from
//! the project's test server; nothing is pulled.

mod common;

use common::load::{Load, Sample, all_from, get, version};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const IMAGE: &str = "dm-e2e/server:1";

fn image() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| common::build_test_image(IMAGE));
}

/// One profile on the local engine, destroyed (with its volumes) at the end.
struct Env {
    dir: tempfile::TempDir,
    profile: String,
    port: u16,
    /// Lines added to the service's description (indented four spaces).
    service_extra: String,
}

impl Env {
    fn new(profile: &str, port: u16) -> Env {
        image();
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            profile: profile.into(),
            port,
            service_extra: String::new(),
        };
        env.dm(&["destroy", profile, "--volumes"]);
        let app = env.app("v1", &[]);
        let out = env.dm(&["profile", "create", profile, app.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        env
    }

    /// An app.yaml whose single public service answers with `version`.
    fn app(&self, version: &str, env: &[(&str, &str)]) -> PathBuf {
        let extra: String = env
            .iter()
            .map(|(k, v)| format!("      {k}: \"{v}\"\n"))
            .collect();
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: {p}\nservices:\n  web:\n    image: {IMAGE}\n    ports:\n      - port: 8080\n        public: true\n        published: {port}\n    env:\n      VERSION: {version}\n{extra}    replicas: 2\n    health:\n      http: /health\n{more}",
            p = self.profile,
            port = self.port,
            more = self.service_extra
        );
        let path = self.dir.path().join(format!("app-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deployment-manager"));
        c.args(args)
            .env("DEPLOYMENT_MANAGER_STATE", self.dir.path().join("state.db"))
            .env("NO_COLOR", "1");
        c
    }

    fn dm(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run deployment-manager")
    }

    fn deploy(&self, version: &str, env: &[(&str, &str)], flags: &[&str]) -> Output {
        let app = self.app(version, env);
        let mut args = vec!["deploy", &self.profile, "--app", app.to_str().unwrap()];
        args.extend_from_slice(flags);
        self.dm(&args)
    }

    fn releases(&self) -> Vec<serde_json::Value> {
        let out = self.dm(&["releases", &self.profile, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)))
    }

    fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}} {{.State}}", "--filter"])
            .arg(format!("label=dm.profile={}", self.profile))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
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

/// A WebSocket opened before a deploy, pinged every 100 ms.
struct Ws {
    replies: Arc<Mutex<Vec<(Instant, String)>>>,
    closed: Arc<Mutex<Option<Instant>>>,
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Ws {
    fn open(port: u16) -> Ws {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), stream)
            .expect("WebSocket handshake through the proxy");
        let replies = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (replies.clone(), closed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let alive = ws.send(tungstenite::Message::text("ping")).is_ok()
                    && match ws.read() {
                        Ok(m) if m.is_text() => {
                            r.lock()
                                .unwrap()
                                .push((Instant::now(), m.into_text().unwrap().to_string()));
                            true
                        }
                        _ => false,
                    };
                if !alive {
                    *c.lock().unwrap() = Some(Instant::now());
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ws {
            replies,
            closed,
            thread,
            stop,
        }
    }

    /// Asserts the socket answered from `old` after `switched` and was
    /// closed by the drain.
    fn kept_through(self, old: &str, switched: Instant) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        let replies = self.replies.lock().unwrap();
        assert!(
            replies
                .iter()
                .any(|(t, m)| *t > switched && m == &format!("{old}:ping")),
            "the WebSocket on {old} did not answer after the switch: {} replies",
            replies.len()
        );
        assert!(
            self.closed.lock().unwrap().is_some(),
            "the drain did not close the WebSocket"
        );
    }
}

fn first_from(log: &[Sample], version: &str) -> Instant {
    log.iter()
        .find(|(_, r)| r.as_deref() == Ok(version))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("no response from {version}"))
}

fn zero_downtime(profile: &str, port: u16, strategy: &str, with_ws: bool) {
    let env = Env::new(profile, port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    assert_eq!(version(port), "v1");
    let ws = with_ws.then(|| Ws::open(port));
    let load = Load::start(port, 4);
    let out = ok(env.deploy(
        "v2",
        &[],
        &[
            "--strategy",
            strategy,
            "--drain-timeout",
            "3s",
            "--bake",
            "1s",
        ],
    ));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let log = load.finish();
    all_from(&log, done, "v2");
    if let Some(ws) = ws {
        ws.kept_through("v1", first_from(&log, "v2"));
    }
    let rel = env.releases();
    assert_eq!(rel[0]["status"], "succeeded", "{}", text(&out));
    assert_eq!(rel[0]["strategy"], strategy);
    let events = rel[0]["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["phase"] == "done"), "{events:?}");
    // Same release again: nothing changes.
    let again = ok(env.deploy("v2", &[], &["--strategy", strategy]));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again)
    );
    assert_eq!(env.releases().len(), 2);
}

#[test]
fn rolling_update_loses_no_request_and_drains_websockets() {
    zero_downtime("e2e-rolling", 18301, "rolling", true);
}

/// Exit code and init flag of each stopped container of the profile.
fn stopped(env: &Env) -> Vec<(String, String)> {
    env.containers()
        .iter()
        .filter(|c| c.ends_with(" exited"))
        .map(|c| {
            let name = c.split(' ').next().unwrap().to_string();
            let o = Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{.State.ExitCode}} {{.HostConfig.Init}}",
                    &name,
                ])
                .output()
                .unwrap();
            (name, String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .collect()
}

/// A server that runs as PID 1 without a SIGTERM handler (busybox httpd,
/// most servers started without an init) ignores SIGTERM. Our containers
/// run an init process that forwards it, so the drained replicas end on
/// SIGTERM (exit 143) instead of being killed when the stop timeout runs
/// out (137). `init: false` in app.yaml shows the difference. Rolling
/// steps do not wait for a drained replica to exit (scripts/bench-deploy.sh
/// measures the time).
#[test]
fn a_server_that_ignores_sigterm_still_stops_on_sigterm() {
    let mut env = Env::new("e2e-sigterm", 18316);
    env.service_extra = "    stop_grace_period: 4s\n".into();
    let ignore = [("IGNORE_TERM", "1")];
    ok(env.deploy("v1", &ignore, &["--bake", "0s"]));
    let load = Load::start(env.port, 4);
    ok(env.deploy("v2", &ignore, &["--drain-timeout", "1s", "--bake", "0s"]));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    all_from(&load.finish(), done, "v2");
    let v1 = stopped(&env);
    assert_eq!(v1.len(), 2, "{v1:?}");
    for (name, state) in &v1 {
        assert_eq!(
            state, "143 true",
            "{name}: ended by SIGTERM through the init"
        );
    }
    // Without the init, SIGTERM is lost and the engine kills at the timeout.
    env.service_extra = "    stop_grace_period: 4s\n    init: false\n".into();
    ok(env.deploy("v3", &ignore, &["--bake", "0s"]));
    ok(env.deploy("v4", &ignore, &["--bake", "0s"]));
    let killed: Vec<_> = stopped(&env)
        .into_iter()
        .filter(|(_, s)| s.ends_with("false"))
        .collect();
    assert!(!killed.is_empty());
    for (name, state) in &killed {
        assert_eq!(
            state, "137 false",
            "{name}: killed when the stop timeout ran out"
        );
    }
}

/// What the accessory `cache` (the test server standing in for a
/// database) was sent by release commands, one line each.
fn records(profile: &str) -> String {
    common::sh(Command::new("docker").args([
        "exec",
        &format!("dm-{profile}-cache"),
        "/server",
        "call",
        "http://127.0.0.1:8080/records",
    ]))
    .trim()
    .to_string()
}

/// The release command (a schema migration) runs once per release, after
/// the release's image exists and before any traffic moves, with its
/// service's settings on the app's network: here it records its version in
/// the dependency. Under load the update fails no request. A release
/// command that fails stops the deploy with its logs: nothing of the new
/// release starts and the old one serves on.
#[test]
fn the_release_command_runs_once_before_traffic_moves_and_a_failed_one_switches_nothing() {
    let port = 18317;
    let profile = "e2e-release-cmd";
    let env = Env::new(profile, port);
    let app = |version: &str, command: &str| {
        let app = env.app(version, &[]);
        let yaml = std::fs::read_to_string(&app).unwrap()
            + &format!(
                "dependencies:\n  cache:\n    kind: redis\n    image: {IMAGE}\nrelease:\n  service: web\n  command: {command}\n  timeout: 60s\n"
            );
        std::fs::write(&app, yaml).unwrap();
        app
    };
    let deploy = |version: &str, command: &str| {
        let app = app(version, command);
        env.dm(&[
            "deploy",
            profile,
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "0s",
            "--json",
        ])
    };
    let record = |v: &str| format!("[call, \"http://cache:8080/record?v={v}\"]");
    ok(deploy("v1", &record("v1")));
    assert_eq!(records(profile), "v1");

    let load = Load::start(port, 4);
    let out = ok(deploy("v2", &record("v2")));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    all_from(&load.finish(), done, "v2");
    assert_eq!(records(profile), "v1\nv2", "once per release");
    let phases: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["phase"].as_str().map(String::from))
        .collect();
    let ran = phases
        .iter()
        .position(|p| p == "release-command")
        .expect("a release-command event");
    let moved = phases
        .iter()
        .position(|p| p == "rolling")
        .expect("a rolling event");
    assert!(
        ran < moved,
        "the command runs before traffic moves: {phases:?}"
    );
    // The same release again changes nothing and runs nothing.
    ok(deploy("v2", &record("v2")));
    assert_eq!(records(profile), "v1\nv2");

    // The dry run lists it first and runs nothing.
    let dry = app("v3", &record("v3"));
    let plan = ok(env.dm(&[
        "deploy",
        profile,
        "--app",
        dry.to_str().unwrap(),
        "--dry-run",
    ]));
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan.contains("release command"), "{plan}");
    assert_eq!(records(profile), "v1\nv2");

    let out = deploy("v3", "[fail]");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("release command"), "{said}");
    assert!(
        said.contains("relation \\\"orders\\\" already exists")
            || said.contains("relation \"orders\" already exists"),
        "the command's own logs: {said}"
    );
    assert_eq!(version(port), "v2");
    let rel = env.releases();
    assert_eq!(rel[0]["status"], "failed");
    assert!(
        rel[0]["reason"].as_str().unwrap().contains("exited 2"),
        "{:?}",
        rel[0]["reason"]
    );
    assert!(
        !env.containers()
            .iter()
            .any(|c| c.contains("-r3-") || c.contains("release-command")),
        "nothing of release 3 is left: {:?}",
        env.containers()
    );
    assert_eq!(records(profile), "v1\nv2");
}

#[test]
fn blue_green_switch_loses_no_request_and_keeps_old_colour_warm() {
    zero_downtime("e2e-bluegreen", 18302, "blue-green", true);
    let env_containers = Command::new("docker")
        .args([
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            "label=dm.profile=e2e-bluegreen",
        ])
        .output()
        .unwrap();
    // The Env was dropped (destroyed); nothing of the profile is left.
    assert!(
        String::from_utf8_lossy(&env_containers.stdout)
            .trim()
            .is_empty()
    );
}

#[test]
fn recreate_holds_requests_instead_of_failing_them() {
    zero_downtime("e2e-recreate", 18303, "recreate", false);
}

#[test]
fn canary_splits_by_weight_keeps_cohorts_and_promotes() {
    let port = 18304;
    let env = Env::new("e2e-canary", port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    // A dry run lists the changes and makes none.
    let before = env.containers();
    let plan = ok(env.deploy("v2", &[], &["--strategy", "canary", "--dry-run"]));
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        plan.contains("dm-e2e-canary-web-r2-0")
            && plan.contains("replace")
            && plan.contains("nothing was changed"),
        "{plan}"
    );
    assert_eq!(env.containers(), before);
    assert_eq!(env.releases().len(), 1);
    let out = ok(env.deploy(
        "v2",
        &[],
        &[
            "--strategy",
            "canary",
            "--canary-steps",
            "30,100",
            "--pause",
            "manual",
            "--canary-allow",
            "alice",
        ],
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("promote"),
        "{}",
        text(&out)
    );
    let n = 600;
    let v2 = (0..n).filter(|_| version(port) == "v2").count() as f64 / n as f64;
    assert!(
        (0.22..0.38).contains(&v2),
        "canary share {v2} is not near 30%"
    );
    // Cohorts are sticky; the allowlist forces a client in.
    for (cookie, want) in [
        ("dm-cohort=42", "v2"),
        ("dm-cohort=9000", "v1"),
        ("dm-cohort=alice", "v2"),
    ] {
        for _ in 0..20 {
            assert_eq!(get(port, "/", Some(cookie)).unwrap().1, want, "{cookie}");
        }
    }
    let load = Load::start(port, 4);
    ok(env.dm(&["promote", "e2e-canary"]));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    all_from(&load.finish(), done, "v2");
    assert_eq!(env.releases()[0]["status"], "succeeded");
}

#[test]
fn canary_analysis_rolls_back_a_failing_release_and_passes_a_good_one() {
    let port = 18305;
    let env = Env::new("e2e-analysis", port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    let load = Load::start(port, 4);
    let flags = [
        "--strategy",
        "canary",
        "--canary-steps",
        "50,100",
        "--pause",
        "4s",
        "--analysis-interval",
        "1s",
        "--bake",
        "1s",
    ];
    let bad = env.deploy("v2", &[("ERROR_PERCENT", "50")], &flags);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("canary analysis") && err.contains("success rate"),
        "{err}"
    );
    let back = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // The canary's own errors are the price of a canary; after the
    // rollback everything is v1 again.
    let log: Vec<Sample> = load.samples();
    all_from(&log, back, "v1");
    assert!(
        log.iter()
            .all(|(_, r)| !matches!(r, Err(e) if !e.starts_with("500"))),
        "only the canary's own 500s"
    );
    assert_eq!(env.releases()[0]["status"], "failed");

    let load = Load::start(port, 4);
    ok(env.deploy("v3", &[], &flags));
    let done = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    all_from(&load.finish(), done, "v3");
}

fn automatic_rollback(profile: &str, port: u16, bad_env: (&str, &str), expect: &[&str]) {
    let env = Env::new(profile, port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    let load = Load::start(port, 4);
    let out = env.deploy(
        "v2",
        &[bad_env],
        &["--deploy-timeout", "4s", "--bake", "1s"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for e in expect {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
    assert!(
        log.iter().all(|(_, r)| r.as_deref() == Ok("v1")),
        "only v1 ever served"
    );
    let rel = env.releases();
    assert_eq!(rel[0]["status"], "failed");
    assert_eq!(rel[1]["status"], "succeeded");
    let leftovers: Vec<String> = env
        .containers()
        .into_iter()
        .filter(|c| c.contains("-r2-"))
        .collect();
    assert!(leftovers.is_empty(), "failed release left {leftovers:?}");
}

#[test]
fn unhealthy_release_is_rolled_back_with_its_logs() {
    automatic_rollback(
        "e2e-unhealthy",
        18306,
        ("FAIL_HEALTH", "1"),
        &[
            "not healthy after 4 s",
            "/health answered 503",
            "last log lines",
            "listening on 8080 as v2",
        ],
    );
}

#[test]
fn crash_looping_release_is_rolled_back_with_its_logs() {
    automatic_rollback(
        "e2e-crashloop",
        18307,
        ("CRASH", "1"),
        &["crash-looping", "crashing on purpose"],
    );
}

#[test]
fn a_second_deploy_is_refused_while_one_runs() {
    let env = Env::new("e2e-lock", 18308);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    let app = env.app("v2", &[("STARTUP_DELAY_MS", "3000")]);
    let mut first = env
        .cmd(&[
            "deploy",
            "e2e-lock",
            "--app",
            app.to_str().unwrap(),
            "--bake",
            "1s",
        ])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !env
        .containers()
        .iter()
        .any(|c| c.starts_with("dm-e2e-lock-lock "))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = env.deploy("v3", &[], &[]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("is locked") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(version(18308), "v2");
}

#[test]
fn killing_the_tool_mid_deploy_never_breaks_the_app_and_the_next_run_reconciles() {
    let port = 18309;
    let env = Env::new("e2e-kill", port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    // Kill points: before the new containers are healthy, during the
    // switch and drain, during the bake.
    for (i, delay) in [700u64, 2200, 3400, 4600].into_iter().enumerate() {
        let v = format!("k{i}");
        let load = Load::start(port, 3);
        let app = env.app(&v, &[("STARTUP_DELAY_MS", "1000")]);
        let mut child = env
            .cmd(&[
                "deploy",
                "e2e-kill",
                "--app",
                app.to_str().unwrap(),
                "--drain-timeout",
                "2s",
                "--bake",
                "3s",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        load.finish();
        // The next run finds the interrupted release and reconciles.
        let out = ok(env.deploy(&v, &[("STARTUP_DELAY_MS", "1000")], &["--bake", "1s"]));
        let rel = env.releases();
        let live = rel[0]["number"].as_u64().unwrap();
        assert_eq!(rel[0]["status"], "succeeded", "{}", text(&out));
        let interrupted = rel.iter().filter(|r| r["status"] == "interrupted").count();
        let status: serde_json::Value =
            serde_json::from_slice(&ok(env.dm(&["status", "e2e-kill", "--json"])).stdout).unwrap();
        let routes = status["proxies"][0]["routes"].as_object().unwrap();
        assert_eq!(
            routes.keys().collect::<Vec<_>>(),
            vec![&live.to_string()],
            "only the live release is routed"
        );
        for r in rel
            .iter()
            .filter(|r| r["status"] == "interrupted" || r["status"] == "failed")
        {
            let tag = format!("-r{}-", r["number"]);
            assert!(
                !env.containers().iter().any(|c| c.contains(&tag)),
                "containers of unfinished release {} remain (delay {delay} ms)",
                r["number"]
            );
        }
        assert_eq!(version(port), v);
        eprintln!("kill after {delay} ms: {interrupted} interrupted release(s) so far, reconciled");
    }
}

#[test]
fn a_release_that_goes_bad_during_the_bake_is_rolled_back() {
    let port = 18310;
    let env = Env::new("e2e-bake", port);
    ok(env.deploy("v1", &[], &["--bake", "1s"]));
    let load = Load::start(port, 4);
    // Healthy by its health check, but half of its answers are errors.
    let out = env.deploy("v2", &[("ERROR_PERCENT", "50")], &["--bake", "5s"]);
    let back = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let log = load.samples();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("during the bake period"),
        "{}",
        text(&out)
    );
    all_from(&log, back, "v1");
    assert_eq!(env.releases()[0]["status"], "failed");
}

#[test]
fn pause_holds_requests_until_resume() {
    let port = 18311;
    let env = Env::new("e2e-pause", port);
    ok(env.deploy("v1", &[], &["--bake", "0s"]));
    ok(env.dm(&["pause", "e2e-pause", "--max", "20s"]));
    let started = Instant::now();
    let held = std::thread::spawn(move || (get(port, "/", None), started.elapsed()));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!held.is_finished(), "a request went through while paused");
    assert_eq!(
        get(port, "/health", None).unwrap(),
        (200, "paused".to_string()),
        "health checks still answer while paused"
    );
    ok(env.dm(&["resume", "e2e-pause"]));
    let (r, took) = held.join().unwrap();
    assert_eq!(r.unwrap(), (200, "v1".to_string()));
    assert!(took >= Duration::from_millis(1500), "{took:?}");
}

#[test]
fn secrets_reach_containers_as_files_and_are_stored_nowhere() {
    let port = 18312;
    let env = Env::new("e2e-secrets", port);
    let app = env.app("v1", &[]);
    let yaml = std::fs::read_to_string(&app).unwrap().replace(
        "    replicas: 2\n",
        "    replicas: 1\n    secrets: [API_TOKEN]\n",
    );
    std::fs::write(&app, yaml).unwrap();
    let value = "s3cr3t-value-4242";
    // Missing secret: refused before anything changes.
    let missing = env.dm(&["deploy", "e2e-secrets", "--app", app.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("API_TOKEN"));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    let env_file = env.dir.path().join("secrets.env");
    std::fs::write(&env_file, format!("API_TOKEN={value}\n")).unwrap();
    ok(env.dm(&[
        "deploy",
        "e2e-secrets",
        "--app",
        app.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
        "--bake",
        "0s",
    ]));
    let name = "dm-e2e-secrets-web-r1-0";
    let inspect = common::sh(Command::new("docker").args(["inspect", name]));
    assert!(
        !inspect.contains(value),
        "the value is in the container's configuration"
    );
    assert!(
        inspect.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"),
        "{inspect}"
    );
    let file = Command::new("docker")
        .args(["cp", &format!("{name}:/run/secrets/API_TOKEN"), "-"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&file.stdout).contains(value),
        "the secret file is missing"
    );
    let db = std::fs::read(env.dir.path().join("state.db")).unwrap();
    let wal = std::fs::read(env.dir.path().join("state.db-wal")).unwrap_or_default();
    let needle = value.as_bytes();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the value is in the state database"
        );
    }
}

#[test]
fn dependencies_run_as_accessories_that_deploys_never_touch() {
    let port = 18313;
    let env = Env::new("e2e-accessory", port);
    let with_dep = |version: &str| {
        let app = env.app(version, &[]);
        let yaml = std::fs::read_to_string(&app).unwrap()
            + &format!("dependencies:\n  cache:\n    kind: redis\n    image: {IMAGE}\n");
        std::fs::write(&app, yaml).unwrap();
        app
    };
    let id = || {
        common::sh(Command::new("docker").args([
            "inspect",
            "-f",
            "{{.Id}}",
            "dm-e2e-accessory-cache",
        ]))
    };
    let v1 = with_dep("v1");
    ok(env.dm(&[
        "deploy",
        "e2e-accessory",
        "--app",
        v1.to_str().unwrap(),
        "--bake",
        "0s",
    ]));
    let first = id();
    let v2 = with_dep("v2");
    let out = ok(env.dm(&[
        "deploy",
        "e2e-accessory",
        "--app",
        v2.to_str().unwrap(),
        "--bake",
        "0s",
        "--json",
    ]));
    // --json: one JSON object per line, progress events then the report.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["phase"] == "rolling"), "{lines:?}");
    assert_eq!(lines.last().unwrap()["status"], "succeeded");
    assert_eq!(id(), first, "the accessory was replaced by a deploy");
    let vols = common::sh(Command::new("docker").args([
        "volume",
        "ls",
        "-q",
        "--filter",
        "label=dm.profile=e2e-accessory",
    ]));
    assert!(vols.contains("dm-e2e-accessory-cache-data"), "{vols}");
    assert_eq!(version(port), "v2");
}

#[test]
fn monitor_records_verdicts_and_alerts_once_per_change() {
    let port = 18314;
    let env = Env::new("e2e-monitor", port);
    ok(env.deploy("v1", &[], &["--bake", "0s"]));
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hook.local_addr().unwrap().port();
    let alerts = Arc::new(Mutex::new(Vec::<String>::new()));
    let a = alerts.clone();
    std::thread::spawn(move || {
        for s in hook.incoming().flatten() {
            let mut s = s;
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            a.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
    let webhook = format!("http://127.0.0.1:{hook_port}/alerts");
    let out = ok(env.dm(&[
        "monitor",
        "e2e-monitor",
        "--interval",
        "1s",
        "--count",
        "2",
        "--webhook",
        &webhook,
        "--json",
    ]));
    let checks: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "health" && c["verdict"] == "ok"),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "error_rate" && c["verdict"] == "not_applicable"),
        "{checks:?}"
    );
    assert!(
        alerts.lock().unwrap().is_empty(),
        "no alert while all is well"
    );
    // One replica dies: the health check fails and one alert goes out.
    common::sh(Command::new("docker").args(["stop", "-t", "1", "dm-e2e-monitor-web-r1-1"]));
    let out = env.dm(&[
        "monitor",
        "e2e-monitor",
        "--interval",
        "1s",
        "--count",
        "3",
        "--webhook",
        &webhook,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failed"),
        "{}",
        text(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    let alerts = alerts.lock().unwrap();
    let health: Vec<&String> = alerts.iter().filter(|a| a.contains("\"health\"")).collect();
    assert_eq!(health.len(), 1, "one alert per change, got {alerts:?}");
    assert!(
        health[0].contains("failed") && health[0].contains("dm-e2e-monitor-web-r1-1"),
        "{}",
        health[0]
    );
}

#[test]
fn sticky_sessions_keep_a_client_on_one_replica() {
    let port = 18315;
    let env = Env::new("e2e-sticky", port);
    let app = env.app("v1", &[]);
    let yaml = std::fs::read_to_string(&app).unwrap().replace(
        "    replicas: 2\n",
        "    replicas: 3\n    traits:\n      sticky_sessions: true\n",
    );
    std::fs::write(&app, yaml).unwrap();
    ok(env.dm(&[
        "deploy",
        "e2e-sticky",
        "--app",
        app.to_str().unwrap(),
        "--bake",
        "0s",
    ]));
    // Without the cookie, requests spread over the replicas.
    let spread: std::collections::BTreeSet<String> = (0..12)
        .map(|_| get(port, "/whoami", None).unwrap().1)
        .collect();
    assert_eq!(spread.len(), 3, "{spread:?}");
    // With the affinity cookie the proxy set, one replica answers.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /whoami HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = String::new();
    s.read_to_string(&mut first).unwrap();
    let cookie = first
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no affinity cookie in {first}"))
        .to_string();
    let pinned: std::collections::BTreeSet<String> = (0..12)
        .map(|_| get(port, "/whoami", Some(&cookie)).unwrap().1)
        .collect();
    assert_eq!(pinned.len(), 1, "{cookie}: {pinned:?}");
}

/// An image on no engine is pulled from its registry by the first host;
/// when that fails (no registry is reachable here) the deploy stops before
/// anything starts, naming the image and why.
#[test]
fn an_image_no_engine_holds_is_pulled_and_a_failed_pull_changes_nothing() {
    let env = Env::new("e2e-pull", 18318);
    let app = env.dir.path().join("app-remote.yaml");
    std::fs::write(
        &app,
        "apiVersion: deployment-manager/v1\nkind: App\nname: e2e-pull\nservices:\n  web:\n    image: registry.invalid/acme/web:1.0\n    ports:\n      - port: 8080\n        public: true\n        published: 18318\n",
    )
    .unwrap();
    let app = app.to_str().unwrap();
    let plan = ok(env.dm(&["deploy", "e2e-pull", "--app", app, "--dry-run", "--json"]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(
        plan["plan"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "pull" && l["name"] == "registry.invalid/acme/web:1.0"),
        "{plan}"
    );
    let out = env.dm(&["deploy", "e2e-pull", "--app", app]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("image registry.invalid/acme/web:1.0 is on none of")
            && said.contains("could not pull it"),
        "{said}"
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

/// A profile with a registry builds its service on the host, pushes the
/// build to the registry (a real one on loopback) and runs it; the dry run
/// lists the build and the push.
#[test]
fn a_registry_profile_builds_pushes_and_runs_the_pushed_build() {
    let Some(registry) = common::registry::Registry::start("127.0.0.1", 18340) else {
        return;
    };
    let env = Env::new("e2e-registry", 18319);
    let repo = "127.0.0.1:18340/dm/e2e-registry-web";
    // A build left by an earlier run would be kept, not built. Untagged by
    // name, never removed by id: the same build is the id of IMAGE too,
    // which the other tests are running.
    let old = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}", repo])
        .output()
        .unwrap();
    for tag in String::from_utf8_lossy(&old.stdout).split_whitespace() {
        let _ = Command::new("docker").args(["rmi", tag]).output();
    }
    ok(env.dm(&[
        "profile",
        "set",
        "e2e-registry",
        "registry",
        "127.0.0.1:18340/dm",
    ]));
    common::build_context(&env.dir.path().join("ctx"));
    let app = env.dir.path().join("app-build.yaml");
    std::fs::write(
        &app,
        "apiVersion: deployment-manager/v1\nkind: App\nname: e2e-registry\nservices:\n  web:\n    build:\n      context: ctx\n    ports:\n      - port: 8080\n        public: true\n        published: 18319\n    env:\n      VERSION: built\n    health:\n      http: /health\n",
    )
    .unwrap();
    let app = app.to_str().unwrap();
    let plan = ok(env.dm(&[
        "deploy",
        "e2e-registry",
        "--app",
        app,
        "--dry-run",
        "--json",
    ]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let actions: Vec<&str> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "image")
        .filter_map(|l| l["action"].as_str())
        .collect();
    assert_eq!(actions, ["build", "push"], "{plan}");

    let out = ok(env.dm(&["deploy", "e2e-registry", "--app", app, "--bake", "0s"]));
    let said = text(&out);
    assert!(said.contains(&format!("pushed {repo}:")), "{said}");
    let tags = registry.tags("dm/e2e-registry-web");
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(version(18319), "built");
    let images = Command::new("docker")
        .args([
            "ps",
            "--format",
            "{{.Image}}",
            "--filter",
            "label=dm.profile=e2e-registry",
        ])
        .output()
        .unwrap();
    let images = String::from_utf8_lossy(&images.stdout);
    // Containers are created from the image id the deploy resolved.
    let pushed = Command::new("docker")
        .args(["images", "-q", &format!("{repo}:{}", tags[0])])
        .output()
        .unwrap();
    let pushed = String::from_utf8_lossy(&pushed.stdout).trim().to_string();
    assert!(
        !pushed.is_empty() && images.lines().any(|i| i == pushed),
        "{pushed} not in {images}"
    );
}

/// A service whose public port speaks gRPC (h2c), checked by the standard
/// gRPC health service as a Kubernetes `grpc` probe would: a rolling
/// update under gRPC calls over one kept HTTP/2 connection fails none, and
/// a release whose server answers `NOT_SERVING` (its port open, so a port
/// check would pass it) never takes traffic.
#[test]
fn a_grpc_service_rolls_over_h2c_and_its_grpc_health_check_gates_the_release() {
    let port = 18330;
    let env = Env::new("e2e-grpc", port);
    let app = |version: &str, fail_health: bool| {
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: e2e-grpc\nservices:\n  web:\n    image: {IMAGE}\n    ports:\n      - port: 9090\n        protocol: grpc\n        public: true\n        published: {port}\n    env:\n      VERSION: {version}\n      GRPC_PORT: \"9090\"\n      FAIL_HEALTH: \"{}\"\n    replicas: 2\n    health:\n      grpc:\n        port: 9090\n",
            u8::from(fail_health)
        );
        let path = env.dir.path().join(format!("grpc-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    };
    let deploy = |version: &str, fail_health: bool, flags: &[&str]| {
        let path = app(version, fail_health);
        let mut args = vec!["deploy", "e2e-grpc", "--app", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        env.dm(&args)
    };
    ok(deploy("v1", false, &["--bake", "1s"]));
    assert_eq!(common::grpc::version(port), Ok("v1".to_string()));

    let load = common::grpc::GrpcLoad::start(port, 8);
    let out = ok(deploy(
        "v2",
        false,
        &["--drain-timeout", "3s", "--bake", "1s"],
    ));
    std::thread::sleep(Duration::from_millis(500));
    let calls = load.finish();
    let failed: Vec<&String> = calls.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    eprintln!(
        "gRPC calls during the rolling update: {} ({} failed)",
        calls.len(),
        failed.len()
    );
    assert!(calls.len() > 50, "too few calls to tell: {}", calls.len());
    assert!(
        failed.is_empty(),
        "failed calls: {failed:?}\n{}",
        text(&out)
    );
    let last = calls.last().unwrap().1.clone();
    assert_eq!(last, Ok("v2".to_string()));

    // The port is open and the server answers calls, but says NOT_SERVING.
    let load = common::grpc::GrpcLoad::start(port, 4);
    let out = deploy("v3", true, &["--deploy-timeout", "4s", "--bake", "1s"]);
    std::thread::sleep(Duration::from_millis(300));
    let calls = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOT_SERVING"), "{err}");
    assert!(
        calls.iter().all(|(_, r)| r.as_deref() == Ok("v2")),
        "only v2 answered while v3 failed its check: {:?}",
        calls.iter().find(|(_, r)| r.as_deref() != Ok("v2"))
    );
    let rel = env.releases();
    assert_eq!(rel[0]["status"], "failed");
    assert_eq!(rel[1]["status"], "succeeded");
}

/// The data check of a move reads MySQL and MariaDB as their official
/// images are set up: here root's password reaches the dependency only as
/// a secret file (`MARIADB_ROOT_PASSWORD_FILE`), and the census logs in
/// with it, counts the rows and checksums their values; a changed value
/// changes the checksum, not the count.
#[test]
fn the_mariadb_census_logs_in_with_the_secret_file_and_sees_a_changed_value() {
    use deployment_manager::deploy::data_check::{self, Census};
    let port = 18332;
    let env = Env::new("e2e-census", port);
    common::build_db_images();
    let app = env.app("v1", &[]);
    let yaml = std::fs::read_to_string(&app).unwrap()
        + &format!(
            "dependencies:\n  shop:\n    kind: mariadb\n    image: {}\n    secrets: [MARIADB_ROOT_PASSWORD]\n",
            common::MARIADB_IMAGE
        );
    std::fs::write(&app, yaml).unwrap();
    let secrets = env.dir.path().join("secrets.env");
    std::fs::write(&secrets, "MARIADB_ROOT_PASSWORD=census-pw-31\n").unwrap();
    ok(env.dm(&[
        "deploy",
        "e2e-census",
        "--app",
        app.to_str().unwrap(),
        "--env-file",
        secrets.to_str().unwrap(),
        "--bake",
        "0s",
    ]));
    let container = "dm-e2e-census-shop";
    let sql = common::mariadb_sql(container, "census-pw-31");
    let o = sql(
        "create database shop; create table shop.orders(id int primary key, item varchar(40)); insert into shop.orders values (1, 'tea'), (2, null), (3, ''); create table shop.`odd``name`(x int)",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let census = || {
        let out = Command::new("docker")
            .args(["exec", container])
            .args(data_check::command("mariadb").unwrap())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        data_check::parse("mariadb", &text).unwrap()
    };
    let before = census();
    let Census::Tables(tables) = &before else {
        panic!("{before:?}")
    };
    assert_eq!(tables["shop.orders"].0, 3, "{tables:?}");
    assert_eq!(tables["shop.odd`name"].0, 0, "{tables:?}");
    assert_eq!(before.to_string(), "2 table(s), 3 row(s)");
    // NULL and '' are told apart: the same rows with them swapped differ.
    ok(sql(
        "update shop.orders set item = if(id = 2, '', null) where id in (2, 3)",
    ));
    let after = census();
    assert_eq!(
        data_check::differences(&before, &after),
        ["table shop.orders: same row count, different content"]
    );
}
