//! Canary on Swarm: once the planner has started the release's own
//! service beside the stable one, the shared canary loop (`strategy::canary`) gives it a growing
//! share through the manager's proxy, with the canary's tasks checked
//! between measurements.

use super::Swarm;
use crate::deploy::proxy::metrics::MetricsSnapshot;
use crate::deploy::proxy::table::ReleaseRoute;
use crate::deploy::release::{Failure, Outcome};
use crate::deploy::spec::ServiceSpec;
use crate::deploy::strategy::canary::{self, Traffic};

/// Runs the canary loop for release `release` of `s`, whose own service
/// `canary` already runs beside what served before.
pub async fn run(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    release: u32,
    before: Vec<(u32, String, u32)>,
    canary: String,
) -> Result<Outcome, Failure> {
    let split = Split {
        sw,
        s,
        release,
        before,
        canary,
    };
    canary::run(&split, &sw.dh.options, sw.progress(), &s.name, release).await
}

/// One service's canary: the services serving before, with their
/// weights, and the canary's own service.
struct Split<'a, 'e> {
    sw: &'a Swarm<'e>,
    s: &'a ServiceSpec,
    release: u32,
    before: Vec<(u32, String, u32)>,
    canary: String,
}

impl Traffic for Split<'_, '_> {
    async fn set_weight(&self, weight: u32) -> Result<(), Failure> {
        let (sw, s) = (self.sw, self.s);
        let mut table = sw.dh.base_table(s);
        table.allowlist = sw.dh.options.canary_allowlist.clone();
        let total: u32 = self.before.iter().map(|b| b.2).sum::<u32>().max(1);
        if weight < 100 {
            for (r, svc, w) in &self.before {
                table.releases.push(ReleaseRoute {
                    release: r.to_string(),
                    weight: w * (100 - weight) / total,
                    targets: vec![sw.target(svc, s)],
                });
            }
        }
        table.releases.push(ReleaseRoute {
            release: self.release.to_string(),
            weight,
            targets: vec![sw.target(&self.canary, s)],
        });
        Ok(sw.put_tables(s, &table).await?)
    }

    /// The canary's counts summed over every proxy: each node's entry
    /// point sees only its own share of the traffic.
    async fn metrics(&self) -> Result<MetricsSnapshot, String> {
        let mut sum = MetricsSnapshot::default();
        for host in self.sw.proxy_hosts() {
            let st = self.sw.dh.proxy_state(host, &self.s.name).await?;
            if let Some(m) = st.metrics.get(&self.release.to_string()) {
                sum.add(m);
            }
        }
        Ok(sum)
    }

    /// Fails when a task of the canary failed since it became ready.
    async fn alive(&self) -> Result<(), Failure> {
        let (sw, name) = (self.sw, &self.canary);
        let tasks = sw.tasks(name).await?;
        let bad = tasks.iter().find(|t| {
            super::task_release(t) == Some(self.release)
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

    async fn retire(&self) -> Result<(), Failure> {
        for (_, old, _) in self.before.iter().filter(|(_, n, _)| *n != self.canary) {
            self.sw.scale(old, 0).await?;
        }
        Ok(())
    }
}
