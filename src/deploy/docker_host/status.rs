//! What runs now, from the hosts themselves: containers with health,
//! restarts, CPU and memory; each proxy's routes and per-release counts.

use super::Engine;
use crate::deploy::release::LogsError;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct ContainerStatus {
    pub host: String,
    pub name: String,
    pub role: String,
    pub service: String,
    pub release: String,
    pub state: String,
    pub health: String,
    pub restarts: i64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ProxyStatus {
    pub host: String,
    pub service: String,
    pub paused: bool,
    /// release → percent of traffic
    pub routes: BTreeMap<String, u32>,
    /// release → (requests, errors)
    pub requests: BTreeMap<String, (u64, u64)>,
    pub unhealthy_targets: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub containers: Vec<ContainerStatus>,
    pub proxies: Vec<ProxyStatus>,
}

pub async fn status(e: &Engine<'_>) -> Result<Status, String> {
    let mut containers = Vec::new();
    let mut proxies = Vec::new();
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            if c.role == "lock" {
                continue;
            }
            let l = host.liveness(&c.name).await.unwrap_or_default();
            let usage = if c.running() {
                host.usage(&c.name).await
            } else {
                None
            };
            let health = l.health.clone().unwrap_or_else(|| {
                if l.running {
                    "running".into()
                } else {
                    "-".into()
                }
            });
            if c.role == "proxy"
                && c.running()
                && let Ok(st) = e.proxy_state(host, &c.service).await
            {
                let total: u32 = st
                    .table
                    .releases
                    .iter()
                    .map(|r| r.weight)
                    .sum::<u32>()
                    .max(1);
                proxies.push(ProxyStatus {
                    host: host.name.clone(),
                    service: c.service.clone(),
                    paused: st.table.paused,
                    routes: st
                        .table
                        .releases
                        .iter()
                        .map(|r| (r.release.clone(), r.weight * 100 / total))
                        .collect(),
                    requests: st
                        .metrics
                        .iter()
                        .map(|(k, m)| (k.clone(), (m.requests, m.errors)))
                        .collect(),
                    unhealthy_targets: st
                        .targets
                        .iter()
                        .filter(|t| !t.healthy)
                        .map(|t| t.label())
                        .collect(),
                });
            }
            containers.push(ContainerStatus {
                host: host.name.clone(),
                name: c.name,
                role: c.role,
                service: c.service,
                release: c.release,
                state: c.state,
                health,
                restarts: l.restarts,
                cpu_percent: usage.map(|u| (u.0 * 10.0).round() / 10.0),
                memory_bytes: usage.map(|u| u.1),
            });
        }
    }
    Ok(Status {
        containers,
        proxies,
    })
}

/// Stops every container of the profile (proxies and accessories too);
/// `start` by deploying again.
pub async fn stop(e: &Engine<'_>) -> Result<usize, String> {
    stop_where(e, true).await
}

/// Stops the app and its dependencies, leaving the proxies running: after
/// a move to other machines they forward there (`deploy/chain.rs`).
pub async fn stop_behind_proxies(e: &Engine<'_>) -> Result<usize, String> {
    stop_where(e, false).await
}

async fn stop_where(e: &Engine<'_>, proxies_too: bool) -> Result<usize, String> {
    let mut n = 0;
    for host in &e.hosts {
        for c in host.list(&e.profile).await? {
            if c.running() && (proxies_too || c.role != "proxy") {
                host.stop(&c.name, 30).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes every container and the network; volumes only when asked.
pub async fn destroy(e: &Engine<'_>, volumes: bool) -> Result<(usize, usize), String> {
    let mut containers = 0;
    let mut vols = 0;
    for host in &e.hosts {
        // A proxy handed over by `migrate` keeps the state volume of the
        // profile it came from: it goes with the proxy.
        let mut names = Vec::new();
        for c in host.list(&e.profile).await? {
            if c.role == "proxy" {
                names.extend(host.volumes_of(&c.name).await);
            }
            host.remove(&c.name).await?;
            containers += 1;
        }
        let _ = host.docker.remove_network(&e.network()).await;
        if volumes {
            let filters = std::collections::HashMap::from([(
                "label".to_string(),
                vec![format!("{}={}", super::client::LABEL_PROFILE, e.profile)],
            )]);
            let opts = bollard::query_parameters::ListVolumesOptions {
                filters: Some(filters),
            };
            let list = host
                .docker
                .list_volumes(Some(opts))
                .await
                .map_err(|x| x.to_string())?;
            names.extend(list.volumes.unwrap_or_default().into_iter().map(|v| v.name));
            names.sort();
            names.dedup();
            for name in names {
                match host
                    .docker
                    .remove_volume(
                        &name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                {
                    Ok(()) => vols += 1,
                    // In use by the proxy this profile handed to another.
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 409 | 404,
                        ..
                    }) => {}
                    Err(x) => return Err(format!("cannot remove volume {name}: {x}")),
                }
            }
        }
    }
    Ok((containers, vols))
}

/// Streams the logs of the profile's containers (one service, or every
/// app and dependency) on every host, each line as `container | line`.
pub async fn logs(
    e: &Engine<'_>,
    service: Option<&str>,
    follow: bool,
    tail: usize,
    mut sink: impl FnMut(&str),
) -> Result<(), LogsError> {
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
    let lines = std::sync::Mutex::new(&mut sink);
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
