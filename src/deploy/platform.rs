//! One entry for every front (the CLI and the dashboard): deploy, roll
//! back, show status and stream logs of a profile with whichever engine its
//! platform needs, so no front builds an engine of its own.

use super::docker_host::deploy::{self as dh_deploy, Report};
use super::docker_host::{self, Engine, Failure};
use super::events::Progress;
use super::kubernetes::{self, Kube};
use super::spec::ReleaseSpec;
use super::strategy::Options;
use super::swarm::{self, Swarm};
use super::{Platform, platform, profile_hosts};
use crate::state::{Profile, Store};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct DeployRequest {
    pub spec: ReleaseSpec,
    pub options: Options,
    pub secrets: BTreeMap<String, String>,
    /// Docker hosts or the swarm manager (default: the profile's).
    pub hosts: Vec<String>,
    pub dry_run: bool,
    pub lock_wait: Duration,
    pub break_lock: bool,
    pub command: String,
}

fn hosts_or_profile(hosts: &[String], p: &Profile) -> Vec<String> {
    if hosts.is_empty() {
        profile_hosts(p)
    } else {
        hosts.to_vec()
    }
}

/// The profile's cluster, with its Gateway setting.
pub async fn kube<'a>(
    p: &Profile,
    progress: &'a Progress,
    options: Options,
) -> Result<Kube<'a>, String> {
    let mut k = Kube::connect(&p.name, progress, options).await?;
    let target = p.settings.get("target").and_then(|t| t.as_str());
    k.routing = crate::manifest::profile_routing(p, target.unwrap_or(""));
    Ok(k)
}

pub async fn deploy(
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    r: DeployRequest,
) -> Result<Report, Failure> {
    let hosts = hosts_or_profile(&r.hosts, p);
    match platform(p) {
        Platform::DockerHost | Platform::Swarm => {
            let swarm = platform(p) == Platform::Swarm;
            let req = dh_deploy::Request {
                spec: r.spec,
                dry_run: r.dry_run,
                lock_wait: r.lock_wait,
                break_lock: r.break_lock,
                command: r.command,
            };
            if swarm {
                let mut sw = Swarm::connect(&p.name, &hosts, progress, r.options).await?;
                sw.dh.secrets = r.secrets;
                swarm::deploy::deploy(&mut sw, store, req).await
            } else {
                let mut e = Engine::connect(&p.name, &hosts, progress, r.options).await?;
                e.secrets = r.secrets;
                dh_deploy::deploy(&mut e, store, req).await
            }
        }
        Platform::Kubernetes => {
            let app = crate::analyse::fitness::swaps::apply(&p.app, &p.swaps)?;
            let req = kubernetes::deploy::Request {
                app,
                spec: r.spec,
                dry_run: r.dry_run,
            };
            match kube(p, progress, r.options.clone()).await {
                Ok(mut k) => {
                    k.secrets = r.secrets;
                    kubernetes::deploy::deploy(&k, store, req, &r.command).await
                }
                Err(why) if r.dry_run => {
                    let next = store
                        .releases(&p.name)
                        .map_err(|x| x.to_string())?
                        .first()
                        .map_or(1, |x| x.number + 1);
                    let target = p.settings.get("target").and_then(|t| t.as_str());
                    let routing = crate::manifest::profile_routing(p, target.unwrap_or(""));
                    Ok(kubernetes::deploy::offline_plan(
                        &req.app, &r.options, &routing, next, &why,
                    ))
                }
                Err(why) => Err(why.into()),
            }
        }
    }
}

pub struct RollbackRequest {
    /// Release to return to (default: the previous good one).
    pub to: Option<u32>,
    /// Needed only when the release's containers must be rebuilt.
    pub secrets: BTreeMap<String, String>,
    pub hosts: Vec<String>,
    pub command: String,
    pub lock_wait: Duration,
    pub break_lock: bool,
}

pub async fn rollback(
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    r: RollbackRequest,
) -> Result<Report, Failure> {
    let RollbackRequest {
        to,
        secrets,
        hosts,
        command,
        lock_wait,
        break_lock,
    } = r;
    let command = command.as_str();
    let hosts = hosts_or_profile(&hosts, p);
    match platform(p) {
        Platform::DockerHost => {
            let mut e = Engine::connect(&p.name, &hosts, progress, Options::default()).await?;
            e.secrets = secrets;
            docker_host::rollback::rollback(&mut e, store, to, command, lock_wait, break_lock).await
        }
        Platform::Swarm => {
            let mut sw = Swarm::connect(&p.name, &hosts, progress, Options::default()).await?;
            sw.dh.secrets = secrets;
            swarm::rollback::rollback(&mut sw, store, to, command, lock_wait, break_lock).await
        }
        Platform::Kubernetes => {
            let mut k = kube(p, progress, Options::default()).await?;
            k.secrets = secrets;
            kubernetes::deploy::rollback(&k, store, to, command).await
        }
    }
}

pub async fn promote(
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    hosts: &[String],
    command: &str,
) -> Result<Report, Failure> {
    let hosts = hosts_or_profile(hosts, p);
    match platform(p) {
        Platform::DockerHost => {
            let mut e = Engine::connect(&p.name, &hosts, progress, Options::default()).await?;
            docker_host::rollback::promote(&mut e, store, command, Duration::ZERO, false).await
        }
        Platform::Swarm => {
            let mut sw = Swarm::connect(&p.name, &hosts, progress, Options::default()).await?;
            swarm::rollback::promote(&mut sw, store, command).await
        }
        Platform::Kubernetes => {
            let mut k = kube(p, progress, Options::default()).await?;
            kubernetes::deploy::promote(&mut k, store, command).await
        }
    }
}

/// What runs now, as JSON (each platform has its own shape, with a
/// `platform` field where it is not a Docker host).
pub async fn status(
    p: &Profile,
    progress: &Progress,
    hosts: &[String],
) -> Result<serde_json::Value, String> {
    let hosts = hosts_or_profile(hosts, p);
    let v = match platform(p) {
        Platform::DockerHost => {
            let e = Engine::connect(&p.name, &hosts, progress, Options::default()).await?;
            serde_json::to_value(docker_host::status::status(&e).await?)
        }
        Platform::Swarm => {
            let sw = Swarm::connect(&p.name, &hosts, progress, Options::default()).await?;
            serde_json::to_value(swarm::status::status(&sw).await?)
        }
        Platform::Kubernetes => {
            let k = kube(p, progress, Options::default()).await?;
            serde_json::to_value(kubernetes::status::status(&k, &p.app).await?)
        }
    };
    v.map_err(|e| e.to_string())
}

/// Why no logs came.
#[derive(Debug)]
pub enum LogsError {
    /// Nothing of the profile (or of that service) runs to read logs from.
    NothingMatches(String),
    /// The engine could not be reached or failed.
    Engine(String),
}

impl std::fmt::Display for LogsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogsError::NothingMatches(m) | LogsError::Engine(m) => f.write_str(m),
        }
    }
}

impl From<String> for LogsError {
    fn from(m: String) -> Self {
        LogsError::Engine(m)
    }
}

/// Log lines of the profile's services (one, or all) to `sink`, as
/// `(source, line)`; followed until the source ends when `follow`.
pub async fn logs(
    p: &Profile,
    progress: &Progress,
    hosts: &[String],
    service: Option<&str>,
    follow: bool,
    tail: usize,
    mut sink: impl FnMut(&str, &str),
) -> Result<(), LogsError> {
    let hosts = hosts_or_profile(hosts, p);
    let mut split = |line: &str| {
        let (src, l) = line.split_once(" | ").unwrap_or(("", line));
        sink(src, l.trim_end());
    };
    match platform(p) {
        Platform::DockerHost => {
            let e = Engine::connect(&p.name, &hosts, progress, Options::default()).await?;
            let mut streams = Vec::new();
            for host in &e.hosts {
                for c in host.list(&e.profile).await? {
                    let wanted = match service {
                        Some(s) => c.service == s,
                        None => c.role == "app" || c.role == "accessory",
                    };
                    if wanted && (c.running() || !follow) {
                        streams.push((host, c.name));
                    }
                }
            }
            if streams.is_empty() {
                return Err(LogsError::NothingMatches(format!(
                    "no containers of {} match",
                    e.profile
                )));
            }
            let lines = std::sync::Mutex::new(&mut split);
            let tasks = streams.iter().map(|(host, name)| {
                let lines = &lines;
                host.stream_logs(name, follow, tail, move |chunk| {
                    for l in chunk.lines() {
                        (lines.lock().unwrap())(&format!("{name} | {l}"));
                    }
                })
            });
            for r in futures_util::future::join_all(tasks).await {
                r?;
            }
            Ok(())
        }
        Platform::Swarm => {
            let sw = Swarm::connect(&p.name, &hosts, progress, Options::default()).await?;
            Ok(swarm::status::logs(&sw, service, follow, tail, split).await?)
        }
        Platform::Kubernetes => {
            let k = kube(p, progress, Options::default()).await?;
            Ok(kubernetes::status::logs(&k, &p.app, service, follow, tail, split).await?)
        }
    }
}
