//! Load on loopback for the deploy tests: clients sending GETs back to
//! back, and checks that none failed and which version answered.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One GET on loopback; returns the status and the trimmed body.
pub fn get(port: u16, path: &str, cookie: Option<&str>) -> Result<(u16, String), String> {
    get_from("127.0.0.1", port, path, cookie)
}

/// One GET to `host` (a container's address, say).
pub fn get_from(
    host: &str,
    port: u16,
    path: &str,
    cookie: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect((host, port)).map_err(|e| e.to_string())?;
    // Longer than a move may hold a request (`migrate::HOLD_LIMIT`, 60 s):
    // a request held within the stated limit has not failed.
    s.set_read_timeout(Some(Duration::from_secs(65))).unwrap();
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    // One write: a request in pieces is a different test.
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{cookie}connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {out:?}"))?;
    let body = out
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((status, body))
}

pub fn version(port: u16) -> String {
    match get(port, "/", None) {
        Ok((200, b)) => b,
        other => panic!("GET / failed: {other:?}"),
    }
}

pub type Sample = (Instant, Result<String, String>);

/// Clients on loopback sending GETs back to back until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, clients: usize) -> Load {
        Load::start_at("127.0.0.1", port, clients)
    }

    /// Clients sending to `host:port` (a test host's address, say).
    pub fn start_at(host: &str, port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, log, host) = (stop.clone(), log.clone(), host.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let r = match get_from(&host, port, "/", None) {
                            Ok((200, body)) => Ok(body),
                            Ok((s, body)) => Err(format!("{s} {body}")),
                            Err(e) => Err(e),
                        };
                        log.lock().unwrap().push((Instant::now(), r));
                        std::thread::sleep(Duration::from_millis(4));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        Load { stop, log, threads }
    }

    /// Stops the clients and returns every request, failed or not.
    pub fn samples(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }

    /// Stops the clients and checks that no request failed.
    pub fn finish(self) -> Vec<Sample> {
        let log = self.samples();
        assert!(log.len() > 200, "the load sent only {} requests", log.len());
        let failed: Vec<&Sample> = log.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed, first: {:?}",
            failed.len(),
            log.len(),
            failed.first().map(|f| &f.1)
        );
        log
    }
}

/// After `since`, every response came from `version`.
pub fn all_from(log: &[Sample], since: Instant, version: &str) {
    let after: Vec<&Sample> = log.iter().filter(|(t, _)| *t > since).collect();
    assert!(!after.is_empty(), "no requests after the deploy returned");
    for (_, r) in after {
        assert_eq!(r.as_deref(), Ok(version));
    }
}
