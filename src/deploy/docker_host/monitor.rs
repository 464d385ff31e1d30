//! Watching a live profile: every interval, each service's health and the
//! proxy's error rate become a verdict — ok, not_applicable, failed, or
//! could_not_run (a check that could not run is never a pass). Verdicts
//! are recorded for uptime; changes are posted once to a webhook.

use super::Engine;
use crate::deploy::proxy::metrics::MetricsSnapshot;
use crate::deploy::spec::ReleaseSpec;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub service: String,
    pub check: String,
    pub verdict: String,
    pub detail: String,
}

/// One round of checks; `last` carries proxy counters between rounds.
pub async fn round(
    e: &Engine<'_>,
    spec: &ReleaseSpec,
    release: u32,
    min_success_rate: f64,
    last: &mut HashMap<String, MetricsSnapshot>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let check = |service: &str, check: &str, verdict: &str, detail: String| Check {
        service: service.into(),
        check: check.into(),
        verdict: verdict.into(),
        detail,
    };
    for s in &spec.services {
        // Health: every replica running (and healthy where checked).
        let mut bad = Vec::new();
        let mut error = None;
        for host in &e.hosts {
            for r in 0..s.replicas {
                let n = super::app_container(&e.profile, &s.name, release, r);
                match host.liveness(&n).await {
                    Ok(l) if l.running && l.health.as_deref().is_none_or(|h| h == "healthy") => {}
                    Ok(l) => bad.push(format!(
                        "{n} {}",
                        l.health.unwrap_or_else(|| "not running".into())
                    )),
                    Err(x) => error = Some(x),
                }
            }
            if s.public_port.is_some() {
                match e.proxy_state(host, &s.name).await {
                    Ok(st) => {
                        bad.extend(
                            st.targets
                                .iter()
                                .filter(|t| !t.healthy)
                                .map(|t| format!("{} failing its health check", t.label())),
                        );
                        let key = format!("{}/{}", host.name, s.name);
                        let now = st
                            .metrics
                            .get(&release.to_string())
                            .cloned()
                            .unwrap_or_default();
                        let prev = last.insert(key, now.clone());
                        let c = match prev.map(|p| now.since(&p)) {
                            None => check(
                                &s.name,
                                "error_rate",
                                "not_applicable",
                                "first sample".into(),
                            ),
                            Some(d) if d.requests == 0 => check(
                                &s.name,
                                "error_rate",
                                "not_applicable",
                                "no requests in the interval".into(),
                            ),
                            Some(d) => {
                                let rate = d.success_rate().unwrap_or(1.0);
                                let v = if rate >= min_success_rate {
                                    "ok"
                                } else {
                                    "failed"
                                };
                                check(
                                    &s.name,
                                    "error_rate",
                                    v,
                                    format!("{} of {} requests failed", d.errors, d.requests),
                                )
                            }
                        };
                        out.push(c);
                    }
                    Err(x) => out.push(check(&s.name, "error_rate", "could_not_run", x)),
                }
            } else {
                out.push(check(
                    &s.name,
                    "error_rate",
                    "not_applicable",
                    "internal service, no proxy".into(),
                ));
            }
        }
        out.push(match (error, bad.is_empty()) {
            (Some(x), _) => check(&s.name, "health", "could_not_run", x),
            (None, true) => check(
                &s.name,
                "health",
                "ok",
                format!("{} replica(s) up", s.replicas * e.hosts.len() as u32),
            ),
            (None, false) => check(&s.name, "health", "failed", bad.join("; ")),
        });
    }
    out
}

/// Posts an alert as JSON to an http:// webhook.
pub async fn post_webhook(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "webhook {url}: only http:// URLs are supported (put a TLS relay on loopback for https)"
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|x| format!("webhook {url}: {x}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|x| x.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .map_err(|x| x.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|x| format!("webhook {url}: {x}"))?;
    if !resp.status().is_success() {
        return Err(format!("webhook {url} answered {}", resp.status()));
    }
    Ok(())
}
