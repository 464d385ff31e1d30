//! The proxy's own HTTP/1.1 client to its targets, with kept-alive
//! connections pooled per serving thread.
//!
//! Why not hyper's client: measured with `scripts/bench-proxy.sh`, the
//! proxy spent about twice nginx's user CPU time per request, and the
//! largest share was hyper's client design: every connection is a spawned
//! task fed through a channel, so each request crossed two tasks and a
//! channel and its response body was polled through both. Here the
//! request's own task writes the head and body in one `write` and reads
//! the answer; a small body read with the head is handed on whole and the
//! connection goes back to the pool before the client has its answer.
//! Used for every request whose body is at hand and that asks no upgrade
//! (the proxy buffers bodies up to 1 MiB); streamed uploads, WebSockets
//! and h2c targets stay on hyper (`upstream.rs`).
//!
//! One pool per serving thread (each runs its own runtime, see
//! `admin::run`), so it needs no lock; last-in first-out so the warmest
//! connection goes first.

use super::http1_wire::{
    ChunkedDecoder, Decoded, Framing, ResponseHead, WireError, take_response_head,
    write_request_head,
};
use super::idle_sweep::Sweeper;
use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An idle connection is closed after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per target and serving thread; a burst opens
/// more, and those are closed when they come back to a full pool.
pub const MAX_IDLE_PER_TARGET: usize = 256;
/// A body up to this size goes out in the same write as the head.
const COALESCE_BODY: usize = 16 * 1024;
/// Read buffer of a connection; grown for a larger head.
const READ_CHUNK: usize = 8 * 1024;

/// Why a request got no answer from the target.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the target closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("the target switched protocols without being asked")]
    UnaskedUpgrade,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A kept-alive connection: its socket, the bytes read ahead of the
/// current answer, and the buffer its request heads are written into.
pub struct Conn {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            read: BytesMut::with_capacity(READ_CHUNK),
            write: Vec::with_capacity(1024),
        }
    }

    /// False when the target closed the connection (or sent something
    /// unasked) while it was idle. Costs a system call only when the
    /// runtime saw the socket readable.
    fn still_open(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(
                    self.stream.try_read(&mut probe),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                )
            }
        }
    }

    /// Writes the request and reads the answer's head; 1xx answers other
    /// than 101 are skipped (the whole body has gone already).
    async fn exchange(
        &mut self,
        (method, target, addr): (&Method, &str, &str),
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<ResponseHead, ExchangeError> {
        write_request_head(&mut self.write, (method, target, addr), headers, body.len());
        if body.len() <= COALESCE_BODY {
            self.write.extend_from_slice(body);
            self.stream.write_all(&self.write).await?;
        } else {
            self.stream.write_all(&self.write).await?;
            self.stream.write_all(body).await?;
        }
        let head_request = *method == Method::HEAD;
        let mut answered = false;
        loop {
            if let Some(head) = take_response_head(&mut self.read, head_request)? {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(ExchangeError::UnaskedUpgrade);
                }
                if head.status.is_informational() {
                    answered = true;
                    continue;
                }
                return Ok(head);
            }
            self.read.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(if answered || !self.read.is_empty() {
                    ExchangeError::Io(std::io::ErrorKind::UnexpectedEof.into())
                } else {
                    ExchangeError::ClosedBeforeAnswer
                });
            }
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    /// Per target address, oldest first.
    idle: HashMap<String, Vec<Idle>>,
    sweeper: Sweeper,
}

impl Pool {
    fn take(&mut self, addr: &str) -> Option<Conn> {
        let list = self.idle.get_mut(addr)?;
        while let Some(i) = list.pop() {
            if i.since.elapsed() < IDLE_TIMEOUT && i.conn.still_open() {
                return Some(i.conn);
            }
        }
        None
    }

    fn put(&mut self, addr: &str, conn: Conn, now: Instant) {
        let list = match self.idle.get_mut(addr) {
            Some(l) => l,
            None => self.idle.entry(addr.to_string()).or_default(),
        };
        // Oldest first, so the expired ones are a prefix.
        let expired = list.partition_point(|i| now.duration_since(i.since) >= IDLE_TIMEOUT);
        list.drain(..expired);
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(Idle { conn, since: now });
        }
    }

    /// Closes what timed out or what the target closed; true when empty.
    fn sweep(&mut self, now: Instant) -> bool {
        for list in self.idle.values_mut() {
            list.retain(|i| now.duration_since(i.since) < IDLE_TIMEOUT && i.conn.still_open());
        }
        self.idle.retain(|_, l| !l.is_empty());
        self.idle.is_empty()
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

fn give_back(addr: &str, conn: Conn) {
    POOL.with_borrow_mut(|p| {
        p.put(addr, conn, Instant::now());
        p.sweeper
            .keep_running(|now| POOL.with_borrow_mut(|p| p.sweep(now)));
    });
}

/// Idle connections this thread keeps to `addr`.
#[cfg(test)]
fn idle_to(addr: &str) -> usize {
    POOL.with_borrow(|p| p.idle.get(addr).map_or(0, Vec::len))
}

/// Sends a request whose whole body is at hand (`target` in origin form,
/// `headers` end-to-end plus `host`) on a kept-alive connection or a new
/// one from `connect`. A kept-alive connection the target closed just as
/// the request went out is replaced once for a method that may be
/// repeated; nothing of such a request reached the application.
pub async fn send<F, Fut, E>(
    addr: &str,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &Bytes,
    connect: F,
) -> Result<Response<ResponseBody>, SendFailure<E>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<TcpStream, E>>,
{
    let mut retried = false;
    loop {
        let pooled = POOL.with_borrow_mut(|p| p.take(addr));
        let (mut conn, reused) = match pooled {
            Some(c) => (c, true),
            None => (
                Conn::new(connect().await.map_err(SendFailure::Connect)?),
                false,
            ),
        };
        let head = match conn.exchange((method, target, addr), headers, body).await {
            Ok(h) => h,
            Err(ExchangeError::ClosedBeforeAnswer | ExchangeError::Io(_))
                if reused && !retried && method.is_idempotent() =>
            {
                retried = true;
                continue;
            }
            Err(e) => return Err(SendFailure::Exchange(e)),
        };
        return Ok(answer(addr, conn, head));
    }
}

/// Why `send` failed: no connection (nothing reached the target), or an
/// error once the request was on its way.
#[derive(Debug)]
pub enum SendFailure<E> {
    Connect(E),
    Exchange(ExchangeError),
}

/// The response, its body whole when it came with the head (the
/// connection then goes back at once), else read as the client takes it.
fn answer(addr: &str, mut conn: Conn, head: ResponseHead) -> Response<ResponseBody> {
    let whole = match head.framing {
        Framing::Empty => Some(Bytes::new()),
        Framing::Length(n) if conn.read.len() as u64 >= n => {
            Some(conn.read.split_to(n as usize).freeze())
        }
        _ => None,
    };
    let body = match whole {
        Some(bytes) => {
            // Bytes past the answer were never asked for: the connection
            // is not reused.
            if head.keep_alive && conn.read.is_empty() {
                give_back(addr, conn);
            }
            ResponseBody::Whole(Some(bytes).filter(|b| !b.is_empty()))
        }
        None => ResponseBody::Streaming(Box::new(Streaming {
            state: match head.framing {
                Framing::Length(n) => BodyState::Length(n),
                Framing::Chunked => BodyState::Chunked(ChunkedDecoder::default()),
                _ => BodyState::UntilClose,
            },
            keep_alive: head.keep_alive,
            conn: Some(conn),
            addr: addr.to_string(),
        })),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    resp
}

/// A target's response body.
pub enum ResponseBody {
    /// Read with the head (or empty): one frame, no more IO.
    Whole(Option<Bytes>),
    Streaming(Box<Streaming>),
}

pub struct Streaming {
    state: BodyState,
    keep_alive: bool,
    /// Given back to the pool once the body has been read to its end; a
    /// body dropped half-read closes it.
    conn: Option<Conn>,
    addr: String,
}

enum BodyState {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

impl Streaming {
    fn finish(&mut self) {
        self.state = BodyState::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.read.is_empty()
        {
            give_back(&self.addr, conn);
        }
    }

    /// The next frame from the bytes already read, if any.
    fn frame_from_buffer(&mut self) -> Result<Option<Option<Frame<Bytes>>>, ExchangeError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Some(None));
        };
        let read = &mut conn.read;
        match &mut self.state {
            BodyState::Done => Ok(Some(None)),
            BodyState::Length(0) => {
                self.finish();
                Ok(Some(None))
            }
            BodyState::Length(left) if !read.is_empty() => {
                let n = (read.len() as u64).min(*left);
                let data = read.split_to(n as usize).freeze();
                *left -= n;
                if *left == 0 {
                    self.finish();
                }
                Ok(Some(Some(Frame::data(data))))
            }
            BodyState::UntilClose if !read.is_empty() => {
                Ok(Some(Some(Frame::data(read.split().freeze()))))
            }
            BodyState::Chunked(decoder) => match decoder.next(read)? {
                Some(Decoded::Data(d)) => Ok(Some(Some(Frame::data(d)))),
                Some(Decoded::Trailers(t)) => Ok(Some(Some(Frame::trailers(t)))),
                Some(Decoded::End) => {
                    self.finish();
                    Ok(Some(None))
                }
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        let s = match &mut *self {
            ResponseBody::Whole(b) => return Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Streaming(s) => s,
        };
        loop {
            match s.frame_from_buffer() {
                Ok(Some(frame)) => return Poll::Ready(frame.map(Ok)),
                Ok(None) => {}
                Err(e) => {
                    s.state = BodyState::Done;
                    s.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let conn = s
                .conn
                .as_mut()
                .expect("a body in progress has its connection");
            conn.read.reserve(READ_CHUNK);
            if let Err(e) = ready!(conn.stream.poll_read_ready(cx)) {
                s.state = BodyState::Done;
                s.conn = None;
                return Poll::Ready(Some(Err(e.into())));
            }
            match conn.stream.try_read_buf(&mut conn.read) {
                Ok(0) if matches!(s.state, BodyState::UntilClose) => {
                    s.state = BodyState::Done;
                    s.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    s.state = BodyState::Done;
                    s.conn = None;
                    return Poll::Ready(Some(Err(ExchangeError::Io(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ))));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    s.state = BodyState::Done;
                    s.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Whole(b) => b.is_none(),
            ResponseBody::Streaming(s) => matches!(s.state, BodyState::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Whole(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Streaming(s) => match s.state {
                BodyState::Length(n) => SizeHint::with_exact(n),
                BodyState::Done => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::net::TcpListener;

    /// A target that answers each connection's requests with the given
    /// raw answers in turn, each after reading one request head, and
    /// closes the connection after the last (`None`: at once, unanswered).
    async fn scripted(conns: Vec<Vec<Option<&'static [u8]>>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for answers in conns {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                for answer in answers {
                    // One request head (the tests send no body).
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut b = [0u8; 1024];
                        let n = s.read(&mut b).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&b[..n]);
                    }
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    seen.drain(..end);
                    let Some(answer) = answer else { break };
                    // In two writes, so heads and bodies arrive apart.
                    let (a, b) = answer.split_at(answer.len() / 2);
                    s.write_all(a).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    s.write_all(b).await.unwrap();
                }
            }
        });
        addr
    }

    async fn get(addr: &str, method: Method) -> Result<Response<ResponseBody>, String> {
        let headers = HeaderMap::new();
        send(addr, &method, "/", &headers, &Bytes::new(), || {
            TcpStream::connect(addr.to_string())
        })
        .await
        .map_err(|e| match e {
            SendFailure::Connect(e) => e.to_string(),
            SendFailure::Exchange(e) => e.to_string(),
        })
    }

    #[tokio::test]
    async fn a_kept_alive_connection_serves_the_next_request() {
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-app: v1\r\n\r\nok";
        let addr = scripted(vec![vec![Some(OK), Some(OK)]]).await;
        for _ in 0..2 {
            let resp = get(&addr, Method::GET).await.unwrap();
            assert_eq!(resp.headers()["x-app"], "v1");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "ok");
            assert_eq!(idle_to(&addr), 1);
        }
    }

    #[tokio::test]
    async fn a_chunked_answer_streams_with_its_trailers_then_goes_back_to_the_pool() {
        const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n";
        let addr = scripted(vec![vec![Some(CHUNKED)]]).await;
        let resp = get(&addr, Method::GET).await.unwrap();
        assert!(
            !resp
                .headers()
                .contains_key(hyper::header::TRANSFER_ENCODING)
        );
        let got = resp.into_body().collect().await.unwrap();
        assert_eq!(got.trailers().unwrap()["x-sum"], "11");
        assert_eq!(got.to_bytes(), "hello world");
        assert_eq!(idle_to(&addr), 1);
    }

    #[tokio::test]
    async fn an_answer_framed_by_close_is_read_whole_and_not_reused() {
        const HTTP10: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        let addr = scripted(vec![vec![Some(HTTP10)]]).await;
        let resp = get(&addr, Method::GET).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "all of it");
        assert_eq!(idle_to(&addr), 0);
    }

    #[tokio::test]
    async fn a_get_the_target_closed_on_is_sent_again_and_a_post_is_not() {
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        // Each first connection answers once, then closes on the next
        // request, as a keep-alive timeout racing a request does.
        let addr = scripted(vec![vec![Some(OK), None], vec![Some(OK)]]).await;
        get(&addr, Method::GET).await.unwrap();
        get(&addr, Method::GET).await.unwrap();
        let addr = scripted(vec![vec![Some(OK), None], vec![Some(OK)]]).await;
        get(&addr, Method::POST).await.unwrap();
        let Err(e) = get(&addr, Method::POST).await else {
            panic!("a POST the target closed on was sent again")
        };
        assert!(e.contains("closed the connection before answering"), "{e}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_its_connection_is_dropped() {
        const SHORT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
        let addr = scripted(vec![vec![Some(SHORT)]]).await;
        let resp = get(&addr, Method::GET).await.unwrap();
        assert!(resp.into_body().collect().await.is_err());
        assert_eq!(idle_to(&addr), 0);
    }
}
