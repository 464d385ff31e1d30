//! HTTP/1.1 on the wire between clients and the proxy (RFC 9112): the
//! request head read with `httparse`, how its body is framed, and the
//! response head written back. Pure: `client_http1.rs` does the IO.

use super::http1_wire::{SPANS, Span, span_of};
use bytes::{Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode, Uri, Version};
use std::io::Write as _;
use std::mem::MaybeUninit;

/// A request head larger than this is refused with 431, as nginx's
/// `large_client_header_buffers` refuses one over its buffers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header lines read per request head.
const MAX_HEADERS: usize = 128;

/// Why a request head was refused; each maps to the status answered
/// before the connection closes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("request head over {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("ambiguous request body framing: {0}")]
    Framing(&'static str),
    #[error("CONNECT is not served by this proxy")]
    Connect,
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestError::Connect => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::Malformed(_) | RequestError::Framing(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// How the end of a request body is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub struct RequestHead {
    pub parts: Parts,
    pub framing: BodyFraming,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a go-ahead.
    pub expect_continue: bool,
    /// `Upgrade` named in `Connection` (a WebSocket handshake, say).
    pub upgrade: bool,
}

/// Takes a complete request head off the front of `buf`: `Ok(None)`
/// while it is incomplete. Header values and the target are slices of
/// the head's own bytes, not copies.
pub fn parse_request_head(buf: &mut BytesMut) -> Result<Option<RequestHead>, RequestError> {
    // Uninitialised: zeroing 128 header slots per request showed in the
    // profile.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let used = match parsed.parse_with_uninit_headers(buf, &mut slots) {
        // The same limit whether the head came whole or in pieces.
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
            return Err(RequestError::TooLarge);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(RequestError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let base = buf.as_ptr();
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| RequestError::Malformed("method".into()))?;
    if method == Method::CONNECT {
        return Err(RequestError::Connect);
    }
    let target = span_of(base, parsed.path.unwrap_or_default().as_bytes());
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut spans = SPANS.take();
    spans.clear();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut upgrade_token = false;
    let mut has_upgrade = false;
    let mut expect_continue = false;
    let mut transfer_encoding: Option<bool> = None;
    let mut length: Option<u64> = None;
    for h in parsed.headers.iter() {
        spans.push(Span {
            name: span_of(base, h.name.as_bytes()),
            value: span_of(base, h.value),
        });
        let name = h.name;
        let value = || std::str::from_utf8(h.value).unwrap_or("");
        if name.eq_ignore_ascii_case("content-length") {
            for v in value().split(',') {
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| RequestError::Framing("Content-Length is not a number"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(RequestError::Framing("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // A request body is chunked only when `chunked` is the final
            // coding; anything else cannot be framed (§6.3 item 4).
            let last_chunked = value()
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            transfer_encoding = Some(last_chunked);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value().split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
                upgrade_token |= token.eq_ignore_ascii_case("upgrade");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            has_upgrade = true;
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value().trim().eq_ignore_ascii_case("100-continue");
        }
    }
    let framing = match (transfer_encoding, length) {
        // Both at once is how requests are smuggled past a proxy that
        // reads one and a server that reads the other: refused, as
        // RFC 9112 §6.3 allows.
        (Some(_), Some(_)) => {
            return Err(RequestError::Framing(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        (Some(true), None) => BodyFraming::Chunked,
        (Some(false), None) => {
            return Err(RequestError::Framing(
                "Transfer-Encoding without final chunked",
            ));
        }
        (None, n) => BodyFraming::Length(n.unwrap_or(0)),
    };
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_token);
    let head = buf.split_to(used).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|e| RequestError::Malformed(format!("request target: {e}")))?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    let built: Result<(), RequestError> = spans.iter().try_for_each(|span| {
        let name = HeaderName::from_bytes(&head[span.name.0..span.name.1])
            .map_err(|_| RequestError::Malformed("header name".into()))?;
        let value = HeaderValue::from_maybe_shared(head.slice(span.value.0..span.value.1))
            .map_err(|_| RequestError::Malformed(format!("value of {name}")))?;
        headers.append(name, value);
        Ok(())
    });
    SPANS.set(spans);
    built?;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expect_continue,
        upgrade: has_upgrade && upgrade_token,
    }))
}

/// How the proxy frames the response body it writes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body follows (an answer to HEAD, a 1xx, 204 or 304): the
    /// target's own `content-length` is passed on as it is.
    Bodiless,
    Length(u64),
    Chunked,
    /// Until the proxy closes the connection (an HTTP/1.0 client and a
    /// body of unknown length).
    UntilClose,
}

impl ResponseFraming {
    /// The framing for a response of `status` with a body of `len` bytes
    /// (`None`: unknown until it ends), to a request of `method`.
    pub fn choose(method: &Method, status: StatusCode, len: Option<u64>, http10: bool) -> Self {
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            ResponseFraming::Bodiless
        } else {
            match (len, http10) {
                (Some(n), _) => ResponseFraming::Length(n),
                (None, false) => ResponseFraming::Chunked,
                (None, true) => ResponseFraming::UntilClose,
            }
        }
    }
}

/// Writes a response head into `out` (appended), with the current date
/// when the target sent none (RFC 9110 §6.6.1). `keep_alive` is what this
/// connection does next: an HTTP/1.0 client is told it stays open, an
/// HTTP/1.1 client that it closes.
pub fn write_response_head(
    out: &mut Vec<u8>,
    (status, headers): (StatusCode, &HeaderMap),
    framing: ResponseFraming,
    (keep_alive, http10): (bool, bool),
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut dated = false;
    for (name, value) in headers {
        dated |= *name == header::DATE;
        let framing_header = *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING;
        // A 101 keeps the target's `connection: upgrade`: the client's
        // WebSocket library checks it. Otherwise the connection is the
        // proxy's own to describe (hyper's client, used for streamed
        // uploads, passes the target's on).
        let own_connection =
            !upgrade && (*name == header::CONNECTION || name.as_str() == "keep-alive");
        if (framing_header && framing != ResponseFraming::Bodiless) || own_connection {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(&http_date());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ResponseFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::Bodiless | ResponseFraming::UntilClose => {}
    }
    if !upgrade {
        match (keep_alive, http10) {
            (true, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
            (false, false) => out.extend_from_slice(b"connection: close\r\n"),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (an empty one would end it, so it
/// is skipped).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    // Written in place: no string per chunk.
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the end of a chunked body with its trailer fields.
pub fn write_last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113
/// §3.4), which gRPC clients and h2c load balancers send.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `start` (the connection's first bytes) is, or may still become,
/// the HTTP/2 preface: `Some(true)` once it is whole.
pub fn h2_preface(start: &[u8]) -> Option<bool> {
    let n = start.len().min(H2_PREFACE.len());
    (start[..n] == H2_PREFACE[..n]).then_some(n == H2_PREFACE.len())
}

/// The current date as HTTP writes it, made at most once a second per
/// thread.
pub fn http_date() -> Bytes {
    use std::cell::RefCell;
    use std::time::SystemTime;
    thread_local! {
        static CACHED: RefCell<(u64, Bytes)> = const { RefCell::new((u64::MAX, Bytes::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = Bytes::from(httpdate::fmt_http_date(now));
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, RequestError> {
        parse_request_head(&mut BytesMut::from(text))
    }

    #[test]
    fn a_request_head_is_read_with_its_framing_and_the_rest_stays() {
        let mut buf = BytesMut::from(
            "POST /api/items?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nX-Trace: a\r\n\r\nhelloGET",
        );
        let head = parse_request_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/api/items?x=1");
        assert_eq!(head.parts.headers["host"], "shop");
        assert_eq!(head.parts.headers["x-trace"], "a");
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(head.keep_alive && !head.upgrade && !head.expect_continue);
        assert_eq!(&buf[..], b"helloGET");
    }

    #[test]
    fn an_incomplete_head_waits_and_a_huge_one_is_refused() {
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big).unwrap_err(), RequestError::TooLarge);
        let whole = format!("{big}\r\n");
        assert_eq!(parse(&whole).unwrap_err(), RequestError::TooLarge);
        assert_eq!(parse(&whole).unwrap_err().status(), 431);
    }

    #[test]
    fn ambiguous_or_unframable_bodies_are_refused() {
        let both = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert!(matches!(parse(both), Err(RequestError::Framing(_))));
        let gzip_only = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert!(matches!(parse(gzip_only), Err(RequestError::Framing(_))));
        let two_lengths = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert!(matches!(parse(two_lengths), Err(RequestError::Framing(_))));
        let same_twice = "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(
            parse(same_twice).unwrap().unwrap().framing,
            BodyFraming::Length(3)
        );
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(
            parse(chunked).unwrap().unwrap().framing,
            BodyFraming::Chunked
        );
        let bad_name = "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n";
        assert_eq!(parse(bad_name).unwrap_err().status(), 400);
        let connect = "CONNECT db:5432 HTTP/1.1\r\n\r\n";
        assert_eq!(parse(connect).unwrap_err().status(), 405);
    }

    #[test]
    fn keep_alive_upgrade_and_expect_follow_the_connection_headers() {
        let h = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let ws =
            "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert!(parse(ws).unwrap().unwrap().upgrade);
        let no_token = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert!(!parse(no_token).unwrap().unwrap().upgrade);
        let e = "PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n";
        assert!(parse(e).unwrap().unwrap().expect_continue);
    }

    fn head_text(
        status: u16,
        headers: &[(&str, &str)],
        framing: ResponseFraming,
        conn: (bool, bool),
    ) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        let status = StatusCode::from_u16(status).unwrap();
        write_response_head(&mut out, (status, &map), framing, conn);
        let text = String::from_utf8(out).unwrap();
        // The date is the proxy's own clock's: shown as DATE.
        let date = String::from_utf8(http_date().to_vec()).unwrap();
        text.replace(&date, "DATE")
    }

    #[test]
    fn a_response_head_carries_the_proxy_s_own_framing() {
        let h = head_text(
            200,
            &[
                ("content-length", "99"),
                ("keep-alive", "timeout=5"),
                ("x-app", "v1"),
            ],
            ResponseFraming::Length(2),
            (true, false),
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\nx-app: v1\r\ndate: DATE\r\ncontent-length: 2\r\n\r\n"
        );
        let h = head_text(
            200,
            &[("date", "then")],
            ResponseFraming::Chunked,
            (false, false),
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: then\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        // A HEAD answer keeps the length of the body it did not send.
        let h = head_text(
            200,
            &[("content-length", "3000000")],
            ResponseFraming::Bodiless,
            (true, true),
        );
        assert!(h.contains("content-length: 3000000\r\n"), "{h}");
        assert!(h.contains("connection: keep-alive\r\n"), "{h}");
        let h = head_text(
            101,
            &[("upgrade", "websocket"), ("connection", "upgrade")],
            ResponseFraming::Bodiless,
            (true, false),
        );
        assert!(h.contains("upgrade: websocket\r\n"), "{h}");
        assert!(h.contains("connection: upgrade\r\n"), "{h}");
        assert_eq!(h.matches("connection").count(), 1, "{h}");
    }

    #[test]
    fn framing_follows_method_status_length_and_version() {
        use ResponseFraming::*;
        let ok = StatusCode::OK;
        assert_eq!(
            ResponseFraming::choose(&Method::HEAD, ok, Some(9), false),
            Bodiless
        );
        let nc = StatusCode::NOT_MODIFIED;
        assert_eq!(
            ResponseFraming::choose(&Method::GET, nc, None, false),
            Bodiless
        );
        assert_eq!(
            ResponseFraming::choose(&Method::GET, ok, Some(9), false),
            Length(9)
        );
        assert_eq!(
            ResponseFraming::choose(&Method::GET, ok, None, false),
            Chunked
        );
        assert_eq!(
            ResponseFraming::choose(&Method::GET, ok, None, true),
            UntilClose
        );
    }

    #[test]
    fn chunks_and_trailers_are_written_in_the_wire_format() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"hello world, and more!");
        write_chunk(&mut out, b"");
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        write_last_chunk(&mut out, Some(&t));
        assert_eq!(
            out,
            b"16\r\nhello world, and more!\r\n0\r\ngrpc-status: 0\r\n\r\n"
        );
    }

    #[test]
    fn the_http2_preface_is_told_apart_byte_by_byte() {
        assert_eq!(h2_preface(b"PRI * HT"), Some(false));
        assert_eq!(h2_preface(H2_PREFACE), Some(true));
        assert_eq!(h2_preface(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(h2_preface(b"P"), Some(false));
        assert_eq!(h2_preface(b"POST / HTTP/1.1\r\n"), None);
    }

    proptest! {
        /// Any bytes parse or fail without panic, and a head that parses
        /// never takes more bytes than it was given.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&bytes[..]);
            if let Ok(Some(_)) = parse_request_head(&mut buf) {
                prop_assert!(buf.len() < bytes.len());
            }
        }

        /// A head parses the same whether it arrived whole or in two
        /// pieces (the first incomplete).
        #[test]
        fn a_head_split_anywhere_parses_the_same(split in 1usize..60, value in "[a-z0-9]{1,20}") {
            let text = format!("GET /p?q={value} HTTP/1.1\r\nHost: h\r\nX-V: {value}\r\n\r\n");
            let split = split.min(text.len() - 1);
            let mut buf = BytesMut::from(&text.as_bytes()[..split]);
            prop_assert!(parse_request_head(&mut buf).unwrap().is_none());
            buf.extend_from_slice(&text.as_bytes()[split..]);
            let head = parse_request_head(&mut buf).unwrap().unwrap();
            prop_assert_eq!(head.parts.headers["x-v"].to_str().unwrap(), value.as_str());
            prop_assert!(buf.is_empty());
        }
    }
}
