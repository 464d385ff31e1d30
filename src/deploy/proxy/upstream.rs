//! Requests from the proxy to its targets, by the way each must travel:
//! a request whose whole body is at hand goes on the proxy's own pooled
//! HTTP/1.1 client (`upstream_http1.rs`, the hot path); a streamed upload
//! or a WebSocket handshake goes on a hyper connection of its own (a 101
//! hands that connection over to the tunnel, so it never returns to a
//! pool); an h2c target (gRPC) gets one HTTP/2 connection per serving
//! thread, shared by every request.

use super::idle_sweep::Sweeper;
use super::server::Body;
use super::table::UpstreamProtocol;
use super::upstream_http1::{self, SendFailure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper::header;
use hyper::http::request::Parts;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use upstream_http1::IDLE_TIMEOUT;

/// A target that takes longer than this to accept is counted as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: nothing reached the target.
    Connect(std::io::Error),
    /// The connection failed once the request was on its way.
    Request(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "could not connect: {e}"),
            SendError::Request(e) => write!(f, "{e}"),
        }
    }
}

/// The body of a request to a target.
pub enum Outgoing {
    /// Read whole from the client (so it can be sent again).
    Whole(Bytes),
    /// Passed on as the client sends it.
    Streaming(Body),
}

impl Outgoing {
    fn into_hyper(self) -> Body {
        match self {
            Outgoing::Whole(b) => Full::new(b).map_err(|never| match never {}).boxed(),
            Outgoing::Streaming(s) => s,
        }
    }
}

/// A target's answer body, from whichever client carried the request.
pub enum UpBody {
    Own(upstream_http1::ResponseBody),
    Hyper(Incoming),
}

impl hyper::body::Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Own(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            UpBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
        }
    }
    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Own(b) => b.is_end_stream(),
            UpBody::Hyper(b) => b.is_end_stream(),
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Own(b) => b.size_hint(),
            UpBody::Hyper(b) => b.size_hint(),
        }
    }
}

struct Shared {
    sender: http2::SendRequest<Body>,
    used: Instant,
}

/// Per h2c target address: the connection every request of this serving
/// thread shares.
#[derive(Default)]
struct H2cPool {
    shared: HashMap<String, Shared>,
    sweeper: Sweeper,
}

impl H2cPool {
    fn take(&mut self, addr: &str) -> Option<http2::SendRequest<Body>> {
        let s = self.shared.get_mut(addr)?;
        if s.sender.is_closed() {
            self.shared.remove(addr);
            return None;
        }
        s.used = Instant::now();
        Some(s.sender.clone())
    }

    /// A shared connection closes once idle past the timeout; true when
    /// none is left.
    fn sweep(&mut self, now: Instant) -> bool {
        self.shared
            .retain(|_, s| !s.sender.is_closed() && now.duration_since(s.used) < IDLE_TIMEOUT);
        self.shared.is_empty()
    }
}

thread_local! {
    static H2C: RefCell<H2cPool> = RefCell::default();
}

/// Sends a request (`head`'s URI in origin form, its headers end-to-end
/// plus `host`) to `addr` in the target's protocol. The head is borrowed:
/// a request sent again to another target reuses it.
pub async fn send(
    addr: &str,
    protocol: UpstreamProtocol,
    head: &Parts,
    body: Outgoing,
) -> Result<Response<UpBody>, SendError> {
    match (protocol, body) {
        (UpstreamProtocol::H2c, body) => send_h2c(addr, hyper_request(head, body)).await,
        (UpstreamProtocol::Http1, Outgoing::Whole(bytes))
            if !head.headers.contains_key(header::UPGRADE) =>
        {
            let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
            upstream_http1::send(addr, &head.method, target, &head.headers, &bytes, || {
                tcp(addr)
            })
            .await
            .map(|r| r.map(UpBody::Own))
            .map_err(|e| match e {
                SendFailure::Connect(e) => e,
                SendFailure::Exchange(e) => SendError::Request(e.into()),
            })
        }
        (UpstreamProtocol::Http1, body) => {
            send_on_own_connection(addr, hyper_request(head, body)).await
        }
    }
}

fn hyper_request(head: &Parts, body: Outgoing) -> Request<Body> {
    let mut req = Request::new(body.into_hyper());
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.headers_mut() = head.headers.clone();
    req
}

/// A streamed upload or an upgrade, on a new hyper connection that ends
/// with it.
async fn send_on_own_connection(
    addr: &str,
    req: Request<Body>,
) -> Result<Response<UpBody>, SendError> {
    let stream = tcp(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| SendError::Request(e.into()))?;
    // Upgrades let a WebSocket take the connection over after a 101.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
        .send_request(req)
        .await
        .map(|r| r.map(UpBody::Hyper))
        .map_err(|e| SendError::Request(e.into()))
}

/// HTTP/2 names the target in `:scheme` and `:authority`, so the URI is
/// made absolute; a shared connection that closed is replaced once.
async fn send_h2c(addr: &str, mut req: Request<Body>) -> Result<Response<UpBody>, SendError> {
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
        let pooled = H2C.with_borrow_mut(|p| p.take(addr));
        let (mut sender, reused) = match pooled {
            Some(s) => (s, true),
            None => {
                let s = connect_h2c(addr).await?;
                H2C.with_borrow_mut(|p| {
                    p.shared.insert(
                        addr.to_string(),
                        Shared {
                            sender: s.clone(),
                            used: Instant::now(),
                        },
                    );
                    p.sweeper
                        .keep_running(|now| H2C.with_borrow_mut(|p| p.sweep(now)));
                });
                (s, false)
            }
        };
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok(resp.map(UpBody::Hyper)),
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => {
                    H2C.with_borrow_mut(|p| p.shared.remove(addr));
                    req = unsent;
                }
                _ => return Err(SendError::Request(e.into_error().into())),
            },
        }
    }
}

async fn connect_h2c(addr: &str) -> Result<http2::SendRequest<Body>, SendError> {
    let stream = tcp(addr).await?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| SendError::Request(e.into()))?;
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
