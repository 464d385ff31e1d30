//! Kept-alive connections from the proxy to its targets.
//!
//! One pool per serving thread: each serving thread runs its own runtime
//! (see `admin::run`), so a request, the upstream connection it borrows and
//! that connection's task stay on one thread, and the pool needs no lock.
//! hyper-util's pooled client did the same job behind a shared mutex, a
//! checkout future and a spawned readiness task per request; this one is a
//! `Vec` per target, used last-in first-out so the warmest connection goes
//! first (measured in `scripts/bench-proxy.sh`). A target that speaks h2c
//! (gRPC) gets one HTTP/2 connection per thread, shared by every request.

use super::server::Body;
use super::table::UpstreamProtocol;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// An idle connection is closed after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per target and serving thread; a burst opens
/// more, and those are closed when they come back to a full pool.
pub const MAX_IDLE_PER_TARGET: usize = 256;
/// A target that takes longer than this to accept is counted as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle connections past their timeout are closed while no
/// request comes to clear them.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: nothing reached the target.
    Connect(std::io::Error),
    /// The connection failed once the request was on its way.
    Request(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "could not connect: {e}"),
            SendError::Request(e) => write!(f, "{e}"),
        }
    }
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

struct Shared {
    sender: http2::SendRequest<Body>,
    used: Instant,
}

#[derive(Default)]
struct Pool {
    /// Per target address, oldest first.
    idle: HashMap<String, Vec<Idle>>,
    /// Per h2c target address: the connection every request shares.
    shared: HashMap<String, Shared>,
    sweeper: Option<tokio::task::JoinHandle<()>>,
}

impl Pool {
    fn take(&mut self, addr: &str) -> Option<SendRequest<Body>> {
        let list = self.idle.get_mut(addr)?;
        while let Some(i) = list.pop() {
            if !i.sender.is_closed() && i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.sender);
            }
        }
        None
    }

    fn put(&mut self, addr: &str, sender: SendRequest<Body>, now: Instant) {
        let list = match self.idle.get_mut(addr) {
            Some(l) => l,
            None => self.idle.entry(addr.to_string()).or_default(),
        };
        // Oldest first, so the expired ones are a prefix.
        let expired = list.partition_point(|i| now.duration_since(i.since) >= IDLE_TIMEOUT);
        list.drain(..expired);
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(Idle { sender, since: now });
        }
    }

    fn take_shared(&mut self, addr: &str) -> Option<http2::SendRequest<Body>> {
        let s = self.shared.get_mut(addr)?;
        if s.sender.is_closed() {
            self.shared.remove(addr);
            return None;
        }
        s.used = Instant::now();
        Some(s.sender.clone())
    }

    /// Closes what timed out or what the target closed; true when empty.
    fn sweep(&mut self, now: Instant) -> bool {
        for list in self.idle.values_mut() {
            list.retain(|i| !i.sender.is_closed() && now.duration_since(i.since) < IDLE_TIMEOUT);
        }
        self.idle.retain(|_, l| !l.is_empty());
        // A shared connection closes once its last request is done.
        self.shared
            .retain(|_, s| !s.sender.is_closed() && now.duration_since(s.used) < IDLE_TIMEOUT);
        self.idle.is_empty() && self.shared.is_empty()
    }

    /// Starts the sweeper of this thread's pool unless one runs.
    fn keep_swept(&mut self) {
        if self.sweeper.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.sweeper = Some(runtime.spawn(async {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                if POOL.with_borrow_mut(|p| p.sweep(Instant::now())) {
                    return;
                }
            }
        }));
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

/// Idle connections this thread keeps to `addr` (for tests and status).
pub fn idle_to(addr: &str) -> usize {
    POOL.with_borrow(|p| p.idle.get(addr).map_or(0, Vec::len))
}

/// Sends `req` (origin-form URI, `host` header set) to `addr` in the
/// target's protocol, on a kept-alive connection or a new one.
pub async fn send(
    addr: &str,
    protocol: UpstreamProtocol,
    req: Request<Body>,
) -> Result<Response<PooledBody>, SendError> {
    match protocol {
        UpstreamProtocol::Http1 => send_http1(addr, req).await,
        UpstreamProtocol::H2c => send_h2c(addr, req).await,
    }
}

/// A pooled connection the target closed while it was idle gives the
/// request back unsent, and it goes on the next one.
async fn send_http1(addr: &str, mut req: Request<Body>) -> Result<Response<PooledBody>, SendError> {
    loop {
        let pooled = POOL.with_borrow_mut(|p| p.take(addr));
        let (mut sender, reused) = match pooled {
            Some(s) => (s, true),
            None => (connect(addr).await?, false),
        };
        if reused && sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(resp) => {
                return Ok(resp.map(|inner| PooledBody {
                    inner,
                    lease: Some((addr.to_string(), sender)),
                }));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => req = unsent,
                _ => return Err(SendError::Request(e.into_error())),
            },
        }
    }
}

/// HTTP/2 names the target in `:scheme` and `:authority`, so the URI is
/// made absolute; a shared connection that closed is replaced once.
async fn send_h2c(addr: &str, mut req: Request<Body>) -> Result<Response<PooledBody>, SendError> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *req.uri_mut() = hyper::Uri::builder()
        .scheme("http")
        .authority(addr)
        .path_and_query(path)
        .build()
        .map_err(|e| SendError::Connect(std::io::Error::other(e)))?;
    *req.version_mut() = hyper::Version::HTTP_2;
    loop {
        let pooled = POOL.with_borrow_mut(|p| p.take_shared(addr));
        let (mut sender, reused) = match pooled {
            Some(s) => (s, true),
            None => {
                let s = connect_h2c(addr).await?;
                POOL.with_borrow_mut(|p| {
                    p.shared.insert(
                        addr.to_string(),
                        Shared {
                            sender: s.clone(),
                            used: Instant::now(),
                        },
                    );
                    p.keep_swept();
                });
                (s, false)
            }
        };
        match sender.try_send_request(req).await {
            Ok(resp) => {
                return Ok(resp.map(|inner| PooledBody { inner, lease: None }));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => {
                    POOL.with_borrow_mut(|p| p.shared.remove(addr));
                    req = unsent;
                }
                _ => return Err(SendError::Request(e.into_error())),
            },
        }
    }
}

async fn connect_h2c(addr: &str) -> Result<http2::SendRequest<Body>, SendError> {
    let stream = tcp(addr).await?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(SendError::Request)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn tcp(addr: &str) -> Result<tokio::net::TcpStream, SendError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| {
            SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", CONNECT_TIMEOUT.as_millis()),
            ))
        })?
        .map_err(SendError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect(addr: &str) -> Result<SendRequest<Body>, SendError> {
    let stream = tcp(addr).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Request)?;
    // Upgrades let a WebSocket take the connection over after a 101.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A response body that gives its connection back to the pool once it has
/// been read to the end (a body dropped half-read leaves hyper closing the
/// connection, so it is not given back).
pub struct PooledBody {
    inner: Incoming,
    lease: Option<(String, SendRequest<Body>)>,
}

impl PooledBody {
    /// The connection is taken over (a 101): it never goes back.
    pub fn keep_out_of_pool(&mut self) {
        self.lease = None;
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some((addr, sender)) = self.lease.take()
            && self.inner.is_end_stream()
            && !sender.is_closed()
        {
            POOL.with_borrow_mut(|p| {
                p.put(&addr, sender, Instant::now());
                p.keep_swept();
            });
        }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
