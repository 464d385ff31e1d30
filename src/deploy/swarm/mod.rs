//! The Docker Swarm engine: an existing swarm runs the tasks (placement,
//! restarts, start-first updates with automatic rollback); our proxy, a
//! container on the manager joined to the profile's overlay network, is
//! the public entry point and moves traffic between releases for
//! blue-green and canary. Services carry the same labels as Docker-host
//! containers, so the engine rebuilds its view from the swarm itself.
//! Shape: `plan.rs` decides (no IO), `rollout.rs` observes and executes,
//! `platform.rs` plugs it into the shared lifecycle.

pub mod canary;
pub mod node_fit;
pub mod objects;
pub mod plan;
pub mod platform;
pub mod release_command;
pub mod rollout;
pub mod status;
pub mod update;

use crate::deploy::docker_host::Engine;
use crate::deploy::docker_host::client::{
    Host, LABEL_PROFILE, LABEL_RELEASE, LABEL_ROLE, LABEL_SERVICE,
};
use crate::deploy::events::Progress;
use crate::deploy::proxy::server::StateView;
use crate::deploy::proxy::table::{ReleaseRoute, RouteTable};
use crate::deploy::release::Failure;
use crate::deploy::spec::ServiceSpec;
use crate::deploy::strategy::Options;
use bollard::models::{Service, ServiceSpec as SwarmSpec, Task, TaskState};
use bollard::query_parameters::{ListServicesOptions, ListTasksOptions, UpdateServiceOptions};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Swarm<'a> {
    /// The manager as a Docker host: proxy, lock and images live there.
    pub dh: Engine<'a>,
    /// The swarm node id of each of `dh.hosts`, in the same order.
    node_ids: Vec<String>,
}

/// One of the profile's swarm services, from its labels.
#[derive(Clone, Debug)]
pub struct Managed {
    pub name: String,
    pub role: String,
    pub service: String,
    pub release: Option<u32>,
    pub replicas: u64,
    pub version: i32,
    pub spec: SwarmSpec,
    pub update_state: Option<String>,
    pub update_message: Option<String>,
}

impl Managed {
    fn from(s: Service) -> Option<Managed> {
        let spec = s.spec?;
        let labels = spec.labels.clone().unwrap_or_default();
        let update = s.update_status;
        Some(Managed {
            name: spec.name.clone()?,
            role: labels.get(LABEL_ROLE).cloned().unwrap_or_default(),
            service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            release: labels.get(LABEL_RELEASE).and_then(|r| r.parse().ok()),
            replicas: spec
                .mode
                .as_ref()
                .and_then(|m| m.replicated.as_ref())
                .and_then(|r| r.replicas)
                .unwrap_or(0) as u64,
            version: s.version.and_then(|v| v.index).unwrap_or(0) as i32,
            update_state: update.as_ref().and_then(|u| u.state).map(|s| s.to_string()),
            update_message: update.and_then(|u| u.message),
            spec,
        })
    }
}

/// The release a task runs, from its container labels.
pub fn task_release(t: &Task) -> Option<u32> {
    t.spec
        .as_ref()?
        .container_spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_RELEASE)?
        .parse()
        .ok()
}

pub fn task_state(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

fn desired_running(t: &Task) -> bool {
    t.desired_state == Some(TaskState::RUNNING)
}

impl<'a> Swarm<'a> {
    /// Connects to the manager (the profile's first host) and checks that
    /// it is one. Further hosts are the engines of other nodes of the same
    /// swarm: the deploy ships images to them, as no node can pull.
    pub async fn connect(
        profile: &str,
        hosts: &[String],
        progress: &'a Progress,
        options: Options,
    ) -> Result<Swarm<'a>, String> {
        let dh = Engine::connect(profile, hosts, progress, options).await?;
        let info = dh.hosts[0]
            .docker
            .info()
            .await
            .map_err(|e| format!("{}: {e}", dh.hosts[0].name))?;
        let sw = info.swarm.unwrap_or_default();
        let mut node_ids = vec![sw.node_id.clone().unwrap_or_default()];
        if sw.control_available != Some(true) {
            let state = sw
                .local_node_state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "inactive".into());
            return Err(format!(
                "{} is not a swarm manager (swarm: {state}); run `docker swarm init` there, or point the profile at a manager with `profile set {profile} hosts ssh://user@manager`",
                dh.hosts[0].name
            ));
        }
        let members: Vec<String> = if dh.hosts.len() > 1 {
            dh.hosts[0]
                .docker
                .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
                .await
                .map_err(|e| format!("{}: {e}", dh.hosts[0].name))?
                .into_iter()
                .filter_map(|n| n.id)
                .collect()
        } else {
            Vec::new()
        };
        for node in &dh.hosts[1..] {
            let id = node
                .docker
                .info()
                .await
                .map_err(|e| format!("{}: {e}", node.name))?
                .swarm
                .and_then(|s| s.node_id)
                .unwrap_or_default();
            if !members.contains(&id) {
                return Err(format!(
                    "{} is not a node of the swarm {} manages; a swarm profile names its manager first, then the engines of its other nodes",
                    node.name, dh.hosts[0].name
                ));
            }
            node_ids.push(id);
        }
        let mut dh = dh;
        dh.proxy_home = Some("bridge".into());
        Ok(Swarm { dh, node_ids })
    }

    /// The manager's swarm node id.
    pub fn manager_node_id(&self) -> &str {
        &self.node_ids[0]
    }

    /// The engine of swarm node `node_id`, when the profile names it.
    pub fn host_of_node(&self, node_id: &str) -> Option<&Host> {
        self.node_ids
            .iter()
            .position(|id| id == node_id)
            .map(|i| &self.dh.hosts[i])
    }

    pub fn host(&self) -> &Host {
        &self.dh.hosts[0]
    }

    /// Where the public entry points run: one proxy on the manager and on
    /// every other node the profile names, each routing to the tasks on
    /// all nodes through the overlay, so losing one node loses one door.
    pub fn proxy_hosts(&self) -> &[Host] {
        &self.dh.hosts
    }

    /// Puts one table on every proxy of `s`.
    pub async fn put_tables(&self, s: &ServiceSpec, table: &RouteTable) -> Result<(), String> {
        for host in self.proxy_hosts() {
            self.dh.put_table(host, s, table).await?;
        }
        Ok(())
    }

    /// The state of the first proxy of `service` that answers.
    pub async fn proxy_state(&self, service: &str) -> Result<StateView, String> {
        let mut last = String::from("no proxy");
        for host in self.proxy_hosts() {
            match self.dh.proxy_state(host, service).await {
                Ok(st) => return Ok(st),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn progress(&self) -> &Progress {
        self.dh.progress
    }

    pub fn network(&self) -> String {
        self.dh.network()
    }

    /// The service a rolling update changes in place.
    pub fn stable_name(&self, service: &str) -> String {
        plan::stable_name(&self.dh.profile, service)
    }

    /// The service of one release, for blue-green and canary.
    pub fn release_name(&self, service: &str, release: u32) -> String {
        plan::release_name(&self.dh.profile, service, release)
    }

    pub fn accessory_name(&self, name: &str) -> String {
        format!("dm-{}-{name}", self.dh.profile)
    }

    /// `tasks.<service>` resolves to every healthy task on the overlay.
    pub fn target(&self, swarm_service: &str, s: &ServiceSpec) -> String {
        format!("tasks.{swarm_service}:{}", s.port.unwrap_or(80))
    }

    pub async fn services(&self) -> Result<Vec<Managed>, String> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROFILE}={}", self.dh.profile)],
        )]);
        let list = self
            .host()
            .docker
            .list_services(Some(ListServicesOptions {
                filters: Some(filters),
                status: None,
            }))
            .await
            .map_err(|e| format!("list services: {e}"))?;
        Ok(list.into_iter().filter_map(Managed::from).collect())
    }

    pub async fn service(&self, name: &str) -> Result<Option<Managed>, String> {
        Ok(self.services().await?.into_iter().find(|m| m.name == name))
    }

    /// App services of one app service (stable and per release).
    pub async fn app_services(&self, service: &str) -> Result<Vec<Managed>, String> {
        Ok(self
            .services()
            .await?
            .into_iter()
            .filter(|m| m.role == "app" && m.service == service)
            .collect())
    }

    /// Ids of the swarm secrets this profile created.
    pub async fn secret_ids(&self) -> Result<Vec<String>, String> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROFILE}={}", self.dh.profile)],
        )]);
        let list = self
            .host()
            .docker
            .list_secrets(Some(bollard::query_parameters::ListSecretsOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| format!("list secrets: {e}"))?;
        Ok(list.into_iter().filter_map(|s| s.id).collect())
    }

    pub async fn tasks(&self, swarm_service: &str) -> Result<Vec<Task>, String> {
        let filters = HashMap::from([("service".to_string(), vec![swarm_service.to_string()])]);
        self.host()
            .docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| format!("tasks of {swarm_service}: {e}"))
    }

    /// Creates the service, or updates it to `spec`; true when created.
    pub async fn apply(&self, spec: SwarmSpec) -> Result<bool, String> {
        let name = spec.name.clone().unwrap_or_default();
        match self.service(&name).await? {
            Some(m) => {
                self.update(&m, spec, None).await?;
                Ok(false)
            }
            None => {
                let docker = &self.host().docker;
                if let Err(e) = docker.create_service(spec.clone(), None).await {
                    // A network removed just before (a destroy) can still be
                    // listed for a moment; make it again and retry once.
                    let text = e.to_string();
                    if !(text.contains("network") && text.contains("not found")) {
                        return Err(format!("create service {name}: {e}"));
                    }
                    let net = self.network();
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_secs(10)
                        && docker
                            .inspect_network(
                                &net,
                                None::<bollard::query_parameters::InspectNetworkOptions>,
                            )
                            .await
                            .is_ok()
                    {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    objects::ensure_network(self).await?;
                    docker
                        .create_service(spec, None)
                        .await
                        .map_err(|e| format!("create service {name}: {e}"))?;
                }
                Ok(true)
            }
        }
    }

    async fn update(
        &self,
        m: &Managed,
        spec: SwarmSpec,
        rollback: Option<&str>,
    ) -> Result<(), String> {
        let opts = UpdateServiceOptions {
            version: m.version,
            rollback: rollback.map(String::from),
            ..Default::default()
        };
        self.host()
            .docker
            .update_service(&m.name, spec, opts, None)
            .await
            .map(|_| ())
            .map_err(|e| format!("update service {}: {e}", m.name))
    }

    /// Asks swarm to return a service to its previous spec.
    pub async fn rollback_service(&self, name: &str) -> Result<(), String> {
        let Some(m) = self.service(name).await? else {
            return Ok(());
        };
        let spec = m.spec.clone();
        self.update(&m, spec, Some("previous")).await
    }

    pub async fn scale(&self, name: &str, replicas: u64) -> Result<(), String> {
        let Some(m) = self.service(name).await? else {
            return Ok(());
        };
        if m.replicas == replicas {
            return Ok(());
        }
        let mut spec = m.spec.clone();
        if let Some(r) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
            r.replicas = Some(replicas as i64);
        }
        self.update(&m, spec, None).await
    }

    pub async fn remove(&self, name: &str) -> Result<(), String> {
        match self.host().docker.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(format!("remove service {name}: {e}")),
        }
    }

    /// Waits until `replicas` tasks of `release` run (healthy, when the
    /// service has a health check) and no other release's task is meant
    /// to. Fails on a swarm rollback of this update, on repeated task
    /// failures, or at the deploy timeout, with the failing task's logs.
    pub async fn await_ready(
        &self,
        name: &str,
        release: u32,
        replicas: u64,
        since: Instant,
    ) -> Result<(), Failure> {
        let per_task = self.dh.options.deploy_timeout;
        let timeout = per_task * (replicas.max(1) as u32) + Duration::from_secs(10);
        loop {
            let m = self
                .service(name)
                .await?
                .ok_or_else(|| format!("service {name} disappeared"))?;
            let tasks = self.tasks(name).await?;
            let ours = |t: &&Task| task_release(t) == Some(release);
            let ready = tasks
                .iter()
                .filter(ours)
                .filter(|t| desired_running(t) && task_state(t) == Some(TaskState::RUNNING))
                .count() as u64;
            let others = tasks
                .iter()
                .filter(|t| desired_running(t) && task_release(t) != Some(release))
                .count();
            let failed: Vec<&Task> = tasks
                .iter()
                .filter(ours)
                .filter(|t| {
                    matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED))
                        || t.status.as_ref().and_then(|s| s.err.as_ref()).is_some()
                })
                .collect();
            // Swarm rolling back is a failure of the release it left; once
            // the spec is back on the release awaited (our own restore),
            // the tasks alone decide.
            let rolled_back = match m.update_state.as_deref() {
                Some("paused") => true,
                Some(s) if s.starts_with("rollback") => m.release != Some(release),
                _ => false,
            };
            let updating = m.update_state.as_deref() == Some("updating");
            if ready >= replicas && others == 0 && !updating && !rolled_back {
                return Ok(());
            }
            let why = if rolled_back {
                Some(format!(
                    "swarm rolled the update of {name} back: {}",
                    m.update_message.clone().unwrap_or_default()
                ))
            } else if failed.len() >= 2 && m.replicas > 0 && m.update_state.is_none() {
                Some(format!("tasks of {name} keep failing"))
            } else if since.elapsed() > timeout {
                Some(format!(
                    "{name}: {ready} of {replicas} task(s) of release {release} ready after {} s",
                    timeout.as_secs()
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self
                    .failure(why, failed.first().copied().or(tasks.iter().find(ours)))
                    .await);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A failure with the task's error and its container's last lines.
    pub async fn failure(&self, why: String, task: Option<&Task>) -> Failure {
        let err = task
            .and_then(|t| t.status.as_ref())
            .and_then(|s| s.err.clone().or(s.message.clone()))
            .map(|e| format!(" (task: {e})"))
            .unwrap_or_default();
        let container = task
            .and_then(|t| t.status.as_ref())
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone());
        let logs = match &container {
            Some(c) => self.host().tail(c, 20).await,
            None => String::new(),
        };
        Failure::unhealthy(format!("{why}{err}"), container, logs)
    }

    /// All traffic of `s` to one swarm service.
    pub async fn route_to(
        &self,
        s: &ServiceSpec,
        swarm_service: &str,
        release: u32,
    ) -> Result<(), String> {
        if s.public_port.is_none() {
            return Ok(());
        }
        // Every proxy must reach the tasks through the overlay before it
        // sends them traffic (DNS of new tasks can lag swarm's state).
        let check = serde_json::json!({
            "targets": [self.target(swarm_service, s)],
            "path": s.health.http,
            "grpc": s.health.grpc,
            "timeout_ms": self.dh.options.deploy_timeout.as_millis() as u64,
            "interval_ms": 250,
        });
        for host in self.proxy_hosts() {
            self.dh.ensure_proxy(host, s).await?;
            self.dh
                .proxy_ctl(host, &s.name, "POST", "/check", &check.to_string())
                .await
                .map_err(|e| {
                    format!(
                        "{swarm_service} is not reachable from the proxy on {}: {e}",
                        host.name
                    )
                })?;
        }
        let mut table = self.dh.base_table(s);
        table.releases = vec![ReleaseRoute {
            release: release.to_string(),
            weight: 100,
            targets: vec![self.target(swarm_service, s)],
        }];
        self.put_tables(s, &table).await
    }

    /// The swarm service traffic of `s` goes to now, from the proxy.
    pub async fn routed(&self, s: &ServiceSpec) -> Result<Vec<(u32, String, u32)>, String> {
        if s.public_port.is_none() {
            return Ok(Vec::new());
        }
        let Ok(st) = self.proxy_state(&s.name).await else {
            return Ok(Vec::new());
        };
        Ok(st
            .table
            .releases
            .iter()
            .filter(|r| r.weight > 0)
            .flat_map(|r| {
                r.targets.iter().map(|t| {
                    let svc = t
                        .trim_start_matches("tasks.")
                        .split(':')
                        .next()
                        .unwrap_or("");
                    (r.release.parse().unwrap_or(0), svc.to_string(), r.weight)
                })
            })
            .collect())
    }
}
