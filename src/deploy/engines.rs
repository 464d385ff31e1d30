//! One entry for every front (the CLI and the dashboard): connect the
//! engine a profile needs and run the shared release lifecycle
//! (`release.rs`) or a read (status, logs) with it, so no front builds an
//! engine of its own.

use super::EngineKind;
use super::docker_host::Engine;
use super::events::Progress;
use super::kubernetes::{self, Kube};
pub use super::release::LogsError;
use super::release::{self, Failure, LockRequest, Platform, Report};
use super::spec::ReleaseSpec;
use super::strategy::Options;
use super::swarm::Swarm;
use crate::state::{Profile, Store};
use std::collections::BTreeMap;

pub struct DeployRequest {
    pub spec: ReleaseSpec,
    pub options: Options,
    pub secrets: BTreeMap<String, String>,
    /// Docker hosts or the swarm manager (default: the profile's).
    pub hosts: Vec<String>,
    pub dry_run: bool,
    pub lock: LockRequest,
}

pub struct RollbackRequest {
    /// Release to return to (default: the previous good one).
    pub to: Option<u32>,
    /// Needed only when the release's containers must be rebuilt.
    pub secrets: BTreeMap<String, String>,
    pub hosts: Vec<String>,
    pub lock: LockRequest,
}

fn hosts_or_profile(hosts: &[String], p: &Profile) -> Vec<String> {
    if hosts.is_empty() {
        p.settings.hosts_or_local()
    } else {
        hosts.to_vec()
    }
}

/// The profile's cluster, with its Gateway setting and its app (swaps
/// applied).
pub async fn kube<'a>(
    p: &Profile,
    progress: &'a Progress,
    options: Options,
) -> Result<Kube<'a>, String> {
    let mut k = Kube::connect(&p.name, progress, options).await?;
    k.routing = routing_of(p);
    k.app = crate::analyse::fitness::swaps::effective(p)?;
    Ok(k)
}

/// How the profile's public services are reached on Kubernetes.
fn routing_of(p: &Profile) -> crate::render::gateway::Routing {
    crate::manifest::profile_routing(p, p.settings.target.as_deref().unwrap_or(""))
}

/// Connects engine `$kind` for profile `$p` as `$e` (with `$secrets` for
/// the containers it creates) and evaluates `$body` with it.
macro_rules! with_engine {
    // Reads and hand-driven steps: default options, no secrets.
    ($kind:expr, $p:expr, $hosts:expr, $progress:expr, |$e:ident| $body:expr) => {
        with_engine!(
            $kind,
            $p,
            $hosts,
            $progress,
            Options::default(),
            BTreeMap::new(),
            |$e| $body
        )
    };
    ($kind:expr, $p:expr, $hosts:expr, $progress:expr, $options:expr, $secrets:expr, |$e:ident| $body:expr) => {
        match $kind {
            EngineKind::DockerHost => {
                let mut $e = Engine::connect(&$p.name, $hosts, $progress, $options).await?;
                $e.secrets = $secrets;
                $body
            }
            EngineKind::Swarm => {
                let mut $e = Swarm::connect(&$p.name, $hosts, $progress, $options).await?;
                $e.dh.secrets = $secrets;
                $body
            }
            EngineKind::Kubernetes => {
                let mut $e = kube($p, $progress, $options).await?;
                $e.secrets = $secrets;
                $body
            }
        }
    };
}

pub async fn deploy(
    kind: EngineKind,
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    mut r: DeployRequest,
) -> Result<Report, Failure> {
    let hosts = hosts_or_profile(&r.hosts, p);
    // Build contexts are relative to the app description's folder.
    let base = std::path::Path::new(&p.app_source)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    r.spec.resolve_contexts(base);
    // Where built images go is the profile's, whichever front deploys.
    r.options.registry = p.settings.registry.clone();
    if kind == EngineKind::Kubernetes {
        // Connected once; without a cluster a dry run still shows the whole
        // first deploy.
        return match kube(p, progress, r.options.clone()).await {
            Ok(mut k) => {
                k.secrets = r.secrets;
                release::deploy(&mut k, store, r.spec, r.dry_run, &r.lock).await
            }
            Err(why) if r.dry_run => {
                let app = crate::analyse::fitness::swaps::effective(p)?;
                let next = store.releases(&p.name)?.first().map_or(1, |x| x.number + 1);
                let registry = r.options.registry.as_deref();
                let (builds, _) = super::images::for_cluster(&mut r.spec, registry, progress, true)
                    .await
                    .map_err(|e| Failure::new(release::FailureKind::Input, e))?;
                let mut report =
                    kubernetes::deploy::offline_plan(&app, &r.options, &routing_of(p), next, &why);
                report.plan.splice(0..0, builds);
                Ok(report)
            }
            Err(why) => Err(why.into()),
        };
    }
    with_engine!(kind, p, &hosts, progress, r.options, r.secrets, |e| {
        release::deploy(&mut e, store, r.spec, r.dry_run, &r.lock).await
    })
}

pub async fn rollback(
    kind: EngineKind,
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    r: RollbackRequest,
) -> Result<Report, Failure> {
    let hosts = hosts_or_profile(&r.hosts, p);
    with_engine!(
        kind,
        p,
        &hosts,
        progress,
        Options::default(),
        r.secrets,
        |e| release::rollback(&mut e, store, r.to, &r.lock).await
    )
}

pub async fn promote(
    kind: EngineKind,
    p: &Profile,
    store: &mut Store,
    progress: &Progress,
    hosts: &[String],
    lock: &LockRequest,
) -> Result<Report, Failure> {
    let hosts = hosts_or_profile(hosts, p);
    with_engine!(kind, p, &hosts, progress, |e| release::promote(
        &mut e, store, lock
    )
    .await)
}

/// What runs now, as JSON (each platform has its own shape, with a
/// `platform` field where it is not a Docker host).
pub async fn status(
    kind: EngineKind,
    p: &Profile,
    progress: &Progress,
    hosts: &[String],
) -> Result<serde_json::Value, Failure> {
    let hosts = hosts_or_profile(hosts, p);
    with_engine!(kind, p, &hosts, progress, |e| e.status().await)
}

/// Which log lines to read.
#[derive(Clone, Debug, Default)]
pub struct LogsRequest<'a> {
    /// Docker hosts or the swarm manager (default: the profile's).
    pub hosts: &'a [String],
    /// One service, else every service and dependency.
    pub service: Option<&'a str>,
    pub follow: bool,
    /// Lines from the end to start with.
    pub tail: usize,
}

/// Log lines of the profile's services (one, or all) to `sink`, as
/// `(source, line)`; followed until the source ends when `follow`.
pub async fn logs(
    kind: EngineKind,
    p: &Profile,
    progress: &Progress,
    r: &LogsRequest<'_>,
    mut sink: impl FnMut(&str, &str),
) -> Result<(), LogsError> {
    let hosts = hosts_or_profile(r.hosts, p);
    let split = |line: &str| {
        let (src, l) = line.split_once(" | ").unwrap_or(("", line));
        sink(src, l.trim_end());
    };
    with_engine!(kind, p, &hosts, progress, |e| e
        .logs(r.service, r.follow, r.tail, split)
        .await)
}
