//! The Docker daemon restarts under a deployed app: the app's containers
//! and its proxy come back by themselves and the proxy serves the same
//! release from its saved routing table. Alone in its own test binary
//! because it restarts the engine every other test uses.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// The pid of this machine's default dockerd (the one `docker` talks to),
/// from its pid file: the multi-host rig runs other dockerds beside it,
/// which this test must leave alone.
fn dockerd_pid() -> Option<String> {
    let pid = std::fs::read_to_string("/var/run/docker.pid").ok()?;
    let pid = pid.trim().to_string();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "dockerd").then_some(pid)
}

fn get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then(|| {
        out.split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

fn docker_up() -> bool {
    Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn start_dockerd() {
    let log = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/deployment-manager-dockerd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    // `setsid -f` detaches dockerd from the test so it outlives it.
    let started = Command::new("setsid")
        .args(["-f", "dockerd"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .expect("start dockerd");
    assert!(started.success());
}

#[test]
fn app_and_proxy_come_back_after_dockerd_restarts() {
    common::build_test_image("dm-e2e/server:1");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let dm = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(args)
            .env("DEPLOYMENT_MANAGER_STATE", &state)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let app = dir.path().join("app.yaml");
    std::fs::write(
        &app,
        "apiVersion: deployment-manager/v1\nkind: App\nname: restart\nservices:\n  web:\n    image: dm-e2e/server:1\n    ports:\n      - port: 8080\n        public: true\n        published: 18320\n    env:\n      VERSION: v7\n    replicas: 2\n    health:\n      http: /health\n",
    )
    .unwrap();
    let _ = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(["destroy", "e2e-restart", "--volumes"])
        .env("DEPLOYMENT_MANAGER_STATE", &state)
        .output();
    dm(&["profile", "create", "e2e-restart", app.to_str().unwrap()]);
    dm(&["deploy", "e2e-restart", "--bake", "0s"]);

    let pid = dockerd_pid().expect("dockerd is not running");
    eprintln!("restarting dockerd (pid {pid})");
    Command::new("sh")
        .args(["-c", &format!("kill {pid}")])
        .status()
        .unwrap();
    let start = Instant::now();
    while dockerd_pid().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "dockerd did not stop"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    start_dockerd();
    let start = Instant::now();
    while !docker_up() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "dockerd did not come back"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let start = Instant::now();
    let body = loop {
        if let Some(b) = get(18320) {
            break b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the app did not come back after the restart"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(body, "v7");
    let status = dm(&["status", "e2e-restart", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["proxies"][0]["routes"]["1"], 100, "{v}");
    dm(&["destroy", "e2e-restart", "--volumes"]);
}
