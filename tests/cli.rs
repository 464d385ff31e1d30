//! The binary as users run it: exit codes, located errors, no partial
//! writes, JSON on every command, profiles in SQLite, secrets never stored.

use std::path::Path;
use std::process::{Command, Output};

fn dm(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn bad_specs_exit_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cases = [
        ("wrong-type", "7:15", "expected a whole number, found `two`"),
        ("unknown-key", "7:5", "did you mean `health`?"),
        ("missing-name", "3:1", "missing field `name`"),
        ("duplicate-service", "7:3", "duplicate mapping key: web"),
        ("bad-duration", "7:34", "unknown duration unit"),
        ("bad-size", "7:25", "unknown size unit `QB`"),
        ("cycle", "7:5", "cycle: a → b → c → a"),
        ("unknown-dependency", "7:18", "did you mean `db`?"),
        ("unknown-peer", "7:20", "did you mean `carts`?"),
        ("limit-below-request", "7:30", "below the memory request"),
        ("bad-constraint", "12:11", "needs `==` or `!=`"),
        ("alias-bomb", "", "too many nodes"),
        ("not-yaml", "", "unclosed bracket"),
    ];
    for (name, pos, needle) in cases {
        let file = format!("tests/fixtures/bad/{name}.yaml");
        let o = dm(&db, &["fitness", &file]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(&format!("{file}:{pos}")),
            "{name}: position {pos} missing in\n{t}"
        );
        // The machine form carries the same position and the whole message.
        let j = dm(&db, &["--json", "fitness", &file]);
        assert_eq!(j.status.code(), Some(2));
        let err: serde_json::Value =
            serde_json::from_slice(&j.stderr).unwrap_or_else(|_| panic!("{name}: {}", text(&j)));
        assert!(err["error"]["line"].as_u64().unwrap_or(0) >= 1, "{name}");
        let msg = format!(
            "{} {}",
            err["error"]["message"].as_str().unwrap_or(""),
            err["error"]["help"].as_str().unwrap_or("")
        );
        assert!(msg.contains(needle), "{name}: `{needle}` missing in {msg}");
    }
}

#[test]
fn import_writes_atomically_and_never_over_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = dir.path().join("app.yaml");
    let o = dm(
        &db,
        &[
            "import",
            "tests/fixtures/compose/full.yml",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("# app.yaml imported by deployment-manager"));
    assert!(
        !written.contains("sk_live_notreal"),
        "secret value leaked into app.yaml"
    );
    assert!(
        !written.contains("example"),
        "POSTGRES_PASSWORD value leaked"
    );
    // The written file is itself a valid app description.
    let again = dm(&db, &["fitness", out.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    // Refuses to overwrite, and a bad input leaves the old file untouched.
    let o = dm(
        &db,
        &[
            "import",
            "tests/fixtures/compose/full.yml",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--force"));
    let o = dm(
        &db,
        &[
            "import",
            "tests/fixtures/bad/not-yaml.yaml",
            "-o",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn fail_on_blockers_and_tier_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let app = "examples/will-it-compile/app.yaml";
    assert_eq!(
        dm(
            &db,
            &[
                "fitness",
                app,
                "--target",
                "cloud-run",
                "--fail-on-blockers"
            ]
        )
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        dm(
            &db,
            &["fitness", app, "--target", "k8s-gke", "--fail-on-blockers"]
        )
        .status
        .code(),
        Some(0)
    );
    let o = dm(&db, &["fitness", app, "--tier", "spaceship"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown tier"));
    let o = dm(&db, &["fitness", app, "--target", "cloud-runn"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("did you mean `cloud-run`"),
        "{}",
        text(&o)
    );
    let o = dm(&db, &["--json", "fitness", app, "--tier", "cloud"]);
    let r = json(&o);
    assert_eq!(r["tiers"].as_array().unwrap().len(), 1);
    assert_eq!(r["tiers"][0]["id"], "saas");
}

#[test]
fn every_analysis_command_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let app = "examples/picker-wheel/app.yaml";
    let e = json(&dm(
        &db,
        &[
            "--json",
            "estimate-cost",
            app,
            "--target",
            "vm-digitalocean",
            "--users",
            "1000",
        ],
    ));
    assert_eq!(e["monthly_estimate"]["compute"], 48.0);
    assert_eq!(e["currency"], "USD");
    assert!(
        e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.get("unit_price").is_some() && l.get("quantity").is_some())
    );
    let p = json(&dm(&db, &["--json", "plan", app, "--users", "2,50,1000"]));
    assert_eq!(p["levels"], serde_json::json!([2, 50, 1000]));
    assert_eq!(p["growth_path"].as_array().unwrap().len(), 3);
    let c = json(&dm(&db, &["--json", "catalog", "check"]));
    assert!(
        c.as_array()
            .unwrap()
            .iter()
            .any(|i| i["message"].as_str().unwrap_or("").starts_with("stale"))
    );
    let s = json(&dm(&db, &["--json", "schema", "app"]));
    assert!(s["properties"]["services"].is_object());
    let sw = json(&dm(&db, &["--json", "swaps", "list"]));
    assert!(sw.as_array().unwrap().len() >= 15);
    assert_eq!(
        dm(&db, &["plan", app, "--users", "0"]).status.code(),
        Some(2)
    );
}

#[test]
fn profiles_version_swap_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let o = dm(
        &db,
        &[
            "profile",
            "create",
            "pw",
            "examples/picker-wheel/app.yaml",
            "--tier",
            "desktop",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        dm(
            &db,
            &["profile", "create", "pw", "examples/picker-wheel/app.yaml"]
        )
        .status
        .code(),
        Some(2)
    );
    assert!(
        dm(&db, &["profile", "set", "pw", "provider", "digitalocean"])
            .status
            .success()
    );
    assert!(
        dm(&db, &["profile", "set", "pw", "region", "nyc1"])
            .status
            .success()
    );
    assert_eq!(
        dm(&db, &["profile", "set", "pw", "strategy", "sideways"])
            .status
            .code(),
        Some(2)
    );
    let o = dm(
        &db,
        &["profile", "set", "pw", "env.STRIPE_SECRET_KEY", "sk_live_x"],
    );
    assert_eq!(o.status.code(), Some(2), "secrets must be refused");

    let r = json(&dm(
        &db,
        &["--json", "swaps", "apply", "pw", "postgres", "sqlite"],
    ));
    assert!(
        r["fitness_after"].as_u64() > r["fitness_before"].as_u64(),
        "{r}"
    );
    assert_eq!(
        dm(&db, &["swaps", "apply", "pw", "postgres", "mongodb"])
            .status
            .code(),
        Some(2)
    );

    let v = json(&dm(&db, &["--json", "profile", "versions", "pw"]));
    assert_eq!(v.as_array().unwrap().len(), 4);
    let d = json(&dm(&db, &["--json", "profile", "diff", "pw"]));
    assert!(
        d["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("swaps"))
    );
    let rb = json(&dm(
        &db,
        &["--json", "profile", "rollback", "pw", "--version", "1"],
    ));
    assert_eq!(rb["version"], 5);
    assert_eq!(rb["swaps"], serde_json::json!([]));

    // Cost from the profile's provider setting, with its id as in seed 004.
    let e = json(&dm(
        &db,
        &["--json", "profile", "set", "pw", "provider", "digitalocean"],
    ));
    assert_eq!(e["settings"]["provider"], "digitalocean");
    let e = json(&dm(&db, &["--json", "estimate-cost", "pw"]));
    assert_eq!(e["provider"], "digitalocean");
    assert!(e["profile_id"].as_str().unwrap().starts_with("profile-"));

    let export = dir.path().join("pw.json");
    assert!(
        dm(
            &db,
            &["profile", "export", "pw", "-o", export.to_str().unwrap()]
        )
        .status
        .success()
    );
    assert!(
        dm(
            &db,
            &[
                "profile",
                "import",
                export.to_str().unwrap(),
                "--name",
                "pw2"
            ]
        )
        .status
        .success()
    );
    let list = json(&dm(&db, &["--json", "profile", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(dm(&db, &["profile", "delete", "pw2"]).status.success());
    assert_eq!(dm(&db, &["profile", "show", "pw2"]).status.code(), Some(2));
}

#[test]
fn secrets_are_named_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args([
            "--state",
            db.to_str().unwrap(),
            "profile",
            "create",
            "shop",
            "tests/fixtures/compose/full.yml",
        ])
        .env("DB_PASSWORD", "hunter2-very-secret")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = json(&dm(
        &db,
        &["--json", "secrets", "template", "shop", "--format", "env"],
    ));
    let names: Vec<&str> = t["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for n in [
        "DATABASE_URL",
        "STRIPE_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "API_TOKEN",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let classes: std::collections::BTreeMap<&str, &str> = t["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["class"].as_str().unwrap()))
        .collect();
    assert_eq!(classes["DATABASE_URL"], "infrastructure");
    assert_eq!(classes["POSTGRES_PASSWORD"], "per_install_generated");
    for fmt in ["env", "vault", "aws", "k8s", "docker", "fly", "github"] {
        let o = dm(&db, &["secrets", "template", "shop", "--format", fmt]);
        assert!(o.status.success(), "{fmt}: {}", text(&o));
        assert!(text(&o).contains("DATABASE_URL"), "{fmt}");
    }
    assert_eq!(
        dm(&db, &["secrets", "template", "shop", "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
    // No secret value reached the database or its journal.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        for value in ["hunter2-very-secret", "sk_live_notreal", "example", "abc"] {
            if value.len() > 3 {
                assert!(!hay.contains(value), "secret value `{value}` stored");
            }
        }
    }
}

#[test]
fn validate_reports_checks_and_fails_until_swaps_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    assert!(
        dm(
            &db,
            &[
                "profile",
                "create",
                "desk",
                "examples/picker-wheel/app.yaml",
                "--tier",
                "mobile"
            ]
        )
        .status
        .success()
    );
    let o = dm(&db, &["--json", "validate", "desk"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    let status = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("dependency_swaps"), "fail");
    assert_eq!(
        status("target_support"),
        "not_run",
        "a check that could not run is not a pass"
    );
    assert_eq!(v["not_run"], 2);
    let issue = &v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "dependency_swaps")
        .unwrap()["issues"][0];
    assert!(issue["hint"].as_str().unwrap().contains("swaps apply desk"));
    for (from, to) in [("postgres", "sqlite"), ("redis", "in-process-cache")] {
        assert!(
            dm(&db, &["swaps", "apply", "desk", from, to])
                .status
                .success()
        );
    }
    let v = json(&dm(&db, &["--json", "validate", "desk"]));
    assert_eq!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "dependency_swaps")
            .unwrap()["status"],
        "pass"
    );

    // Secrets count as provided from an env file (names only).
    let env = dir.path().join("prod.env");
    std::fs::write(
        &env,
        "DATABASE_URL=postgres://x\nREDIS_URL=redis://x\nSESSION_SECRET=y\n",
    )
    .unwrap();
    assert!(
        dm(
            &db,
            &[
                "profile",
                "create",
                "prod",
                "examples/picker-wheel/app.yaml"
            ]
        )
        .status
        .success()
    );
    assert!(
        dm(&db, &["profile", "set", "prod", "provider", "digitalocean"])
            .status
            .success()
    );
    let v = json(&dm(
        &db,
        &[
            "--json",
            "validate",
            "prod",
            "--env-file",
            env.to_str().unwrap(),
        ],
    ));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["not_run"], 0);
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "pass" || c["status"] == "warn")
    );

    // The manifest of seed 004, and its own validation.
    let m = dir.path().join("manifest.json");
    assert!(
        dm(&db, &["manifest", "prod", "-o", m.to_str().unwrap()])
            .status
            .success()
    );
    let man: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(man["schema_version"], "v0.1");
    assert_eq!(
        man["infrastructure"]["compute"],
        serde_json::json!({"type": "droplet", "size": "s-2vcpu-4gb", "count": 2})
    );
    assert_eq!(man["infrastructure"]["database"]["size"], "db-s-1vcpu-1gb");
    assert_eq!(man["infrastructure"]["storage"]["type"], "spaces");
    assert_eq!(man["networking"]["load_balancer"], true);
    assert!(dm(&db, &["validate", m.to_str().unwrap()]).status.success());
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("\"cdn\"", "\"cdnn\""),
    )
    .unwrap();
    let o = dm(&db, &["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown field `cdnn`"), "{}", text(&o));
    let schema = json(&dm(&db, &["--json", "schema", "manifest"]));
    assert!(schema["properties"]["infrastructure"].is_object());
}

#[test]
fn user_catalog_and_rules_extend_the_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cat = dir.path().join("catalog.yaml");
    std::fs::write(&cat, "prices:\n  - {id: do.droplet.s-2vcpu-4gb, provider: digitalocean, item: \"Droplet s-2vcpu-4gb (negotiated)\", unit: month, usd: 20.0, vcpu: 2, memory_gb: 4, included_egress_gb: 4000, source: \"https://example.com/contract\", captured: 2026-11-01, backing: P}\n").unwrap();
    let args = [
        "--json",
        "estimate-cost",
        "examples/picker-wheel/app.yaml",
        "--target",
        "vm-digitalocean",
        "--users",
        "1000",
    ];
    let base = json(&dm(&db, &args));
    let mut with = vec!["--catalog", cat.to_str().unwrap()];
    with.extend(args);
    let over = json(&dm(&db, &with));
    assert_eq!(base["monthly_estimate"]["compute"], 48.0);
    assert_eq!(over["monthly_estimate"]["compute"], 40.0);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "rules:\n  - {id: no-redis-here, scope: target, when: {component.dep_kind: redis, target.provider: digitalocean}, effect: blocker, subscore: platform, priority: 1000, message: \"house rule: no {component.dep_kind} on {target}\"}\n").unwrap();
    let r = json(&dm(
        &db,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--json",
            "fitness",
            "examples/picker-wheel/app.yaml",
            "--target",
            "vm-digitalocean",
        ],
    ));
    assert_eq!(r["targets"][0]["status"], "blocked");
    assert!(
        r["targets"][0]["blockers"][0]["message"]
            .as_str()
            .unwrap()
            .contains("house rule: no redis")
    );
    std::fs::write(&rules, "rules:\n  - {id: x, scope: target, when: {}, effect: explode, subscore: platform, message: m}\n").unwrap();
    let o = dm(
        &db,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "fitness",
            "examples/picker-wheel/app.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("rules.yaml:2"), "{}", text(&o));
}

/// A line without a price is never shown as $0.00: the table says "not
/// priced" with the reason, totals read "≥ $x", and the JSON says
/// `complete: false` (Cloud SQL has no price in the catalog yet).
#[test]
fn unpriced_lines_are_not_free() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let args = [
        "estimate-cost",
        "examples/picker-wheel/app.yaml",
        "--target",
        "k8s-gke",
    ];
    let mut with_json = vec!["--json"];
    with_json.extend(args);
    let e = json(&dm(&db, &with_json));
    assert_eq!(e["complete"], false);
    let unpriced = e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["price_not_found"] == true)
        .expect("an unpriced line");
    let o = dm(&db, &args);
    let t = text(&o);
    let row = t
        .lines()
        .find(|l| l.contains(unpriced["name"].as_str().unwrap()))
        .unwrap();
    assert!(row.contains("not priced: "), "{row}");
    assert!(!row.contains("$0.00"), "{row}");
    assert!(
        t.contains(&format!("≥ ${:.2} / month", e["total"].as_f64().unwrap())),
        "{t}"
    );
    let all = text(&dm(
        &db,
        &["estimate-cost", "examples/picker-wheel/app.yaml"],
    ));
    let gke = all
        .lines()
        .find(|l| l.contains("Google Kubernetes Engine"))
        .unwrap();
    assert!(
        gke.contains("≥ $0.00") && gke.contains(&format!("≥ ${:.2}", e["total"].as_f64().unwrap())),
        "{gke}"
    );
}

/// Exit codes come from one table, printed by `--help`: a state database
/// that cannot be opened is not bad input (2) but 3, and a missing
/// profile stays bad input.
#[test]
fn a_broken_state_database_exits_3_and_help_lists_the_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let o = dm(&file.join("state.db"), &["profile", "list"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("state"), "{}", text(&o));

    let db = dir.path().join("state.db");
    let missing = dm(&db, &["releases", "no-such-profile"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));

    let help = dm(&db, &["--help"]);
    let said = text(&help);
    for code in [
        "0 ok",
        "1 an operation failed",
        "2 bad input",
        "3 the state database",
    ] {
        assert!(
            said.contains(code),
            "--help does not list `{code}`:\n{said}"
        );
    }
}

/// Prices are trusted only as far as their dates and units: a price read
/// more than a year ago is marked on its line (table and JSON), a price
/// that makes an always-on resource cost under $1 a month is flagged by
/// `catalog check`, and a user's rules reach `generate` as they reach
/// `fitness`.
#[test]
fn stale_prices_are_marked_per_line_and_odd_units_and_user_rules_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let cat = dir.path().join("catalog.yaml");
    let today = jiff::Zoned::now().date();
    std::fs::write(
        &cat,
        format!(
            "prices:\n  - {{id: do.lb, provider: digitalocean, item: Load Balancer, unit: month, usd: 12.0, source: \"https://example.com/lb\", captured: {today}, backing: P}}\n  - {{id: do.spaces, provider: digitalocean, item: Spaces, unit: month, usd: 5.0, source: \"https://example.com/spaces\", captured: 2019-03-01, backing: P}}\n  - {{id: acme.db, provider: acme, item: managed database, unit: hour, usd: 0.0009, source: \"https://example.com/db\", captured: {today}, backing: P}}\n"
        ),
    )
    .unwrap();
    let cat = cat.to_str().unwrap();
    let e = json(&dm(
        &db,
        &[
            "--catalog",
            cat,
            "--json",
            "estimate-cost",
            "examples/picker-wheel/app.yaml",
            "--target",
            "vm-digitalocean",
            "--users",
            "1000",
        ],
    ));
    let line = |id: &str| {
        e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["price_id"] == id)
            .unwrap_or_else(|| panic!("no {id} line in {e}"))
            .clone()
    };
    assert_eq!(line("do.spaces")["stale"], true);
    assert_eq!(line("do.lb")["stale"], false);
    assert_eq!(e["uses_stale_prices"], true);
    let table = text(&dm(
        &db,
        &[
            "--catalog",
            cat,
            "estimate-cost",
            "examples/picker-wheel/app.yaml",
            "--target",
            "vm-digitalocean",
            "--users",
            "1000",
        ],
    ));
    let spaces_row = table
        .lines()
        .find(|l| l.contains("object_storage"))
        .unwrap();
    let lb_row = table.lines().find(|l| l.contains("load balancer")).unwrap();
    assert!(spaces_row.contains("STALE"), "{table}");
    assert!(!lb_row.contains("STALE"), "{table}");

    let check = text(&dm(&db, &["--catalog", cat, "catalog", "check"]));
    let flagged = check.lines().find(|l| l.contains("acme.db")).unwrap_or("");
    assert!(
        flagged.contains("costs $0.66 a month") && flagged.contains("check the unit"),
        "{check}"
    );

    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "rules:\n  - {id: no-compose-here, scope: target, when: {target.family: compose}, effect: blocker, subscore: platform, priority: 1000, message: \"house rule: not on {target}\"}\n").unwrap();
    let out = dir.path().join("out");
    let g = dm(
        &db,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "generate",
            "examples/picker-wheel/app.yaml",
            "--target",
            "compose",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!g.status.success(), "{}", text(&g));
    assert!(text(&g).contains("house rule: not on"), "{}", text(&g));
    assert!(!out.join("compose.yaml").exists(), "nothing is written");
}
