//! The public port changes profile without ever closing. `migrate`
//! between two of our engines that share one Docker engine (Docker host ↔
//! Swarm on the same machine) hands the old profile's running proxy to
//! the new profile instead of stopping one proxy and starting another:
//!
//! 1. the proxy joins the new profile's network, so it reaches both stacks;
//! 2. its table keeps the old targets as release 0 (or, when data must
//!    move, routes nowhere and holds requests, up to a limit);
//! 3. it is renamed to the new profile's proxy name, which makes it that
//!    profile's proxy (`Host::list`);
//! 4. the new profile's first deploy rolls over release 0 as any update
//!    does: health-gated, drained, 0 failed requests.
//!
//! Why not chaining or `SO_REUSEPORT`: the port is published by Docker for
//! one container; a second container cannot publish it, so any design that
//! starts a new proxy on the port has a moment with nothing listening.
//! Handing over the container that holds the port has none. If the new
//! deploy fails, the proxy goes back to the old profile with its table.

use super::docker_host::Engine;
use super::docker_host::client::Host;
use super::proxy::table::RouteTable;
use super::spec::ServiceSpec;
use std::time::Duration;

/// A proxy that now serves the new profile, and what to restore if the
/// move is undone.
#[derive(Clone, Debug, PartialEq)]
pub struct Handed {
    pub service: String,
    pub from: String,
    pub to: String,
    /// The table before the hand-over.
    pub table: RouteTable,
}

/// The release the old profile's targets carry in the new profile's
/// table: older than its first release, so that release rolls over them.
pub const PREDECESSOR: &str = "0";

/// The table the handed proxy starts with for the new profile. Without
/// `hold`, every routed target of the old profile stays routed, as release
/// 0. With `hold`, nothing is routed and requests wait (the old stack is
/// about to stop for a data copy) up to that long.
pub fn predecessor_table(before: &RouteTable, hold: Option<Duration>) -> RouteTable {
    let mut t = before.clone();
    match hold {
        Some(limit) => {
            t.releases.clear();
            t.paused = true;
            t.max_pause_ms = limit.as_millis() as u64;
        }
        None => {
            let targets: Vec<String> = before
                .releases
                .iter()
                .filter(|r| r.weight > 0)
                .flat_map(|r| r.targets.iter().cloned())
                .collect();
            t.releases = if targets.is_empty() {
                Vec::new()
            } else {
                vec![super::proxy::table::ReleaseRoute {
                    release: PREDECESSOR.into(),
                    weight: 100,
                    targets,
                }]
            };
            t.paused = false;
        }
    }
    t
}

/// Hands each public service's running proxy of `old` on `host` to the
/// profile of `new` (whose network must exist). A service whose old proxy
/// does not run is left to the new deploy. On error, what was handed
/// goes back.
pub async fn hand_over(
    old: &Engine<'_>,
    new: &Engine<'_>,
    host: &Host,
    services: &[&ServiceSpec],
    hold: Option<Duration>,
) -> Result<Vec<Handed>, String> {
    let mut done = Vec::new();
    for s in services.iter().filter(|s| s.public_port.is_some()) {
        match hand_one(old, new, host, s, hold).await {
            Ok(Some(h)) => done.push(h),
            Ok(None) => {}
            Err(e) => {
                let _ = hand_back(old, new, host, &done, services).await;
                return Err(e);
            }
        }
    }
    Ok(done)
}

async fn hand_one(
    old: &Engine<'_>,
    new: &Engine<'_>,
    host: &Host,
    s: &ServiceSpec,
    hold: Option<Duration>,
) -> Result<Option<Handed>, String> {
    let from = old.proxy_name(&s.name);
    let to = new.proxy_name(&s.name);
    if !host.liveness(&from).await.is_ok_and(|l| l.running) {
        return Ok(None);
    }
    match host.liveness(&to).await {
        Ok(l) if l.running => {
            return Err(format!(
                "{to} already runs: {} has a proxy of its own on {}",
                new.profile, host.name
            ));
        }
        Ok(_) => host.remove(&to).await?,
        Err(_) => {}
    }
    let before = old.proxy_state(host, &s.name).await?.table;
    let next = predecessor_table(&before, hold);
    rename(old, new, host, s, &next, &[new.network()]).await?;
    new.progress.step(
        "hand-over",
        format!(
            "{from} (port {}) now serves {} as {to}",
            s.public_port.unwrap_or_default(),
            new.profile
        ),
    );
    Ok(Some(Handed {
        service: s.name.clone(),
        from,
        to,
        table: before,
    }))
}

/// Renames the proxy of `s` from `a`'s name to `b`'s, joins `join`, and
/// leaves it routing by `table`. Docker cannot rename a container attached
/// to an overlay network (the endpoint's name is in the cluster's table),
/// so the proxy holds requests, leaves its overlays, is renamed and joins
/// again the one it routes to: a pause of a fraction of a second, with
/// nothing refused.
async fn rename(
    a: &Engine<'_>,
    b: &Engine<'_>,
    host: &Host,
    s: &ServiceSpec,
    table: &RouteTable,
    join: &[String],
) -> Result<(), String> {
    let (from, to) = (a.proxy_name(&s.name), b.proxy_name(&s.name));
    // A bridge is joined first: when the proxy leaves an overlay it was
    // created on, its published port stays bound through the bridge.
    let mut later = Vec::new();
    for n in join {
        if host.is_overlay(n).await? {
            later.push(n.clone());
        } else {
            host.connect_network(n, &from).await?;
        }
    }
    let networks = host.networks_of(&from).await?;
    let overlays: Vec<String> = networks
        .iter()
        .filter(|(_, o)| *o)
        .map(|(n, _)| n.clone())
        .collect();
    if !overlays.is_empty() && networks.iter().all(|(_, o)| *o) {
        // Docker's default bridge keeps the port bound meanwhile.
        host.connect_network("bridge", &from).await?;
    }
    if !overlays.is_empty() {
        let mut held = table.clone();
        held.releases.clear();
        held.paused = true;
        a.put_table(host, s, &held).await?;
        for n in &overlays {
            host.disconnect_network(n, &from).await?;
        }
    }
    let renamed = host.rename(&from, &to).await;
    let name = if renamed.is_ok() { &to } else { &from };
    let mut joined = Ok(());
    // Only the overlay of the stack it routes to now comes back: one left
    // by an earlier hand-over serves nothing.
    let back = overlays.iter().filter(|n| **n == a.network());
    for n in back.chain(&later) {
        if let Err(e) = host.connect_network(n, name).await {
            joined = Err(e);
        }
    }
    let ctl = if renamed.is_ok() { b } else { a };
    renamed?;
    joined?;
    // Names on a network just joined can take a moment to resolve.
    let targets: Vec<&String> = table
        .releases
        .iter()
        .flat_map(|r| r.targets.iter())
        .collect();
    if !overlays.is_empty() && !targets.is_empty() {
        let check = serde_json::json!({
            "targets": targets,
            "path": table.health_path,
            "grpc": table.health_grpc,
            "timeout_ms": 30_000,
            "interval_ms": 100,
        });
        ctl.proxy_ctl(host, &s.name, "POST", "/check", &check.to_string())
            .await
            .map_err(|e| format!("{to} cannot reach its targets again: {e}"))?;
    }
    ctl.put_table(host, s, table).await
}

/// Undoes [`hand_over`]: each proxy goes back to the old profile and
/// routes as it did before. Best effort over all of them.
pub async fn hand_back(
    old: &Engine<'_>,
    new: &Engine<'_>,
    host: &Host,
    handed: &[Handed],
    services: &[&ServiceSpec],
) -> Result<(), String> {
    let mut errors = Vec::new();
    for h in handed {
        let Some(s) = services.iter().find(|s| s.name == h.service) else {
            continue;
        };
        if let Err(e) = rename(new, old, host, s, &h.table, &[]).await {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::proxy::table::ReleaseRoute;

    fn before() -> RouteTable {
        let mut t = RouteTable::new("web");
        t.releases = vec![
            ReleaseRoute {
                release: "3".into(),
                weight: 0,
                targets: vec!["dm-old-web-r3-0:8080".into()],
            },
            ReleaseRoute {
                release: "4".into(),
                weight: 100,
                targets: vec!["dm-old-web-r4-0:8080".into(), "dm-old-web-r4-1:8080".into()],
            },
        ];
        t
    }

    #[test]
    fn the_old_profiles_routed_targets_become_release_zero() {
        let t = predecessor_table(&before(), None);
        assert_eq!(t.releases.len(), 1, "warm, unrouted releases are dropped");
        assert_eq!(t.releases[0].release, PREDECESSOR);
        assert_eq!(t.releases[0].weight, 100);
        assert_eq!(t.releases[0].targets.len(), 2);
        assert!(!t.paused);
        assert_eq!(t.service, "web");
    }

    #[test]
    fn holding_for_a_data_copy_routes_nowhere_for_a_bounded_time() {
        let t = predecessor_table(&before(), Some(Duration::from_secs(45)));
        assert!(t.releases.is_empty());
        assert!(t.paused);
        assert_eq!(t.max_pause_ms, 45_000);
    }
}
