//! A Docker host as the deploy engine sees it: bollard calls with the
//! names, labels and defaults every container of a profile shares.

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StartContainerOptions, StatsOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const LABEL_PROFILE: &str = "dm.profile";
pub const LABEL_ROLE: &str = "dm.role";
pub const LABEL_SERVICE: &str = "dm.service";
pub const LABEL_RELEASE: &str = "dm.release";
pub const LABEL_REPLICA: &str = "dm.replica";

/// One Docker engine, local or remote.
#[derive(Clone)]
pub struct Host {
    pub name: String,
    pub docker: Docker,
}

pub type DockerResult<T> = Result<T, String>;

/// Whether proxy container `c` is the one `profile` routes through.
fn owns_proxy(profile: &str, c: &Managed) -> bool {
    c.name == super::plan::proxy_name(profile, &c.service)
}

fn err(what: &str, e: bollard::errors::Error) -> String {
    format!("{what}: {e}")
}

/// Open [`KeepSshClients`] scopes; while any is open, clients of `ssh://`
/// engines are kept for reuse.
static KEEPING: AtomicUsize = AtomicUsize::new(0);
/// The kept clients, by the runtime they were made on (their connections
/// belong to its reactor) and the engine's address.
static KEPT: Mutex<Vec<(tokio::runtime::Id, String, Docker)>> = Mutex::new(Vec::new());

/// While alive, each `ssh://` engine is connected once per runtime and its
/// client reused. Every new client starts its own ssh master connection
/// and `docker system dial-stdio` (0.5–0.7 s each on the test rig), and a
/// move reaches the same nodes many times, several of them while requests
/// are held. Dropping the scope closes them (their ssh masters exit).
pub struct KeepSshClients(());

impl KeepSshClients {
    pub fn start() -> KeepSshClients {
        KEEPING.fetch_add(1, Ordering::SeqCst);
        KeepSshClients(())
    }
}

impl Drop for KeepSshClients {
    fn drop(&mut self) {
        if KEEPING.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Taken out before dropping: closing a session runs `ssh -O exit`.
            drop(std::mem::take(&mut *KEPT.lock().unwrap()));
        }
    }
}

fn kept_client(host: &str) -> Option<(tokio::runtime::Id, Option<Docker>)> {
    if !host.starts_with("ssh://") || KEEPING.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?.id();
    let kept = KEPT.lock().unwrap();
    let found = kept
        .iter()
        .find(|(r, h, _)| *r == runtime && h == host)
        .map(|(_, _, d)| d.clone());
    Some((runtime, found))
}

/// `local` (or empty) for this machine's socket, `unix:///path`,
/// `tcp://host:2376` (TLS from DOCKER_CERT_PATH when set) or
/// `ssh://user@host` (the system ssh, with the user's keys and config).
pub async fn connect(host: &str) -> DockerResult<Host> {
    let keep = kept_client(host);
    if let Some((_, Some(docker))) = &keep {
        return Ok(Host {
            name: host.into(),
            docker: docker.clone(),
        });
    }
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if host.is_empty() || host == "local" {
        Docker::connect_with_local_defaults()
    } else if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 120, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        match std::env::var_os("DOCKER_CERT_PATH") {
            Some(dir) => {
                let dir = std::path::PathBuf::from(dir);
                Docker::connect_with_ssl(
                    host,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    120,
                    version,
                )
            }
            None => Docker::connect_with_http(host, 120, version),
        }
    } else if host.starts_with("ssh://") {
        Docker::connect_with_ssh(host, 120, version, None)
    } else {
        return Err(format!(
            "`{host}` is not a Docker host address; use local, unix:///path, tcp://host:port or ssh://user@host"
        ));
    }
    .map_err(|e| err(&format!("cannot connect to Docker at {host}"), e))?;
    // Debian's engine speaks an older API than bollard's default.
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| err(&format!("Docker at {host} does not answer"), e))?;
    if let Some((runtime, None)) = keep {
        KEPT.lock()
            .unwrap()
            .push((runtime, host.to_string(), docker.clone()));
    }
    Ok(Host {
        name: if host.is_empty() {
            "local".into()
        } else {
            host.into()
        },
        docker,
    })
}

/// What the engine says about one of our containers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Managed {
    pub name: String,
    pub id: String,
    pub role: String,
    pub service: String,
    pub release: String,
    pub replica: u32,
    pub state: String,
    pub status: String,
    pub image: String,
}

impl Managed {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// Details from inspect that decide health and crash loops.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    pub running: bool,
    pub restarting: bool,
    pub restarts: i64,
    pub exit_code: i64,
    pub health: Option<String>,
    pub oom_killed: bool,
}

#[derive(Default)]
pub struct ContainerPlan<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub labels: HashMap<String, String>,
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub network: &'a str,
    pub aliases: Vec<String>,
    pub binds: Vec<String>,
    pub ports: Vec<(u16, u16)>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub health_cmd: Vec<String>,
    pub health_interval_s: u64,
    pub health_timeout_s: u64,
    pub health_retries: u32,
    pub health_start_s: u64,
    pub user: Option<String>,
    pub read_only: bool,
    pub stop_grace: u64,
    /// Docker's init (tini) as PID 1, forwarding signals to the command.
    pub init: bool,
    /// Runs once and is not restarted (the release command).
    pub one_off: bool,
}

impl Host {
    pub async fn ensure_network(&self, name: &str, profile: &str) -> DockerResult<bool> {
        if self.docker.inspect_network(name, None).await.is_ok() {
            return Ok(false);
        }
        let req = NetworkCreateRequest {
            name: name.into(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(LABEL_PROFILE.into(), profile.into())])),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(true),
            // Someone else created it between our check and our create.
            Err(_) if self.docker.inspect_network(name, None).await.is_ok() => Ok(false),
            Err(e) => Err(err(&format!("cannot create network {name}"), e)),
        }
    }

    pub async fn ensure_volume(&self, name: &str, profile: &str) -> DockerResult<bool> {
        if self.docker.inspect_volume(name).await.is_ok() {
            return Ok(false);
        }
        let req = VolumeCreateRequest {
            name: Some(name.into()),
            labels: Some(HashMap::from([(LABEL_PROFILE.into(), profile.into())])),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map_err(|e| err(&format!("cannot create volume {name}"), e))?;
        Ok(true)
    }

    /// Every container of the profile, running or not. A proxy belongs to
    /// the profile whose proxy name it bears: `migrate` hands a running
    /// proxy (and with it the public port) to the new profile by renaming
    /// it, and labels cannot change on a container.
    pub async fn list(&self, profile: &str) -> DockerResult<Vec<Managed>> {
        let mut out = self.labelled(&format!("{LABEL_PROFILE}={profile}")).await?;
        out.retain(|c| c.role != "proxy" || owns_proxy(profile, c));
        for c in self.labelled(&format!("{LABEL_ROLE}=proxy")).await? {
            if owns_proxy(profile, &c) && !out.iter().any(|o| o.id == c.id) {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn labelled(&self, label: &str) -> DockerResult<Vec<Managed>> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| err("cannot list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                Managed {
                    name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    id: c.id.unwrap_or_default(),
                    role: l(LABEL_ROLE),
                    service: l(LABEL_SERVICE),
                    release: l(LABEL_RELEASE),
                    replica: l(LABEL_REPLICA).parse().unwrap_or(0),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Starts a one-off container and waits for it to exit: its exit code,
    /// or `None` when it still runs after `limit` (left running).
    pub async fn run_to_exit(
        &self,
        name: &str,
        limit: std::time::Duration,
    ) -> DockerResult<Option<i64>> {
        self.start(name).await?;
        let started = std::time::Instant::now();
        loop {
            let l = self.liveness(name).await?;
            if !l.running {
                return Ok(Some(l.exit_code));
            }
            if started.elapsed() >= limit {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The named volumes a container mounts.
    pub async fn volumes_of(&self, name: &str) -> Vec<String> {
        let Ok(i) = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        else {
            return Vec::new();
        };
        i.mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| m.name)
            .collect()
    }

    /// Renames a container, running or not (its connections stay open).
    pub async fn rename(&self, from: &str, to: &str) -> DockerResult<()> {
        self.docker
            .rename_container(
                from,
                bollard::query_parameters::RenameContainerOptions { name: to.into() },
            )
            .await
            .map_err(|e| err(&format!("cannot rename {from} to {to}"), e))
    }

    /// The networks a container is attached to, each with whether it is
    /// swarm-scoped (an overlay).
    pub async fn networks_of(&self, name: &str) -> DockerResult<Vec<(String, bool)>> {
        let i = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| err(&format!("cannot inspect {name}"), e))?;
        let mut out = Vec::new();
        let attached = i
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        for net in attached.keys() {
            out.push((net.clone(), self.is_overlay(net).await?));
        }
        Ok(out)
    }

    /// Whether a network is swarm-scoped (an overlay).
    pub async fn is_overlay(&self, net: &str) -> DockerResult<bool> {
        let n = self
            .docker
            .inspect_network(
                net,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map_err(|e| err(&format!("cannot inspect network {net}"), e))?;
        Ok(n.scope.as_deref() == Some("swarm"))
    }

    pub async fn disconnect_network(&self, network: &str, container: &str) -> DockerResult<()> {
        let req = bollard::models::NetworkDisconnectRequest {
            container: container.into(),
            force: Some(true),
        };
        self.docker
            .disconnect_network(network, req)
            .await
            .map_err(|e| err(&format!("cannot detach {container} from {network}"), e))
    }

    /// Attaches a running container to one more network (idempotent).
    pub async fn connect_network(&self, network: &str, container: &str) -> DockerResult<()> {
        let req = bollard::models::NetworkConnectRequest {
            container: container.into(),
            ..Default::default()
        };
        match self.docker.connect_network(network, req).await {
            Ok(()) => Ok(()),
            // Already attached.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403, ..
            }) => Ok(()),
            Err(e) => Err(err(&format!("cannot attach {container} to {network}"), e)),
        }
    }

    pub async fn image_id(&self, image: &str) -> DockerResult<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(err(&format!("cannot inspect image {image}"), e)),
        }
    }

    pub async fn image_user(&self, image: &str) -> Option<String> {
        self.docker
            .inspect_image(image)
            .await
            .ok()
            .and_then(|i| i.config)
            .and_then(|c| c.user)
            .filter(|u| !u.is_empty())
    }

    pub async fn create(&self, p: &ContainerPlan<'_>) -> DockerResult<String> {
        let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = p
            .ports
            .iter()
            .map(|(host, container)| {
                (
                    format!("{container}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some(host.to_string()),
                    }]),
                )
            })
            .collect();
        let host_config = HostConfig {
            binds: (!p.binds.is_empty()).then(|| p.binds.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(if p.one_off {
                    RestartPolicyNameEnum::NO
                } else {
                    RestartPolicyNameEnum::UNLESS_STOPPED
                }),
                maximum_retry_count: None,
            }),
            memory: p.memory,
            nano_cpus: p.nano_cpus,
            readonly_rootfs: Some(p.read_only),
            init: Some(p.init),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".into(), "10m".into()),
                    ("max-file".into(), "3".into()),
                ])),
            }),
            ..Default::default()
        };
        let healthcheck = (!p.health_cmd.is_empty()).then(|| {
            let s = 1_000_000_000i64;
            let mut test = vec!["CMD".to_string()];
            test.extend(p.health_cmd.iter().cloned());
            HealthConfig {
                test: Some(test),
                interval: Some(p.health_interval_s as i64 * s),
                timeout: Some(p.health_timeout_s as i64 * s),
                retries: Some(p.health_retries as i64),
                start_period: Some(p.health_start_s as i64 * s),
                ..Default::default()
            }
        });
        let exposed: Vec<String> = p.ports.iter().map(|(_, c)| format!("{c}/tcp")).collect();
        let body = ContainerCreateBody {
            image: Some(p.image.into()),
            cmd: (!p.command.is_empty()).then(|| p.command.clone()),
            entrypoint: p.entrypoint.clone(),
            env: Some(p.env.clone()),
            labels: Some(p.labels.clone()),
            user: p.user.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck,
            stop_timeout: Some(p.stop_grace as i64),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    p.network.to_string(),
                    EndpointSettings {
                        aliases: Some(p.aliases.clone()),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(p.name.into()),
            ..Default::default()
        };
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| err(&format!("cannot create container {}", p.name), e))?;
        Ok(r.id)
    }

    /// Writes files (secrets) into a created container before it starts, so
    /// values never appear in its configuration or environment.
    pub async fn put_files(
        &self,
        container: &str,
        dir: &str,
        files: &[(String, Vec<u8>)],
        owner: Option<(u64, u64)>,
    ) -> DockerResult<()> {
        let mut tar = tar::Builder::new(Vec::new());
        let (uid, gid) = owner.unwrap_or((0, 0));
        let rel = dir.trim_start_matches('/');
        let mut d = tar::Header::new_gnu();
        d.set_entry_type(tar::EntryType::Directory);
        d.set_mode(0o500);
        d.set_uid(uid);
        d.set_gid(gid);
        d.set_size(0);
        d.set_cksum();
        tar.append_data(&mut d, format!("{rel}/"), std::io::empty())
            .map_err(|e| e.to_string())?;
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o400);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append_data(&mut h, format!("{rel}/{name}"), data.as_slice())
                .map_err(|e| e.to_string())?;
        }
        let bytes = tar.into_inner().map_err(|e| e.to_string())?;
        let opts = UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(container, Some(opts), bollard::body_full(bytes.into()))
            .await
            .map_err(|e| err(&format!("cannot write files into {container}"), e))
    }

    pub async fn start(&self, name: &str) -> DockerResult<()> {
        match self
            .docker
            .start_container(name, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(err(&format!("cannot start {name}"), e)),
        }
    }

    pub async fn stop(&self, name: &str, grace_s: u64) -> DockerResult<()> {
        let opts = StopContainerOptions {
            t: Some(grace_s as i32),
            ..Default::default()
        };
        match self.docker.stop_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(err(&format!("cannot stop {name}"), e)),
        }
    }

    pub async fn remove(&self, name: &str) -> DockerResult<()> {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(err(&format!("cannot remove {name}"), e)),
        }
    }

    pub async fn liveness(&self, name: &str) -> DockerResult<Liveness> {
        let i = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| err(&format!("cannot inspect {name}"), e))?;
        let s = i.state.unwrap_or_default();
        Ok(Liveness {
            running: s.running.unwrap_or(false),
            restarting: s.restarting.unwrap_or(false),
            restarts: i.restart_count.unwrap_or(0),
            exit_code: s.exit_code.unwrap_or(0),
            health: s
                .health
                .and_then(|h| h.status)
                .map(|h| h.to_string())
                .filter(|h| !h.is_empty() && h != "none"),
            oom_killed: s.oom_killed.unwrap_or(false),
        })
    }

    /// The last lines a container wrote, for failure reports.
    pub async fn tail(&self, name: &str, lines: usize) -> String {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut s = self.docker.logs(name, Some(opts));
        let mut out = String::new();
        while let Some(Ok(chunk)) = s.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// Streams logs to `sink` until the container stops (follow) or the end.
    pub async fn stream_logs(
        &self,
        name: &str,
        follow: bool,
        tail: usize,
        mut sink: impl FnMut(&str),
    ) -> DockerResult<()> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            follow,
            timestamps: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut s = self.docker.logs(name, Some(opts));
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| err(&format!("logs of {name}"), e))?;
            sink(&chunk.to_string());
        }
        Ok(())
    }

    /// CPU percent and memory bytes from one stats sample.
    pub async fn usage(&self, name: &str) -> Option<(f64, u64)> {
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let st = self.docker.stats(name, Some(opts)).next().await?.ok()?;
        let cpu = st.cpu_stats.as_ref()?;
        let pre = st.precpu_stats.as_ref()?;
        let total = |c: &bollard::models::ContainerCpuStats| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let cpu_delta = total(cpu).saturating_sub(total(pre)) as f64;
        let sys_delta = cpu
            .system_cpu_usage
            .unwrap_or(0)
            .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
        let cpus = cpu.online_cpus.unwrap_or(1).max(1) as f64;
        let pct = if sys_delta > 0.0 {
            cpu_delta / sys_delta * cpus * 100.0
        } else {
            0.0
        };
        let mem = st.memory_stats.and_then(|m| m.usage).unwrap_or(0);
        Some((pct, mem))
    }

    /// Runs a command in a container; returns its exit code and output.
    pub async fn exec(&self, container: &str, cmd: Vec<String>) -> DockerResult<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| err(&format!("cannot exec in {container}"), e))?;
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| err(&format!("cannot exec in {container}"), e))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&chunk.to_string());
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .ok()
            .and_then(|i| i.exit_code)
            .unwrap_or(-1);
        Ok((code, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_ssh_engines_are_kept_and_only_while_a_scope_is_open() {
        assert!(kept_client("ssh://root@web2").is_none());
        let scope = KeepSshClients::start();
        assert!(matches!(kept_client("ssh://root@web2"), Some((_, None))));
        assert!(kept_client("unix:///var/run/docker.sock").is_none());
        assert!(kept_client("local").is_none());
        drop(scope);
        assert!(kept_client("ssh://root@web2").is_none());
    }

    fn proxy(name: &str, service: &str) -> Managed {
        Managed {
            name: name.into(),
            id: name.into(),
            role: "proxy".into(),
            service: service.into(),
            release: String::new(),
            replica: 0,
            state: "running".into(),
            status: String::new(),
            image: String::new(),
        }
    }

    /// `migrate` renames the proxy it hands over; the name, not the label
    /// of the profile that created it, says whose it is. Profile names
    /// that extend each other (`shop`, `shop-swarm`) do not confuse it.
    #[test]
    fn a_proxy_belongs_to_the_profile_whose_name_it_bears() {
        let handed = proxy("dm-shop-swarm-web-proxy", "web");
        assert!(owns_proxy("shop-swarm", &handed));
        assert!(!owns_proxy("shop", &handed));
        assert!(owns_proxy("shop", &proxy("dm-shop-web-proxy", "web")));
        assert!(!owns_proxy("shop", &proxy("dm-shop-api-proxy", "web")));
    }
}
