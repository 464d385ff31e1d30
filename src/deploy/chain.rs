//! Moving to other machines without a failed request. The public port is
//! on the old machines' engines, so it cannot be handed over
//! (`hand_over.rs` needs one engine under both profiles). Instead:
//!
//! 1. the new profile is deployed on its own hosts, with its own proxies,
//!    health-gated, while the old one serves (with data to copy, the old
//!    proxies hold requests, at most a limit, while the old stack stops
//!    and its volumes are copied);
//! 2. each old proxy's table is replaced by one that forwards to the new
//!    hosts' public ports (a chain: old proxy → new proxy → new app), and
//!    the old replicas drain as in any switch;
//! 3. the old app and dependencies stop; the old proxies stay and keep
//!    forwarding for clients that still resolve the old addresses, until
//!    the operator has moved DNS and destroys the old profile.
//!
//! If the new deploy fails, the old tables are put back (and, after a
//! data copy, the old stack is started again): nothing was ever routed to
//! the new hosts.

use super::docker_host::Engine;
use super::proxy::table::{ReleaseRoute, RouteTable};
use super::spec::ServiceSpec;
use std::time::Duration;

/// The release name forwarded traffic carries in an old proxy's table.
pub const FORWARD: &str = "forward";

/// The address clients use for a Docker host given as `ssh://user@host`,
/// `ssh://user@host:22` or `tcp://host:2376`: its host name. This
/// machine's engines (`local`, `unix://`) have none another host can use.
pub fn public_address(host: &str) -> Option<String> {
    let rest = host
        .strip_prefix("ssh://")
        .or_else(|| host.strip_prefix("tcp://"))?;
    let rest = rest.split('/').next().unwrap_or(rest);
    let at_host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let name = match at_host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => at_host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    (!name.is_empty()).then(|| name.to_string())
}

/// The old proxy's table that forwards to `targets` (the new hosts'
/// `address:port`), keeping its own settings (health path, drain) and
/// ending any pause.
pub fn forward_table(before: &RouteTable, targets: &[String]) -> RouteTable {
    let mut t = before.clone();
    t.releases = vec![ReleaseRoute {
        release: FORWARD.into(),
        weight: 100,
        targets: targets.to_vec(),
    }];
    // Forwarded requests are not sticky to an old replica any more.
    t.sticky = false;
    t.paused = false;
    t
}

/// The old proxy's table while data moves: nothing routed, requests held
/// up to `limit`.
pub fn hold_table(before: &RouteTable, limit: Duration) -> RouteTable {
    let mut t = before.clone();
    t.paused = true;
    t.max_pause_ms = limit.as_millis() as u64;
    t
}

/// One old proxy whose table was changed, with the table to put back.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub host: usize,
    pub service: String,
    pub before: RouteTable,
}

/// The public services among `services`.
fn public<'a>(services: &'a [&'a ServiceSpec]) -> impl Iterator<Item = &'a &'a ServiceSpec> {
    services.iter().filter(|s| s.public_port.is_some())
}

/// Applies `make(before)` to every running public proxy of `old` on every
/// one of its hosts; on an error, what was changed is put back.
async fn change_all(
    old: &Engine<'_>,
    services: &[&ServiceSpec],
    make: impl Fn(&ServiceSpec, &RouteTable) -> RouteTable,
) -> Result<Vec<Changed>, String> {
    let mut done = Vec::new();
    for (i, host) in old.hosts.iter().enumerate() {
        for s in public(services) {
            // A proxy that does not run has no clients to keep.
            let name = old.proxy_name(&s.name);
            if !host.liveness(&name).await.is_ok_and(|l| l.running) {
                continue;
            }
            let before = match old.proxy_state(host, &s.name).await {
                Ok(st) => st.table,
                Err(e) => {
                    let _ = restore(old, services, &done).await;
                    return Err(e);
                }
            };
            if let Err(e) = old.put_table(host, s, &make(s, &before)).await {
                let _ = restore(old, services, &done).await;
                return Err(e);
            }
            done.push(Changed {
                host: i,
                service: s.name.clone(),
                before,
            });
        }
    }
    Ok(done)
}

/// Holds new requests on every old proxy (data is about to move).
pub async fn hold(
    old: &Engine<'_>,
    services: &[&ServiceSpec],
    limit: Duration,
) -> Result<Vec<Changed>, String> {
    change_all(old, services, |_, before| hold_table(before, limit)).await
}

/// Points every old proxy at the new hosts' public port of its service and
/// waits for the old replicas to drain.
pub async fn forward(
    old: &Engine<'_>,
    services: &[&ServiceSpec],
    new_addresses: &[String],
) -> Result<Vec<Changed>, String> {
    change_all(old, services, |s, before| {
        let port = s.public_port.unwrap_or_default();
        let targets: Vec<String> = new_addresses
            .iter()
            .map(|a| format!("{a}:{port}"))
            .collect();
        forward_table(before, &targets)
    })
    .await
}

/// Puts back the tables `changed` replaced.
pub async fn restore(
    old: &Engine<'_>,
    services: &[&ServiceSpec],
    changed: &[Changed],
) -> Result<(), String> {
    let mut first_error = None;
    for c in changed {
        let Some(s) = services.iter().find(|s| s.name == c.service) else {
            continue;
        };
        if let Err(e) = old.put_table(&old.hosts[c.host], s, &c.before).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_address_is_the_host_of_an_ssh_or_tcp_engine() {
        for (given, want) in [
            ("ssh://root@10.77.0.12", Some("10.77.0.12")),
            (
                "ssh://deploy@web2.example.com:2222",
                Some("web2.example.com"),
            ),
            ("ssh://web3", Some("web3")),
            ("tcp://10.0.0.5:2376", Some("10.0.0.5")),
            ("ssh://root@[2001:db8::7]:22", Some("2001:db8::7")),
            ("local", None),
            ("unix:///var/run/docker.sock", None),
        ] {
            assert_eq!(public_address(given).as_deref(), want, "{given}");
        }
    }

    #[test]
    fn forwarding_replaces_every_release_and_ends_a_pause_keeping_the_settings() {
        let mut before = RouteTable::new("web");
        before.health_path = Some("/health".into());
        before.sticky = true;
        before.drain_timeout_ms = 2000;
        before.releases = vec![
            ReleaseRoute {
                release: "3".into(),
                weight: 90,
                targets: vec!["dm-a-web-r3-0:8080".into()],
            },
            ReleaseRoute {
                release: "4".into(),
                weight: 10,
                targets: vec!["dm-a-web-r4-0:8080".into()],
            },
        ];
        let held = hold_table(&before, Duration::from_secs(60));
        assert!(held.paused);
        assert_eq!(held.max_pause_ms, 60_000);
        assert_eq!(held.releases, before.releases, "held, not unrouted");
        let t = forward_table(&held, &["10.0.0.2:443".into(), "10.0.0.3:443".into()]);
        assert!(!t.paused && !t.sticky);
        assert_eq!(t.health_path.as_deref(), Some("/health"));
        assert_eq!(t.drain_timeout_ms, 2000);
        assert_eq!(t.releases.len(), 1);
        assert_eq!(t.releases[0].release, FORWARD);
        assert_eq!(t.releases[0].weight, 100);
        assert_eq!(t.releases[0].targets, ["10.0.0.2:443", "10.0.0.3:443"]);
    }
}
