//! The Docker-host engine: one or several machines running Docker, each
//! with our proxy in front of every public service. Names and labels tie
//! every container to its profile, service, release and replica, so the
//! engine can always rebuild its view from the hosts themselves.
//! Shape: `plan.rs` decides (no IO), `rollout.rs` observes and executes,
//! `platform.rs` plugs it into the shared lifecycle.

pub mod canary;
pub mod client;
pub mod lock;
pub mod monitor;
pub mod plan;
pub mod platform;
pub mod proxy_image;
pub mod reconcile;
pub mod rollout;
pub mod status;

use crate::deploy::events::Progress;
use crate::deploy::proxy::server::StateView;
use crate::deploy::proxy::table::{RouteTable, UpstreamProtocol};
use crate::deploy::release::Failure;
use crate::deploy::spec::{ReleaseSpec, ReleaseStep, ServiceSpec};
use crate::deploy::strategy::Options;
use client::{
    ContainerPlan, Host, LABEL_PROFILE, LABEL_RELEASE, LABEL_REPLICA, LABEL_ROLE, LABEL_SERVICE,
    Managed,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Port the proxy listens on inside its container.
pub const PROXY_PORT: u16 = 8000;
pub const PROXY_ADMIN: &str = "127.0.0.1:9901";

pub struct Engine<'a> {
    pub profile: String,
    pub hosts: Vec<Host>,
    pub progress: &'a Progress,
    pub options: Options,
    /// Secret values for containers created by this run; never stored.
    pub secrets: BTreeMap<String, String>,
    pub proxy_image: String,
    /// The network a proxy is created on, when not the profile's own: on a
    /// swarm, Docker's default bridge, so that its published port is bound
    /// through a network that never changes (`hand_over.rs`) and the
    /// overlay is joined after.
    pub proxy_home: Option<String>,
}

pub use plan::{app_container, container_of, release_container, routes_by_count};

impl<'a> Engine<'a> {
    pub async fn connect(
        profile: &str,
        hosts: &[String],
        progress: &'a Progress,
        options: Options,
    ) -> Result<Engine<'a>, String> {
        let mut connected = Vec::new();
        let mut skipped = Vec::new();
        for h in hosts {
            match client::connect(h).await {
                Ok(c) => connected.push(c),
                Err(e) if options.skip_unreachable => {
                    progress.step("preflight", format!("skipped {h}: {e}"));
                    skipped.push(h.clone());
                }
                Err(e) => {
                    return Err(format!(
                        "{e}; nothing was changed on any host (deploy --skip-unreachable leaves it out)"
                    ));
                }
            }
        }
        if connected.is_empty() && !skipped.is_empty() {
            return Err(format!("no host answered ({})", skipped.join(", ")));
        }
        if connected.is_empty() {
            connected.push(client::connect("local").await?);
        }
        Ok(Engine {
            profile: profile.into(),
            hosts: connected,
            progress,
            options,
            secrets: BTreeMap::new(),
            proxy_image: String::new(),
            proxy_home: None,
        })
    }

    pub fn network(&self) -> String {
        format!("dm-{}", self.profile)
    }

    pub fn proxy_name(&self, service: &str) -> String {
        plan::proxy_name(&self.profile, service)
    }

    pub fn target_addr(&self, s: &ServiceSpec, release: u32, replica: u32) -> String {
        plan::target_addr(&self.profile, s, release, replica)
    }

    fn labels(&self, role: &str, service: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_PROFILE.to_string(), self.profile.clone()),
            (LABEL_ROLE.to_string(), role.to_string()),
            (LABEL_SERVICE.to_string(), service.to_string()),
        ])
    }

    /// Calls the proxy's control API through `docker exec`.
    pub async fn proxy_ctl(
        &self,
        host: &Host,
        service: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<serde_json::Value, String> {
        let cmd = [
            "/deployment-manager",
            "proxy",
            "ctl",
            "--admin",
            PROXY_ADMIN,
            method,
            path,
            body,
        ]
        .map(String::from)
        .to_vec();
        let (code, out) = host.exec(&self.proxy_name(service), cmd).await?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).map_err(|_| {
            format!(
                "proxy of {service} on {} answered: {}",
                host.name,
                out.trim()
            )
        })?;
        if code != 0 {
            return Err(v
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or(out.trim())
                .to_string());
        }
        Ok(v)
    }

    pub async fn proxy_state(&self, host: &Host, service: &str) -> Result<StateView, String> {
        let v = self.proxy_ctl(host, service, "GET", "/state", "").await?;
        serde_json::from_value(v).map_err(|e| format!("proxy state: {e}"))
    }

    /// A table for `s` with the service's own settings and no releases.
    pub fn base_table(&self, s: &ServiceSpec) -> RouteTable {
        let mut t = RouteTable::new(&s.name);
        t.health_path = s.health.http.clone();
        t.health_grpc = s.health.grpc.clone();
        t.sticky = s.sticky;
        if s.grpc {
            t.upstream = UpstreamProtocol::H2c;
        }
        t.drain_timeout_ms = self.options.drain_timeout.as_millis() as u64;
        t
    }

    /// An empty table: the proxy of `service` routes to no release.
    pub async fn route_nowhere(&self, host: &Host, service: &str) -> Result<(), String> {
        let mut t = RouteTable::new(service);
        t.drain_timeout_ms = self.options.drain_timeout.as_millis() as u64;
        let body = serde_json::to_string(&t).map_err(|x| x.to_string())?;
        self.proxy_ctl(host, service, "PUT", "/table", &body)
            .await
            .map(|_| ())
    }

    pub async fn put_table(
        &self,
        host: &Host,
        s: &ServiceSpec,
        table: &RouteTable,
    ) -> Result<(), String> {
        let body = serde_json::to_string(table).map_err(|e| e.to_string())?;
        let out = self
            .proxy_ctl(host, &s.name, "PUT", "/table", &body)
            .await?;
        let cancelled = out.get("cancelled").and_then(|c| c.as_u64()).unwrap_or(0);
        if cancelled > 0 {
            self.progress.step(
                "drain",
                format!(
                    "{}: {cancelled} connection(s) still open at the drain deadline were closed",
                    s.name
                ),
            );
        }
        Ok(())
    }

    /// Makes sure the proxy of a public service runs on `host`.
    pub async fn ensure_proxy(&self, host: &Host, s: &ServiceSpec) -> Result<(), String> {
        let Some(public) = s.public_port else {
            return Ok(());
        };
        let name = self.proxy_name(&s.name);
        if let Ok(l) = host.liveness(&name).await {
            if !l.running {
                host.start(&name).await?;
                self.wait_proxy(host, s).await?;
            }
            return Ok(());
        }
        let volume = format!("{name}-state");
        host.ensure_volume(&volume, &self.profile).await?;
        let mut labels = self.labels("proxy", &s.name);
        labels.insert(LABEL_RELEASE.into(), String::new());
        let command = [
            "run",
            "--service",
            &s.name,
            "--listen",
            &format!("0.0.0.0:{PROXY_PORT}"),
            "--admin",
            PROXY_ADMIN,
            "--state",
            "/state/routes.json",
        ]
        .map(String::from)
        .to_vec();
        let network = self.network();
        let home = self.proxy_home.as_deref().unwrap_or(&network);
        let plan = ContainerPlan {
            name: &name,
            image: &self.proxy_image,
            labels,
            command,
            network: home,
            binds: vec![format!("{volume}:/state")],
            ports: vec![(public, PROXY_PORT)],
            memory: Some(256 << 20),
            read_only: true,
            stop_grace: 10,
            ..Default::default()
        };
        host.create(&plan).await?;
        if home != network {
            host.connect_network(&network, &name).await?;
        }
        host.start(&name).await?;
        self.wait_proxy(host, s).await?;
        // An empty table that already carries the service's settings.
        self.put_table(host, s, &self.base_table(s)).await?;
        self.progress
            .step("proxy", format!("{name} listens on {}:{public}", host.name));
        Ok(())
    }

    async fn wait_proxy(&self, host: &Host, s: &ServiceSpec) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match self.proxy_state(host, &s.name).await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(15) => {
                    let logs = host.tail(&self.proxy_name(&s.name), 20).await;
                    return Err(format!("proxy of {} did not start: {e}\n{logs}", s.name));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Creates and starts one replica of a release (secrets written as
    /// files before start); an existing container is started if stopped.
    pub async fn start_replica(
        &self,
        host: &Host,
        s: &ServiceSpec,
        release: u32,
        replica: u32,
    ) -> Result<String, String> {
        let name = app_container(&self.profile, &s.name, release, replica);
        if let Ok(l) = host.liveness(&name).await {
            if !l.running {
                host.start(&name).await?;
            }
            return Ok(name);
        }
        let mut labels = self.labels("app", &s.name);
        labels.insert(LABEL_RELEASE.into(), release.to_string());
        labels.insert(LABEL_REPLICA.into(), replica.to_string());
        self.create_with_secrets(host, s, &name, labels, s.command.clone(), false)
            .await?;
        host.start(&name).await?;
        Ok(name)
    }

    /// Creates a container of service `s` running `command`, its secrets
    /// written as files before it starts. A one-off (the release command)
    /// has no restart policy, health check or service alias.
    async fn create_with_secrets(
        &self,
        host: &Host,
        s: &ServiceSpec,
        name: &str,
        labels: HashMap<String, String>,
        command: Vec<String>,
        one_off: bool,
    ) -> Result<(), String> {
        let mut env: Vec<String> = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for n in &s.secrets {
            env.push(format!("{n}_FILE=/run/secrets/{n}"));
        }
        for v in &s.volumes {
            if let Some((vol, _)) = v.split_once(':').filter(|(v, _)| !v.starts_with('/')) {
                host.ensure_volume(vol, &self.profile).await?;
            }
        }
        let plan = ContainerPlan {
            name,
            image: if s.image_id.is_empty() {
                &s.image
            } else {
                &s.image_id
            },
            labels,
            command,
            entrypoint: None,
            env,
            network: &self.network(),
            aliases: if one_off {
                vec![]
            } else {
                vec![s.name.clone()]
            },
            binds: s.volumes.clone(),
            ports: vec![],
            memory: s.memory_limit.map(|m| m as i64),
            nano_cpus: s.nano_cpus,
            health_cmd: if one_off {
                vec![]
            } else {
                s.health.command.clone()
            },
            health_interval_s: s.health.interval_s,
            health_timeout_s: s.health.timeout_s,
            health_retries: s.health.retries,
            health_start_s: s.health.start_period_s,
            user: None,
            read_only: false,
            stop_grace: s.stop_grace,
            init: s.init,
            one_off,
        };
        host.create(&plan).await?;
        if !s.secrets.is_empty() {
            let mut files = Vec::new();
            for n in &s.secrets {
                let v = self.secrets.get(n).ok_or_else(|| {
                    format!("secret {n} is needed to create {name}; provide it in the environment or with --env-file")
                })?;
                files.push((n.clone(), v.as_bytes().to_vec()));
            }
            let owner = host
                .image_user(&s.image)
                .await
                .and_then(|u| parse_owner(&u));
            if let Err(e) = host.put_files(name, "/run/secrets", &files, owner).await {
                let _ = host.remove(name).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The release command: a one-off container of its service on the
    /// first host, on the app's network beside its dependencies, before
    /// any replica of the release starts. It must exit 0 within its
    /// timeout; its container is removed either way and its last log lines
    /// come back with a failure.
    pub async fn run_release_step(
        &self,
        spec: &ReleaseSpec,
        step: &ReleaseStep,
        number: u32,
    ) -> Result<String, Failure> {
        let host = self
            .hosts
            .first()
            .ok_or_else(|| Failure::from("no host in this profile".to_string()))?;
        let s = spec.release_service(step)?;
        host.ensure_network(&self.network(), &self.profile).await?;
        for acc in &spec.accessories {
            rollout::ensure_accessory(self, host, acc).await?;
        }
        let name = release_container(&self.profile, number);
        // A run cut off before it removed its container leaves one behind.
        host.remove(&name).await?;
        let mut labels = self.labels("release", &s.name);
        labels.insert(LABEL_RELEASE.into(), number.to_string());
        self.create_with_secrets(host, s, &name, labels, step.command.clone(), true)
            .await?;
        let started = Instant::now();
        let exit = host
            .run_to_exit(&name, Duration::from_secs(step.timeout_s))
            .await?;
        let logs = host.tail(&name, 20).await;
        let _ = host.remove(&name).await;
        let took = started.elapsed().as_secs_f64();
        match exit {
            Some(0) => Ok(format!(
                "`{}` exited 0 in {took:.1}s on {}",
                step.describe(),
                host.name
            )),
            Some(code) => Err(Failure::unhealthy(
                format!(
                    "the release command `{}` exited {code} after {took:.1}s; nothing was switched",
                    step.describe()
                ),
                Some(name),
                logs,
            )),
            None => Err(Failure::unhealthy(
                format!(
                    "the release command `{}` ran past its timeout ({}s) and was stopped; nothing was switched",
                    step.describe(),
                    step.timeout_s
                ),
                Some(name),
                logs,
            )),
        }
    }

    /// Waits until the given replicas pass their health check, failing
    /// fast (with the logs) when one exits or restarts.
    pub async fn await_ready(
        &self,
        host: &Host,
        s: &ServiceSpec,
        release: u32,
        replicas: &[u32],
    ) -> Result<(), Failure> {
        let names: Vec<String> = replicas
            .iter()
            .map(|r| app_container(&self.profile, &s.name, release, *r))
            .collect();
        let timeout = self.options.deploy_timeout;
        let start = Instant::now();
        let check = async {
            if s.public_port.is_some() {
                let targets: Vec<String> = replicas
                    .iter()
                    .map(|r| self.target_addr(s, release, *r))
                    .collect();
                let body = serde_json::json!({
                    "targets": targets,
                    "path": s.health.http,
                    "grpc": s.health.grpc,
                    "timeout_ms": timeout.as_millis() as u64,
                    "interval_ms": 250,
                });
                self.proxy_ctl(host, &s.name, "POST", "/check", &body.to_string())
                    .await
                    .map(|_| ())
            } else {
                // Internal services: the engine's health check when there
                // is one, otherwise two seconds up without a restart.
                loop {
                    let mut ready = true;
                    for n in &names {
                        let l = host.liveness(n).await?;
                        ready &= match l.health.as_deref() {
                            Some(h) => h == "healthy",
                            None => l.running && start.elapsed() > Duration::from_secs(2),
                        };
                    }
                    if ready {
                        return Ok(());
                    }
                    if start.elapsed() > timeout {
                        return Err(format!("not healthy after {} s", timeout.as_secs()));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                for n in &names {
                    if let Ok(l) = host.liveness(n).await
                        && (!l.running || l.restarting || l.restarts > 0)
                    {
                        return n.clone();
                    }
                }
            }
        };
        tokio::select! {
            r = check => r.map_err(|why| Failure::unhealthy(
                format!("{} of release {release} on {}: {why}", s.name, host.name),
                names.first().cloned(),
                String::new(),
            )),
            bad = watch => {
                let l = host.liveness(&bad).await.unwrap_or_default();
                let how = if l.oom_killed {
                    "was killed for using too much memory".to_string()
                } else if l.restarts > 0 || l.restarting {
                    let code = if l.exit_code != 0 { format!(", last exit code {}", l.exit_code) } else { String::new() };
                    format!("is crash-looping ({} restart(s){code})", l.restarts.max(1))
                } else {
                    format!("exited with code {}", l.exit_code)
                };
                Err(Failure::unhealthy(format!("{bad} {how}"), Some(bad), String::new()))
            }
        }
    }

    /// Adds the failing container's last log lines to a failure.
    pub async fn with_logs(&self, host: &Host, mut f: Failure) -> Failure {
        if let Some(c) = &f.container {
            f.logs = host.tail(c, 20).await;
        }
        f
    }

    /// Containers of the profile on `host` for one service and role.
    pub async fn app_containers(&self, host: &Host, service: &str) -> Result<Vec<Managed>, String> {
        Ok(host
            .list(&self.profile)
            .await?
            .into_iter()
            .filter(|c| c.role == "app" && c.service == service)
            .collect())
    }
}

/// `uid[:gid]` from an image's USER, when numeric.
pub(super) fn parse_owner(user: &str) -> Option<(u64, u64)> {
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    Some((u.parse().ok()?, g.parse().ok()?))
}

impl Engine<'_> {
    /// Targets that receive traffic now, as (release, addr), oldest first.
    pub async fn routed_targets(
        &self,
        host: &Host,
        s: &ServiceSpec,
    ) -> Result<Vec<(String, String)>, String> {
        let st = self.proxy_state(host, &s.name).await?;
        let mut v: Vec<(String, String)> = st
            .table
            .releases
            .iter()
            .filter(|r| r.weight > 0)
            .flat_map(|r| r.targets.iter().map(|t| (r.release.clone(), t.clone())))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Running containers of other releases of an internal service.
    pub async fn running_others(
        &self,
        host: &Host,
        s: &ServiceSpec,
        except: u32,
    ) -> Result<Vec<String>, String> {
        Ok(self
            .app_containers(host, &s.name)
            .await?
            .into_iter()
            .filter(|c| c.running() && c.release != except.to_string())
            .map(|c| c.name)
            .collect())
    }

    pub async fn stop_all(&self, host: &Host, names: &[String], grace: u64) -> Result<(), String> {
        let stops = names.iter().map(|n| host.stop(n, grace));
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
        Ok(())
    }

    /// Sends all traffic of `s` to `release`, draining every other target.
    pub async fn switch_all(
        &self,
        host: &Host,
        s: &ServiceSpec,
        release: u32,
    ) -> Result<(), String> {
        let mut table = self.base_table(s);
        table.releases = plan::all_on(&self.profile, s, release);
        self.put_table(host, s, &table).await
    }
}
