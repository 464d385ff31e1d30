//! Test server for deployment-manager's end-to-end tests. It runs as the only
//! file of a `FROM scratch` image, so it is linked statically.
//!
//! `serve` (the default) answers:
//! - `/health`: 200, or 503 when `FAIL_HEALTH=1`;
//! - `/slow?ms=N`: after N milliseconds;
//! - `/whoami`: the container's hostname;
//! - `/file-of/NAME_FILE`: the file that variable names (secrets as files);
//! - `/ws`: a WebSocket that echoes each message as `VERSION:message`;
//! - `/peers`: one line per `host:port` of `PEERS` (comma-separated),
//!   `ok` when a TCP connection to it opens within 2 s, else `fail: why`
//!   (the live check that an app's generated networks carry its calls);
//! - anything else: `VERSION` (500 for `ERROR_PERCENT` % of requests).
//!
//! It listens on `PORT` and on every port of `LISTEN` (comma-separated),
//! standing in for a service or a database of any port, and speaks gRPC
//! on `GRPC_PORT` when set (see [`grpc`]).
//!
//! `STARTUP_DELAY_MS` delays listening, `CRASH=1` exits at once (a crash
//! loop under a restart policy), SIGTERM exits promptly (PID 1 in a
//! container ignores it otherwise) unless `IGNORE_TERM=1`. `load` is a
//! fixed-rate client for benchmarks inside a network (see [`load`]).
//! `healthcheck` probes a port and exits
//! 0 or 1, standing in for curl in images without a shell.

mod grpc;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static COUNT: AtomicU64 = AtomicU64::new(0);
/// What `/record?v=X` was sent, in order (a database's stand-in).
static RECORDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn env_num(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn websocket(s: TcpStream, version: &str) {
    let Ok(mut ws) = tungstenite::accept(s) else { return };
    while let Ok(msg) = ws.read() {
        if msg.is_text() {
            let reply = format!("{version}:{}", msg.into_text().unwrap_or_default());
            if ws.send(tungstenite::Message::text(reply)).is_err() {
                return;
            }
        } else if msg.is_close() {
            return;
        }
    }
}

fn respond(mut s: TcpStream, version: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut peek = [0u8; 64];
    let n = s.peek(&mut peek).unwrap_or(0);
    if peek[..n].starts_with(b"GET /ws ") || peek[..n].starts_with(b"GET /ws?") {
        let _ = s.set_read_timeout(None);
        return websocket(s, version);
    }
    // A client may send the request in pieces: read to the end of the headers.
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let healthy = std::env::var("FAIL_HEALTH").map_or(true, |v| v != "1");
    let (status, body) = if path == "/health" {
        if healthy { ("200 OK", "ok".to_string()) } else { ("503 Service Unavailable", "unhealthy".to_string()) }
    } else if path == "/whoami" {
        ("200 OK", std::env::var("HOSTNAME").unwrap_or_default())
    } else if let Some(var) = path.strip_prefix("/file-of/") {
        // The file a `<NAME>_FILE` variable points at (secrets as files).
        match std::env::var(var).ok().and_then(|p| std::fs::read_to_string(p).ok()) {
            Some(text) => ("200 OK", text),
            None => ("404 Not Found", format!("no file in {var}")),
        }
    } else if path == "/peers" {
        ("200 OK", peers())
    } else if let Some(v) = path.strip_prefix("/record?v=") {
        RECORDS.lock().map(|mut r| r.push(v.to_string())).ok();
        ("200 OK", "recorded\n".to_string())
    } else if path == "/records" {
        let r = RECORDS.lock().map(|r| r.join("\n")).unwrap_or_default();
        ("200 OK", r)
    } else if let Some(ms) = path.strip_prefix("/slow?ms=") {
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(1000)));
        ("200 OK", format!("{version}\n"))
    } else {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        if n % 100 < env_num("ERROR_PERCENT") {
            ("500 Internal Server Error", format!("{version} error\n"))
        } else {
            ("200 OK", format!("{version}\n"))
        }
    };
    let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
}

/// Tries every peer of `PEERS` now; one line each.
fn peers() -> String {
    use std::net::ToSocketAddrs;
    let list = std::env::var("PEERS").unwrap_or_default();
    let mut out = String::new();
    for peer in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let result = match peer.to_socket_addrs() {
            Err(e) => format!("fail: resolve: {e}"),
            Ok(mut addrs) => match addrs.next() {
                None => "fail: no address".to_string(),
                Some(a) => match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("fail: connect: {e}"),
                },
            },
        };
        out.push_str(&format!("{peer} {result}\n"));
    }
    out
}

fn healthcheck(port: &str) -> i32 {
    let Ok(mut s) = TcpStream::connect(format!("127.0.0.1:{port}")) else { return 1 };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if write!(s, "GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").is_err() {
        return 1;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    if out.starts_with("HTTP/1.1 200") { 0 } else { 1 }
}

/// GET `http://host:port/path`; prints the body; 0 on a 2xx answer.
fn call(url: &str) -> i32 {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let Ok(mut s) = TcpStream::connect(authority) else {
        eprintln!("cannot connect to {authority}");
        return 1;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(s, "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n").is_err() {
        return 1;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    println!("{body}");
    if out.starts_with("HTTP/1.1 2") { 0 } else { 1 }
}

/// `load URLS RATE SECONDS`: GETs at a fixed rate, each on a connection
/// of its own, to the comma-separated URLs in turn. A host name is
/// resolved for every request and its first address used, so swarm's DNS
/// round robin spreads them as a client of it would. Prints one line:
/// `sent N failed F p50_ms A p99_ms B max_ms C`, then up to 10 failures
/// with the second they were due at.
fn load(urls: &str, rate: u64, secs: u64) -> i32 {
    use std::net::ToSocketAddrs;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    let urls: Arc<Vec<String>> = Arc::new(urls.split(',').map(String::from).collect());
    let total = rate.max(1) * secs;
    let every = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let results: Arc<Mutex<Vec<(f64, u128, Option<String>)>>> = Arc::new(Mutex::new(Vec::new()));
    let get = |url: &str| -> Result<(), String> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("resolve: {e}"))?
            .next()
            .ok_or("resolve: no address")?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        write!(s, "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n").map_err(|e| format!("send: {e}"))?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| format!("read from {addr}: {e}"))?;
        if out.starts_with("HTTP/1.1 200") { Ok(()) } else { Err(format!("{addr}: {}", out.lines().next().unwrap_or("no answer"))) }
    };
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (urls, next, results) = (urls.clone(), next.clone(), results.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let due = start + every * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let t = Instant::now();
                let r = get(&urls[i as usize % urls.len()]);
                let at = due.duration_since(start).as_secs_f64();
                results.lock().unwrap().push((at, t.elapsed().as_micros(), r.err()));
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let results = results.lock().unwrap();
    let mut lat: Vec<u128> = results.iter().map(|r| r.1).collect();
    lat.sort_unstable();
    let q = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    let mut failed: Vec<&(f64, u128, Option<String>)> = results.iter().filter(|r| r.2.is_some()).collect();
    failed.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("sent {} failed {} p50_ms {:.1} p99_ms {:.1} max_ms {:.1}", results.len(), failed.len(), q(0.5), q(0.99), q(1.0));
    for f in failed.iter().take(10) {
        println!("  {:.1}s {}", f.0, f.2.as_deref().unwrap_or(""));
    }
    0
}

extern "C" fn on_term(_: libc::c_int) {
    unsafe { libc::_exit(0) };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    match args.get(1).map(String::as_str) {
        Some("healthcheck") => std::process::exit(healthcheck(&port)),
        // A release command's stand-in: GET a URL, print the body, exit 0
        // on a 2xx answer.
        Some("call") => std::process::exit(call(args.get(2).map_or("", String::as_str))),
        Some("load") => {
            let n = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(10);
            std::process::exit(load(args.get(2).map_or("", String::as_str), n(3), n(4)))
        }
        // A migration that fails.
        Some("fail") => {
            eprintln!("migration failed: relation \"orders\" already exists");
            std::process::exit(2);
        }
        _ => {}
    }
    // IGNORE_TERM=1 leaves SIGTERM at its default, as a server started
    // without a handler does: as PID 1 the kernel then ignores it, and
    // only SIGKILL at the end of the stop timeout ends the container.
    if std::env::var("IGNORE_TERM").map_or(true, |v| v != "1") {
        unsafe {
            libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
        }
    }
    if std::env::var("CRASH").is_ok_and(|v| v == "1") {
        eprintln!("crashing on purpose (CRASH=1)");
        std::process::exit(3);
    }
    std::thread::sleep(Duration::from_millis(env_num("STARTUP_DELAY_MS")));
    let version = std::env::var("VERSION").unwrap_or_else(|_| "v1".into());
    let extra = std::env::var("LISTEN").unwrap_or_default();
    let ports: Vec<String> = std::iter::once(port)
        .chain(extra.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from))
        .collect();
    let mut listeners = Vec::new();
    for p in &ports {
        if !listeners.iter().any(|(q, _)| q == p) {
            listeners.push((p.clone(), TcpListener::bind(format!("0.0.0.0:{p}")).expect("bind")));
        }
    }
    eprintln!("listening on {} as {version}", ports.join(", "));
    if let Ok(port) = std::env::var("GRPC_PORT") {
        eprintln!("gRPC on {port}");
        let v = version.clone();
        std::thread::spawn(move || grpc::serve(port, v));
    }
    let (first, rest) = listeners.split_first().expect("one port at least");
    for (_, listener) in rest {
        let listener = listener.try_clone().expect("listener");
        let v = version.clone();
        std::thread::spawn(move || serve(listener, v));
    }
    serve(first.1.try_clone().expect("listener"), version);
}

fn serve(listener: TcpListener, version: String) {
    for stream in listener.incoming().flatten() {
        let v = version.clone();
        std::thread::spawn(move || respond(stream, &v));
    }
}
