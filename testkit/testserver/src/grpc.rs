//! `GRPC_PORT`: a gRPC server over h2c (HTTP/2 without TLS, prior
//! knowledge), standing in for an app whose public port speaks gRPC. Its
//! messages are one field each, encoded by hand (protobuf wire format):
//!
//! - `/grpc.health.v1.Health/Check`: `SERVING` (1), or `NOT_SERVING` (2)
//!   when `FAIL_HEALTH=1`, while the port stays open;
//! - `/dm.test.Version/Get`: `VERSION` as field 1 (a string);
//! - `/dm.test.Version/Slow`: the same after 300 ms (a call in flight
//!   while a replica drains);
//! - anything else: `UNIMPLEMENTED` (12), trailers only.

use bytes::Bytes;
use std::time::Duration;

pub fn serve(port: String, version: String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}"))
            .await
            .expect("bind the gRPC port");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let v = version.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else { return };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(call(req, respond, v.clone()));
                }
            });
        }
    });
}

fn framed(message: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

async fn call(req: http::Request<h2::RecvStream>, mut respond: h2::server::SendResponse<Bytes>, version: String) {
    let path = req.uri().path().to_string();
    let mut body = req.into_body();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let message = match path.as_str() {
        "/grpc.health.v1.Health/Check" => {
            let serving = std::env::var("FAIL_HEALTH").map_or(true, |v| v != "1");
            Some(vec![0x08, if serving { 1 } else { 2 }])
        }
        "/dm.test.Version/Get" | "/dm.test.Version/Slow" => {
            if path.ends_with("Slow") {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut m = vec![0x0a, version.len() as u8];
            m.extend_from_slice(version.as_bytes());
            Some(m)
        }
        _ => None,
    };
    let head = http::Response::builder().status(200).header("content-type", "application/grpc");
    let Some(message) = message else {
        let only = head.header("grpc-status", "12").header("grpc-message", "unknown method").body(()).expect("response");
        let _ = respond.send_response(only, true);
        return;
    };
    let Ok(mut stream) = respond.send_response(head.body(()).expect("response"), false) else { return };
    if stream.send_data(framed(&message), false).is_err() {
        return;
    }
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}
