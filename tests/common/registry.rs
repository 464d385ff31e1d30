//! A real registry for the registry-mode tests: Debian's `docker-registry`
//! (the CNCF distribution registry, 2.8) serving plain HTTP on one address
//! with its storage in a temporary folder. Engines trust plain HTTP on
//! loopback, and the test hosts' engines on the rig's bridge
//! (`--insecure-registry`, set by scripts/multi-host.sh).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    host: String,
    port: u16,
}

impl Registry {
    /// Starts a registry on `host:port`; `None` (with the reason printed)
    /// when the package is missing outside CI, where it must be there.
    pub fn start(host: &str, port: u16) -> Option<Registry> {
        let bin = "/usr/bin/docker-registry";
        if !std::path::Path::new(bin).exists() {
            let why = "docker-registry is not installed (apt-get install docker-registry; scripts/test.sh does)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            _dir: dir,
            host: host.into(),
            port,
        };
        let t0 = Instant::now();
        while r.get("/v2/").map(|x| x.0) != Ok(200) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the registry on {host}:{port} did not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(r)
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        super::load::get_from(&self.host, self.port, path, None)
    }

    /// The tags the registry holds for `repo`.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let Ok((200, body)) = self.get(&format!("/v2/{repo}/tags/list")) else {
            return vec![];
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
