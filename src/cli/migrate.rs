//! `migrate`: print the move to another target along the growth path and,
//! on confirmation, carry out what our engines can (configs, a new
//! profile, cold volume copies, stop the old stack, a health-gated deploy
//! of the new one, and the old one started again if that fails).

use super::output::{json, table};
use super::{Ctx, Failure, Res};
use crate::analyse::cost::Strategy;
use crate::analyse::plan;
use crate::deploy::EngineKind;
use crate::deploy::chain;
use crate::deploy::docker_host::Engine;
use crate::deploy::events::Progress;
use crate::deploy::hand_over;
use crate::deploy::migrate::{self, Move};
use crate::deploy::spec::{ReleaseSpec, ServiceSpec};
use crate::deploy::strategy::Options;
use crate::state::Profile;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    pub profile: String,
    /// Target to move to (a catalog id: swarm, k8s-gke, fly, render…).
    #[arg(long, required_unless_present = "rollback")]
    pub to: Option<String>,
    /// Return to the profile this one was moved from (while it exists):
    /// the same hand-over backwards, the data written since copied back.
    #[arg(long, conflicts_with_all = ["to", "name", "out"])]
    pub rollback: bool,
    /// Print the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Carry it out without asking.
    #[arg(long)]
    pub yes: bool,
    /// Name of the new profile (default: `<profile>-<target>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the generated configs go (default: `migrate-<new profile>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Secret values for the new deploy.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// Docker hosts of the new profile (default: the old profile's). Other
    /// machines than the old profile's: the old proxies forward to them
    /// once the new profile serves, until DNS has moved.
    #[arg(long, conflicts_with = "rollback")]
    pub hosts: Option<String>,
}

fn confirmed(a: &MigrateArgs) -> Result<bool, Failure> {
    if a.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::input(
            "pass --yes to carry out the move (or --dry-run to only print it); nothing was changed",
        ));
    }
    eprint!("carry out the automatic steps now? [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes"))
}

/// Deploys a profile as it stands, printing the outcome as `deploy` does.
fn deploy_again(ctx: &Ctx, profile: &str, env_file: Option<&Path>) -> Res {
    deploy_as(
        ctx,
        profile,
        env_file,
        &crate::session::DeployAsk::default(),
    )
}

fn deploy_as(
    ctx: &Ctx,
    profile: &str,
    env_file: Option<&Path>,
    ask: &crate::session::DeployAsk,
) -> Res {
    let progress = Progress::new(ctx.json);
    let out = ctx.session.deploy_profile_as(
        profile,
        env_file,
        &progress,
        &super::deploy::command_line(),
        ask,
    );
    progress.finish();
    super::deploy::answer(ctx, out)
}

pub(crate) fn migrate_cmd(ctx: &Ctx, a: MigrateArgs) -> Res {
    // A move reaches the same engines before, during and after its pause.
    let _kept = crate::deploy::docker_host::client::KeepSshClients::start();
    if a.rollback {
        return rollback_cmd(ctx, &a);
    }
    let to = a.to.clone().unwrap_or_default();
    let mut store = ctx.store()?;
    let old = store.get(&a.profile)?;
    let app = crate::analyse::fitness::swaps::effective(&old).map_err(Failure::input)?;
    if ctx.session.catalog.target(&to).is_none() {
        return Err(Failure::input(format!("unknown target `{}`", to)));
    }
    let from = old
        .settings
        .target
        .clone()
        .unwrap_or_else(|| "docker host".into());
    // A profile aimed at a PaaS runs on that platform, not on our engine.
    let from_platform = match &old.settings.target {
        Some(t) => EngineKind::ours(&ctx.session.catalog, t).map(|_| ctx.session.engine_of(&old)),
        None => Some(ctx.session.engine_of(&old)),
    };
    let to_platform = EngineKind::ours(&ctx.session.catalog, &to);
    let new_name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", old.name, to));
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("migrate-{new_name}")));
    let options = crate::render::Options {
        users: old.settings.users,
        strategy: old.settings.strategy_or(None),
        ..Default::default()
    };
    let files = crate::render::render_from(&ctx.engine(), &app, &to, &options)
        .map_err(|e| Failure::input(e.to_string()))?;
    let growth: Vec<String> = plan::plan(
        &ctx.engine(),
        &app,
        &plan::DEFAULT_LEVELS,
        Strategy::Rolling,
    )
    .growth_path
    .iter()
    .filter_map(|s| s.target.clone())
    .fold(Vec::new(), |mut v: Vec<String>, t| {
        if v.last() != Some(&t) {
            v.push(t);
        }
        v
    });
    let on_path = growth.contains(&to);
    let names: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let hint = files
        .iter()
        .flat_map(|f| f.content.lines())
        .find_map(|l| l.strip_prefix("# Deploy: "))
        .map(String::from);
    let spec = ReleaseSpec::from_app(&app).map_err(Failure::input)?;
    let out_text = out.display().to_string();
    let old_hosts = old.settings.hosts_or_local();
    let new_hosts = match &a.hosts {
        Some(text) => {
            let mut checked = old.settings.clone();
            checked
                .set(&ctx.session.catalog, "hosts", text)
                .map_err(Failure::input)?;
            checked.hosts_or_local()
        }
        None => old_hosts.clone(),
    };
    // One Docker engine under both profiles (the new one inherits the
    // hosts): the public port can change hands without closing.
    let docker =
        |p: Option<EngineKind>| matches!(p, Some(EngineKind::DockerHost | EngineKind::Swarm));
    let hand_over = docker(from_platform)
        && docker(to_platform)
        && old_hosts.len() == 1
        && new_hosts == old_hosts;
    // Other machines: the old proxies forward to the new hosts' addresses.
    let chain = docker(from_platform)
        && docker(to_platform)
        && new_hosts.iter().all(|h| !old_hosts.contains(h));
    let forward_to: Vec<String> = if chain {
        new_hosts
            .iter()
            .map(|h| {
                chain::public_address(h).ok_or_else(|| {
                    Failure::input(format!(
                        "{h} has no address the old hosts can forward to; name the new hosts as ssh://user@host or tcp://host:port"
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let steps = migrate::plan(&Move {
        profile: &old.name,
        new_profile: &new_name,
        from: &from,
        from_platform,
        to: &to,
        to_platform,
        out_dir: &out_text,
        files: &names,
        deploy_hint: hint.as_deref(),
        accessories: &spec.accessories,
        app: &app,
        hand_over,
        forward_to: &forward_to,
    });
    let path_note = if on_path {
        format!("{} is on the growth path ({})", to, growth.join(" → "))
    } else {
        format!(
            "{} is not on the growth path ({}); moving anyway when confirmed",
            to,
            growth.join(" → ")
        )
    };
    if ctx.json && a.dry_run {
        json(
            &serde_json::json!({"from": from, "to": to, "new_profile": new_name, "on_growth_path": on_path, "growth_path": growth, "steps": steps}),
        );
        return Ok(());
    }
    if !ctx.json {
        println!("move {} ({from}) to {}: {path_note}", old.name, to);
        let mut t = table(&["phase", "step", "by", "what"]);
        for s in &steps {
            t.add_row(vec![
                s.phase,
                &s.action,
                if s.automatic { "migrate" } else { "you" },
                &s.detail,
            ]);
        }
        println!("{t}");
    }
    let copy = steps.iter().any(|s| s.action == "copy");
    if copy && to_platform == Some(EngineKind::Swarm) {
        let progress = Progress::new(true);
        ctx.session
            .block_on(migrate::check_data_destination(
                &new_name, &new_hosts, &spec, &progress,
            ))
            .and_then(|r| r)
            .map_err(|why| Failure::input(format!("{why}; nothing was changed")))?;
    }
    if a.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    if !confirmed(&a)? {
        return Err(Failure::input("not confirmed; nothing was changed"));
    }
    crate::render::write_all(&out, &files, false).map_err(|e| Failure::input(e.to_string()))?;
    let mut new = store.create(&new_name, old.tier, &old.app_source, old.app.clone())?;
    new.swaps = old.swaps.clone();
    new.settings = old.settings.clone();
    new.settings.target = Some(to.clone());
    new.settings.platform = None;
    if a.hosts.is_some() {
        new.settings.hosts = new_hosts.clone();
    }
    new.settings.migrated_from = Some(old.name.clone());
    let new = store.update(new, &format!("migrate from {}", old.name))?;
    println!(
        "wrote {} file(s) into {out_text}; created profile {}",
        files.len(),
        new.name
    );
    let Some(to_platform) = to_platform else {
        println!("the remaining steps are yours (marked `you` above)");
        return Ok(());
    };
    drop(store);
    if hand_over {
        let moving = HandOver {
            old: &old,
            new: &new,
            from: from_platform.unwrap_or(EngineKind::DockerHost),
            to: to_platform,
            spec: &spec,
            copy,
        };
        return cut_over_in_place(ctx, &moving, a.env_file.as_deref(), &to);
    }
    if chain {
        let moving = Chain {
            old: &old,
            new: &new,
            from: from_platform.unwrap_or(EngineKind::DockerHost),
            to: to_platform,
            spec: &spec,
            copy,
            addresses: &forward_to,
            way_back: false,
        };
        return cut_over_elsewhere(ctx, &moving, a.env_file.as_deref(), &to);
    }

    // Cut-over: stop the old stack, copy data cold, deploy the new one.
    let started = Instant::now();
    let progress = Progress::new(ctx.json);
    let copied = ctx
        .session
        .block_on(async {
            // Found before the stop: a destination that cannot be had
            // fails the move while the old stack still serves.
            let dsts = match copy {
                true => {
                    migrate::destinations(to_platform, &new, &spec.accessories, &progress).await?
                }
                false => migrate::Destinations::new(),
            };
            migrate::stop_and_copy(
                from_platform,
                &old,
                (&new, &dsts),
                &spec.accessories,
                copy,
                &progress,
            )
            .await
        })
        .and_then(|r| r);
    progress.finish();
    if let Err(why) = copied {
        eprintln!("error: {why}; starting {} again", old.name);
        let _ = deploy_again(ctx, &old.name, None);
        return Err(Failure::explained(why));
    }
    if to_platform == EngineKind::Kubernetes && from_platform == Some(EngineKind::Kubernetes) {
        eprintln!(
            "note: both profiles are on Kubernetes; the old one keeps running until you stop it"
        );
    }
    match deploy_again(ctx, &new.name, a.env_file.as_deref()) {
        Ok(()) => {
            println!(
                "{} now runs on {} ({:.1}s from stopping {}); {} is stopped and kept for a way back",
                new.name,
                to,
                started.elapsed().as_secs_f64(),
                old.name,
                old.name
            );
            Ok(())
        }
        Err(f) => {
            eprintln!("the new deploy failed; starting {} again", old.name);
            let _ = deploy_again(ctx, &old.name, None);
            Err(f)
        }
    }
}

/// A move between two profiles on one Docker engine.
struct HandOver<'a> {
    old: &'a Profile,
    new: &'a Profile,
    from: EngineKind,
    to: EngineKind,
    spec: &'a ReleaseSpec,
    /// Dependencies' volumes are copied cold: requests are held meanwhile.
    copy: bool,
}

/// The cut-over that never closes the public port: the old proxy is
/// handed to the new profile, whose first deploy rolls over the old
/// replicas (or, with data to copy, takes the requests held during the
/// copy); the old stack stops last. Any failure hands the proxy back.
fn cut_over_in_place(ctx: &Ctx, m: &HandOver, env_file: Option<&Path>, to: &str) -> Res {
    let started = Instant::now();
    let services: Vec<&ServiceSpec> = m.spec.services.iter().collect();
    let hosts = m.old.settings.hosts_or_local();
    let progress = Progress::new(ctx.json);
    let handed = ctx.session.block_on(async {
        migrate::new_network(m.to, m.new, &progress).await?;
        let e = Engine::connect(&m.old.name, &hosts, &progress, Options::default()).await?;
        let n = Engine::connect(&m.new.name, &hosts, &progress, Options::default()).await?;
        let hold = m.copy.then_some(migrate::HOLD_LIMIT);
        let dsts = match m.copy {
            true => migrate::destinations(m.to, m.new, &m.spec.accessories, &progress).await?,
            false => migrate::Destinations::new(),
        };
        // From a Docker host the bulk of the data moves before the hold.
        let warm = m.copy && m.from == EngineKind::DockerHost;
        if warm {
            migrate::pre_copy(m.old, (m.new, &dsts), &m.spec.accessories, &progress).await?;
        }
        let handed = hand_over::hand_over(&e, &n, &e.hosts[0], &services, hold).await?;
        let mut before = Vec::new();
        if m.copy {
            let copied = match migrate::census(m.from, m.old, &m.spec.accessories, &progress).await
            {
                Ok(taken) => {
                    before = taken;
                    migrate::stop_and_sync(
                        Some(m.from),
                        m.old,
                        (m.new, &dsts),
                        &m.spec.accessories,
                        true,
                        false,
                        warm,
                        &progress,
                    )
                    .await
                }
                Err(why) => Err(why),
            };
            if let Err(why) = copied {
                let _ = hand_over::hand_back(&e, &n, &e.hosts[0], &handed, &services).await;
                return Err(why);
            }
        }
        Ok((handed, before))
    });
    progress.finish();
    let (handed, before) = match handed.and_then(|r| r) {
        Ok(h) => h,
        Err(why) => {
            if m.copy {
                eprintln!("error: {why}; starting {} again", m.old.name);
                let _ = deploy_again(ctx, &m.old.name, None);
                return Err(Failure::explained(why));
            }
            return Err(Failure::failed(why));
        }
    };
    let deployed = deploy_again(ctx, &m.new.name, env_file);
    let progress = Progress::new(ctx.json);
    let after = ctx.session.block_on(async {
        let e = Engine::connect(&m.old.name, &hosts, &progress, Options::default()).await?;
        let n = Engine::connect(&m.new.name, &hosts, &progress, Options::default()).await?;
        if deployed.is_err() {
            hand_over::hand_back(&e, &n, &e.hosts[0], &handed, &services).await?;
            return Ok((None, None));
        }
        // The longest time a handed proxy held requests, as it measured.
        let mut held: Option<u64> = None;
        for h in &handed {
            if let Ok(st) = n.proxy_state(&n.hosts[0], &h.service).await {
                held = held.max(st.last_pause_ms);
            }
        }
        if !m.copy {
            let nothing = migrate::Destinations::new();
            migrate::stop_and_copy(
                Some(m.from),
                m.old,
                (m.new, &nothing),
                &[],
                false,
                &progress,
            )
            .await?;
        }
        // Read after the switch: a write in between shows as a difference.
        let check = match before.is_empty() {
            true => None,
            false => Some(
                migrate::census(m.to, m.new, &m.spec.accessories, &progress)
                    .await
                    .map(|after| migrate::verify(&before, &after)),
            ),
        };
        Ok::<_, String>((held, check))
    });
    progress.finish();
    let after = after.and_then(|r| r).map(|(held, check)| {
        if let Some(check) = check {
            report_check(ctx, &m.new.name, check, false);
        }
        held
    });
    if let Err(f) = deployed {
        eprintln!(
            "the new deploy failed; the proxy is back with {}{}",
            m.old.name,
            if m.copy { ", starting it again" } else { "" }
        );
        if let Err(why) = &after {
            eprintln!("error: handing the proxy back: {why}");
        }
        if m.copy {
            let _ = deploy_again(ctx, &m.old.name, None);
        }
        return Err(f);
    }
    let held = after.map_err(|why| {
        Failure::failed(format!(
            "{} serves; stopping {} failed: {why}",
            m.new.name, m.old.name
        ))
    })?;
    let held_text = held.map(|ms| {
        format!(
            "requests were held {:.2}s ({}); ",
            ms as f64 / 1000.0,
            if m.copy {
                "the data copy and the new stack's start"
            } else {
                "the proxy changed networks"
            }
        )
    });
    if let Some(text) = &held_text {
        let how = format!("moved from {} with the proxy handed over", m.old.name);
        record_move(ctx, &m.new.name, &how, text);
    }
    let ports: Vec<String> = handed
        .iter()
        .map(|h| format!("{} ({})", h.service, h.to))
        .collect();
    if ctx.json {
        super::output::json(&serde_json::json!({
            "profile": m.new.name,
            "target": to,
            "handed_over": ports,
            "seconds": started.elapsed().as_secs_f64(),
            "held_ms": held,
        }));
    } else {
        println!(
            "{} now runs on {to} ({:.1}s); its public port never closed ({}); {}{} is stopped and kept for a way back",
            m.new.name,
            started.elapsed().as_secs_f64(),
            if ports.is_empty() {
                "no proxy ran".to_string()
            } else {
                format!("proxy handed over: {}", ports.join(", "))
            },
            held_text.unwrap_or_default(),
            m.old.name
        );
    }
    Ok(())
}

/// Records how a move went (and how long requests were held) on the new
/// profile's live release: the pause belongs to the release that ended it.
fn record_move(ctx: &Ctx, new: &str, how: &str, held: &str) {
    if let Ok(store) = ctx.store()
        && let Ok(Some(live)) = store.live_release(new)
    {
        let what = format!("{how}; {}", held.trim_end_matches("; "));
        let _ = store.release_event(new, live.number, "migrate", &what);
    }
}

/// Prints the data check of a move and records it on the new profile's
/// live release; true when both sides agree. `gate`: a difference stops
/// the move (said as an error), else it is a warning, as writes may have
/// reached the new side between the switch and the check.
fn report_check(
    ctx: &Ctx,
    new: &str,
    check: Result<Result<Vec<String>, Vec<String>>, String>,
    gate: bool,
) -> bool {
    let (ok, lines) = match check {
        Ok(Ok(same)) => (true, same),
        Ok(Err(differ)) => (false, differ),
        Err(why) => (false, vec![format!("could not read the data: {why}")]),
    };
    let label = match (ok, gate) {
        (true, _) => "data check",
        (false, true) => "error: data check",
        (false, false) => "warning: data check after the switch",
    };
    for l in &lines {
        eprintln!("{label}: {l}");
    }
    if let Ok(store) = ctx.store()
        && let Ok(Some(live)) = store.live_release(new)
    {
        let _ = store.release_event(new, live.number, "data-check", &lines.join("; "));
    }
    ok
}

/// A move from Docker hosts or a swarm to other machines.
struct Chain<'a> {
    old: &'a Profile,
    new: &'a Profile,
    from: EngineKind,
    to: EngineKind,
    spec: &'a ReleaseSpec,
    /// Dependencies' volumes are copied cold: requests are held meanwhile.
    copy: bool,
    /// The new hosts' public addresses.
    addresses: &'a [String],
    /// A rollback: `new` is the profile moved from, whose stopped
    /// dependencies' volumes still hold the data of the move (only what
    /// changed since goes back) and whose proxies forward to `old`.
    way_back: bool,
}

/// The cut-over to other machines (`deploy/chain.rs`), from Docker hosts
/// or a swarm: the new profile is deployed on its hosts, then the old
/// proxies forward to them and the old app stops behind them. With data,
/// the old proxies hold requests from before the old stack stops until
/// they forward. A failure before the forward leaves (or starts) the old
/// profile serving. The same runs a rollback (`way_back`).
fn cut_over_elsewhere(ctx: &Ctx, m: &Chain, env_file: Option<&Path>, to: &str) -> Res {
    let started = Instant::now();
    let services: Vec<&ServiceSpec> = m.spec.services.iter().collect();
    let old_hosts = m.old.settings.hosts_or_local();
    let mut before = Vec::new();
    // On the way back the new profile's proxies forward to the old one's;
    // they hold too while the data moves. If the return fails they
    // forward to it again, and the new profile's app stops behind them.
    let mut new_held: Vec<chain::Changed> = Vec::new();
    let old_addresses: Vec<String> = old_hosts
        .iter()
        .filter_map(|h| chain::public_address(h))
        .collect();
    let put_back_new = |held: &[chain::Changed]| {
        if !m.way_back {
            return;
        }
        let progress = Progress::new(true);
        let _ = ctx.session.block_on(async {
            let e = migrate::proxies_of(m.to, m.new, &progress).await?;
            if held.is_empty() {
                chain::forward(&e, &services, &old_addresses).await?;
            } else {
                chain::restore(&e, &services, held).await?;
            }
            migrate::stop_behind_proxies(m.to, m.new, &progress)
                .await
                .map(|_| ())
        });
    };
    if m.copy {
        let progress = Progress::new(ctx.json);
        let copied = ctx.session.block_on(async {
            // Images, the new proxies and the bulk of the data are ready
            // before requests are held; on the way back the bulk is there
            // already. A swarm's
            // volumes are read once its services have stopped: copied cold.
            migrate::prepare_new_hosts(m.to, m.new, m.spec, &progress).await?;
            let dsts = migrate::destinations(m.to, m.new, &m.spec.accessories, &progress).await?;
            let warm = m.from == EngineKind::DockerHost;
            if warm && !m.way_back {
                migrate::pre_copy(m.old, (m.new, &dsts), &m.spec.accessories, &progress).await?;
            }
            let e = migrate::proxies_of(m.from, m.old, &progress).await?;
            // Proxies forwarding to the old ones hold first: a request
            // they forward then never waits on a held proxy, so a later
            // switch of theirs has nothing in flight to drain.
            let held_new = if m.way_back {
                let en = migrate::proxies_of(m.to, m.new, &progress).await?;
                chain::hold(&en, &services, migrate::HOLD_LIMIT).await?
            } else {
                Vec::new()
            };
            let held = match chain::hold(&e, &services, migrate::HOLD_LIMIT).await {
                Ok(h) => h,
                Err(why) => return Ok(Err((why, held_new))),
            };
            let copy = match migrate::census(m.from, m.old, &m.spec.accessories, &progress).await {
                Ok(taken) => migrate::stop_and_sync(
                    Some(m.from),
                    m.old,
                    (m.new, &dsts),
                    &m.spec.accessories,
                    true,
                    true,
                    warm,
                    &progress,
                )
                .await
                .map(|_| taken),
                Err(why) => Err(why),
            };
            if copy.is_err() {
                let _ = chain::restore(&e, &services, &held).await;
            }
            Ok::<_, String>(match copy {
                Ok(taken) => Ok((taken, held_new)),
                Err(why) => Err((why, held_new)),
            })
        });
        progress.finish();
        match copied.and_then(|r| r) {
            Ok(Ok((taken, held_new))) => {
                before = taken;
                new_held = held_new;
            }
            Ok(Err((why, held_new))) => {
                eprintln!("error: {why}; starting {} again", m.old.name);
                let _ = deploy_again(ctx, &m.old.name, None);
                put_back_new(&held_new);
                return Err(Failure::explained(why));
            }
            Err(why) => {
                eprintln!("error: {why}; starting {} again", m.old.name);
                let _ = deploy_again(ctx, &m.old.name, None);
                return Err(Failure::explained(why));
            }
        }
    }
    // While requests are held, a bake would hold them longer: the release
    // is health-gated and takes traffic as soon as it serves.
    let ask = crate::session::DeployAsk {
        bake: m.copy.then(|| "0s".to_string()),
        ..Default::default()
    };
    if let Err(f) = deploy_as(ctx, &m.new.name, env_file, &ask) {
        if m.copy {
            eprintln!("the new deploy failed; starting {} again", m.old.name);
            let _ = deploy_again(ctx, &m.old.name, None);
            put_back_new(&new_held);
        } else if m.way_back {
            eprintln!(
                "the deploy of {} failed; {} was not changed and serves as before",
                m.new.name, m.old.name
            );
            put_back_new(&[]);
        } else {
            eprintln!(
                "the new deploy failed; {} was not changed and serves as before",
                m.old.name
            );
        }
        return Err(f);
    }
    // Nothing reaches the new hosts before the forward (requests are held
    // on the old ones, DNS has not moved): the data must match exactly.
    if !before.is_empty() {
        let progress = Progress::new(ctx.json);
        let after =
            ctx.session
                .block_on(migrate::census(m.to, m.new, &m.spec.accessories, &progress));
        progress.finish();
        let check = after
            .and_then(|r| r)
            .map(|after| migrate::verify(&before, &after));
        if !report_check(ctx, &m.new.name, check, true) {
            eprintln!(
                "the data on {} differs from {}'s; starting {} again, nothing was forwarded",
                m.new.name, m.old.name, m.old.name
            );
            let _ = deploy_again(ctx, &m.old.name, None);
            put_back_new(&new_held);
            return Err(Failure::explained(format!(
                "the moved data did not match; {} serves again",
                m.old.name
            )));
        }
    }
    let progress = Progress::new(ctx.json);
    let forwarded = ctx.session.block_on(async {
        let e = migrate::proxies_of(m.from, m.old, &progress).await?;
        let changed = chain::forward(&e, &services, m.addresses).await?;
        progress.step(
            "forward",
            format!(
                "{} proxy(ies) of {} forward to {}",
                changed.len(),
                m.old.name,
                m.addresses.join(", ")
            ),
        );
        // The longest time an old proxy held requests, as it measured.
        let mut held: Option<u64> = None;
        if m.copy {
            for c in &changed {
                if let Ok(st) = e.proxy_state(&e.hosts[c.host], &c.service).await {
                    held = held.max(st.last_pause_ms);
                }
            }
        } else {
            migrate::stop_behind_proxies(m.from, m.old, &progress).await?;
        }
        Ok::<Option<u64>, String>(held)
    });
    progress.finish();
    let held = forwarded.and_then(|r| r).map_err(|why| {
        Failure::failed(format!(
            "{} serves on {to}, but {}'s proxies could not forward to it: {why}; {} still serves its old addresses",
            m.new.name, m.old.name, m.old.name
        ))
    })?;
    let held_text = held.map(|ms| {
        format!(
            "requests were held {:.2}s (the data copy and the new stack's start); ",
            ms as f64 / 1000.0
        )
    });
    if let Some(text) = &held_text {
        let how = if m.way_back {
            format!("returned from {} on other machines", m.old.name)
        } else {
            format!("moved from {} on other machines", m.old.name)
        };
        record_move(ctx, &m.new.name, &how, text);
    }
    if ctx.json {
        super::output::json(&serde_json::json!({
            "profile": m.new.name,
            "target": to,
            "forwarded_to": m.addresses,
            "seconds": started.elapsed().as_secs_f64(),
            "held_ms": held,
        }));
    } else {
        println!(
            "{} now runs on {to} at {} ({:.1}s); {}{}'s app is stopped and its proxies forward there: point DNS at {}, then `deployment-manager destroy {}`",
            m.new.name,
            m.addresses.join(", "),
            started.elapsed().as_secs_f64(),
            held_text.unwrap_or_default(),
            m.old.name,
            m.addresses.join(", "),
            m.old.name
        );
    }
    Ok(())
}

/// `migrate P --rollback`: back to the profile P was moved from, by the
/// same hand-over. Data its dependencies wrote since the move is listed
/// and copied back (cold, requests held) where both ends are ours.
fn rollback_cmd(ctx: &Ctx, a: &MigrateArgs) -> Res {
    let store = ctx.store()?;
    let now = store.get(&a.profile)?;
    let Some(origin) = now.settings.migrated_from.clone() else {
        return Err(Failure::input(format!(
            "{} was not created by `migrate`: there is no profile to return to",
            now.name
        )));
    };
    let back = store.get(&origin).map_err(|_| {
        Failure::input(format!(
            "{origin}, which {} was moved from, no longer exists: nothing to return to",
            now.name
        ))
    })?;
    drop(store);
    let from = ctx.session.engine_of(&now);
    let to = ctx.session.engine_of(&back);
    let ours = |e: EngineKind| matches!(e, EngineKind::DockerHost | EngineKind::Swarm);
    let (now_hosts, back_hosts) = (
        now.settings.hosts_or_local(),
        back.settings.hosts_or_local(),
    );
    let one_engine = now_hosts == back_hosts && now_hosts.len() == 1;
    // After a move to other machines: the profile moved from still has its
    // proxies (forwarding here); now's proxies forward back to its hosts.
    let back_addresses: Option<Vec<String>> = back_hosts
        .iter()
        .map(|h| chain::public_address(h))
        .collect();
    let elsewhere = from == EngineKind::DockerHost
        && back_hosts.iter().all(|h| !now_hosts.contains(h))
        && back_addresses.is_some();
    let follows = |p: &Profile| {
        EngineKind::ours(
            &ctx.session.catalog,
            p.settings.target.as_deref().unwrap_or("compose"),
        )
        .is_some()
    };
    if !(ours(from) && ours(to) && (one_engine || elsewhere) && follows(&now) && follows(&back)) {
        return Err(Failure::input(format!(
            "a rollback is automatic between Docker host and Swarm profiles on one Docker engine, and from Docker hosts back to hosts named as ssh:// or tcp:// addresses; here deploy {origin} again (`deployment-manager deploy {origin}`), move its data back and point DNS at it"
        )));
    }
    let app = crate::analyse::fitness::swaps::effective(&now).map_err(Failure::input)?;
    let spec = ReleaseSpec::from_app(&app).map_err(Failure::input)?;
    let data: Vec<String> = spec
        .accessories
        .iter()
        .filter_map(|acc| {
            acc.volume.as_ref().map(|(vol, path)| {
                if one_engine {
                    format!(
                        "{} ({}): what it wrote since the move, {path} of dm-{}-{}, is copied back into dm-{origin}-{vol} (which it replaces)",
                        acc.name, acc.kind, now.name, acc.name
                    )
                } else {
                    format!(
                        "{} ({}): the files of {path} in dm-{}-{} that changed since the move are synced back into dm-{origin}-{vol}, which kept the rest, and checked",
                        acc.name, acc.kind, now.name, acc.name
                    )
                }
            })
        })
        .collect();
    if ctx.json && a.dry_run {
        json(&serde_json::json!({"from": now.name, "to": origin, "data": data}));
        return Ok(());
    }
    if !ctx.json {
        println!("return from {} to {origin}:", now.name);
        if one_engine {
            println!(
                "  the proxy goes back to {origin}, whose next release rolls over {}'s replicas",
                now.name
            );
        } else {
            println!(
                "  {origin} is deployed again on {}; then {}'s proxies forward there and its app stops",
                back_hosts.join(", "),
                now.name
            );
        }
        for d in &data {
            println!("  data: {d}");
        }
        if data.is_empty() {
            println!("  data: none (no dependency keeps a volume)");
        }
    }
    if a.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    if !confirmed(a)? {
        return Err(Failure::input("not confirmed; nothing was changed"));
    }
    let target = match to {
        EngineKind::Swarm => "swarm",
        _ => "a Docker host",
    };
    if !one_engine {
        let moving = Chain {
            old: &now,
            new: &back,
            to,
            spec: &spec,
            copy: !data.is_empty(),
            addresses: &back_addresses.unwrap_or_default(),
            from,
            way_back: true,
        };
        return cut_over_elsewhere(ctx, &moving, a.env_file.as_deref(), target);
    }
    let moving = HandOver {
        old: &now,
        new: &back,
        from,
        to,
        spec: &spec,
        copy: !data.is_empty(),
    };
    cut_over_in_place(ctx, &moving, a.env_file.as_deref(), target)
}
