//! The dashboard: its API (every endpoint, bad uploads, token, cross-site
//! requests) over plain HTTP, and the page in headless Chromium driven over
//! WebDriver — upload a compose file, see the fitness matrix and charts,
//! deploy on the local Docker engine, watch it finish, roll back.
//! Screenshots land in the build directory (CARGO_TARGET_TMPDIR).

mod common;

use common::server::*;

use std::time::{Duration, Instant};

fn upload(name: &str, filename: &str, content: &str) -> String {
    serde_json::json!({"name": name, "filename": filename, "content": content}).to_string()
}

fn compose(version: &str, port: u16) -> String {
    format!(
        "services:\n  web:\n    image: dm-e2e/server:1\n    environment:\n      VERSION: {version}\n      API_TOKEN: supersecret-value-77\n    ports:\n      - \"{port}:8080\"\n    healthcheck:\n      test: [\"CMD\", \"/server\", \"healthcheck\"]\n      interval: 2s\n"
    )
}

#[test]
fn api_answers_every_endpoint_and_refuses_what_it_should() {
    let srv = Server::start();
    let p = srv.port;
    // No token, wrong token: 401 everywhere.
    for path in ["/", "/health", "/metrics", "/api/profiles", "/openapi.json"] {
        assert_eq!(request(p, "GET", path, &[], "").status, 401, "{path}");
        assert_eq!(
            request(p, "GET", path, &[("authorization", "Bearer wrong")], "").status,
            401,
            "{path}"
        );
    }
    // The link printed at start-up logs a browser in with a cookie.
    let login = request(p, "GET", &format!("/?token={TOKEN}"), &[], "");
    assert_eq!(login.status, 303);
    assert!(
        login.headers.contains(&format!("dm_token={TOKEN}")) && login.headers.contains("HttpOnly")
    );
    assert_eq!(
        request(p, "GET", "/health", &[BEARER], "").json()["status"],
        "ok"
    );

    // Bad uploads: clear 4xx, nothing stored.
    let bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    let huge = "x".repeat(2 << 20);
    let cases: Vec<(String, u16, &str)> = vec![
        (
            upload("bad", "compose.yml", "services: [unclosed\n  web: {"),
            400,
            "compose.yml",
        ),
        (
            upload("bad", "compose.yml", "\u{1}\u{2}\u{3} not yaml at all: : :"),
            400,
            "compose.yml",
        ),
        (upload("bad", "compose.yml", bomb), 400, ""),
        (
            upload("bad", "app.zip", "services: {}"),
            400,
            ".yml or .yaml",
        ),
        (
            upload("bad name!", "compose.yml", &compose("v1", 18339)),
            400,
            "profile names",
        ),
        (upload("bad", "compose.yml", &huge), 413, ""),
        ("{not json".to_string(), 400, ""),
    ];
    for (body, status, says) in &cases {
        let r = request(p, "POST", "/api/profiles", &[BEARER, JSON], body);
        assert_eq!(r.status, *status, "{}", r.body);
        assert!(r.body.contains(says), "{} does not say {says}", r.body);
    }
    let parse_error = request(p, "POST", "/api/profiles", &[BEARER, JSON], &cases[0].0).json();
    assert_eq!(parse_error["error"]["file"], "compose.yml");
    assert!(
        parse_error["error"]["line"].as_u64().unwrap() >= 1,
        "{parse_error}"
    );
    assert_eq!(
        request(p, "GET", "/api/profiles", &[BEARER], "").json(),
        serde_json::json!([])
    );

    // Cross-site requests are refused even with the cookie.
    let cookie = ("cookie", "dm_token=test-token-0123456789abcdef");
    let good = upload("shop", "docker-compose.yml", &compose("v1", 18339));
    for extra in [
        vec![("origin", "http://evil.example"), CSRF],
        vec![],
        vec![("sec-fetch-site", "cross-site"), CSRF],
    ] {
        let mut h = vec![cookie, JSON];
        h.extend(extra);
        assert_eq!(request(p, "POST", "/api/profiles", &h, &good).status, 403);
    }
    assert_eq!(
        request(p, "GET", "/api/profiles", &[BEARER], "").json(),
        serde_json::json!([])
    );

    // A same-origin request from the page works.
    let origin = format!("http://127.0.0.1:{p}");
    let created = request(
        p,
        "POST",
        "/api/profiles",
        &[cookie, JSON, CSRF, ("origin", &origin)],
        &good,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        request(p, "POST", "/api/profiles", &[BEARER, JSON], &good).status,
        409
    );

    let mut seen = Vec::new();
    let mut get = |path: &str| {
        let r = request(p, "GET", path, &[BEARER], "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.contains("supersecret-value-77"),
            "{path} shows a secret's value"
        );
        seen.push(r.body.clone());
        r
    };
    assert_eq!(get("/api/profiles").json()[0]["name"], "shop");
    let profile = get("/api/profiles/shop").json();
    assert!(
        profile["app"]["services"]["web"]["secrets"]
            .to_string()
            .contains("API_TOKEN"),
        "{profile}"
    );
    let plan = get("/api/profiles/shop/plan").json();
    assert!(
        plan["charts"]["cost_by_target"]
            .as_str()
            .unwrap()
            .starts_with("<svg")
    );
    assert!(!plan["bars"].as_array().unwrap().is_empty());
    assert!(
        get("/api/profiles/shop/report")
            .body
            .contains("<figure id=\"cost-by-users\">")
    );
    let files = get("/api/profiles/shop/files?target=compose").json();
    assert_eq!(files["target"], "compose");
    let first = files["files"][0]["path"].as_str().unwrap().to_string();
    let download = get(&format!("/api/profiles/shop/files/{first}?target=compose"));
    assert!(
        download
            .headers
            .to_ascii_lowercase()
            .contains("content-disposition: attachment")
    );
    assert_eq!(
        request(
            p,
            "GET",
            "/api/profiles/shop/files/nope.txt?target=compose",
            &[BEARER],
            ""
        )
        .status,
        404
    );
    assert_eq!(
        request(p, "GET", "/api/profiles/ghost/plan", &[BEARER], "").status,
        404
    );
    assert!(
        get("/api/profiles/shop/releases")
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(get("/api/jobs").json().as_array().unwrap().is_empty());
    assert_eq!(request(p, "GET", "/api/jobs/99", &[BEARER], "").status, 404);
    assert_eq!(
        request(p, "GET", "/api/jobs/99/events", &[BEARER], "").status,
        404
    );
    let v2 = upload("shop", "docker-compose.yml", &compose("v2", 18339));
    assert_eq!(
        request(p, "POST", "/api/profiles/shop/app", &[BEARER, JSON], &v2).json()["version"],
        2
    );
    assert_eq!(
        request(
            p,
            "POST",
            "/api/profiles/shop/deploys",
            &[BEARER, JSON],
            "{\"strategy\": \"sideways\"}"
        )
        .status,
        400
    );
    let openapi = get("/openapi.json").json();
    for route in [
        "/api/profiles",
        "/api/profiles/{name}/plan",
        "/api/profiles/{name}/deploys",
        "/api/jobs/{id}/events",
        "/metrics",
        "/health",
    ] {
        assert!(openapi["paths"][route].is_object(), "OpenAPI lacks {route}");
    }
    let metrics = get("/metrics").body;
    assert!(
        metrics.contains(
            "dm_http_requests_total{method=\"POST\",route=\"/api/profiles\",status=\"403\"} 3"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("dm_profiles 1"));
    assert_eq!(
        request(p, "DELETE", "/api/profiles/shop", &[BEARER], "").status,
        204
    );

    // Beyond loopback without TLS: refused, with the reason.
    let o = srv.dm(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("without TLS"));
}

#[test]
fn dashboard_in_chromium_uploads_deploys_and_rolls_back() {
    common::build_test_image("dm-e2e/server:1");
    let srv = Server::start();
    let app_port = 18331;
    let dir = tempfile::tempdir().unwrap();
    let compose_path = dir.path().join("docker-compose.yml");
    std::fs::write(&compose_path, compose("v1", app_port)).unwrap();
    let _ = srv.dm(&["destroy", "web-shop", "--volumes"]);
    let base = format!("http://127.0.0.1:{}", srv.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fantoccini::Locator;
        let (_driver, c) = chromium().await;
        let shots = shot_dir();
        let shot = |name: &'static str| {
            let c = c.clone();
            let path = shots.join(format!("{name}.png"));
            async move { std::fs::write(path, c.screenshot().await.unwrap()).unwrap() }
        };
        // Without the token the page is refused.
        c.goto(&format!("{base}/")).await.unwrap();
        let refused = text_of(&c, "body").await;
        assert!(refused.contains("token is required"), "{refused}");
        c.goto(&format!("{base}/?token={TOKEN}")).await.unwrap();
        shot("1-profiles").await;
        c.find(Locator::Css("#name"))
            .await
            .unwrap()
            .send_keys("web-shop")
            .await
            .unwrap();
        c.find(Locator::Css("#file"))
            .await
            .unwrap()
            .send_keys(compose_path.to_str().unwrap())
            .await
            .unwrap();
        click(&c, "#upload button").await;
        c.wait()
            .for_url(&url::Url::parse(&format!("{base}/profiles/web-shop")).unwrap())
            .await
            .unwrap();
        shot("2-profile").await;

        // The matrix and charts carry what the API says.
        let plan = request(
            srv.port,
            "GET",
            "/api/profiles/web-shop/plan",
            &[BEARER],
            "",
        )
        .json();
        let rows = c
            .find_all(Locator::Css("table.matrix tr[data-id]"))
            .await
            .unwrap()
            .len();
        assert_eq!(
            rows,
            plan["fitness"]["tiers"].as_array().unwrap().len()
                + plan["fitness"]["targets"].as_array().unwrap().len()
        );
        let texts: Vec<String> = {
            let mut v = Vec::new();
            for t in c
                .find_all(Locator::Css("#cost-by-target svg text"))
                .await
                .unwrap()
            {
                v.push(t.text().await.unwrap().trim().to_string());
            }
            v
        };
        for b in plan["bars"].as_array().unwrap() {
            let bound = if b["complete"] == true { "" } else { "≥ " };
            let label = format!("{bound}${:.2}", b["total"].as_f64().unwrap());
            assert!(texts.contains(&label), "bar {label} not drawn: {texts:?}");
        }
        let marks = c
            .find_all(Locator::Css("#cost-by-users svg circle"))
            .await
            .unwrap()
            .len();
        assert!(marks >= plan["plan"]["growth_path"].as_array().unwrap().len());

        async fn deploy_and_wait(c: &fantoccini::Client) -> String {
            click(c, "#deploy-button").await;
            let start = Instant::now();
            loop {
                let s = text_of(c, "#job-status").await;
                if s != "running" && s != "idle" {
                    return s;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(180),
                    "the deploy did not finish"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let status = deploy_and_wait(&c).await;
        let progress = text_of(&c, "#progress").await;
        assert_eq!(status, "succeeded", "{progress}");
        assert!(progress.contains("release 1 is live"), "{progress}");
        shot("3-deployed").await;
        // Status and live logs of the running service.
        let st = request(
            srv.port,
            "GET",
            "/api/profiles/web-shop/status",
            &[BEARER],
            "",
        )
        .json();
        assert!(
            st["containers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["role"] == "app" && c["state"] == "running"),
            "{st}"
        );
        assert_eq!(st["proxies"][0]["routes"]["1"], 100, "{st}");
        let logs = request(
            srv.port,
            "GET",
            "/api/profiles/web-shop/logs?service=web&tail=20",
            &[BEARER],
            "",
        )
        .json();
        assert!(
            logs.to_string().contains("listening on 8080 as v1"),
            "{logs}"
        );
        click(&c, "#logs-button").await;
        let start = Instant::now();
        while !text_of(&c, "#logs").await.contains("listening on 8080") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "live logs did not arrive"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(request(app_port, "GET", "/", &[], "").body.contains("v1"));

        // A new version, deployed from the page, then rolled back with one click.
        let v2 = upload("web-shop", "docker-compose.yml", &compose("v2", app_port));
        assert_eq!(
            request(
                srv.port,
                "POST",
                "/api/profiles/web-shop/app",
                &[BEARER, JSON],
                &v2
            )
            .status,
            200
        );
        assert_eq!(deploy_and_wait(&c).await, "succeeded");
        assert!(request(app_port, "GET", "/", &[], "").body.contains("v2"));
        c.wait()
            .for_element(Locator::Css("tr[data-release='1'] button.rollback"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let s = text_of(&c, "#job-status").await;
            let done = text_of(&c, "#progress").await;
            if s == "succeeded" && done.contains("serves again") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "rollback did not finish: {s} {done}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        shot("4-rolled-back").await;
        assert!(request(app_port, "GET", "/", &[], "").body.contains("v1"));
        let page = c.source().await.unwrap();
        assert!(
            !page.contains("supersecret-value-77"),
            "the page shows a secret's value"
        );
        c.close().await.unwrap();
    });
    let _ = srv.dm(&["destroy", "web-shop", "--volumes"]);
}

/// The CLI and the dashboard go through one application layer: a name the
/// CLI refuses is refused by the API with the same words, and a deploy
/// started from the dashboard uses the profile's `strategy` setting (set
/// with the CLI) unless the request names one, as `deploy` does.
#[test]
fn cli_and_dashboard_apply_the_same_profile_rules() {
    common::build_test_image("dm-e2e/server:1");
    let srv = Server::start();
    let p = srv.port;
    let dir = tempfile::tempdir().unwrap();
    let compose_path = dir.path().join("docker-compose.yml");
    std::fs::write(&compose_path, compose("v1", 18336)).unwrap();

    let bad = "a-name-that-is-much-too-long-for-container-names-x";
    let cli = srv.dm(&["profile", "create", bad, compose_path.to_str().unwrap()]);
    assert_eq!(cli.status.code(), Some(2));
    let cli_says = String::from_utf8_lossy(&cli.stderr).to_string();
    let api = request(
        p,
        "POST",
        "/api/profiles",
        &[BEARER, JSON],
        &upload(bad, "compose.yml", &compose("v1", 18336)),
    );
    assert_eq!(api.status, 400);
    let rule = "profile names use letters, digits, `-` and `_`, starting with a letter or digit, at most 40 characters";
    assert!(cli_says.contains(rule), "{cli_says}");
    assert!(api.body.contains(rule), "{}", api.body);

    let name = "rules-shop";
    let _ = srv.dm(&["destroy", name, "--volumes"]);
    let created = srv.dm(&["profile", "create", name, compose_path.to_str().unwrap()]);
    assert!(created.status.success(), "{created:?}");
    let set = srv.dm(&["profile", "set", name, "strategy", "blue-green"]);
    assert!(set.status.success(), "{set:?}");
    let deploy = |body: &str| {
        let job = request(
            p,
            "POST",
            &format!("/api/profiles/{name}/deploys"),
            &[BEARER, JSON],
            body,
        );
        assert_eq!(job.status, 202, "{}", job.body);
        let id = job.json()["job"].as_u64().unwrap();
        let start = Instant::now();
        loop {
            let j = request(p, "GET", &format!("/api/jobs/{id}"), &[BEARER], "").json();
            let done = j["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == "done")
                .cloned();
            if let Some(d) = done {
                return d;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "{j}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let releases = || {
        request(
            p,
            "GET",
            &format!("/api/profiles/{name}/releases"),
            &[BEARER],
            "",
        )
        .json()
    };
    let first = deploy("{\"bake\": \"0s\"}");
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(releases()[0]["strategy"], "blue-green");
    // A strategy in the request wins, on the page as on the command line.
    let replaced = request(
        p,
        "POST",
        &format!("/api/profiles/{name}/app"),
        &[BEARER, JSON],
        &upload(name, "compose.yml", &compose("v2", 18336)),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let second = deploy("{\"strategy\": \"rolling\", \"bake\": \"0s\"}");
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(releases()[0]["strategy"], "rolling");
    let _ = srv.dm(&["destroy", name, "--volumes"]);
}
