//! Commands for profiles that deploy to Kubernetes. Deploy, rollback and
//! promote are dispatched here from `cli::deploy`.

use super::deploy::{DestroyArgs, HostArgs, LogsArgs};
use super::output::{json, table};
use super::{Ctx, Failure, Res};
use crate::deploy::docker_host::deploy::Report;
use crate::deploy::events::Progress;
use crate::deploy::kubernetes::plan::{self, Current, Traffic};
use crate::deploy::kubernetes::{Kube, deploy as k8s, status};
use crate::deploy::spec::ReleaseSpec;
use crate::deploy::strategy::Options;
use crate::describe::app::App;
use crate::state::{Profile, Store};
use std::collections::BTreeMap;

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

async fn connect<'a>(
    p: &Profile,
    progress: &'a Progress,
    options: Options,
) -> Result<Kube<'a>, String> {
    let mut k = Kube::connect(&p.name, progress, options).await?;
    k.gateway = p
        .settings
        .get("gateway")
        .and_then(|g| g.as_str())
        .map(String::from);
    Ok(k)
}

fn finish(ctx: &Ctx, out: Result<Report, crate::deploy::docker_host::Failure>) -> Res {
    match out {
        Ok(r) => {
            if ctx.json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                if !r.plan.is_empty() {
                    let mut t = table(&["cluster", "step", "kind", "name"]);
                    for l in &r.plan {
                        t.add_row(vec![&l.host, &l.action, &l.kind, &l.name]);
                    }
                    println!("{t}");
                }
                println!("{}", r.message);
            }
            Ok(())
        }
        Err(f) => {
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"status": "failed", "error": f.why, "logs": f.logs})
                );
            } else {
                eprintln!("error: {f}");
            }
            Err(Failure::failed(f.why))
        }
    }
}

/// The plan when no cluster answers: everything is new.
fn offline_plan(app: &App, opts: &Options, next: u32, why: &str) -> Report {
    let current = Current::default();
    let steps = plan::plan(&plan::Input {
        app,
        release: next,
        strategy: opts.strategy,
        canary_steps: &opts.canary_steps,
        pause: &opts.pause,
        traffic: Traffic::ReplicaRatio,
        gateway: None,
        cleanup: opts.cleanup,
        current: &current,
    });
    let mut r = k8s::plan_report(app, &steps, "(no cluster)", next);
    r.message = format!(
        "{} (no cluster reachable, so planned as a first deploy: {why})",
        r.message
    );
    r
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn deploy(
    ctx: &Ctx,
    store: &mut Store,
    profile: &Profile,
    app: App,
    spec: ReleaseSpec,
    opts: Options,
    secrets: BTreeMap<String, String>,
    dry_run: bool,
    command: &str,
) -> Res {
    let progress = Progress::new(ctx.json);
    let rt = runtime()?;
    let out = rt.block_on(async {
        let k = match connect(profile, &progress, opts.clone()).await {
            Ok(k) => k,
            Err(why) if dry_run => {
                let next = store
                    .releases(&profile.name)
                    .map_err(|x| x.to_string())?
                    .first()
                    .map_or(1, |r| r.number + 1);
                return Ok(offline_plan(&app, &opts, next, &why));
            }
            Err(why) => return Err(why.into()),
        };
        let mut k = k;
        k.secrets = secrets;
        k8s::deploy(&k, store, k8s::Request { app, spec, dry_run }, command).await
    });
    progress.finish();
    finish(ctx, out)
}

pub(crate) fn rollback(
    ctx: &Ctx,
    store: &mut Store,
    profile: &Profile,
    to: Option<u32>,
    secrets: BTreeMap<String, String>,
    command: &str,
) -> Res {
    let progress = Progress::new(ctx.json);
    let out = runtime()?.block_on(async {
        let mut k = connect(profile, &progress, Options::default()).await?;
        k.secrets = secrets;
        k8s::rollback(&k, store, to, command).await
    });
    progress.finish();
    finish(ctx, out)
}

pub(crate) fn promote(ctx: &Ctx, store: &mut Store, profile: &Profile, command: &str) -> Res {
    let progress = Progress::new(ctx.json);
    let out = runtime()?.block_on(async {
        let mut k = connect(profile, &progress, Options::default()).await?;
        k8s::promote(&mut k, store, command).await
    });
    progress.finish();
    finish(ctx, out)
}

fn with_kube<T>(
    ctx: &Ctx,
    a: &HostArgs,
    work: impl AsyncFnOnce(&Kube<'_>, &App) -> Result<T, String>,
) -> Result<T, Failure> {
    let store = ctx.store()?;
    let profile = store.get(&a.profile)?;
    let progress = Progress::new(ctx.json);
    let out = runtime()?.block_on(async {
        let k = connect(&profile, &progress, Options::default()).await?;
        work(&k, &profile.app).await
    });
    progress.finish();
    out.map_err(Failure::failed)
}

pub(crate) fn status_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    let st = with_kube(ctx, &a, async |k: &Kube<'_>, app: &App| {
        status::status(k, app).await
    })?;
    if ctx.json {
        json(&st);
        return Ok(());
    }
    let mut t = table(&[
        "pod", "service", "release", "slot", "node", "phase", "ready", "restarts", "events",
    ]);
    for p in &st.pods {
        t.add_row(vec![
            p.name.clone(),
            p.service.clone(),
            p.release.clone(),
            p.slot.clone(),
            p.node.clone(),
            p.phase.clone(),
            p.ready.to_string(),
            p.restarts.to_string(),
            p.events.join("; "),
        ]);
    }
    println!("{t}");
    for (svc, slot) in &st.routes {
        println!("Service {svc} → slot {slot}");
    }
    if let Some(n) = st.session_jobs {
        println!("session jobs running: {n}");
        for (r, (used, hard)) in &st.session_quota {
            println!("  quota {r}: {used} of {hard}");
        }
    }
    Ok(())
}

pub(crate) fn logs_cmd(ctx: &Ctx, a: LogsArgs) -> Res {
    let json_mode = ctx.json;
    with_kube(ctx, &a.target, async |k: &Kube<'_>, app: &App| {
        status::logs(k, app, a.service.as_deref(), a.follow, a.tail, |line| {
            if json_mode {
                let (pod, l) = line.split_once(" | ").unwrap_or(("", line));
                println!("{}", serde_json::json!({"pod": pod, "line": l.trim_end()}));
            } else {
                print!("{line}");
            }
        })
        .await
    })
}

pub(crate) fn stop_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    let n = with_kube(ctx, &a, async |k: &Kube<'_>, app: &App| {
        status::stop(k, app).await
    })?;
    if ctx.json {
        json(&serde_json::json!({"stopped": n}));
    } else {
        println!("scaled {n} Deployment(s) of {} to zero", a.profile);
    }
    Ok(())
}

pub(crate) fn destroy_cmd(ctx: &Ctx, a: DestroyArgs) -> Res {
    let n = with_kube(ctx, &a.target, async |k: &Kube<'_>, app: &App| {
        status::destroy(k, app).await
    })?;
    if ctx.json {
        json(&serde_json::json!({"namespaces_removed": n}));
    } else {
        println!(
            "deleted {n} namespace(s) of {} with everything in them (volumes included)",
            a.target.profile
        );
    }
    Ok(())
}
