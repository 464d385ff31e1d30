//! What runs on the swarm now: every task of the profile's services with
//! its node, state and error; the proxy's routes; logs through the
//! swarm's service log API; stop and destroy.

use super::{Swarm, task_release, task_state};
use crate::deploy::docker_host::status::{self as dh_status, ProxyStatus};
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub service: String,
    pub swarm_service: String,
    pub role: String,
    pub slot: Option<i64>,
    pub node: String,
    pub release: String,
    pub desired: String,
    pub state: String,
    pub error: String,
    pub since: String,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub service: String,
    pub role: String,
    pub release: String,
    pub replicas: u64,
    pub running: usize,
    pub update: String,
}

/// One node of the swarm as the manager sees it, with the profile's
/// running tasks on it: a drained or down node shows here before a
/// deploy finds out.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub hostname: String,
    pub id: String,
    pub role: String,
    pub state: String,
    pub availability: String,
    pub address: String,
    pub tasks: usize,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub platform: &'static str,
    pub manager: String,
    pub nodes: Vec<NodeStatus>,
    pub services: Vec<ServiceStatus>,
    pub tasks: Vec<TaskStatus>,
    pub proxies: Vec<ProxyStatus>,
}

pub async fn status(sw: &Swarm<'_>) -> Result<Status, String> {
    // Read as placement reads them (sorted by hostname, then id).
    let mut node_list: Vec<NodeStatus> = super::node_fit::read_nodes(&sw.host().docker)
        .await?
        .into_iter()
        .map(|n| NodeStatus {
            hostname: n.facts.hostname,
            id: n.facts.id,
            role: n.facts.role,
            state: n.state,
            availability: n.availability,
            address: n.address,
            tasks: 0,
        })
        .collect();
    let nodes: HashMap<String, String> = node_list
        .iter()
        .map(|n| (n.id.clone(), n.hostname.clone()))
        .collect();
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    for m in sw.services().await? {
        let mut list = sw.tasks(&m.name).await?;
        list.sort_by_key(|t| (t.slot, std::cmp::Reverse(t.created_at.clone())));
        let mut running = 0;
        for t in &list {
            let state = task_state(t).map(|s| s.to_string()).unwrap_or_default();
            if state == "running" {
                running += 1;
                if let Some(n) = node_list
                    .iter_mut()
                    .find(|n| t.node_id.as_ref() == Some(&n.id))
                {
                    n.tasks += 1;
                }
            }
            let st = t.status.as_ref();
            tasks.push(TaskStatus {
                service: m.service.clone(),
                swarm_service: m.name.clone(),
                role: m.role.clone(),
                slot: t.slot,
                node: t
                    .node_id
                    .as_ref()
                    .map(|n| nodes.get(n).cloned().unwrap_or_else(|| n.clone()))
                    .unwrap_or_default(),
                release: task_release(t).map(|r| r.to_string()).unwrap_or_default(),
                desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                state,
                error: st.and_then(|s| s.err.clone()).unwrap_or_default(),
                since: st.and_then(|s| s.timestamp.clone()).unwrap_or_default(),
            });
        }
        services.push(ServiceStatus {
            name: m.name.clone(),
            service: m.service.clone(),
            role: m.role.clone(),
            release: m.release.map(|r| r.to_string()).unwrap_or_default(),
            replicas: m.replicas,
            running,
            update: m.update_state.clone().unwrap_or_default(),
        });
    }
    // The proxies are containers on the manager, as on a Docker host.
    let proxies = dh_status::status(&sw.dh).await?.proxies;
    Ok(Status {
        platform: "swarm",
        manager: sw.host().name.clone(),
        nodes: node_list,
        services,
        tasks,
        proxies,
    })
}

/// Streams the logs of every swarm service of `service` (all when None).
pub async fn logs(
    sw: &Swarm<'_>,
    service: Option<&str>,
    follow: bool,
    tail: usize,
    mut sink: impl FnMut(&str),
) -> Result<(), String> {
    let list: Vec<_> = sw
        .services()
        .await?
        .into_iter()
        .filter(|m| service.is_none_or(|s| m.service == s) && (m.replicas > 0 || !follow))
        .collect();
    if list.is_empty() {
        return Err(match service {
            Some(s) => format!("no service {s} runs for profile {}", sw.dh.profile),
            None => format!("nothing runs for profile {}", sw.dh.profile),
        });
    }
    let streams = list.iter().map(|m| {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            follow,
            timestamps: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        sw.host()
            .docker
            .service_logs(&m.name, Some(opts))
            .map(|c| (m.service.clone(), c))
    });
    let mut all = futures_util::stream::select_all(streams.map(Box::pin));
    while let Some((svc, chunk)) = all.next().await {
        let chunk = chunk.map_err(|e| format!("logs of {svc}: {e}"))?;
        for line in chunk.to_string().lines() {
            sink(&format!("{svc} | {line}\n"));
        }
    }
    Ok(())
}

/// Scales every service to zero and stops the proxies; `deploy` or
/// `rollback` brings them back.
pub async fn stop(sw: &Swarm<'_>) -> Result<usize, String> {
    Ok(stop_behind_proxies(sw).await? + dh_status::stop(&sw.dh).await?)
}

/// Scales the app and its dependencies to zero, leaving the proxies on
/// the nodes running: after a move to other machines they forward there
/// (`deploy/chain.rs`).
pub async fn stop_behind_proxies(sw: &Swarm<'_>) -> Result<usize, String> {
    let mut n = 0;
    for m in sw.services().await? {
        if m.replicas > 0 {
            sw.scale(&m.name, 0).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Removes services, proxies, secrets and the network; volumes only when
/// asked (after their tasks are gone).
pub async fn destroy(sw: &Swarm<'_>, volumes: bool) -> Result<(usize, usize), String> {
    let mut n = 0;
    for m in sw.services().await? {
        sw.remove(&m.name).await?;
        n += 1;
    }
    // Task containers go away asynchronously; volumes and the network
    // can only be removed after them.
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(30) {
        let left = sw
            .host()
            .docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![format!(
                        "{}={}",
                        crate::deploy::docker_host::client::LABEL_PROFILE,
                        sw.dh.profile
                    )],
                )])),
                ..Default::default()
            }))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("com.docker.swarm.task.id"))
            })
            .count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    for id in sw.secret_ids().await? {
        sw.host()
            .docker
            .delete_secret(&id)
            .await
            .map_err(|e| format!("remove secret {id}: {e}"))?;
    }
    // The proxy and lock containers go with the Docker-host part; only
    // then can the network go.
    let (containers, vols) = dh_status::destroy(&sw.dh, volumes).await?;
    // Swarm removes an overlay network asynchronously; the next deploy
    // must not find a network that is about to disappear.
    let net = sw.network();
    let start = std::time::Instant::now();
    loop {
        let docker = &sw.host().docker;
        let gone = docker
            .inspect_network(
                &net,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_err();
        if gone {
            return Ok((n + containers, vols));
        }
        if let Some(user) = foreign_user(sw, &net).await {
            sw.progress().step(
                "destroy",
                format!("network {net} stays: {user} (handed to another profile by `migrate`) is attached to it"),
            );
            return Ok((n + containers, vols));
        }
        let removed = docker.remove_network(&net).await;
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let why = removed
                .err()
                .map_or("it is still listed".into(), |e| e.to_string());
            return Err(format!("network {net} could not be removed: {why}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// A container still attached to the profile's network once its own are
/// gone: a proxy that `migrate` handed to another profile, which keeps the
/// network it was created on (its published port is bound through it).
async fn foreign_user(sw: &Swarm<'_>, net: &str) -> Option<String> {
    let n = sw
        .host()
        .docker
        .inspect_network(
            net,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .ok()?;
    n.containers?
        .into_iter()
        // Swarm's own load-balancer endpoint of the network.
        .filter(|(id, _)| !id.starts_with("lb-"))
        .find_map(|(_, c)| c.name)
}
