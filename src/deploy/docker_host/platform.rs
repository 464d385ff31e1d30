//! Docker hosts as a [`Platform`]: the lifecycle in `deploy::release`
//! drives these moves on every host of the profile together.

use super::lock::ContainerLock;
use super::{Engine, proxy_image, reconcile, rollout};
use crate::deploy::events::Progress;
use crate::deploy::lock::LockStore;
use crate::deploy::release::{Failure, LockRequest, LogsError, Outcome, PlanLine, Platform};
use crate::deploy::spec::{ReleaseSpec, ReleaseStep};
use crate::deploy::strategy::Options;
use crate::state::releases::Release;

impl Platform for Engine<'_> {
    fn profile(&self) -> &str {
        &self.profile
    }

    fn progress(&self) -> &Progress {
        self.progress
    }

    fn options(&self) -> &Options {
        &self.options
    }

    fn places(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    async fn prepare(
        &mut self,
        spec: &mut ReleaseSpec,
        dry_run: bool,
    ) -> Result<Vec<PlanLine>, Failure> {
        let mut lines = Vec::new();
        if dry_run && self.hosts.len() > 1 {
            lines = crate::deploy::preflight::check(&self.hosts, false, &spec.images()).await;
        }
        lines.extend(
            crate::deploy::images::ensure(
                &self.hosts,
                spec,
                self.options.registry.as_deref(),
                self.progress,
                dry_run,
            )
            .await?,
        );
        Ok(lines)
    }

    /// The lock on every host, taken in order; any refusal lets go of the
    /// ones already taken.
    async fn lock(&mut self, how: &LockRequest) -> Result<Option<String>, Failure> {
        for host in &self.hosts {
            self.proxy_image = proxy_image::ensure_proxy_image(host).await?;
        }
        let mut notes = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let l = self.lock_on(host);
            match crate::deploy::lock::acquire(&l, &self.profile, how).await {
                Ok(note) => notes.extend(note),
                Err(err) => {
                    for h in &self.hosts[..i] {
                        let _ = self.lock_on(h).remove().await;
                    }
                    return Err(err);
                }
            }
        }
        Ok((!notes.is_empty()).then(|| notes.join("; ")))
    }

    async fn unlock(&self) {
        for host in &self.hosts {
            let _ = self.lock_on(host).remove().await;
        }
    }

    async fn is_serving(&self, live: &Release) -> Result<bool, Failure> {
        Ok(reconcile::is_serving(self, live).await?)
    }

    async fn converge(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
        reconcile::converge(self, spec, runs).await
    }

    async fn remove_leftovers(
        &self,
        live: Option<&Release>,
        stale: &[u32],
    ) -> Result<Vec<String>, Failure> {
        reconcile::remove_leftovers(self, live, stale).await
    }

    async fn run_release_step(
        &self,
        spec: &ReleaseSpec,
        step: &ReleaseStep,
        number: u32,
    ) -> Result<String, Failure> {
        Engine::run_release_step(self, spec, step, number).await
    }

    async fn roll_out(&self, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
        rollout::roll_out(self, spec, number).await
    }

    async fn bake(&self, spec: &ReleaseSpec, number: u32) -> Result<(), Failure> {
        rollout::bake(self, spec, number).await
    }

    async fn restore(&self, live: Option<&Release>, failed: u32) -> Result<String, Failure> {
        Ok(rollout::restore(self, live, failed).await?)
    }

    async fn cleanup(
        &self,
        history: &[Release],
        spec: &ReleaseSpec,
        number: u32,
        previous: Option<&Release>,
    ) -> Result<(), Failure> {
        rollout::cleanup(self, history, spec, number, previous).await
    }

    async fn discard(&self, runs: u32) -> Result<(), Failure> {
        for host in &self.hosts {
            for c in host.list(&self.profile).await? {
                if c.role == "app" && c.release == runs.to_string() {
                    host.remove(&c.name).await?;
                }
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
        super::status::logs(self, service, follow, tail, sink).await
    }

    async fn dry_run(
        &self,
        history: &[Release],
        spec: &ReleaseSpec,
        next: u32,
    ) -> Result<Vec<PlanLine>, Failure> {
        rollout::dry_run(self, spec, next, history).await
    }
}

impl Engine<'_> {
    fn lock_on<'h>(&'h self, host: &'h super::client::Host) -> ContainerLock<'h> {
        ContainerLock {
            host,
            profile: &self.profile,
            image: &self.proxy_image,
        }
    }
}
