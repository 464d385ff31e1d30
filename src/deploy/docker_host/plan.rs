//! Deciding a roll-out on Docker hosts, without touching them: from what
//! each host runs (observed once, as data) and the release to run, the
//! list of actions per strategy. `execute.rs` carries the list out; the
//! dry run prints the same list.

use crate::analyse::cost::Strategy;
use crate::deploy::proxy::table::ReleaseRoute;
use crate::deploy::release::PlanLine;
use crate::deploy::spec::{ReleaseSpec, ServiceSpec};
use crate::deploy::strategy::Options;
use serde::Serialize;
use std::collections::BTreeMap;

/// One container of the profile on a host, as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub name: String,
    /// app, accessory, proxy or lock
    pub role: String,
    pub service: String,
    /// The release an app container runs ("" for the others).
    pub release: String,
    pub running: bool,
}

/// What one host runs for the profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostState {
    pub host: String,
    pub network: bool,
    pub containers: Vec<Seen>,
    /// Per public service with a proxy: the targets it routes to with a
    /// weight above zero, as (release, `container:port`), sorted.
    pub routed: BTreeMap<String, Vec<(String, String)>>,
}

impl HostState {
    /// Whether container `name` exists and runs.
    fn runs(&self, name: &str) -> bool {
        self.containers.iter().any(|c| c.name == name && c.running)
    }

    /// Running app containers of `service` not of release `except`.
    fn running_others(&self, service: &str, except: u32) -> Vec<String> {
        self.containers
            .iter()
            .filter(|c| {
                c.role == "app"
                    && c.service == service
                    && c.running
                    && c.release != except.to_string()
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// The profile's own containers among routed targets: a proxy handed
    /// over by `migrate` still routes to the old profile's targets, which
    /// that profile stops itself (they may be swarm services).
    fn own(&self, targets: &[(String, String)]) -> Vec<String> {
        targets
            .iter()
            .map(|(_, a)| container_of(a))
            .filter(|c| self.containers.iter().any(|s| s.name == *c))
            .map(String::from)
            .collect()
    }

    /// Routed targets of `service` not of release `except`, oldest first.
    fn routed_others(&self, service: &str, except: u32) -> Vec<(String, String)> {
        self.routed
            .get(service)
            .into_iter()
            .flatten()
            .filter(|(r, _)| *r != except.to_string())
            .cloned()
            .collect()
    }
}

/// One step of a roll-out on one host (or, for a canary, on all).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    CreateNetwork {
        host: String,
    },
    /// A dependency's container, created or started; never replaced.
    StartAccessory {
        host: String,
        accessory: String,
    },
    /// The proxy of a public service, created or started.
    EnsureProxy {
        host: String,
        service: String,
    },
    StartReplica {
        host: String,
        service: String,
        release: u32,
        replica: u32,
    },
    /// Health checks pass (through the proxy for public services).
    AwaitReady {
        host: String,
        service: String,
        release: u32,
        replicas: Vec<u32>,
    },
    /// The proxy's table: these routes; `hold` keeps requests waiting
    /// while nothing is routed (recreate).
    Route {
        host: String,
        service: String,
        routes: Vec<ReleaseRoute>,
        hold: bool,
    },
    /// Drain and stop; the containers stay for a quick rollback.
    Stop {
        host: String,
        service: String,
        containers: Vec<String>,
        /// Nothing routes to them any more: the next steps need not wait
        /// for them to exit (they are awaited before the deploy ends).
        /// Off where the next step needs them gone (recreate: the same
        /// volume; internal services: their name still resolves to them).
        background: bool,
    },
    /// The shared canary loop over every host; `old` is what each host
    /// routed before, in host order.
    Canary {
        service: String,
        release: u32,
        old: Vec<Vec<(String, String)>>,
    },
    /// Gone for good: beyond the releases kept for rollback, or of a
    /// service no longer in the app.
    Remove {
        host: String,
        container: String,
        why: String,
    },
    Say {
        phase: String,
        message: String,
    },
}

pub fn app_container(profile: &str, service: &str, release: u32, replica: u32) -> String {
    format!("dm-{profile}-{service}-r{release}-{replica}")
}

/// The one-off container of a release's release command.
pub fn release_container(profile: &str, release: u32) -> String {
    format!("dm-{profile}-release-command-r{release}")
}

pub fn proxy_name(profile: &str, service: &str) -> String {
    format!("dm-{profile}-{service}-proxy")
}

pub fn accessory_name(profile: &str, accessory: &str) -> String {
    format!("dm-{profile}-{accessory}")
}

pub fn target_addr(profile: &str, s: &ServiceSpec, release: u32, replica: u32) -> String {
    format!(
        "{}:{}",
        app_container(profile, &s.name, release, replica),
        s.port.unwrap_or(80)
    )
}

/// The container name in a `name:port` target.
pub fn container_of(addr: &str) -> &str {
    addr.split(':').next().unwrap_or(addr)
}

/// Routes grouped by release, each weighted by its number of targets so
/// every replica gets the same share during a rolling update.
pub fn routes_by_count(targets: &[(String, String)]) -> Vec<ReleaseRoute> {
    let mut out: Vec<ReleaseRoute> = Vec::new();
    for (release, addr) in targets {
        match out.iter_mut().find(|r| &r.release == release) {
            Some(r) => {
                r.weight += 1;
                r.targets.push(addr.clone());
            }
            None => out.push(ReleaseRoute {
                release: release.clone(),
                weight: 1,
                targets: vec![addr.clone()],
            }),
        }
    }
    out.sort_by_key(|r| r.release.parse::<u32>().unwrap_or(0));
    out
}

/// The release to roll out and how.
pub struct Desired<'a> {
    pub profile: &'a str,
    pub spec: &'a ReleaseSpec,
    pub release: u32,
    pub options: &'a Options,
}

/// Every replica of `release` of `s`, taking all traffic.
pub fn all_on(profile: &str, s: &ServiceSpec, release: u32) -> Vec<ReleaseRoute> {
    vec![ReleaseRoute {
        release: release.to_string(),
        weight: 100,
        targets: (0..s.replicas)
            .map(|r| target_addr(profile, s, release, r))
            .collect(),
    }]
}

/// The whole roll-out as one list (the dry run): infrastructure, then
/// every service's strategy.
pub fn roll_out(d: &Desired, hosts: &[HostState]) -> Vec<Action> {
    let mut out = infrastructure(d, hosts);
    out.extend(services(d, hosts));
    out
}

/// Network, dependencies and proxies on every host. Run before the
/// services are planned, so a proxy that was stopped is read with the
/// table it kept.
pub fn infrastructure(d: &Desired, hosts: &[HostState]) -> Vec<Action> {
    let mut out = Vec::new();
    for h in hosts {
        let host = h.host.clone();
        if !h.network {
            out.push(Action::CreateNetwork { host: host.clone() });
        }
        for a in &d.spec.accessories {
            if !h.runs(&accessory_name(d.profile, &a.name)) {
                out.push(Action::StartAccessory {
                    host: host.clone(),
                    accessory: a.name.clone(),
                });
            }
        }
        for s in d.spec.services.iter().filter(|s| s.public_port.is_some()) {
            if !h.runs(&proxy_name(d.profile, &s.name)) {
                out.push(Action::EnsureProxy {
                    host: host.clone(),
                    service: s.name.clone(),
                });
            }
        }
    }
    out
}

/// The strategy for every service, in the order of the spec.
pub fn services(d: &Desired, hosts: &[HostState]) -> Vec<Action> {
    let mut out = Vec::new();
    for s in &d.spec.services {
        let strategy = match d.options.strategy {
            // Without a proxy there is no traffic to split or switch.
            Strategy::Canary if s.public_port.is_none() => Strategy::Rolling,
            other => other,
        };
        match strategy {
            Strategy::Rolling => rolling(d, s, hosts, &mut out),
            Strategy::Recreate => recreate(d, s, hosts, &mut out),
            Strategy::BlueGreen => blue_green(d, s, hosts, &mut out),
            Strategy::Canary => canary(d, s, hosts, &mut out),
        }
    }
    out
}

/// One host's rolling update, in phases: one per replica, then the
/// retirement of what is left of the old release.
fn rolling_on(d: &Desired, s: &ServiceSpec, h: &HostState) -> Vec<Vec<Action>> {
    let new = d.release;
    let mut phases = Vec::new();
    let host = || h.host.clone();
    let service = || s.name.clone();
    let start = |out: &mut Vec<Action>, r: u32| {
        out.push(Action::StartReplica {
            host: host(),
            service: service(),
            release: new,
            replica: r,
        });
        out.push(Action::AwaitReady {
            host: host(),
            service: service(),
            release: new,
            replicas: vec![r],
        });
    };
    if s.public_port.is_none() {
        let mut old = h.running_others(&s.name, new);
        for r in 0..s.replicas {
            let mut phase = Vec::new();
            start(&mut phase, r);
            if !old.is_empty() {
                phase.push(Action::Stop {
                    host: host(),
                    service: service(),
                    containers: vec![old.remove(0)],
                    background: false,
                });
            }
            phases.push(phase);
        }
        if !old.is_empty() {
            phases.push(vec![Action::Stop {
                host: host(),
                service: service(),
                containers: old,
                background: false,
            }]);
        }
        return phases;
    }
    let mut old = h.routed_others(&s.name, new);
    let mut fresh: Vec<(String, String)> = Vec::new();
    for r in 0..s.replicas {
        let mut phase = Vec::new();
        start(&mut phase, r);
        fresh.push((new.to_string(), target_addr(d.profile, s, new, r)));
        let retired = (!old.is_empty()).then(|| old.remove(0));
        phase.push(Action::Route {
            host: host(),
            service: service(),
            routes: routes_by_count(&[old.clone(), fresh.clone()].concat()),
            hold: false,
        });
        let retired = h.own(&retired.into_iter().collect::<Vec<_>>());
        if !retired.is_empty() {
            phase.push(Action::Stop {
                host: host(),
                service: service(),
                containers: retired,
                background: true,
            });
        }
        phase.push(Action::Say {
            phase: "rolling".into(),
            message: format!(
                "{} on {}: replica {}/{} of release {new} serving",
                s.name,
                h.host,
                r + 1,
                s.replicas
            ),
        });
        phases.push(phase);
    }
    if !old.is_empty() {
        let mut phase = Vec::new();
        phase.push(Action::Route {
            host: host(),
            service: service(),
            routes: routes_by_count(&fresh),
            hold: false,
        });
        let old = h.own(&old);
        if !old.is_empty() {
            phase.push(Action::Stop {
                host: host(),
                service: service(),
                containers: old,
                background: true,
            });
        }
        phases.push(phase);
    }
    phases
}

/// One replica at a time, start-first: each new replica passes its
/// health check before it joins the pool; only then does one old replica
/// leave it, drain and stop. Host after host, or, with `all_hosts_at_once`, replica N on every host
/// together: the new containers of a phase start on all hosts before the
/// first is awaited, so their start-ups overlap.
fn rolling(d: &Desired, s: &ServiceSpec, hosts: &[HostState], out: &mut Vec<Action>) {
    let per_host: Vec<Vec<Vec<Action>>> = hosts.iter().map(|h| rolling_on(d, s, h)).collect();
    if !d.options.all_hosts_at_once {
        out.extend(per_host.into_iter().flatten().flatten());
        return;
    }
    let phases = per_host.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..phases {
        let phase: Vec<&Vec<Action>> = per_host.iter().filter_map(|p| p.get(k)).collect();
        let starts = |a: &&Action| matches!(a, Action::StartReplica { .. });
        out.extend(phase.iter().flat_map(|p| p.iter().filter(starts)).cloned());
        out.extend(
            phase
                .iter()
                .flat_map(|p| p.iter().filter(|a| !starts(a)))
                .cloned(),
        );
    }
}

/// Stop the old release, then start the new one; the proxy holds the
/// requests that arrive in between instead of failing them.
fn recreate(d: &Desired, s: &ServiceSpec, hosts: &[HostState], out: &mut Vec<Action>) {
    let new = d.release;
    let replicas: Vec<u32> = (0..s.replicas).collect();
    for h in hosts {
        let old: Vec<String> = if s.public_port.is_some() {
            out.push(Action::Route {
                host: h.host.clone(),
                service: s.name.clone(),
                routes: vec![],
                hold: true,
            });
            h.own(&h.routed_others(&s.name, new))
        } else {
            h.running_others(&s.name, new)
        };
        if !old.is_empty() {
            out.push(Action::Stop {
                host: h.host.clone(),
                service: s.name.clone(),
                containers: old,
                background: false,
            });
        }
        start_all(d, s, h, &replicas, out);
        out.push(Action::AwaitReady {
            host: h.host.clone(),
            service: s.name.clone(),
            release: new,
            replicas: replicas.clone(),
        });
        if s.public_port.is_some() {
            out.push(Action::Route {
                host: h.host.clone(),
                service: s.name.clone(),
                routes: all_on(d.profile, s, d.release),
                hold: false,
            });
        }
        out.push(Action::Say {
            phase: "recreate".into(),
            message: format!("{} on {}: release {new} serving", s.name, h.host),
        });
    }
}

fn start_all(d: &Desired, s: &ServiceSpec, h: &HostState, replicas: &[u32], out: &mut Vec<Action>) {
    for r in replicas {
        out.push(Action::StartReplica {
            host: h.host.clone(),
            service: s.name.clone(),
            release: d.release,
            replica: *r,
        });
    }
}

/// Every replica of the release on every host, then one wait for all.
fn start_release(d: &Desired, s: &ServiceSpec, hosts: &[HostState], out: &mut Vec<Action>) {
    let replicas: Vec<u32> = (0..s.replicas).collect();
    for h in hosts {
        start_all(d, s, h, &replicas, out);
    }
    for h in hosts {
        out.push(Action::AwaitReady {
            host: h.host.clone(),
            service: s.name.clone(),
            release: d.release,
            replicas: replicas.clone(),
        });
    }
    out.push(Action::Say {
        phase: "healthy".into(),
        message: format!(
            "{}: {} replica(s) of release {} healthy on {} host(s)",
            s.name,
            s.replicas,
            d.release,
            hosts.len()
        ),
    });
}

/// The whole new colour beside the old, then one switch; the old colour
/// stays running, unrouted, until the next deploy or `--cleanup`.
fn blue_green(d: &Desired, s: &ServiceSpec, hosts: &[HostState], out: &mut Vec<Action>) {
    start_release(d, s, hosts, out);
    for h in hosts {
        if s.public_port.is_some() {
            out.push(Action::Route {
                host: h.host.clone(),
                service: s.name.clone(),
                routes: all_on(d.profile, s, d.release),
                hold: false,
            });
        }
        let old = h.running_others(&s.name, d.release);
        if (d.options.cleanup || s.public_port.is_none()) && !old.is_empty() {
            out.push(Action::Stop {
                host: h.host.clone(),
                service: s.name.clone(),
                containers: old,
                background: s.public_port.is_some(),
            });
        }
        out.push(Action::Say {
            phase: "switch".into(),
            message: format!(
                "{} on {}: all traffic on release {}",
                s.name, h.host, d.release
            ),
        });
    }
}

/// The whole release beside the old, then the shared canary loop.
fn canary(d: &Desired, s: &ServiceSpec, hosts: &[HostState], out: &mut Vec<Action>) {
    let old = hosts
        .iter()
        .map(|h| h.routed_others(&s.name, d.release))
        .collect();
    start_release(d, s, hosts, out);
    out.push(Action::Canary {
        service: s.name.clone(),
        release: d.release,
        old,
    });
}

/// The releases whose containers stay for an instant rollback: the new
/// one and the newest `keep` that went live (`history` newest first).
pub fn kept_releases(history: &[(u32, bool)], number: u32, keep: usize) -> Vec<u32> {
    let mut kept = vec![number];
    for (runs, _) in history.iter().filter(|(_, went_live)| *went_live) {
        if !kept.contains(runs) && kept.len() <= keep {
            kept.push(*runs);
        }
    }
    kept
}

/// After success: containers of releases beyond `kept` and of services
/// gone from the app are removed; what still runs and does not serve is
/// stopped, except the warm colour of a blue-green deploy.
pub fn cleanup(d: &Desired, hosts: &[HostState], kept: &[u32], warm: Option<u32>) -> Vec<Action> {
    let mut out = Vec::new();
    for h in hosts {
        for c in h.containers.iter().filter(|c| c.role == "app") {
            let rel: u32 = c.release.parse().unwrap_or(0);
            if rel == d.release {
                continue;
            }
            let service_gone = !d.spec.services.iter().any(|s| s.name == c.service);
            if service_gone || !kept.contains(&rel) {
                out.push(Action::Remove {
                    host: h.host.clone(),
                    container: c.name.clone(),
                    why: if service_gone {
                        format!("service {} is no longer in the app", c.service)
                    } else {
                        format!("release {rel} is beyond the ones kept for rollback")
                    },
                });
            } else if c.running && Some(rel) != warm {
                out.push(Action::Stop {
                    host: h.host.clone(),
                    service: c.service.clone(),
                    containers: vec![c.name.clone()],
                    background: true,
                });
            }
        }
    }
    out
}

/// The action as dry-run lines; `hosts` names the hosts in the order the
/// canary's `old` lists them.
pub fn describe(a: &Action, profile: &str, hosts: &[String]) -> Vec<PlanLine> {
    let line = |host: &str, action: &str, kind: &str, name: String, detail: String| PlanLine {
        host: host.into(),
        action: action.into(),
        kind: kind.into(),
        name,
        detail,
    };
    vec![match a {
        Action::CreateNetwork { host } => line(
            host,
            "create",
            "network",
            format!("dm-{profile}"),
            "bridge".into(),
        ),
        Action::StartAccessory { host, accessory } => line(
            host,
            "start",
            "accessory",
            accessory_name(profile, accessory),
            "created when missing; never replaced by a deploy".into(),
        ),
        Action::EnsureProxy { host, service } => line(
            host,
            "start",
            "proxy",
            proxy_name(profile, service),
            "created when missing".into(),
        ),
        Action::StartReplica {
            host,
            service,
            release,
            replica,
        } => line(
            host,
            "create",
            "container",
            app_container(profile, service, *release, *replica),
            format!("release {release}"),
        ),
        Action::AwaitReady {
            host,
            service,
            release,
            replicas,
        } => line(
            host,
            "wait",
            "health",
            service.clone(),
            format!("release {release}, replica(s) {replicas:?}"),
        ),
        Action::Route {
            host,
            service,
            routes,
            hold,
        } => {
            let shares: Vec<String> = routes
                .iter()
                .map(|r| format!("r{} {}×{}", r.release, r.weight, r.targets.len()))
                .collect();
            let detail = if *hold && routes.is_empty() {
                "hold requests while nothing serves".to_string()
            } else {
                shares.join(", ")
            };
            line(host, "route", "proxy", proxy_name(profile, service), detail)
        }
        Action::Stop {
            host, containers, ..
        } => line(
            host,
            "stop",
            "container",
            containers.join(", "),
            "drained first; kept for rollback".into(),
        ),
        Action::Canary {
            service,
            release,
            old,
        } => {
            let mut lines = vec![line(
                "(every host)",
                "canary",
                "proxy",
                proxy_name(profile, service),
                format!("release {release} by steps, each judged by the analysis"),
            )];
            // What serves now is replaced once the canary reaches 100 %.
            for (host, targets) in hosts.iter().zip(old) {
                for (r, addr) in targets {
                    lines.push(line(
                        host,
                        "replace",
                        "container",
                        container_of(addr).to_string(),
                        format!("release {r} → {release}, canary"),
                    ));
                }
            }
            return lines;
        }
        Action::Remove {
            host,
            container,
            why,
        } => line(host, "remove", "container", container.clone(), why.clone()),
        Action::Say { phase, message } => line("", "note", phase, String::new(), message.clone()),
    }]
}
