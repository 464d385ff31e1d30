//! Deciding a roll-out on Swarm, without touching it: from the services
//! the manager runs and what the proxy routes (observed once, as data),
//! the list of actions per strategy. `rollout.rs` carries the list out;
//! the dry run prints the same list.

use super::objects::Order;
use crate::analyse::cost::Strategy;
use crate::deploy::release::PlanLine;
use crate::deploy::spec::{ReleaseSpec, ServiceSpec};
use crate::deploy::strategy::Options;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the swarm runs for the profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SwarmState {
    pub manager: String,
    pub network: bool,
    /// Names of the profile's swarm services.
    pub services: Vec<String>,
    /// Those of them scaled to zero (by `stop`, or behind the proxies
    /// after a move to other machines).
    pub stopped: Vec<String>,
    /// Per public service: what its proxy routes to, as (release, swarm
    /// service, weight), weights above zero only.
    pub routed: BTreeMap<String, Vec<(u32, String, u32)>>,
    /// Public services whose proxy runs on the manager.
    pub proxies: Vec<String>,
}

/// One step of a Swarm roll-out.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    CreateNetwork,
    /// A dependency's service, created once and never replaced.
    CreateAccessory {
        accessory: String,
    },
    /// A dependency's service scaled to zero, back to its one task.
    StartAccessory {
        accessory: String,
    },
    /// The proxy of a public service on each node, created or started.
    EnsureProxy {
        service: String,
    },
    /// The stable service updated in place: swarm replaces the tasks
    /// (start-first one at a time, or stop-first all at once), then waits
    /// for every task of the release.
    UpdateInPlace {
        service: String,
        swarm_service: String,
        release: u32,
        order: OrderName,
        exists: bool,
    },
    /// The release's own service at full size, every task healthy.
    StartOwn {
        service: String,
        swarm_service: String,
        release: u32,
    },
    /// All traffic of a public service to one swarm service.
    Route {
        service: String,
        swarm_service: String,
        release: u32,
    },
    ScaleToZero {
        swarm_service: String,
    },
    /// The shared canary loop through every node's proxy.
    Canary {
        service: String,
        release: u32,
        before: Vec<(u32, String, u32)>,
        canary: String,
    },
    Say {
        phase: String,
        message: String,
    },
}

/// [`Order`] as data that serialises.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderName {
    StartFirst,
    StopFirst,
}

impl From<OrderName> for Order {
    fn from(o: OrderName) -> Order {
        match o {
            OrderName::StartFirst => Order::StartFirst,
            OrderName::StopFirst => Order::StopFirst,
        }
    }
}

pub fn stable_name(profile: &str, service: &str) -> String {
    format!("dm-{profile}-{service}")
}

pub fn release_name(profile: &str, service: &str, release: u32) -> String {
    format!("dm-{profile}-{service}-r{release}")
}

pub struct Desired<'a> {
    pub profile: &'a str,
    pub spec: &'a ReleaseSpec,
    pub release: u32,
    pub options: &'a Options,
}

/// Network and dependencies, then every service's strategy in the order
/// of the spec.
pub fn roll_out(d: &Desired, now: &SwarmState) -> Vec<Action> {
    let mut out = Vec::new();
    if !now.network {
        out.push(Action::CreateNetwork);
    }
    for a in &d.spec.accessories {
        let name = stable_name(d.profile, &a.name);
        if !now.services.contains(&name) {
            out.push(Action::CreateAccessory {
                accessory: a.name.clone(),
            });
        } else if now.stopped.contains(&name) {
            out.push(Action::StartAccessory {
                accessory: a.name.clone(),
            });
        }
    }
    for s in &d.spec.services {
        if s.health.command.is_empty() {
            out.push(Action::Say {
                phase: "warning".into(),
                message: format!(
                    "{}: no health command, so swarm counts a task as ready once it starts; add `health.command` (e.g. a curl or the app's own probe) for gated updates",
                    s.name
                ),
            });
        }
        let before = now.routed.get(&s.name).cloned().unwrap_or_default();
        if s.public_port.is_some() && !now.proxies.contains(&s.name) {
            out.push(Action::EnsureProxy {
                service: s.name.clone(),
            });
        }
        match (d.options.strategy, s.public_port.is_some()) {
            (Strategy::Recreate, _) => in_place(d, s, now, &before, OrderName::StopFirst, &mut out),
            // Nothing to switch or split without a proxy: replace in place.
            (Strategy::Rolling, _) | (_, false) => {
                in_place(d, s, now, &before, OrderName::StartFirst, &mut out)
            }
            (Strategy::BlueGreen, true) => blue_green(d, s, &before, &mut out),
            (Strategy::Canary, true) => {
                let canary = release_name(d.profile, &s.name, d.release);
                out.push(Action::StartOwn {
                    service: s.name.clone(),
                    swarm_service: canary.clone(),
                    release: d.release,
                });
                out.push(Action::Canary {
                    service: s.name.clone(),
                    release: d.release,
                    before,
                    canary,
                });
            }
        }
    }
    out
}

/// The stable service takes the release; traffic that was on another
/// release's service (after a blue-green or canary deploy) moves to it,
/// and those services have nothing left to serve.
fn in_place(
    d: &Desired,
    s: &ServiceSpec,
    now: &SwarmState,
    before: &[(u32, String, u32)],
    order: OrderName,
    out: &mut Vec<Action>,
) {
    let name = stable_name(d.profile, &s.name);
    out.push(Action::UpdateInPlace {
        service: s.name.clone(),
        swarm_service: name.clone(),
        release: d.release,
        order,
        exists: now.services.contains(&name),
    });
    if s.public_port.is_some() {
        out.push(Action::Route {
            service: s.name.clone(),
            swarm_service: name.clone(),
            release: d.release,
        });
    }
    for (_, other, _) in before.iter().filter(|(_, n, _)| *n != name) {
        out.push(Action::ScaleToZero {
            swarm_service: other.clone(),
        });
    }
}

/// The release's own service at full size, then one switch; what served
/// before stays warm for an instant rollback unless `--cleanup`.
fn blue_green(d: &Desired, s: &ServiceSpec, before: &[(u32, String, u32)], out: &mut Vec<Action>) {
    let name = release_name(d.profile, &s.name, d.release);
    out.push(Action::StartOwn {
        service: s.name.clone(),
        swarm_service: name.clone(),
        release: d.release,
    });
    out.push(Action::Route {
        service: s.name.clone(),
        swarm_service: name.clone(),
        release: d.release,
    });
    out.push(Action::Say {
        phase: "switch".into(),
        message: format!("{}: all traffic on {name}", s.name),
    });
    for (_, old, _) in before.iter().filter(|(_, n, _)| *n != name) {
        out.push(if d.options.cleanup {
            Action::ScaleToZero {
                swarm_service: old.clone(),
            }
        } else {
            Action::Say {
                phase: "warm".into(),
                message: format!("{old} stays up for an instant rollback"),
            }
        });
    }
}

/// The action as dry-run lines (a service's secrets are named with it);
/// what a proxy does is done on each node of `proxy_hosts`.
pub fn describe(a: &Action, d: &Desired, manager: &str, proxy_hosts: &[String]) -> Vec<PlanLine> {
    let line = |action: &str, kind: &str, name: String, detail: String| PlanLine {
        host: manager.into(),
        action: action.into(),
        kind: kind.into(),
        name,
        detail,
    };
    let on_proxies = |action: &str, service: &str, detail: String| -> Vec<PlanLine> {
        proxy_hosts
            .iter()
            .map(|h| PlanLine {
                host: h.clone(),
                action: action.into(),
                kind: "proxy".into(),
                name: format!("dm-{}-{service}-proxy", d.profile),
                detail: detail.clone(),
            })
            .collect()
    };
    let service = |name: &str| d.spec.services.iter().find(|s| s.name == name);
    let secrets = |name: &str| -> Vec<PlanLine> {
        service(name)
            .map(|s| s.secrets.clone())
            .unwrap_or_default()
            .iter()
            .map(|n| {
                line(
                    "create",
                    "secret",
                    format!(
                        "dm-{}-{}-r{}",
                        d.profile,
                        n.to_lowercase().replace('_', "-"),
                        d.release
                    ),
                    format!("from {n}, mounted at /run/secrets/{n}"),
                )
            })
            .collect()
    };
    let service_port = |name: &str| service(name).and_then(|s| s.public_port).unwrap_or(0);
    let size =
        |name: &str| service(name).map_or((String::new(), 0), |s| (s.image.clone(), s.replicas));
    match a {
        Action::CreateNetwork => vec![line(
            "create",
            "network",
            format!("dm-{}", d.profile),
            "overlay, attachable".into(),
        )],
        Action::CreateAccessory { accessory } => {
            let a = d.spec.accessories.iter().find(|a| &a.name == accessory);
            vec![line(
                "create",
                "service",
                stable_name(d.profile, accessory),
                a.map_or(String::new(), |a| {
                    format!("{} ({}), stop-first", a.image, a.kind)
                }),
            )]
        }
        Action::StartAccessory { accessory } => vec![line(
            "scale",
            "service",
            stable_name(d.profile, accessory),
            "0 → 1 task".into(),
        )],
        Action::EnsureProxy { service } => {
            let port = service_port(service);
            on_proxies("create", service, format!("listens on :{port}"))
        }
        Action::UpdateInPlace {
            service,
            swarm_service,
            order,
            exists,
            ..
        } => {
            let (image, n) = size(service);
            let how = match order {
                OrderName::StartFirst => "start-first, one at a time",
                OrderName::StopFirst => "stop-first, all at once",
            };
            let mut v = secrets(service);
            v.push(line(
                if *exists { "update" } else { "create" },
                "service",
                swarm_service.clone(),
                format!("{image} ×{n}, {how}"),
            ));
            v
        }
        Action::StartOwn {
            service,
            swarm_service,
            ..
        } => {
            let (image, n) = size(service);
            let mut v = secrets(service);
            v.push(line(
                "create",
                "service",
                swarm_service.clone(),
                format!("{image} ×{n}, then traffic switch ({})", d.options.strategy),
            ));
            v
        }
        Action::Route {
            service,
            swarm_service,
            release,
        } => on_proxies(
            "route",
            service,
            format!("all traffic to {swarm_service} (release {release})"),
        ),
        Action::ScaleToZero { swarm_service } => vec![line(
            "scale",
            "service",
            swarm_service.clone(),
            "to 0: nothing left to serve".into(),
        )],
        Action::Canary {
            service,
            release,
            before,
            ..
        } => {
            let mut v = on_proxies(
                "canary",
                service,
                format!("release {release} by steps, each judged by the analysis"),
            );
            for (r, old, _) in before {
                v.push(line(
                    "replace",
                    "service",
                    old.clone(),
                    format!("release {r} → {release}, scaled to 0 at 100 %"),
                ));
            }
            v
        }
        Action::Say { .. } => vec![],
    }
}
