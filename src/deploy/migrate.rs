//! Moving an app to the next target of its growth path: the configs to
//! generate, the data to move and the cut-over order, as a plan that is
//! printed first and carried out only on confirmation. Between our own
//! engines the move is done here (a cold copy of each dependency's volume
//! through the Docker API, then a health-gated deploy); towards other
//! platforms the plan gives the exact commands that remain.

use super::EngineKind;
use super::data_check::Census;
use super::docker_host::client::Host;
use super::docker_host::{Engine, proxy_image, status as dh_status};
use super::events::Progress;
use super::strategy::Options;
use super::swarm::{Swarm, status as sw_status};
use crate::deploy::spec::AccessorySpec;
use crate::describe::app::App;
use crate::state::Profile;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MigrationStep {
    /// prepare, data, cut-over, after
    pub phase: &'static str,
    pub action: String,
    pub detail: String,
    /// Done by `migrate --yes`; otherwise a command for a person.
    pub automatic: bool,
}

pub struct Move<'a> {
    pub profile: &'a str,
    pub new_profile: &'a str,
    pub from: &'a str,
    /// Our engine that runs the profile now; `None` when it runs on a
    /// platform we only generate for (a PaaS), reached by its URLs.
    pub from_platform: Option<EngineKind>,
    pub to: &'a str,
    /// Our engine for the target, if we have one (else a PaaS or cloud).
    pub to_platform: Option<EngineKind>,
    pub out_dir: &'a str,
    pub files: &'a [String],
    /// How the generated files are deployed, from their header.
    pub deploy_hint: Option<&'a str>,
    pub accessories: &'a [AccessorySpec],
    /// The app: its name is the Kubernetes namespace and the prefix of its
    /// Docker volumes; its services' persistent volumes move too.
    pub app: &'a App,
    /// Both ends are ours on one Docker engine: the old proxy, and with it
    /// the public port, is handed to the new profile (`hand_over.rs`).
    pub hand_over: bool,
    /// The new profile is on other machines, at these public addresses:
    /// the old proxies forward there once it serves (`chain.rs`).
    pub forward_to: &'a [String],
}

/// How long the handed proxy holds requests while data is copied cold;
/// a request held longer gets 503.
pub const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn step(phase: &'static str, action: &str, detail: String, automatic: bool) -> MigrationStep {
    MigrationStep {
        phase,
        action: action.into(),
        detail,
        automatic,
    }
}

/// How to run a command in a dependency's container where it runs now.
fn exec_in(m: &Move, a: &AccessorySpec) -> String {
    let c = format!("dm-{}-{}", m.profile, a.name);
    match m.from_platform {
        Some(EngineKind::DockerHost) => format!("docker exec {c}"),
        // A task's container is named by swarm; find it by its service.
        Some(EngineKind::Swarm) => format!(
            "docker exec $(docker ps -q -f label=com.docker.swarm.service.name={c}) # on the node that runs it;"
        ),
        Some(EngineKind::Kubernetes) => {
            format!("kubectl exec -n {} statefulset/{} --", m.app.name, a.name)
        }
        None => String::new(),
    }
}

/// Dump and restore commands for a dependency moved by hand, for where it
/// runs now: our Docker containers, swarm tasks, a Kubernetes StatefulSet
/// in the app's namespace, or a platform's managed service by its URL.
fn dump_restore(m: &Move, a: &AccessorySpec) -> String {
    let n = &a.name;
    let path = a.volume.as_ref().map_or("/data", |(_, p)| p.as_str());
    let ns = &m.app.name;
    let exec = exec_in(m, a);
    let dump = match (a.kind.as_str(), m.from_platform) {
        ("postgres" | "pgvector", None) => {
            format!("pg_dumpall -d \"$OLD_DATABASE_URL\" > {n}.sql")
        }
        ("postgres" | "pgvector", _) => format!("{exec} pg_dumpall -U postgres > {n}.sql"),
        ("mysql" | "mariadb", None) => format!(
            "mysqldump --single-transaction --all-databases -h OLD_HOST -uroot -p > {n}.sql"
        ),
        ("mysql" | "mariadb", _) => format!(
            "{exec} mysqldump --single-transaction --all-databases -uroot -p\"$MYSQL_ROOT_PASSWORD\" > {n}.sql"
        ),
        ("mongodb", None) => format!("mongodump --uri \"$OLD_MONGO_URL\" --archive > {n}.archive"),
        ("mongodb", _) => format!("{exec} mongodump --archive > {n}.archive"),
        ("redis" | "valkey", None) => format!("redis-cli -u \"$OLD_REDIS_URL\" --rdb {n}.rdb"),
        ("redis" | "valkey", Some(EngineKind::Kubernetes)) => {
            format!("{exec} redis-cli SAVE; kubectl cp {ns}/{n}-0:/data/dump.rdb {n}.rdb")
        }
        ("redis" | "valkey", _) => format!(
            "{exec} redis-cli SAVE; docker cp dm-{}-{n}:/data/dump.rdb {n}.rdb",
            m.profile
        ),
        (_, Some(EngineKind::Kubernetes)) => {
            format!("kubectl cp {ns}/{n}-0:{path} {n}-data")
        }
        (_, None) => format!("copy {path} of {n} out with {}'s own tooling", m.from),
        (_, _) => format!(
            "docker stop dm-{p}-{n}; docker cp dm-{p}-{n}:{path} {n}-data",
            p = m.profile
        ),
    };
    let restore = match a.kind.as_str() {
        "postgres" | "pgvector" => format!("psql \"$NEW_DATABASE_URL\" -f {n}.sql"),
        "mysql" | "mariadb" => format!("mysql -h NEW_HOST -uroot -p < {n}.sql"),
        "mongodb" => format!("mongorestore --uri \"$NEW_MONGO_URL\" --archive={n}.archive"),
        "redis" | "valkey" => {
            "put it at /data/dump.rdb of the new instance before it starts".to_string()
        }
        _ => format!("copy {n}-data into the new volume before the new dependency starts"),
    };
    // The same reading on both sides, compared before traffic moves.
    let sql = super::data_check::PG_CENSUS_SQL;
    let verify = match (a.kind.as_str(), m.from_platform) {
        ("postgres" | "pgvector", from) => {
            let old = match from {
                None => format!("psql \"$OLD_DATABASE_URL\" -XAtc \"{sql}\""),
                Some(_) => format!("{exec} psql -U postgres -XAtc \"{sql}\""),
            };
            format!(
                "; verify: {old} > {n}.before && psql \"$NEW_DATABASE_URL\" -XAtc \"{sql}\" > {n}.after && diff {n}.before {n}.after (row count and checksum per table)"
            )
        }
        ("mysql" | "mariadb", from) => {
            // The census query is written by the server (one SELECT per
            // table), then run on both sides.
            let generator = super::preflight::quoted(super::data_check::MYSQL_CENSUS_GENERATOR_SQL);
            let old = match from {
                None => "mysql -h OLD_HOST -uroot -p".to_string(),
                Some(_) => format!("{exec} mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\""),
            };
            let new = "mysql -h NEW_HOST -uroot -p";
            format!(
                "; verify: {old} -NBr -e {generator} > {n}.census.sql && {old} -NBr -e \"$(cat {n}.census.sql)\" > {n}.before && {new} -NBr -e \"$(cat {n}.census.sql)\" > {n}.after && diff {n}.before {n}.after (row count and checksum per table)"
            )
        }
        ("redis" | "valkey", from) => {
            let old = match from {
                None => "redis-cli -u \"$OLD_REDIS_URL\"".to_string(),
                Some(_) => format!("{exec} redis-cli"),
            };
            format!(
                "; verify: {old} INFO keyspace and redis-cli -u \"$NEW_REDIS_URL\" INFO keyspace show the same keys= counts"
            )
        }
        _ => String::new(),
    };
    format!("{dump}; then {restore}{verify}")
}

/// How a service's persistent volume leaves where it runs now.
fn volume_out(m: &Move, service: &str, v: &crate::describe::app::Volume) -> String {
    let (app, p) = (&m.app.name, &v.path);
    match m.from_platform {
        Some(EngineKind::DockerHost | EngineKind::Swarm) => format!(
            "the Docker volume {app}-{name} (mounted at {p}); on the same engine the new profile mounts the same volume, elsewhere copy it with `docker run --rm -v {app}-{name}:/from -v \"$PWD\":/to <any image with tar> tar -C /from -cf /to/{name}.tar .`",
            name = v.name
        ),
        Some(EngineKind::Kubernetes) => format!(
            "the PersistentVolumeClaim {service}-{name} in namespace {app}: `kubectl cp {app}/<a {service} pod>:{p} {name}-data`",
            name = v.name
        ),
        None => format!(
            "{p} of {service} on {from}: copy it out with {from}'s own tooling",
            from = m.from
        ),
    }
}

pub fn plan(m: &Move) -> Vec<MigrationStep> {
    let ours = |p: EngineKind| matches!(p, EngineKind::DockerHost | EngineKind::Swarm);
    let mut steps = vec![
        step(
            "prepare",
            "generate",
            format!(
                "write {} for {} into {}",
                m.files.join(", "),
                m.to,
                m.out_dir
            ),
            true,
        ),
        step(
            "prepare",
            "profile",
            format!(
                "create profile {} (the same app, target {})",
                m.new_profile, m.to
            ),
            true,
        ),
    ];
    // Volumes are copied cold between Docker engines we reach; anything
    // else is a dump and a restore by the operator.
    let copy = m.from_platform.is_some_and(ours) && m.to_platform.is_some_and(ours);
    let copies = copy && m.accessories.iter().any(|a| a.volume.is_some());
    let public: Vec<String> = m
        .app
        .services
        .iter()
        .filter(|(_, s)| s.ports.iter().any(|p| p.public))
        .map(|(n, _)| n.clone())
        .collect();
    if m.hand_over {
        let what = if public.is_empty() {
            "the public services".to_string()
        } else {
            public.join(", ")
        };
        steps.push(step(
            "cut-over",
            "hand-over",
            if copies {
                format!(
                    "the running proxy of {what} joins {}'s network and holds new requests (at most {} s) while the data is copied; its port never closes",
                    m.new_profile,
                    HOLD_LIMIT.as_secs()
                )
            } else {
                format!(
                    "the running proxy of {what} joins {}'s network and goes on routing to {}; its port never closes",
                    m.new_profile, m.profile
                )
            },
            true,
        ));
    }
    let chained = !m.forward_to.is_empty();
    if chained && copies {
        steps.push(step(
            "cut-over",
            "hold",
            format!(
                "{}'s proxies of {} hold new requests (at most {} s) while its app and dependencies stop and the data is copied; their ports never close",
                m.profile,
                public.join(", "),
                HOLD_LIMIT.as_secs()
            ),
            true,
        ));
    }
    for a in m.accessories {
        let Some((vol, path)) = &a.volume else {
            continue;
        };
        if copy {
            steps.push(step(
                "data",
                "copy",
                format!(
                    "{} ({}): stop dm-{}-{}, copy {path} of volume dm-{}-{vol} into dm-{}-{vol}",
                    a.name, a.kind, m.profile, a.name, m.profile, m.new_profile
                ),
                true,
            ));
        } else {
            steps.push(step(
                "data",
                "dump-restore",
                format!("{} ({}): {}", a.name, a.kind, dump_restore(m, a)),
                false,
            ));
        }
    }
    // Data is not only in databases: every persistent volume of a service
    // (uploads, a sessions volume) is part of the move.
    for (name, svc) in &m.app.services {
        for v in svc
            .volumes
            .iter()
            .filter(|v| v.persistent && v.host_path.is_none())
        {
            steps.push(step(
                "data",
                "volume",
                format!("{name}: {}", volume_out(m, name, v)),
                false,
            ));
        }
    }
    // Our Docker engines stop the old stack themselves; a cluster's
    // workloads are scaled down by the operator once the new one serves.
    let stop = match m.from_platform {
        Some(EngineKind::Kubernetes) => step(
            "cut-over",
            "stop",
            format!(
                "kubectl scale deployment,statefulset --all --replicas=0 -n {} (objects and volumes stay for a way back)",
                m.app.name
            ),
            false,
        ),
        from => step(
            "cut-over",
            "stop",
            format!(
                "stop {} on {} (its containers and volumes stay for a way back)",
                m.profile, m.from
            ),
            from.is_some() && m.to_platform.is_some(),
        ),
    };
    // Handed over or chained without data to copy, the old stack serves
    // until the new one has taken all traffic; otherwise it stops first.
    // Chained, the old proxies stay to forward.
    let stop = if chained {
        step(
            "cut-over",
            "stop",
            format!(
                "stop {}'s app and dependencies on {} (containers and volumes stay for a way back); its proxies stay and forward",
                m.profile, m.from
            ),
            true,
        )
    } else {
        stop
    };
    let stop_after = (m.hand_over || chained) && !copies;
    if !(stop_after || chained) {
        steps.push(stop.clone());
    }
    match m.to_platform {
        Some(_) => steps.push(step(
            "cut-over",
            "deploy",
            if m.hand_over {
                format!(
                    "deployment-manager deploy {} through the handed proxy: its first release rolls over {}'s replicas, health-gated (a failure hands the proxy back{})",
                    m.new_profile,
                    m.profile,
                    if copies {
                        format!(" and starts {} again", m.profile)
                    } else {
                        String::new()
                    }
                )
            } else if chained && !copies {
                format!(
                    "deployment-manager deploy {} on its own hosts, beside {} which goes on serving (health-gated; a failure leaves {} as it is)",
                    m.new_profile, m.profile, m.profile
                )
            } else {
                format!(
                    "deployment-manager deploy {} (health-gated; a failure starts {} again)",
                    m.new_profile, m.profile
                )
            },
            true,
        )),
        None => steps.push(step(
            "cut-over",
            "deploy",
            m.deploy_hint.map_or_else(
                || format!("deploy the files in {} with {}'s tooling", m.out_dir, m.to),
                |h| format!("{h} (in {})", m.out_dir),
            ),
            false,
        )),
    }
    if chained {
        steps.push(step(
            "cut-over",
            "forward",
            format!(
                "{}'s proxies of {} forward to {} (port for port) and its replicas drain; clients of the old addresses keep being served",
                m.profile,
                public.join(", "),
                m.forward_to.join(", ")
            ),
            true,
        ));
    }
    if stop_after {
        steps.push(stop);
    }
    if chained {
        steps.push(step(
            "cut-over",
            "dns",
            format!(
                "point the app's DNS name at {}; once clients have moved (the record's TTL), `deployment-manager destroy {}` removes the forwarding proxies",
                m.forward_to.join(", "),
                m.profile
            ),
            false,
        ));
    }
    if m.to_platform.is_none() || m.to_platform == Some(EngineKind::Kubernetes) {
        steps.push(step(
            "cut-over",
            "dns",
            format!("point the app's DNS name at {} once it answers", m.to),
            false,
        ));
    }
    steps.push(step(
        "after",
        "keep",
        format!(
            "keep {} stopped until the new one has run a while: `deployment-manager deploy {}` brings it back, `deployment-manager destroy {} --volumes` removes it",
            m.profile, m.profile, m.profile
        ),
        false,
    ));
    steps
}

/// The cold cut-over our engines can do: stop the old profile's stack
/// and, from Docker hosts with `copy`, copy each dependency's volume to
/// the new profile's first host. Returns the bytes copied.
pub async fn stop_and_copy(
    from: Option<EngineKind>,
    old: &Profile,
    (new, dsts): (&Profile, &Destinations),
    accessories: &[AccessorySpec],
    copy: bool,
    progress: &Progress,
) -> Result<u64, String> {
    stop_and_sync(
        from,
        old,
        (new, dsts),
        accessories,
        copy,
        false,
        false,
        progress,
    )
    .await
}

/// Bulk copy while the old stack still runs (from Docker hosts): each
/// dependency's directory goes to the new volume before any request is
/// held, unchecked, since the files may change under it; the final sync
/// after the stop ([`stop_and_sync`] with `warm`) then moves only what
/// changed since, and checks everything. Returns the bytes sent.
pub async fn pre_copy(
    old: &Profile,
    (new, dsts): (&Profile, &Destinations),
    accessories: &[AccessorySpec],
    progress: &Progress,
) -> Result<u64, String> {
    let hosts = old.settings.hosts_or_local();
    let e = Engine::connect(&old.name, &hosts, progress, Options::default()).await?;
    let mut helpers = Helpers::default();
    let mut n = 0;
    for acc in accessories {
        let (Some((vol, path)), Some(dst)) = (&acc.volume, dsts.get(&acc.name)) else {
            continue;
        };
        let helper = helpers.on(dst).await?;
        let started = std::time::Instant::now();
        let copied = super::volume_copy::copy_volume(
            &e.hosts[0],
            &format!("dm-{}-{}", old.name, acc.name),
            path,
            dst,
            &format!("dm-{}-{vol}", new.name),
            &new.name,
            &helper,
            false,
        )
        .await?;
        progress.step(
            "copy",
            format!(
                "{}: {} bytes of {path} copied while it runs ({:.1}s)",
                acc.name,
                copied.bytes,
                started.elapsed().as_secs_f64()
            ),
        );
        n += copied.bytes;
    }
    Ok(n)
}

/// The helper image (the proxy's) on each engine a copy touches, made
/// once per engine.
#[derive(Default)]
struct Helpers(BTreeMap<String, String>);

impl Helpers {
    async fn on(&mut self, host: &Host) -> Result<String, String> {
        if let Some(h) = self.0.get(&host.name) {
            return Ok(h.clone());
        }
        let h = proxy_image::ensure_proxy_image(host).await?;
        self.0.insert(host.name.clone(), h.clone());
        Ok(h)
    }
}

/// [`stop_and_copy`], leaving a Docker host profile's proxies running
/// when `keep_proxies` (they hold requests, then forward elsewhere); with
/// `warm` (after [`pre_copy`], from Docker hosts) only what changed since
/// the bulk copy moves.
#[allow(clippy::too_many_arguments)]
pub async fn stop_and_sync(
    from: Option<EngineKind>,
    old: &Profile,
    (new, dsts): (&Profile, &Destinations),
    accessories: &[AccessorySpec],
    copy: bool,
    keep_proxies: bool,
    warm: bool,
    progress: &Progress,
) -> Result<u64, String> {
    let hosts = old.settings.hosts_or_local();
    let Some(from) = from else {
        // A platform we do not run: its stack is the operator's to stop.
        return Ok(0);
    };
    match from {
        EngineKind::Swarm => {
            let sw = Swarm::connect(&old.name, &hosts, progress, Options::default()).await?;
            // A dependency's data is read from its volume on the node that
            // ran its task (any node the placement allows), found before
            // the stop while the task still runs.
            let mut sources = Vec::new();
            if copy {
                for acc in accessories.iter().filter(|a| a.volume.is_some()) {
                    let (host, task) = task_container(&sw, &sw.accessory_name(&acc.name)).await?;
                    sources.push((acc, host, task));
                }
            }
            if keep_proxies {
                sw_status::stop_behind_proxies(&sw).await?;
            } else {
                sw_status::stop(&sw).await?;
            }
            return copy_all(&sources, &old.name, ReadFrom::Volume, (new, dsts), progress).await;
        }
        EngineKind::Kubernetes => {}
        EngineKind::DockerHost => {
            let e = Engine::connect(&old.name, &hosts, progress, Options::default()).await?;
            let started = std::time::Instant::now();
            let stopped = if keep_proxies {
                dh_status::stop_behind_proxies(&e).await?
            } else {
                dh_status::stop(&e).await?
            };
            progress.step(
                "stop",
                format!(
                    "{stopped} container(s) of {} stopped ({:.1}s)",
                    old.name,
                    started.elapsed().as_secs_f64()
                ),
            );
            if copy {
                let sources: Vec<(&AccessorySpec, Host, String)> = accessories
                    .iter()
                    .filter(|a| a.volume.is_some())
                    .map(|a| (a, e.hosts[0].clone(), format!("dm-{}-{}", old.name, a.name)))
                    .collect();
                let read = if warm {
                    ReadFrom::Changes
                } else {
                    ReadFrom::Container
                };
                return copy_all(&sources, &old.name, read, (new, dsts), progress).await;
            }
        }
    }
    Ok(0)
}

/// The proxies of a profile on our engines, reached as a Docker host
/// engine over the hosts they run on (a swarm's run on each named node).
pub async fn proxies_of<'a>(
    kind: EngineKind,
    profile: &Profile,
    progress: &'a Progress,
) -> Result<Engine<'a>, String> {
    let hosts = profile.settings.hosts_or_local();
    match kind {
        EngineKind::Swarm => {
            Ok(
                Swarm::connect(&profile.name, &hosts, progress, Options::default())
                    .await?
                    .dh,
            )
        }
        _ => Engine::connect(&profile.name, &hosts, progress, Options::default()).await,
    }
}

/// Refuses, before anything changes, a data move into a swarm where a
/// dependency's data would have no one node to go to
/// ([`data_destinations`]).
pub async fn check_data_destination(
    name: &str,
    hosts: &[String],
    spec: &crate::deploy::spec::ReleaseSpec,
    progress: &Progress,
) -> Result<(), String> {
    data_destinations(EngineKind::Swarm, name, hosts, &spec.accessories, progress)
        .await
        .map(|_| ())
}

/// Where each dependency's data goes in a move, by dependency name.
pub type Destinations = BTreeMap<String, Host>;

/// [`data_destinations`] of the new profile, found once per move before
/// anything stops or is held: the bulk copy, the final sync and a cold
/// copy all use them (found again inside the pause, they cost a swarm
/// connect and a node listing over SSH).
pub async fn destinations(
    to: EngineKind,
    new: &Profile,
    accessories: &[AccessorySpec],
    progress: &Progress,
) -> Result<Destinations, String> {
    if accessories.iter().all(|a| a.volume.is_none()) {
        return Ok(Destinations::new());
    }
    let hosts = new.settings.hosts_or_local();
    data_destinations(to, &new.name, &hosts, accessories, progress).await
}

/// Where each dependency's data goes in the new profile (`name` on
/// `hosts`), by dependency: the first host of Docker hosts; in a swarm, the
/// engine of the one node the dependency's placement allows
/// (`swarm/node_fit.rs::data_homes`), which the profile's hosts must name.
pub async fn data_destinations(
    to: EngineKind,
    name: &str,
    hosts: &[String],
    accessories: &[AccessorySpec],
    progress: &Progress,
) -> Result<BTreeMap<String, Host>, String> {
    let with_data = accessories.iter().filter(|a| a.volume.is_some());
    if to != EngineKind::Swarm {
        let e = Engine::connect(name, hosts, progress, Options::default()).await?;
        return Ok(with_data
            .map(|a| (a.name.clone(), e.hosts[0].clone()))
            .collect());
    }
    let sw = Swarm::connect(name, hosts, progress, Options::default()).await?;
    let nodes = super::swarm::node_fit::read_nodes(&sw.host().docker).await?;
    let homes = super::swarm::node_fit::data_homes(accessories, &nodes, sw.manager_node_id())?;
    homes
        .into_iter()
        .map(|(dependency, node)| match sw.host_of_node(&node) {
            Some(host) => Ok((dependency, host.clone())),
            None => {
                let hostname = nodes
                    .iter()
                    .find(|n| n.facts.id == node)
                    .map_or(node.as_str(), |n| n.facts.hostname.as_str());
                Err(format!(
                    "the data of {dependency} goes to node {hostname}, whose engine the new profile's hosts do not name: add its address to --hosts"
                ))
            }
        })
        .collect()
}

/// Stops a profile's app and dependencies on our engines, leaving its
/// proxies serving (they forward elsewhere after a move).
pub async fn stop_behind_proxies(
    kind: EngineKind,
    profile: &Profile,
    progress: &Progress,
) -> Result<usize, String> {
    let hosts = profile.settings.hosts_or_local();
    match kind {
        EngineKind::Swarm => {
            let sw = Swarm::connect(&profile.name, &hosts, progress, Options::default()).await?;
            sw_status::stop_behind_proxies(&sw).await
        }
        _ => {
            let e = Engine::connect(&profile.name, &hosts, progress, Options::default()).await?;
            dh_status::stop_behind_proxies(&e).await
        }
    }
}

/// Readies the new profile's hosts before a move holds any request, so
/// that the pause includes neither: the release's images are sent, and
/// its proxies start, routing nowhere until its deploy gives them a table
/// (nothing reaches them before the old proxies forward). Measured on the
/// test rig, a move into a three-node swarm over SSH spent 12.4 s of its
/// pause deploying the new stack, 5.5 s of it creating proxies; 6.2–8.0 s
/// with them made here.
pub async fn prepare_new_hosts(
    to: EngineKind,
    new: &Profile,
    spec: &crate::deploy::spec::ReleaseSpec,
    progress: &Progress,
) -> Result<(), String> {
    if to == EngineKind::Kubernetes {
        return Ok(());
    }
    let mut e = proxies_of(to, new, progress).await?;
    let mut with_contexts = spec.clone();
    let base = std::path::Path::new(&new.app_source)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    with_contexts.resolve_contexts(base);
    let registry = new.settings.registry.as_deref();
    super::images::ensure(&e.hosts, &mut with_contexts, registry, progress, false).await?;
    // A proxy joins the app's network (a swarm's overlay) as it is made.
    new_network(to, new, progress).await?;
    let mut tag = String::new();
    for host in &e.hosts {
        tag = proxy_image::ensure_proxy_image(host).await?;
    }
    e.proxy_image = tag;
    for s in spec.services.iter().filter(|s| s.public_port.is_some()) {
        futures_util::future::try_join_all(e.hosts.iter().map(|h| e.ensure_proxy(h, s))).await?;
    }
    Ok(())
}

/// One dependency's data as its server reported it (`data_check.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    pub dependency: String,
    pub census: Census,
}

/// The containers the profile's dependencies `names` run in (same order)
/// with the engine each runs on, the profile's engines reached once:
/// named after them on a Docker host's first host, their running tasks on
/// whichever swarm node runs them.
async fn dependency_containers(
    engine: EngineKind,
    profile: &Profile,
    names: &[&str],
    progress: &Progress,
) -> Result<Vec<(Host, String)>, String> {
    let hosts = profile.settings.hosts_or_local();
    match engine {
        EngineKind::Swarm => {
            let sw = Swarm::connect(&profile.name, &hosts, progress, Options::default()).await?;
            let mut tasks = Vec::new();
            for name in names {
                tasks.push(task_container(&sw, &sw.accessory_name(name)).await?);
            }
            Ok(tasks)
        }
        EngineKind::DockerHost => {
            let e = Engine::connect(&profile.name, &hosts, progress, Options::default()).await?;
            let named = names
                .iter()
                .map(|n| (e.hosts[0].clone(), format!("dm-{}-{n}", profile.name)));
            Ok(named.collect())
        }
        EngineKind::Kubernetes => Err("a cluster's dependencies are not read here".into()),
    }
}

/// What each dependency with data (of a kind `data_check` can read) holds,
/// read from its running container; retried while a server starts.
pub async fn census(
    engine: EngineKind,
    profile: &Profile,
    accessories: &[AccessorySpec],
    progress: &Progress,
) -> Result<Vec<Taken>, String> {
    let readable: Vec<&AccessorySpec> = accessories
        .iter()
        .filter(|a| a.volume.is_some() && super::data_check::command(&a.kind).is_some())
        .collect();
    if readable.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = readable.iter().map(|a| a.name.as_str()).collect();
    let containers = dependency_containers(engine, profile, &names, progress).await?;
    // Every dependency at once: inside a pause each census is a round
    // trip to its engine (over SSH, 0.5–0.9 s each on the test rig).
    let takes = readable
        .into_iter()
        .zip(&containers)
        .map(|(a, (host, container))| async move {
            let wait = std::time::Duration::from_secs(30);
            let started = std::time::Instant::now();
            let got = super::data_check::take(host, container, &a.kind, wait).await?;
            Ok::<_, String>(got.map(|census| {
                progress.step(
                    "check",
                    format!(
                        "{} of {}: {census} ({:.1}s)",
                        a.name,
                        profile.name,
                        started.elapsed().as_secs_f64()
                    ),
                );
                Taken {
                    dependency: a.name.clone(),
                    census,
                }
            }))
        });
    let taken = futures_util::future::try_join_all(takes).await?;
    Ok(taken.into_iter().flatten().collect())
}

/// Compares the census before and after a move: one line per dependency
/// when they agree, else every difference.
pub fn verify(before: &[Taken], after: &[Taken]) -> Result<Vec<String>, Vec<String>> {
    let mut same = Vec::new();
    let mut differ = Vec::new();
    for b in before {
        match after.iter().find(|a| a.dependency == b.dependency) {
            None => differ.push(format!("{}: not read after the move", b.dependency)),
            Some(a) => {
                let d = super::data_check::differences(&b.census, &a.census);
                if d.is_empty() {
                    same.push(format!("{}: {} on both sides", b.dependency, b.census));
                } else {
                    differ.extend(d.into_iter().map(|x| format!("{}: {x}", b.dependency)));
                }
            }
        }
    }
    if differ.is_empty() {
        Ok(same)
    } else {
        Err(differ)
    }
}

/// The container of the running task of a swarm service and the engine
/// of the node it runs on (a dependency may be placed on any node).
async fn task_container(sw: &Swarm<'_>, service: &str) -> Result<(Host, String), String> {
    let (node, container) = sw
        .tasks(service)
        .await?
        .iter()
        .filter(|t| super::swarm::task_state(t) == Some(bollard::models::TaskState::RUNNING))
        .find_map(|t| {
            let id = t
                .status
                .as_ref()?
                .container_status
                .as_ref()?
                .container_id
                .clone()?;
            Some((t.node_id.clone().unwrap_or_default(), id))
        })
        .ok_or_else(|| format!("no running task of {service}: there is no data to read"))?;
    match sw.host_of_node(&node) {
        Some(host) => Ok((host.clone(), container)),
        None => Err(format!(
            "the task of {service} runs on swarm node {node}, which the profile does not name: its data can only be read through that node's engine; add it to the profile's hosts"
        )),
    }
}

/// Where a dependency's data is read once its server has stopped.
#[derive(Clone, Copy, PartialEq)]
enum ReadFrom {
    /// The stopped container's data directory (a Docker host's).
    Container,
    /// The old profile's volume, through a helper: a swarm removes a task's
    /// container soon after its service scales to zero, the volume stays.
    Volume,
    /// Only what differs from the new volume, after a [`pre_copy`].
    Changes,
}

/// Copies each dependency's data, read on the engine that ran it (`Host`,
/// container), into the new profile's volume of the same name where the
/// dependency will run ([`data_destinations`]), checked entry for entry.
/// `old`: the profile the volumes are of.
async fn copy_all(
    sources: &[(&AccessorySpec, Host, String)],
    old: &str,
    read: ReadFrom,
    (new, dsts): (&Profile, &Destinations),
    progress: &Progress,
) -> Result<u64, String> {
    // Helper images first (one check per engine), then every dependency's
    // copy at once: they touch different volumes, and inside a pause the
    // final syncs were one after another (1.2–2.4 s each over SSH).
    let mut helpers = Helpers::default();
    let mut copies = Vec::new();
    for (acc, src, container) in sources {
        let Some((vol, path)) = &acc.volume else {
            continue;
        };
        let dst = dsts
            .get(&acc.name)
            .ok_or_else(|| format!("no destination was found for the data of {}", acc.name))?;
        let helper = helpers.on(dst).await?;
        let src_helper = match read {
            ReadFrom::Container => String::new(),
            ReadFrom::Changes | ReadFrom::Volume => helpers.on(src).await?,
        };
        copies.push(async move {
            let target = format!("dm-{}-{vol}", new.name);
            let src_volume = format!("dm-{old}-{vol}");
            let copied = match read {
                ReadFrom::Changes => {
                    super::volume_copy::final_sync(
                        src,
                        container,
                        &src_volume,
                        path,
                        dst,
                        &target,
                        &new.name,
                        (&src_helper, &helper),
                    )
                    .await?
                }
                ReadFrom::Volume => {
                    super::volume_copy::copy_from_volume(
                        src,
                        &src_volume,
                        dst,
                        &target,
                        &new.name,
                        (&src_helper, &helper),
                    )
                    .await?
                }
                ReadFrom::Container => {
                    super::volume_copy::copy_volume(
                        src, container, path, dst, &target, &new.name, &helper, true,
                    )
                    .await?
                }
            };
            progress.step(
                "copy",
                format!(
                    "{}: {} bytes of {path} {}; {} file(s) verified (size, SHA-256, owner and mode)",
                    acc.name,
                    copied.bytes,
                    if read == ReadFrom::Changes {
                        "synced after the stop"
                    } else {
                        "copied"
                    },
                    copied.files
                ),
            );
            Ok::<u64, String>(copied.bytes)
        });
    }
    let copied = futures_util::future::try_join_all(copies).await?;
    Ok(copied.into_iter().sum())
}

/// Creates the new profile's network ahead of its first deploy, so that
/// the proxy handed to it can join it.
pub async fn new_network(to: EngineKind, new: &Profile, progress: &Progress) -> Result<(), String> {
    let hosts = new.settings.hosts_or_local();
    match to {
        EngineKind::Swarm => {
            let sw = Swarm::connect(&new.name, &hosts, progress, Options::default()).await?;
            super::swarm::objects::ensure_network(&sw).await.map(|_| ())
        }
        EngineKind::DockerHost => {
            let e = Engine::connect(&new.name, &hosts, progress, Options::default()).await?;
            e.hosts[0]
                .ensure_network(&e.network(), &new.name)
                .await
                .map(|_| ())
        }
        EngineKind::Kubernetes => Err("a Kubernetes profile has no Docker network".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> AccessorySpec {
        AccessorySpec {
            name: "db".into(),
            kind: "postgres".into(),
            image: "postgres:16".into(),
            volume: Some(("db-data".into(), "/var/lib/postgresql/data".into())),
            ..Default::default()
        }
    }

    fn plan_to(to: &str, to_platform: Option<EngineKind>) -> Vec<MigrationStep> {
        let files = vec!["fly.toml".to_string()];
        plan(&Move {
            profile: "shop",
            new_profile: "shop-next",
            from: "compose",
            from_platform: Some(EngineKind::DockerHost),
            to,
            to_platform,
            out_dir: "migrate-shop-next",
            files: &files,
            deploy_hint: Some("flyctl deploy -c fly.toml"),
            accessories: &[db()],
            app: &App::default(),
            hand_over: false,
            forward_to: &[],
        })
    }

    fn actions(steps: &[MigrationStep]) -> Vec<(&str, &str, bool)> {
        steps
            .iter()
            .map(|s| (s.phase, s.action.as_str(), s.automatic))
            .collect()
    }

    #[test]
    fn between_docker_engines_everything_but_the_last_word_is_done_for_you() {
        let steps = plan_to("swarm", Some(EngineKind::Swarm));
        assert_eq!(
            actions(&steps),
            vec![
                ("prepare", "generate", true),
                ("prepare", "profile", true),
                ("data", "copy", true),
                ("cut-over", "stop", true),
                ("cut-over", "deploy", true),
                ("after", "keep", false),
            ]
        );
        assert!(
            steps[2]
                .detail
                .contains("dm-shop-db-data into dm-shop-next-db-data")
        );
    }

    #[test]
    fn on_one_engine_the_port_is_handed_over_and_the_old_stack_stops_last() {
        let files = vec!["stack.yaml".to_string()];
        let app: App = crate::describe::load::parse_app(
            "app.yaml",
            "apiVersion: deployment-manager/v1\nkind: App\nname: shop\nservices:\n  web:\n    image: web:1\n    ports: [{port: 8080, public: true}]\n",
        )
        .unwrap();
        let mv = |accessories: &[AccessorySpec]| {
            plan(&Move {
                profile: "shop",
                new_profile: "shop-swarm",
                from: "docker host",
                from_platform: Some(EngineKind::DockerHost),
                to: "swarm",
                to_platform: Some(EngineKind::Swarm),
                out_dir: "migrate-shop-swarm",
                files: &files,
                deploy_hint: None,
                accessories,
                app: &app,
                hand_over: true,
                forward_to: &[],
            })
        };
        let stateless = mv(&[]);
        let order: Vec<&str> = stateless.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(
            order,
            vec!["generate", "profile", "hand-over", "deploy", "stop", "keep"]
        );
        assert!(stateless[2].detail.contains("proxy of web") && stateless[2].automatic);
        assert!(stateless[2].detail.contains("goes on routing to shop"));
        let with_data = mv(&[db()]);
        let order: Vec<&str> = with_data.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(
            order,
            vec![
                "generate",
                "profile",
                "hand-over",
                "copy",
                "stop",
                "deploy",
                "keep"
            ]
        );
        assert!(
            with_data[2]
                .detail
                .contains("holds new requests (at most 60 s)")
        );
    }

    #[test]
    fn towards_a_paas_the_data_and_the_deploy_are_commands_for_a_person() {
        let steps = plan_to("fly", None);
        assert_eq!(
            actions(&steps),
            vec![
                ("prepare", "generate", true),
                ("prepare", "profile", true),
                ("data", "dump-restore", false),
                ("cut-over", "stop", false),
                ("cut-over", "deploy", false),
                ("cut-over", "dns", false),
                ("after", "keep", false),
            ]
        );
        assert!(steps[2].detail.contains("pg_dumpall") && steps[2].detail.contains("psql"));
        // The check the operator runs on both sides before traffic moves.
        assert!(
            steps[2].detail.contains("; verify: ")
                && steps[2].detail.contains("query_to_xml")
                && steps[2].detail.contains("diff db.before db.after"),
            "{}",
            steps[2].detail
        );
        assert!(steps[4].detail.contains("flyctl deploy -c fly.toml"));
    }

    #[test]
    fn to_kubernetes_the_deploy_is_ours_and_the_data_is_a_dump() {
        let steps = plan_to("k8s-gke", Some(EngineKind::Kubernetes));
        let a = actions(&steps);
        assert!(a.contains(&("data", "dump-restore", false)));
        assert!(a.contains(&("cut-over", "deploy", true)));
        assert!(a.contains(&("cut-over", "dns", false)));
    }

    fn from(platform: Option<EngineKind>, from: &str, app: &App) -> Vec<MigrationStep> {
        let files = vec!["fly.toml".to_string()];
        let mut redis = db();
        redis.name = "cache".into();
        redis.kind = "redis".into();
        redis.volume = Some(("cache-data".into(), "/data".into()));
        plan(&Move {
            profile: "shop",
            new_profile: "shop-next",
            from,
            from_platform: platform,
            to: "fly",
            to_platform: None,
            out_dir: "migrate-shop-next",
            files: &files,
            deploy_hint: None,
            accessories: &[db(), redis],
            app,
            hand_over: false,
            forward_to: &[],
        })
    }

    fn data(steps: &[MigrationStep]) -> Vec<String> {
        steps
            .iter()
            .filter(|s| s.phase == "data")
            .map(|s| s.detail.clone())
            .collect()
    }

    #[test]
    fn a_mysql_move_by_hand_prints_a_census_a_shell_reads_back_intact() {
        let app: App = crate::describe::load::parse_app(
            "app.yaml",
            "apiVersion: deployment-manager/v1\nkind: App\nname: shop\nservices:\n  web:\n    image: web:1\n",
        )
        .unwrap();
        let mut orders = db();
        orders.name = "orders".into();
        orders.kind = "mariadb".into();
        let files = vec!["fly.toml".to_string()];
        let steps = plan(&Move {
            profile: "shop",
            new_profile: "shop-next",
            from: "compose",
            from_platform: Some(EngineKind::DockerHost),
            to: "fly",
            to_platform: None,
            out_dir: "migrate-shop-next",
            files: &files,
            deploy_hint: None,
            accessories: &[orders],
            app: &app,
            hand_over: false,
            forward_to: &[],
        });
        let detail = &data(&steps)[0];
        let old = "docker exec dm-shop-orders mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\" -NBr -e ";
        assert!(
            detail.contains("mysqldump --single-transaction"),
            "{detail}"
        );
        assert!(detail.contains(old), "{detail}");
        assert!(
            detail.contains("diff orders.before orders.after"),
            "{detail}"
        );
        // The query, full of quotes and backticks, reaches mysql as it is.
        let start = detail.find(old).unwrap() + old.len();
        let end = detail[start..].find(" > orders.census.sql").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", &detail[start..start + end]))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            crate::deploy::data_check::MYSQL_CENSUS_GENERATOR_SQL
        );
    }

    #[test]
    fn data_steps_speak_the_language_of_where_the_data_is_now() {
        let app: App = crate::describe::load::parse_app(
            "app.yaml",
            "apiVersion: deployment-manager/v1\nkind: App\nname: shop\nservices:\n  web:\n    image: web:1\n    volumes:\n      - {name: sessions, path: /var/sessions, size: 20Gi}\n      - {name: scratch, path: /tmp/x, persistent: false}\n",
        )
        .unwrap();
        let k8s = data(&from(Some(EngineKind::Kubernetes), "k8s-gke", &app));
        assert!(
            k8s[0].contains("kubectl exec -n shop statefulset/db -- pg_dumpall"),
            "{k8s:?}"
        );
        assert!(
            k8s[1].contains("kubectl cp shop/cache-0:/data/dump.rdb cache.rdb"),
            "{k8s:?}"
        );
        assert!(
            k8s[2].contains("PersistentVolumeClaim web-sessions in namespace shop"),
            "{k8s:?}"
        );
        assert_eq!(k8s.len(), 3, "a volume that need not persist is not moved");
        let steps = from(Some(EngineKind::Kubernetes), "k8s-gke", &app);
        let stop = steps.iter().find(|s| s.action == "stop").unwrap();
        assert!(
            !stop.automatic
                && stop.detail.contains("kubectl scale")
                && stop.detail.contains("-n shop")
        );
        assert!(!k8s.iter().any(|d| d.contains("docker")), "{k8s:?}");

        let swarm = data(&from(Some(EngineKind::Swarm), "swarm", &app));
        assert!(swarm[0].contains("label=com.docker.swarm.service.name=dm-shop-db"));
        assert!(swarm[2].contains("Docker volume shop-sessions"));

        let paas = data(&from(None, "render", &app));
        assert!(
            paas[0].contains("pg_dumpall -d \"$OLD_DATABASE_URL\""),
            "{paas:?}"
        );
        assert!(paas[1].contains("redis-cli -u \"$OLD_REDIS_URL\" --rdb cache.rdb"));
        assert!(paas[2].contains("render's own tooling"), "{paas:?}");
        assert!(!paas.iter().any(|d| d.contains("docker exec")), "{paas:?}");
    }
}
