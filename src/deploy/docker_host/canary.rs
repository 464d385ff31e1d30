//! Canary: the new release comes up in full beside the old one, then
//! receives a growing share of traffic (cohorts are sticky by cookie).
//! During each step an analysis over the proxy's per-release metrics
//! decides: failed → abort and roll back, inconclusive → pause for a
//! human, passed → next step. Weights move on every host together.

use super::{Engine, Failure, Outcome, container_of};
use crate::deploy::proxy::metrics::MetricsSnapshot;
use crate::deploy::proxy::table::ReleaseRoute;
use crate::deploy::spec::ServiceSpec;
use crate::deploy::strategy::Pause;
use crate::deploy::strategy::analysis::{Measurement, Verdict};
use std::time::Duration;

pub async fn run(e: &Engine<'_>, s: &ServiceSpec, new: u32) -> Result<Outcome, Failure> {
    if s.public_port.is_none() {
        // Without a proxy there is no traffic to split.
        return super::rolling::run(e, s, new).await;
    }
    let mut old = Vec::new();
    for host in &e.hosts {
        old.push(e.routed_targets(host, s, new).await?);
    }
    e.start_release(s, new).await?;
    let new_targets: Vec<String> = (0..s.replicas).map(|r| e.target_addr(s, new, r)).collect();
    for &weight in &e.options.canary_steps {
        for (host, old) in e.hosts.iter().zip(&old) {
            let mut table = e.base_table(s);
            table.allowlist = e.options.canary_allowlist.clone();
            let mut stable = super::routes_by_count(old);
            // Old releases share what the canary does not take.
            let old_total: u32 = stable.iter().map(|r| r.weight).sum::<u32>().max(1);
            for r in &mut stable {
                r.weight = r.weight * (100 - weight) / old_total;
            }
            table.releases = stable;
            table.releases.push(ReleaseRoute {
                release: new.to_string(),
                weight,
                targets: new_targets.clone(),
            });
            if weight == 100 {
                table.releases.retain(|r| r.release == new.to_string());
            }
            e.put_table(host, s, &table).await?;
        }
        e.progress.step(
            "canary",
            format!("{}: {weight}% of traffic on release {new}", s.name),
        );
        if weight == 100 {
            break;
        }
        let pause = match e.options.pause {
            Pause::Timed(d) => d,
            Pause::Manual => {
                return Ok(Outcome::Paused(format!(
                    "{} at {weight}%: waiting for `promote` or `rollback`",
                    s.name
                )));
            }
        };
        let alive = async || replicas_alive(e, s, new).await;
        match analyse(e, s, new, pause, alive).await? {
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
    for (host, old) in e.hosts.iter().zip(&old) {
        let names: Vec<String> = old
            .iter()
            .map(|(_, a)| container_of(a).to_string())
            .collect();
        e.stop_all(host, &names, s.stop_grace).await?;
    }
    Ok(Outcome::Live)
}

/// Sums the canary's metrics over every host.
async fn canary_metrics(
    e: &Engine<'_>,
    s: &ServiceSpec,
    release: u32,
) -> Result<MetricsSnapshot, String> {
    let mut sum = MetricsSnapshot::default();
    for host in &e.hosts {
        let st = e.proxy_state(host, &s.name).await?;
        if let Some(m) = st.metrics.get(&release.to_string()) {
            sum.requests += m.requests;
            sum.errors += m.errors;
            if sum.histogram.len() < m.histogram.len() {
                sum.histogram.resize(m.histogram.len(), 0);
            }
            for (a, b) in sum.histogram.iter_mut().zip(&m.histogram) {
                *a += b;
            }
        }
    }
    Ok(sum)
}

/// Fails when a replica of the canary stopped or restarted.
async fn replicas_alive(e: &Engine<'_>, s: &ServiceSpec, release: u32) -> Result<(), Failure> {
    for host in &e.hosts {
        for r in 0..s.replicas {
            let name = super::app_container(&e.profile, &s.name, release, r);
            if let Ok(l) = host.liveness(&name).await
                && (!l.running || l.restarts > 0)
            {
                let f = Failure {
                    why: format!("{name} stopped or restarted during the canary"),
                    container: Some(name),
                    logs: String::new(),
                };
                return Err(e.with_logs(host, f).await);
            }
        }
    }
    Ok(())
}

/// One step's analysis run: measurements every interval for the pause,
/// over the proxy's metrics of the canary; `alive` checks the canary's
/// replicas on the platform between measurements.
pub async fn analyse(
    e: &Engine<'_>,
    s: &ServiceSpec,
    release: u32,
    pause: Duration,
    alive: impl AsyncFn() -> Result<(), Failure>,
) -> Result<Verdict, Failure> {
    let a = &e.options.analysis;
    let interval = a.interval.min(pause).max(Duration::from_millis(100));
    let count = if a.count > 0 {
        a.count
    } else {
        (pause.as_millis() / interval.as_millis()).max(1) as u32
    };
    let mut before = canary_metrics(e, s, release).await.unwrap_or_default();
    let mut ms: Vec<Measurement> = Vec::new();
    for k in 0..count {
        tokio::time::sleep(interval).await;
        alive().await?;
        let m = match canary_metrics(e, s, release).await {
            Ok(now) => {
                let m = a.measure(&now.since(&before));
                before = now;
                m
            }
            Err(why) => Measurement::Error { why },
        };
        e.progress.step(
            "analysis",
            format!(
                "{} release {release}: {}",
                s.name,
                serde_json::to_string(&m).unwrap_or_default()
            ),
        );
        ms.push(m);
        if let Some(v) = a.verdict(&ms, k + 1 == count) {
            return Ok(v);
        }
    }
    Ok(a.verdict(&ms, true).unwrap_or(Verdict::Passed))
}
