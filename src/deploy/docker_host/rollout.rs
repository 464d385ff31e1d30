//! The moves of a release on Docker hosts: check images before touching
//! anything, bring up infrastructure, run the strategy per service, bake,
//! and clean up — or put the previous release back on every host.

use super::client::Host;
use super::plan::{self, Action, Desired, HostState, Seen};
use super::{Engine, app_container, reconcile};
use crate::analyse::cost::Strategy;
use crate::deploy::release::{Failure, Outcome, PlanLine};
use crate::deploy::spec::{AccessorySpec, ReleaseSpec};
use crate::state::releases::{Release, ReleaseStatus};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Infrastructure first, then every service's strategy, each planned
/// from what the hosts run at that moment and then carried out.
pub async fn roll_out(e: &Engine<'_>, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
    let d = desired(e, spec, number);
    let infra = plan::infrastructure(&d, &observe(e, spec).await?);
    execute(e, spec, &infra).await?;
    let steps = plan::services(&d, &observe(e, spec).await?);
    execute(e, spec, &steps).await
}

fn desired<'a>(e: &'a Engine<'_>, spec: &'a ReleaseSpec, number: u32) -> Desired<'a> {
    Desired {
        profile: &e.profile,
        spec,
        release: number,
        options: &e.options,
    }
}

/// What every host runs for the profile, read once.
pub async fn observe(e: &Engine<'_>, spec: &ReleaseSpec) -> Result<Vec<HostState>, String> {
    let mut out = Vec::new();
    for host in &e.hosts {
        let containers: Vec<Seen> = host
            .list(&e.profile)
            .await?
            .into_iter()
            .map(|c| Seen {
                running: c.running(),
                name: c.name,
                role: c.role,
                service: c.service,
                release: c.release,
            })
            .collect();
        let mut routed = std::collections::BTreeMap::new();
        for s in spec.services.iter().filter(|s| s.public_port.is_some()) {
            let proxy_runs = containers
                .iter()
                .any(|c| c.name == e.proxy_name(&s.name) && c.running);
            if proxy_runs {
                routed.insert(s.name.clone(), e.routed_targets(host, s).await?);
            }
        }
        let network = host
            .docker
            .inspect_network(&e.network(), None)
            .await
            .is_ok();
        out.push(HostState {
            host: host.name.clone(),
            network,
            containers,
            routed,
        });
    }
    Ok(out)
}

/// Carries out planned actions in order; a canary that pauses for a
/// human ends the run as paused.
pub async fn execute(
    e: &Engine<'_>,
    spec: &ReleaseSpec,
    actions: &[Action],
) -> Result<Outcome, Failure> {
    let mut stopping = Vec::new();
    let outcome = run(e, spec, actions, &mut stopping).await;
    // Every stop started in the background ends before the deploy does,
    // also when it failed: a rollback must find them stopped, not stopping.
    for s in stopping {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(why)) if outcome.is_ok() => return Err(Failure::from(why)),
            Err(join) if outcome.is_ok() => return Err(Failure::from(join.to_string())),
            _ => {}
        }
    }
    outcome
}

type Stopping = Vec<tokio::task::JoinHandle<Result<(), String>>>;

async fn run(
    e: &Engine<'_>,
    spec: &ReleaseSpec,
    actions: &[Action],
    stopping: &mut Stopping,
) -> Result<Outcome, Failure> {
    let host = |name: &str| {
        e.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| Failure::from(format!("no host {name} in this profile")))
    };
    let service = |name: &str| {
        spec.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Failure::from(format!("no service {name} in this release")))
    };
    for a in actions {
        match a {
            Action::CreateNetwork { host: h } => {
                let h = host(h)?;
                if h.ensure_network(&e.network(), &e.profile).await? {
                    e.progress
                        .step("network", format!("created {} on {}", e.network(), h.name));
                }
            }
            Action::StartAccessory { host: h, accessory } => {
                let acc = spec
                    .accessories
                    .iter()
                    .find(|x| &x.name == accessory)
                    .ok_or_else(|| format!("no dependency {accessory} in this release"))?;
                ensure_accessory(e, host(h)?, acc).await?;
            }
            Action::EnsureProxy {
                host: h,
                service: s,
            } => {
                e.ensure_proxy(host(h)?, service(s)?).await?;
            }
            Action::StartReplica {
                host: h,
                service: s,
                release,
                replica,
            } => {
                e.start_replica(host(h)?, service(s)?, *release, *replica)
                    .await?;
            }
            Action::AwaitReady {
                host: h,
                service: s,
                release,
                replicas,
            } => {
                let h = host(h)?;
                if let Err(f) = e.await_ready(h, service(s)?, *release, replicas).await {
                    return Err(e.with_logs(h, f).await);
                }
            }
            Action::Route {
                host: h,
                service: s,
                routes,
                hold,
            } => {
                let s = service(s)?;
                let mut table = e.base_table(s);
                table.releases = routes.clone();
                if *hold {
                    table.hold_timeout_ms = table
                        .hold_timeout_ms
                        .max(e.options.deploy_timeout.as_millis() as u64);
                }
                e.put_table(host(h)?, s, &table).await?;
            }
            Action::Stop {
                host: h,
                service: s,
                containers,
                background,
            } => {
                // A service gone from the app stops with the default grace.
                let grace = service(s).map_or(30, |s| s.stop_grace);
                if *background {
                    // Drained already: the next replica starts while this
                    // one exits, however long its server takes.
                    let (h, names) = (host(h)?.clone(), containers.clone());
                    stopping.push(tokio::spawn(async move {
                        for r in
                            futures_util::future::join_all(names.iter().map(|n| h.stop(n, grace)))
                                .await
                        {
                            r?;
                        }
                        Ok::<(), String>(())
                    }));
                } else {
                    e.stop_all(host(h)?, containers, grace).await?;
                }
            }
            Action::Remove {
                host: h, container, ..
            } => host(h)?.remove(container).await?,
            Action::Canary {
                service: s,
                release,
                old,
            } => {
                let out = super::canary::run(e, service(s)?, *release, old.clone()).await?;
                if out != Outcome::Live {
                    return Ok(out);
                }
            }
            Action::Say { phase, message } => e.progress.step(phase, message.clone()),
        }
    }
    Ok(Outcome::Live)
}

/// After cutover: containers must stay up and the new release's error
/// rate must stay within the analysis threshold, or it is rolled back.
pub async fn bake(e: &Engine<'_>, spec: &ReleaseSpec, number: u32) -> Result<(), Failure> {
    if e.options.bake.is_zero() {
        return Ok(());
    }
    e.progress.step(
        "bake",
        format!(
            "watching release {number} for {}s",
            e.options.bake.as_secs()
        ),
    );
    let a = &e.options.analysis;
    let mut before = HashMap::new();
    for host in &e.hosts {
        for s in spec.services.iter().filter(|s| s.public_port.is_some()) {
            if let Ok(st) = e.proxy_state(host, &s.name).await {
                before.insert(
                    (host.name.clone(), s.name.clone()),
                    st.metrics
                        .get(&number.to_string())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    let start = Instant::now();
    while start.elapsed() < e.options.bake {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for host in &e.hosts {
            for s in &spec.services {
                for r in 0..s.replicas {
                    let name = app_container(&e.profile, &s.name, number, r);
                    let l = host.liveness(&name).await?;
                    if !l.running || l.restarts > 0 {
                        let f = Failure::unhealthy(
                            format!("{name} stopped or restarted during the bake period"),
                            Some(name),
                            String::new(),
                        );
                        return Err(e.with_logs(host, f).await);
                    }
                }
                if s.public_port.is_none() {
                    continue;
                }
                let Ok(st) = e.proxy_state(host, &s.name).await else {
                    continue;
                };
                let now = st
                    .metrics
                    .get(&number.to_string())
                    .cloned()
                    .unwrap_or_default();
                let prev = before
                    .get(&(host.name.clone(), s.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let d = now.since(&prev);
                if d.requests >= a.min_requests
                    && d.success_rate().is_some_and(|r| r < a.min_success_rate)
                {
                    return Err(Failure::from(format!(
                        "{} on {}: {} of {} requests failed during the bake period",
                        s.name, host.name, d.errors, d.requests
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Puts the previous live release back on every host after a failure, and
/// removes what the failed release created.
pub async fn restore(
    e: &Engine<'_>,
    live: Option<&Release>,
    failed: u32,
) -> Result<String, String> {
    let msg = match live {
        Some(l) => {
            let spec: ReleaseSpec = serde_json::from_str(&l.spec).map_err(|x| x.to_string())?;
            reconcile::converge(e, &spec, l.runs)
                .await
                .map_err(|f| f.to_string())?;
            format!("traffic is back on release {}", l.runs)
        }
        None => {
            for host in &e.hosts {
                for c in host.list(&e.profile).await? {
                    if c.role == "proxy" {
                        let _ = e.route_nowhere(host, &c.service).await;
                    }
                }
            }
            "no earlier release to return to; the failed one was removed".to_string()
        }
    };
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            if c.role == "app" && c.release == failed.to_string() {
                host.remove(&c.name).await?;
            }
        }
    }
    Ok(msg)
}

/// Stops what no longer serves and removes containers of releases beyond
/// the ones kept for rollback (and every failed one).
pub async fn cleanup(
    e: &Engine<'_>,
    history: &[Release],
    spec: &ReleaseSpec,
    number: u32,
    previous: Option<&Release>,
) -> Result<(), Failure> {
    let went_live: Vec<(u32, bool)> = history
        .iter()
        .map(|r| (r.runs, r.status == ReleaseStatus::Succeeded))
        .collect();
    let kept = plan::kept_releases(&went_live, number, e.options.keep_releases);
    let warm = (e.options.strategy == Strategy::BlueGreen && !e.options.cleanup)
        .then(|| previous.map(|p| p.runs))
        .flatten();
    let d = desired(e, spec, number);
    let steps = plan::cleanup(&d, &observe(e, spec).await?, &kept, warm);
    execute(e, spec, &steps).await.map(|_| ())
}

/// Dependencies run as long-lived containers that a deploy never
/// replaces; only a missing or stopped one is (re)started.
pub(super) async fn ensure_accessory(
    e: &Engine<'_>,
    host: &Host,
    a: &AccessorySpec,
) -> Result<(), String> {
    let name = format!("dm-{}-{}", e.profile, a.name);
    if let Ok(l) = host.liveness(&name).await {
        if !l.running {
            host.start(&name).await?;
        }
        return Ok(());
    }
    let mut binds = Vec::new();
    if let Some((vol, path)) = &a.volume {
        let vol = format!("dm-{}-{vol}", e.profile);
        host.ensure_volume(&vol, &e.profile).await?;
        binds.push(format!("{vol}:{path}"));
    }
    let mut env: Vec<String> = a.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for n in &a.secrets {
        env.push(format!("{n}_FILE=/run/secrets/{n}"));
    }
    let mut labels = e.labels("accessory", &a.name);
    labels.insert("dm.kind".into(), a.kind.clone());
    let plan = super::client::ContainerPlan {
        name: &name,
        image: &a.image,
        labels,
        env,
        network: &e.network(),
        aliases: vec![a.name.clone()],
        binds,
        stop_grace: 60,
        ..Default::default()
    };

    host.create(&plan).await.map_err(|x| {
        format!(
            "{x}\n(dependency {} needs image {} on {}; pull or load it there)",
            a.name, a.image, host.name
        )
    })?;
    if !a.secrets.is_empty() {
        let mut files = Vec::new();
        for n in &a.secrets {
            let v = e
                .secrets
                .get(n)
                .ok_or_else(|| format!("secret {n} is needed by {}", a.name))?;
            files.push((n.clone(), v.as_bytes().to_vec()));
        }
        // Owned by the image's user: a dependency image that runs as a
        // user of its own must read them (official database images start
        // as root and drop privileges, so root-owned files did for them).
        let owner = host
            .image_user(&a.image)
            .await
            .and_then(|u| super::parse_owner(&u));
        host.put_files(&name, "/run/secrets", &files, owner).await?;
    }
    host.start(&name).await?;
    e.progress
        .step("accessory", format!("{name} started on {}", host.name));
    Ok(())
}

/// The dry run: the roll-out the planner would carry out against what
/// runs now, then the cleanup it would end with. Changes nothing.
pub async fn dry_run(
    e: &Engine<'_>,
    spec: &ReleaseSpec,
    next: u32,
    history: &[Release],
) -> Result<Vec<PlanLine>, Failure> {
    let d = desired(e, spec, next);
    let hosts = observe(e, spec).await?;
    let went_live: Vec<(u32, bool)> = history
        .iter()
        .map(|r| (r.runs, r.status == ReleaseStatus::Succeeded))
        .collect();
    let kept = plan::kept_releases(&went_live, next, e.options.keep_releases);
    let mut steps = plan::roll_out(&d, &hosts);
    steps.extend(
        plan::cleanup(&d, &hosts, &kept, None)
            .into_iter()
            .filter(|a| matches!(a, Action::Remove { .. })),
    );
    let names: Vec<String> = hosts.iter().map(|h| h.host.clone()).collect();
    Ok(steps
        .iter()
        .filter(|a| !matches!(a, Action::Say { .. }))
        .flat_map(|a| plan::describe(a, &e.profile, &names))
        .collect())
}
