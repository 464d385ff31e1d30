//! End to end on the real Docker Engine: the generated compose.yaml of an
//! app built from the project's own FROM-scratch test image comes up, every
//! health check turns healthy, the public port answers, and it goes down
//! again. scripts/test.sh installs Docker and starts dockerd; without an
//! engine this test fails, it is not skipped.

use deployment_manager::catalog::Catalog;
use deployment_manager::describe::load_path;
use deployment_manager::render::{render, write_all};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{build_test_image, sh};

fn compose_bin() -> PathBuf {
    common::venv_bin().join("docker-compose")
}

/// Takes the project down however the test ends.
struct Down {
    dir: PathBuf,
    project: String,
}

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(compose_bin())
            .current_dir(&self.dir)
            .args([
                "-p",
                &self.project,
                "-f",
                "compose.yaml",
                "down",
                "-v",
                "--remove-orphans",
                "-t",
                "2",
            ])
            .output();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the published port");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn generated_compose_comes_up_healthy_on_the_real_engine() {
    build_test_image("dm-e2e/server:1");

    let app = load_path(Path::new("tests/fixtures/e2e/app.yaml"), &[])
        .unwrap()
        .app;
    let files = render(&Catalog::embedded(), &app, "compose").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compose");
    write_all(&dir, &files, false).unwrap();
    let project = format!("dm-e2e-{}", std::process::id());
    let _down = Down {
        dir: dir.clone(),
        project: project.clone(),
    };

    sh(Command::new(compose_bin()).current_dir(&dir).args([
        "-p",
        &project,
        "-f",
        "compose.yaml",
        "up",
        "-d",
        "--wait",
        "--wait-timeout",
        "90",
    ]));
    let ps = sh(Command::new(compose_bin()).current_dir(&dir).args([
        "-p",
        &project,
        "-f",
        "compose.yaml",
        "ps",
        "--format",
        "json",
    ]));
    let rows: Vec<serde_json::Value> = ps
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{ps}");
    for r in &rows {
        assert_eq!(r["Health"], "healthy", "{r}");
        assert_eq!(r["State"], "running", "{r}");
    }
    let body = http_get(18181, "/");
    assert!(
        body.starts_with("HTTP/1.1 200") && body.ends_with("web-v1\n"),
        "{body}"
    );
    // Hardening survived into the running containers.
    let inspect = sh(Command::new("docker").args([
        "inspect",
        "--format",
        "{{.HostConfig.SecurityOpt}} {{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
        &format!("{project}-web-1"),
    ]));
    assert!(inspect.contains("no-new-privileges:true"), "{inspect}");
    assert!(
        inspect.contains("100000000 33554432"),
        "cpu and memory limits applied: {inspect}"
    );
}
