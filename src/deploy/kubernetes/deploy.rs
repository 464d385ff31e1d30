//! Carrying out a Kubernetes plan: the steps come from `plan.rs` as data;
//! here they run in order against the cluster, and the dry run prints the
//! same steps.

use super::Kube;
use super::plan::{self, Current, Input, Step, Traffic};
use crate::deploy::release::{Failure, Outcome, PlanLine, Report, planned};
use crate::describe::app::App;
use std::time::Duration;

/// The steps as report lines (`--dry-run`, and tests).
pub fn plan_lines(steps: &[Step], context: &str) -> Vec<PlanLine> {
    steps
        .iter()
        .map(|s| {
            let text = plan::describe(s);
            let (action, rest) = text.split_once(' ').unwrap_or((&text, ""));
            let (kind, name) = rest.trim().split_once('/').unwrap_or(("", rest.trim()));
            PlanLine {
                host: context.into(),
                action: action.into(),
                kind: kind.into(),
                name: name.into(),
                detail: String::new(),
            }
        })
        .collect()
}

/// The plan when no cluster answers: everything is new.
pub fn offline_plan(
    app: &App,
    opts: &crate::deploy::strategy::Options,
    routing: &crate::render::gateway::Routing,
    next: u32,
    why: &str,
) -> Report {
    let current = Current::default();
    let steps = plan::plan(&Input {
        app,
        release: next,
        strategy: opts.strategy,
        canary_steps: &opts.canary_steps,
        pause: &opts.pause,
        traffic: Traffic::ReplicaRatio,
        routing,
        cleanup: opts.cleanup,
        current: &current,
    });
    planned(
        next,
        plan_lines(&steps, "(no cluster)"),
        &format!(" (no cluster reachable, so planned as a first deploy: {why})"),
    )
}

/// Carries out steps in order; a manual pause ends the run as paused.
pub async fn run_steps(k: &Kube<'_>, steps: &[Step]) -> Result<Outcome, Failure> {
    for s in steps {
        match s {
            Step::Apply { object } => k.apply(object).await?,
            Step::Wait {
                deployment,
                namespace,
            } => k.wait(namespace, deployment).await?,
            Step::Switch {
                service,
                namespace,
                selector,
            } => k.switch(namespace, service, selector).await?,
            Step::Scale {
                deployment,
                namespace,
                replicas,
            } => k.scale(namespace, deployment, *replicas).await?,
            Step::Delete {
                api_version,
                kind,
                name,
                namespace,
            } => k.delete(api_version, kind, name, namespace).await?,
            Step::Weight { .. } => {}
            Step::Pause { seconds: Some(n) } => tokio::time::sleep(Duration::from_secs(*n)).await,
            Step::Pause { seconds: None } => {
                return Ok(Outcome::Paused(
                    "canary waiting for `promote` or `rollback`".into(),
                ));
            }
        }
        if !matches!(s, Step::Apply { .. }) {
            k.progress.step("step", plan::describe(s));
        }
    }
    Ok(Outcome::Live)
}

pub fn input<'a>(
    k: &'a Kube<'_>,
    app: &'a App,
    release: u32,
    current: &'a Current,
    traffic: Traffic,
) -> Input<'a> {
    Input {
        app,
        release,
        strategy: k.options.strategy,
        canary_steps: &k.options.canary_steps,
        pause: &k.options.pause,
        traffic,
        routing: &k.routing,
        cleanup: k.options.cleanup,
        current,
    }
}
