//! Rolling on Swarm: the stable service is updated in place and swarm
//! replaces its tasks one at a time, the new task healthy before the old
//! one stops (`update_config`: start-first, parallelism 1, monitor =
//! health start period + retries, failure ratio 0, failure action
//! rollback). Recreate is the same update with stop-first, all at once.

use super::Swarm;
use super::objects::release_secrets;
use super::objects::{self, Order};
use crate::deploy::release::{Failure, Outcome};
use crate::deploy::spec::ServiceSpec;
use std::time::{Duration, Instant};

pub async fn run(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    release: u32,
    order: Order,
) -> Result<Outcome, Failure> {
    let name = sw.stable_name(&s.name);
    let secrets = release_secrets(sw, s, release).await?;
    let spec = objects::app_service(
        &sw.placement(),
        s,
        &name,
        release,
        s.replicas,
        &secrets,
        order,
    )?;
    let since = Instant::now();
    let created = sw.apply(spec).await?;
    sw.progress().step(
        if created { "create" } else { "update" },
        format!(
            "{}: {} service {name}, {} replica(s) of release {release} ({})",
            s.name,
            if created { "created" } else { "updating" },
            s.replicas,
            match order {
                Order::StartFirst => "start-first, one at a time",
                Order::StopFirst => "stop-first, all at once",
            }
        ),
    );
    if let Err(f) = sw
        .await_ready(&name, release, s.replicas as u64, since)
        .await
    {
        undo(sw, &name, created).await;
        return Err(f);
    }
    let before = sw.routed(s).await?;
    sw.route_to(s, &name, release).await?;
    // Traffic may have been on another release's service (after a
    // blue-green or canary deploy); it has nothing to serve now.
    for (_, other, _) in before.iter().filter(|(_, n, _)| *n != name) {
        sw.scale(other, 0).await?;
    }
    Ok(Outcome::Live)
}

/// A new service is removed; an updated one goes back to its previous
/// spec (swarm may already be doing so after a failed task).
async fn undo(sw: &Swarm<'_>, name: &str, created: bool) {
    if created {
        let _ = sw.remove(name).await;
        return;
    }
    let state = sw
        .service(name)
        .await
        .ok()
        .flatten()
        .and_then(|m| m.update_state);
    if !state.as_deref().is_some_and(|s| s.starts_with("rollback")) {
        let _ = sw.rollback_service(name).await;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let state = sw
            .service(name)
            .await
            .ok()
            .flatten()
            .and_then(|m| m.update_state);
        if matches!(
            state.as_deref(),
            Some("rollback_completed" | "rollback_paused")
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sw.progress()
        .step("rollback", format!("{name} is back on its previous spec"));
}
