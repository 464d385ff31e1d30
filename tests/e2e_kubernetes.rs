//! Live deploys to a real Kubernetes cluster. No API server can run on the
//! machines this project is built on, so these tests run only when
//! `KUBECONFIG` names a reachable cluster and `DM_K8S_TEST_IMAGE` names an
//! image it can pull (the test server from testkit/, pushed somewhere);
//! otherwise each prints one line saying why it skipped.

use std::process::{Command, Output};

fn skip_reason() -> Option<String> {
    if std::env::var_os("KUBECONFIG").is_none() {
        return Some("KUBECONFIG is not set".into());
    }
    if std::env::var_os("DM_K8S_TEST_IMAGE").is_none() {
        return Some(
            "DM_K8S_TEST_IMAGE (an image of testkit/testserver the cluster can pull) is not set"
                .into(),
        );
    }
    None
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn dm(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(args)
            .env("DEPLOYMENT_MANAGER_STATE", self.dir.path().join("state.db"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn app(&self, version: &str) -> String {
        let image = std::env::var("DM_K8S_TEST_IMAGE").unwrap();
        let yaml = format!(
            "apiVersion: deployment-manager/v1\nkind: App\nname: dm-e2e-k8s\nservices:\n  web:\n    image: {image}\n    ports:\n      - port: 8080\n        public: true\n    env:\n      VERSION: {version}\n    replicas: 2\n    health:\n      http: /health\n"
        );
        let path = self.dir.path().join(format!("app-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    }

    fn status(&self) -> serde_json::Value {
        let out = ok(self.dm(&["status", "k", "--json"]));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.dm(&["destroy", "k"]);
    }
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn rolling_blue_green_and_rollback_on_a_live_cluster() {
    if let Some(why) = skip_reason() {
        println!("skipped: no live Kubernetes test ({why})");
        return;
    }
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let v1 = env.app("v1");
    ok(env.dm(&["profile", "create", "k", &v1]));
    ok(env.dm(&["profile", "set", "k", "platform", "kubernetes"]));
    ok(env.dm(&["deploy", "k"]));
    let st = env.status();
    let ready = st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"] == true && p["release"] == "1")
        .count();
    assert_eq!(ready, 2, "{st}");
    assert_eq!(st["routes"]["web"], "main");

    let v2 = env.app("v2");
    ok(env.dm(&["deploy", "k", "--app", &v2, "--strategy", "blue-green"]));
    assert_eq!(env.status()["routes"]["web"], "blue");

    let out = ok(env.dm(&["rollback", "k"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("what release 1 ran"));
    assert_eq!(env.status()["routes"]["web"], "main");
    let logs = ok(env.dm(&["logs", "k", "web", "--tail", "5"]));
    assert!(String::from_utf8_lossy(&logs.stdout).contains("listening on 8080"));
}
