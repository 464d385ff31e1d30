//! A deploy from start to finish: check everything that can be checked
//! before touching anything, take the lock, reconcile what an earlier run
//! left, bring up infrastructure, run the strategy per service, bake, and
//! clean up — rolling everything back on every host when any step fails.

use super::client::Host;
use super::{Engine, Failure, Outcome, app_container, lock, proxy_image, reconcile};
use crate::analyse::cost::Strategy;
use crate::deploy::spec::{AccessorySpec, ReleaseSpec};
use crate::state::Store;
use crate::state::releases::{NewRelease, Release};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub struct Request {
    pub spec: ReleaseSpec,
    pub dry_run: bool,
    pub lock_wait: Duration,
    pub break_lock: bool,
    /// The command line, recorded with the lock.
    pub command: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub release: Option<u32>,
    /// unchanged, succeeded, paused, failed, planned
    pub status: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanLine>,
}

#[derive(Debug, Serialize, Clone)]
pub struct PlanLine {
    pub host: String,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub detail: String,
}

/// Fills in image ids; an image missing on a host stops the deploy before
/// anything changes.
pub async fn resolve_images(e: &Engine<'_>, spec: &mut ReleaseSpec) -> Result<(), String> {
    for s in &mut spec.services {
        let mut ids = BTreeSet::new();
        for host in &e.hosts {
            match host.image_id(&s.image).await? {
                Some(id) => {
                    ids.insert(id);
                }
                None => {
                    return Err(format!(
                        "image {} of service {} is not on {}; build or load it there (docker build, docker load); nothing was changed",
                        s.image, s.name, host.name
                    ));
                }
            }
        }
        if ids.len() > 1 {
            return Err(format!(
                "image {} differs between hosts ({}); push the same build to every host",
                s.image,
                ids.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        s.image_id = ids.into_iter().next().unwrap_or_default();
    }
    Ok(())
}

pub fn images_json(spec: &ReleaseSpec) -> serde_json::Value {
    spec.services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                serde_json::json!({"image": s.image, "id": s.image_id}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Rolling => "rolling",
        Strategy::Recreate => "recreate",
        Strategy::BlueGreen => "blue-green",
        Strategy::Canary => "canary",
    }
}

pub async fn deploy(
    e: &mut Engine<'_>,
    store: &mut Store,
    mut req: Request,
) -> Result<Report, Failure> {
    resolve_images(e, &mut req.spec).await?;
    let fingerprint = req.spec.fingerprint();
    if req.dry_run {
        return plan(e, store, &req.spec, &fingerprint).await;
    }
    for host in &e.hosts {
        e.proxy_image = proxy_image::ensure_proxy_image(host).await?;
    }
    let mut locked: Vec<&Host> = Vec::new();
    for host in &e.hosts {
        match lock::acquire(
            host,
            &e.profile,
            &e.proxy_image,
            &req.command,
            req.lock_wait,
            req.break_lock,
        )
        .await
        {
            Ok(note) => {
                if let Some(n) = note {
                    e.progress.step("lock", n);
                }
                locked.push(host);
            }
            Err(err) => {
                for h in locked {
                    let _ = lock::release(h, &e.profile).await;
                }
                return Err(err.into());
            }
        }
    }
    let result = locked_deploy(e, store, &req, &fingerprint).await;
    for host in &e.hosts {
        let _ = lock::release(host, &e.profile).await;
    }
    result
}

async fn locked_deploy(
    e: &Engine<'_>,
    store: &mut Store,
    req: &Request,
    fingerprint: &str,
) -> Result<Report, Failure> {
    for note in reconcile::reconcile(e, store).await? {
        e.progress.step("reconcile", note);
    }
    let live = store.live_release(&e.profile).map_err(|x| x.to_string())?;
    if let Some(r) = unchanged(e, live.as_ref(), fingerprint, "nothing to do").await? {
        return Ok(r);
    }
    let hosts: Vec<String> = e.hosts.iter().map(|h| h.name.clone()).collect();
    let spec_json = serde_json::to_string(&req.spec).map_err(|x| x.to_string())?;
    let strategy = strategy_name(e.options.strategy);
    let number = store
        .begin_release(NewRelease {
            profile: &e.profile,
            strategy,
            runs: None,
            hosts: &hosts,
            fingerprint,
            images: &images_json(&req.spec),
            spec: &spec_json,
        })
        .map_err(|x| x.to_string())?;
    let started = Instant::now();
    e.progress.step(
        "release",
        format!("release {number} of {} ({strategy})", e.profile),
    );
    let outcome = roll_out(e, &req.spec, number).await;
    let events = |store: &Store| {
        for ev in e.progress.events() {
            let _ = store.release_event(&e.profile, number, &ev.phase, &ev.message);
        }
    };
    match outcome {
        Ok(Outcome::Live) => {
            cleanup(e, store, &req.spec, number, live.as_ref()).await?;
            e.progress.step(
                "done",
                format!(
                    "release {number} is live ({:.1}s)",
                    started.elapsed().as_secs_f64()
                ),
            );
            events(store);
            store
                .finish_release(&e.profile, number, "succeeded", None)
                .map_err(|x| x.to_string())?;
            Ok(Report {
                release: Some(number),
                status: "succeeded".into(),
                message: format!("release {number} is live"),
                plan: vec![],
            })
        }
        Ok(Outcome::Paused(why)) => {
            e.progress.step("paused", why.clone());
            events(store);
            store
                .finish_release(&e.profile, number, "paused", Some(&why))
                .map_err(|x| x.to_string())?;
            Ok(Report {
                release: Some(number),
                status: "paused".into(),
                message: why,
                plan: vec![],
            })
        }
        Err(f) => {
            e.progress.step("failed", f.why.clone());
            let back = restore(e, live.as_ref(), number).await;
            match &back {
                Ok(msg) => e.progress.step("rollback", msg.clone()),
                Err(x) => e
                    .progress
                    .step("rollback", format!("could not roll back: {x}")),
            }
            events(store);
            store
                .finish_release(&e.profile, number, "failed", Some(&f.to_string()))
                .map_err(|x| x.to_string())?;
            Err(Failure {
                why: format!("release {number} failed and was rolled back: {}", f.why),
                ..f
            })
        }
    }
}

/// The report for a deploy that would change nothing: the live release
/// already runs this exact spec and serves alone.
async fn unchanged(
    e: &Engine<'_>,
    live: Option<&Release>,
    fingerprint: &str,
    what: &str,
) -> Result<Option<Report>, String> {
    let Some(l) = live else { return Ok(None) };
    if l.fingerprint != fingerprint || !reconcile::is_serving(e, l).await? {
        return Ok(None);
    }
    Ok(Some(Report {
        release: Some(l.number),
        status: "unchanged".into(),
        message: format!("release {} already runs this exact spec; {what}", l.number),
        plan: vec![],
    }))
}

/// Runs the strategy for every service, then the bake period.
async fn roll_out(e: &Engine<'_>, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
    for host in &e.hosts {
        if host.ensure_network(&e.network(), &e.profile).await? {
            e.progress.step(
                "network",
                format!("created {} on {}", e.network(), host.name),
            );
        }
        for a in &spec.accessories {
            ensure_accessory(e, host, a).await?;
        }
        for s in &spec.services {
            e.ensure_proxy(host, s).await?;
        }
    }
    for s in &spec.services {
        let out = match e.options.strategy {
            Strategy::Rolling => super::rolling::run(e, s, number).await?,
            Strategy::BlueGreen => super::blue_green::run(e, s, number).await?,
            Strategy::Canary => super::canary::run(e, s, number).await?,
            Strategy::Recreate => super::recreate::run(e, s, number).await?,
        };
        if out != Outcome::Live {
            return Ok(out);
        }
    }
    bake(e, spec, number).await?;
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
                        let f = Failure {
                            why: format!("{name} stopped or restarted during the bake period"),
                            container: Some(name),
                            logs: String::new(),
                        };
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
                        let mut t = crate::deploy::proxy::table::RouteTable::new(&c.service);
                        t.drain_timeout_ms = e.options.drain_timeout.as_millis() as u64;
                        let body = serde_json::to_string(&t).map_err(|x| x.to_string())?;
                        let _ = e.proxy_ctl(host, &c.service, "PUT", "/table", &body).await;
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
async fn cleanup(
    e: &Engine<'_>,
    store: &Store,
    spec: &ReleaseSpec,
    number: u32,
    previous: Option<&Release>,
) -> Result<(), String> {
    let releases = store.releases(&e.profile).map_err(|x| x.to_string())?;
    let mut keep: Vec<u32> = vec![number];
    for r in releases.iter().filter(|r| r.status == "succeeded") {
        if !keep.contains(&r.runs) && keep.len() <= e.options.keep_releases {
            keep.push(r.runs);
        }
    }
    let warm = (e.options.strategy == Strategy::BlueGreen && !e.options.cleanup)
        .then(|| previous.map(|p| p.runs))
        .flatten();
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            if c.role != "app" {
                continue;
            }
            let rel: u32 = c.release.parse().unwrap_or(0);
            if rel == number {
                continue;
            }
            let service_gone = !spec.services.iter().any(|s| s.name == c.service);
            if !keep.contains(&rel) || service_gone {
                host.remove(&c.name).await?;
            } else if c.running() && Some(rel) != warm {
                host.stop(&c.name, 30).await?;
            }
        }
    }
    Ok(())
}

/// Dependencies run as long-lived containers that a deploy never
/// replaces; only a missing or stopped one is (re)started.
async fn ensure_accessory(e: &Engine<'_>, host: &Host, a: &AccessorySpec) -> Result<(), String> {
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
        host.put_files(&name, "/run/secrets", &files, None).await?;
    }
    host.start(&name).await?;
    e.progress
        .step("accessory", format!("{name} started on {}", host.name));
    Ok(())
}

/// The dry run: what a deploy would create, replace and remove, against
/// what runs now. Changes nothing.
async fn plan(
    e: &Engine<'_>,
    store: &Store,
    spec: &ReleaseSpec,
    fingerprint: &str,
) -> Result<Report, Failure> {
    let live = store.live_release(&e.profile).map_err(|x| x.to_string())?;
    let next = store
        .releases(&e.profile)
        .map_err(|x| x.to_string())?
        .first()
        .map_or(1, |r| r.number + 1);
    if let Some(r) = unchanged(
        e,
        live.as_ref(),
        fingerprint,
        "a deploy would change nothing",
    )
    .await?
    {
        return Ok(r);
    }
    let mut lines = Vec::new();
    let line = |host: &Host, action: &str, kind: &str, name: &str, detail: String| PlanLine {
        host: host.name.clone(),
        action: action.into(),
        kind: kind.into(),
        name: name.into(),
        detail,
    };
    for host in &e.hosts {
        let existing = host.list(&e.profile).await?;
        let has = |n: &str| existing.iter().any(|c| c.name == n);
        if host
            .docker
            .inspect_network(&e.network(), None)
            .await
            .is_err()
        {
            lines.push(line(
                host,
                "create",
                "network",
                &e.network(),
                "bridge".into(),
            ));
        }
        for a in &spec.accessories {
            let n = format!("dm-{}-{}", e.profile, a.name);
            if !has(&n) {
                lines.push(line(host, "create", "accessory", &n, a.image.clone()));
                if let Some((v, p)) = &a.volume {
                    lines.push(line(
                        host,
                        "create",
                        "volume",
                        &format!("dm-{}-{v}", e.profile),
                        p.clone(),
                    ));
                }
            } else {
                lines.push(line(
                    host,
                    "keep",
                    "accessory",
                    &n,
                    "never touched by a deploy".into(),
                ));
            }
        }
        for s in &spec.services {
            if let Some(p) = s.public_port {
                let n = e.proxy_name(&s.name);
                if !has(&n) {
                    lines.push(line(
                        host,
                        "create",
                        "proxy",
                        &n,
                        format!("listens on port {p}"),
                    ));
                }
            }
            let old: Vec<&super::client::Managed> = existing
                .iter()
                .filter(|c| c.role == "app" && c.service == s.name && c.running())
                .collect();
            for r in 0..s.replicas {
                lines.push(line(
                    host,
                    "create",
                    "container",
                    &app_container(&e.profile, &s.name, next, r),
                    format!(
                        "{} ({})",
                        s.image,
                        &s.image_id.chars().take(19).collect::<String>()
                    ),
                ));
            }
            for c in old {
                lines.push(line(
                    host,
                    "replace",
                    "container",
                    &c.name,
                    format!(
                        "release {} → {next}, {}",
                        c.release,
                        strategy_name(e.options.strategy)
                    ),
                ));
            }
        }
        for c in existing
            .iter()
            .filter(|c| c.role == "app" && !spec.services.iter().any(|s| s.name == c.service))
        {
            lines.push(line(
                host,
                "remove",
                "container",
                &c.name,
                format!("service {} is no longer in the app", c.service),
            ));
        }
    }
    Ok(Report {
        release: Some(next),
        status: "planned".into(),
        message: format!(
            "dry run: release {next} would make {} change(s); nothing was changed",
            lines.iter().filter(|l| l.action != "keep").count()
        ),
        plan: lines,
    })
}
