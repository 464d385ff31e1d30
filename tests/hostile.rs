//! Hostile input against `serve` and the CLI: what a malicious colleague or
//! a poisoned repository could send. Each test names the attack it repels;
//! each failed on the code before the hardening (crash, read of the
//! server's environment or files, stored script, unbounded growth, hang,
//! stall, silent failure).

mod common;

use common::server::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(args)
        .output()
        .unwrap()
}

/// The small app most tests upload: one public web service.
const WEB_APP: &str = "services:\n  web:\n    image: shop/web:1\n    ports: [\"80:8080\"]\n";

/// Creates profile `name` from [`WEB_APP`] through the API.
fn create_profile(srv: &Server, name: &str) {
    let r = post_upload(
        srv,
        &serde_json::json!({"name": name, "filename": "compose.yml", "content": WEB_APP}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn post_upload(srv: &Server, body: &serde_json::Value) -> Resp {
    request(
        srv.port,
        "POST",
        "/api/profiles",
        &[BEARER, JSON],
        &body.to_string(),
    )
}

/// A 400 whose error says `says` at line `line` of the upload.
fn assert_spec_error(r: &Resp, says: &str, line: u64) {
    assert_eq!(r.status, 400, "{}", r.body);
    let e = &r.json()["error"];
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{e}");
    assert_eq!(e["line"], line, "{e}");
}

/// Runs a command that must end on its own; a hang fails the test (the
/// bound detects a hang, it measures nothing).
fn finishes(cmd: &mut Command) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Pipes are drained by wait_with_output on a thread of its own, so a
    // chatty child never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(o) => (o.unwrap(), start.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within 30 s");
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

const NESTING: usize = 5_000;

fn nested_compose(levels: usize) -> String {
    format!(
        "services:\n  web:\n    image: nginx-app:1\n    environment:\n      X: \"{}v{}\"\n",
        "${X:-".repeat(levels),
        "}".repeat(levels)
    )
}

#[test]
fn nested_interpolation_is_refused_with_a_location_and_the_server_lives() {
    let srv = Server::start();
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "deep", "filename": "docker-compose.yml", "content": nested_compose(NESTING)}),
    );
    assert_spec_error(&r, "nested deeper than 32", 5);
    assert_eq!(
        request(srv.port, "GET", "/health", &[BEARER], "").status,
        200
    );

    // The CLI: 10,000 levels (60 KB) end with the same located error.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docker-compose.yml");
    std::fs::write(&f, nested_compose(10_000)).unwrap();
    let (o, _) = finishes(
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .arg("import")
            .arg(&f),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nested deeper than 32") && err.contains("docker-compose.yml:5:"),
        "{err}"
    );
}

#[test]
fn uploads_never_read_the_servers_environment_or_files() {
    let canary = "canary-env-5f1e2d9c";
    let dir = tempfile::tempdir().unwrap();
    let canary_file = dir.path().join("secret.env");
    std::fs::write(&canary_file, "STOLEN=canary-file-8a7b6c5d\n").unwrap();
    let srv = Server::start_with(&[("DM_CANARY", canary)]);
    let compose = |extra: &str| {
        format!(
            "services:\n  web:\n    image: shop/web:1\n    ports: [\"8080:8080\"]\n    environment:\n      GREETING: \"${{DM_CANARY}}\"\n{extra}"
        )
    };
    // Interpolation: the server's variable is unknown to the upload.
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "envread", "filename": "compose.yml", "content": compose("")}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let stored = request(srv.port, "GET", "/api/profiles/envread", &[BEARER], "").body;
    assert!(!stored.contains(canary), "{stored}");
    // Values sent with the upload are used, the .env sent with it too.
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "sent", "filename": "compose.yml",
            "content": compose("    env_file: [app.env]\n"),
            "env": {"DM_CANARY": "from-the-form"},
            "files": {"app.env": "FROM_FILE=sent-file\n"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let stored = request(srv.port, "GET", "/api/profiles/sent", &[BEARER], "").json();
    let env = &stored["app"]["services"]["web"]["env"];
    assert_eq!(env["GREETING"], "from-the-form", "{stored}");
    assert_eq!(env["FROM_FILE"], "sent-file", "{stored}");
    // env_file naming anything that did not come with the upload.
    let canary_path = canary_file.display().to_string();
    for path in [
        "/proc/self/environ",
        "../../../../etc/os-release",
        "/dev/zero",
        canary_path.as_str(),
    ] {
        let r = post_upload(
            &srv,
            &serde_json::json!({"name": "files", "filename": "compose.yml",
                "content": compose(&format!("    env_file: \"{path}\"\n"))}),
        );
        assert_spec_error(&r, "not sent with the upload", 7);
        for leak in [canary, "canary-file-8a7b6c5d", "PRETTY_NAME", "HOME="] {
            assert!(!r.body.contains(leak), "{path}: {}", r.body);
        }
    }
    assert_eq!(
        request(srv.port, "GET", "/api/profiles/files", &[BEARER], "").status,
        404
    );
}

#[test]
fn profile_names_are_checked_however_they_enter() {
    let srv = Server::start();
    let evil = "x</script><script>alert(1)</script>";
    let app = WEB_APP;
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": evil, "filename": "compose.yml", "content": app}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let too_long = "a".repeat(41);
    for bad in ["-starts-with-dash", too_long.as_str(), "a b", "é"] {
        let r = post_upload(
            &srv,
            &serde_json::json!({"name": bad, "filename": "compose.yml", "content": app}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // The CLI refuses the same names, for create and import alike.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let compose = dir.path().join("compose.yml");
    std::fs::write(&compose, app).unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(args)
            .env("DEPLOYMENT_MANAGER_STATE", &state)
            .output()
            .unwrap()
    };
    let c = compose.to_str().unwrap();
    for bad in [evil, too_long.as_str(), "-starts-with-dash"] {
        let o = cli(&["profile", "create", "--", bad, c]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("invalid profile name"));
    }
    assert!(cli(&["profile", "create", "good", c]).status.success());
    let export = dir.path().join("p.json");
    assert!(
        cli(&["profile", "export", "good", "-o", export.to_str().unwrap()])
            .status
            .success()
    );
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    p["name"] = evil.into();
    std::fs::write(&export, p.to_string()).unwrap();
    let o = cli(&["profile", "import", export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid profile name"));
}

/// A name that got in before the rules (an old database) still cannot run
/// script in the dashboard: pages escape it by context and the CSP forbids
/// inline script. Checked in headless Chromium.
#[test]
fn a_hostile_stored_name_runs_no_script_in_the_dashboard() {
    let srv = Server::start();
    create_profile(&srv, "victim");
    let evil = "v</script><script>window.pwned=document.querySelector('meta[name=dm-token]').content</script><img src=x onerror=\"window.pwned2=1\">";
    let db = rusqlite::Connection::open(srv.dir.path().join("state.db")).unwrap();
    db.execute(
        "UPDATE profiles SET name = ?1, snapshot = json_set(snapshot, '$.name', ?1) WHERE name = 'victim'",
        [evil],
    )
    .unwrap();
    drop(db);
    let page = request(
        srv.port,
        "GET",
        &format!("/profiles/{}", urlencode(evil)),
        &[BEARER],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<script>window.pwned"), "{}", page.body);
    let csp = page
        .headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_default()
        .to_string();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap_or("");
    assert_eq!(script_src.trim(), "script-src 'self'", "{csp}");
    for h in [
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(page.headers.to_ascii_lowercase().contains(h), "{h}");
    }

    let base = format!("http://127.0.0.1:{}", srv.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fantoccini::Locator;
        let (_driver, c) = chromium().await;
        c.goto(&format!("{base}/?token={TOKEN}")).await.unwrap();
        // The list shows the name as text.
        let link = c.find(Locator::Css("#profiles td a")).await.unwrap();
        assert_eq!(link.text().await.unwrap(), evil);
        // Its link leads to its page: the name is percent-encoded in it.
        link.click().await.unwrap();
        let h1 = text_of(&c, "h1").await;
        assert!(h1.starts_with(evil), "{h1}");
        // Our own script ran (it fills the releases table from the API)...
        c.wait().for_element(Locator::Css("#status")).await.unwrap();
        // ...and none from the name did.
        let pwned = c
            .execute(
                "return [window.pwned === undefined, window.pwned2 === undefined, typeof api];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(pwned, serde_json::json!([true, true, "function"]));
        c.close().await.unwrap();
    });
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn junk_requests_do_not_grow_the_server() {
    let srv = Server::start();
    let warm = |n: usize, tag: &str| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let port = srv.port;
                let tag = tag.to_string();
                std::thread::spawn(move || {
                    for i in 0..n / 4 {
                        // Unauthenticated, a made-up method each time.
                        request(port, &format!("X{tag}{t}N{i}"), "/health", &[], "");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    warm(2_000, "a");
    let before = rss_kib(srv.child.id());
    warm(20_000, "b");
    let after = rss_kib(srv.child.id());
    let metrics = request(srv.port, "GET", "/metrics", &[BEARER], "").body;
    eprintln!(
        "RSS {before} KiB → {after} KiB after 20,000 junk requests; /metrics {} bytes",
        metrics.len()
    );
    assert!(metrics.len() < 16 * 1024, "{} bytes", metrics.len());
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(after < before + 20 * 1024, "RSS {before} KiB → {after} KiB");
}

#[test]
fn symlink_loops_and_fifos_end_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("manifests");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("web.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: shop/web:1\n          ports: [{containerPort: 8080}]\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(".", m.join("a")).unwrap();
    std::os::unix::fs::symlink(".", m.join("b")).unwrap();
    let (o, took) = finishes(
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(["import", "--json"])
            .arg(&m),
    );
    eprintln!("manifests with two links to `.`: {took:?}");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["app"]["services"].as_object().unwrap().len(), 1, "{v}");

    // An env_file that is a FIFO is refused, not waited on.
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(c.join("app.env"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        c.join("compose.yml"),
        "services:\n  web:\n    image: shop/web:1\n    env_file: app.env\n",
    )
    .unwrap();
    let (o, took) = finishes(
        Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
            .args(["import", "--json"])
            .arg(c.join("compose.yml")),
    );
    eprintln!("env_file FIFO: {took:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("not a regular file"), "{text}");

    // Devices and /proc are no descriptions, catalogs or env files either.
    let fifo = c.join("app.env");
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["import", "/dev/zero"],
        vec!["import", fifo],
        vec!["profile", "import", "/proc/self/environ"],
        vec![
            "plan",
            "examples/picker-wheel/app.yaml",
            "--catalog",
            "/dev/zero",
        ],
        vec!["plan", "examples/picker-wheel/app.yaml", "--rules", fifo],
    ] {
        let (o, _) = finishes(Command::new(env!("CARGO_BIN_EXE_deployment-manager")).args(&args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("not a regular file") || err.contains("refusing to read"),
            "{args:?}: {err}"
        );
    }
}

/// A 2,000-service app: the largest accepted, so the heaviest plan.
fn heavy_compose() -> String {
    let mut s = String::from("name: heavy\nservices:\n");
    for i in 0..1_999 {
        s.push_str(&format!(
            "  s{i}:\n    image: shop/s{i}:1\n    ports: [\"{}:8080\"]\n",
            10_000 + i
        ));
    }
    s
}

#[test]
fn heavy_plans_do_not_stall_other_requests() {
    let srv = Server::start();
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "heavy", "filename": "compose.yml", "content": heavy_compose()}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let port = srv.port;
    let plans: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                request(port, "GET", "/api/profiles/heavy/plan", &[BEARER], "").status
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let mut worst = Duration::ZERO;
    let mut probes = 0;
    while !plans.iter().all(|p| p.is_finished()) {
        let t = Instant::now();
        assert_eq!(request(port, "GET", "/health", &[BEARER], "").status, 200);
        worst = worst.max(t.elapsed());
        probes += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "slowest of {probes} /health requests while four plans of 1,999 services ran ({:?}): {worst:?}",
        started.elapsed()
    );
    // The plans must have been running while /health was asked.
    assert!(probes >= 3, "plans ended too soon to tell: {probes} probes");
    for p in plans {
        assert_eq!(p.join().unwrap(), 200);
    }
    assert!(worst < Duration::from_secs(1), "{worst:?}");

    // More components than the limit: a clear, located refusal.
    let too_many = heavy_compose() + "  extra1:\n    image: a/b:1\n  extra2:\n    image: a/b:1\n";
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "toomany", "filename": "compose.yml", "content": too_many}),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("the limit is 2000"), "{}", r.body);
}

#[test]
fn jobs_are_capped_with_retry_after() {
    let srv = Server::start();
    create_profile(&srv, "jobs");
    // The profile points at an engine that accepts and never answers, so
    // the first job runs for a while; every other one is refused at once.
    let (_silent, engine) = silent_engine();
    let o = srv.dm(&["profile", "set", "jobs", "hosts", &engine]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut statuses = std::collections::BTreeMap::new();
    let mut retry_after = 0;
    for _ in 0..50 {
        let r = request(
            srv.port,
            "POST",
            "/api/profiles/jobs/rollback",
            &[BEARER, JSON],
            "{}",
        );
        *statuses.entry(r.status).or_insert(0) += 1;
        if r.status == 429 && r.headers.to_ascii_lowercase().contains("retry-after: 5") {
            retry_after += 1;
        }
    }
    eprintln!("50 rollback requests: {statuses:?}");
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(retry_after, statuses.get(&429).copied().unwrap_or(0));
    let jobs = request(srv.port, "GET", "/api/jobs", &[BEARER], "").json();
    let running = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["done"].is_null())
        .count();
    assert!(running <= 1, "{jobs}");
}

#[test]
fn small_ones_redirects_csrf_names_and_silent_failures() {
    let srv = Server::start();
    // No open redirect after the token login.
    let r = request(
        srv.port,
        "GET",
        &format!("//evil.example/?token={TOKEN}"),
        &[],
        "",
    );
    assert_eq!(r.status, 303);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("\r\nlocation: /\r\n")
            || r.headers.to_ascii_lowercase().ends_with("\r\nlocation: /"),
        "{}",
        r.headers
    );
    // A cookie plus a junk bearer header is no proof against CSRF.
    let app = WEB_APP;
    let body =
        serde_json::json!({"name": "csrf", "filename": "compose.yml", "content": app}).to_string();
    let cookie = format!("dm_token={TOKEN}");
    let r = request(
        srv.port,
        "POST",
        "/api/profiles",
        &[("cookie", &cookie), ("authorization", "Bearer junk"), JSON],
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Bearer-only clients keep working; an uploaded file without `name:`
    // is named after its profile (Compose's rule, with no folder to use).
    let r = request(srv.port, "POST", "/api/profiles", &[BEARER, JSON], &body);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["app"], "csrf");
    // A NUL in the file name is a bad request, not a crash.
    let r = post_upload(
        &srv,
        &serde_json::json!({"name": "nul", "filename": "a\u{0}.yml", "content": app}),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // `serve` on a busy port says so.
    let o = srv.dm(&["serve", "--addr", &format!("127.0.0.1:{}", srv.port)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot listen"),
        "{o:?}"
    );
    // `status` and `logs` with the engine unreachable say so.
    assert!(
        srv.dm(&["profile", "set", "csrf", "hosts", "tcp://127.0.0.1:9"])
            .status
            .success()
    );
    for cmd in [&["status", "csrf"][..], &["logs", "csrf"]] {
        let o = srv.dm(cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("error:") && err.len() > 20, "{cmd:?}: {err:?}");
    }

    // `report -o` keeps an existing file unless told.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    std::fs::write(&out, "mine").unwrap();
    let o = dm(&[
        "report",
        "examples/picker-wheel/app.yaml",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
    let o = dm(&[
        "report",
        "examples/picker-wheel/app.yaml",
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success());
}

#[test]
fn unreadable_yaml_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "utf8.yml",
            b"services:\n  web:\n    image: \"caf\xe9\"\n".to_vec(),
            ":3:",
            "UTF-8",
        ),
        (
            "nul.yml",
            b"services:\n  web:\n    image: a\x00b\n".to_vec(),
            ":3:",
            "",
        ),
        (
            "deep.yml",
            format!(
                "services:\n  web: {}{}\n",
                "[".repeat(3000),
                "]".repeat(3000)
            )
            .into_bytes(),
            ":2:",
            "nested deeper than 64",
        ),
        (
            "block.yml",
            ("services:\n  web:\n".to_string()
                + &(0..200)
                    .map(|i| format!("{}k{i}:\n", "  ".repeat(i + 2)))
                    .collect::<String>())
                .into_bytes(),
            ":",
            "nested deeper than 64",
        ),
    ];
    for (name, bytes, at, word) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let o = dm(&["import", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("{name}{at}")), "{name}: {err}");
        assert!(err.contains(word), "{name}: {err}");
        assert!(!err.contains("bomb"), "{name}: {err}");
    }
}

/// method, OpenAPI path, request path, headers, body, expected status.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    String,
    u16,
);

/// The statuses the OpenAPI file documents for one operation.
fn documented(method: &str, template: &str) -> Vec<u16> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../schemas/dashboard.openapi.json")).unwrap();
    doc["paths"][template][method.to_ascii_lowercase()]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {template} is not documented"))
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

#[test]
fn every_status_the_server_answers_is_documented() {
    let srv = Server::start();
    let app = WEB_APP;
    let up = |name: &str| {
        serde_json::json!({"name": name, "filename": "compose.yml", "content": app}).to_string()
    };
    assert_eq!(
        request(
            srv.port,
            "POST",
            "/api/profiles",
            &[BEARER, JSON],
            &up("doc")
        )
        .status,
        201
    );
    let (_silent, engine) = silent_engine();
    assert!(
        srv.dm(&["profile", "set", "doc", "hosts", &engine])
            .status
            .success()
    );
    let huge = serde_json::json!({"name": "big", "filename": "compose.yml", "content": "x".repeat(2 << 20)}).to_string();
    let cookie = format!("dm_token={TOKEN}");
    let cases: Vec<Case> = vec![
        ("GET", "/health", "/health", vec![], String::new(), 401),
        (
            "GET",
            "/api/profiles",
            "/api/profiles",
            vec![("authorization", "Bearer wrong")],
            String::new(),
            401,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![("cookie", &cookie), JSON],
            up("x"),
            403,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![BEARER, JSON],
            up("doc"),
            409,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![BEARER, JSON],
            "{".into(),
            400,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![BEARER],
            up("y"),
            415,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![BEARER, JSON],
            "{}".into(),
            422,
        ),
        (
            "POST",
            "/api/profiles",
            "/api/profiles",
            vec![BEARER, JSON],
            huge,
            413,
        ),
        (
            "GET",
            "/api/profiles/{name}",
            "/api/profiles/ghost",
            vec![BEARER],
            String::new(),
            404,
        ),
        (
            "POST",
            "/api/profiles/{name}/app",
            "/api/profiles/ghost/app",
            vec![BEARER, JSON],
            up("ghost"),
            404,
        ),
        (
            "GET",
            "/api/profiles/{name}/files",
            "/api/profiles/doc/files?target=nope",
            vec![BEARER],
            String::new(),
            422,
        ),
        (
            "GET",
            "/api/profiles/{name}/files/{path}",
            "/api/profiles/doc/files/nope?target=compose",
            vec![BEARER],
            String::new(),
            404,
        ),
        (
            "POST",
            "/api/profiles/{name}/deploys",
            "/api/profiles/doc/deploys",
            vec![BEARER, JSON],
            r#"{"strategy":"sideways"}"#.into(),
            400,
        ),
        (
            "POST",
            "/api/profiles/{name}/rollback",
            "/api/profiles/doc/rollback",
            vec![BEARER, JSON],
            "{}".into(),
            202,
        ),
        (
            "POST",
            "/api/profiles/{name}/deploys",
            "/api/profiles/doc/deploys",
            vec![BEARER, JSON],
            "{}".into(),
            429,
        ),
        (
            "GET",
            "/api/profiles/{name}/logs",
            "/api/profiles/doc/logs?tail=x",
            vec![BEARER],
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/jobs/{id}",
            "/api/jobs/abc",
            vec![BEARER],
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/jobs/{id}",
            "/api/jobs/999",
            vec![BEARER],
            String::new(),
            404,
        ),
        (
            "GET",
            "/api/jobs/{id}/events",
            "/api/jobs/999/events",
            vec![BEARER],
            String::new(),
            404,
        ),
    ];
    let check = |method: &str,
                 template: &str,
                 path: &str,
                 headers: &[(&str, &str)],
                 body: &str,
                 want: u16| {
        let r = request(srv.port, method, path, headers, body);
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
        assert!(
            documented(method, template).contains(&r.status),
            "{method} {template} answered {} which the OpenAPI file does not list",
            r.status
        );
    };
    for (method, template, path, headers, body, want) in &cases {
        check(method, template, path, headers, body, *want);
    }
    // An engine that refuses: status and logs answer 502.
    assert!(
        srv.dm(&["profile", "set", "doc", "hosts", "tcp://127.0.0.1:9"])
            .status
            .success()
    );
    check(
        "GET",
        "/api/profiles/{name}/status",
        "/api/profiles/doc/status",
        &[BEARER],
        "",
        502,
    );
    check(
        "GET",
        "/api/profiles/{name}/logs",
        "/api/profiles/doc/logs",
        &[BEARER],
        "",
        502,
    );
}

/// A Docker endpoint that accepts connections and never answers: jobs
/// against it stay running (until the listener is dropped).
fn silent_engine() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    (l, addr)
}

/// schemathesis (an independent OpenAPI fuzzer) against the running server:
/// no 5xx and no status code the OpenAPI file does not list. The profile it
/// reaches runs on the local engine, which has nothing deployed for it;
/// deploys and rollbacks are left out here (they start real jobs, tested
/// above and in tests/dashboard.rs).
#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_status() {
    let bin = common::venv_bin().join("schemathesis");
    assert!(bin.is_file(), "schemathesis missing: run scripts/test.sh");
    let srv = Server::start();
    create_profile(&srv, "stfuzz");
    let config = srv.dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[parameters]\n\"path.name\" = \"stfuzz\"\n\"path.path\" = \"compose.yaml\"\n\"query.target\" = \"compose\"\n",
    )
    .unwrap();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let csrf = format!("X-DM-Token: {TOKEN}");
    let o = Command::new(&bin)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/dashboard.openapi.json"
        ))
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}", srv.port))
        .args(["-H", &bearer, "-H", &csrf])
        .args(["-c", "not_a_server_error,status_code_conformance"])
        .args([
            "-n",
            "25",
            "--seed",
            "20261130",
            "--generation-database",
            "none",
        ])
        .args([
            "--no-color",
            "--request-timeout",
            "60",
            "--exclude-method",
            "DELETE",
        ])
        .args(["--exclude-path-regex", "/(deploys|rollback)$"])
        // Its caches and reports go to the scratch folder, not the clone.
        .current_dir(srv.dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let summary: Vec<&str> = out.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn an_abandoned_log_stream_lets_go_of_the_engine() {
    use std::io::{Read, Write};
    let srv = Server::start();
    create_profile(&srv, "follow");
    let (engine, addr) = silent_engine();
    assert!(
        srv.dm(&["profile", "set", "follow", "hosts", &addr])
            .status
            .success()
    );
    let mut client = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    write!(
        client,
        "GET /api/profiles/follow/logs?follow=true HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 64];
    let n = client.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    // The server has connected to the engine for the stream.
    engine.set_nonblocking(false).unwrap();
    let (mut conn, _) = engine.accept().unwrap();
    let mut buf = [0u8; 4096];
    // While the client listens, the engine connection stays open.
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(2) {
        match conn.read(&mut buf) {
            Ok(0) => panic!("the engine connection closed while the client listened"),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    drop(client);
    let left = Instant::now();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!(
                "the engine connection was still open after {:?}: {e}",
                left.elapsed()
            ),
        }
    }
    eprintln!(
        "engine connection closed {:?} after the client left",
        left.elapsed()
    );
}
