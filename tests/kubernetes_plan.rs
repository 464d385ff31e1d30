//! The Kubernetes deploy, checked without a cluster: the object set and
//! apply order per strategy, the blue-green selector switch, canary steps
//! by replica ratio and by detected traffic weights, the rollback plan,
//! every applied object through `kubernetes-validate --strict`, Secrets
//! without values, and the CLI's answers when no cluster is there.

mod common;
use common::{EXAMPLES, example};

use common::venv_bin;
use deployment_manager::analyse::cost::Strategy;
use deployment_manager::deploy::kubernetes::plan::{
    self, Current, Input, LABEL_RELEASE, LABEL_SLOT, Step, Traffic, rank,
};
use deployment_manager::deploy::strategy::Pause;
use deployment_manager::describe::app::App;
use deployment_manager::render::gateway::Routing;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn make(
    app: &App,
    strategy: Strategy,
    current: &Current,
    traffic: Traffic,
    cleanup: bool,
) -> Vec<Step> {
    let pause = Pause::Timed(Duration::from_secs(30));
    let routing = match traffic {
        Traffic::IngressNginx => Routing::Ingress {
            class: "nginx".into(),
        },
        Traffic::GatewayApi => Routing::Gateway {
            namespace: "infra".into(),
            name: "public".into(),
        },
        Traffic::ReplicaRatio => Routing::for_target("k8s-doks"),
    };
    plan::plan(&Input {
        app,
        release: 7,
        strategy,
        canary_steps: &[10, 50, 100],
        pause: &pause,
        traffic,
        routing: &routing,
        cleanup,
        current,
    })
}

fn applied(steps: &[Step]) -> Vec<&Value> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Apply { object } => Some(object),
            _ => None,
        })
        .collect()
}

fn find<'a>(steps: &'a [Step], kind: &str, name: &str) -> Option<&'a Value> {
    applied(steps)
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// A cluster where `web` (the public service) serves from `slot`.
fn live(app: &App, slot: &str, release: u32) -> Current {
    let mut c = Current::default();
    for name in app.services.keys() {
        c.slots.insert(name.clone(), slot.into());
        c.releases
            .insert(plan::deployment_name(name, slot), release);
    }
    c
}

const STRATEGIES: [Strategy; 4] = [
    Strategy::Rolling,
    Strategy::Recreate,
    Strategy::BlueGreen,
    Strategy::Canary,
];

#[test]
fn objects_are_applied_in_order_namespace_config_secrets_storage_workloads_services_ingress_autoscaling()
 {
    for ex in EXAMPLES {
        let app = example(ex);
        for strategy in STRATEGIES {
            for current in [Current::default(), live(&app, "main", 6)] {
                let steps = make(&app, strategy, &current, Traffic::ReplicaRatio, false);
                // The main plan (before any canary steps) is ordered by kind.
                let first_wait = steps
                    .iter()
                    .position(|s| match s {
                        Step::Wait { .. } => true,
                        Step::Apply { object } => object["metadata"]["name"]
                            .as_str()
                            .is_some_and(|n| n.ends_with("-canary")),
                        _ => false,
                    })
                    .unwrap_or(steps.len());
                let ranks: Vec<u8> = steps[..first_wait]
                    .iter()
                    .filter_map(|s| match s {
                        Step::Apply { object } => Some(rank(object["kind"].as_str().unwrap())),
                        _ => None,
                    })
                    .collect();
                assert!(
                    ranks.windows(2).all(|w| w[0] <= w[1]),
                    "{ex} {strategy:?}: {ranks:?}"
                );
                assert_eq!(applied(&steps)[0]["kind"], "Namespace", "{ex}");
                // Every Deployment of an app service carries the release
                // and is waited on before anything is switched.
                for o in applied(&steps) {
                    let name = o["metadata"]["name"].as_str().unwrap();
                    let app_svc =
                        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
                            .as_str()
                            .is_some_and(|n| app.services.contains_key(n));
                    if o["kind"] == "Deployment" && app_svc {
                        assert!(
                            o["spec"]["template"]["metadata"]["labels"][LABEL_RELEASE].is_string(),
                            "{ex} {name}"
                        );
                        assert!(
                            steps.iter().any(
                                |s| matches!(s, Step::Wait { deployment, .. } if deployment == name)
                            ),
                            "{ex} {strategy:?}: no wait for {name}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_applied_object_passes_kubernetes_validate_strict() {
    let bin = venv_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for ex in EXAMPLES {
        let app = example(ex);
        for strategy in STRATEGIES {
            for traffic in [Traffic::ReplicaRatio, Traffic::IngressNginx] {
                let steps = make(&app, strategy, &live(&app, "blue", 6), traffic, true);
                let docs: Vec<String> = applied(&steps)
                    .into_iter()
                    .map(|o| serde_json::to_string(o).unwrap())
                    .collect();
                let path = dir
                    .path()
                    .join(format!("{ex}-{strategy:?}-{traffic:?}.yaml"));
                std::fs::write(&path, docs.join("\n---\n")).unwrap();
                files.push(path);
            }
        }
    }
    let out = Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "-k", "1.33.0"])
        .args(&files)
        .output()
        .expect("kubernetes-validate (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && !text.contains("ERROR"), "{text}");
    assert!(
        text.matches("passed for resource").count() >= files.len() * 10,
        "{text}"
    );
}

#[test]
fn blue_green_applies_the_idle_colour_then_switches_the_selector() {
    let app = example("picker-wheel");
    let svc = app.services.keys().next().unwrap().clone();
    let steps = make(
        &app,
        Strategy::BlueGreen,
        &live(&app, "blue", 6),
        Traffic::ReplicaRatio,
        false,
    );
    let green = find(&steps, "Deployment", &format!("{svc}-green")).expect("green Deployment");
    assert_eq!(
        green["spec"]["selector"]["matchLabels"][LABEL_SLOT],
        "green"
    );
    assert_eq!(
        green["spec"]["template"]["metadata"]["labels"][LABEL_RELEASE],
        "7"
    );
    // Until the switch the Service keeps selecting blue.
    let service = find(&steps, "Service", &svc).unwrap();
    assert_eq!(service["spec"]["selector"][LABEL_SLOT], "blue");
    let wait = steps
        .iter()
        .position(
            |s| matches!(s, Step::Wait { deployment, .. } if *deployment == format!("{svc}-green")),
        )
        .unwrap();
    let switch = steps
        .iter()
        .position(|s| matches!(s, Step::Switch { service, selector, .. } if *service == svc && selector[LABEL_SLOT] == "green"))
        .expect("a selector switch to green");
    assert!(wait < switch);
    // Blue stays warm unless --cleanup.
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Scale { replicas: 0, .. }))
    );
    let cleaned = make(
        &app,
        Strategy::BlueGreen,
        &live(&app, "blue", 6),
        Traffic::ReplicaRatio,
        true,
    );
    assert!(cleaned.iter().any(|s| matches!(s, Step::Scale { deployment, replicas: 0, .. } if *deployment == format!("{svc}-blue"))));
    // A first blue-green deploy goes to blue and needs no switch.
    let first = make(
        &app,
        Strategy::BlueGreen,
        &Current::default(),
        Traffic::ReplicaRatio,
        false,
    );
    assert!(find(&first, "Deployment", &format!("{svc}-blue")).is_some());
    assert!(!first.iter().any(|s| matches!(s, Step::Switch { .. })));
}

#[test]
fn rolling_after_blue_green_waits_before_it_moves_traffic_back_to_main() {
    let app = example("picker-wheel");
    let svc = app.services.keys().next().unwrap().clone();
    let steps = make(
        &app,
        Strategy::Rolling,
        &live(&app, "green", 6),
        Traffic::ReplicaRatio,
        false,
    );
    assert_eq!(
        find(&steps, "Service", &svc).unwrap()["spec"]["selector"][LABEL_SLOT],
        "green"
    );
    let lines: Vec<String> = steps.iter().map(plan::describe).collect();
    let wait = lines
        .iter()
        .position(|l| *l == format!("wait    rollout of Deployment/{svc}"))
        .unwrap();
    let switch = lines
        .iter()
        .position(|l| *l == format!("switch  Service/{svc} → slot main"))
        .unwrap();
    let scale = lines
        .iter()
        .position(|l| *l == format!("scale   Deployment/{svc}-green to 0"))
        .unwrap();
    assert!(wait < switch && switch < scale, "{lines:#?}");
}

#[test]
fn canary_by_replica_ratio_moves_in_whole_pods_then_updates_the_live_deployment() {
    let app = example("picker-wheel");
    let svc = app.services.keys().next().unwrap().clone();
    let steps = make(
        &app,
        Strategy::Canary,
        &live(&app, "main", 6),
        Traffic::ReplicaRatio,
        false,
    );
    let canary = find(&steps, "Deployment", &format!("{svc}-canary")).unwrap();
    assert_eq!(
        canary["spec"]["selector"]["matchLabels"][LABEL_SLOT],
        "main"
    );
    assert_eq!(
        canary["spec"]["selector"]["matchLabels"]["deployment-manager/track"],
        "canary"
    );
    // The stable Deployment keeps release 6 while the canary runs.
    let stable = applied(&steps)
        .into_iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == svc.as_str())
        .unwrap();
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"][LABEL_RELEASE],
        "6"
    );
    let lines: Vec<String> = steps.iter().map(plan::describe).collect();
    insta::assert_snapshot!(
        lines[lines.iter().position(|l| l.contains("-canary")).unwrap()..].join("\n")
    );
    assert_eq!(plan::canary_replicas(2, 10), 1);
    assert_eq!(plan::canary_replicas(9, 10), 1);
    assert_eq!(plan::canary_replicas(3, 50), 3);
    assert_eq!(plan::canary_replicas(4, 20), 1);
}

#[test]
fn canary_by_weight_uses_the_traffic_layer_that_was_found() {
    let app = example("picker-wheel");
    let svc = app.services.keys().next().unwrap().clone();
    let gw = make(
        &app,
        Strategy::Canary,
        &live(&app, "main", 6),
        Traffic::GatewayApi,
        false,
    );
    let all_routes: Vec<&Value> = applied(&gw)
        .into_iter()
        .filter(|o| o["kind"] == "HTTPRoute" && o["metadata"]["name"] == svc.as_str())
        .collect();
    let routes: Vec<&Value> = all_routes
        .iter()
        .copied()
        .filter(|r| {
            r["spec"]["rules"][0]["backendRefs"]
                .as_array()
                .unwrap()
                .len()
                == 2
        })
        .collect();
    assert_eq!(routes.len(), 2, "one per step below 100%");
    // The route the weights moved is the service's own: same path and host,
    // and back to a single backend at the end, never deleted.
    let last = all_routes.last().unwrap();
    assert_eq!(
        last["spec"]["rules"][0]["backendRefs"],
        serde_json::json!([{"name": svc, "port": 3000}])
    );
    assert_eq!(
        last["spec"]["rules"][0]["matches"],
        routes[0]["spec"]["rules"][0]["matches"]
    );
    assert_eq!(last["spec"]["hostnames"], routes[0]["spec"]["hostnames"]);
    let weights: Vec<(u64, u64)> = routes
        .iter()
        .map(|r| {
            let b = &r["spec"]["rules"][0]["backendRefs"];
            (
                b[0]["weight"].as_u64().unwrap(),
                b[1]["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights, vec![(90, 10), (50, 50)]);
    assert_eq!(
        routes[0]["spec"]["parentRefs"][0],
        serde_json::json!({"name": "public", "namespace": "infra"})
    );
    // The stable Service no longer selects canary pods in this mode.
    assert_eq!(
        find(&gw, "Service", &svc).unwrap()["spec"]["selector"]["deployment-manager/track"],
        "stable"
    );
    assert!(find(&gw, "Service", &format!("{svc}-canary")).is_some());
    assert!(
        !gw.iter()
            .any(|s| matches!(s, Step::Delete { kind, .. } if kind == "HTTPRoute")),
        "deleting the route would take the service offline"
    );

    let nginx = make(
        &app,
        Strategy::Canary,
        &live(&app, "main", 6),
        Traffic::IngressNginx,
        false,
    );
    let ing: Vec<&Value> = applied(&nginx)
        .into_iter()
        .filter(|o| {
            o["kind"] == "Ingress"
                && o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
        })
        .collect();
    let w: Vec<&str> = ing
        .iter()
        .map(|o| {
            o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        w,
        vec!["10", "50", "10", "50"],
        "two steps for each public service"
    );
}

#[test]
fn rollback_switches_to_a_warm_colour_or_reapplies_the_release() {
    let app = example("picker-wheel");
    let svc = app.services.keys().next().unwrap().clone();
    let mut current = live(&app, "green", 7);
    for name in app.services.keys() {
        current.releases.insert(format!("{name}-blue"), 6);
    }
    let steps = plan::rollback_plan(
        &app,
        6,
        &current,
        Traffic::ReplicaRatio,
        &Routing::for_target("k8s-doks"),
    );
    let lines: Vec<String> = steps.iter().map(plan::describe).collect();
    assert_eq!(
        lines[..4],
        [
            format!(
                "scale   Deployment/{svc}-blue to {}",
                app.services[&svc].min_replicas()
            ),
            format!("wait    rollout of Deployment/{svc}-blue"),
            format!("switch  Service/{svc} → slot blue"),
            format!("scale   Deployment/{svc}-green to 0"),
        ]
    );
    assert_eq!(lines.len(), 4 * app.services.len(), "{lines:#?}");
    // Nothing warm runs release 5: its objects are applied again.
    let again = plan::rollback_plan(
        &app,
        5,
        &current,
        Traffic::ReplicaRatio,
        &Routing::for_target("k8s-doks"),
    );
    let d = find(&again, "Deployment", &svc).expect("the release's Deployment applied again");
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"][LABEL_RELEASE],
        "5"
    );
}

#[test]
fn the_secret_is_applied_with_its_keys_and_no_values() {
    for ex in EXAMPLES {
        let app = example(ex);
        let steps = make(
            &app,
            Strategy::Rolling,
            &Current::default(),
            Traffic::ReplicaRatio,
            false,
        );
        if let Some(s) = find(&steps, "Secret", &format!("{}-secrets", app.name)) {
            let data: &serde_json::Map<String, Value> = s["stringData"].as_object().unwrap();
            assert!(!data.is_empty());
            assert!(data.values().all(|v| v == ""), "{ex}: {s}");
        }
    }
}

fn dm(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(args)
        .env("DEPLOYMENT_MANAGER_STATE", dir.join("state.db"))
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env("DATABASE_URL", "postgres://x")
        .env("REDIS_URL", "redis://x")
        .env("SESSION_SECRET", "x")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

#[test]
fn without_a_cluster_deploy_says_what_is_missing_and_dry_run_still_plans() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        dm(
            d,
            &["profile", "create", "k", "examples/picker-wheel/app.yaml"]
        )
        .status
        .success()
    );
    assert!(
        dm(d, &["profile", "set", "k", "target", "k8s-gke"])
            .status
            .success()
    );
    let out = dm(d, &["deploy", "k"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no Kubernetes cluster") && err.contains("KUBECONFIG"),
        "{err}"
    );
    let out = dm(d, &["deploy", "k", "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "planned");
    assert_eq!(r["plan"][0]["kind"], "Namespace");
    assert!(
        r["plan"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "wait")
    );
    // Nothing was recorded.
    let out = dm(d, &["releases", "k", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

/// A service built from source needs a registry on Kubernetes: without
/// one the deploy (and its dry run) says how to name it; with one the dry
/// run lists the build on this machine and the push before the objects.
#[test]
fn a_build_on_kubernetes_needs_a_registry_and_then_plans_build_and_push() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("ctx")).unwrap();
    std::fs::write(
        d.join("ctx/Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\n",
    )
    .unwrap();
    std::fs::write(
        d.join("app.yaml"),
        "apiVersion: deployment-manager/v1\nkind: App\nname: kb\nservices:\n  web:\n    build:\n      context: ctx\n    ports:\n      - port: 8080\n        public: true\n",
    )
    .unwrap();
    let app = d.join("app.yaml");
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    ok(dm(d, &["profile", "create", "kb", app.to_str().unwrap()]));
    ok(dm(d, &["profile", "set", "kb", "target", "k8s-gke"]));
    let out = dm(d, &["deploy", "kb", "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("profile set <profile> registry"), "{err}");
    let bad = dm(
        d,
        &["profile", "set", "kb", "registry", "https://ghcr.io/acme"],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    ok(dm(d, &["profile", "set", "kb", "registry", "ghcr.io/acme"]));
    let out = ok(dm(d, &["deploy", "kb", "--dry-run", "--json"]));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = r["plan"].as_array().unwrap();
    assert_eq!(plan[0]["action"], "build", "{r}");
    assert_eq!(plan[0]["host"], "this machine");
    assert_eq!(plan[1]["action"], "push");
    assert!(
        plan[1]["name"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/acme/kb-web:"),
        "{r}"
    );
    assert!(plan.iter().any(|l| l["kind"] == "Namespace"), "{r}");
}
