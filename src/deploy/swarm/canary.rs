//! Canary on Swarm: the release gets its own service beside the stable one
//! and the proxy gives it a growing share of traffic (cohorts sticky by
//! cookie); each step is judged by the same analysis as on Docker hosts,
//! with the canary's tasks checked between measurements.

use super::Swarm;
use super::objects::Order;
use crate::deploy::docker_host::{Failure, Outcome, canary::analyse};
use crate::deploy::proxy::table::ReleaseRoute;
use crate::deploy::spec::ServiceSpec;
use crate::deploy::strategy::Pause;
use crate::deploy::strategy::analysis::Verdict;

pub async fn run(sw: &Swarm<'_>, s: &ServiceSpec, release: u32) -> Result<Outcome, Failure> {
    if s.public_port.is_none() {
        return super::rolling::run(sw, s, release, Order::StartFirst).await;
    }
    let before = sw.routed(s).await?;
    let name = super::blue_green::start(sw, s, release).await?;
    for &weight in &sw.dh.options.canary_steps {
        put_weights(sw, s, &before, &name, release, weight).await?;
        sw.progress().step(
            "canary",
            format!("{}: {weight}% of traffic on release {release}", s.name),
        );
        if weight == 100 {
            break;
        }
        let pause = match sw.dh.options.pause {
            Pause::Timed(d) => d,
            Pause::Manual => {
                return Ok(Outcome::Paused(format!(
                    "{} at {weight}%: waiting for `promote` or `rollback`",
                    s.name
                )));
            }
        };
        let alive = async || tasks_alive(sw, &name, release).await;
        match analyse(&sw.dh, s, release, pause, alive).await? {
            Verdict::Passed => {}
            Verdict::Failed(why) => {
                return Err(Failure::from(format!(
                    "canary analysis of {} failed at {weight}%: {why}",
                    s.name
                )));
            }
            Verdict::Inconclusive(why) => {
                return Ok(Outcome::Paused(format!(
                    "{} at {weight}%: analysis inconclusive ({why}); `promote` or `rollback`",
                    s.name
                )));
            }
        }
    }
    for (_, old, _) in before.iter().filter(|(_, n, _)| *n != name) {
        sw.scale(old, 0).await?;
    }
    Ok(Outcome::Live)
}

/// Splits traffic: the canary gets `weight`, the services serving before
/// share the rest in their old proportions.
async fn put_weights(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    before: &[(u32, String, u32)],
    canary: &str,
    release: u32,
    weight: u32,
) -> Result<(), String> {
    let mut table = sw.dh.base_table(s);
    table.allowlist = sw.dh.options.canary_allowlist.clone();
    let total: u32 = before.iter().map(|b| b.2).sum::<u32>().max(1);
    if weight < 100 {
        for (r, svc, w) in before {
            table.releases.push(ReleaseRoute {
                release: r.to_string(),
                weight: w * (100 - weight) / total,
                targets: vec![sw.target(svc, s)],
            });
        }
    }
    table.releases.push(ReleaseRoute {
        release: release.to_string(),
        weight,
        targets: vec![sw.target(canary, s)],
    });
    sw.dh.put_table(sw.host(), s, &table).await
}

/// Fails when a task of the canary failed since it became ready.
async fn tasks_alive(sw: &Swarm<'_>, name: &str, release: u32) -> Result<(), Failure> {
    let tasks = sw.tasks(name).await?;
    let bad = tasks.iter().find(|t| {
        super::task_release(t) == Some(release)
            && matches!(
                super::task_state(t),
                Some(bollard::models::TaskState::FAILED | bollard::models::TaskState::REJECTED)
            )
    });
    match bad {
        Some(t) => Err(sw
            .failure(
                format!("a task of {name} failed during the canary"),
                Some(t),
            )
            .await),
        None => Ok(()),
    }
}
