//! What the engine commands share: which profile and hosts they act on,
//! and running async work against a connected Docker host or swarm on
//! the session's runtime.

use super::{Ctx, Failure};
use crate::deploy::docker_host::Engine;
use crate::deploy::events::Progress;
use crate::deploy::strategy::Options;
use crate::deploy::swarm::Swarm;
use crate::state::Profile;
use clap::Args;

#[derive(Args, Debug)]
pub struct HostArgs {
    pub profile: String,
    /// Docker hosts (default: the profile's `hosts` setting, else local).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// Also remove the profile's volumes (data of its dependencies).
    #[arg(long)]
    pub volumes: bool,
}

/// The session's runtime (one per process).
pub(crate) fn runtime(ctx: &Ctx) -> Result<&tokio::runtime::Runtime, Failure> {
    ctx.session.runtime().map_err(Failure::failed)
}

pub(crate) fn hosts_of(p: &Profile, args: &HostArgs) -> Vec<String> {
    if args.hosts.is_empty() {
        p.settings.hosts_or_local()
    } else {
        args.hosts.clone()
    }
}

pub(crate) fn with_swarm<T>(
    ctx: &Ctx,
    a: &HostArgs,
    work: impl AsyncFnOnce(&Swarm<'_>) -> Result<T, String>,
) -> Result<T, Failure> {
    let store = ctx.store()?;
    let profile = store.get(&a.profile)?;
    let hosts = hosts_of(&profile, a);
    let progress = Progress::new(ctx.json);
    let out = runtime(ctx)?.block_on(async {
        let sw = Swarm::connect(&profile.name, &hosts, &progress, Options::default()).await?;
        work(&sw).await
    });
    progress.finish();
    out.map_err(Failure::failed)
}

pub(crate) fn with_engine<T>(
    ctx: &Ctx,
    a: &HostArgs,
    work: impl AsyncFnOnce(&Engine<'_>, &Profile) -> Result<T, String>,
) -> Result<T, Failure> {
    let store = ctx.store()?;
    let profile = store.get(&a.profile)?;
    let hosts = hosts_of(&profile, a);
    let progress = Progress::new(ctx.json);
    let out = runtime(ctx)?.block_on(async {
        let e = Engine::connect(&profile.name, &hosts, &progress, Options::default()).await?;
        work(&e, &profile).await
    });
    progress.finish();
    out.map_err(Failure::failed)
}
