//! The JSON API (documented in `schemas/dashboard.openapi.json`).

use super::Shared;
use super::jobs::JobEvent;
use crate::analyse::fitness::swaps;
use crate::deploy::engines::LogsError;
use crate::deploy::spec::{ReleaseSpec, collect_secrets};
use crate::describe::{self, app::App};
use crate::session::DeployAsk;
use crate::state::settings::Strategy;
use crate::state::{Profile, Store};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;

/// An API failure: a status and a JSON body `{"error": {...}}`, plus any
/// headers the status calls for (`Retry-After`).
pub struct ApiError(
    pub StatusCode,
    pub serde_json::Value,
    pub Vec<(header::HeaderName, String)>,
);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(self.1)).into_response();
        for (k, v) in self.2 {
            if let Ok(v) = header::HeaderValue::from_str(&v) {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}

/// Runs CPU-heavy or blocking work (plans, reports, generated files,
/// parsing uploads) on the blocking pool, a few at a time, so that the
/// async workers keep answering everything else.
pub async fn heavy<T, F>(ctx: &Shared, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Shared) -> T + Send + 'static,
{
    let shared = ctx.clone();
    let permit = ctx
        .heavy
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(shared)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

pub fn error(status: StatusCode, message: &str) -> ApiError {
    ApiError(status, json!({"error": {"message": message}}), Vec::new())
}

type ApiResult = Result<Response, ApiError>;

fn store(ctx: &Shared) -> Result<Store, ApiError> {
    ctx.session
        .store()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

fn profile(ctx: &Shared, name: &str) -> Result<Profile, ApiError> {
    store(ctx)?
        .get(name)
        .map_err(|e| error(StatusCode::NOT_FOUND, &e.to_string()))
}

fn app_of(p: &Profile) -> Result<App, ApiError> {
    swaps::effective(p).map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, &e))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/profiles", get(list_profiles).post(create_profile))
        .route(
            "/api/profiles/{name}",
            get(get_profile).delete(delete_profile),
        )
        .route("/api/profiles/{name}/app", post(replace_app))
        .route("/api/profiles/{name}/plan", get(plan))
        .route("/api/profiles/{name}/report", get(report))
        .route("/api/profiles/{name}/files", get(files))
        .route("/api/profiles/{name}/files/{*path}", get(file))
        .route("/api/profiles/{name}/deploys", post(start_deploy))
        .route("/api/profiles/{name}/rollback", post(start_rollback))
        .route("/api/profiles/{name}/releases", get(releases))
        .route("/api/profiles/{name}/status", get(status_of))
        .route("/api/profiles/{name}/logs", get(logs))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/events", get(job_events))
}

async fn health(State(ctx): State<Shared>) -> Response {
    Json(json!({"status": "ok", "uptime_s": ctx.started.elapsed().as_secs()})).into_response()
}

async fn metrics(State(ctx): State<Shared>) -> Response {
    let mut out = String::from(
        "# HELP dm_http_requests_total Requests served by the dashboard.\n# TYPE dm_http_requests_total counter\n",
    );
    for ((m, route, status), n) in ctx.requests.lock().unwrap().iter() {
        out.push_str(&format!(
            "dm_http_requests_total{{method=\"{m}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    let jobs = ctx.jobs.all();
    out.push_str("# HELP dm_jobs_total Deploys and rollbacks started from the dashboard.\n# TYPE dm_jobs_total counter\n");
    let mut counts = std::collections::BTreeMap::new();
    for j in &jobs {
        let status = j.done().map_or("running".to_string(), |d| d.0);
        *counts.entry((j.kind.clone(), status)).or_insert(0u64) += 1;
    }
    for ((kind, status), n) in counts {
        out.push_str(&format!(
            "dm_jobs_total{{kind=\"{kind}\",status=\"{status}\"}} {n}\n"
        ));
    }
    let profiles = store(&ctx)
        .ok()
        .and_then(|s| s.list().ok())
        .map_or(0, |l| l.len());
    out.push_str(&format!(
        "# HELP dm_profiles Profiles in the state database.\n# TYPE dm_profiles gauge\ndm_profiles {profiles}\n# HELP dm_uptime_seconds Seconds since the dashboard started.\n# TYPE dm_uptime_seconds gauge\ndm_uptime_seconds {}\n",
        ctx.started.elapsed().as_secs()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../schemas/dashboard.openapi.json"),
    )
        .into_response()
}

async fn list_profiles(State(ctx): State<Shared>) -> ApiResult {
    let list = store(&ctx)?
        .list()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    let v: Vec<_> = list
        .iter()
        .map(|p| json!({"name": p.name, "app": p.app.name, "tier": p.tier, "version": p.version, "services": p.app.services.len()}))
        .collect();
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
pub struct Upload {
    pub name: String,
    /// The uploaded file's name; its extension and content decide whether
    /// it is a compose file or an app.yaml.
    pub filename: String,
    pub content: String,
    /// Values for `${VAR}` sent with the upload; the server's own
    /// environment is never used.
    #[serde(default)]
    pub env: std::collections::HashMap<String, String>,
    /// Files sent with the upload, by name (`.env`, files `env_file` names).
    #[serde(default)]
    pub files: std::collections::HashMap<String, String>,
}

/// Parses an upload as sealed: only what was sent with it is read, never
/// the server's environment or files. Nothing is stored on failure.
fn parse_upload(u: &Upload, profile: &str) -> Result<App, ApiError> {
    // Size: the body limit (`serve::MAX_UPLOAD`) already bounds content, env and
    // files together, answering 413 before this runs.
    let base = std::path::Path::new(&u.filename)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.chars().any(char::is_control))
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "upload a .yml or .yaml file (compose file or app.yaml) whose name has no control characters",
            )
        })?;
    let sealed = describe::Sealed {
        env: u.env.clone(),
        files: u.files.clone(),
    };
    describe::load_upload(base, &u.content, &sealed, profile)
        .map(|l| l.app)
        .map_err(|e| {
            let j = serde_json::to_value(e.to_json()).unwrap_or_default();
            ApiError(StatusCode::BAD_REQUEST, json!({"error": j}), Vec::new())
        })
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    crate::state::check_profile_name(name)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))
}

async fn create_profile(
    State(ctx): State<Shared>,
    body: Result<Json<Upload>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(u) = body.map_err(|e| error(e.status(), &e.body_text()))?;
    valid_name(&u.name)?;
    let (app, u) = heavy(&ctx, move |_| parse_upload(&u, &u.name).map(|a| (a, u))).await??;
    let p = store(&ctx)?
        .create(&u.name, 4, &u.filename, app)
        .map_err(|e| error(StatusCode::CONFLICT, &e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": p.name, "version": p.version, "app": p.app.name})),
    )
        .into_response())
}

async fn replace_app(
    State(ctx): State<Shared>,
    Path(name): Path<String>,
    body: Result<Json<Upload>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(u) = body.map_err(|e| error(e.status(), &e.body_text()))?;
    let mut p = profile(&ctx, &name)?;
    let pname = p.name.clone();
    let (app, u) = heavy(&ctx, move |_| parse_upload(&u, &pname).map(|a| (a, u))).await??;
    p.app = app;
    p.app_source = u.filename.clone();
    let p = store(&ctx)?
        .update(p, &format!("upload {}", u.filename))
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(Json(json!({"name": p.name, "version": p.version})).into_response())
}

async fn get_profile(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = profile(&ctx, &name)?;
    Ok(Json(p).into_response())
}

async fn delete_profile(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    store(&ctx)?
        .delete(&name)
        .map_err(|e| error(StatusCode::NOT_FOUND, &e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn build_report(ctx: &Shared, p: &Profile) -> Result<crate::report::Report, ApiError> {
    let app = app_of(p)?;
    let engine = ctx.session.fitness();
    let target = p.settings.target.as_deref();
    Ok(crate::report::build(&engine, &app, target, None))
}

async fn plan(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = profile(&ctx, &name)?;
    heavy(&ctx, move |c| {
        let r = build_report(&c, &p)?;
        let bar = crate::report::charts::cost_by_target(&r.bars, r.users)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
        let line = crate::report::charts::cost_by_users(&r.series, &r.plan.growth_path)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["charts"] = json!({"cost_by_target": bar, "cost_by_users": line});
        Ok(Json(v).into_response())
    })
    .await?
}

async fn report(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = profile(&ctx, &name)?;
    heavy(&ctx, move |c| {
        let r = build_report(&c, &p)?;
        let files = crate::report::files(&r, std::path::Path::new("report.html"))
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
        let html = files.into_iter().next().map(|f| f.1).unwrap_or_default();
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
    })
    .await?
}

#[derive(Deserialize)]
struct TargetQuery {
    target: Option<String>,
}

fn generated(
    ctx: &Shared,
    p: &Profile,
    target: Option<&str>,
) -> Result<(String, Vec<crate::render::GeneratedFile>), ApiError> {
    let app = app_of(p)?;
    let target = match target {
        Some(t) => t.to_string(),
        None => build_report(ctx, p)?
            .chosen
            .ok_or_else(|| error(StatusCode::UNPROCESSABLE_ENTITY, "no target fits this app"))?,
    };
    let options = crate::render::Options {
        users: p.settings.users,
        strategy: p.settings.strategy_or(None),
        ..Default::default()
    };
    let files = crate::render::render_from(&ctx.session.fitness(), &app, &target, &options)
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))?;
    Ok((target, files))
}

async fn files(
    State(ctx): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<TargetQuery>,
) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let (target, files) = heavy(&ctx, move |c| generated(&c, &p, q.target.as_deref())).await??;
    let list: Vec<_> = files
        .iter()
        .map(|f| json!({"path": f.path, "bytes": f.content.len()}))
        .collect();
    Ok(Json(json!({"target": target, "files": list})).into_response())
}

async fn file(
    State(ctx): State<Shared>,
    Path((name, path)): Path<(String, String)>,
    Query(q): Query<TargetQuery>,
) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let (_, files) = heavy(&ctx, move |c| generated(&c, &p, q.target.as_deref())).await??;
    let f = files
        .into_iter()
        .find(|f| f.path == path)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, &format!("no generated file {path}")))?;
    let base: String = path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{base}\""),
            ),
        ],
        f.content,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct DeployRequest {
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    canary_steps: Option<String>,
    #[serde(default)]
    pause: Option<String>,
    #[serde(default)]
    bake: Option<String>,
}

impl DeployRequest {
    fn ask(&self) -> Result<DeployAsk, String> {
        Ok(DeployAsk {
            strategy: self
                .strategy
                .as_deref()
                .map(str::parse::<Strategy>)
                .transpose()?,
            canary_steps: self.canary_steps.clone(),
            pause: self.pause.clone(),
            bake: self.bake.clone(),
        })
    }
}

/// A job refused for capacity: 429, with a hint when to try again.
fn busy(b: super::jobs::Busy) -> ApiError {
    let mut e = error(StatusCode::TOO_MANY_REQUESTS, &b.0);
    e.2.push((header::RETRY_AFTER, "5".to_string()));
    e
}

async fn start_deploy(
    State(ctx): State<Shared>,
    Path(name): Path<String>,
    body: Option<Json<DeployRequest>>,
) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let req = body.map(|b| b.0).unwrap_or_default();
    // The profile's own strategy applies unless the request names one,
    // exactly as on the command line.
    let opts = req
        .ask()
        .and_then(|ask| ctx.session.deploy_options(&p, &ask))
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e))?;
    let spec = ReleaseSpec::from_app(&app_of(&p)?)
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, &e))?;
    // Secret values come from the server's environment, never the browser.
    let secrets = collect_secrets(&spec.secret_names(), None)
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, &e))?;
    let session = ctx.session.clone();
    let profile_name = p.name.clone();
    let id = ctx
        .jobs
        .start("deploy", &profile_name, move |progress| {
            let mut store = session.store().map_err(|e| e.to_string())?;
            let req = crate::deploy::engines::DeployRequest {
                spec,
                options: opts,
                secrets,
                hosts: Vec::new(),
                dry_run: false,
                lock: crate::deploy::release::LockRequest {
                    command: "serve: deploy".into(),
                    ..Default::default()
                },
            };
            session
                .deploy(&p, &mut store, progress, req)
                .map(|r| (r.status.to_string(), r.message))
                .map_err(|f| f.to_string())
        })
        .map_err(busy)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": id}))).into_response())
}

#[derive(Deserialize, Default)]
struct RollbackRequest {
    #[serde(default)]
    to: Option<u32>,
}

async fn start_rollback(
    State(ctx): State<Shared>,
    Path(name): Path<String>,
    body: Option<Json<RollbackRequest>>,
) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let to = body.and_then(|b| b.0.to);
    let session = ctx.session.clone();
    let profile_name = p.name.clone();
    let id = ctx
        .jobs
        .start("rollback", &profile_name, move |progress| {
            let mut store = session.store().map_err(|e| e.to_string())?;
            session
                .rollback(
                    &p,
                    &mut store,
                    progress,
                    crate::deploy::engines::RollbackRequest {
                        to,
                        secrets: Default::default(),
                        hosts: Vec::new(),
                        lock: crate::deploy::release::LockRequest {
                            command: "serve: rollback".into(),
                            ..Default::default()
                        },
                    },
                )
                .map(|r| (r.status.to_string(), r.message))
                .map_err(|f| f.to_string())
        })
        .map_err(busy)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": id}))).into_response())
}

async fn releases(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let list = store(&ctx)?
        .releases(&p.name)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(Json(list).into_response())
}

async fn status_of(State(ctx): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let p = profile(&ctx, &name)?;
    let progress = crate::deploy::events::Progress::quiet();
    let st = crate::deploy::engines::status(ctx.session.engine_of(&p), &p, &progress, &[])
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, &e.to_string()))?;
    Ok(Json(st).into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    service: Option<String>,
    #[serde(default = "tail")]
    tail: usize,
    /// Stream new lines as server-sent events until the client leaves.
    #[serde(default)]
    follow: bool,
}

fn tail() -> usize {
    200
}

/// Most log lines one request may ask for.
const MAX_TAIL: usize = 10_000;
/// A streaming answer ends after this long without an event.
const STREAM_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

async fn logs(
    State(ctx): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult {
    let p = profile(&ctx, &name)?;
    if q.follow {
        // The engine pushes lines into a channel; the client reads them as
        // server-sent events until it leaves (the task ends with the stream).
        let (tx, rx) = tokio::sync::mpsc::channel::<serde_json::Value>(256);
        // The engine connection lives only as long as the client listens:
        // when the stream is dropped, `closed()` ends the task and with it
        // the engine's log stream.
        let kind = ctx.session.engine_of(&p);
        tokio::spawn(async move {
            let progress = crate::deploy::events::Progress::quiet();
            let sender = tx.clone();
            let r = crate::deploy::engines::LogsRequest {
                service: q.service.as_deref(),
                follow: true,
                tail: q.tail.min(MAX_TAIL),
                ..Default::default()
            };
            let follow = crate::deploy::engines::logs(kind, &p, &progress, &r, |source, line| {
                let _ = sender.try_send(json!({"container": source, "line": line}));
            });
            tokio::select! {
                _ = follow => {}
                _ = tx.closed() => {}
            }
        });
        let events = stream::unfold(rx, |mut rx| async move {
            // A stream with nothing to say for this long is ended, so an
            // abandoned tab does not hold an engine connection for ever.
            let v = tokio::time::timeout(STREAM_IDLE, rx.recv()).await.ok()??;
            let ev = SseEvent::default()
                .event("line")
                .json_data(v)
                .unwrap_or_default();
            Some((Ok::<_, Infallible>(ev), rx))
        });
        // Frequent keep-alives: writing is how a client that left is
        // noticed, and that is what releases the engine connection.
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(5)))
            .into_response());
    }
    let progress = crate::deploy::events::Progress::quiet();
    let mut lines = Vec::new();
    let r = crate::deploy::engines::LogsRequest {
        service: q.service.as_deref(),
        tail: q.tail.min(MAX_TAIL),
        ..Default::default()
    };
    crate::deploy::engines::logs(
        ctx.session.engine_of(&p),
        &p,
        &progress,
        &r,
        |source, line| lines.push(json!({"container": source, "line": line})),
    )
    .await
    .map_err(|e| match e {
        LogsError::NothingMatches(m) => error(StatusCode::NOT_FOUND, &m),
        LogsError::Engine(m) => error(StatusCode::BAD_GATEWAY, &m),
    })?;
    Ok(Json(lines).into_response())
}

async fn jobs(State(ctx): State<Shared>) -> ApiResult {
    let v: Vec<_> = ctx
        .jobs
        .all()
        .iter()
        .map(|j| json!({"id": j.id, "kind": j.kind, "profile": j.profile, "done": j.done()}))
        .collect();
    Ok(Json(v).into_response())
}

async fn job(State(ctx): State<Shared>, Path(id): Path<u64>) -> ApiResult {
    let j = ctx
        .jobs
        .get(id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such job"))?;
    let (history, _) = j.watch();
    Ok(
        Json(json!({"id": j.id, "kind": j.kind, "profile": j.profile, "events": history}))
            .into_response(),
    )
}

/// Server-sent events: everything so far, then each new event; ends after
/// the final `done`.
async fn job_events(
    State(ctx): State<Shared>,
    Path(id): Path<u64>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let j = ctx
        .jobs
        .get(id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such job"))?;
    let (history, rx) = j.watch();
    let finished = history.iter().any(|e| matches!(e, JobEvent::Done { .. }));
    let past = stream::iter(history);
    let live = stream::unfold((rx, finished), |(mut rx, finished)| async move {
        if finished {
            return None;
        }
        loop {
            let next = tokio::time::timeout(STREAM_IDLE, rx.recv()).await.ok()?;
            match next {
                Ok(e) => {
                    let done = matches!(e, JobEvent::Done { .. });
                    return Some((e, (rx, done)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    let events = past.chain(live).map(|e| {
        let name = match &e {
            JobEvent::Step(_) => "step",
            JobEvent::Done { .. } => "done",
        };
        Ok(SseEvent::default()
            .event(name)
            .json_data(&e)
            .unwrap_or_default())
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
