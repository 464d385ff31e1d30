//! The reverse proxy that sits in front of each public service: weighted
//! routing between releases, health checks, draining, request holding
//! during switches and pauses, WebSocket pass-through, per-release metrics.
//! Connections are served by `front.rs` (HTTP/1.1 its own, HTTP/2 by
//! hyper); this file only decides where requests go.

use super::grpc_health;
use super::metrics::{MetricsSnapshot, ReleaseMetrics};
use super::per_thread;
use super::table::{
    AFFINITY_COOKIE, COHORT_COOKIE, Check, RouteTable, UpstreamProtocol, bucket_of,
};
use super::target::{InFlight, Target, change, is_name};
use super::upstream::{self, BoxError, Outgoing, SendError, UpBody};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub type Body = BoxBody<Bytes, BoxError>;

/// A request's body as the serving side hands it over.
pub enum ClientBody {
    /// Read whole (empty, or small enough to send again).
    Whole(Bytes),
    /// Passed on as the client sends it, with its length when known.
    Streaming(Body, Option<u64>),
}

/// The answer to a request, and after a 101 the target's side of the
/// upgraded connection with the count that keeps its drain waiting.
pub struct Reply {
    pub response: Response<Body>,
    pub tunnel: Option<(hyper::upgrade::OnUpgrade, InFlight)>,
}

impl From<Response<Body>> for Reply {
    fn from(response: Response<Body>) -> Reply {
        Reply {
            response,
            tunnel: None,
        }
    }
}

/// Bodies up to this size are read before forwarding so that a request
/// whose target refused the connection can be retried on another one.
pub const RETRY_BUFFER: u64 = 1 << 20;
/// Consecutive failed checks before a target leaves the pool.
const UNHEALTHY_AFTER: u32 = 2;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TargetView {
    pub addr: String,
    /// The route table's address `addr` was resolved from.
    #[serde(default)]
    pub name: String,
    pub release: String,
    pub healthy: bool,
    pub draining: bool,
    pub inflight: usize,
}

impl TargetView {
    /// `tasks.web:8080 (10.0.1.7:8080)` for a resolved name, else the address.
    pub fn label(&self) -> String {
        if self.name.is_empty() || self.name == self.addr {
            self.addr.clone()
        } else {
            format!("{} ({})", self.name, self.addr)
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StateView {
    pub table: RouteTable,
    pub targets: Vec<TargetView>,
    pub metrics: BTreeMap<String, MetricsSnapshot>,
    /// How long the last pause held requests, once it has ended.
    #[serde(default)]
    pub last_pause_ms: Option<u64>,
}

#[derive(Serialize, Default)]
pub struct ApplyOutcome {
    pub drained: usize,
    /// Requests or WebSockets still open at the drain deadline, cut off.
    pub cancelled: usize,
    pub drain_ms: u64,
}

/// What a request reads to choose its target. Replaced whole on every
/// change and read without a lock (`arc-swap`): a lock's reader count,
/// written by every request from every serving thread, moved its cache
/// line between cores on each request.
struct Routes {
    table: RouteTable,
    /// Each table address with the addresses it resolved to (never empty).
    targets: HashMap<String, Vec<Arc<Target>>>,
    /// Every target of each of the table's releases, in the table's order:
    /// a request picks from these without looking names up.
    by_release: Vec<Vec<Arc<Target>>>,
}

impl Routes {
    fn new(table: RouteTable, targets: HashMap<String, Vec<Arc<Target>>>) -> Arc<Routes> {
        let by_release = table
            .releases
            .iter()
            .map(|r| {
                r.targets
                    .iter()
                    .filter_map(|name| targets.get(name))
                    .flatten()
                    .cloned()
                    .collect()
            })
            .collect();
        Arc::new(Routes {
            table,
            targets,
            by_release,
        })
    }
}

pub struct Proxy {
    routes: ArcSwap<Routes>,
    /// Held while `routes` is replaced, so that no change is lost.
    writer: Mutex<()>,
    metrics: RwLock<HashMap<String, Arc<ReleaseMetrics>>>,
    changed: Notify,
    state_path: Option<PathBuf>,
    apply_lock: tokio::sync::Mutex<()>,
    /// Since when requests are held, and how long the last pause lasted.
    pause: std::sync::Mutex<(Option<Instant>, Option<u64>)>,
}

enum Pick {
    Go(InFlight, bool),
    Wait(Duration, StatusCode),
    /// The pool changed under the pick (a target marked draining or
    /// taken out meanwhile): pick again from the current routes.
    Again,
}

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(super) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{text}\n")));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// The canary cohort and affinity cookies, found in one pass.
fn routing_cookies(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let (mut cohort, mut affinity) = (None, None);
    let pairs = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='));
    for (k, v) in pairs {
        if k == COHORT_COOKIE && cohort.is_none() {
            cohort = Some(v);
        } else if k == AFFINITY_COOKIE && affinity.is_none() {
            affinity = Some(v);
        }
    }
    (cohort, affinity)
}

/// The client's address as `x-forwarded-for` names it, made once per
/// connection rather than formatted per request.
#[derive(Clone)]
pub struct Peer(HeaderValue);

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        Peer(
            HeaderValue::from_str(&addr.ip().to_string()).expect("an IP address is a header value"),
        )
    }
}

/// A cohort for a new client: xorshift64* per thread, seeded from the
/// standard library's random keys (no counter shared between threads,
/// no hashing per request).
fn random_u32() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::hash::RandomState::new().hash_one(per_thread::slot()) | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    })
}

impl Proxy {
    pub fn new(table: RouteTable, state_path: Option<PathBuf>) -> Arc<Proxy> {
        let proxy = Arc::new(Proxy {
            routes: ArcSwap::new(Routes::new(RouteTable::new(&table.service), HashMap::new())),
            writer: Mutex::new(()),
            metrics: RwLock::new(HashMap::new()),
            changed: Notify::new(),
            state_path,
            apply_lock: tokio::sync::Mutex::new(()),
            pause: std::sync::Mutex::new((None, None)),
        });
        proxy.install(table);
        proxy
    }

    /// Restores the saved table, or starts empty for `service`.
    pub fn restore(service: &str, state_path: Option<PathBuf>) -> Arc<Proxy> {
        let table = state_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<RouteTable>(&t).ok())
            .unwrap_or_else(|| RouteTable::new(service));
        Proxy::new(table, state_path)
    }

    /// Puts a table in place; returns targets that left it (now draining).
    fn install(&self, table: RouteTable) -> Vec<Arc<Target>> {
        let writing = self.writer.lock().unwrap();
        let current = self.routes.load_full();
        let wanted: HashSet<(String, String)> = table
            .targets()
            .map(|(r, a)| (r.to_string(), a.to_string()))
            .collect();
        let mut removed = Vec::new();
        let mut targets = current.targets.clone();
        targets.retain(|name, members| {
            let keep = wanted.contains(&(members[0].release.clone(), name.clone()));
            if !keep {
                removed.extend(members.iter().cloned());
            }
            keep
        });
        for r in &table.releases {
            self.metrics_for(&r.release);
        }
        for (release, name) in &wanted {
            // Targets are checked before they are routed (and were healthy
            // when saved); the checker corrects this quickly. A name is
            // used as it is until the checker resolves it.
            targets.entry(name.clone()).or_insert_with(|| {
                let metrics = self.metrics_for(release);
                vec![Target::new(name, name, (release, metrics), true)]
            });
        }
        self.note_pause(current.table.paused, table.paused);
        self.routes.store(Routes::new(table, targets));
        mark_draining(&removed);
        drop(writing);
        self.changed.notify_waiters();
        removed
    }

    /// Replaces the routes with `change` applied to a copy of them.
    fn change_routes(&self, change: impl FnOnce(&mut RouteTable)) {
        let _writing = self.writer.lock().unwrap();
        let current = self.routes.load_full();
        let mut table = current.table.clone();
        change(&mut table);
        self.routes
            .store(Routes::new(table, current.targets.clone()));
    }

    /// Requests and tunnels open now, over every target.
    pub fn inflight(&self) -> usize {
        self.routes
            .load()
            .targets
            .values()
            .flatten()
            .map(|t| t.inflight())
            .sum()
    }

    fn persist(&self) -> std::io::Result<()> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&self.routes.load().table)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    /// Replaces the table, then drains the targets that left it: in-flight
    /// requests finish, WebSockets stay open until they close or the drain
    /// timeout, after which they are cut.
    pub async fn apply(&self, table: RouteTable) -> std::io::Result<ApplyOutcome> {
        let _one_at_a_time = self.apply_lock.lock().await;
        let drain = Duration::from_millis(table.drain_timeout_ms);
        let removed = self.install(table);
        self.persist()?;
        let start = Instant::now();
        let mut out = ApplyOutcome {
            drained: removed.len(),
            ..Default::default()
        };
        while start.elapsed() < drain && removed.iter().any(|t| t.inflight() > 0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in &removed {
            let open = t.inflight();
            if open > 0 {
                out.cancelled += open;
                t.cancel.notify_waiters();
            }
        }
        out.drain_ms = start.elapsed().as_millis() as u64;
        Ok(out)
    }

    pub fn set_paused(&self, paused: bool, max_pause_ms: Option<u64>) -> std::io::Result<()> {
        self.change_routes(|t| {
            self.note_pause(t.paused, paused);
            t.paused = paused;
            if let Some(ms) = max_pause_ms {
                t.max_pause_ms = ms;
            }
        });
        self.changed.notify_waiters();
        self.persist()
    }

    /// Times a pause from the table that starts it to the one that ends it.
    fn note_pause(&self, was: bool, now: bool) {
        let mut p = self.pause.lock().unwrap();
        match (was, now) {
            (false, true) => p.0 = Some(Instant::now()),
            (true, false) => {
                p.1 = p.0.take().map(|since| since.elapsed().as_millis() as u64);
            }
            _ => {}
        }
    }

    pub fn view(&self) -> StateView {
        let routes = self.routes.load();
        let table = routes.table.clone();
        let mut targets: Vec<TargetView> = routes
            .targets
            .values()
            .flatten()
            .map(|t| TargetView {
                addr: t.addr.clone(),
                name: t.name.clone(),
                release: t.release.clone(),
                healthy: t.is_healthy(),
                draining: t.is_draining(),
                inflight: t.inflight(),
            })
            .collect();
        targets.sort_by(|a, b| a.addr.cmp(&b.addr));
        let metrics = self
            .metrics
            .read()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect();
        StateView {
            table,
            targets,
            metrics,
            last_pause_ms: self.pause.lock().unwrap().1,
        }
    }

    fn metrics_for(&self, release: &str) -> Arc<ReleaseMetrics> {
        if let Some(m) = self.metrics.read().unwrap().get(release) {
            return m.clone();
        }
        self.metrics
            .write()
            .unwrap()
            .entry(release.into())
            .or_default()
            .clone()
    }

    /// Chooses a target and counts the request against it. A drain marks
    /// the targets it removes after the new routes are in place, then
    /// reads their counts; a request counts itself, then reads the mark
    /// (both sequentially consistent): either the drain waits for the
    /// request, or the request picks again from the new routes.
    fn pick(&self, bucket: u32, allowlisted: bool, affinity: Option<&str>, avoid: &str) -> Pick {
        let routes = self.routes.load();
        let table = &routes.table;
        if table.paused {
            return Pick::Wait(
                Duration::from_millis(table.max_pause_ms),
                StatusCode::GATEWAY_TIMEOUT,
            );
        }
        let hold = Duration::from_millis(table.hold_timeout_ms);
        let usable = |t: &&Arc<Target>| !t.is_draining() && t.addr != avoid && t.is_healthy();
        let first = table
            .pick_release(bucket, allowlisted)
            .and_then(|f| table.releases.iter().position(|r| std::ptr::eq(r, f)));
        // The chosen release first, then any other routed release.
        let order = first.into_iter().chain(
            table
                .releases
                .iter()
                .enumerate()
                .filter(|(i, r)| r.weight > 0 && Some(*i) != first)
                .map(|(i, _)| i),
        );
        for release in order {
            // Counted, then indexed: no list is built per request.
            let pool = || routes.by_release[release].iter().filter(usable);
            let n = pool().count();
            if n == 0 {
                continue;
            }
            // A target can leave the pool between the count and the pick
            // (a drain marks it, the checker takes it out: no lock holds
            // them still), so a pick that comes up empty picks again.
            let Some(chosen) = affinity
                .and_then(|a| pool().find(|t| t.addr == a))
                .or_else(|| pool().nth(per_thread::next_turn() % n))
            else {
                return Pick::Again;
            };
            let counted = InFlight::new(chosen.clone());
            if chosen.is_draining() {
                return Pick::Again;
            }
            let moved = table.sticky && affinity != Some(chosen.addr.as_str());
            return Pick::Go(counted, moved);
        }
        Pick::Wait(hold, StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Waits for a target, holding the request through a switch or a pause.
    async fn wait_for_target(
        &self,
        bucket: u32,
        allowlisted: bool,
        affinity: Option<&str>,
        avoid: &str,
    ) -> Result<(InFlight, bool), StatusCode> {
        let start = Instant::now();
        loop {
            let notified = self.changed.notified();
            match self.pick(bucket, allowlisted, affinity, avoid) {
                Pick::Go(g, moved) => return Ok((g, moved)),
                Pick::Again => continue,
                Pick::Wait(limit, status) => {
                    let left = limit.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(status);
                    }
                    let _ =
                        tokio::time::timeout(left.min(Duration::from_millis(250)), notified).await;
                }
            }
        }
    }

    /// Serves a request from an HTTP/2 client (hyper's server): HTTP/2
    /// has no upgrades, so none is asked.
    pub async fn handle_hyper(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: Peer,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = match body.size_hint().exact() {
            Some(0) => ClientBody::Whole(Bytes::new()),
            len => ClientBody::Streaming(body.map_err(BoxError::from).boxed(), len),
        };
        self.handle(parts, body, &peer, false).await.response
    }

    /// Chooses a target for the request, holding it through a switch or a
    /// pause, sends it there (again elsewhere when that is safe) and
    /// returns the answer. `upgrade`: the client asked for one (HTTP/1.1).
    pub async fn handle(
        &self,
        mut parts: hyper::http::request::Parts,
        body: ClientBody,
        peer: &Peer,
        upgrade: bool,
    ) -> Reply {
        let start = Instant::now();
        let (cohort, affinity) = routing_cookies(&parts.headers);
        let (cohort, affinity) = (cohort.map(str::to_string), affinity.map(str::to_string));
        let (bucket, new_cohort) = match &cohort {
            Some(c) => (bucket_of(c), None),
            None => {
                let b = random_u32() % 10_000;
                (b, Some(b))
            }
        };
        let (allowlisted, canary_active, protocol) = {
            let routes = self.routes.load();
            let t = &routes.table;
            // While paused, outside load balancers still see a healthy host.
            if t.paused && t.health_path.as_deref() == Some(parts.uri.path()) {
                return plain(StatusCode::OK, "paused").into();
            }
            (
                cohort.as_ref().is_some_and(|c| t.allowlist.contains(c)),
                t.releases.iter().filter(|r| r.weight > 0).nth(1).is_some(),
                t.upstream,
            )
        };
        forward_headers(&mut parts, peer, upgrade);
        let (buffered, mut streaming) = match body {
            ClientBody::Whole(b) => (Some(b), None),
            ClientBody::Streaming(b, len) if upgrade || len.is_some_and(|n| n <= RETRY_BUFFER) => {
                match b.collect().await {
                    Ok(b) => (Some(b.to_bytes()), None),
                    Err(_) => {
                        return plain(StatusCode::BAD_REQUEST, "request body cut short").into();
                    }
                }
            }
            ClientBody::Streaming(b, _) => (None, Some(b)),
        };
        // Safe to send again when no answer came: nothing of it can have
        // taken effect twice, and the body is still at hand.
        let may_repeat = parts.method.is_idempotent() && buffered.is_some();
        let mut avoid = String::new();
        for _attempt in 0..3 {
            let (guard, moved) = match self
                .wait_for_target(bucket, allowlisted, affinity.as_deref(), &avoid)
                .await
            {
                Ok(g) => g,
                Err(status) => {
                    return plain(status, "no healthy target for this service right now").into();
                }
            };
            // Borrowed, not cloned: the count of an `Arc` shared by every
            // serving thread is one more cache line moving between cores.
            let target = &guard.0;
            let metrics = &target.metrics;
            let body = match (&buffered, streaming.take()) {
                (Some(b), _) => Outgoing::Whole(b.clone()),
                (None, Some(s)) => Outgoing::Streaming(s),
                (None, None) => {
                    return plain(StatusCode::BAD_GATEWAY, "request body already sent").into();
                }
            };
            let sent = {
                let lost = target.lost().notified();
                tokio::pin!(lost);
                lost.as_mut().enable();
                tokio::select! {
                    r = upstream::send(&target.addr, protocol, &parts, body) => Some(r),
                    _ = lost => None,
                }
            };
            let Some(sent) = sent else {
                // The checker took the target out while this request waited
                // for its answer (a node cut off, say). A request that may be
                // repeated goes elsewhere, as nginx's proxy_next_upstream does.
                if may_repeat {
                    avoid = target.addr.clone();
                    continue;
                }
                metrics.record(start.elapsed().as_micros() as u64, true);
                return plain(
                    StatusCode::BAD_GATEWAY,
                    "the target stopped answering before it replied",
                )
                .into();
            };
            match sent {
                Ok(mut resp) => {
                    let status = resp.status();
                    metrics.record(start.elapsed().as_micros() as u64, status.is_server_error());
                    let mut cookies = Vec::new();
                    if let Some(b) = new_cohort.filter(|_| canary_active) {
                        cookies.push(format!(
                            "{COHORT_COOKIE}={b}; Path=/; HttpOnly; SameSite=Lax"
                        ));
                    }
                    if moved {
                        cookies.push(format!(
                            "{AFFINITY_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                            target.addr
                        ));
                    }
                    for c in cookies {
                        if let Ok(v) = HeaderValue::from_str(&c) {
                            resp.headers_mut().append(header::SET_COOKIE, v);
                        }
                    }
                    if status == StatusCode::SWITCHING_PROTOCOLS && upgrade {
                        let backend_side = hyper::upgrade::on(&mut resp);
                        let (p, _) = resp.into_parts();
                        return Reply {
                            response: Response::from_parts(p, full(Bytes::new())),
                            tunnel: Some((backend_side, guard)),
                        };
                    }
                    let (p, b) = resp.into_parts();
                    return Response::from_parts(
                        p,
                        Guarded {
                            inner: b,
                            _guard: guard,
                        }
                        .boxed(),
                    )
                    .into();
                }
                Err(SendError::Connect(_)) if buffered.is_some() => {
                    // Nothing reached the target: take it out and try another.
                    target.mark_down();
                    avoid = target.addr.clone();
                    continue;
                }
                Err(_) if may_repeat && !upgrade => {
                    // A kept-alive connection closed under the request (a
                    // task stopping as swarm replaces it, say): no answer
                    // came, and a GET may be sent again, as nginx's
                    // proxy_next_upstream does for errors.
                    avoid = target.addr.clone();
                    continue;
                }
                Err(e) => {
                    metrics.record(start.elapsed().as_micros() as u64, true);
                    return plain(StatusCode::BAD_GATEWAY, &format!("upstream error: {e}")).into();
                }
            }
        }
        plain(
            StatusCode::BAD_GATEWAY,
            "no target answered in three attempts",
        )
        .into()
    }

    /// Resolves the table's names again on an interval, on its own so a
    /// round of checks slowed by a node that does not answer never delays
    /// seeing a task leave (swarm takes it out of DNS before stopping it).
    pub async fn resolve_loop(self: Arc<Self>, interval: Duration, timeout: Duration) {
        loop {
            let check = self.routes.load().table.check();
            if self.resolve_names(&check, timeout).await {
                self.changed.notify_waiters();
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Probes every target on an interval; a target leaves the pool after
    /// two failures in a row and returns after one success.
    pub async fn health_loop(self: Arc<Self>, interval: Duration, timeout: Duration) {
        loop {
            let check = self.routes.load().table.check();
            let targets: Vec<Arc<Target>> = self
                .routes
                .load()
                .targets
                .values()
                .flatten()
                .cloned()
                .collect();
            let checks = targets.iter().map(|t| {
                let check = &check;
                let this = self.clone();
                async move {
                    let ok = this.probe(&t.addr, check, timeout).await.is_ok();
                    t.record_check(ok, UNHEALTHY_AFTER)
                }
            });
            let changed = futures_util::future::join_all(checks)
                .await
                .into_iter()
                .any(|c| c);
            if changed {
                self.changed.notify_waiters();
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Resolves every table address that is a name and follows what it
    /// stands for: new addresses are checked once before they join (so a
    /// task that is still starting gets no traffic), addresses that left
    /// stop getting new requests and finish the ones they have.
    async fn resolve_names(&self, check: &Check, timeout: Duration) -> bool {
        let names: Vec<(String, Vec<String>)> = self
            .routes
            .load()
            .targets
            .iter()
            .filter(|(name, _)| is_name(name))
            .map(|(name, m)| (name.clone(), m.iter().map(|t| t.addr.clone()).collect()))
            .collect();
        let mut changed = false;
        for (name, current) in names {
            let found = match tokio::time::timeout(timeout, tokio::net::lookup_host(&name)).await {
                Ok(Ok(addrs)) => {
                    let mut v: Vec<String> = addrs.map(|a| a.to_string()).collect();
                    v.sort();
                    v.dedup();
                    v
                }
                _ => continue,
            };
            let Some(c) = change(&current, &found) else {
                continue;
            };
            let checks = c.added.iter().map(|a| self.probe(a, check, timeout));
            let ok: Vec<bool> = futures_util::future::join_all(checks)
                .await
                .into_iter()
                .map(|r| r.is_ok())
                .collect();
            let writing = self.writer.lock().unwrap();
            let routes = self.routes.load_full();
            // The table may have moved on while the new addresses were checked.
            let Some(members) = routes.targets.get(&name) else {
                continue;
            };
            if members.iter().map(|t| &t.addr).ne(current.iter()) {
                continue;
            }
            let first = &members[0];
            let mut next: Vec<Arc<Target>> = members
                .iter()
                .filter(|t| c.kept.contains(&t.addr))
                .cloned()
                .collect();
            for (addr, ok) in c.added.iter().zip(ok) {
                let release = (first.release.as_str(), first.metrics.clone());
                next.push(Target::new(addr, &name, release, ok));
            }
            let gone: Vec<Arc<Target>> = members
                .iter()
                .filter(|t| c.gone.contains(&t.addr))
                .cloned()
                .collect();
            let mut targets = routes.targets.clone();
            targets.insert(name, next);
            self.routes
                .store(Routes::new(routes.table.clone(), targets));
            // After the new routes are in place, as in `install`.
            mark_draining(&gone);
            drop(writing);
            changed = true;
        }
        changed
    }

    /// One health probe: a TCP connect, HTTP 2xx on a path, or gRPC
    /// `SERVING` (always over h2c, whatever the table's protocol).
    pub async fn probe(&self, addr: &str, check: &Check, timeout: Duration) -> Result<(), String> {
        let work = async {
            match check {
                Check::Connect => tokio::net::TcpStream::connect(addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Check::Http(p) => {
                    let req = Request::get(p.as_str())
                        .header(header::HOST, addr)
                        .header(header::USER_AGENT, "deployment-manager-proxy health check")
                        .body(Outgoing::Whole(Bytes::new()))
                        .map_err(|e| e.to_string())?;
                    let protocol = self.routes.load().table.upstream;
                    let (head, body) = req.into_parts();
                    let resp = upstream::send(addr, protocol, &head, body)
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("{p} answered {status}"))
                    }
                }
                Check::Grpc(service) => {
                    let body = Outgoing::Whole(grpc_health::request_body(service));
                    let (head, body) = grpc_health::request(body).into_parts();
                    let resp = upstream::send(addr, UpstreamProtocol::H2c, &head, body)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (parts, body) = resp.into_parts();
                    let got = body.collect().await.map_err(|e| e.to_string())?;
                    let trailers = got.trailers().cloned();
                    grpc_health::verdict(&parts.headers, &got.to_bytes(), trailers.as_ref())
                        .into_result()
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }
}

/// Stops new requests to targets that left the routes (`Proxy::pick`).
fn mark_draining(targets: &[Arc<Target>]) {
    for t in targets {
        t.draining.store(true, Ordering::SeqCst);
    }
}

/// Turns the client's request head into the one sent to targets, once
/// for every attempt: the target in origin form, `host` from an HTTP/2
/// client's `:authority`, the client's address appended to
/// `x-forwarded-for`, and hop-by-hop headers removed, since they are per
/// connection (RFC 9110 §7.6.1). An upgrade keeps `connection` and
/// `upgrade` so the target sees the handshake, and `te: trailers` goes
/// on, since the proxy passes trailers through (gRPC servers expect it).
/// Done in place: a new header map per request showed in the profile.
fn forward_headers(parts: &mut hyper::http::request::Parts, peer: &Peer, upgrade: bool) {
    static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    let headers = &mut parts.headers;
    // Most requests carry none of these: one pass over the names saves a
    // lookup per name.
    let hop_by_hop = headers.keys().any(|n| {
        *n == header::CONNECTION
            || *n == header::UPGRADE
            || *n == header::TE
            || *n == header::TRAILER
            || *n == header::TRANSFER_ENCODING
            || n.as_str() == "keep-alive"
            || n.as_str() == "proxy-connection"
    });
    if hop_by_hop {
        for name in [
            "keep-alive",
            "proxy-connection",
            "trailer",
            "transfer-encoding",
        ] {
            headers.remove(name);
        }
        if !upgrade {
            headers.remove(header::CONNECTION);
            headers.remove(header::UPGRADE);
        }
        if let header::Entry::Occupied(te) = headers.entry(header::TE)
            && te.iter().any(|v| v != "trailers")
        {
            let trailers = te.iter().any(|v| v == "trailers");
            te.remove();
            if trailers {
                headers.insert(header::TE, HeaderValue::from_static("trailers"));
            }
        }
    }
    if let Some(authority) = parts.uri.authority()
        && !headers.contains_key(header::HOST)
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(header::HOST, v);
    }
    let xff = match headers.get(&XFF).map(|v| v.to_str()) {
        Some(Ok(prev)) => {
            let ip = peer.0.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{prev}, {ip}")).ok()
        }
        Some(Err(_)) | None => Some(peer.0.clone()),
    };
    if let Some(v) = xff {
        headers.insert(XFF.clone(), v);
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        parts.uri = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"))
            .into();
    }
}

/// A response body that keeps its request counted until fully sent.
struct Guarded {
    inner: UpBody,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::proxy::table::ReleaseRoute;
    // The whole path, from the listening side down.
    use super::super::front::serve;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An upstream that answers every request with 200 "ok".
    async fn answering() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    /// An upstream that accepts and reads but never answers: what a node
    /// cut off mid-connection looks like from the proxy's side.
    async fn black_hole() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        addr
    }

    async fn start(targets: Vec<String>) -> (Arc<Proxy>, SocketAddr) {
        let mut table = RouteTable::new("web");
        table.health_path = Some("/health".into());
        table.releases = vec![ReleaseRoute {
            release: "v1".into(),
            weight: 100,
            targets,
        }];
        start_with(table).await
    }

    async fn start_with(table: RouteTable) -> (Arc<Proxy>, SocketAddr) {
        let proxy = Proxy::new(table, None);
        let (every, timeout) = (Duration::from_millis(100), Duration::from_millis(200));
        tokio::spawn(proxy.clone().health_loop(every, timeout));
        tokio::spawn(proxy.clone().resolve_loop(every, timeout));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let served = proxy.clone();
        tokio::spawn(async move {
            let _keep_open = tx;
            serve(served, listener, rx).await
        });
        (proxy, addr)
    }

    /// One request on its own connection; the status code, or 0 when the
    /// connection failed.
    async fn request(proxy: SocketAddr, method: &str) -> u16 {
        let Ok(mut s) = tokio::net::TcpStream::connect(proxy).await else {
            return 0;
        };
        let head = format!(
            "{method} / HTTP/1.1\r\nhost: app\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return 0;
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out)
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_that_stops_answering_loses_no_idempotent_request() {
        let good = answering().await;
        let hole = black_hole().await;
        let (proxy, addr) = start(vec![good.to_string(), hole.to_string()]).await;
        let codes = tokio::time::timeout(Duration::from_secs(20), async {
            let mut codes = Vec::new();
            for _ in 0..20 {
                codes.push(request(addr, "GET").await);
            }
            codes
        })
        .await
        .expect("requests to a black hole are retried once the checker takes it out");
        assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
        let view = proxy.view();
        let hole_view = view
            .targets
            .iter()
            .find(|t| t.addr == hole.to_string())
            .unwrap();
        assert!(!hole_view.healthy);
    }

    #[test]
    fn the_forwarded_head_drops_hop_by_hop_headers_and_names_the_client() {
        let req = Request::get("http://web.example:8080/a?b=1")
            .header("connection", "keep-alive, x-trace")
            .header("keep-alive", "timeout=5")
            .header("te", "trailers")
            .header("te", "gzip")
            .header("upgrade", "websocket")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-app", "1")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        forward_headers(&mut parts, &Peer::new(peer), false);
        assert_eq!(parts.uri, "/a?b=1");
        let h = &parts.headers;
        let names: HashSet<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            HashSet::from(["te", "x-forwarded-for", "x-app", "host"])
        );
        assert_eq!(h.get_all("te").iter().collect::<Vec<_>>(), ["trailers"]);
        assert_eq!(h["host"], "web.example:8080");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.7");
        // An upgrade keeps its handshake; an HTTP/1.1 client's host stays.
        let req = Request::get("/ws")
            .header("host", "app")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        forward_headers(&mut parts, &Peer::new(peer), true);
        assert_eq!(parts.headers["connection"], "upgrade");
        assert_eq!(parts.headers["upgrade"], "websocket");
        assert_eq!(parts.headers["host"], "app");
        assert_eq!(parts.headers["x-forwarded-for"], "10.0.0.7");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_is_routed_to_each_address_it_resolves_to() {
        let good = answering().await;
        let name = format!("localhost:{}", good.port());
        let (proxy, addr) = start(vec![name.clone()]).await;
        let resolved = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let view = proxy.view();
                if let Some(t) = view
                    .targets
                    .iter()
                    .find(|t| t.addr == good.to_string() && t.healthy)
                {
                    return t.clone();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("localhost resolves to 127.0.0.1 within a few rounds");
        assert_eq!(resolved.name, name);
        for _ in 0..5 {
            assert_eq!(request(addr, "GET").await, 200);
        }
    }

    /// An upstream that answers 200 and counts the connections it accepts;
    /// it closes each connection `close_after` after accepting it.
    async fn counting(close_after: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    // Closing while idle, as a server's keep-alive timeout does.
                    let _ = tokio::time::timeout(close_after, conn).await;
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_reuse_kept_alive_connections_to_the_target() {
        let (up, accepted) = counting(Duration::from_secs(60)).await;
        let (_proxy, addr) = start(vec![up.to_string()]).await;
        for _ in 0..50 {
            assert_eq!(request(addr, "GET").await, 200);
        }
        // One connection per serving thread and one for the health checks
        // at most, instead of one per request.
        let n = accepted.load(Ordering::SeqCst);
        assert!(n <= 3, "{n} connections for 50 requests");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_the_target_closed_while_idle_fails_no_request() {
        let (up, accepted) = counting(Duration::from_millis(100)).await;
        let (_proxy, addr) = start(vec![up.to_string()]).await;
        for _ in 0..5 {
            // POST is not repeated after a failure: it must go on a live
            // connection the first time.
            assert_eq!(request(addr, "POST").await, 200);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(accepted.load(Ordering::SeqCst) >= 5);
    }

    /// An h2c-only upstream answering like a gRPC server: the request body
    /// echoed, `grpc-status` in the trailers, and the `te` it received.
    async fn grpc_like() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let te = req.headers().get(header::TE).cloned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut trailers = HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
                            vec![Ok(Frame::data(body)), Ok(Frame::trailers(trailers))];
                        let mut resp = Response::new(http_body_util::StreamBody::new(
                            futures_util::stream::iter(frames),
                        ));
                        if let Some(te) = te {
                            resp.headers_mut().insert("x-te", te);
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_http2_client_reaches_a_grpc_target_with_its_trailers() {
        let up = grpc_like().await;
        let mut table = RouteTable::new("api");
        table.upstream = UpstreamProtocol::H2c;
        table.releases = vec![ReleaseRoute {
            release: "v1".into(),
            weight: 100,
            targets: vec![up.to_string()],
        }];
        let (_proxy, addr) = start_with(table).await;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        // Several calls at once on the one client connection.
        let calls = (0..8).map(|n| {
            let req = Request::post(format!("http://{addr}/helloworld.Greeter/SayHello"))
                .header(header::CONTENT_TYPE, "application/grpc")
                .header(header::TE, "trailers")
                .body(Full::new(Bytes::from(format!("call {n}"))))
                .unwrap();
            let call = sender.send_request(req);
            async move {
                let resp = call.await.unwrap();
                let te = resp.headers().get("x-te").cloned();
                let body = resp.into_body().collect().await.unwrap();
                (te, body.trailers().cloned(), body.to_bytes(), n)
            }
        });
        for (te, trailers, body, n) in futures_util::future::join_all(calls).await {
            assert_eq!(body, Bytes::from(format!("call {n}")));
            assert_eq!(te.as_ref().map(|v| v.as_bytes()), Some(&b"trailers"[..]));
            let status = trailers.expect("trailers came through");
            assert_eq!(status.get("grpc-status").unwrap(), "0");
        }
    }
}
