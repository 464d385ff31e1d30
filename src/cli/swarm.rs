//! Status, logs, stop and destroy for profiles that deploy to a swarm.
//! Deploy, rollback and promote choose their engine in `cli::deploy`.

use super::output::{json, table};
use super::targets::{DestroyArgs, HostArgs, with_swarm};
use super::{Ctx, Res};
use crate::deploy::swarm::{Swarm, status};

pub(crate) fn status_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    let st = with_swarm(ctx, &a, async |sw: &Swarm<'_>| status::status(sw).await)?;
    if ctx.json {
        json(&st);
        return Ok(());
    }
    let mut t = table(&["node", "role", "state", "availability", "address", "tasks"]);
    for n in &st.nodes {
        t.add_row(vec![
            n.hostname.clone(),
            n.role.clone(),
            n.state.clone(),
            n.availability.clone(),
            n.address.clone(),
            n.tasks.to_string(),
        ]);
    }
    println!("{t}");
    let mut t = table(&[
        "service",
        "swarm service",
        "release",
        "replicas",
        "running",
        "update",
    ]);
    for s in &st.services {
        t.add_row(vec![
            s.service.clone(),
            s.name.clone(),
            s.release.clone(),
            s.replicas.to_string(),
            s.running.to_string(),
            s.update.clone(),
        ]);
    }
    println!("{t}");
    let mut t = table(&[
        "swarm service",
        "slot",
        "node",
        "release",
        "desired",
        "state",
        "error",
    ]);
    for k in st
        .tasks
        .iter()
        .filter(|k| k.desired == "running" || !k.error.is_empty())
    {
        t.add_row(vec![
            k.swarm_service.clone(),
            k.slot.map_or("-".into(), |s| s.to_string()),
            k.node.clone(),
            k.release.clone(),
            k.desired.clone(),
            k.state.clone(),
            k.error.clone(),
        ]);
    }
    println!("{t}");
    for p in &st.proxies {
        let routes: Vec<String> = p
            .routes
            .iter()
            .map(|(r, w)| format!("release {r}: {w}%"))
            .collect();
        println!("proxy {} on {}: {}", p.service, p.host, routes.join(", "));
    }
    Ok(())
}

pub(crate) fn stop_cmd(ctx: &Ctx, a: HostArgs) -> Res {
    let n = with_swarm(ctx, &a, async |sw: &Swarm<'_>| status::stop(sw).await)?;
    if ctx.json {
        json(&serde_json::json!({"stopped": n}));
    } else {
        println!(
            "scaled to zero or stopped {n} service(s) and proxy(ies) of {}; deploy again to start",
            a.profile
        );
    }
    Ok(())
}

pub(crate) fn destroy_cmd(ctx: &Ctx, a: DestroyArgs) -> Res {
    let volumes = a.volumes;
    let (n, v) = with_swarm(ctx, &a.target, async |sw: &Swarm<'_>| {
        status::destroy(sw, volumes).await
    })?;
    if ctx.json {
        json(&serde_json::json!({"removed": n, "volumes_removed": v}));
    } else {
        println!(
            "removed {n} service(s) and container(s) and {v} volume(s) of {}",
            a.target.profile
        );
    }
    Ok(())
}
