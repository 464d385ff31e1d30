//! Going back and going forward by hand on Swarm: `rollback` makes an
//! earlier release serve again (at once when its service is still warm,
//! else by a start-first update of the stable service back to its spec);
//! `promote` finishes a canary that paused for a human.

use super::Swarm;
use super::deploy::{converge, with_lock};
use crate::deploy::docker_host::Failure;
use crate::deploy::docker_host::deploy::{Report, images_json};
use crate::deploy::spec::ReleaseSpec;
use crate::state::Store;
use crate::state::releases::{NewRelease, Release, RollbackChoice};
use std::time::Duration;

pub async fn rollback(
    sw: &mut Swarm<'_>,
    store: &mut Store,
    to: Option<u32>,
    command: &str,
    wait: Duration,
    force: bool,
) -> Result<Report, Failure> {
    let profile = sw.dh.profile.clone();
    let RollbackChoice {
        target,
        live,
        paused,
    } = store.rollback_target(&profile, to, true)?;
    with_lock(sw, command, wait, force, async |sw: &Swarm<'_>| {
        switch_to(
            sw,
            store,
            &target,
            "rollback",
            live.as_ref(),
            paused.as_ref(),
        )
        .await
    })
    .await
}

pub async fn promote(
    sw: &mut Swarm<'_>,
    store: &mut Store,
    command: &str,
) -> Result<Report, Failure> {
    let profile = sw.dh.profile.clone();
    let releases = store.releases(&profile).map_err(|x| x.to_string())?;
    let paused = releases
        .iter()
        .find(|r| r.status == "paused")
        .cloned()
        .ok_or_else(|| format!("profile {profile} has no paused canary to promote"))?;
    with_lock(
        sw,
        command,
        Duration::ZERO,
        false,
        async |sw: &Swarm<'_>| {
            let spec: ReleaseSpec =
                serde_json::from_str(&paused.spec).map_err(|x| x.to_string())?;
            converge(sw, &spec, paused.runs).await?;
            store
                .release_event(
                    &profile,
                    paused.number,
                    "promote",
                    "promoted by hand to 100%",
                )
                .map_err(|x| x.to_string())?;
            store
                .finish_release(&profile, paused.number, "succeeded", None)
                .map_err(|x| x.to_string())?;
            Ok(Report {
                release: Some(paused.number),
                status: "succeeded".into(),
                message: format!("release {} promoted; it takes all traffic", paused.number),
                plan: vec![],
            })
        },
    )
    .await
}

/// Records a new release that runs `target`'s spec and makes it serve.
async fn switch_to(
    sw: &Swarm<'_>,
    store: &mut Store,
    target: &Release,
    strategy: &str,
    live: Option<&Release>,
    paused: Option<&Release>,
) -> Result<Report, Failure> {
    let profile = sw.dh.profile.clone();
    let spec: ReleaseSpec = serde_json::from_str(&target.spec).map_err(|x| x.to_string())?;
    let number = store
        .begin_release(NewRelease {
            profile: &profile,
            strategy,
            runs: Some(target.runs),
            hosts: &[sw.host().name.clone()],
            fingerprint: &target.fingerprint,
            images: &images_json(&spec),
            spec: &target.spec,
        })
        .map_err(|x| x.to_string())?;
    sw.progress().step(
        "rollback",
        format!("release {number}: back to release {}", target.runs),
    );
    let out = converge(sw, &spec, target.runs).await;
    for ev in sw.progress().events() {
        let _ = store.release_event(&profile, number, &ev.phase, &ev.message);
    }
    if let Err(f) = out {
        store
            .finish_release(&profile, number, "failed", Some(&f.to_string()))
            .map_err(|x| x.to_string())?;
        return Err(f);
    }
    if let Some(p) = paused {
        store
            .finish_release(
                &profile,
                p.number,
                "rolled_back",
                Some(&format!("canary aborted by release {number}")),
            )
            .map_err(|x| x.to_string())?;
        for m in sw.services().await? {
            if m.role == "app"
                && m.release == Some(p.runs)
                && m.name.ends_with(&format!("-r{}", p.runs))
            {
                sw.remove(&m.name).await?;
            }
        }
    }
    if let Some(l) = live.filter(|l| l.runs != target.runs) {
        store
            .finish_release(
                &profile,
                l.number,
                "rolled_back",
                Some(&format!("rolled back by release {number}")),
            )
            .map_err(|x| x.to_string())?;
    }
    store
        .finish_release(&profile, number, "succeeded", None)
        .map_err(|x| x.to_string())?;
    Ok(Report {
        release: Some(number),
        status: "succeeded".into(),
        message: format!(
            "release {number} serves again what release {} ran",
            target.runs
        ),
        plan: vec![],
    })
}
