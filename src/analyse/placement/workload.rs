//! What has to run at a given number of users: replicas per service, session
//! containers, data and egress. Figures the app leaves out are derived from
//! `users`, and every derivation is written down as an assumption.

use crate::describe::app::App;
use crate::describe::known::known;

/// One thing to place on compute: a service replica set, a self-hosted
/// dependency or the session containers.
#[derive(Clone, Debug)]
pub struct Unit {
    pub name: String,
    pub cpu: f64,
    pub memory_gb: f64,
    pub replicas: u32,
    /// Persistent disk per replica set, in GB.
    pub disk_gb: f64,
    /// Dependency kind for self-hosted backing services.
    pub dependency: Option<String>,
    pub public: bool,
    /// Share of the month it runs (sessions run at peak hours only).
    pub duty: f64,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub users: u32,
    pub peak_rps: f64,
    pub requests_per_month: f64,
    pub egress_gb: f64,
    pub services: Vec<Unit>,
    pub sessions: Vec<Unit>,
    pub assumptions: Vec<String>,
    /// Where the users want more than a cap allows.
    pub shortfalls: Vec<super::capacity::Shortfall>,
}

/// Requests a vCPU serves per second at the sizes we pick (a typical
/// web/API handler of ~40 ms CPU); stated as an assumption.
pub const RPS_PER_VCPU: f64 = 25.0;

pub fn derive(app: &App, users: u32) -> Workload {
    let usage = app.usage.clone().unwrap_or_default();
    let mut assumptions = Vec::new();
    let mut shortfalls = Vec::new();
    let concurrency = usage.peak_concurrency.unwrap_or(0.2);
    let rpm = match usage.requests_per_minute {
        Some(r) if usage.users.is_none_or(|u| u == users) => r as f64,
        Some(r) => r as f64 * users as f64 / usage.users.unwrap_or(users).max(1) as f64,
        None => {
            let r = users as f64 * concurrency * 6.0;
            assumptions.push(format!("peak {r:.0} requests/min = {users} users × {concurrency} active at peak × 6 requests/min each"));
            r
        }
    };
    let peak_rps = rpm / 60.0;
    // Average traffic over a month is about a third of the peak hour.
    let requests_per_month = rpm / 3.0 * 60.0 * 730.0;
    let egress_gb = match usage.egress_per_month {
        Some(e) if usage.users.is_none_or(|u| u == users) => e.as_gib(),
        Some(e) => e.as_gib() * users as f64 / usage.users.unwrap_or(users).max(1) as f64,
        None => {
            let e = (users as f64 * 0.5).max(1.0);
            assumptions.push(format!("egress {e:.0} GB/month = {users} users × 0.5 GB"));
            e
        }
    };
    let egress_gb = match usage.egress_share {
        Some(share) => {
            assumptions.push(format!(
                "this part of a split app sends {:.0} % of its egress (its share of the public services)",
                share * 100.0
            ));
            egress_gb * share
        }
        None => egress_gb,
    };

    let mut services = Vec::new();
    for (name, s) in &app.services {
        let cpu = s.cpu().cores();
        let share = if s.is_public() {
            peak_rps
        } else {
            peak_rps / 2.0
        };
        let needed = if s.traits.background_worker || s.ports.is_empty() {
            0
        } else {
            (share / (cpu * RPS_PER_VCPU)).ceil() as u32
        };
        let replicas = needed.clamp(s.min_replicas(), s.max_replicas().max(s.min_replicas()));
        if needed > s.max_replicas() {
            assumptions.push(format!("`{name}` would need {needed} replicas at {peak_rps:.1} req/s but is capped at {} (raise autoscaling.max)", s.max_replicas()));
            shortfalls.push(super::capacity::Shortfall {
                what: format!("service {name}"),
                wanted: needed,
                allowed: s.max_replicas(),
                mean_wait_s: None,
                needed,
                total_if_met: None,
                met_complete: true,
                met_gap: None,
                model: format!("{share:.1} req/s at peak, {RPS_PER_VCPU} req/s per vCPU"),
            });
        } else if replicas > s.min_replicas() {
            assumptions.push(format!("`{name}` scaled to {replicas} replicas for {share:.1} req/s at {RPS_PER_VCPU} req/s per vCPU"));
        }
        let disk: f64 = s
            .persistent_volumes()
            .fold(0.0, |total, v| total + v.size.map_or(1.0, |z| z.as_gib()));
        services.push(Unit {
            name: name.clone(),
            cpu,
            memory_gb: s.memory().as_gib(),
            replicas,
            disk_gb: disk,
            dependency: None,
            public: s.is_public(),
            duty: 1.0,
        });
    }
    for (name, d) in &app.dependencies {
        let k = known().get(&d.kind);
        if k.is_some_and(|k| k.external || k.class == "embedded") {
            continue;
        }
        let cpu = d.cpu.or(k.and_then(|k| k.cpu)).map_or(0.25, |c| c.cores());
        let mem = d
            .memory
            .or(k.and_then(|k| k.memory))
            .map_or(0.5, |m| m.as_gib());
        let is_cache = k.is_some_and(|k| k.class == "cache");
        let disk = if is_cache && d.size.is_none() {
            0.0
        } else {
            d.size
                .or(k.and_then(|k| k.size))
                .map_or(0.0, |s| s.as_gib())
        };
        services.push(Unit {
            name: name.clone(),
            cpu,
            memory_gb: mem,
            replicas: 1,
            disk_gb: disk,
            dependency: Some(d.kind.clone()),
            public: false,
            duty: 1.0,
        });
    }
    let mut sessions = Vec::new();
    for (name, s) in &app.sessions {
        let active_users = (users as f64 * concurrency).ceil() as u32;
        let peak = active_users;
        let cap = s.max_total.unwrap_or(u32::MAX);
        if cap < u32::MAX {
            let hold_s = s
                .max_duration
                .map_or(super::capacity::DEFAULT_SESSION_S, |d| d.0 as f64);
            shortfalls.extend(super::capacity::sessions(name, active_users, cap, hold_s));
        }
        let concurrent = peak.min(cap) + s.warm_pool.unwrap_or(0);
        assumptions.push(format!(
            "`{name}`: {concurrent} session containers at peak ({active_users} active users, max_total {}, warm pool {}), running 8 h/day",
            s.max_total.map_or("unlimited".into(), |m| m.to_string()),
            s.warm_pool.unwrap_or(0)
        ));
        sessions.push(Unit {
            name: name.clone(),
            cpu: s.cpu.map_or(0.5, |c| c.cores()),
            memory_gb: s.memory.map_or(0.25, |m| m.as_gib()),
            replicas: concurrent.max(1),
            disk_gb: s.volume.map_or(0.0, |v| v.as_gib()) * concurrent as f64,
            dependency: None,
            public: false,
            duty: 8.0 / 24.0,
        });
    }
    Workload {
        users,
        peak_rps,
        requests_per_month,
        egress_gb,
        services,
        sessions,
        assumptions,
        shortfalls,
    }
}
