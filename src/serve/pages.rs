//! Server-rendered pages with a little JavaScript for uploads, deploys
//! (progress over server-sent events) and rollbacks. Everything the page
//! shows comes from the same API a script would call.

use super::Shared;
use crate::analyse::fitness::swaps;
use crate::report::html::{STYLE, esc, matrix};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(index))
        .route("/profiles/{name}", get(profile_page))
        .route("/static/dashboard.js", get(script))
        .route("/static/dashboard.css", get(style))
}

/// The pages' script and its data element: no page carries inline script,
/// so the Content-Security-Policy can forbid it.
const SCRIPT: &str = include_str!("static/dashboard.js");

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        format!("{STYLE} button, select, input {{ font: inherit; }}"),
    )
        .into_response()
}

/// Percent-encodes text for a URL path segment or query value (keeping
/// `/` when asked, for file paths), so a name cannot change the link's
/// shape; the result is also safe inside a quoted HTML attribute.
fn url_part(text: &str, keep_slash: bool) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const PART: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    const PATH: &percent_encoding::AsciiSet = &PART.remove(b'/');
    utf8_percent_encode(text, if keep_slash { PATH } else { PART }).to_string()
}

/// Data for the script as JSON in a non-executable element. `<`, `>` and
/// `&` are written as escapes so no value can close the element.
fn data_element(v: &serde_json::Value) -> String {
    let json = v
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("<script type=\"application/json\" id=\"dm-data\">{json}</script>")
}

fn page(title: &str, token: &str, body: &str, data: &serde_json::Value) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"dm-token\" content=\"{token}\"><title>{t} · deployment-manager</title><link rel=\"stylesheet\" href=\"/static/dashboard.css\"></head><body><p><a href=\"/\">deployment-manager</a></p>{body}{d}<script src=\"/static/dashboard.js\"></script></body></html>",
        t = esc(title),
        token = esc(token),
        d = data_element(data),
    ))
    .into_response()
}

async fn index(State(ctx): State<Shared>) -> Response {
    let list = ctx
        .session
        .store()
        .and_then(|s| s.list())
        .unwrap_or_default();
    let mut b = String::from(
        "<h1>Profiles</h1><table id=\"profiles\"><thead><tr><th>profile</th><th>app</th><th>services</th><th>version</th></tr></thead><tbody>",
    );
    for p in &list {
        let _ = write!(
            b,
            "<tr><td><a href=\"/profiles/{u}\">{n}</a></td><td>{a}</td><td>{s}</td><td>{v}</td></tr>",
            u = url_part(&p.name, false),
            n = esc(&p.name),
            a = esc(&p.app.name),
            s = p.app.services.len(),
            v = p.version
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(r#"<h2>New profile</h2>
<form id="upload"><label>Name <input id="name" required pattern="[A-Za-z0-9_-]+"></label>
<label>docker-compose.yml or app.yaml <input id="file" type="file" accept=".yml,.yaml" required></label>
<label>.env for its variables (optional) <input id="envfile" type="file"></label>
<button type="submit">Create</button></form><p id="upload-error" role="alert"></p>
<p class="muted">A compose file's <code>${VAR}</code> values come only from the .env sent with it; the server's own environment and files are never read.</p>"#);
    page("Profiles", &ctx.token, &b, &serde_json::json!({}))
}

async fn profile_page(State(ctx): State<Shared>, Path(name): Path<String>) -> Response {
    super::api::heavy(&ctx, move |c| render_profile(&c, &name))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn render_profile(ctx: &Shared, name: &str) -> Response {
    let p = match ctx.session.store().and_then(|s| s.get(name)) {
        Ok(p) => p,
        Err(e) => return (StatusCode::NOT_FOUND, Html(esc(&e.to_string()))).into_response(),
    };
    let app = match swaps::effective(&p) {
        Ok(a) => a,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, Html(esc(&e))).into_response(),
    };
    let engine = ctx.session.fitness();
    let target = p.settings.target.as_deref();
    let r = crate::report::build(&engine, &app, target, None);
    let bar = crate::report::charts::cost_by_target(&r.bars, r.users).unwrap_or_default();
    let line =
        crate::report::charts::cost_by_users(&r.series, &r.plan.growth_path).unwrap_or_default();
    let n = esc(&p.name);
    let mut b = format!(
        "<h1>{n} <span class=\"muted\">({} v{})</span></h1>",
        esc(&app.name),
        p.version
    );
    b.push_str("<h2>Fitness</h2>");
    matrix(&mut b, "Tiers", &r.fitness.tiers);
    matrix(&mut b, "Targets", &r.fitness.targets);
    let _ = write!(
        b,
        "<h2>Cost</h2><figure id=\"cost-by-target\" data-users=\"{}\">{bar}</figure><figure id=\"cost-by-users\">{line}</figure><h3>Growth path</h3><ol id=\"growth\">",
        r.users
    );
    for s in &r.plan.growth_path {
        let _ = write!(
            b,
            "<li>{} users: <strong>{}</strong> {}</li>",
            s.users,
            esc(s.target.as_deref().unwrap_or("none fits")),
            s.monthly
                .map_or(String::new(), |m| format!("${m:.2}/month"))
        );
    }
    b.push_str("</ol>");
    let _ = write!(
        b,
        "<h2>Files for {}</h2><ul id=\"files\">",
        esc(r.chosen.as_deref().unwrap_or("no target"))
    );
    for f in &r.files {
        let _ = write!(
            b,
            "<li><a download href=\"/api/profiles/{u}/files/{fu}?target={t}\">{p}</a></li>",
            u = url_part(&p.name, false),
            fu = url_part(f, true),
            p = esc(f),
            t = url_part(r.chosen.as_deref().unwrap_or(""), false)
        );
    }
    b.push_str("</ul>");
    let _ = write!(
        b,
        r#"<h2>Deploy</h2>
<form id="deploy"><label>Strategy <select id="strategy"><option>rolling</option><option>blue-green</option><option>canary</option><option>recreate</option></select></label>
<button type="submit" id="deploy-button">Deploy</button></form>
<p>Job: <strong id="job-status">idle</strong></p><pre id="progress"></pre>
<h3>Releases</h3><table id="releases"><thead><tr><th>release</th><th>status</th><th>strategy</th><th>runs</th><th>started</th><th></th></tr></thead><tbody></tbody></table>
<h3>Status</h3><pre id="status"></pre>
<h3>Logs</h3><label>Service <select id="log-service">{services}</select></label> <button id="logs-button">Follow logs</button><pre id="logs"></pre>
"#,
        services = app
            .services
            .keys()
            .map(|k| format!("<option>{}</option>", esc(k)))
            .collect::<String>()
    );
    page(
        &p.name,
        &ctx.token,
        &b,
        &serde_json::json!({"profile": p.name}),
    )
}
