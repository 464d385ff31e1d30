//! The two ways a release's tasks come up on Swarm. In place: the stable
//! service is updated and swarm replaces its tasks, the new task healthy
//! before the old one stops (`update_config`: start-first, parallelism 1,
//! monitor = health start period + retries, failure ratio 0, failure
//! action rollback), or stop-first all at once for recreate. Its own: the
//! release gets a service (`…-r<N>`) at full size beside the old one, for
//! blue-green and canary.

use super::Swarm;
use super::objects::release_secrets;
use super::objects::{self, Order};
use crate::deploy::release::Failure;
use crate::deploy::spec::ServiceSpec;
use std::time::{Duration, Instant};

/// Updates (or creates) the stable service to `release` and waits for
/// every task; on failure the service goes back to its previous spec.
pub async fn in_place(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    release: u32,
    order: Order,
) -> Result<(), Failure> {
    let name = sw.stable_name(&s.name);
    let since = Instant::now();
    let created = apply(sw, s, &name, release, order).await?;
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
    Ok(())
}

/// Starts the release's own service and waits for all its tasks.
pub async fn start_own(sw: &Swarm<'_>, s: &ServiceSpec, release: u32) -> Result<String, Failure> {
    let name = sw.release_name(&s.name, release);
    let since = Instant::now();
    apply(sw, s, &name, release, Order::StartFirst).await?;
    sw.progress().step(
        "create",
        format!("{}: service {name} with {} replica(s)", s.name, s.replicas),
    );
    if let Err(f) = sw
        .await_ready(&name, release, s.replicas as u64, since)
        .await
    {
        let _ = sw.remove(&name).await;
        return Err(f);
    }
    Ok(name)
}

/// Creates or updates swarm service `name` to run `release` of `s` at
/// full size with its secrets; true when it was created.
async fn apply(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    name: &str,
    release: u32,
    order: Order,
) -> Result<bool, Failure> {
    let secrets = release_secrets(sw, s, release).await?;
    let spec = objects::app_service(&sw.scope(), s, name, release, s.replicas, &secrets, order)?;
    Ok(sw.apply(spec).await?)
}

/// A new service is removed; an updated one goes back to its previous
/// spec (swarm may already be doing so after a failed task).
async fn undo(sw: &Swarm<'_>, name: &str, created: bool) {
    if created {
        let _ = sw.remove(name).await;
        return;
    }
    let update_state = async || {
        sw.service(name)
            .await
            .ok()
            .flatten()
            .and_then(|m| m.update_state)
    };
    let state = update_state().await;
    if !state.as_deref().is_some_and(|s| s.starts_with("rollback")) {
        let _ = sw.rollback_service(name).await;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let state = update_state().await;
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
