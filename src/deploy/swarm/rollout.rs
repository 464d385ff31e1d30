//! The moves of a release on Swarm, in the same order as on Docker hosts:
//! network and dependencies, the strategy per service, a bake, then
//! cleanup — and on any failure, traffic back on the live release and no
//! trace of the new.

use super::objects::{self, Order};
use super::{Swarm, blue_green, canary, rolling};
use crate::analyse::cost::Strategy;
use crate::deploy::release::{Failure, Outcome, PlanLine};
use crate::deploy::spec::{ReleaseSpec, ServiceSpec};
use crate::state::releases::{Release, ReleaseStatus};
use std::time::{Duration, Instant};

/// Network, dependencies, then the strategy for every service.
pub async fn roll_out(sw: &Swarm<'_>, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
    if objects::ensure_network(sw).await? {
        sw.progress().step(
            "network",
            format!("created overlay network {}", sw.network()),
        );
    }
    for a in &spec.accessories {
        let name = sw.accessory_name(&a.name);
        if sw.service(&name).await?.is_none() {
            let mut refs = Vec::new();
            for n in &a.secrets {
                refs.push(objects::ensure_secret(sw, n, number).await?);
            }
            sw.apply(objects::accessory_service(sw, a, &refs)?).await?;
            sw.progress()
                .step("accessory", format!("created service {name} ({})", a.kind));
        }
    }
    let mut outcome = Outcome::Live;
    for s in &spec.services {
        if s.health.command.is_empty() {
            sw.progress().step(
                "warning",
                format!(
                    "{}: no health command, so swarm counts a task as ready once it starts; add `health.command` (e.g. a curl or the app's own probe) for gated updates",
                    s.name
                ),
            );
        }
        let o = match sw.dh.options.strategy {
            Strategy::Rolling => rolling::run(sw, s, number, Order::StartFirst).await?,
            Strategy::Recreate => rolling::run(sw, s, number, Order::StopFirst).await?,
            Strategy::BlueGreen => blue_green::run(sw, s, number).await?,
            Strategy::Canary => canary::run(sw, s, number).await?,
        };
        if let Outcome::Paused(_) = o {
            outcome = o;
        }
    }
    Ok(outcome)
}

/// Watches the release after cutover: a task failing now still rolls back.
pub async fn bake(sw: &Swarm<'_>, spec: &ReleaseSpec, number: u32) -> Result<(), Failure> {
    let d = sw.dh.options.bake;
    if d.is_zero() {
        return Ok(());
    }
    sw.progress().step(
        "bake",
        format!("watching release {number} for {} s", d.as_secs()),
    );
    let start = Instant::now();
    while start.elapsed() < d {
        tokio::time::sleep(Duration::from_millis(500).min(d)).await;
        for s in &spec.services {
            let name = serving_service(sw, s, number).await?;
            let tasks = sw.tasks(&name).await?;
            let failed = tasks.iter().find(|t| {
                super::task_release(t) == Some(number)
                    && matches!(
                        super::task_state(t),
                        Some(
                            bollard::models::TaskState::FAILED
                                | bollard::models::TaskState::REJECTED
                        )
                    )
            });
            if let Some(t) = failed {
                return Err(sw
                    .failure(
                        format!("a task of {name} failed during the bake period"),
                        Some(t),
                    )
                    .await);
            }
        }
    }
    Ok(())
}

/// The swarm service that runs release `runs` of `s`: its own, else the
/// stable one when that carries the release.
async fn serving_service(sw: &Swarm<'_>, s: &ServiceSpec, runs: u32) -> Result<String, String> {
    let own = sw.release_name(&s.name, runs);
    if sw.service(&own).await?.is_some() {
        return Ok(own);
    }
    Ok(sw.stable_name(&s.name))
}

/// True when every public service routes to the live release alone and
/// every service of it has its replicas.
pub async fn is_serving(sw: &Swarm<'_>, live: &Release) -> Result<bool, String> {
    let spec: ReleaseSpec = serde_json::from_str(&live.spec).map_err(|x| x.to_string())?;
    for s in &spec.services {
        let name = serving_service(sw, s, live.runs).await?;
        let Some(m) = sw.service(&name).await? else {
            return Ok(false);
        };
        if m.release != Some(live.runs) || m.replicas != s.replicas as u64 {
            return Ok(false);
        }
        if s.public_port.is_some() {
            let routed = sw.routed(s).await?;
            if routed.len() != 1 || routed[0].0 != live.runs || routed[0].1 != name {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Makes release `runs` serve alone: its service scaled up (or the stable
/// service updated back to its spec when it has none), traffic switched,
/// every other service of the app scaled to zero.
pub async fn converge(sw: &Swarm<'_>, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
    objects::ensure_network(sw).await?;
    for s in &spec.services {
        let own = sw.release_name(&s.name, runs);
        let stable = sw.stable_name(&s.name);
        let name = if sw.service(&own).await?.is_some() {
            sw.scale(&own, s.replicas as u64).await?;
            sw.await_ready(&own, runs, s.replicas as u64, Instant::now())
                .await?;
            own
        } else if let Some(m) = sw
            .service(&stable)
            .await?
            .filter(|m| m.release == Some(runs))
        {
            sw.scale(&m.name, s.replicas as u64).await?;
            sw.await_ready(&stable, runs, s.replicas as u64, Instant::now())
                .await?;
            stable
        } else {
            rolling::run(sw, s, runs, Order::StartFirst).await?;
            stable
        };
        sw.route_to(s, &name, runs).await?;
        for m in sw.app_services(&s.name).await? {
            if m.name != name && m.replicas > 0 {
                sw.scale(&m.name, 0).await?;
            }
        }
    }
    Ok(())
}

/// After a failure: the live release serves alone again and the failed
/// release's own services are gone.
pub async fn restore(
    sw: &Swarm<'_>,
    live: Option<&Release>,
    failed: u32,
) -> Result<String, Failure> {
    for m in sw.services().await? {
        if m.role == "app" && m.release == Some(failed) && m.name.ends_with(&format!("-r{failed}"))
        {
            sw.remove(&m.name).await?;
        }
    }
    match live {
        Some(l) => {
            let spec: ReleaseSpec = serde_json::from_str(&l.spec).map_err(|x| x.to_string())?;
            converge(sw, &spec, l.runs).await?;
            Ok(format!("traffic is on release {} alone", l.runs))
        }
        None => {
            for m in sw.services().await? {
                if m.role == "app" && m.release == Some(failed) {
                    sw.remove(&m.name).await?;
                }
            }
            Ok("no earlier release; the new services were removed".into())
        }
    }
}

/// Removes the services unfinished runs (`stale` release numbers)
/// created for themselves, and with no live release every service they
/// left; returns what it did, in words.
pub async fn remove_leftovers(
    sw: &Swarm<'_>,
    live: Option<&Release>,
    stale: &[u32],
) -> Result<Vec<String>, Failure> {
    let mut notes = Vec::new();
    for m in sw.services().await? {
        let own_service = m
            .release
            .is_some_and(|r| m.name.ends_with(&format!("-r{r}")));
        let orphan = m.role == "app" && m.release.is_some_and(|r| stale.contains(&r));
        if orphan && (own_service || live.is_none()) {
            sw.remove(&m.name).await?;
            notes.push(format!(
                "removed service {} left by an unfinished run",
                m.name
            ));
        }
    }
    Ok(notes)
}

/// Scales down what no longer serves, removes release services beyond
/// `--keep` and secrets no service uses.
pub async fn cleanup(
    sw: &Swarm<'_>,
    history: &[Release],
    spec: &ReleaseSpec,
    number: u32,
) -> Result<(), Failure> {
    let good: Vec<u32> = history
        .iter()
        .filter(|r| r.status == ReleaseStatus::Succeeded)
        .map(|r| r.runs)
        .collect();
    for s in &spec.services {
        let mut own: Vec<_> = sw
            .app_services(&s.name)
            .await?
            .into_iter()
            .filter(|m| {
                m.release != Some(number)
                    && m.name == sw.release_name(&s.name, m.release.unwrap_or(0))
            })
            .collect();
        own.sort_by_key(|m| std::cmp::Reverse(m.release));
        for (i, m) in own.iter().enumerate() {
            let kept =
                i < sw.dh.options.keep_releases && m.release.is_some_and(|r| good.contains(&r));
            if !kept {
                sw.remove(&m.name).await?;
            }
        }
    }
    for id in sw.secret_ids().await? {
        // In use by a kept service: swarm refuses, which is what we want.
        let _ = sw.host().docker.delete_secret(&id).await;
    }
    Ok(())
}

/// What release `next` would do, against what runs now; changes nothing.
pub async fn dry_run(
    sw: &Swarm<'_>,
    spec: &ReleaseSpec,
    next: u32,
) -> Result<Vec<PlanLine>, Failure> {
    let host = sw.host().name.clone();
    let mut lines = Vec::new();
    let mut line = |action: &str, kind: &str, name: String, detail: String| {
        lines.push(PlanLine {
            host: host.clone(),
            action: action.into(),
            kind: kind.into(),
            name,
            detail,
        })
    };
    let network_exists = sw
        .host()
        .docker
        .inspect_network(
            &sw.network(),
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .is_ok();
    if !network_exists {
        line(
            "create",
            "network",
            sw.network(),
            "overlay, attachable".into(),
        );
    }
    for a in &spec.accessories {
        let name = sw.accessory_name(&a.name);
        if sw.service(&name).await?.is_none() {
            line(
                "create",
                "service",
                name,
                format!("{} ({}), stop-first", a.image, a.kind),
            );
        }
    }
    let strategy = sw.dh.options.strategy;
    for s in &spec.services {
        for n in &s.secrets {
            line(
                "create",
                "secret",
                format!(
                    "dm-{}-{}-r{next}",
                    sw.dh.profile,
                    n.to_lowercase().replace('_', "-")
                ),
                format!("from {n}, mounted at /run/secrets/{n}"),
            );
        }
        let in_place =
            matches!(strategy, Strategy::Rolling | Strategy::Recreate) || s.public_port.is_none();
        let (name, detail) = if in_place {
            let order = if strategy == Strategy::Recreate {
                "stop-first, all at once"
            } else {
                "start-first, one at a time"
            };
            (
                sw.stable_name(&s.name),
                format!("{} ×{}, {order}", s.image, s.replicas),
            )
        } else {
            (
                sw.release_name(&s.name, next),
                format!(
                    "{} ×{}, then traffic switch ({})",
                    s.image, s.replicas, strategy
                ),
            )
        };
        let action = if sw.service(&name).await?.is_some() {
            "update"
        } else {
            "create"
        };
        line(action, "service", name, detail);
        if let Some(p) = s.public_port
            && sw
                .host()
                .liveness(&sw.dh.proxy_name(&s.name))
                .await
                .is_err()
        {
            line(
                "create",
                "proxy",
                sw.dh.proxy_name(&s.name),
                format!("listens on :{p}"),
            );
        }
    }
    Ok(lines)
}
