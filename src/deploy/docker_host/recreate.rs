//! Recreate: stop the old release, then start the new one. The proxy holds
//! requests that arrive in between (up to its hold timeout) instead of
//! failing them, so a quick start-up is seen as latency, not errors.

use super::{Engine, Failure, Outcome, container_of};
use crate::deploy::spec::ServiceSpec;

pub async fn run(e: &Engine<'_>, s: &ServiceSpec, new: u32) -> Result<Outcome, Failure> {
    for host in &e.hosts {
        let old: Vec<String> = if s.public_port.is_some() {
            let routed = e.routed_targets(host, s, new).await?;
            let mut table = e.base_table(s);
            table.hold_timeout_ms = table
                .hold_timeout_ms
                .max(e.options.deploy_timeout.as_millis() as u64);
            e.put_table(host, s, &table).await?;
            routed
                .iter()
                .map(|(_, a)| container_of(a).to_string())
                .collect()
        } else {
            e.running_others(host, s, new).await?
        };
        e.stop_all(host, &old, s.stop_grace).await?;
        let replicas: Vec<u32> = (0..s.replicas).collect();
        for r in &replicas {
            e.start_replica(host, s, new, *r).await?;
        }
        if let Err(f) = e.await_ready(host, s, new, &replicas).await {
            return Err(e.with_logs(host, f).await);
        }
        if s.public_port.is_some() {
            e.switch_all(host, s, new).await?;
        }
        e.progress.step(
            "recreate",
            format!("{} on {}: release {new} serving", s.name, host.name),
        );
    }
    Ok(Outcome::Live)
}
