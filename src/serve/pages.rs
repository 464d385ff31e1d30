//! Server-rendered pages with a little JavaScript for uploads, deploys
//! (progress over server-sent events) and rollbacks. Everything the page
//! shows comes from the same API a script would call.

use super::Shared;
use crate::analyse::fitness::{Engine, swaps};
use crate::report::html::{STYLE, esc, matrix};
use crate::state::Store;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(index))
        .route("/profiles/{name}", get(profile_page))
}

const SCRIPT: &str = r#"
const token = document.querySelector('meta[name=dm-token]').content;
async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {'content-type': 'application/json', 'x-dm-token': token},
                               body: body === undefined ? undefined : JSON.stringify(body)});
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((j.error && (j.error.message || JSON.stringify(j.error))) || r.statusText);
  return j;
}
function watch(job, done) {
  const out = document.getElementById('progress');
  const status = document.getElementById('job-status');
  status.textContent = 'running';
  const es = new EventSource('/api/jobs/' + job + '/events');
  es.addEventListener('step', e => { const d = JSON.parse(e.data); out.textContent += `${(d.elapsed_ms/1000).toFixed(1)}s ${d.phase} ${d.message}\n`; });
  es.addEventListener('done', e => { const d = JSON.parse(e.data); status.textContent = d.status; out.textContent += d.message + '\n'; es.close(); if (done) done(d); });
}
"#;

fn page(title: &str, token: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"dm-token\" content=\"{token}\"><title>{t} · deployment-manager</title><style>{STYLE} button, select, input {{ font: inherit; }}</style></head><body><p><a href=\"/\">deployment-manager</a></p>{body}<script>{SCRIPT}</script></body></html>",
        t = esc(title)
    ))
    .into_response()
}

async fn index(State(ctx): State<Shared>) -> Response {
    let list = Store::open(&ctx.state)
        .and_then(|s| s.list())
        .unwrap_or_default();
    let mut b = String::from(
        "<h1>Profiles</h1><table id=\"profiles\"><thead><tr><th>profile</th><th>app</th><th>services</th><th>version</th></tr></thead><tbody>",
    );
    for p in &list {
        let _ = write!(
            b,
            "<tr><td><a href=\"/profiles/{n}\">{n}</a></td><td>{a}</td><td>{s}</td><td>{v}</td></tr>",
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
<button type="submit">Create</button></form><p id="upload-error" role="alert"></p>
<script>
document.getElementById('upload').addEventListener('submit', async ev => {
  ev.preventDefault();
  const f = document.getElementById('file').files[0];
  const name = document.getElementById('name').value;
  try {
    await api('POST', '/api/profiles', {name, filename: f.name, content: await f.text()});
    location.href = '/profiles/' + encodeURIComponent(name);
  } catch (e) { document.getElementById('upload-error').textContent = e.message; }
});
</script>"#);
    page("Profiles", &ctx.token, &b)
}

async fn profile_page(State(ctx): State<Shared>, Path(name): Path<String>) -> Response {
    let p = match Store::open(&ctx.state).and_then(|s| s.get(&name)) {
        Ok(p) => p,
        Err(e) => return (StatusCode::NOT_FOUND, Html(esc(&e.to_string()))).into_response(),
    };
    let app = match swaps::apply(&p.app, &p.swaps) {
        Ok(a) => a,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, Html(esc(&e))).into_response(),
    };
    let engine = Engine::new(&ctx.catalog, Vec::new());
    let target = p.settings.get("target").and_then(|t| t.as_str());
    let r = crate::report::build(&ctx.catalog, &engine, &app, target, None);
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
            "<li><a download href=\"/api/profiles/{n}/files/{p}?target={t}\">{p}</a></li>",
            p = esc(f),
            t = esc(r.chosen.as_deref().unwrap_or(""))
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
<script>
const profile = {name:?};
async function refresh() {{
  const rel = await api('GET', `/api/profiles/${{profile}}/releases`);
  const body = document.querySelector('#releases tbody');
  body.innerHTML = '';
  for (const r of rel) {{
    const tr = document.createElement('tr');
    tr.dataset.release = r.number;
    for (const v of [r.number, r.status, r.strategy, r.runs, r.started_at.slice(0, 19)]) {{ const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); }}
    const td = document.createElement('td');
    if (r.status === 'succeeded' || r.status === 'rolled_back') {{
      const b = document.createElement('button'); b.textContent = 'Roll back to ' + r.runs; b.className = 'rollback';
      b.onclick = async () => watch((await api('POST', `/api/profiles/${{profile}}/rollback`, {{to: r.number}})).job, refresh);
      td.appendChild(b);
    }}
    tr.appendChild(td); body.appendChild(tr);
  }}
  try {{
    const st = await api('GET', `/api/profiles/${{profile}}/status`);
    const lines = st.platform === 'swarm'
      ? st.tasks.filter(t => t.desired === 'running').map(t => `${{t.swarm_service}}.${{t.slot}} on ${{t.node}} release ${{t.release}} ${{t.state}} ${{t.error}}`)
      : st.platform === 'kubernetes'
      ? st.pods.map(p => `${{p.name}} release ${{p.release}} ${{p.phase}} ready=${{p.ready}} restarts=${{p.restarts}} ${{p.events.join('; ')}}`)
      : st.containers.map(c => `${{c.name}} ${{c.state}} ${{c.health}} restarts=${{c.restarts}}`);
    document.getElementById('status').textContent = lines.join('\n');
  }} catch (e) {{ document.getElementById('status').textContent = e.message; }}
}}
document.getElementById('deploy').addEventListener('submit', async ev => {{
  ev.preventDefault();
  document.getElementById('progress').textContent = '';
  try {{ watch((await api('POST', `/api/profiles/${{profile}}/deploys`, {{strategy: document.getElementById('strategy').value}})).job, refresh); }}
  catch (e) {{ document.getElementById('job-status').textContent = 'refused: ' + e.message; }}
}});
let logStream;
document.getElementById('logs-button').addEventListener('click', () => {{
  if (logStream) logStream.close();
  const out = document.getElementById('logs');
  out.textContent = '';
  const svc = encodeURIComponent(document.getElementById('log-service').value);
  logStream = new EventSource(`/api/profiles/${{profile}}/logs?follow=true&tail=50&service=${{svc}}`);
  logStream.addEventListener('line', e => {{
    const d = JSON.parse(e.data);
    out.textContent = (out.textContent + `${{d.container}} | ${{d.line}}\n`).split('\n').slice(-500).join('\n');
  }});
}});
refresh();
</script>"#,
        name = p.name,
        services = app
            .services
            .keys()
            .map(|k| format!("<option>{}</option>", esc(k)))
            .collect::<String>()
    );
    page(&p.name, &ctx.token, &b)
}
