//! The deploy lock on a Docker host: a container (created, never started)
//! named after the profile, so creating it is atomic in the engine and its
//! labels say who holds it and since when. Swarm keeps it on the manager.

use super::client::{Host, LABEL_PROFILE, LABEL_ROLE};
use crate::deploy::lock::{Holder, LockStore};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use std::collections::HashMap;

const PREFIX: &str = "dm.lock.";

pub fn lock_name(profile: &str) -> String {
    format!("dm-{profile}-lock")
}

/// The lock of `profile` on `host`; `image` is any image the host has (the
/// container never runs).
pub struct ContainerLock<'a> {
    pub host: &'a Host,
    pub profile: &'a str,
    pub image: &'a str,
}

impl LockStore for ContainerLock<'_> {
    fn place(&self) -> String {
        self.host.name.clone()
    }

    async fn create(&self, holder: &Holder) -> Result<bool, String> {
        let mut labels: HashMap<String, String> = holder.to_labels(PREFIX).into_iter().collect();
        labels.insert(LABEL_PROFILE.into(), self.profile.into());
        labels.insert(LABEL_ROLE.into(), "lock".into());
        let body = ContainerCreateBody {
            image: Some(self.image.into()),
            labels: Some(labels),
            cmd: Some(vec!["lock".into()]),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(lock_name(self.profile)),
            ..Default::default()
        };
        match self.host.docker.create_container(Some(opts), body).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(format!(
                "cannot take the deploy lock on {}: {e}",
                self.host.name
            )),
        }
    }

    async fn holder(&self) -> Result<Option<Holder>, String> {
        match self
            .host
            .docker
            .inspect_container(&lock_name(self.profile), None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => {
                let l = c.config.and_then(|c| c.labels).unwrap_or_default();
                Ok(Some(Holder::from_labels(PREFIX, |k| l.get(k))))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(format!("cannot read the deploy lock: {e}")),
        }
    }

    async fn remove(&self) -> Result<(), String> {
        self.host.remove(&lock_name(self.profile)).await
    }
}
