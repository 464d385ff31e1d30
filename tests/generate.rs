//! Generated configuration: snapshots of every file for every example and
//! target, byte-for-byte determinism, and the validators the targets' own
//! users run (installed by scripts/test.sh into a virtual environment; a
//! missing validator fails the test, it is never skipped).

use deployment_manager::catalog::Catalog;
use deployment_manager::describe::{app::App, load_path};
use deployment_manager::render::{GeneratedFile, RenderError, render, write_all};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 15] = [
    "compose",
    "local",
    "k8s-gke",
    "swarm",
    "fly",
    "cloud-run",
    "do-app-platform",
    "ecs-fargate",
    "render",
    "railway",
    "heroku",
    "app-runner",
    "aci",
    "vercel",
    "vm-digitalocean",
];
/// Hosts on which fitness may block an example (PaaS and serverless).
const MAY_BLOCK: [&str; 9] = [
    "fly",
    "cloud-run",
    "do-app-platform",
    "render",
    "railway",
    "heroku",
    "app-runner",
    "aci",
    "vercel",
];

mod common;
use common::venv_bin;
use common::{EXAMPLES, example};

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The target's own files, without the workflow, docs, placement and Dockerfiles.
fn target_files(files: &[GeneratedFile]) -> Vec<GeneratedFile> {
    files
        .iter()
        .filter(|f| {
            !f.path.starts_with(".github/")
                && f.path != "DEPLOY.md"
                && !f.path.starts_with("dockerfiles/")
                && f.path != "kustomization.yaml"
                && f.path != "placement.json"
                && !f.path.ends_with(".example")
        })
        .cloned()
        .collect()
}

fn file<'a>(files: &'a [GeneratedFile], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .content
}

fn written(files: &[GeneratedFile]) -> tempfile::TempDir {
    // checkov ignores hidden folders, so no leading dot.
    let dir = tempfile::Builder::new()
        .prefix("dm-generated-")
        .tempdir()
        .unwrap();
    let out = dir.path().join("out");
    write_all(&out, files, false).unwrap();
    dir
}

#[test]
fn snapshots_of_every_target_for_every_example() {
    let cat = Catalog::embedded();
    for ex in EXAMPLES {
        let app = example(ex);
        for t in TARGETS {
            match render(&cat, &app, t) {
                Ok(files) => {
                    for f in &files {
                        insta::assert_snapshot!(
                            format!("{ex}__{t}__{}", f.path.replace('/', "_")),
                            f.content
                        );
                    }
                    assert_eq!(
                        render(&cat, &app, t).unwrap(),
                        files,
                        "{ex}/{t} is not deterministic"
                    );
                }
                Err(RenderError::Blocked { blockers, .. }) => {
                    assert!(MAY_BLOCK.contains(&t), "{ex} unexpectedly blocked on {t}");
                    let lines: Vec<String> = blockers.iter().map(|b| b.message.clone()).collect();
                    insta::assert_yaml_snapshot!(format!("{ex}__{t}__blocked"), lines);
                }
                Err(e) => panic!("{ex}/{t}: {e}"),
            }
        }
    }
}

#[test]
fn compose_files_pass_docker_compose_and_the_compose_go_schema() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    for ex in EXAMPLES {
        let files = render(&cat, &example(ex), "compose").unwrap();
        let dir = written(&files);
        let out = dir.path().join("out");
        let (ok, text) = run(Command::new(bin.join("docker-compose"))
            .current_dir(&out)
            .args(["-f", "compose.yaml", "config", "-q"]));
        assert!(ok, "{ex}: docker-compose config: {text}");
        let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas/vendor/compose-go/compose-spec.json");
        assert!(
            schema.is_file(),
            "vendored schema missing: {}",
            schema.display()
        );
        let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
            .arg("--schemafile")
            .arg(&schema)
            .arg(out.join("compose.yaml")));
        assert!(ok, "{ex}: compose-go schema: {text}");
    }
}

/// Every document of every file, plus the session Job templates carried in
/// ConfigMaps, passes kubernetes-validate --strict for the newest and an
/// older supported minor version.
#[test]
fn kubernetes_manifests_pass_kubernetes_validate_strict() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    for ex in EXAMPLES {
        let mut files = target_files(&render(&cat, &example(ex), "k8s-gke").unwrap());
        for f in files.clone() {
            for doc in serde_saphyr::from_str_multiple::<serde_json::Value, Vec<serde_json::Value>>(
                &f.content,
            )
            .unwrap()
            {
                if let Some(t) = doc.pointer("/data/job.yaml").and_then(|v| v.as_str()) {
                    // The app names each Job when it creates it; validate with a name.
                    files.push(GeneratedFile::new(
                        format!("template-{}", f.path),
                        t.replace("generateName:", "name:"),
                    ));
                }
            }
        }
        let dir = written(&files);
        let out = dir.path().join("out");
        for version in ["1.37.0", "1.30.0"] {
            for f in &files {
                let (ok, text) = run(Command::new(bin.join("kubernetes-validate"))
                    .args(["--strict", "-k", version])
                    .arg(out.join(&f.path)));
                assert!(
                    ok && !text.contains("ERROR"),
                    "{ex}/{} on {version}: {text}",
                    f.path
                );
            }
        }
    }
}

/// Public services are routed with the Gateway API by default: the Gateway
/// and HTTPRoutes validate against the v1 schemas of the Gateway API v1.6.1
/// CRDs (check-jsonschema), for the app's own Gateway and for an existing
/// one; the Ingress option passes kubernetes-validate.
#[test]
fn gateway_api_routes_validate_against_the_crd_schemas() {
    use deployment_manager::render::gateway::Routing;
    let bin = venv_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut schemas = std::collections::BTreeMap::new();
    for (kind, file) in [("Gateway", "gateways"), ("HTTPRoute", "httproutes")] {
        let crd: serde_json::Value = serde_saphyr::from_str(
            &std::fs::read_to_string(format!("schemas/vendor/gateway-api/{file}.crd.yaml"))
                .unwrap(),
        )
        .unwrap();
        let v1 = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "v1")
            .unwrap();
        let path = dir.path().join(format!("{kind}.schema.json"));
        std::fs::write(&path, v1["schema"]["openAPIV3Schema"].to_string()).unwrap();
        schemas.insert(kind, path);
    }
    let routings = [
        Routing::for_target("k8s-gke"),
        Routing::for_target("k8s-doks"),
        Routing::Gateway {
            namespace: "infra".into(),
            name: "public".into(),
        },
        Routing::Ingress {
            class: "nginx".into(),
        },
    ];
    let mut checked = std::collections::BTreeMap::new();
    for ex in EXAMPLES {
        let app = example(ex);
        for routing in &routings {
            for (file, docs) in deployment_manager::render::kubernetes::objects(&app, routing) {
                for (i, doc) in docs.iter().enumerate() {
                    let kind = doc["kind"].as_str().unwrap();
                    let path = dir.path().join(format!("{ex}-{i}-{kind}-{file}.json"));
                    std::fs::write(&path, doc.to_string()).unwrap();
                    let mut cmd = match schemas.get(kind) {
                        Some(schema) => {
                            let mut c = Command::new(bin.join("check-jsonschema"));
                            c.arg("--schemafile").arg(schema);
                            c
                        }
                        None if kind == "Ingress" => {
                            let mut c = Command::new(bin.join("kubernetes-validate"));
                            c.args(["--strict", "-k", "1.37.0"]);
                            c
                        }
                        None => continue,
                    };
                    let (ok, text) = run(cmd.arg(&path));
                    assert!(
                        ok && !text.contains("ERROR"),
                        "{ex} {routing:?} {kind}: {text}\n{doc}"
                    );
                    *checked.entry(kind.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
    for kind in ["Gateway", "HTTPRoute", "Ingress"] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} checked: {checked:?}"
        );
    }
}

#[test]
fn kubernetes_manifests_pass_checkov_outside_the_skip_list() {
    let bin = venv_bin();
    let skip: Vec<String> = std::fs::read_to_string("tests/validators/checkov-skip.txt")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let cat = Catalog::embedded();
    for ex in EXAMPLES {
        let files = render(&cat, &example(ex), "k8s-gke").unwrap();
        let dir = written(&files);
        let out = dir.path().join("out");
        let o = Command::new(bin.join("checkov"))
            .arg("-d")
            .arg(&out)
            .args([
                "--framework",
                "kubernetes",
                "--skip-download",
                "-o",
                "json",
                "--skip-check",
                &skip.join(","),
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{ex}: checkov output is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
        let reports = if v.is_array() {
            v.as_array().unwrap().clone()
        } else {
            vec![v]
        };
        let mut failed = Vec::new();
        let mut passed = 0;
        for r in &reports {
            passed += r["summary"]["passed"].as_u64().unwrap_or(0);
            for f in r["results"]["failed_checks"]
                .as_array()
                .into_iter()
                .flatten()
            {
                failed.push(format!(
                    "{} {} on {}",
                    f["check_id"], f["check_name"], f["resource"]
                ));
            }
        }
        assert!(passed > 100, "{ex}: checkov checked too little ({passed})");
        assert!(
            failed.is_empty(),
            "{ex}: checkov failures:\n{}",
            failed.join("\n")
        );
    }
}

#[test]
fn hardened_pods_and_sandboxes() {
    let cat = Catalog::embedded();
    let files = render(&cat, &example("will-it-compile"), "k8s-gke").unwrap();
    let all: Vec<serde_json::Value> = target_files(&files)
        .iter()
        .flat_map(|f| {
            serde_saphyr::from_str_multiple::<serde_json::Value, Vec<serde_json::Value>>(&f.content)
                .unwrap()
        })
        .collect();
    for d in all
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
    {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
            assert!(
                c["resources"]["limits"]["memory"].is_string()
                    && c["resources"]["requests"]["cpu"].is_string()
            );
            assert!(
                c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"] == "/tmp"),
                "writable /tmp on a read-only root"
            );
        }
    }
    let kinds: Vec<&str> = all.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for k in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "Gateway",
        "HTTPRoute",
    ] {
        assert!(kinds.contains(&k), "missing {k}");
    }
    let role = all.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(role["metadata"]["namespace"], "will-it-compile-sandbox");
    assert!(
        !serde_json::to_string(role).unwrap().contains("\"*\""),
        "no wildcards in the Role"
    );
    let tmpl = all
        .iter()
        .find_map(|d| d.pointer("/data/job.yaml"))
        .unwrap()
        .as_str()
        .unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(tmpl).unwrap();
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 300);
    assert_eq!(
        job["spec"]["activeDeadlineSeconds"], 30,
        "max_duration of compile-job"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    let sandbox_policy = all
        .iter()
        .find(|d| d["metadata"]["name"] == "sandbox-isolation")
        .unwrap();
    assert!(
        sandbox_policy["spec"].get("egress").is_none(),
        "sandboxes get no egress"
    );
    let text: String = files.iter().map(|f| f.content.clone()).collect();
    assert!(
        !text.contains("docker.sock"),
        "no Docker socket on Kubernetes"
    );
}

#[test]
fn compose_uses_a_socket_proxy_and_secret_files() {
    let cat = Catalog::embedded();
    let files = render(&cat, &example("will-it-compile"), "compose").unwrap();
    let compose: serde_json::Value = serde_saphyr::from_str(file(&files, "compose.yaml")).unwrap();
    let proxy = &compose["services"]["docker-proxy"];
    assert_eq!(proxy["environment"]["EXEC"], "0");
    assert!(proxy["volumes"][0].as_str().unwrap().ends_with(":ro"));
    assert_eq!(
        compose["services"]["api"]["environment"]["DOCKER_HOST"],
        "tcp://docker-proxy:2375"
    );
    assert!(
        file(&files, "compose.yaml").contains("# Risk:"),
        "the remaining risk is stated"
    );
    assert!(
        compose["services"]["api"]["volumes"].is_null(),
        "no raw socket mount in the app"
    );
    let pw = render(&cat, &example("picker-wheel"), "compose").unwrap();
    let c: serde_json::Value = serde_saphyr::from_str(
        &pw.iter()
            .find(|f| f.path == "compose.yaml")
            .unwrap()
            .content,
    )
    .unwrap();
    assert_eq!(c["secrets"]["DATABASE_URL"]["environment"], "DATABASE_URL");
    assert_eq!(
        c["services"]["api"]["depends_on"]["db"]["condition"],
        "service_healthy"
    );
    // The graph's networks: the database shares one with its caller only.
    assert_eq!(
        c["services"]["db"]["networks"],
        serde_json::json!(["to-db"])
    );
    assert_eq!(
        c["services"]["api"]["networks"],
        serde_json::json!(["to-db", "to-cache"])
    );
    assert!(c["services"]["ui"]["networks"].is_null(), "calls nothing");
}

#[test]
fn blocked_targets_write_nothing_and_full_folders_need_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cloudrun");
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args([
            "--state",
            dir.path().join("s.db").to_str().unwrap(),
            "generate",
            "examples/will-it-compile/app.yaml",
            "--target",
            "cloud-run",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot start containers"));
    assert!(!out.exists(), "no half-written folder");
    let out = dir.path().join("k8s");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let generate = |force: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deployment-manager"));
        c.args([
            "--state",
            dir.path().join("s.db").to_str().unwrap(),
            "generate",
            "examples/picker-wheel/app.yaml",
            "--target",
            "k8s-doks",
            "--out",
        ])
        .arg(&out);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert_eq!(generate(false).status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(generate(true).status.success());
    assert!(out.join("kustomization.yaml").is_file() && !out.join("keep.txt").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging folders left behind");
}

fn schema(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/vendor")
        .join(rel);
    assert!(p.is_file(), "vendored schema missing: {}", p.display());
    p
}

/// fly.toml, Cloud Run/Knative YAML and the DigitalOcean app spec against
/// the published schemas; Swarm stacks through docker-compose and compose-go.
#[test]
fn paas_and_swarm_files_pass_their_schemas() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    let mut checked = 0;
    let mut apps: Vec<(String, App)> = EXAMPLES
        .iter()
        .map(|e| (e.to_string(), example(e)))
        .collect();
    // Imported multi-service apps: peers in env values, graph networks.
    for fixture in ["shop-grpc", "segmented"] {
        let path = format!("tests/fixtures/apps/{fixture}/compose.yaml");
        apps.push((
            fixture.into(),
            load_path(Path::new(&path), &[]).unwrap().app,
        ));
    }
    for (ex, app) in &apps {
        let app = app.clone();
        for (target, schemas) in [
            ("fly", vec!["fly.json"]),
            ("cloud-run", vec!["cloud-run-v1.json", "service_v1.json"]),
            (
                "do-app-platform",
                vec!["digitalocean-app-spec/app_spec.yml"],
            ),
            ("swarm", vec!["compose-go/compose-spec.json"]),
        ] {
            let Ok(all) = render(&cat, &app, target) else {
                continue;
            };
            let files = target_files(&all);
            let dir = written(&files);
            let out = dir.path().join("out");
            for f in &files {
                for sc in &schemas {
                    let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
                        .arg("--schemafile")
                        .arg(schema(sc))
                        .arg(out.join(&f.path)));
                    assert!(ok, "{ex}/{target}/{} against {sc}: {text}", f.path);
                    checked += 1;
                }
                if target == "swarm" {
                    let (ok, text) = run(Command::new(bin.join("docker-compose"))
                        .current_dir(&out)
                        .args(["-f", &f.path, "config", "-q"]));
                    assert!(ok, "{ex}/swarm: {text}");
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} files checked");
}

#[test]
fn swarm_updates_start_first_and_roll_back() {
    let cat = Catalog::embedded();
    // A database kept off the managed offering runs in the stack.
    let mut app = example("picker-wheel");
    app.dependencies.get_mut("db").unwrap().managed = false;
    let files = render(&cat, &app, "swarm").unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(file(&files, "stack.yaml")).unwrap();
    let api = &v["services"]["api"]["deploy"];
    assert_eq!(api["update_config"]["order"], "start-first");
    assert_eq!(api["update_config"]["failure_action"], "rollback");
    assert_eq!(api["replicas"], 2);
    let db = &v["services"]["db"]["deploy"];
    assert_eq!(
        db["update_config"]["order"], "stop-first",
        "one writer on a volume"
    );
    assert!(
        db["placement"]["constraints"][0]
            .as_str()
            .unwrap()
            .starts_with("node.labels.")
    );
    assert_eq!(v["secrets"]["DATABASE_URL"]["external"], true);
    assert_eq!(v["networks"]["to-db"]["driver"], "overlay");
    // monitor ≥ start_period + interval × retries of the health check (10 + 10 × 3).
    assert_eq!(api["update_config"]["monitor"], "40s");
}

/// Dockerfiles for build-context services: detected stack, hadolint clean
/// at warning level, checkov clean; the compose build points at them.
#[test]
fn dockerfiles_pass_hadolint_and_checkov() {
    use deployment_manager::render::render_from;
    let bin = venv_bin();
    let cat = Catalog::embedded();
    let base = Path::new("tests/fixtures/projects");
    let app = load_path(&base.join("app.yaml"), &[]).unwrap().app;
    let engine = deployment_manager::analyse::fitness::Engine::new(&cat, Vec::new());
    let options = deployment_manager::render::Options {
        base: Some(base),
        ..Default::default()
    };
    let files = render_from(&engine, &app, "compose", &options).unwrap();
    let dockerfiles: Vec<&GeneratedFile> = files
        .iter()
        .filter(|f| f.path.starts_with("dockerfiles/"))
        .collect();
    assert_eq!(
        dockerfiles.len(),
        5,
        "python, node, go, rust and java detected"
    );
    for f in &dockerfiles {
        insta::assert_snapshot!(format!("polyglot__{}", f.path.replace('/', "_")), f.content);
        assert!(
            f.content.contains("\nUSER ")
                && f.content.contains("\nHEALTHCHECK ")
                && f.content.matches("\nFROM ").count() >= 2,
            "{}",
            f.path
        );
        assert!(!f.content.contains(":latest"), "{}", f.path);
    }
    assert!(
        dockerfiles.iter().any(|f| f.content.contains("uvicorn")),
        "FastAPI detected"
    );
    assert!(
        dockerfiles
            .iter()
            .any(|f| f.content.contains("npm run build")),
        "Next.js detected"
    );
    let dir = written(&files);
    let out = dir.path().join("out");
    for f in &dockerfiles {
        let (ok, text) = run(Command::new(bin.join("hadolint"))
            .args(["--failure-threshold", "warning"])
            .arg(out.join(&f.path)));
        assert!(ok, "hadolint {}: {text}", f.path);
    }
    let o = Command::new(bin.join("checkov"))
        .arg("-d")
        .arg(out.join("dockerfiles"))
        .args(["--framework", "dockerfile", "--skip-download", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["summary"]["failed"],
        0,
        "{}",
        serde_json::to_string_pretty(&v["results"]["failed_checks"]).unwrap()
    );
    assert!(v["summary"]["passed"].as_u64().unwrap() >= 50);
    let compose: serde_json::Value = serde_saphyr::from_str(
        &files
            .iter()
            .find(|f| f.path == "compose.yaml")
            .unwrap()
            .content,
    )
    .unwrap();
    assert_eq!(
        compose["services"]["py-api"]["build"]["dockerfile"],
        "../deploy/compose/dockerfiles/py-api.Dockerfile"
    );
}

/// One workflow per target: valid against the GitHub workflow schema and
/// clean under checkov's github_actions checks.
#[test]
fn workflows_pass_the_schema_and_checkov() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    let stateless = load_path(Path::new("tests/fixtures/stateless-api.yaml"), &[])
        .unwrap()
        .app;
    let mut seen = 0;
    // Every generator once (local is compose, a second VM provider is the same).
    for target in TARGETS.iter().copied().filter(|t| *t != "local") {
        let files = render(&cat, &example("picker-wheel"), target)
            .or_else(|_| render(&cat, &stateless, target))
            .unwrap();
        let wf = files
            .iter()
            .find(|f| f.path.starts_with(".github/workflows/"))
            .expect("a workflow");
        let dir = written(&files);
        let out = dir.path().join("out");
        let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
            .arg("--schemafile")
            .arg(schema("github-workflow.json"))
            .arg(out.join(&wf.path)));
        assert!(ok, "{target}: {text}");
        let o = Command::new(bin.join("checkov"))
            .arg("-d")
            .arg(&out)
            .args([
                "--framework",
                "github_actions",
                "--skip-download",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            v["summary"]["failed"],
            0,
            "{target}: {}",
            serde_json::to_string_pretty(&v["results"]["failed_checks"]).unwrap()
        );
        assert!(
            v["summary"]["passed"].as_u64().unwrap() > 10,
            "{target}: checkov saw the workflow"
        );
        assert!(
            wf.content.contains("secrets."),
            "{target}: deploy credentials come from repository secrets"
        );
        seen += 1;
    }
    assert_eq!(seen, 14);
}

#[test]
fn deploy_docs_cover_secrets_scaling_rollback_backups_and_troubleshooting() {
    let cat = Catalog::embedded();
    for target in ["compose", "k8s-gke", "swarm", "fly"] {
        let files = render(&cat, &example("picker-wheel"), target).unwrap();
        let md = &files
            .iter()
            .find(|f| f.path == "DEPLOY.md")
            .unwrap()
            .content;
        for section in [
            "## Steps",
            "## Secrets to set",
            "## Scaling",
            "## Rolling back",
            "## Backups and restore",
            "## Troubleshooting",
        ] {
            assert!(md.contains(section), "{target}: {section}");
        }
        assert!(
            md.contains("`DATABASE_URL`")
                && md.contains("pg_dump")
                && md.contains("No Docker daemon"),
            "{target}"
        );
    }
}

fn own_schema(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/targets")
        .join(name)
}

/// Render, Railway, Heroku, ACI and Vercel against the schemas written from
/// their documentation (schemas/targets/, each citing its page); App Runner
/// and ECS inputs against botocore's own models.
#[test]
fn remaining_paas_files_pass_their_validators() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    let mut apps: Vec<(String, App)> = EXAMPLES
        .iter()
        .map(|e| (e.to_string(), example(e)))
        .collect();
    apps.push((
        "stateless-api".into(),
        load_path(Path::new("tests/fixtures/stateless-api.yaml"), &[])
            .unwrap()
            .app,
    ));
    // Peers named in env values: Render references them with fromService.
    apps.push((
        "shop-grpc".into(),
        load_path(Path::new("tests/fixtures/apps/shop-grpc/compose.yaml"), &[])
            .unwrap()
            .app,
    ));
    let checks: [(&str, &[(&str, &str)]); 5] = [
        ("render", &[("render.yaml", "render.schema.json")]),
        ("railway", &[("/railway.json", "railway.schema.json")]),
        (
            "heroku",
            &[
                ("app.json", "heroku-app.schema.json"),
                ("heroku.yml", "heroku-yml.schema.json"),
            ],
        ),
        ("aci", &[("aci.yaml", "aci.schema.json")]),
        ("vercel", &[("vercel.json", "vercel.schema.json")]),
    ];
    let mut per_target: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut aws_files = Vec::new();
    let aws_dir = tempfile::Builder::new()
        .prefix("dm-aws-")
        .tempdir()
        .unwrap();
    for (name, app) in &apps {
        for (target, pairs) in checks {
            let Ok(files) = render(&cat, app, target) else {
                continue;
            };
            let dir = written(&files);
            for f in &files {
                for (suffix, sc) in pairs {
                    if !f.path.starts_with(".github/") && f.path.ends_with(suffix) {
                        let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
                            .arg("--schemafile")
                            .arg(own_schema(sc))
                            .arg(dir.path().join("out").join(&f.path)));
                        assert!(ok, "{name}/{target}/{}: {text}", f.path);
                        *per_target.entry(target).or_default() += 1;
                    }
                }
            }
        }
        for target in ["app-runner", "ecs-fargate"] {
            let Ok(files) = render(&cat, app, target) else {
                continue;
            };
            for f in files
                .iter()
                .filter(|f| f.path.ends_with(".json") && !f.path.contains("iam-policy"))
            {
                let p = aws_dir.path().join(format!("{name}-{target}-{}", f.path));
                std::fs::write(&p, &f.content).unwrap();
                aws_files.push(p);
            }
        }
    }
    for t in ["render", "railway", "heroku", "aci", "vercel"] {
        assert!(
            per_target.get(t).copied().unwrap_or(0) > 0,
            "nothing validated for {t}: {per_target:?}"
        );
    }
    assert!(
        aws_files
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".apprunner-service.json"))
    );
    let (ok, text) = run(Command::new(bin.join("python"))
        .arg("tests/validators/aws_validate.py")
        .args(&aws_files));
    assert!(ok, "{text}");
}

#[test]
fn serverless_gets_blockers_not_broken_files() {
    let cat = Catalog::embedded();
    // Seed 003: the automation agents cannot go to Vercel as they are.
    match render(&cat, &example("automation-agents"), "vercel") {
        Err(RenderError::Blocked { blockers, .. }) => {
            assert!(blockers.iter().any(|b| b.component == "chroma"))
        }
        other => panic!("expected a blocker, got {other:?}"),
    }
    let stateless = load_path(Path::new("tests/fixtures/stateless-api.yaml"), &[])
        .unwrap()
        .app;
    let files = render(&cat, &stateless, "vercel").unwrap();
    let v: serde_json::Value = serde_json::from_str(file(&files, "vercel.json")).unwrap();
    assert_eq!(
        v["functions"]["api/**"]["maxDuration"], 120,
        "long_requests becomes maxDuration"
    );
}

#[test]
fn ecs_sessions_run_as_tasks_with_a_scoped_policy() {
    let cat = Catalog::embedded();
    let files = render(&cat, &example("will-it-compile"), "ecs-fargate").unwrap();
    let api: serde_json::Value = serde_json::from_str(file(&files, "api.taskdef.json")).unwrap();
    let c = &api["containerDefinitions"][0];
    assert_eq!(c["readonlyRootFilesystem"], true);
    assert_eq!(
        c["linuxParameters"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(
        c["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["value"] == "ecs-run-task")
    );
    let policy: serde_json::Value =
        serde_json::from_str(file(&files, "session-compile-job.iam-policy.json")).unwrap();
    assert!(
        policy["Statement"][0]["Condition"]["ArnEquals"]["ecs:task-definition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/will-it-compile-compile-job")
    );
    let svc: serde_json::Value = serde_json::from_str(file(&files, "api.service.json")).unwrap();
    assert_eq!(
        svc["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"],
        true
    );
}

/// VM: cloud-init user data that carries the compose file (valid), a Caddy
/// config (valid per `caddy validate`), systemd unit, firewall and backups.
#[test]
fn vm_cloud_init_is_complete_and_its_parts_validate() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    // One VM: a single replica per service, so no load balancer is needed.
    let mut app = example("picker-wheel");
    for svc in app.services.values_mut() {
        svc.replicas = Some(1);
    }
    let files = render(&cat, &app, "vm-hetzner").unwrap();
    assert!(file(&files, "DEPLOY.md").contains("Create one VM of size CX"));
    let ud = file(&files, "cloud-init.yaml");
    assert!(ud.starts_with("#cloud-config\n"));
    let cfg: serde_json::Value = serde_saphyr::from_str(ud).unwrap();
    let paths: Vec<&str> = cfg["write_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for p in [
        "/opt/picker-wheel/compose.yaml",
        "/etc/caddy/Caddyfile",
        "/etc/systemd/system/picker-wheel.service",
        "/usr/local/bin/picker-wheel-backup",
        "/etc/cron.d/picker-wheel-backup",
    ] {
        assert!(paths.contains(&p), "{p} missing");
    }
    let cmds: Vec<String> = cfg["runcmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        cmds.contains(&"ufw default deny incoming".to_string())
            && cmds.contains(&"ufw allow 443/tcp".to_string())
    );
    let dir = written(&files);
    let out = dir.path().join("out");
    let (ok, text) = run(Command::new(bin.join("docker-compose"))
        .current_dir(&out)
        .args(["-f", "compose.yaml", "config", "-q"]));
    assert!(ok, "{text}");
    let compose: serde_json::Value = serde_saphyr::from_str(file(&files, "compose.yaml")).unwrap();
    assert_eq!(
        compose["services"]["api"]["ports"][0], "127.0.0.1:8080:8080",
        "public ports only on loopback"
    );
    let (ok, text) = run(Command::new("caddy")
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(out.join("Caddyfile")));
    assert!(
        ok,
        "caddy validate (Debian's caddy, installed by scripts/test.sh): {text}"
    );
    assert!(file(&files, "Caddyfile").contains("reverse_proxy 127.0.0.1:8080 {"));
    let (ok, text) = run(Command::new("sh")
        .arg("-n")
        .arg(out.join("picker-wheel-backup.sh")));
    assert!(ok, "{text}");
    assert!(file(&files, "picker-wheel-backup.sh").contains("pg_dumpall"));
}

/// Two replicas need two VMs. With every dependency managed (DigitalOcean)
/// they are identical and stateless behind the load balancer, which ends
/// TLS; where a database stays self-hosted (Hetzner) they form a swarm.
#[test]
fn several_vms_sit_behind_a_load_balancer_or_form_a_swarm() {
    let cat = Catalog::embedded();
    let app = example("picker-wheel");
    let files = render(&cat, &app, "vm-digitalocean").unwrap();
    let docs = file(&files, "DEPLOY.md");
    assert!(
        docs.contains("Create 2 VMs of size Droplet s-2vcpu-4gb"),
        "{docs}"
    );
    assert!(docs.contains("Create the load balancer"));
    let compose: serde_json::Value = serde_saphyr::from_str(file(&files, "compose.yaml")).unwrap();
    let services: Vec<&String> = compose["services"].as_object().unwrap().keys().collect();
    assert_eq!(
        services,
        ["ui", "api"],
        "managed db and cache run no container"
    );
    assert!(docs.contains("`DATABASE_URL`") && docs.contains("create Managed PostgreSQL"));
    let caddy = file(&files, "Caddyfile");
    assert!(caddy.contains(":80 {") && caddy.contains("auto_https off"));
    let dir = written(&files);
    let (ok, text) = run(Command::new("caddy")
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(dir.path().join("out/Caddyfile")));
    assert!(ok, "{text}");
    assert!(
        file(&files, "cloud-init.yaml").contains("  - deny\n  - 443/tcp"),
        "behind the load balancer no VM takes HTTPS"
    );

    let files = render(&cat, &app, "vm-hetzner").unwrap();
    let docs = file(&files, "DEPLOY.md");
    assert!(docs.contains("Create 2 VMs of size CX22") && docs.contains("docker swarm join"));
    let stack: serde_json::Value = serde_saphyr::from_str(file(&files, "stack.yaml")).unwrap();
    assert_eq!(
        stack["services"]["db"]["deploy"]["placement"]["constraints"][0],
        "node.labels.picker-wheel.db == true",
        "the database stays on the node that holds its volume"
    );
    let ud: serde_json::Value = serde_saphyr::from_str(file(&files, "cloud-init.yaml")).unwrap();
    assert_eq!(ud["write_files"][0]["path"], "/opt/picker-wheel/stack.yaml");
    let rules: Vec<String> = ud["runcmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("\"10.0.0.0/8\"") && r.contains("\"2377\"")),
        "swarm's control port is open to the private network only: {rules:?}"
    );
}

/// The release command rendered natively on every target that has a
/// release phase, each file still valid for its validator: a one-off
/// Compose service the web service waits for, a Kubernetes Job outside the
/// kustomization (with a policy that lets it reach the database), Fly's
/// `release_command`, Render's and Railway's `preDeployCommand`, Heroku's
/// release phase and App Platform's PRE_DEPLOY job.
#[test]
fn the_release_command_is_native_on_each_target() {
    let bin = venv_bin();
    let cat = Catalog::embedded();
    let app = load_path(Path::new("tests/fixtures/release/compose.yaml"), &[])
        .unwrap()
        .app;
    let line = "python manage.py migrate --noinput";
    let check = |files: &[GeneratedFile], validator: &mut dyn FnMut(&Path, &str)| {
        let dir = written(files);
        let out = dir.path().join("out");
        for f in target_files(files) {
            validator(&out, &f.path);
        }
    };

    let files = render(&cat, &app, "compose").unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(file(&files, "compose.yaml")).unwrap();
    let job = &v["services"]["web-release"];
    assert_eq!(
        job["command"],
        serde_json::json!(["python", "manage.py", "migrate", "--noinput"])
    );
    assert_eq!(job["restart"], "no");
    assert!(job.get("ports").is_none() && job.get("healthcheck").is_none());
    assert_eq!(
        v["services"]["web"]["depends_on"]["web-release"]["condition"],
        "service_completed_successfully"
    );
    assert!(file(&files, "DEPLOY.md").contains("## Release command"));
    check(&files, &mut |out, p| {
        if p == "compose.yaml" {
            let (ok, text) = run(Command::new(bin.join("docker-compose"))
                .current_dir(out)
                .args(["-f", p, "config", "-q"]));
            assert!(ok, "compose: {text}");
        }
    });

    let files = render(&cat, &app, "k8s-gke").unwrap();
    let job = file(&files, "release-job.yaml");
    assert!(
        job.contains("kind: Job") && job.contains("migrate"),
        "{job}"
    );
    assert!(!file(&files, "kustomization.yaml").contains("release-job.yaml"));
    assert!(file(&files, "network-policies.yaml").contains("web-release"));
    assert!(file(&files, "DEPLOY.md").contains("kubectl apply -f release-job.yaml"));
    check(&files, &mut |out, p| {
        if p.ends_with(".yaml") && p != "kustomization.yaml" {
            let (ok, text) = run(Command::new(bin.join("kubernetes-validate"))
                .args(["--strict", "-k", "1.37.0"])
                .arg(out.join(p)));
            assert!(ok && !text.contains("ERROR"), "{p}: {text}");
        }
    });

    let files = render(&cat, &app, "fly").unwrap();
    assert!(file(&files, "web/fly.toml").contains(&format!("release_command = \"{line}\"")));
    check(&files, &mut |out, p| {
        if p.ends_with("fly.toml") {
            let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
                .arg("--schemafile")
                .arg(schema("fly.json"))
                .arg(out.join(p)));
            assert!(ok, "{p}: {text}");
        }
    });

    for (target, path, needle, sc) in [
        (
            "render",
            "render.yaml",
            format!("preDeployCommand: {line}"),
            "render.schema.json",
        ),
        (
            "railway",
            "web/railway.json",
            format!("\"preDeployCommand\": [\n      \"{line}\""),
            "railway.schema.json",
        ),
        (
            "heroku",
            "heroku.yml",
            "release:".to_string(),
            "heroku-yml.schema.json",
        ),
    ] {
        let files = render(&cat, &app, target).unwrap();
        assert!(
            file(&files, path).contains(&needle),
            "{target}: {}",
            file(&files, path)
        );
        check(&files, &mut |out, p| {
            if p == path {
                let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
                    .arg("--schemafile")
                    .arg(own_schema(sc))
                    .arg(out.join(p)));
                assert!(ok, "{target}/{p}: {text}");
            }
        });
    }

    let files = render(&cat, &app, "do-app-platform").unwrap();
    let spec = target_files(&files);
    let spec = &spec
        .iter()
        .find(|f| f.path.ends_with(".yaml"))
        .unwrap()
        .path;
    let text = file(&files, spec);
    assert!(text.contains("kind: PRE_DEPLOY"), "{text}");
    check(&files, &mut |out, p| {
        if p == spec {
            let (ok, text) = run(Command::new(bin.join("check-jsonschema"))
                .arg("--schemafile")
                .arg(schema("digitalocean-app-spec/app_spec.yml"))
                .arg(out.join(p)));
            assert!(ok, "{p}: {text}");
        }
    });
}
