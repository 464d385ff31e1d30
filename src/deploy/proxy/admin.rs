//! The proxy's control API, on a loopback port inside its container. The
//! deploy engine reaches it by running `deployment-manager proxy ctl` in
//! the container (docker exec), which works the same for local and remote
//! hosts and never exposes the API on a network.

use super::server::{Body, Proxy};
use super::table::{Check, RouteTable};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

#[derive(Deserialize)]
pub struct CheckRequest {
    pub targets: Vec<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// A gRPC health check of this service instead (empty: the server).
    #[serde(default)]
    pub grpc: Option<String>,
    #[serde(default = "deploy_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "interval")]
    pub interval_ms: u64,
}

fn deploy_timeout() -> u64 {
    30_000
}
fn interval() -> u64 {
    super::table::DEFAULT_HEALTH_INTERVAL_MS
}

#[derive(Deserialize, Default)]
struct PauseRequest {
    #[serde(default)]
    max_pause_ms: Option<u64>,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(v.to_string()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// Waits until every target passes one check, or the timeout passes.
pub async fn wait_healthy(proxy: &Proxy, req: &CheckRequest) -> Result<u64, String> {
    let start = Instant::now();
    let timeout = Duration::from_millis(req.timeout_ms);
    let per_check = Duration::from_millis(super::table::DEFAULT_HEALTH_TIMEOUT_MS);
    let check = Check::of(req.path.as_deref(), req.grpc.as_deref());
    let mut pending: Vec<&String> = req.targets.iter().collect();
    let mut last = String::new();
    loop {
        let mut still = Vec::new();
        for t in pending {
            if let Err(e) = proxy.probe(t, &check, per_check).await {
                last = format!("{t}: {e}");
                still.push(t);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(start.elapsed().as_millis() as u64);
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "not healthy after {} s (last check: {last})",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(req.interval_ms)).await;
    }
}

async fn route(proxy: Arc<Proxy>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": e.to_string()}),
            );
        }
    };
    let bad = |e: serde_json::Error| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": e.to_string()}),
        )
    };
    match (method, path.as_str()) {
        (Method::GET, "/state") => json(
            StatusCode::OK,
            serde_json::to_value(proxy.view()).unwrap_or_default(),
        ),
        (Method::POST, "/check") => match serde_json::from_slice::<CheckRequest>(&body) {
            Ok(c) => match wait_healthy(&proxy, &c).await {
                Ok(ms) => json(
                    StatusCode::OK,
                    serde_json::json!({"healthy": true, "ms": ms}),
                ),
                Err(e) => json(StatusCode::CONFLICT, serde_json::json!({"error": e})),
            },
            Err(e) => bad(e),
        },
        (Method::PUT, "/table") => match serde_json::from_slice::<RouteTable>(&body) {
            Ok(t) => match proxy.apply(t).await {
                Ok(o) => json(StatusCode::OK, serde_json::to_value(o).unwrap_or_default()),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"error": format!("cannot save the routing table: {e}")}),
                ),
            },
            Err(e) => bad(e),
        },
        (Method::POST, "/pause") | (Method::POST, "/resume") => {
            let p: PauseRequest = serde_json::from_slice(&body).unwrap_or_default();
            match proxy.set_paused(path == "/pause", p.max_pause_ms) {
                Ok(()) => json(
                    StatusCode::OK,
                    serde_json::json!({"paused": path == "/pause"}),
                ),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"error": e.to_string()}),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no such endpoint"}),
        ),
    }
}

pub async fn serve_admin(proxy: Arc<Proxy>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, std::convert::Infallible>(route(proxy, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// One call to a proxy's control API; returns the status and body.
pub async fn ctl(
    admin: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|e| format!("proxy control API at {admin}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "proxy")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Runs a proxy until killed: traffic on `listen`, control on `admin`,
/// routing table saved at `state` and restored from it at start.
/// Runs the proxy until SIGTERM: `threads` serving threads, each with its
/// own single-threaded runtime and its own `SO_REUSEPORT` listener on
/// `listen` (the kernel spreads connections over them, as nginx's workers
/// do), and this thread for the control API, health checks and the stop.
/// A runtime per core keeps a request, its upstream connection and their
/// wake-ups on one thread; work-stealing threads passed them around.
pub fn run(
    service: &str,
    listen: &str,
    admin: &str,
    state: Option<std::path::PathBuf>,
    threads: usize,
) -> std::io::Result<()> {
    let proxy = Proxy::restore(service, state);
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{listen}: {e}"))
    })?;
    let (ready, bound) = std::sync::mpsc::channel();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let threads = threads.max(1);
    for n in 0..threads {
        let (proxy, ready, stopping) = (proxy.clone(), ready.clone(), stopping.clone());
        std::thread::Builder::new()
            .name(format!("proxy-{n}"))
            .spawn(move || {
                let rt = match single_runtime() {
                    Ok(rt) => rt,
                    Err(e) => return ready.send(Err(e)).unwrap_or(()),
                };
                rt.block_on(async move {
                    match reuseport_listener(addr) {
                        Ok(l) => {
                            let _ = ready.send(Ok(()));
                            super::front::serve(proxy, l, stopping).await;
                            // Open connections finish on this runtime
                            // until the process exits.
                            std::future::pending::<()>().await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            })?;
    }
    drop(ready);
    // Every listener is bound before the proxy reports itself started.
    for _ in 0..threads {
        bound.recv().map_err(|_| {
            std::io::Error::other("a serving thread ended before binding its listener")
        })??;
    }
    single_runtime()?.block_on(async move {
        let control = tokio::net::TcpListener::bind(admin).await?;
        let every = Duration::from_millis(super::table::DEFAULT_HEALTH_INTERVAL_MS);
        let timeout = Duration::from_millis(super::table::ROUTINE_CHECK_TIMEOUT_MS);
        tokio::spawn(proxy.clone().health_loop(every, timeout));
        tokio::spawn(proxy.clone().resolve_loop(every, timeout));
        tokio::spawn(serve_admin(proxy.clone(), control));
        // As PID 1 the proxy gets no default SIGTERM handling: stop taking
        // connections, let open requests finish (up to 10 s), then exit,
        // so `docker stop` does not wait out its grace period.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        term.recv().await;
        let _ = stop.send(true);
        let start = std::time::Instant::now();
        while proxy.inflight() > 0 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
}

fn single_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A listener that shares its address with the other serving threads'.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
