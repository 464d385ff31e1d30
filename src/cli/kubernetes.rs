//! Commands for profiles that deploy to Kubernetes. Deploy, rollback and
//! promote are dispatched here from `cli::deploy`.

use super::output::{json, table};
use super::targets::{DestroyArgs, HostArgs};
use super::{Ctx, Failure, Res};
use crate::deploy::events::Progress;
use crate::deploy::kubernetes::{Kube, status};
use crate::deploy::strategy::Options;
use crate::describe::app::App;

fn with_kube<T>(
    ctx: &Ctx,
    a: &HostArgs,
    work: impl AsyncFnOnce(&Kube<'_>, &App) -> Result<T, String>,
) -> Result<T, Failure> {
    let store = ctx.store()?;
    let profile = store.get(&a.profile)?;
    let progress = Progress::new(ctx.json);
    let out = ctx.session.block_on(async {
        let k = crate::deploy::engines::kube(&profile, &progress, Options::default()).await?;
        work(&k, &profile.app).await
    });
    progress.finish();
    out.and_then(|r| r).map_err(Failure::failed)
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
