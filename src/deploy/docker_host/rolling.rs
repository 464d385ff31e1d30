//! Rolling: one replica at a time, start-first. Each new replica must pass
//! its health check before it joins the pool; only then does one old
//! replica leave it, drain and stop. Old containers are kept stopped for a
//! quick rollback.

use super::{Engine, Failure, Outcome, container_of, routes_by_count};
use crate::deploy::spec::ServiceSpec;

pub async fn run(e: &Engine<'_>, s: &ServiceSpec, new: u32) -> Result<Outcome, Failure> {
    for host in &e.hosts {
        if s.public_port.is_none() {
            let mut old = e.running_others(host, s, new).await?;
            for r in 0..s.replicas {
                e.start_replica(host, s, new, r).await?;
                if let Err(f) = e.await_ready(host, s, new, &[r]).await {
                    return Err(e.with_logs(host, f).await);
                }
                if !old.is_empty() {
                    let retired = old.remove(0);
                    host.stop(&retired, s.stop_grace).await?;
                }
            }
            e.stop_all(host, &old, s.stop_grace).await?;
            continue;
        }
        let mut old = e.routed_targets(host, s, new).await?;
        let mut fresh: Vec<(String, String)> = Vec::new();
        let mut table = e.base_table(s);
        for r in 0..s.replicas {
            e.start_replica(host, s, new, r).await?;
            if let Err(f) = e.await_ready(host, s, new, &[r]).await {
                return Err(e.with_logs(host, f).await);
            }
            fresh.push((new.to_string(), e.target_addr(s, new, r)));
            let retired = (!old.is_empty()).then(|| old.remove(0));
            table.releases = routes_by_count(&[old.clone(), fresh.clone()].concat());
            e.put_table(host, s, &table).await?;
            if let Some((_, addr)) = retired {
                host.stop(container_of(&addr), s.stop_grace).await?;
            }
            e.progress.step(
                "rolling",
                format!(
                    "{} on {}: replica {}/{} of release {new} serving",
                    s.name,
                    host.name,
                    r + 1,
                    s.replicas
                ),
            );
        }
        if !old.is_empty() {
            table.releases = routes_by_count(&fresh);
            e.put_table(host, s, &table).await?;
            let names: Vec<String> = old
                .iter()
                .map(|(_, a)| container_of(a).to_string())
                .collect();
            e.stop_all(host, &names, s.stop_grace).await?;
        }
    }
    Ok(Outcome::Live)
}
