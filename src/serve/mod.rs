//! `serve`: the local web dashboard and its JSON API, a thin front over the
//! same library as the CLI. Bound to loopback by default; every request
//! needs the token printed at start-up; state-changing requests must also
//! carry it in a header (a cross-site form cannot), and a foreign Origin is
//! refused. Secret values never appear: profiles hold secret names only.

mod api;
mod jobs;
mod pages;

use crate::session::Session;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Largest upload accepted (compose files and app.yaml are small).
pub const MAX_UPLOAD: usize = 1 << 20;

pub struct Ctx {
    /// The catalog, rules, state database and runtime the CLI started.
    pub session: Arc<Session>,
    pub token: String,
    pub jobs: jobs::Jobs,
    /// (method, route, status) → count, for /metrics. Every label comes
    /// from a closed set, so junk requests cannot grow it.
    pub requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    pub started: std::time::Instant,
    /// Slots for CPU-heavy work (see [`api::heavy`]).
    pub heavy: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    pub fn new(session: Arc<Session>, token: String) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ctx {
            session,
            token,
            jobs: jobs::Jobs::default(),
            requests: Mutex::new(BTreeMap::new()),
            started: std::time::Instant::now(),
            heavy: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
        }
    }
}

/// Longest a request may take to answer (streams are bounded by their
/// own idle timeout once answered).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The Content-Security-Policy of every answer: script only from this
/// server's own files (no inline script, so injected markup cannot run),
/// nothing framed, nothing sent elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub type Shared = Arc<Ctx>;

pub struct Options {
    pub addr: SocketAddr,
    pub session: Arc<Session>,
    pub token: Option<String>,
    pub insecure: bool,
}

/// A random token from the kernel's generator.
pub fn new_token() -> String {
    let mut bytes = [0u8; 24];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses to listen beyond loopback without TLS unless asked to.
pub fn check_addr(addr: &SocketAddr, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to serve on {addr} without TLS: the token and your app's details would cross the network in clear text. \
         Bind to 127.0.0.1 and reach it through an SSH tunnel or a TLS-terminating proxy, or pass --insecure if the network is trusted"
    ))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "dm_token")
        .map(|(_, v)| v)
}

fn token_ok(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    [bearer, cookie_token(headers)]
        .into_iter()
        .flatten()
        .any(|t| constant_time_eq(t.as_bytes(), ctx.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(State(ctx): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let headers = req.headers().clone();
    let mut resp = if method == Method::GET
        && let Some(t) = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
        && constant_time_eq(t.as_bytes(), ctx.token.as_bytes())
    {
        // `/?token=…` logs a browser in: the token moves into a cookie and
        // the browser comes back to the same path on this server.
        let cookie = format!("dm_token={t}; Path=/; HttpOnly; SameSite=Strict");
        (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, local_path(req.uri().path()).to_string()),
            ],
        )
            .into_response()
    } else if !token_ok(&ctx, &headers) {
        api::error(
            StatusCode::UNAUTHORIZED,
            "a token is required: open the link printed by `deployment-manager serve`, or send `Authorization: Bearer TOKEN`",
        )
        .into_response()
    } else if !matches!(method, Method::GET | Method::HEAD) && !same_site(&ctx, &headers) {
        api::error(
            StatusCode::FORBIDDEN,
            "cross-site request refused: state-changing requests need the X-DM-Token header and a same-origin Origin",
        )
        .into_response()
    } else {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
            Ok(r) => r,
            Err(_) => api::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "no answer within {} s; the server is busy, try again",
                    REQUEST_TIMEOUT.as_secs()
                ),
            )
            .into_response(),
        }
    };
    let h = resp.headers_mut();
    for (k, v) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(k, header::HeaderValue::from_static(v));
    }
    *ctx.requests
        .lock()
        .unwrap()
        .entry((method_label(&method), route, resp.status().as_u16()))
        .or_insert(0) += 1;
    resp
}

/// A path on this server: `//host/…` (or `/\\host`) would send a browser
/// to another site, so anything not plainly local becomes `/`.
fn local_path(path: &str) -> &str {
    if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') {
        path
    } else {
        "/"
    }
}

/// A state-changing request must prove it is not a cross-site one: the
/// token itself in a header (`X-DM-Token` or `Authorization: Bearer`), which
/// a form or another site cannot send; the cookie alone is not proof, and a
/// header that merely looks like one is not either. A browser-named foreign
/// origin is refused whatever the headers.
fn same_site(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let matches =
        |v: Option<&str>| v.is_some_and(|t| constant_time_eq(t.as_bytes(), ctx.token.as_bytes()));
    let header_token = matches(headers.get("x-dm-token").and_then(|v| v.to_str().ok()));
    let bearer = matches(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ")),
    );
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| o == format!("http://{host}") || o == format!("https://{host}"));
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .and_then(|s| s.to_str().ok())
        .is_none_or(|s| s == "same-origin" || s == "none");
    (header_token || bearer) && origin_ok && fetch_site_ok
}

pub fn router(ctx: Shared) -> Router {
    api::routes()
        .merge(pages::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), guard))
        .with_state(ctx)
}

pub async fn run(opts: Options) -> Result<(), String> {
    check_addr(&opts.addr, opts.insecure)?;
    let token = opts.token.unwrap_or_else(new_token);
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ctx = Arc::new(Ctx::new(opts.session, token.clone()));
    // A closed stdout (a supervisor that stopped reading) must not stop us.
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "deployment-manager dashboard: http://{addr}/?token={token}"
    );
    let _ = writeln!(
        out,
        "API: curl -H 'Authorization: Bearer {token}' http://{addr}/api/profiles"
    );
    let _ = out.flush();
    axum::serve(listener, router(ctx))
        .await
        .map_err(|e| e.to_string())
}
