//! The standard gRPC health check (`grpc.health.v1.Health/Check`), as
//! Kubernetes' `grpc` probe and `grpc_health_probe` call it, so a service
//! imported with a gRPC probe is checked for what it says about itself
//! rather than for an open port: a server that answers `NOT_SERVING`
//! (a dependency down, still warming up) keeps its port open.
//!
//! The two messages are one field each, so they are encoded by hand here
//! (protobuf wire format: <https://protobuf.dev/programming-guides/encoding/>)
//! rather than pulling a code generator into the proxy:
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }`, `SERVING = 1`
//! (<https://github.com/grpc/grpc/blob/master/doc/health-checking.md>).

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request};

pub const PATH: &str = "/grpc.health.v1.Health/Check";

/// The body of a `Check` call: one gRPC message (not compressed) holding
/// the service name; an empty name asks about the server as a whole.
pub fn request_body(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0); // not compressed
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    framed.freeze()
}

/// A `Check` request with any body type; HTTP/2 names the target in
/// `:authority`, set where the request is sent.
pub fn request<B>(body: B) -> Request<B> {
    let mut req = Request::new(body);
    *req.method_mut() = Method::POST;
    *req.uri_mut() = hyper::Uri::from_static(PATH);
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static("deployment-manager-proxy health check"),
    );
    req
}

/// What a server answered, as gRPC defines it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Serving,
    /// `NOT_SERVING`, `UNKNOWN` or `SERVICE_UNKNOWN`: the number it sent.
    NotServing(u64),
    /// The call itself failed: `grpc-status` and its message.
    CallFailed(String),
    /// Not a gRPC answer at all.
    Malformed(String),
}

impl Verdict {
    pub fn into_result(self) -> Result<(), String> {
        match self {
            Verdict::Serving => Ok(()),
            Verdict::NotServing(n) => Err(format!(
                "gRPC health answered {} ({n})",
                match n {
                    0 => "UNKNOWN",
                    2 => "NOT_SERVING",
                    3 => "SERVICE_UNKNOWN",
                    _ => "an unknown status",
                }
            )),
            Verdict::CallFailed(why) => Err(format!("gRPC health call failed: {why}")),
            Verdict::Malformed(why) => Err(format!("not a gRPC health answer: {why}")),
        }
    }
}

/// Reads an answer: `grpc-status` is in the trailers, or in the headers
/// when the server answered with trailers only (an error before any
/// message, such as `UNIMPLEMENTED` from a server without the service).
pub fn verdict(headers: &HeaderMap, body: &[u8], trailers: Option<&HeaderMap>) -> Verdict {
    let status = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"));
    let Some(status) = status else {
        return Verdict::Malformed("no grpc-status".into());
    };
    if status != "0" {
        let message = trailers
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| headers.get("grpc-message"))
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        let code = status.to_str().unwrap_or("?");
        return Verdict::CallFailed(format!("grpc-status {code} {message}").trim().to_string());
    }
    match serving_status(body) {
        Ok(1) => Verdict::Serving,
        Ok(n) => Verdict::NotServing(n),
        Err(why) => Verdict::Malformed(why),
    }
}

/// The `status` field of the one framed `HealthCheckResponse` in `body`.
fn serving_status(body: &[u8]) -> Result<u64, String> {
    let (&compressed, rest) = body.split_first().ok_or("an empty body")?;
    if compressed != 0 {
        return Err("a compressed message".into());
    }
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("a message prefix cut short")?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let mut message = rest[4..].get(..len).ok_or("a message cut short")?;
    // Absent means the default, UNKNOWN (0); unknown fields are skipped.
    let mut status = 0;
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(&mut message)?,
            (_, 0) => {
                varint(&mut message)?;
            }
            (_, 1) => message = message.get(8..).ok_or("a field cut short")?,
            (_, 2) => {
                let n = usize::try_from(varint(&mut message)?).map_err(|e| e.to_string())?;
                message = message.get(n..).ok_or("a field cut short")?;
            }
            (_, 5) => message = message.get(4..).ok_or("a field cut short")?,
            (_, wire) => return Err(format!("wire type {wire}")),
        }
    }
    Ok(status)
}

fn put_varint(out: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        out.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

fn varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or("a number cut short")?;
        *input = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("a number over 64 bits".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok_trailers() -> HeaderMap {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t
    }

    #[test]
    fn a_request_names_its_service_in_field_one() {
        assert_eq!(&request_body("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &request_body("orders.v1.Orders")[..],
            b"\0\0\0\0\x12\x0a\x10orders.v1.Orders"
        );
        let long = "s".repeat(200);
        // 200 takes two bytes as a varint: 0xc8 0x01.
        assert_eq!(&request_body(&long)[5..8], &[0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn serving_and_not_serving_are_told_apart() {
        let h = HeaderMap::new();
        let t = ok_trailers();
        let serving = [0, 0, 0, 0, 2, 0x08, 0x01];
        assert_eq!(verdict(&h, &serving, Some(&t)), Verdict::Serving);
        let not = [0, 0, 0, 0, 2, 0x08, 0x02];
        assert_eq!(verdict(&h, &not, Some(&t)), Verdict::NotServing(2));
        assert!(
            verdict(&h, &not, Some(&t))
                .into_result()
                .unwrap_err()
                .contains("NOT_SERVING")
        );
        // An empty message is the default status, UNKNOWN.
        assert_eq!(
            verdict(&h, &[0, 0, 0, 0, 0], Some(&t)),
            Verdict::NotServing(0)
        );
        // Fields this version does not know are skipped.
        let extra = [
            0, 0, 0, 0, 8, 0x12, 0x02, b'h', b'i', 0x18, 0x05, 0x08, 0x01,
        ];
        assert_eq!(verdict(&h, &extra[..], Some(&t)), Verdict::Serving);
    }

    #[test]
    fn a_failed_call_is_read_from_trailers_or_trailers_only_headers() {
        let mut only = HeaderMap::new();
        only.insert("grpc-status", HeaderValue::from_static("12"));
        only.insert("grpc-message", HeaderValue::from_static("unknown service"));
        assert_eq!(
            verdict(&only, &[], None),
            Verdict::CallFailed("grpc-status 12 unknown service".into())
        );
        assert!(matches!(
            verdict(&HeaderMap::new(), b"<html>", None),
            Verdict::Malformed(_)
        ));
        let t = ok_trailers();
        assert!(matches!(
            verdict(&HeaderMap::new(), &[0, 0, 0, 0, 9, 0x08], Some(&t)),
            Verdict::Malformed(_)
        ));
    }

    proptest! {
        /// Whatever a target sends back, reading it never panics.
        #[test]
        fn any_body_is_read_without_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verdict(&HeaderMap::new(), &body, Some(&ok_trailers()));
        }

        /// A status encoded as protobuf reads back as itself.
        #[test]
        fn every_status_round_trips(status in any::<u64>()) {
            let mut m = BytesMut::new();
            m.put_u8(0x08);
            put_varint(&mut m, status);
            let mut framed = vec![0, 0, 0, 0, m.len() as u8];
            framed.extend_from_slice(&m);
            prop_assert_eq!(serving_status(&framed), Ok(status));
        }
    }
}
