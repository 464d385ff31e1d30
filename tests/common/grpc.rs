//! gRPC calls on loopback for the deploy tests: HTTP/2 without TLS (prior
//! knowledge), as gRPC clients send, to the test server's
//! `dm.test.Version` service behind our proxy.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// The version a call answered, or why it failed.
pub type Call = (Instant, Result<String, String>);

/// One unary call of `dm.test.Version/<method>` with an empty message.
async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    port: u16,
    method: &str,
) -> Result<String, String> {
    let req = hyper::Request::post(format!("http://127.0.0.1:{port}/dm.test.Version/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let (parts, body) = resp.into_parts();
    if parts.status != 200 {
        return Err(format!("HTTP {}", parts.status));
    }
    let got = body.collect().await.map_err(|e| format!("body: {e}"))?;
    let status = got
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if status != "0" {
        return Err(format!("grpc-status {status}"));
    }
    // 5-byte prefix, then field 1 (0x0a), its length, the string.
    let bytes = got.to_bytes();
    match bytes.get(5..7) {
        Some([0x0a, n]) => bytes
            .get(7..7 + *n as usize)
            .map(|v| String::from_utf8_lossy(v).to_string())
            .ok_or_else(|| format!("a message cut short: {bytes:?}")),
        _ => Err(format!("not a Version message: {bytes:?}")),
    }
}

async fn connect(port: u16) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One `Get` call on a connection of its own.
pub fn version(port: u16) -> Result<String, String> {
    runtime().block_on(async {
        let mut sender = connect(port).await?;
        call(&mut sender, port, "Get").await
    })
}

/// `streams` calls at a time, back to back, over one kept HTTP/2
/// connection (a gRPC client's channel), `Get` and `Slow` (300 ms)
/// alternating, until stopped.
pub struct GrpcLoad {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
    thread: JoinHandle<()>,
}

impl GrpcLoad {
    pub fn start(port: u16, streams: usize) -> GrpcLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (s, c) = (stop.clone(), calls.clone());
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let sender = match connect(port).await {
                    Ok(x) => x,
                    Err(e) => {
                        c.lock().unwrap().push((Instant::now(), Err(e)));
                        return;
                    }
                };
                let tasks: Vec<_> = (0..streams)
                    .map(|i| {
                        let (s, c, mut sender) = (s.clone(), c.clone(), sender.clone());
                        tokio::spawn(async move {
                            let mut n = i;
                            while !s.load(Ordering::Relaxed) {
                                let method = if n % 2 == 0 { "Get" } else { "Slow" };
                                let r = call(&mut sender, port, method).await;
                                c.lock().unwrap().push((Instant::now(), r));
                                n += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            })
        });
        GrpcLoad {
            stop,
            calls,
            thread,
        }
    }

    pub fn finish(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}
