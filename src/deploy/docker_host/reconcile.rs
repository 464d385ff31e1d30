//! Recovery after an interrupted run: the hosts are the truth for what
//! runs, the release history for what should. A deploy that was killed is
//! marked interrupted, traffic goes back to the last good release alone,
//! and whatever the interrupted run created is removed.

use super::{Engine, Failure};
use crate::deploy::spec::ReleaseSpec;
use crate::state::Store;
use crate::state::releases::Release;

/// Brings `release` up on every host (starting its stopped containers, or
/// recreating missing ones), routes all traffic to it and stops the rest.
pub async fn converge(e: &Engine<'_>, spec: &ReleaseSpec, release: u32) -> Result<(), Failure> {
    for host in &e.hosts {
        host.ensure_network(&e.network(), &e.profile).await?;
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

/// Finishes what an earlier run left; returns what it did, in words.
pub async fn reconcile(e: &Engine<'_>, store: &mut Store) -> Result<Vec<String>, Failure> {
    let mut notes = Vec::new();
    let mut stale = Vec::new();
    // By number: an interrupted rollback's `runs` is a good release.
    for (number, _, note) in store
        .settle_unfinished(&e.profile)
        .map_err(|x| x.to_string())?
    {
        notes.push(note);
        stale.push(number.to_string());
    }
    let live = store.live_release(&e.profile).map_err(|x| x.to_string())?;
    let serving = match &live {
        Some(l) => is_serving(e, l).await?,
        None => true,
    };
    if let Some(l) = live.as_ref().filter(|_| !serving || !stale.is_empty()) {
        let spec: ReleaseSpec = serde_json::from_str(&l.spec).map_err(|x| x.to_string())?;
        converge(e, &spec, l.runs).await?;
        notes.push(format!("traffic restored to release {} alone", l.runs));
    }
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            let orphan = c.role == "app" && stale.contains(&c.release);
            if orphan {
                host.remove(&c.name).await?;
                notes.push(format!("removed {} left by an unfinished run", c.name));
            }
        }
    }
    if live.is_none() && !stale.is_empty() {
        for host in &e.hosts {
            for c in host.list(&e.profile).await? {
                if c.role == "proxy" {
                    let mut t = crate::deploy::proxy::table::RouteTable::new(&c.service);
                    t.drain_timeout_ms = e.options.drain_timeout.as_millis() as u64;
                    let body = serde_json::to_string(&t).map_err(|x| x.to_string())?;
                    e.proxy_ctl(host, &c.service, "PUT", "/table", &body)
                        .await?;
                }
            }
        }
    }
    Ok(notes)
}
