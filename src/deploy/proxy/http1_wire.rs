//! HTTP/1.1 on the wire between the proxy and its targets (RFC 9112):
//! the request head it writes, the response head it reads (`httparse`),
//! how the response body is framed, and chunked decoding. Pure: the
//! pooled client in `upstream_http1.rs` does the IO.

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

/// A response head larger than this is refused (hyper's default limit
/// for the client side is of the same order).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header lines read per response head or trailer section.
const MAX_HEADERS: usize = 128;
/// A chunk-size line (with extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4096;

/// Why a target's answer could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("malformed response head: {0}")]
    Head(String),
    #[error("response head over {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("conflicting Content-Length values")]
    ConflictingLength,
    #[error("malformed chunked body: {0}")]
    Chunk(&'static str),
}

/// How the end of a response body is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: an answer to HEAD, or a 1xx, 204 or 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the target closes the connection.
    UntilClose,
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// End-to-end headers only: hop-by-hop ones are the proxy's own.
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this answer.
    pub keep_alive: bool,
}

/// Headers a proxy never forwards (RFC 9110 §7.6.1), besides those the
/// `connection` header names.
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Methods whose empty body needs no `content-length: 0`, as hyper and
/// curl send them.
fn bodiless_by_default(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Writes the request head for `body_len` bytes of body into `out`
/// (cleared first). `headers` are already end-to-end; HTTP/1.1 requires a
/// `host`, so a request without one (from an HTTP/1.0 client) names
/// `addr`, as nginx names its upstream. The length is the proxy's own
/// (the client's may have been chunked), and `expect` is dropped since the
/// whole body is sent at once.
pub fn write_request_head(
    out: &mut Vec<u8>,
    (method, target, addr): (&Method, &str, &str),
    headers: &HeaderMap,
    body_len: usize,
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(addr.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::EXPECT {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || !bodiless_by_default(method) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Where a header's name and value lie in a head's bytes, so that the
/// values can be slices of the head once it is split off (no copy each).
#[derive(Clone, Copy, Default)]
pub(super) struct Span {
    pub name: (usize, usize),
    pub value: (usize, usize),
}

thread_local! {
    /// Reused for every head parsed on this thread (taken, filled, put
    /// back: the parsers never nest).
    pub(super) static SPANS: std::cell::Cell<Vec<Span>> = const { std::cell::Cell::new(Vec::new()) };
}

pub(super) fn span_of(base: *const u8, part: &[u8]) -> (usize, usize) {
    let start = part.as_ptr() as usize - base as usize;
    (start, start + part.len())
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the head and the bytes it took. (A copy of `buf` goes
/// through `take_response_head`, which the proxy itself calls.)
pub fn parse_response_head(
    buf: &[u8],
    request_was_head: bool,
) -> Result<Option<(ResponseHead, usize)>, WireError> {
    let mut owned = BytesMut::from(buf);
    let head = take_response_head(&mut owned, request_was_head)?;
    Ok(head.map(|h| (h, buf.len() - owned.len())))
}

/// Takes a complete response head off the front of `buf`: `Ok(None)`
/// while it is incomplete. Header values are slices of the head's bytes.
pub fn take_response_head(
    buf: &mut BytesMut,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, WireError> {
    // Uninitialised: zeroing the slots per answer showed in the profile.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        // The same limit whether the head came whole or in pieces.
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Head(e.to_string())),
    };
    let code = parsed.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| WireError::Head(format!("status code {code}")))?;
    let http11 = parsed.version == Some(1);
    let base = buf.as_ptr();
    let mut spans = SPANS.take();
    spans.clear();
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut names_hop_headers = false;
    let mut chunked = false;
    let mut has_transfer_encoding = false;
    let mut length: Option<u64> = None;
    for h in parsed.headers.iter() {
        spans.push(Span {
            name: span_of(base, h.name.as_bytes()),
            value: span_of(base, h.value),
        });
        if h.name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value).unwrap_or("").split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    connection_close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    connection_keep_alive = true;
                } else if !token.is_empty() {
                    names_hop_headers = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_transfer_encoding = true;
            // Only a final `chunked` frames the body; anything else reads
            // until close (§6.3 item 4, for responses).
            chunked = std::str::from_utf8(h.value)
                .unwrap_or("")
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for v in std::str::from_utf8(h.value).unwrap_or("").split(',') {
                let Ok(n) = v.trim().parse::<u64>() else {
                    SPANS.set(spans);
                    return Err(WireError::Head("Content-Length is not a number".into()));
                };
                if length.is_some_and(|l| l != n) {
                    SPANS.set(spans);
                    return Err(WireError::ConflictingLength);
                }
                length = Some(n);
            }
        }
    }
    let framing = if request_was_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if has_transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let keep_alive =
        framing != Framing::UntilClose && !connection_close && (http11 || connection_keep_alive);
    let head = buf.split_to(used).freeze();
    let built = headers_from(&head, &spans, names_hop_headers, has_transfer_encoding);
    SPANS.set(spans);
    Ok(Some(ResponseHead {
        status,
        headers: built?,
        framing,
        keep_alive,
    }))
}

/// The end-to-end headers of a response head, values sliced from `head`.
fn headers_from(
    head: &Bytes,
    spans: &[Span],
    names_hop_headers: bool,
    has_transfer_encoding: bool,
) -> Result<HeaderMap, WireError> {
    let text = |(a, b): (usize, usize)| std::str::from_utf8(&head[a..b]).unwrap_or("");
    // Headers the `connection` header names are hop-by-hop too (rare).
    let named_hop: Vec<&str> = if names_hop_headers {
        spans
            .iter()
            .filter(|s| text(s.name).eq_ignore_ascii_case("connection"))
            .flat_map(|s| text(s.value).split(','))
            .map(str::trim)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("close")
                    && !t.eq_ignore_ascii_case("keep-alive")
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut headers = HeaderMap::with_capacity(spans.len());
    for span in spans {
        let raw_name = &head[span.name.0..span.name.1];
        let Ok(name) = HeaderName::from_bytes(raw_name) else {
            return Err(WireError::Head(format!(
                "header name {:?}",
                String::from_utf8_lossy(raw_name)
            )));
        };
        let hop = HOP_BY_HOP.contains(&name)
            || named_hop.iter().any(|t| t.eq_ignore_ascii_case(name.as_str()))
            // A chunked body is framed again by the proxy's server.
            || (name == header::CONTENT_LENGTH && has_transfer_encoding);
        if hop {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(head.slice(span.value.0..span.value.1))
            .map_err(|_| WireError::Head(format!("value of {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// What the chunked decoder found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Decodes a chunked body from a buffer that fills as bytes arrive.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }
}

impl ChunkedDecoder {
    /// The next piece of the body taken from `buf`, or `Ok(None)` when
    /// more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, WireError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    // The same limit whether the line came whole or in pieces.
                    let eol = buf.iter().position(|&b| b == b'\n');
                    if eol.unwrap_or(buf.len()) > MAX_CHUNK_LINE {
                        return Err(WireError::Chunk("chunk-size line too long"));
                    }
                    let Some(eol) = eol else {
                        return Ok(None);
                    };
                    let line = &buf[..eol];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                    let hex = std::str::from_utf8(hex)
                        .map_err(|_| WireError::Chunk("chunk size is not text"))?
                        .trim_matches([' ', '\t']);
                    if hex.is_empty() || hex.len() > 16 {
                        return Err(WireError::Chunk("bad chunk size"));
                    }
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| WireError::Chunk("bad chunk size"))?;
                    buf.advance(eol + 1);
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(n).freeze();
                    self.state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                    return Ok(Some(Decoded::Data(data)));
                }
                ChunkState::DataEnd => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                    } else if buf.starts_with(b"\n") {
                        buf.advance(1);
                    } else if buf.is_empty() || buf[..] == b"\r"[..] {
                        return Ok(None);
                    } else {
                        return Err(WireError::Chunk("chunk not followed by CRLF"));
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let (used, fields) = match httparse::parse_headers(buf, &mut slots) {
                        Ok(httparse::Status::Complete((used, _))) if used > MAX_HEAD_BYTES => {
                            return Err(WireError::Chunk("trailers too large"));
                        }
                        Ok(httparse::Status::Complete(done)) => done,
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                            return Err(WireError::Chunk("trailers too large"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(None),
                        Err(_) => return Err(WireError::Chunk("malformed trailers")),
                    };
                    let mut trailers = HeaderMap::new();
                    for f in fields.iter() {
                        if let (Ok(k), Ok(v)) = (
                            HeaderName::from_bytes(f.name.as_bytes()),
                            HeaderValue::from_bytes(f.value),
                        ) {
                            trailers.append(k, v);
                        }
                    }
                    buf.advance(used);
                    self.state = ChunkState::Done;
                    if !trailers.is_empty() {
                        return Ok(Some(Decoded::Trailers(trailers)));
                    }
                }
                ChunkState::Done => return Ok(Some(Decoded::End)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(text: &str, head_request: bool) -> ResponseHead {
        parse_response_head(text.as_bytes(), head_request)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn the_request_head_carries_the_proxy_s_own_length_and_no_expect() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("web:8080"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let mut out = Vec::new();
        write_request_head(&mut out, (&Method::POST, "/a?b=1", "10.0.1.5:80"), &h, 3);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: web:8080\r\nx-forwarded-for: 10.0.0.1\r\n\
             content-length: 3\r\n\r\n"
        );
        let none = HeaderMap::new();
        write_request_head(&mut out, (&Method::GET, "/", "10.0.1.5:80"), &none, 0);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: 10.0.1.5:80\r\n\r\n");
        write_request_head(&mut out, (&Method::PUT, "/", "10.0.1.5:80"), &none, 0);
        assert_eq!(
            out,
            b"PUT / HTTP/1.1\r\nhost: 10.0.1.5:80\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn a_response_is_framed_as_rfc_9112_says() {
        let r = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false);
        assert_eq!((r.framing, r.keep_alive), (Framing::Length(5), true));
        assert_eq!(r.headers[header::CONTENT_LENGTH], "5");
        let r = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(r.framing, Framing::Empty);
        let r = head(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(r.framing, Framing::Empty);
        // Transfer-Encoding wins over Content-Length, which is dropped.
        let r = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.keep_alive), (Framing::Chunked, true));
        assert!(r.headers.is_empty());
        let r = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert_eq!((r.framing, r.keep_alive), (Framing::UntilClose, false));
        let r = head("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((r.framing, r.keep_alive), (Framing::UntilClose, false));
        let r = head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", false);
        assert_eq!(r.framing, Framing::Length(5));
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", false)
                .unwrap_err(),
            WireError::ConflictingLength
        );
    }

    #[test]
    fn connection_headers_decide_reuse_and_are_not_forwarded() {
        let r = head(
            "HTTP/1.1 200 OK\r\nConnection: close, X-Trace\r\nX-Trace: 1\r\nKeep-Alive: timeout=5\r\n\
             X-App: v1\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(!r.keep_alive);
        let names: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-app", "content-length"]);
        let r = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(!r.keep_alive);
        let r = head(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(r.keep_alive);
    }

    #[test]
    fn an_incomplete_head_waits_and_a_huge_one_is_refused() {
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n", false)
                .unwrap()
                .is_none()
        );
        let mut big = b"HTTP/1.1 200 OK\r\nX-A: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(
            parse_response_head(&big, false).unwrap_err(),
            WireError::HeadTooLarge
        );
        assert!(matches!(
            parse_response_head(b"HTTX/1.1 200\r\n\r\n", false),
            Err(WireError::Head(_))
        ));
    }

    /// Feeds `wire` to a decoder `step` bytes at a time; returns the body,
    /// the trailers and whether the end was seen.
    fn decode_in_steps(wire: &[u8], step: usize) -> Result<(Vec<u8>, HeaderMap, bool), WireError> {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut trailers = HeaderMap::new();
        let mut fed = 0;
        loop {
            match d.next(&mut buf)? {
                Some(Decoded::Data(b)) => body.extend_from_slice(&b),
                Some(Decoded::Trailers(t)) => trailers = t,
                Some(Decoded::End) => return Ok((body, trailers, true)),
                None if fed == wire.len() => return Ok((body, trailers, false)),
                None => {
                    let n = step.min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers_decodes() {
        let wire = b"5;name=v\r\nhello\r\n1\r\n!\r\n0\r\ngrpc-status: 0\r\n\r\n";
        let (body, trailers, end) = decode_in_steps(wire, 1).unwrap();
        assert_eq!(body, b"hello!");
        assert_eq!(trailers["grpc-status"], "0");
        assert!(end);
        let (_, _, end) = decode_in_steps(b"3\r\nabc\r\n", 100).unwrap();
        assert!(!end, "no last chunk yet");
        assert!(decode_in_steps(b"zz\r\n", 100).is_err());
        assert!(decode_in_steps(b"3\r\nabcXX", 100).is_err());
        assert!(decode_in_steps(b"11111111111111111\r\n", 100).is_err());
    }

    fn encode_chunked(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = Vec::new();
        for p in pieces.iter().filter(|p| !p.is_empty()) {
            wire.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            wire.extend_from_slice(p);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        wire
    }

    proptest! {
        /// However the bytes arrive, the body comes out whole.
        #[test]
        fn chunked_decoding_does_not_depend_on_how_bytes_arrive(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            step in 1usize..64,
        ) {
            let wire = encode_chunked(&pieces);
            let (body, _, end) = decode_in_steps(&wire, step).unwrap();
            prop_assert!(end);
            prop_assert_eq!(body, pieces.concat());
        }

        /// Any bytes from a target give a head, a wait or an error; never a panic.
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), head in any::<bool>()) {
            let _ = parse_response_head(&bytes, head);
            let _ = decode_in_steps(&bytes, 7);
        }

        /// A well-formed head round-trips its status and end-to-end headers.
        #[test]
        fn a_head_keeps_its_status_and_headers(
            code in 200u16..600,
            values in proptest::collection::vec("[a-zA-Z0-9 ./;=-]{0,20}", 0..6),
        ) {
            let mut text = format!("HTTP/1.1 {code} X\r\n");
            for (i, v) in values.iter().enumerate() {
                text.push_str(&format!("x-h{i}: {v}\r\n"));
            }
            text.push_str("content-length: 0\r\n\r\n");
            let (h, used) = parse_response_head(text.as_bytes(), false).unwrap().unwrap();
            prop_assert_eq!(used, text.len());
            prop_assert_eq!(h.status.as_u16(), code);
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(h.headers[format!("x-h{i}").as_str()].to_str().unwrap(), v.trim());
            }
        }
    }
}
