//! Deploy commands: argument parsing, the async runtime, and printing.
//! The work happens in `deploy::docker_host`.

use super::output::{json, table};
use super::targets::{DestroyArgs, HostArgs, with_engine};
use super::{Ctx, Failure, Res};
use crate::deploy::EngineKind;
use crate::deploy::docker_host::{Engine, monitor, status};
use crate::deploy::engines;
use crate::deploy::events::Progress;
use crate::deploy::proxy;
use crate::deploy::release::{self, LockRequest};
use crate::deploy::spec::{ReleaseSpec, collect_secrets};
use crate::deploy::strategy::{self, Options, parse_duration};
use crate::describe;
use crate::state::Profile;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// rolling, blue-green, canary or recreate.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Canary share of the first step (then 100).
    #[arg(long)]
    pub canary_percent: Option<u32>,
    /// Canary steps in percent, e.g. 10,50,100.
    #[arg(long)]
    pub canary_steps: Option<String>,
    /// Time per canary step (`60s`), or `manual` to wait for `promote`.
    #[arg(long, default_value = "60s")]
    pub pause: String,
    /// Cohort cookie values (`dm-cohort`) always sent to the canary.
    #[arg(long = "canary-allow")]
    pub canary_allow: Vec<String>,
    /// Canary analysis: time between measurements.
    #[arg(long, default_value = "10s")]
    pub analysis_interval: String,
    /// Canary analysis: lowest success rate (0–1) a measurement passes with.
    #[arg(long, default_value_t = 0.99)]
    pub min_success_rate: f64,
    /// Canary analysis: highest p99 latency a measurement passes with.
    #[arg(long, default_value = "1000ms")]
    pub max_p99: String,
    /// Canary analysis: failed measurements tolerated per step.
    #[arg(long, default_value_t = 0)]
    pub failure_limit: u32,
    #[arg(long, default_value = "30s")]
    pub deploy_timeout: String,
    #[arg(long, default_value = "30s")]
    pub drain_timeout: String,
    /// Watch after cutover; a release going bad then is rolled back.
    #[arg(long, default_value = "15s")]
    pub bake: String,
    /// Releases whose containers are kept for rollback.
    #[arg(long, default_value_t = 5)]
    pub keep: usize,
    /// Blue-green: stop the previous colour instead of keeping it warm.
    #[arg(long)]
    pub cleanup: bool,
    /// Print what would change against what runs now; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy to the hosts that answer; without it, one unreachable host
    /// stops the deploy before any host changes.
    #[arg(long)]
    pub skip_unreachable: bool,
    /// Several Docker hosts: replace replica N on every host together
    /// (faster) instead of one host after another (the default: a bad
    /// release meets one host's traffic first).
    #[arg(long)]
    pub all_hosts_at_once: bool,
    /// Deploy this app description (saved as a new profile version).
    #[arg(long)]
    pub app: Option<PathBuf>,
    /// Secret values, read at deploy time and never stored.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// How long to wait for another deploy's lock.
    #[arg(long, default_value = "0s")]
    pub lock_wait: String,
    /// Take the lock even if someone holds it.
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// Release number to return to.
    #[arg(long)]
    pub to: Option<u32>,
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    #[arg(long, default_value = "0s")]
    pub lock_wait: String,
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: HostArgs,
    pub service: Option<String>,
    #[arg(short, long)]
    pub follow: bool,
    #[arg(long, default_value_t = 100)]
    pub tail: usize,
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// Longest a request is held before it gets 504.
    #[arg(long, default_value = "30s")]
    pub max: String,
}

#[derive(Args, Debug)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub target: HostArgs,
    #[arg(long, default_value = "60s")]
    pub interval: String,
    /// http:// URL that receives a JSON alert when a verdict changes.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Stop after this many rounds (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u32>,
    #[arg(long, default_value_t = 0.99)]
    pub min_success_rate: f64,
}

#[derive(Subcommand, Debug)]
pub enum ProxyCmd {
    /// Serve traffic for one service (inside the proxy container).
    Run {
        #[arg(long)]
        service: String,
        #[arg(long, default_value = "0.0.0.0:8000")]
        listen: String,
        #[arg(long, default_value = proxy::admin::DEFAULT_ADMIN)]
        admin: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Empties a directory, keeping it (inside a helper container of the
    /// proxy image: a volume is cleared before a copy replaces it).
    #[command(hide = true)]
    EmptyDir { path: PathBuf },
    /// Prints a directory's manifest (size, SHA-256, owner and mode of
    /// every entry), one JSON array per line: a volume checked where it is.
    #[command(hide = true)]
    Manifest { path: PathBuf },
    /// Removes paths under a directory (the final sync of a volume copy).
    #[command(hide = true)]
    RemovePaths { root: PathBuf, paths: Vec<String> },
    /// Writes a tar of paths under a directory to a file (the changes a
    /// final sync fetches in one piece).
    #[command(hide = true)]
    Pack {
        root: PathBuf,
        out: PathBuf,
        paths: Vec<String>,
    },
    /// One call to a running proxy's control API; prints its JSON answer.
    Ctl {
        #[arg(long, default_value = proxy::admin::DEFAULT_ADMIN)]
        admin: String,
        method: String,
        path: String,
        #[arg(default_value = "")]
        body: String,
    },
}

/// The proxy's serving threads: `DM_PROXY_THREADS` (default: one per
/// CPU). The proxy is its own program (inside its container), so it has
/// no session.
fn proxy_threads() -> usize {
    std::env::var("DM_PROXY_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(2)
        .max(1)
}

fn duration(flag: &str, text: &str) -> Result<Duration, Failure> {
    parse_duration(text).map_err(|e| Failure::input(format!("--{flag}: {e}")))
}

pub(crate) fn command_line() -> String {
    std::env::args().skip(1).collect::<Vec<_>>().join(" ")
}

/// Prints a failed operation (human or JSON); the exit code follows its
/// kind (`super::exit_code`).
fn failed(ctx: &Ctx, f: release::Failure) -> Failure {
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"status": "failed", "kind": f.kind, "error": f.why, "container": f.container, "logs": f.logs})
        );
    } else {
        eprintln!("error: {f}");
    }
    Failure {
        code: super::exit_code(f.kind),
        ..Failure::explained(f.why)
    }
}

/// Prints a deploy, rollback or promote outcome; a failure exits 1.
pub(crate) fn answer(ctx: &Ctx, out: Result<release::Report, release::Failure>) -> Res {
    match out {
        Ok(r) => {
            print_report(ctx, &r);
            Ok(())
        }
        Err(f) => Err(failed(ctx, f)),
    }
}

fn print_report(ctx: &Ctx, r: &release::Report) {
    if ctx.json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    if !r.plan.is_empty() {
        let mut t = table(&["host", "action", "kind", "name", "detail"]);
        for l in &r.plan {
            t.add_row(vec![&l.host, &l.action, &l.kind, &l.name, &l.detail]);
        }
        println!("{t}");
    }
    println!("{}", r.message);
}

fn options(ctx: &Ctx, a: &DeployArgs, p: &Profile) -> Result<Options, Failure> {
    let ask = crate::session::DeployAsk {
        strategy: a
            .strategy
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(Failure::input)?,
        pause: Some(a.pause.clone()),
        ..Default::default()
    };
    let base = ctx
        .session
        .deploy_options(p, &ask)
        .map_err(|e| Failure::input(format!("--pause: {e}")))?;
    let mut o = Options {
        deploy_timeout: duration("deploy-timeout", &a.deploy_timeout)?,
        drain_timeout: duration("drain-timeout", &a.drain_timeout)?,
        bake: duration("bake", &a.bake)?,
        keep_releases: a.keep,
        cleanup: a.cleanup,
        canary_allowlist: a.canary_allow.clone(),
        skip_unreachable: a.skip_unreachable,
        all_hosts_at_once: a.all_hosts_at_once,
        ..base
    };
    if let Some(steps) = &a.canary_steps {
        o.canary_steps = strategy::parse_steps(steps).map_err(Failure::input)?;
    } else if let Some(pct) = a.canary_percent {
        o.canary_steps = strategy::parse_steps(&pct.to_string()).map_err(Failure::input)?;
    }
    o.analysis.interval = duration("analysis-interval", &a.analysis_interval)?;
    o.analysis.min_success_rate = a.min_success_rate;
    o.analysis.max_p99_ms = duration("max-p99", &a.max_p99)?.as_secs_f64() * 1000.0;
    o.analysis.failure_limit = a.failure_limit;
    Ok(o)
}

pub(crate) fn deploy_cmd(ctx: &Ctx, a: DeployArgs) -> Res {
    let mut store = ctx.store()?;
    let mut profile = store.get(&a.target.profile)?;
    let opts = options(ctx, &a, &profile)?;
    if let Some(path) = &a.app {
        let loaded = describe::load_path(path, &ctx.compose_profiles)?;
        if loaded.app != profile.app && !a.dry_run {
            profile.app = loaded.app;
            profile.app_source = path.display().to_string();
            profile = store.update(profile, &format!("deploy --app {}", path.display()))?;
        } else {
            profile.app = loaded.app;
        }
    }
    let app = crate::analyse::fitness::swaps::effective(&profile).map_err(Failure::input)?;
    let spec = ReleaseSpec::from_app(&app).map_err(Failure::input)?;
    let secrets = if a.dry_run {
        Default::default()
    } else {
        collect_secrets(&spec.secret_names(), a.env_file.as_deref()).map_err(Failure::input)?
    };
    let req = engines::DeployRequest {
        spec,
        options: opts,
        secrets,
        hosts: a.target.hosts.clone(),
        dry_run: a.dry_run,
        lock: LockRequest {
            command: command_line(),
            wait: duration("lock-wait", &a.lock_wait)?,
            force: a.break_lock,
        },
    };
    let progress = Progress::new(ctx.json);
    let out = ctx.session.deploy(&profile, &mut store, &progress, req);
    progress.finish();
    answer(ctx, out)
}

pub(crate) fn rollback_cmd(ctx: &Ctx, a: RollbackArgs) -> Res {
    let mut store = ctx.store()?;
    let profile = store.get(&a.target.profile)?;
    let wait = duration("lock-wait", &a.lock_wait)?;
    // Only needed when the release's containers are gone and are rebuilt.
    let secrets = ReleaseSpec::from_app(&profile.app)
        .ok()
        .and_then(|s| collect_secrets(&s.secret_names(), a.env_file.as_deref()).ok())
        .unwrap_or_default();
    let progress = Progress::new(ctx.json);
    let req = engines::RollbackRequest {
        to: a.to,
        secrets,
        hosts: a.target.hosts.clone(),
        lock: LockRequest {
            command: command_line(),
            wait,
            force: a.break_lock,
        },
    };
    let out = ctx.session.rollback(&profile, &mut store, &progress, req);
    progress.finish();
    answer(ctx, out)
}

pub(crate) fn promote_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    let mut store = ctx.store()?;
    let profile = store.get(&a.profile)?;
    let progress = Progress::new(ctx.json);
    let out = ctx.session.promote(
        &profile,
        &mut store,
        &progress,
        &a.hosts,
        &LockRequest {
            command: command_line(),
            ..LockRequest::default()
        },
    );
    progress.finish();
    answer(ctx, out)
}

pub(crate) fn releases_cmd(ctx: &Ctx, profile: &str) -> Res {
    let store = ctx.store()?;
    let p = store.get(profile)?;
    let list = store.releases(&p.name)?;
    if ctx.json {
        let with_events: Vec<serde_json::Value> = list
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["events"] = serde_json::to_value(
                    store.release_events(&p.name, r.number).unwrap_or_default(),
                )
                .unwrap_or_default();
                v
            })
            .collect();
        json(&with_events);
        return Ok(());
    }
    let mut t = table(&[
        "release", "status", "strategy", "runs", "images", "by", "started", "took", "reason",
    ]);
    for r in list {
        let images = r
            .images
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v["image"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        t.add_row(vec![
            r.number.to_string(),
            r.status.to_string(),
            r.strategy,
            r.runs.to_string(),
            images,
            r.actor,
            r.started_at.chars().take(19).collect(),
            r.duration_ms
                .map_or("-".into(), |d| format!("{:.1}s", d as f64 / 1000.0)),
            r.reason
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

fn platform_of(ctx: &Ctx, a: &HostArgs) -> Result<EngineKind, Failure> {
    Ok(ctx.session.engine_of(&ctx.store()?.get(&a.profile)?))
}

pub(crate) fn status_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    match platform_of(ctx, &a)? {
        EngineKind::Swarm => return super::swarm::status_cmd(ctx, a),
        EngineKind::Kubernetes => return super::kubernetes::status_cmd(ctx, a),
        EngineKind::DockerHost => {}
    }
    let st = with_engine(ctx, &a, async |e: &Engine<'_>, _: &Profile| {
        status::status(e).await
    })?;
    if ctx.json {
        json(&st);
        return Ok(());
    }
    let mut t = table(&[
        "host",
        "container",
        "role",
        "release",
        "state",
        "health",
        "restarts",
        "cpu",
        "memory",
    ]);
    for c in &st.containers {
        t.add_row(vec![
            c.host.clone(),
            c.name.clone(),
            c.role.clone(),
            c.release.clone(),
            c.state.clone(),
            c.health.clone(),
            c.restarts.to_string(),
            c.cpu_percent.map_or("-".into(), |p| format!("{p:.1}%")),
            c.memory_bytes
                .map_or("-".into(), |m| format!("{:.1} MiB", m as f64 / 1048576.0)),
        ]);
    }
    println!("{t}");
    for p in &st.proxies {
        let routes: Vec<String> = p
            .routes
            .iter()
            .map(|(r, w)| format!("release {r}: {w}%"))
            .collect();
        let counts: Vec<String> = p
            .requests
            .iter()
            .map(|(r, (n, e))| format!("release {r}: {n} requests, {e} errors"))
            .collect();
        println!(
            "proxy {} on {}{}: {} | {}{}",
            p.service,
            p.host,
            if p.paused { " (paused)" } else { "" },
            routes.join(", "),
            counts.join(", "),
            if p.unhealthy_targets.is_empty() {
                String::new()
            } else {
                format!(
                    " | failing health checks: {}",
                    p.unhealthy_targets.join(", ")
                )
            }
        );
    }
    Ok(())
}

pub(crate) fn logs_cmd(ctx: &Ctx, a: LogsArgs) -> Res {
    let json_mode = ctx.json;
    let store = ctx.store()?;
    let profile = store.get(&a.target.profile)?;
    let progress = Progress::new(ctx.json);
    let r = crate::deploy::engines::LogsRequest {
        hosts: &a.target.hosts,
        service: a.service.as_deref(),
        follow: a.follow,
        tail: a.tail,
    };
    let out = ctx.session.logs(&profile, &progress, &r, |source, line| {
        if json_mode {
            println!("{}", serde_json::json!({"source": source, "line": line}));
        } else {
            println!("{source} | {line}");
        }
    });
    progress.finish();
    out.map_err(|e| Failure::failed(e.to_string()))
}

pub(crate) fn stop_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    match platform_of(ctx, &a)? {
        EngineKind::Swarm => return super::swarm::stop_cmd(ctx, a),
        EngineKind::Kubernetes => return super::kubernetes::stop_cmd(ctx, a),
        EngineKind::DockerHost => {}
    }
    let n = with_engine(ctx, &a, async |e: &Engine<'_>, _: &Profile| {
        status::stop(e).await
    })?;
    if ctx.json {
        json(&serde_json::json!({"stopped": n}));
    } else {
        println!(
            "stopped {n} container(s) of {}; deploy again to start",
            a.profile
        );
    }
    Ok(())
}

pub(crate) fn destroy_cmd(ctx: &Ctx, a: DestroyArgs) -> Res {
    match platform_of(ctx, &a.target)? {
        EngineKind::Swarm => return super::swarm::destroy_cmd(ctx, a),
        EngineKind::Kubernetes => return super::kubernetes::destroy_cmd(ctx, a),
        EngineKind::DockerHost => {}
    }
    let volumes = a.volumes;
    let (c, v) = with_engine(ctx, &a.target, async |e: &Engine<'_>, _: &Profile| {
        status::destroy(e, volumes).await
    })?;
    if ctx.json {
        json(&serde_json::json!({"containers_removed": c, "volumes_removed": v}));
    } else if volumes {
        println!(
            "removed {c} container(s) and {v} volume(s) of {}",
            a.target.profile
        );
    } else {
        println!(
            "removed {c} container(s) of {}; volumes were kept (--volumes removes them)",
            a.target.profile
        );
    }
    Ok(())
}

pub(crate) fn pause_cmd(ctx: &Ctx, a: &HostArgs, pause: bool, max: Option<String>) -> Res {
    let max_ms = match &max {
        Some(m) => Some(duration("max", m)?.as_millis() as u64),
        None => None,
    };
    let n = with_engine(ctx, a, async |e: &Engine<'_>, _: &Profile| {
        let mut n = 0;
        for host in &e.hosts {
            for c in host.list(&e.profile).await? {
                if c.role == "proxy" && c.running() {
                    let body = serde_json::json!({"max_pause_ms": max_ms}).to_string();
                    let path = if pause { "/pause" } else { "/resume" };
                    e.proxy_ctl(host, &c.service, "POST", path, &body).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    })?;
    let what = if pause { "paused" } else { "resumed" };
    if ctx.json {
        json(&serde_json::json!({ what: n }));
    } else {
        println!("{what} {n} proxy(ies) of {}", a.profile);
    }
    Ok(())
}

pub(crate) fn monitor_cmd(ctx: &Ctx, a: MonitorArgs) -> Res {
    let interval = duration("interval", &a.interval)?;
    let store = ctx.store()?;
    let json_mode = ctx.json;
    let profile_name = store.get(&a.target.profile)?.name;
    let live = store.live_release(&profile_name)?.ok_or_else(|| {
        Failure::input(format!(
            "profile {profile_name} has no live release to monitor"
        ))
    })?;
    let spec: ReleaseSpec =
        serde_json::from_str(&live.spec).map_err(|e| Failure::failed(e.to_string()))?;
    let failures = with_engine(ctx, &a.target, async |e: &Engine<'_>, _: &Profile| {
        let mut last = Default::default();
        let mut previous: std::collections::HashMap<(String, String), String> = Default::default();
        let mut failing = 0u32;
        let mut round = 0u32;
        loop {
            let checks = monitor::round(e, &spec, live.runs, a.min_success_rate, &mut last).await;
            for c in &checks {
                let _ = store.record_check(&e.profile, &c.service, &c.check, &c.verdict, &c.detail);
                if c.verdict == "failed" || c.verdict == "could_not_run" {
                    failing += 1;
                }
                let key = (c.service.clone(), c.check.clone());
                let changed = previous
                    .insert(key, c.verdict.clone())
                    .is_none_or(|v| v != c.verdict);
                // Alert on a change, and on a first sample that is bad.
                if changed
                    && (c.verdict != "ok" && c.verdict != "not_applicable" || round > 0)
                    && let Some(url) = &a.webhook
                {
                    let body = serde_json::json!({"profile": e.profile, "service": c.service, "check": c.check, "verdict": c.verdict, "detail": c.detail});
                    if let Err(x) = monitor::post_webhook(url, &body).await {
                        eprintln!("warning: {x}");
                    }
                }
                if json_mode {
                    println!("{}", serde_json::to_string(c).unwrap_or_default());
                } else {
                    println!(
                        "{:<12} {:<11} {:<15} {}",
                        c.service, c.check, c.verdict, c.detail
                    );
                }
            }
            round += 1;
            if a.count.is_some_and(|n| round >= n) {
                break;
            }
            tokio::time::sleep(interval).await;
        }
        if let Ok(Some(u)) = store.uptime(&e.profile)
            && !json_mode
        {
            println!("uptime over recorded checks: {:.2}%", u * 100.0);
        }
        Ok(failing)
    })?;
    if failures > 0 {
        return Err(Failure::failed(format!(
            "{failures} check(s) failed or could not run"
        )));
    }
    Ok(())
}

pub fn proxy_cmd(c: ProxyCmd) -> Res {
    match c {
        ProxyCmd::EmptyDir { path } => crate::deploy::volume_copy::empty_dir(&path)
            .map_err(|e| Failure::failed(format!("empty {}: {e}", path.display()))),
        ProxyCmd::Manifest { path } => crate::deploy::volume_copy::print_manifest(&path)
            .map_err(|e| Failure::failed(format!("manifest of {}: {e}", path.display()))),
        ProxyCmd::Pack { root, out, paths } => {
            crate::deploy::volume_copy::pack(&root, &out, &paths)
                .map_err(|e| Failure::failed(format!("pack under {}: {e}", root.display())))
        }
        ProxyCmd::RemovePaths { root, paths } => {
            crate::deploy::volume_copy::remove_paths(&root, &paths)
                .map_err(|e| Failure::failed(format!("remove under {}: {e}", root.display())))
        }
        ProxyCmd::Run {
            service,
            listen,
            admin,
            state,
        } => proxy::admin::run(&service, &listen, &admin, state, proxy_threads())
            .map_err(|e| Failure::failed(format!("proxy: {e}"))),
        ProxyCmd::Ctl {
            admin,
            method,
            path,
            body,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
            let (status, text) = rt
                .block_on(proxy::admin::ctl(&admin, &method, &path, &body))
                .map_err(Failure::failed)?;
            println!("{text}");
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(Failure::failed(format!("proxy answered {status}")))
            }
        }
    }
}
