//! A Kubernetes deploy: lock (a Lease), reconcile the release history,
//! plan against what the cluster runs, carry the plan out step by step,
//! and on failure return traffic to the live release.

use super::Kube;
use super::plan::{self, Current, Input, Step, Traffic};
use crate::analyse::cost::Strategy;
use crate::deploy::docker_host::deploy::{PlanLine, Report, images_json};
use crate::deploy::docker_host::{Failure, Outcome};
use crate::deploy::spec::ReleaseSpec;
use crate::describe::app::App;
use crate::state::Store;
use crate::state::releases::{NewRelease, Release, actor};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use std::time::Duration;

pub struct Request {
    pub app: App,
    pub spec: ReleaseSpec,
    pub dry_run: bool,
}

fn strategy_name(s: Strategy) -> &'static str {
    crate::deploy::swarm::deploy::strategy_name(s)
}

/// The plan as report lines (`--dry-run`, and tests).
pub fn plan_report(app: &App, steps: &[Step], context: &str, next: u32) -> Report {
    let lines: Vec<PlanLine> = steps
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
        .collect();
    Report {
        release: None,
        status: "planned".into(),
        message: format!(
            "dry run: release {next} of {} would take {} step(s); nothing was changed",
            app.name,
            lines.len()
        ),
        plan: lines,
    }
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
    let mut r = plan_report(app, &steps, "(no cluster)", next);
    r.message = format!(
        "{} (no cluster reachable, so planned as a first deploy: {why})",
        r.message
    );
    r
}

/// A Lease per profile in the app's namespace: creating it is atomic in
/// the API server, so two operators cannot deploy at once.
async fn lock(k: &Kube<'_>, ns: &str, command: &str) -> Result<(), Failure> {
    let ns_obj =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    k.apply(&ns_obj).await?;
    let api: Api<Lease> = Api::namespaced(k.client.clone(), ns);
    let name = format!("deployment-manager-{}", k.profile);
    let lease: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": {"deployment-manager/command": command}},
        "spec": {"holderIdentity": format!("{} pid {}", actor(), std::process::id())}
    }))
    .map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let holder = api
                .get(&name)
                .await
                .ok()
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
                .unwrap_or_default();
            Err(format!("another deploy of {} holds Lease/{name} in {ns} ({holder}); wait for it, or delete the Lease if that run is dead", k.profile).into())
        }
        Err(e) => Err(format!("lock: {e}").into()),
    }
}

async fn unlock(k: &Kube<'_>, ns: &str) {
    let api: Api<Lease> = Api::namespaced(k.client.clone(), ns);
    let _ = api
        .delete(
            &format!("deployment-manager-{}", k.profile),
            &DeleteParams::default(),
        )
        .await;
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

fn input<'a>(
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

pub async fn deploy(
    k: &Kube<'_>,
    store: &mut Store,
    req: Request,
    command: &str,
) -> Result<Report, Failure> {
    let mut spec = req.spec.clone();
    spec.app = Some(Box::new(req.app.clone()));
    let fingerprint = spec.fingerprint();
    let ns = req.app.name.clone();
    let next = store
        .releases(&k.profile)
        .map_err(|x| x.to_string())?
        .first()
        .map_or(1, |r| r.number + 1);
    if req.dry_run {
        let current = k.current(&req.app).await;
        let traffic = if k.options.strategy == Strategy::Canary {
            k.traffic().await
        } else {
            Traffic::ReplicaRatio
        };
        let steps = plan::plan(&input(k, &req.app, next, &current, traffic));
        return Ok(plan_report(&req.app, &steps, &k.context, next));
    }
    lock(k, &ns, command).await?;
    let out = locked_deploy(k, store, &req.app, &spec, &fingerprint).await;
    unlock(k, &ns).await;
    out
}

async fn locked_deploy(
    k: &Kube<'_>,
    store: &mut Store,
    app: &App,
    spec: &ReleaseSpec,
    fingerprint: &str,
) -> Result<Report, Failure> {
    let profile = k.profile.clone();
    for (_, _, note) in store
        .settle_unfinished(&profile)
        .map_err(|x| x.to_string())?
    {
        k.progress.step("reconcile", note);
    }
    let live = store.live_release(&profile).map_err(|x| x.to_string())?;
    if let Some(l) = live.as_ref().filter(|l| l.fingerprint == fingerprint) {
        return Ok(Report {
            release: Some(l.number),
            status: "unchanged".into(),
            message: format!(
                "release {} already runs this exact spec; nothing to do",
                l.number
            ),
            plan: vec![],
        });
    }
    let spec_json = serde_json::to_string(spec).map_err(|x| x.to_string())?;
    let strategy = strategy_name(k.options.strategy);
    let number = store
        .begin_release(NewRelease {
            profile: &profile,
            strategy,
            runs: None,
            hosts: std::slice::from_ref(&k.context),
            fingerprint,
            images: &images_json(spec),
            spec: &spec_json,
        })
        .map_err(|x| x.to_string())?;
    k.progress.step(
        "release",
        format!(
            "release {number} of {profile} on Kubernetes ({strategy}, {})",
            k.context
        ),
    );
    let current = k.current(app).await;
    let traffic = if k.options.strategy == Strategy::Canary {
        k.traffic().await
    } else {
        Traffic::ReplicaRatio
    };
    if k.options.strategy == Strategy::Canary {
        k.progress.step(
            "canary",
            format!(
                "traffic split by {}",
                serde_json::to_value(traffic).unwrap_or_default()
            ),
        );
    }
    let steps = plan::plan(&input(k, app, number, &current, traffic));
    let outcome = run_steps(k, &steps).await;
    let events = |store: &Store| {
        for ev in k.progress.events() {
            let _ = store.release_event(&profile, number, &ev.phase, &ev.message);
        }
    };
    let (status, reason, result) = match outcome {
        Ok(Outcome::Live) => (
            "succeeded",
            None,
            Ok(Report {
                release: Some(number),
                status: "succeeded".into(),
                message: format!("release {number} is live"),
                plan: vec![],
            }),
        ),
        Ok(Outcome::Paused(why)) => (
            "paused",
            Some(why.clone()),
            Ok(Report {
                release: Some(number),
                status: "paused".into(),
                message: why,
                plan: vec![],
            }),
        ),
        Err(f) => {
            k.progress.step("failed", f.why.clone());
            match restore(k, app, live.as_ref(), number).await {
                Ok(m) => k.progress.step("rollback", m),
                Err(x) => k
                    .progress
                    .step("rollback", format!("could not roll back: {x}")),
            }
            (
                "failed",
                Some(f.to_string()),
                Err(Failure {
                    why: format!("release {number} failed and was rolled back: {}", f.why),
                    ..f
                }),
            )
        }
    };
    events(store);
    store
        .finish_release(&profile, number, status, reason.as_deref())
        .map_err(|x| x.to_string())?;
    result
}

/// After a failure: the canary is removed, a new slot scaled to zero, and
/// the live release's objects applied again where they changed.
async fn restore(
    k: &Kube<'_>,
    app: &App,
    live: Option<&Release>,
    failed: u32,
) -> Result<String, Failure> {
    let ns = &app.name;
    for name in app.services.keys() {
        k.delete("apps/v1", "Deployment", &format!("{name}-canary"), ns)
            .await?;
    }
    let current = k.current(app).await;
    for (d, r) in &current.releases {
        let serving = current
            .slots
            .iter()
            .any(|(svc, slot)| plan::deployment_name(svc, slot) == *d);
        if *r == failed && !serving {
            k.scale(ns, d, 0).await?;
        }
    }
    let Some(l) = live else {
        return Ok(
            "no earlier release to return to; the new Deployments were scaled to zero".into(),
        );
    };
    let spec: ReleaseSpec = serde_json::from_str(&l.spec).map_err(|x| x.to_string())?;
    let Some(live_app) = spec.app else {
        return Ok(format!(
            "release {} has no stored objects to re-apply",
            l.number
        ));
    };
    let current = k.current(&live_app).await;
    let steps = plan::rollback_plan(
        &live_app,
        l.runs,
        &current,
        Traffic::ReplicaRatio,
        &k.routing,
    );
    run_steps(k, &steps).await?;
    Ok(format!("release {} serves alone again", l.runs))
}

pub async fn rollback(
    k: &Kube<'_>,
    store: &mut Store,
    to: Option<u32>,
    command: &str,
) -> Result<Report, Failure> {
    let profile = k.profile.clone();
    let choice = store.rollback_target(&profile, to, false)?;
    let (target, live) = (choice.target, choice.live);
    let spec: ReleaseSpec = serde_json::from_str(&target.spec).map_err(|x| x.to_string())?;
    let app = spec
        .app
        .clone()
        .ok_or_else(|| "that release was not deployed to Kubernetes".to_string())?;
    lock(k, &app.name, command).await?;
    let out = async {
        let number = store
            .begin_release(NewRelease {
                profile: &profile,
                strategy: "rollback",
                runs: Some(target.runs),
                hosts: std::slice::from_ref(&k.context),
                fingerprint: &target.fingerprint,
                images: &images_json(&spec),
                spec: &target.spec,
            })
            .map_err(|x| x.to_string())?;
        let current = k.current(&app).await;
        let steps = plan::rollback_plan(
            &app,
            target.runs,
            &current,
            Traffic::ReplicaRatio,
            &k.routing,
        );
        let r = run_steps(k, &steps).await;
        let status = if r.is_ok() { "succeeded" } else { "failed" };
        store
            .finish_release(
                &profile,
                number,
                status,
                r.as_ref().err().map(|f| f.why.as_str()),
            )
            .map_err(|x| x.to_string())?;
        r?;
        if let Some(l) = live.as_ref().filter(|l| l.runs != target.runs) {
            store
                .finish_release(
                    &profile,
                    l.number,
                    "rolled_back",
                    Some(&format!("rolled back by release {number}")),
                )
                .map_err(|x| x.to_string())?;
        }
        Ok(Report {
            release: Some(number),
            status: "succeeded".into(),
            message: format!(
                "release {number} serves again what release {} ran",
                target.runs
            ),
            plan: vec![],
        })
    }
    .await;
    unlock(k, &app.name).await;
    out
}

/// A paused canary goes to 100 %: the live slot takes the release and the
/// canary is removed.
pub async fn promote(
    k: &mut Kube<'_>,
    store: &mut Store,
    command: &str,
) -> Result<Report, Failure> {
    let profile = k.profile.clone();
    let paused = store
        .releases(&profile)
        .map_err(|x| x.to_string())?
        .into_iter()
        .find(|r| r.status == "paused")
        .ok_or_else(|| format!("profile {profile} has no paused canary to promote"))?;
    let spec: ReleaseSpec = serde_json::from_str(&paused.spec).map_err(|x| x.to_string())?;
    let app = spec
        .app
        .ok_or_else(|| "that release was not deployed to Kubernetes".to_string())?;
    k.options.strategy = Strategy::Canary;
    k.options.canary_steps = vec![100];
    lock(k, &app.name, command).await?;
    let current = k.current(&app).await;
    let traffic = k.traffic().await;
    let steps = plan::plan(&input(k, &app, paused.runs, &current, traffic));
    let r = run_steps(k, &steps).await;
    unlock(k, &app.name).await;
    r?;
    store
        .finish_release(&profile, paused.number, "succeeded", None)
        .map_err(|x| x.to_string())?;
    Ok(Report {
        release: Some(paused.number),
        status: "succeeded".into(),
        message: format!("release {} promoted and live", paused.number),
        plan: vec![],
    })
}
