//! Kubernetes as a [`Platform`]: every move is a plan of steps computed as
//! data (`plan.rs`) from what the cluster runs, then carried out by
//! `run_steps`. The lock is a Lease in the app's namespace.

use super::Kube;
use super::deploy::{input, plan_lines, run_steps};
use super::lease::LeaseLock;
use super::plan::{self, Current, Input, Traffic};
use crate::analyse::cost::Strategy;
use crate::deploy::events::Progress;
use crate::deploy::lock::LockStore;
use crate::deploy::release::{Failure, LockRequest, LogsError, Outcome, PlanLine, Platform};
use crate::deploy::spec::{ReleaseSpec, ReleaseStep};
use crate::deploy::strategy::Options;
use crate::describe::app::App;
use crate::state::releases::Release;
use std::time::{Duration, Instant};

impl Kube<'_> {
    fn lease(&self) -> LeaseLock<'_, '_> {
        LeaseLock {
            k: self,
            namespace: &self.app.name,
        }
    }

    /// The app a release ran: stored with it, else the profile's.
    fn app_of<'s>(&'s self, spec: &'s ReleaseSpec) -> &'s App {
        spec.app.as_deref().unwrap_or(&self.app)
    }

    async fn traffic_for(&self, strategy: Strategy) -> Traffic {
        if strategy == Strategy::Canary {
            self.traffic().await
        } else {
            Traffic::ReplicaRatio
        }
    }

    /// Removes canaries and scales to zero the Deployments that carry one
    /// of `releases` and do not serve.
    async fn retire(&self, app: &App, releases: &[u32]) -> Result<(), Failure> {
        let ns = &app.name;
        for name in app.services.keys() {
            self.delete("apps/v1", "Deployment", &format!("{name}-canary"), ns)
                .await?;
        }
        let current = self.current(app).await;
        for (d, r) in &current.releases {
            if releases.contains(r) && !serves(&current, d) {
                self.scale(ns, d, 0).await?;
            }
        }
        Ok(())
    }
}

/// Whether a Service's selector picks Deployment `d`.
fn serves(current: &Current, d: &str) -> bool {
    current
        .slots
        .iter()
        .any(|(svc, slot)| plan::deployment_name(svc, slot) == d)
}

impl Platform for Kube<'_> {
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
        vec![self.context.clone()]
    }

    fn venue(&self) -> String {
        format!(" on Kubernetes ({})", self.context)
    }

    /// The release carries its app: rollbacks re-apply its objects.
    /// Services built from source are built here and pushed to the
    /// profile's registry first; the app then names the pushed images.
    async fn prepare(
        &mut self,
        spec: &mut ReleaseSpec,
        dry_run: bool,
    ) -> Result<Vec<PlanLine>, Failure> {
        let registry = self.options.registry.clone();
        let (lines, built) =
            crate::deploy::images::for_cluster(spec, registry.as_deref(), self.progress, dry_run)
                .await
                .map_err(|e| {
                    use crate::deploy::release::FailureKind;
                    let kind = if registry.is_none() {
                        FailureKind::Input
                    } else {
                        FailureKind::Engine
                    };
                    Failure::new(kind, e)
                })?;
        for (service, reference) in built {
            if let Some(s) = self.app.services.get_mut(&service) {
                s.image = Some(reference);
                s.build = None;
            }
        }
        spec.app = Some(Box::new(self.app.clone()));
        Ok(lines)
    }

    async fn lock(&mut self, how: &LockRequest) -> Result<Option<String>, Failure> {
        crate::deploy::lock::acquire(&self.lease(), &self.profile, how).await
    }

    async fn unlock(&self) {
        let _ = self.lease().remove().await;
    }

    /// Every Service selects a Deployment of the live release, and no
    /// canary takes a share.
    async fn is_serving(&self, live: &Release) -> Result<bool, Failure> {
        let spec: ReleaseSpec = serde_json::from_str(&live.spec).map_err(|x| x.to_string())?;
        let app = self.app_of(&spec);
        let current = self.current(app).await;
        let canary = app
            .services
            .keys()
            .any(|s| current.releases.contains_key(&format!("{s}-canary")));
        let all_live = current
            .slots
            .iter()
            .filter(|(svc, _)| app.services.contains_key(*svc))
            .all(|(svc, slot)| {
                current.releases.get(&plan::deployment_name(svc, slot)) == Some(&live.runs)
            });
        Ok(!canary && all_live && !current.slots.is_empty())
    }

    async fn converge(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
        let Some(app) = spec.app.as_deref() else {
            return Err(format!(
                "release {runs} was not deployed to Kubernetes (it has no stored objects)"
            )
            .into());
        };
        let current = self.current(app).await;
        let steps = plan::rollback_plan(app, runs, &current, Traffic::ReplicaRatio, &self.routing);
        run_steps(self, &steps).await.map(|_| ())
    }

    async fn remove_leftovers(
        &self,
        _live: Option<&Release>,
        stale: &[u32],
    ) -> Result<Vec<String>, Failure> {
        if stale.is_empty() {
            return Ok(vec![]);
        }
        self.retire(&self.app, stale).await?;
        Ok(vec![format!(
            "scaled to zero what release(s) {stale:?} left and removed canaries"
        )])
    }

    async fn run_release_step(
        &self,
        spec: &ReleaseSpec,
        step: &ReleaseStep,
        number: u32,
    ) -> Result<String, Failure> {
        let app = self.app_of(spec);
        let Some((before, job)) = super::release_command::objects(app, &self.routing, number)
        else {
            return Err(Failure::from(format!(
                "the release command names service {}, which the app does not have",
                step.service
            )));
        };
        for o in &before {
            self.apply(o).await?;
        }
        let took = self
            .run_job(&job, Duration::from_secs(step.timeout_s))
            .await
            .map_err(|f| Failure {
                why: format!(
                    "the release command `{}` failed: {}; nothing was switched",
                    step.describe(),
                    f.why
                ),
                ..f
            })?;
        Ok(format!(
            "`{}` completed in {took:.1}s as Job {}",
            step.describe(),
            job["metadata"]["name"].as_str().unwrap_or("")
        ))
    }

    async fn roll_out(&self, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure> {
        let app = self.app_of(spec);
        let current = self.current(app).await;
        let traffic = self.traffic_for(self.options.strategy).await;
        if self.options.strategy == Strategy::Canary {
            self.progress.step(
                "canary",
                format!(
                    "traffic split by {}",
                    serde_json::to_value(traffic).unwrap_or_default()
                ),
            );
        }
        let steps = plan::plan(&input(self, app, number, &current, traffic));
        run_steps(self, &steps).await
    }

    /// Every Deployment of the release keeps its pods available, none
    /// crash-looping, for the bake period.
    async fn bake(&self, spec: &ReleaseSpec, number: u32) -> Result<(), Failure> {
        let d = self.options.bake;
        if d.is_zero() {
            return Ok(());
        }
        self.progress.step(
            "bake",
            format!("watching release {number} for {} s", d.as_secs()),
        );
        let app = self.app_of(spec);
        let start = Instant::now();
        while start.elapsed() < d {
            tokio::time::sleep(Duration::from_secs(2).min(d)).await;
            let current = self.current(app).await;
            for (deployment, r) in &current.releases {
                if *r == number {
                    self.still_available(&app.name, deployment).await?;
                }
            }
        }
        Ok(())
    }

    /// The failed release's Deployments go to zero (a new slot) or away
    /// (a canary), and the live release's objects are applied again where
    /// they changed.
    async fn restore(&self, live: Option<&Release>, failed: u32) -> Result<String, Failure> {
        self.retire(&self.app, &[failed]).await?;
        let Some(l) = live else {
            return Ok(
                "no earlier release to return to; the new Deployments were scaled to zero".into(),
            );
        };
        let spec: ReleaseSpec = serde_json::from_str(&l.spec).map_err(|x| x.to_string())?;
        self.converge(&spec, l.runs).await?;
        Ok(format!("release {} serves alone again", l.runs))
    }

    /// The plan already removed or scaled down what the old release ran.
    async fn cleanup(
        &self,
        _history: &[Release],
        _spec: &ReleaseSpec,
        _number: u32,
        _previous: Option<&Release>,
    ) -> Result<(), Failure> {
        Ok(())
    }

    async fn discard(&self, runs: u32) -> Result<(), Failure> {
        self.retire(&self.app, &[runs]).await
    }

    /// The canary goes to 100 %: the live slot takes the release and the
    /// canary is removed.
    async fn promote(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
        let app = self.app_of(spec);
        let current = self.current(app).await;
        let traffic = self.traffic().await;
        let steps = plan::plan(&Input {
            strategy: Strategy::Canary,
            canary_steps: &[100],
            ..input(self, app, runs, &current, traffic)
        });
        run_steps(self, &steps).await.map(|_| ())
    }

    async fn status(&self) -> Result<serde_json::Value, Failure> {
        Ok(
            serde_json::to_value(super::status::status(self, &self.app).await?)
                .map_err(|e| e.to_string())?,
        )
    }

    async fn logs(
        &self,
        service: Option<&str>,
        follow: bool,
        tail: usize,
        sink: impl FnMut(&str),
    ) -> Result<(), LogsError> {
        Ok(super::status::logs(self, &self.app, service, follow, tail, sink).await?)
    }

    async fn dry_run(
        &self,
        _history: &[Release],
        spec: &ReleaseSpec,
        next: u32,
    ) -> Result<Vec<PlanLine>, Failure> {
        let app = self.app_of(spec);
        let current = self.current(app).await;
        let traffic = self.traffic_for(self.options.strategy).await;
        let steps = plan::plan(&input(self, app, next, &current, traffic));
        Ok(plan_lines(&steps, &self.context))
    }
}
