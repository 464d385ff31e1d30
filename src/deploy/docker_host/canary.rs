//! Canary on Docker hosts: once the planner has brought the new release
//! up in full beside the old one, the shared canary loop (`strategy::canary`) moves the
//! weights — on every host together — and judges each step by the summed
//! metrics of every host's proxy.

use super::{Engine, container_of};
use crate::deploy::proxy::metrics::MetricsSnapshot;
use crate::deploy::proxy::table::ReleaseRoute;
use crate::deploy::release::{Failure, Outcome};
use crate::deploy::spec::ServiceSpec;
use crate::deploy::strategy::canary::{self, Traffic};

/// Runs the canary loop for release `new` of `s`, which already runs
/// and is healthy beside `old` (what each host routed before).
pub async fn run(
    e: &Engine<'_>,
    s: &ServiceSpec,
    new: u32,
    old: Vec<Vec<(String, String)>>,
) -> Result<Outcome, Failure> {
    let split = Split { e, s, new, old };
    canary::run(&split, &e.options, e.progress, &s.name, new).await
}

/// One service's canary across the hosts: what each host routed before.
struct Split<'a, 'e> {
    e: &'a Engine<'e>,
    s: &'a ServiceSpec,
    new: u32,
    old: Vec<Vec<(String, String)>>,
}

impl Traffic for Split<'_, '_> {
    async fn set_weight(&self, weight: u32) -> Result<(), Failure> {
        let (e, s, new) = (self.e, self.s, self.new);
        let new_targets: Vec<String> = (0..s.replicas).map(|r| e.target_addr(s, new, r)).collect();
        for (host, old) in e.hosts.iter().zip(&self.old) {
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
        Ok(())
    }

    async fn metrics(&self) -> Result<MetricsSnapshot, String> {
        let mut sum = MetricsSnapshot::default();
        for host in &self.e.hosts {
            let st = self.e.proxy_state(host, &self.s.name).await?;
            if let Some(m) = st.metrics.get(&self.new.to_string()) {
                sum.add(m);
            }
        }
        Ok(sum)
    }

    async fn alive(&self) -> Result<(), Failure> {
        let e = self.e;
        for host in &e.hosts {
            for r in 0..self.s.replicas {
                let name = super::app_container(&e.profile, &self.s.name, self.new, r);
                if let Ok(l) = host.liveness(&name).await
                    && (!l.running || l.restarts > 0)
                {
                    let f = Failure::unhealthy(
                        format!("{name} stopped or restarted during the canary"),
                        Some(name),
                        String::new(),
                    );
                    return Err(e.with_logs(host, f).await);
                }
            }
        }
        Ok(())
    }

    async fn retire(&self) -> Result<(), Failure> {
        for (host, old) in self.e.hosts.iter().zip(&self.old) {
            let names: Vec<String> = old
                .iter()
                .map(|(_, a)| container_of(a).to_string())
                .collect();
            self.e.stop_all(host, &names, self.s.stop_grace).await?;
        }
        Ok(())
    }
}
