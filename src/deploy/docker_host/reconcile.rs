//! Recovery after an interrupted run: the hosts are the truth for what
//! runs, the release history for what should. A deploy that was killed is
//! marked interrupted, traffic goes back to the last good release alone,
//! and whatever the interrupted run created is removed.

use super::Engine;
use crate::deploy::release::Failure;
use crate::deploy::spec::ReleaseSpec;
use crate::state::releases::Release;

/// Brings `release` up on every host (starting its stopped containers, or
/// recreating missing ones), routes all traffic to it and stops the rest.
/// Its dependencies start first: a profile stopped behind its proxies
/// (after a move elsewhere) or by `stop` comes back whole.
pub async fn converge(e: &Engine<'_>, spec: &ReleaseSpec, release: u32) -> Result<(), Failure> {
    for host in &e.hosts {
        host.ensure_network(&e.network(), &e.profile).await?;
        for acc in &spec.accessories {
            super::rollout::ensure_accessory(e, host, acc).await?;
        }
    }
    for s in &spec.services {
        for host in &e.hosts {
            e.ensure_proxy(host, s).await?;
            for r in 0..s.replicas {
                e.start_replica(host, s, release, r).await?;
            }
        }
        let replicas: Vec<u32> = (0..s.replicas).collect();
        for host in &e.hosts {
            if let Err(f) = e.await_ready(host, s, release, &replicas).await {
                return Err(e.with_logs(host, f).await);
            }
        }
        for host in &e.hosts {
            if s.public_port.is_some() {
                e.switch_all(host, s, release).await?;
            }
            let others = e.running_others(host, s, release).await?;
            e.stop_all(host, &others, s.stop_grace).await?;
        }
    }
    Ok(())
}

/// Whether `live` serves alone on every host, all replicas up.
pub async fn is_serving(e: &Engine<'_>, live: &Release) -> Result<bool, String> {
    let spec: ReleaseSpec = serde_json::from_str(&live.spec).map_err(|x| x.to_string())?;
    for host in &e.hosts {
        let containers = host.list(&e.profile).await?;
        let running = |n: &str| containers.iter().any(|c| c.name == n && c.running());
        if !spec
            .accessories
            .iter()
            .all(|a| running(&super::plan::accessory_name(&e.profile, &a.name)))
        {
            return Ok(false);
        }
        for s in &spec.services {
            let up = (0..s.replicas).all(|r| {
                let n = super::app_container(&e.profile, &s.name, live.runs, r);
                containers.iter().any(|c| c.name == n && c.running())
            });
            if !up {
                return Ok(false);
            }
            if s.public_port.is_some() {
                let routed = match e.proxy_state(host, &s.name).await {
                    Ok(st) => st
                        .table
                        .routed()
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>(),
                    Err(_) => return Ok(false),
                };
                if routed != [live.runs.to_string()] {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

/// Removes the containers of unfinished runs (`stale` release numbers);
/// with no live release, their proxies route nowhere again.
pub async fn remove_leftovers(
    e: &Engine<'_>,
    live: Option<&Release>,
    stale: &[u32],
) -> Result<Vec<String>, Failure> {
    let mut notes = Vec::new();
    let stale: Vec<String> = stale.iter().map(u32::to_string).collect();
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            if c.role == "app" && stale.contains(&c.release) {
                host.remove(&c.name).await?;
                notes.push(format!("removed {} left by an unfinished run", c.name));
            }
        }
    }
    if live.is_none() && !stale.is_empty() {
        for host in &e.hosts {
            for c in host.list(&e.profile).await? {
                if c.role == "proxy" {
                    e.route_nowhere(host, &c.service).await?;
                }
            }
        }
    }
    Ok(notes)
}
