//! One deploy per profile at a time, across every machine that deploys it:
//! the lock is a container (created, never started) named after the
//! profile on each Docker host, so creating it is atomic in the engine and
//! its labels say who holds it and since when.

use super::client::{DockerResult, Host, LABEL_PROFILE, LABEL_ROLE};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Holder {
    pub actor: String,
    pub pid: u32,
    pub machine: String,
    pub since: String,
    pub command: String,
}

impl Holder {
    pub fn describe(&self) -> String {
        let age = self
            .since
            .parse::<jiff::Timestamp>()
            .map(|t| {
                format!(
                    "{}s",
                    (jiff::Timestamp::now().as_second() - t.as_second()).max(0)
                )
            })
            .unwrap_or_else(|_| "?".into());
        format!(
            "{} (pid {} on {}, `{}`, since {}, age {age})",
            self.actor, self.pid, self.machine, self.command, self.since
        )
    }

    /// Held by a process of this machine that no longer exists.
    fn is_stale(&self) -> bool {
        self.machine == machine() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn lock_name(profile: &str) -> String {
    format!("dm-{profile}-lock")
}

pub async fn holder(host: &Host, profile: &str) -> DockerResult<Option<Holder>> {
    match host
        .docker
        .inspect_container(&lock_name(profile), None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => {
            let l = c.config.and_then(|c| c.labels).unwrap_or_default();
            let g = |k: &str| l.get(k).cloned().unwrap_or_default();
            Ok(Some(Holder {
                actor: g("dm.lock.actor"),
                pid: g("dm.lock.pid").parse().unwrap_or(0),
                machine: g("dm.lock.machine"),
                since: g("dm.lock.since"),
                command: g("dm.lock.command"),
            }))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(format!("cannot read the deploy lock: {e}")),
    }
}

/// Takes the lock, waiting up to `wait`. A lock left by a dead process of
/// this machine is taken over (and said so); any other needs `force`.
pub async fn acquire(
    host: &Host,
    profile: &str,
    image: &str,
    command: &str,
    wait: Duration,
    force: bool,
) -> DockerResult<Option<String>> {
    let start = Instant::now();
    let mut note = None;
    loop {
        let labels = HashMap::from([
            (LABEL_PROFILE.to_string(), profile.to_string()),
            (LABEL_ROLE.to_string(), "lock".to_string()),
            ("dm.lock.actor".to_string(), crate::state::releases::actor()),
            ("dm.lock.pid".to_string(), std::process::id().to_string()),
            ("dm.lock.machine".to_string(), machine()),
            (
                "dm.lock.since".to_string(),
                jiff::Timestamp::now().to_string(),
            ),
            ("dm.lock.command".to_string(), command.to_string()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.into()),
            labels: Some(labels),
            cmd: Some(vec!["lock".into()]),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(lock_name(profile)),
            ..Default::default()
        };
        match host.docker.create_container(Some(opts), body).await {
            Ok(_) => return Ok(note),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(format!("cannot take the deploy lock on {}: {e}", host.name)),
        }
        let Some(h) = holder(host, profile).await? else {
            continue;
        };
        if force || h.is_stale() {
            note = Some(format!(
                "broke the lock of {}{}",
                h.describe(),
                if force { "" } else { ": that process is gone" }
            ));
            host.remove(&lock_name(profile)).await?;
            continue;
        }
        if start.elapsed() >= wait {
            return Err(format!(
                "profile `{profile}` is locked on {} by {}; wait with --lock-wait 5m, or if that run is dead, --break-lock",
                host.name,
                h.describe()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn release(host: &Host, profile: &str) -> DockerResult<()> {
    host.remove(&lock_name(profile)).await
}
