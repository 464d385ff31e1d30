//! Swarm as a [`Platform`]: the lifecycle in `deploy::release` drives
//! these moves through the manager. The lock is a container on the
//! manager, as on a Docker host.

use super::{Swarm, node_fit, rollout};
use crate::deploy::docker_host::lock::ContainerLock;
use crate::deploy::docker_host::proxy_image;
use crate::deploy::events::Progress;
use crate::deploy::lock::LockStore;
use crate::deploy::release::{
    Failure, FailureKind, LockRequest, LogsError, Outcome, PlanLine, Platform,
};
use crate::deploy::spec::{ReleaseSpec, ReleaseStep};
use crate::deploy::strategy::Options;
use crate::state::releases::Release;

impl Platform for Swarm<'_> {
    fn profile(&self) -> &str {
        &self.dh.profile
    }

    fn progress(&self) -> &Progress {
        self.dh.progress
    }

    fn options(&self) -> &Options {
        &self.dh.options
    }

    fn places(&self) -> Vec<String> {
        vec![self.host().name.clone()]
    }

    fn venue(&self) -> String {
        " on swarm".into()
    }

    /// Builds on the manager and ships every image to each node the
    /// profile names (the manager first), so no task waits on an image
    /// its node cannot pull.
    async fn prepare(
        &mut self,
        spec: &mut ReleaseSpec,
        dry_run: bool,
    ) -> Result<Vec<PlanLine>, Failure> {
        let mut lines = Vec::new();
        if dry_run && self.dh.hosts.len() > 1 {
            lines = crate::deploy::preflight::check(&self.dh.hosts, true, &spec.images()).await;
        }
        let nodes = node_fit::read_nodes(&self.host().docker)
            .await
            .map_err(|e| Failure::new(FailureKind::Engine, e))?;
        let fit = node_fit::judge(spec, &nodes, &self.host().name)
            .map_err(|e| Failure::new(FailureKind::Input, e))?;
        if dry_run {
            lines.extend(fit);
        } else {
            for l in fit.iter().filter(|l| l.action != "ok") {
                self.progress()
                    .step("placement", format!("{}: {}", l.name, l.detail));
            }
        }
        let registry = self.dh.options.registry.clone();
        let shipped = crate::deploy::images::ensure(
            &self.dh.hosts,
            spec,
            registry.as_deref(),
            self.progress(),
            dry_run,
        );
        lines.extend(shipped.await?);
        Ok(lines)
    }

    async fn lock(&mut self, how: &LockRequest) -> Result<Option<String>, Failure> {
        for host in &self.dh.hosts {
            self.dh.proxy_image = proxy_image::ensure_proxy_image(host).await?;
        }
        crate::deploy::lock::acquire(&self.manager_lock(), &self.dh.profile, how).await
    }

    async fn unlock(&self) {
        let _ = self.manager_lock().remove().await;
    }

    async fn is_serving(&self, live: &Release) -> Result<bool, Failure> {
        Ok(rollout::is_serving(self, live).await?)
    }

    async fn converge(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
        rollout::converge(self, spec, runs).await
    }

    async fn remove_leftovers(
        &self,
        live: Option<&Release>,
        stale: &[u32],
    ) -> Result<Vec<String>, Failure> {
        rollout::remove_leftovers(self, live, stale).await
    }

    async fn run_release_step(
        &self,
        spec: &ReleaseSpec,
        step: &ReleaseStep,
        number: u32,
    ) -> Result<String, Failure> {
        super::release_command::run(self, spec, step, number).await
    }

    async fn roll_out(&self, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
        rollout::roll_out(self, spec, number).await
    }

    async fn bake(&self, spec: &ReleaseSpec, number: u32) -> Result<(), Failure> {
        rollout::bake(self, spec, number).await
    }

    async fn restore(&self, live: Option<&Release>, failed: u32) -> Result<String, Failure> {
        rollout::restore(self, live, failed).await
    }

    async fn cleanup(
        &self,
        history: &[Release],
        spec: &ReleaseSpec,
        number: u32,
        _previous: Option<&Release>,
    ) -> Result<(), Failure> {
        rollout::cleanup(self, history, spec, number).await
    }

    /// The canary's own service; the stable ones carry other releases.
    async fn discard(&self, runs: u32) -> Result<(), Failure> {
        for m in self.services().await? {
            if m.role == "app" && m.release == Some(runs) && m.name.ends_with(&format!("-r{runs}"))
            {
                self.remove(&m.name).await?;
            }
        }
        Ok(())
    }

    async fn status(&self) -> Result<serde_json::Value, Failure> {
        Ok(serde_json::to_value(super::status::status(self).await?).map_err(|e| e.to_string())?)
    }

    async fn logs(
        &self,
        service: Option<&str>,
        follow: bool,
        tail: usize,
        sink: impl FnMut(&str),
    ) -> Result<(), LogsError> {
        Ok(super::status::logs(self, service, follow, tail, sink).await?)
    }

    async fn dry_run(
        &self,
        _history: &[Release],
        spec: &ReleaseSpec,
        next: u32,
    ) -> Result<Vec<PlanLine>, Failure> {
        rollout::dry_run(self, spec, next).await
    }
}

impl Swarm<'_> {
    fn manager_lock(&self) -> ContainerLock<'_> {
        ContainerLock {
            host: self.host(),
            profile: &self.dh.profile,
            image: &self.dh.proxy_image,
        }
    }
}
