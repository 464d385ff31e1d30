//! The proxy's listening side: accepts client connections, tells HTTP/2
//! with prior knowledge (gRPC clients, h2c load balancers) from HTTP/1.1 by
//! the first bytes, hands HTTP/2 to hyper and serves HTTP/1.1 itself.
//!
//! Why not hyper's HTTP/1.1 server: measured with
//! `scripts/bench-proxy.sh`, the proxy spent more user CPU per request
//! than nginx, and once its upstream side was its own, hyper's server
//! (dispatch, parse, encode, a boxed body per response) was the largest
//! share left. Here a connection's one task reads a head (`client_wire`),
//! hands the request to `Proxy::handle`, and writes the answer's head and
//! a body that came whole in one `write`. Requests are answered in order
//! (pipelining-safe: the next head is read only after the answer).

use super::client_wire::{
    BodyFraming, RequestError, RequestHead, ResponseFraming, h2_preface, parse_request_head,
    write_chunk, write_last_chunk, write_response_head,
};
use super::http1_wire::{ChunkedDecoder, Decoded};
use super::server::{Body, ClientBody, Peer, Proxy, Reply};
use super::target::InFlight;
use super::upstream::BoxError;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Read buffer of a connection; grown for a larger head or body.
const READ_CHUNK: usize = 8 * 1024;
/// A connection that starts no request for this long is closed (nginx's
/// `keepalive_timeout` default). A request being held is not idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Response bytes gathered before they are written.
const WRITE_CHUNK: usize = 64 * 1024;

/// Accepts connections on `listener` and serves them through the proxy,
/// until `stop` turns true (the listener closes; open connections go on).
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(proxy.clone(), stream, peer));
    }
}

async fn serve_connection(proxy: Arc<Proxy>, mut stream: TcpStream, peer: SocketAddr) {
    let peer = Peer::new(peer);
    let mut read = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match h2_preface(&read) {
            Some(true) => return serve_h2(proxy, Prefixed::new(read.freeze(), stream), peer).await,
            Some(false) => {}
            None => break,
        }
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read_buf(&mut read)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
    let mut conn = Connection {
        proxy,
        peer,
        stream,
        read,
        write: Vec::with_capacity(READ_CHUNK),
        idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
        served: 0,
        served_at_last_look: 0,
    };
    conn.run().await;
}

async fn serve_h2(proxy: Arc<Proxy>, io: Prefixed, peer: Peer) {
    let svc = hyper::service::service_fn(move |req| {
        let (proxy, peer) = (proxy.clone(), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(proxy.handle_hyper(req, peer).await) }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// What a connection does after an answer.
enum Next {
    KeepAlive,
    Close,
}

struct Connection {
    proxy: Arc<Proxy>,
    peer: Peer,
    stream: TcpStream,
    /// Bytes read ahead: the rest of a head, a body, a pipelined request.
    read: BytesMut,
    /// The answer being written.
    write: Vec<u8>,
    /// Fires every `IDLE_TIMEOUT` while a head is awaited; the connection
    /// closes when no request started since the last time. One timer per
    /// connection: a timeout per read put a timer entry in and out of the
    /// runtime's wheel for every request.
    idle: Pin<Box<tokio::time::Sleep>>,
    served: u64,
    served_at_last_look: u64,
}

impl Connection {
    async fn run(&mut self) {
        loop {
            let head = match self.read_head().await {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(e) => {
                    let _ = self.refuse(e.status(), &e.to_string()).await;
                    return;
                }
            };
            match self.serve(head).await {
                Ok(Next::KeepAlive) => continue,
                Ok(Next::Close) | Err(_) => return,
            }
        }
    }

    /// The next request head; `None` when the client closed or went idle
    /// between requests (nothing to answer).
    async fn read_head(&mut self) -> Result<Option<RequestHead>, RequestError> {
        loop {
            if !self.read.is_empty()
                && let Some(head) = parse_request_head(&mut self.read)?
            {
                self.served += 1;
                return Ok(Some(head));
            }
            self.read.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.read) => r,
                _ = self.idle.as_mut() => {
                    if self.served == self.served_at_last_look {
                        return Ok(None);
                    }
                    self.served_at_last_look = self.served;
                    let next = tokio::time::Instant::now() + IDLE_TIMEOUT;
                    self.idle.as_mut().reset(next);
                    continue;
                }
            };
            match read {
                Ok(n) if n > 0 => {}
                _ => return Ok(None),
            }
        }
    }

    /// Answers before the connection closes, for a head that could not be
    /// read (the proxy's own plain-text answer, as for no target).
    async fn refuse(&mut self, status: StatusCode, why: &str) -> io::Result<()> {
        let answer = super::server::plain(status, why);
        let conn = (false, false);
        write_reply(
            &mut self.stream,
            &mut self.write,
            answer,
            &Method::GET,
            conn,
        )
        .await?;
        Ok(())
    }

    async fn serve(&mut self, head: RequestHead) -> io::Result<Next> {
        let RequestHead {
            parts,
            framing,
            keep_alive,
            expect_continue,
            upgrade,
        } = head;
        let method = parts.method.clone();
        let http10 = parts.version == hyper::Version::HTTP_10;
        let small = match framing {
            BodyFraming::Length(n) => n <= super::server::RETRY_BUFFER,
            BodyFraming::Chunked => false,
        };
        if expect_continue && !matches!(framing, BodyFraming::Length(0)) && self.read.is_empty() {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        if upgrade && !small {
            // The body of an upgrade is held whole (nothing may follow it
            // before the switch): bounded like any held body.
            let why = "an upgrade request with a chunked body or one over 1 MiB";
            self.refuse(StatusCode::PAYLOAD_TOO_LARGE, why).await?;
            return Ok(Next::Close);
        }
        if let (true, BodyFraming::Length(n)) = (small, framing) {
            let body = self.read_whole(n).await?;
            let reply = self
                .proxy
                .handle(parts, ClientBody::Whole(body), &self.peer, upgrade)
                .await;
            return self.answer(reply, &method, (keep_alive, http10)).await;
        }
        self.serve_streaming(parts, framing, &method, (keep_alive, http10))
            .await
    }

    /// Reads a body of `n` bytes that fits in memory.
    async fn read_whole(&mut self, n: u64) -> io::Result<Bytes> {
        let n = n as usize;
        while self.read.len() < n {
            self.read.reserve(n - self.read.len());
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.read.split_to(n).freeze())
    }

    /// A body too large to hold (or of unknown length) goes on as it
    /// arrives, while the answer may already be coming back.
    async fn serve_streaming(
        &mut self,
        parts: hyper::http::request::Parts,
        framing: BodyFraming,
        method: &Method,
        conn: (bool, bool),
    ) -> io::Result<Next> {
        let (tx, rx) = mpsc::channel(4);
        let len = match framing {
            BodyFraming::Length(n) => Some(n),
            BodyFraming::Chunked => None,
        };
        let body = Incoming { rx, len }.boxed();
        let Connection {
            proxy,
            peer,
            stream,
            read,
            write,
            ..
        } = self;
        let (mut rd, mut wr) = stream.split();
        let handled = proxy.handle(parts, ClientBody::Streaming(body, len), peer, false);
        let pump = pump_body(&mut rd, read, framing, tx);
        tokio::pin!(handled, pump);
        let mut whole_body_read = None;
        let reply = loop {
            tokio::select! {
                r = &mut handled => break r,
                p = &mut pump, if whole_body_read.is_none() => whole_body_read = Some(p),
            }
        };
        // Without an upgrade asked there is no tunnel.
        let reply = reply.response;
        let written = match whole_body_read {
            Some(_) => write_reply(&mut wr, write, reply, method, conn).await,
            None => {
                let (w, p) = tokio::join!(write_reply(&mut wr, write, reply, method, conn), pump);
                whole_body_read = Some(p);
                w
            }
        };
        // Body bytes left unread would be taken for the next request.
        match (written?, whole_body_read) {
            (Next::KeepAlive, Some(true)) => Ok(Next::KeepAlive),
            _ => Ok(Next::Close),
        }
    }

    /// Writes the answer; after a 101, the connection becomes a tunnel to
    /// the target until either side closes or the drain cuts it.
    async fn answer(
        &mut self,
        reply: Reply,
        method: &Method,
        conn: (bool, bool),
    ) -> io::Result<Next> {
        let Reply { response, tunnel } = reply;
        let next = write_reply(&mut self.stream, &mut self.write, response, method, conn).await?;
        let Some((backend, guard)) = tunnel else {
            return Ok(next);
        };
        self.tunnel(backend, guard).await;
        Ok(Next::Close)
    }

    async fn tunnel(&mut self, backend: hyper::upgrade::OnUpgrade, guard: InFlight) {
        let Ok(upgraded) = backend.await else {
            return;
        };
        let mut backend = TokioIo::new(upgraded);
        // What the client sent right after its handshake.
        if !self.read.is_empty() && backend.write_all(&self.read).await.is_err() {
            return;
        }
        self.read.clear();
        let target = guard.0.clone();
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut self.stream, &mut backend) => {}
            _ = target.cancel.notified() => {}
        }
        drop(guard);
    }
}

/// Reads a streamed request body off the connection into `tx`; true when
/// it was read to its end (the connection can carry another request).
async fn pump_body(
    rd: &mut tokio::net::tcp::ReadHalf<'_>,
    read: &mut BytesMut,
    framing: BodyFraming,
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
) -> bool {
    let mut left = match framing {
        BodyFraming::Length(n) => Some(n),
        BodyFraming::Chunked => None,
    };
    let mut decoder = ChunkedDecoder::default();
    loop {
        // Frames from what is already read.
        let frame = match &mut left {
            Some(0) => return true,
            Some(n) if !read.is_empty() => {
                let take = (read.len() as u64).min(*n) as usize;
                *n -= take as u64;
                Some(Frame::data(read.split_to(take).freeze()))
            }
            Some(_) => None,
            None => match decoder.next(read) {
                Ok(Some(Decoded::Data(d))) => Some(Frame::data(d)),
                Ok(Some(Decoded::Trailers(t))) => Some(Frame::trailers(t)),
                Ok(Some(Decoded::End)) => return true,
                Ok(None) => None,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return false;
                }
            },
        };
        if let Some(frame) = frame {
            if tx.send(Ok(frame)).await.is_err() {
                // The target stopped reading it (it answered early).
                return false;
            }
            continue;
        }
        read.reserve(READ_CHUNK);
        let got = tokio::select! {
            r = rd.read_buf(read) => r,
            _ = tx.closed() => return false,
        };
        match got {
            Ok(n) if n > 0 => {}
            _ => {
                let cut: BoxError = "the client's request body was cut short".into();
                let _ = tx.send(Err(cut)).await;
                return false;
            }
        }
    }
}

/// Writes a response: its head and, when the body comes whole, the body in
/// the same write.
async fn write_reply<W: AsyncWrite + Unpin>(
    out: &mut W,
    buf: &mut Vec<u8>,
    response: Response<Body>,
    method: &Method,
    (keep_alive, http10): (bool, bool),
) -> io::Result<Next> {
    let (parts, mut body) = response.into_parts();
    let framing = ResponseFraming::choose(method, parts.status, body.size_hint().exact(), http10);
    let keep_alive = keep_alive && framing != ResponseFraming::UntilClose;
    buf.clear();
    write_response_head(
        buf,
        (parts.status, &parts.headers),
        framing,
        (keep_alive, http10),
    );
    let mut intact = true;
    if framing != ResponseFraming::Bodiless {
        let mut sent = 0u64;
        let mut trailers = None;
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(_)) => {
                    // The target's answer broke off: the client sees a
                    // body cut short and the connection closes.
                    intact = false;
                    break;
                }
            };
            let data = match frame.into_data() {
                Ok(d) => d,
                Err(f) => {
                    trailers = f.into_trailers().ok();
                    continue;
                }
            };
            sent += data.len() as u64;
            if framing == ResponseFraming::Chunked {
                write_chunk(buf, &data);
            } else if data.len() >= WRITE_CHUNK {
                out.write_all(buf).await?;
                buf.clear();
                out.write_all(&data).await?;
                continue;
            } else {
                buf.extend_from_slice(&data);
            }
            if buf.len() >= WRITE_CHUNK {
                out.write_all(buf).await?;
                buf.clear();
            }
        }
        match framing {
            ResponseFraming::Chunked if intact => write_last_chunk(buf, trailers.as_ref()),
            ResponseFraming::Length(n) if sent != n => intact = false,
            _ => {}
        }
    }
    out.write_all(buf).await?;
    Ok(if keep_alive && intact {
        Next::KeepAlive
    } else {
        Next::Close
    })
}

/// A streamed request body, fed by `pump_body`.
struct Incoming {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    len: Option<u64>,
}

impl hyper::body::Body for Incoming {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
    fn size_hint(&self) -> SizeHint {
        self.len
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A connection whose first bytes were read to tell its protocol: they are
/// read again first.
struct Prefixed {
    prefix: Bytes,
    inner: TcpStream,
}

impl Prefixed {
    fn new(prefix: Bytes, inner: TcpStream) -> Prefixed {
        Prefixed { prefix, inner }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::proxy::table::{ReleaseRoute, RouteTable};
    use tokio::net::TcpListener;

    /// A proxy on a free port routing everything to `target`.
    async fn proxy_to(target: SocketAddr) -> SocketAddr {
        let mut table = RouteTable::new("web");
        table.releases = vec![ReleaseRoute {
            release: "v1".into(),
            weight: 100,
            targets: vec![target.to_string()],
        }];
        let proxy = Proxy::new(table, None);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _keep_open = tx;
            serve(proxy, listener, rx).await
        });
        addr
    }

    /// A target that handles each connection with `each`.
    async fn target<F, Fut>(each: F) -> SocketAddr
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(each(s));
            }
        });
        addr
    }

    /// Reads up to the end of a head; returns it and what came after.
    async fn read_head(s: &mut TcpStream, seen: &mut Vec<u8>) -> String {
        loop {
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = seen.drain(..end + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).await.unwrap();
            assert!(n > 0, "closed before a whole head: {seen:?}");
            seen.extend_from_slice(&b[..n]);
        }
    }

    async fn read_exactly(s: &mut TcpStream, seen: &mut Vec<u8>, n: usize) -> Vec<u8> {
        while seen.len() < n {
            let mut b = [0u8; 4096];
            let got = s.read(&mut b).await.unwrap();
            assert!(got > 0, "closed early");
            seen.extend_from_slice(&b[..got]);
        }
        seen.drain(..n).collect()
    }

    #[tokio::test]
    async fn an_upgrade_becomes_a_tunnel_carrying_bytes_sent_with_the_handshake() {
        let echo = target(|mut s| async move {
            let mut seen = Vec::new();
            read_head(&mut s, &mut seen).await;
            s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
            s.write_all(&seen).await.unwrap();
            let mut b = [0u8; 1024];
            while let Ok(n) = s.read(&mut b).await {
                if n == 0 || s.write_all(&b[..n]).await.is_err() {
                    break;
                }
            }
        })
        .await;
        let mut c = TcpStream::connect(proxy_to(echo).await).await.unwrap();
        c.write_all(
            b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nhello",
        )
        .await
        .unwrap();
        let mut seen = Vec::new();
        let head = read_head(&mut c, &mut seen).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        assert_eq!(read_exactly(&mut c, &mut seen, 5).await, b"hello");
        c.write_all(b"more").await.unwrap();
        assert_eq!(read_exactly(&mut c, &mut seen, 4).await, b"more");
    }

    #[tokio::test]
    async fn an_upgrade_with_a_body_too_large_to_hold_is_refused() {
        let never = target(|_s| async move {}).await;
        let mut c = TcpStream::connect(proxy_to(never).await).await.unwrap();
        c.write_all(b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: echo\r\ncontent-length: 99999999999\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut c, &mut Vec::new()).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }

    /// A target that answers each request with the number of body bytes
    /// it read (hyper's server, which frames bodies itself).
    async fn counting_target() -> SocketAddr {
        target(|s| async move {
            let svc = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let n = req.into_body().collect().await.unwrap().to_bytes().len();
                    Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                        Bytes::from(n.to_string()),
                    )))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        })
        .await
    }

    #[tokio::test]
    async fn a_large_upload_streams_through_and_the_connection_serves_the_next_request() {
        let proxy = proxy_to(counting_target().await).await;
        let mut c = TcpStream::connect(proxy).await.unwrap();
        let size = 3 * 1024 * 1024 + 7;
        let head = format!("POST /up HTTP/1.1\r\nhost: a\r\ncontent-length: {size}\r\n\r\n");
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(&vec![b'x'; size]).await.unwrap();
        // A chunked upload next, pipelined behind it.
        c.write_all(b"POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        for want in [size.to_string(), "7".to_string()] {
            let head = read_head(&mut c, &mut seen).await;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let body = read_exactly(&mut c, &mut seen, want.len()).await;
            assert_eq!(String::from_utf8(body).unwrap(), want);
        }
    }

    #[tokio::test]
    async fn a_chunked_answer_reaches_the_client_chunked_with_its_trailers() {
        let chunked = target(|mut s| async move {
            let mut seen = Vec::new();
            read_head(&mut s, &mut seen).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n")
                .await
                .unwrap();
        })
        .await;
        let mut c = TcpStream::connect(proxy_to(chunked).await).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nte: trailers\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let head = read_head(&mut c, &mut seen).await;
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        let want = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n";
        assert_eq!(read_exactly(&mut c, &mut seen, want.len()).await, want);
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_and_a_bad_head_gets_400() {
        let proxy = proxy_to(counting_target().await).await;
        let mut c = TcpStream::connect(proxy).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\n\r\nxPOST / HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nxxGET / HTTP/1.1\r\nBad Name: x\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        for want in [b"1", b"2"] {
            read_head(&mut c, &mut seen).await;
            assert_eq!(read_exactly(&mut c, &mut seen, 1).await, want);
        }
        let head = read_head(&mut c, &mut seen).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
    }
}
