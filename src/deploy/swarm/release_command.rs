//! The release command on a swarm: a one-off job service (ReplicatedJob,
//! one completion, never restarted) of the release's image with the
//! service's settings and secrets, on the app's overlay network beside its
//! dependencies, before any task of the release starts.

use super::Swarm;
use super::objects::{self, Order};
use crate::deploy::docker_host::client::LABEL_ROLE;
use crate::deploy::release::Failure;
use crate::deploy::spec::{ReleaseSpec, ReleaseStep};
use bollard::models::{
    ServiceSpecMode, ServiceSpecModeReplicatedJob, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use std::time::{Duration, Instant};

pub async fn run(
    sw: &Swarm<'_>,
    spec: &ReleaseSpec,
    step: &ReleaseStep,
    number: u32,
) -> Result<String, Failure> {
    let s = spec.release_service(step)?;
    objects::ensure_network(sw).await?;
    for a in &spec.accessories {
        let name = sw.accessory_name(&a.name);
        if sw.service(&name).await?.is_none() {
            let files = objects::secret_files(sw, &a.secrets, &a.image, number).await?;
            sw.apply(objects::accessory_service(sw, a, &files)?).await?;
        }
        // A migration needs its database up: a service just created has
        // no running task (nor a name on the network) for a moment.
        let since = Instant::now();
        loop {
            let running = sw
                .tasks(&name)
                .await?
                .iter()
                .any(|t| super::task_state(t) == Some(TaskState::RUNNING));
            if running {
                break;
            }
            if since.elapsed() > Duration::from_secs(step.timeout_s.min(120)) {
                return Err(Failure::from(format!(
                    "dependency {name} has no running task; the release command needs it"
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let name = format!("{}-release-command-r{number}", sw.stable_name(&s.name));
    // A run cut off before it removed its job leaves one behind.
    sw.remove(&name).await?;
    let secrets = objects::release_secrets(sw, s, number).await?;
    let mut job =
        objects::app_service(&sw.scope(), s, &name, number, 1, &secrets, Order::StopFirst)?;
    job.mode = Some(ServiceSpecMode {
        replicated_job: Some(ServiceSpecModeReplicatedJob {
            max_concurrent: Some(1),
            total_completions: Some(1),
        }),
        ..Default::default()
    });
    job.update_config = None;
    job.rollback_config = None;
    if let Some(labels) = job.labels.as_mut() {
        labels.insert(LABEL_ROLE.into(), "release".into());
    }
    if let Some(t) = job.task_template.as_mut() {
        t.restart_policy = Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            ..Default::default()
        });
        if let Some(c) = t.container_spec.as_mut() {
            c.args = Some(step.command.clone());
            c.health_check = None;
            if let Some(labels) = c.labels.as_mut() {
                labels.insert(LABEL_ROLE.into(), "release".into());
            }
        }
    }
    let started = Instant::now();
    sw.host()
        .docker
        .create_service(job, None)
        .await
        .map_err(|e| format!("create the release command's job {name}: {e}"))?;
    let limit = Duration::from_secs(step.timeout_s);
    let outcome = loop {
        let tasks = sw.tasks(&name).await?;
        let done = tasks.iter().find(|t| {
            matches!(
                super::task_state(t),
                Some(TaskState::COMPLETE | TaskState::FAILED | TaskState::REJECTED)
            )
        });
        if let Some(t) = done {
            break match super::task_state(t) {
                Some(TaskState::COMPLETE) => Ok(()),
                _ => Err(sw
                    .failure(
                        format!(
                            "the release command `{}` failed after {:.1}s; nothing was switched",
                            step.describe(),
                            started.elapsed().as_secs_f64()
                        ),
                        Some(t),
                    )
                    .await),
            };
        }
        if started.elapsed() >= limit {
            break Err(sw
                .failure(
                    format!(
                        "the release command `{}` ran past its timeout ({}s) and was stopped; nothing was switched",
                        step.describe(),
                        step.timeout_s
                    ),
                    tasks.first(),
                )
                .await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = sw.remove(&name).await;
    outcome?;
    Ok(format!(
        "`{}` completed in {:.1}s as swarm job {name}",
        step.describe(),
        started.elapsed().as_secs_f64()
    ))
}
