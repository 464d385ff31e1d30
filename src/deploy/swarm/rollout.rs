//! The moves of a release on Swarm, in the same order as on Docker hosts:
//! network and dependencies, the strategy per service, a bake, then
//! cleanup — and on any failure, traffic back on the live release and no
//! trace of the new.

use super::objects::{self, Order};
use super::plan::{self, Action, Desired, SwarmState};
use super::{Swarm, canary, update};
use crate::deploy::release::{Failure, Outcome, PlanLine};
use crate::deploy::spec::{ReleaseSpec, ServiceSpec};
use crate::state::releases::{Release, ReleaseStatus};
use std::time::{Duration, Instant};

/// Plans the roll-out from what the swarm runs, then carries it out.
pub async fn roll_out(sw: &Swarm<'_>, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
    let now = observe(sw, spec).await?;
    let steps = plan::roll_out(&desired(sw, spec, number), &now);
    execute(sw, spec, number, &steps).await
}

fn desired<'a>(sw: &'a Swarm<'_>, spec: &'a ReleaseSpec, number: u32) -> Desired<'a> {
    Desired {
        profile: &sw.dh.profile,
        spec,
        release: number,
        options: &sw.dh.options,
    }
}

/// What the swarm runs for the profile, read once.
pub async fn observe(sw: &Swarm<'_>, spec: &ReleaseSpec) -> Result<SwarmState, String> {
    let network = sw
        .host()
        .docker
        .inspect_network(
            &sw.network(),
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .is_ok();
    let managed = sw.services().await?;
    let stopped = managed
        .iter()
        .filter(|m| m.replicas == 0)
        .map(|m| m.name.clone())
        .collect();
    let services = managed.into_iter().map(|m| m.name).collect();
    let mut routed = std::collections::BTreeMap::new();
    let mut proxies = Vec::new();
    for s in spec.services.iter().filter(|s| s.public_port.is_some()) {
        let mut everywhere = true;
        for host in sw.proxy_hosts() {
            let proxy = host.liveness(&sw.dh.proxy_name(&s.name)).await;
            everywhere &= proxy.is_ok_and(|l| l.running);
        }
        if everywhere {
            proxies.push(s.name.clone());
        }
        routed.insert(s.name.clone(), sw.routed(s).await?);
    }
    Ok(SwarmState {
        manager: sw.host().name.clone(),
        network,
        services,
        stopped,
        routed,
        proxies,
    })
}

/// Carries out planned actions in order. A canary that pauses for a
/// human ends the run as paused once the other services are done.
pub async fn execute(
    sw: &Swarm<'_>,
    spec: &ReleaseSpec,
    number: u32,
    actions: &[Action],
) -> Result<Outcome, Failure> {
    let service = |name: &str| {
        spec.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Failure::from(format!("no service {name} in this release")))
    };
    let mut outcome = Outcome::Live;
    for a in actions {
        match a {
            Action::CreateNetwork => {
                if objects::ensure_network(sw).await? {
                    sw.progress().step(
                        "network",
                        format!("created overlay network {}", sw.network()),
                    );
                }
            }
            Action::CreateAccessory { accessory } => {
                let a = spec
                    .accessories
                    .iter()
                    .find(|x| &x.name == accessory)
                    .ok_or_else(|| format!("no dependency {accessory} in this release"))?;
                let files = objects::secret_files(sw, &a.secrets, &a.image, number).await?;
                sw.apply(objects::accessory_service(sw, a, &files)?).await?;
                sw.progress().step(
                    "accessory",
                    format!(
                        "created service {} ({})",
                        sw.accessory_name(&a.name),
                        a.kind
                    ),
                );
            }
            Action::StartAccessory { accessory } => {
                let name = sw.accessory_name(accessory);
                sw.scale(&name, 1).await?;
                sw.progress()
                    .step("accessory", format!("scaled service {name} back to 1 task"));
            }
            Action::EnsureProxy { service: s } => {
                for host in sw.proxy_hosts() {
                    sw.dh.ensure_proxy(host, service(s)?).await?;
                }
            }
            Action::UpdateInPlace {
                service: s,
                release,
                order,
                ..
            } => update::in_place(sw, service(s)?, *release, (*order).into()).await?,
            Action::StartOwn {
                service: s,
                release,
                ..
            } => {
                update::start_own(sw, service(s)?, *release).await?;
            }
            Action::Route {
                service: s,
                swarm_service,
                release,
            } => sw.route_to(service(s)?, swarm_service, *release).await?,
            Action::ScaleToZero { swarm_service } => sw.scale(swarm_service, 0).await?,
            Action::Canary {
                service: s,
                release,
                before,
                canary,
            } => {
                let o =
                    canary::run(sw, service(s)?, *release, before.clone(), canary.clone()).await?;
                if let Outcome::Paused(_) = o {
                    outcome = o;
                }
            }
            Action::Say { phase, message } => sw.progress().step(phase, message.clone()),
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
    for a in &spec.accessories {
        if sw
            .service(&sw.accessory_name(&a.name))
            .await?
            .is_none_or(|m| m.replicas == 0)
        {
            return Ok(false);
        }
    }
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
    // Dependencies first: a profile stopped (or stopped behind its proxies
    // after a move elsewhere) comes back whole.
    for a in &spec.accessories {
        let name = sw.accessory_name(&a.name);
        if sw.service(&name).await?.is_some_and(|m| m.replicas == 0) {
            sw.scale(&name, 1).await?;
        }
    }
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
            update::in_place(sw, s, runs, Order::StartFirst).await?;
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

/// What release `next` would do, against what runs now: the planner's
/// list, as lines. Changes nothing.
pub async fn dry_run(
    sw: &Swarm<'_>,
    spec: &ReleaseSpec,
    next: u32,
) -> Result<Vec<PlanLine>, Failure> {
    let now = observe(sw, spec).await?;
    let d = desired(sw, spec, next);
    let proxies: Vec<String> = sw.proxy_hosts().iter().map(|h| h.name.clone()).collect();
    Ok(plan::roll_out(&d, &now)
        .iter()
        .flat_map(|a| plan::describe(a, &d, &now.manager, &proxies))
        .collect())
}
