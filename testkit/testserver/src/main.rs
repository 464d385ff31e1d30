//! Test server for deployment-manager's end-to-end tests. It runs as the only
//! file of a `FROM scratch` image, so it has no dependencies and is linked
//! statically. `serve` answers `/health` (failing on demand via
//! `FAIL_HEALTH=1`) and `/` with its version; `healthcheck` probes a port and
//! exits 0 or 1, standing in for curl in images without a shell.
//! It only needs to answer simple GETs from the test's own client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn respond(mut s: TcpStream, version: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).unwrap_or(0);
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let healthy = std::env::var("FAIL_HEALTH").map_or(true, |v| v != "1");
    let (status, body) = match path {
        "/health" if healthy => ("200 OK", "ok".to_string()),
        "/health" => ("503 Service Unavailable", "unhealthy".to_string()),
        _ => ("200 OK", format!("{version}\n")),
    };
    let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    if args.get(1).map(String::as_str) == Some("healthcheck") {
        std::process::exit(healthcheck(&port));
    }
    let version = std::env::var("VERSION").unwrap_or_else(|_| "v1".into());
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).expect("bind");
    for stream in listener.incoming().flatten() {
        let v = version.clone();
        std::thread::spawn(move || respond(stream, &v));
    }
}
