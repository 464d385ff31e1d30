//! Going back, and going forward by hand: `rollback` returns to an earlier
//! release (instantly when its containers still exist, by recreating them
//! otherwise); `promote` finishes a canary that paused for a human.

use super::deploy::{Report, images_json};
use super::{Engine, Failure, lock, proxy_image, reconcile};
use crate::deploy::spec::ReleaseSpec;
use crate::state::Store;
use crate::state::releases::{NewRelease, RollbackChoice};
use std::time::Duration;

async fn with_lock<'a, T>(
    e: &mut Engine<'a>,
    command: &str,
    wait: Duration,
    force: bool,
    work: impl AsyncFnOnce(&Engine<'a>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    for host in &e.hosts {
        e.proxy_image = proxy_image::ensure_proxy_image(host).await?;
    }
    let mut locked = Vec::new();
    for host in &e.hosts {
        match lock::acquire(host, &e.profile, &e.proxy_image, command, wait, force).await {
            Ok(note) => {
                if let Some(n) = note {
                    e.progress.step("lock", n);
                }
                locked.push(host.clone());
            }
            Err(x) => {
                for h in &locked {
                    let _ = lock::release(h, &e.profile).await;
                }
                return Err(x.into());
            }
        }
    }
    let out = work(e).await;
    for h in &locked {
        let _ = lock::release(h, &e.profile).await;
    }
    out
}

pub async fn rollback(
    e: &mut Engine<'_>,
    store: &mut Store,
    to: Option<u32>,
    command: &str,
    wait: Duration,
    force: bool,
) -> Result<Report, Failure> {
    // A canary waiting for a human: rolling back aborts it.
    let RollbackChoice {
        target,
        live,
        paused,
    } = store.rollback_target(&e.profile, to, true)?;
    let spec: ReleaseSpec = serde_json::from_str(&target.spec).map_err(|x| x.to_string())?;
    let profile = e.profile.clone();
    with_lock(e, command, wait, force, async |e: &Engine<'_>| {
        let hosts: Vec<String> = e.hosts.iter().map(|h| h.name.clone()).collect();
        let number = store
            .begin_release(NewRelease {
                profile: &profile,
                strategy: "rollback",
                runs: Some(target.runs),
                hosts: &hosts,
                fingerprint: &target.fingerprint,
                images: &images_json(&spec),
                spec: &target.spec,
            })
            .map_err(|x| x.to_string())?;
        e.progress.step(
            "rollback",
            format!("release {number}: back to release {}", target.runs),
        );
        match reconcile::converge(e, &spec, target.runs).await {
            Ok(()) => {
                if let Some(p) = &paused {
                    store
                        .finish_release(
                            &profile,
                            p.number,
                            "rolled_back",
                            Some(&format!("canary aborted by release {number}")),
                        )
                        .map_err(|x| x.to_string())?;
                    for host in &e.hosts {
                        for c in host.list(&e.profile).await? {
                            if c.role == "app" && c.release == p.runs.to_string() {
                                host.remove(&c.name).await?;
                            }
                        }
                    }
                }
                if let Some(l) = live.as_ref().filter(|l| l.runs != target.runs) {
                    store
                        .finish_release(
                            &profile,
                            l.number,
                            "rolled_back",
                            Some(&format!("rolled back by release {number}")),
                        )
                        .map_err(|x| x.to_string())?;
                }
                for ev in e.progress.events() {
                    let _ = store.release_event(&profile, number, &ev.phase, &ev.message);
                }
                store
                    .finish_release(&profile, number, "succeeded", None)
                    .map_err(|x| x.to_string())?;
                Ok(Report {
                    release: Some(number),
                    status: "succeeded".into(),
                    message: format!("release {} serves again (as release {number})", target.runs),
                    plan: vec![],
                })
            }
            Err(f) => {
                store
                    .finish_release(&profile, number, "failed", Some(&f.to_string()))
                    .map_err(|x| x.to_string())?;
                Err(f)
            }
        }
    })
    .await
}

/// Sends all traffic to a paused canary and finishes its release.
pub async fn promote(
    e: &mut Engine<'_>,
    store: &mut Store,
    command: &str,
    wait: Duration,
    force: bool,
) -> Result<Report, Failure> {
    let paused = store
        .releases(&e.profile)
        .map_err(|x| x.to_string())?
        .into_iter()
        .find(|r| r.status == "paused")
        .ok_or_else(|| format!("profile {} has no paused canary to promote", e.profile))?;
    let spec: ReleaseSpec = serde_json::from_str(&paused.spec).map_err(|x| x.to_string())?;
    let profile = e.profile.clone();
    with_lock(e, command, wait, force, async |e: &Engine<'_>| {
        reconcile::converge(e, &spec, paused.runs).await?;
        super::deploy::bake(e, &spec, paused.runs).await?;
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
            message: format!("release {} promoted and live", paused.number),
            plan: vec![],
        })
    })
    .await
}
