//! Blue-green on Swarm: the release gets its own service (`…-r<N>`) at full
//! size; once every task is healthy the proxy switches all traffic to it
//! and drains the previous one, which stays warm for an instant rollback
//! (scaled to zero with `--cleanup`).

use super::Swarm;
use super::objects::release_secrets;
use super::objects::{self, Order};
use crate::deploy::release::{Failure, Outcome};
use crate::deploy::spec::ServiceSpec;
use std::time::Instant;

/// Starts the release's own service and waits for all its tasks.
pub async fn start(sw: &Swarm<'_>, s: &ServiceSpec, release: u32) -> Result<String, Failure> {
    let name = sw.release_name(&s.name, release);
    let secrets = release_secrets(sw, s, release).await?;
    let spec = objects::app_service(
        &sw.placement(),
        s,
        &name,
        release,
        s.replicas,
        &secrets,
        Order::StartFirst,
    )?;
    let since = Instant::now();
    sw.apply(spec).await?;
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

pub async fn run(sw: &Swarm<'_>, s: &ServiceSpec, release: u32) -> Result<Outcome, Failure> {
    if s.public_port.is_none() {
        // Nothing to switch without a proxy: replace in place.
        return super::rolling::run(sw, s, release, Order::StartFirst).await;
    }
    let before = sw.routed(s).await?;
    let name = start(sw, s, release).await?;
    sw.route_to(s, &name, release).await?;
    sw.progress()
        .step("switch", format!("{}: all traffic on {name}", s.name));
    for (_, old, _) in before.iter().filter(|(_, n, _)| *n != name) {
        if sw.dh.options.cleanup {
            sw.scale(old, 0).await?;
        } else {
            sw.progress()
                .step("warm", format!("{old} stays up for an instant rollback"));
        }
    }
    Ok(Outcome::Live)
}
