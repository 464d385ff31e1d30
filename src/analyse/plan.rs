//! The plan: fitness and cost for every target side by side at each user
//! level, the cheapest fitting target per level (the growth path), and a
//! recommendation per use case with reasons (seed 003's shape).

use super::cost::{self, Estimate, Strategy};
use super::fitness::{Engine, FIT_THRESHOLD, Status};
use super::placement::{capacity, workload};
use crate::describe::app::App;
use serde::Serialize;

pub const DEFAULT_LEVELS: [u32; 6] = [2, 10, 50, 200, 1000, 10_000];

/// How far below the best operations score a cheaper target may be and
/// still be recommended where operating work matters.
pub const OPERATIONS_MARGIN: u32 = 10;

#[derive(Clone, Debug, Serialize)]
pub struct TargetRow {
    pub target: String,
    pub name: String,
    pub family: String,
    pub fitness: u32,
    /// The operations score: how much of the operating the target does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<u32>,
    pub status: Status,
    pub verdict: String,
    /// Monthly total per user level, in the order of `levels`.
    pub monthly: Vec<f64>,
    pub incomplete: Vec<bool>,
    pub first_blocker: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub users: u32,
    pub target: Option<String>,
    /// What these users need there, every binding cap raised to meet them.
    pub monthly: Option<f64>,
    /// The bill with the app's caps as they are, where a cap binds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_monthly: Option<f64>,
    /// How it runs there: nodes and layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    pub use_case: &'static str,
    pub target: Option<String>,
    pub monthly: Option<f64>,
    pub users: u32,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub app: String,
    pub levels: Vec<u32>,
    pub rows: Vec<TargetRow>,
    pub growth_path: Vec<Step>,
    pub recommendations: Vec<Recommendation>,
    /// Where the growth path's target is capped below what its users want.
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub estimates: Vec<Vec<Estimate>>,
}

pub fn plan(engine: &Engine, app: &App, levels: &[u32], strategy: Strategy) -> Plan {
    let comps = super::fitness::facts::components(app);
    // Priced for what the users need: where a cap or a fixed replica count
    // binds, the app is lifted to meet the load (once per level: the
    // shortfalls depend on the users, not the target). The capped bill is
    // shown beside it on the growth path.
    let needs: Vec<(Option<App>, Vec<capacity::Shortfall>)> = levels
        .iter()
        .map(|u| {
            let shortfalls = workload::derive(app, *u).shortfalls;
            let lifted = (!shortfalls.is_empty()).then(|| cost::lift_caps(app, &shortfalls));
            (lifted, shortfalls)
        })
        .collect();
    let mut rows = Vec::new();
    let mut estimates = Vec::new();
    for t in &engine.catalog.targets {
        let a = engine.assess_target(&comps, t);
        let ests: Vec<Estimate> = levels
            .iter()
            .zip(&needs)
            .map(|(u, (lifted, shortfalls))| {
                let mut e = cost::estimate_capped(
                    engine.catalog,
                    lifted.as_ref().unwrap_or(app),
                    t,
                    *u,
                    strategy,
                );
                e.shortfalls = shortfalls
                    .iter()
                    .cloned()
                    .map(|mut s| {
                        s.total_if_met = Some(e.total);
                        s.met_complete = e.complete;
                        s
                    })
                    .collect();
                e
            })
            .collect();
        rows.push(TargetRow {
            target: t.id.clone(),
            name: t.name.clone(),
            family: t.family.clone(),
            fitness: a.score.overall,
            operations: a.operations.as_ref().map(|o| o.score),
            status: a.status,
            verdict: a.verdict.clone(),
            monthly: ests.iter().map(|e| e.total).collect(),
            incomplete: ests.iter().map(|e| e.incomplete).collect(),
            first_blocker: a.blockers.first().map(|b| b.message.clone()),
        });
        estimates.push(ests);
    }

    // The cheapest fitting, fully priced target per level. Local hosting is
    // left out: it is not reachable by users on the internet.
    let candidates = |i: usize, filter: &dyn Fn(&TargetRow) -> bool| -> Option<(usize, f64)> {
        rows.iter()
            .enumerate()
            .filter(|(_, r)| r.family != "local" && filter(r))
            .filter(|(_, r)| {
                r.status != Status::Blocked && r.fitness >= FIT_THRESHOLD && !r.incomplete[i]
            })
            .map(|(k, r)| (k, r.monthly[i]))
            .min_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then(rows[a.0].target.cmp(&rows[b.0].target))
            })
    };
    let growth_path: Vec<Step> = levels
        .iter()
        .enumerate()
        .map(|(i, u)| match candidates(i, &|_| true) {
            Some((k, m)) => {
                let e = &estimates[k][i];
                // The capped bill, for the growth path only: a second
                // estimate per row and level would double the plan's work.
                let capped = (!e.shortfalls.is_empty())
                    .then(|| engine.catalog.target(&rows[k].target))
                    .flatten()
                    .map(|t| cost::estimate_capped(engine.catalog, app, t, *u, strategy).total);
                let layout = e.layout.describe(e.nodes.as_ref());
                Step {
                    users: *u,
                    target: Some(rows[k].target.clone()),
                    monthly: Some(m),
                    capped_monthly: capped,
                    why: format!(
                        "cheapest fitting target at {u} users (fitness {}, ${m:.2}/month): {layout}",
                        rows[k].fitness
                    ),
                    layout: Some(layout),
                }
            }
            None => Step {
                users: *u,
                target: None,
                monthly: None,
                capped_monthly: None,
                layout: None,
                why: "no target fits with complete prices; see blockers".into(),
            },
        })
        .collect();

    let warnings: Vec<String> = growth_path
        .iter()
        .enumerate()
        .filter_map(|(i, step): (usize, &Step)| {
            let k = rows
                .iter()
                .position(|r| Some(&r.target) == step.target.as_ref())?;
            let e = estimates[k].get(i)?;
            let capped = step.capped_monthly.map_or(String::new(), |c| {
                format!("; as capped today it would cost ${c:.2}/month")
            });
            Some(
                e.shortfalls
                    .iter()
                    .map(|s| {
                        format!(
                            "at {} users on {}: {}{capped}",
                            step.users,
                            rows[k].target,
                            s.describe()
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    let first = 0;
    let last = levels.len().saturating_sub(1);
    // A team of about fifty users; whatever levels were asked for.
    let mid = levels
        .iter()
        .position(|l| *l >= 50)
        .unwrap_or(levels.len() / 2)
        .min(last);
    // Where operating work matters, the cheapest of the candidates whose
    // operations score is within a margin of the best: a platform that
    // patches, backs up and renews for the team wins over a cheaper one
    // that leaves it all, unless they are close.
    let least_work = |i: usize, filter: &dyn Fn(&TargetRow) -> bool| -> Option<(usize, f64)> {
        let fitting = |r: &TargetRow| {
            filter(r)
                && r.family != "local"
                && r.status != Status::Blocked
                && r.fitness >= FIT_THRESHOLD
                && !r.incomplete[i]
        };
        let best = rows
            .iter()
            .filter(|r| fitting(r))
            .filter_map(|r| r.operations)
            .max()?;
        candidates(i, &|r| {
            filter(r) && r.operations.is_some_and(|o| o + OPERATIONS_MARGIN >= best)
        })
    };
    let mut recs = Vec::new();
    let mut rec = |use_case: &'static str,
                   level: usize,
                   filter: &dyn Fn(&TargetRow) -> bool,
                   why: &str,
                   by_operations: bool| {
        let pick = if by_operations {
            least_work(level, filter)
        } else {
            candidates(level, filter)
        };
        let users = levels.get(level).copied().unwrap_or(0);
        let mut reasons = vec![why.to_string()];
        if let Some((k, m)) = pick {
            let r = &rows[k];
            reasons.push(format!(
                "{}: fitness {} ({}), ${m:.2}/month at {users} users",
                r.name, r.fitness, r.verdict
            ));
            if let Some(o) = r.operations {
                reasons.push(format!(
                        "operations {o}/100{}",
                        if by_operations {
                            format!(": the least operating work among the fitting targets (within {OPERATIONS_MARGIN} points), then the cheapest")
                        } else {
                            String::new()
                        }
                    ));
            }
            if let Some(e) = estimates[k].get(level) {
                if e.uses_unconfirmed_prices {
                    reasons.push("estimate uses UNCONFIRMED prices".into());
                }
                if let Some(s) = e.sizing.first() {
                    reasons.push(s.clone());
                }
            }
        } else {
            reasons.push("no fitting target in this category".into());
        }
        recs.push(Recommendation {
            use_case,
            target: pick.map(|(k, _)| rows[k].target.clone()),
            monthly: pick.map(|(_, m)| m),
            users,
            reasons,
        });
    };
    rec(
        "personal",
        first,
        &|r| r.family == "vm" || r.family == "compose" || r.family == "paas",
        "one person or a demo: the cheapest always-on host that runs the whole app",
        false,
    );
    rec(
        "small_team",
        mid.min(1).max(first),
        &|r| {
            r.family == "vm"
                && ["aws", "gcp", "digitalocean"].contains(
                    &r.target
                        .trim_start_matches("vm-")
                        .split('-')
                        .next()
                        .unwrap_or(""),
                )
        },
        "a small team in production: a VM at a major cloud with backups, managed databases and room to add a load balancer",
        true,
    );
    rec(
        "minimal_maintenance",
        mid,
        &|r| {
            matches!(
                r.family.as_str(),
                "paas" | "serverless" | "container_service"
            )
        },
        "no one to run servers: a managed platform builds, deploys, restarts and patches for you",
        true,
    );
    rec(
        "high_performance",
        last,
        &|r| r.family == "kubernetes",
        "many users: Kubernetes gives autoscaling, rolling updates and self-healing across nodes",
        false,
    );
    rec(
        "budget",
        mid,
        &|r| r.family == "vm" || r.family == "compose" || r.family == "swarm",
        "lowest bill for predictable load: the cheapest VM that fits, run with Docker Compose",
        false,
    );
    Plan {
        app: app.name.clone(),
        levels: levels.to_vec(),
        rows,
        growth_path,
        recommendations: recs,
        warnings,
        estimates,
    }
}
