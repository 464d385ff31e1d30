//! Split placements on an app imported from a compose file shaped like a
//! real Next.js + FastAPI + Postgres project: each part is judged, priced
//! and generated on its own target, the parts sum to the split's bill, and
//! the call that now crosses providers is carried by a setting instead of
//! a service name the other platform cannot resolve.

use deployment_manager::analyse::cost::{self, Strategy};
use deployment_manager::analyse::fitness::{Engine, Status};
use deployment_manager::analyse::plan;
use deployment_manager::analyse::split::{self, Move, Split};
use deployment_manager::catalog::Catalog;
use deployment_manager::describe::{app::App, load_path};
use deployment_manager::render::{self, Options, RenderError};
use std::path::Path;
use std::process::Command;

const NOTES: &str = "tests/fixtures/apps/next-fastapi/compose.yaml";

fn notes() -> App {
    load_path(Path::new(NOTES), &[]).unwrap().app
}

fn front_to(target: &str) -> Vec<Move> {
    vec![format!("frontend={target}").parse().unwrap()]
}

#[test]
fn the_parts_are_priced_on_their_own_and_sum_to_the_split() {
    let cat = Catalog::embedded();
    let engine = Engine::new(&cat, Vec::new());
    let app = notes();
    assert_eq!(split::front_end(&app), ["frontend"]);
    let sp = Split::new(&app, "fly", &front_to("vercel")).unwrap();
    let j = split::evaluate(&engine, &app, &sp, 200, Strategy::Rolling).unwrap();
    assert!(!j.blocked, "{:#?}", j.groups[1].assessment.blockers);
    assert_eq!(j.groups[0].group.services, ["backend"]);
    assert_eq!(j.groups[0].group.dependencies, ["db"]);
    assert_eq!(j.groups[1].group.services, ["frontend"]);
    let sum: f64 = j.groups.iter().map(|g| g.estimate.total).sum();
    assert!((j.total - sum).abs() < 1e-9);
    // Each part is priced exactly as the part alone would be.
    for (i, g) in j.groups.iter().enumerate() {
        let t = cat.target(&g.group.target).unwrap();
        let alone = cost::estimate(&cat, &sp.part(&app, i), t, 200, Strategy::Rolling);
        assert_eq!(alone.total, g.estimate.total, "{}", g.group.target);
    }
    // The egress is shared, not paid twice: the whole app's 100 GB (200
    // users × 0.5 GB) leaves half from each part's public service.
    let egress = |e: &cost::Estimate| -> f64 {
        e.lines
            .iter()
            .filter(|l| l.category == "bandwidth")
            .map(|l| l.quantity)
            .sum()
    };
    assert_eq!(egress(&j.groups[1].estimate), 50.0);
    // The front end's database-free part has no database line.
    assert!(
        j.groups[1]
            .estimate
            .lines
            .iter()
            .all(|l| l.category != "database")
    );
}

#[test]
fn the_generated_front_end_reaches_the_api_by_a_setting_not_a_service_name() {
    let cat = Catalog::embedded();
    let engine = Engine::new(&cat, Vec::new());
    let app = notes();
    let sp = Split::new(&app, "fly", &front_to("vercel")).unwrap();
    let files = render::split::render(&engine, &app, &sp, &Options::default()).unwrap();
    let file = |p: &str| {
        &files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| {
                panic!(
                    "no {p} in {:?}",
                    files.iter().map(|f| &f.path).collect::<Vec<_>>()
                )
            })
            .content
    };
    // On Vercel, `backend` resolves to nothing: no file of that part may
    // address it by that name.
    for f in files.iter().filter(|f| f.path.starts_with("vercel/")) {
        assert!(
            !f.content.contains("backend:8000"),
            "{} still calls backend by its compose name",
            f.path
        );
    }
    let deploy = file("vercel/DEPLOY.md");
    assert!(deploy.contains("`NEXT_PUBLIC_API_URL`"), "{deploy}");
    assert!(deploy.contains("`API_INTERNAL_URL`"), "{deploy}");
    // The API keeps its database; its part holds the database's settings.
    let fly = file("fly/backend/fly.toml");
    assert!(fly.contains("internal_port = 8000"), "{fly}");
    assert!(!files.iter().any(|f| f.path.starts_with("fly/frontend")));
    let guide = file("SPLIT.md");
    assert!(
        guide.contains("set `NEXT_PUBLIC_API_URL`, `API_INTERNAL_URL` to its public address"),
        "{guide}"
    );
    assert!(
        guide.find("Deploy `fly/`").unwrap() < guide.find("Deploy `vercel/`").unwrap(),
        "the part others call goes first: {guide}"
    );
    // split.json and each part's placement.json name the same bill.
    let summary: serde_json::Value = serde_json::from_str(file("split.json")).unwrap();
    let part_total = |dir: &str| -> f64 {
        let p: serde_json::Value =
            serde_json::from_str(file(&format!("{dir}/placement.json"))).unwrap();
        p["monthly"]["total"].as_f64().unwrap()
    };
    let parts = part_total("fly") + part_total("vercel");
    assert!(
        (summary["monthly_total"].as_f64().unwrap() - parts).abs() < 0.011,
        "{summary} vs {parts}"
    );
    assert_eq!(summary["crossings"][0]["to"], "backend");
}

#[test]
fn a_part_its_target_cannot_run_writes_nothing() {
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("out");
    // picker-wheel's `ui` is only an image: Vercel builds from source.
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .env("DEPLOYMENT_MANAGER_STATE", state.path().join("s.db"))
        .args([
            "generate",
            "examples/picker-wheel/app.yaml",
            "--target",
            "fly",
        ])
        .args(["--split", "ui=vercel", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("given only as a container image"), "{err}");
    assert!(!out.exists(), "nothing is written when one part is blocked");
    // A bad option is an input error that names the problem.
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .env("DEPLOYMENT_MANAGER_STATE", state.path().join("s.db"))
        .args([
            "estimate-cost",
            NOTES,
            "--target",
            "fly",
            "--split",
            "web=vercel",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`web`, which is not a service of this app")
    );
    // The same split through the library: the blocked part is named.
    let cat = Catalog::embedded();
    let engine = Engine::new(&cat, Vec::new());
    let app = load_path(Path::new("examples/picker-wheel/app.yaml"), &[])
        .unwrap()
        .app;
    let sp = Split::new(&app, "fly", &["ui=vercel".parse().unwrap()]).unwrap();
    match render::split::render(&engine, &app, &sp, &Options::default()) {
        Err(RenderError::Blocked { target, .. }) => assert_eq!(target, "Vercel (Functions)"),
        other => panic!("expected the Vercel part to be blocked, got {other:?}"),
    }
}

#[test]
fn fitness_and_cost_of_a_split_on_the_command_line() {
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .env("DEPLOYMENT_MANAGER_STATE", state.path().join("s.db"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let f = run(&[
        "--json",
        "fitness",
        NOTES,
        "--target",
        "fly",
        "--split",
        "frontend=vercel",
    ]);
    assert_eq!(f["groups"][1]["target"], "vercel");
    assert_eq!(f["groups"][1]["assessment"]["status"], "ready");
    let e = run(&[
        "--json",
        "estimate-cost",
        NOTES,
        "--target",
        "fly",
        "--split",
        "frontend=vercel",
        "--users",
        "1000",
    ]);
    let parts: f64 = e["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["estimate"]["total"].as_f64().unwrap())
        .sum();
    assert!((e["total"].as_f64().unwrap() - parts).abs() < 1e-9);
    assert_eq!(e["users"], 1000);
}

#[test]
fn the_plan_weighs_the_split_for_each_use_case() {
    let cat = Catalog::embedded();
    let engine = Engine::new(&cat, Vec::new());
    // Seed 001's platform: its Next.js front end can go apart from the API
    // that starts the execution containers.
    let app = load_path(Path::new("examples/coding-platform/app.yaml"), &[])
        .unwrap()
        .app;
    let p = plan::plan(&engine, &app, &plan::DEFAULT_LEVELS, Strategy::Rolling);
    let sp = p.split.as_ref().expect("a front end to move");
    assert_eq!(sp.front, ["web"]);
    // Every rest row carries the API's session blockers as the whole app
    // does: moving the front end cannot lift those.
    let heroku = sp.rest_rows.iter().find(|r| r.target == "heroku").unwrap();
    assert_eq!(heroku.status, Status::Blocked);
    let mm = p
        .recommendations
        .iter()
        .find(|r| r.use_case == "minimal_maintenance")
        .unwrap();
    let groups = mm
        .split
        .as_ref()
        .expect("ECS for the API, a platform for the front end");
    assert_eq!(groups[0].services, ["api"]);
    assert_eq!(groups[1].services, ["web"]);
    let total: f64 = groups.iter().map(|g| g.monthly).sum();
    assert!((mm.monthly.unwrap() - total).abs() < 1e-9);
    let whole = p
        .rows
        .iter()
        .find(|r| r.target == groups[0].target)
        .unwrap()
        .monthly[2];
    assert!(
        whole - total >= plan::SPLIT_MIN_SAVING_USD
            && whole - total >= whole * plan::SPLIT_MIN_SAVING_SHARE,
        "a split must save enough: {total} vs {whole}"
    );
    assert_eq!(
        mm.placed_on(),
        format!("{} + {} (web)", groups[0].target, groups[1].target)
    );
    // Where the whole app is cheapest on one machine, it stays whole.
    let budget = p
        .recommendations
        .iter()
        .find(|r| r.use_case == "budget")
        .unwrap();
    assert!(budget.split.is_none());
}
