//! The plan: fitness and cost for every target side by side at each user
//! level, the cheapest fitting target per level (the growth path), and a
//! recommendation per use case with reasons (seed 003's shape).

use super::cost::{self, Estimate, Strategy};
use super::fitness::facts::{Component, components};
use super::fitness::{Engine, FIT_THRESHOLD, Status};
use super::placement::{capacity, workload};
use super::split::{self, Crossing, Move, Split};
use crate::catalog::Target;
use crate::describe::app::App;
use serde::Serialize;

pub const DEFAULT_LEVELS: [u32; 6] = [2, 10, 50, 200, 1000, 10_000];

/// A split is recommended over the whole app only when it saves at least
/// this share of the bill and this many dollars a month: below that, a
/// second platform's account, pipeline and bill cost the team more.
pub const SPLIT_MIN_SAVING_SHARE: f64 = 0.05;
pub const SPLIT_MIN_SAVING_USD: f64 = 5.0;

fn worth_splitting(whole: f64, split: f64) -> bool {
    let saving = whole - split;
    saving >= SPLIT_MIN_SAVING_USD && saving >= whole * SPLIT_MIN_SAVING_SHARE
}

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
    /// The app split over targets (`target` is the first group's), when
    /// that is the recommendation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<SplitGroup>>,
}

impl Recommendation {
    /// Where it runs: a target, or the groups of a split
    /// (`vm-digitalocean + fly (web)`).
    pub fn placed_on(&self) -> String {
        match &self.split {
            Some(groups) => groups
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    if i == 0 {
                        g.target.clone()
                    } else {
                        format!("{} ({})", g.target, g.services.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join(" + "),
            None => self.target.clone().unwrap_or_else(|| "none fits".into()),
        }
    }
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
    /// The app with its front end on a platform of its own, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPlan>,
    #[serde(skip)]
    pub estimates: Vec<Vec<Estimate>>,
}

pub fn plan(engine: &Engine, app: &App, levels: &[u32], strategy: Strategy) -> Plan {
    let comps = components(app);
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
    let lifted: Vec<&App> = needs
        .iter()
        .map(|(lifted, _)| lifted.as_ref().unwrap_or(app))
        .collect();
    let shortfalls: Vec<&[capacity::Shortfall]> = needs.iter().map(|(_, s)| &s[..]).collect();
    let mut rows = Vec::new();
    let mut estimates = Vec::new();
    for t in &engine.catalog.targets {
        let (row, ests) =
            judge_and_price(engine, &comps, t, levels, &lifted, &shortfalls, strategy);
        rows.push(row);
        estimates.push(ests);
    }
    let split = split_plan(engine, app, levels, &lifted, &shortfalls, strategy);

    // The cheapest fitting, fully priced target per level. Local hosting is
    // left out: it is not reachable by users on the internet.
    let candidates =
        |i: usize, filter: &dyn Fn(&TargetRow) -> bool| cheapest_fitting(&rows, i, filter);
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
    let mut recs = Vec::new();
    let mut rec = |use_case: &'static str,
                   level: usize,
                   filter: &dyn Fn(&TargetRow) -> bool,
                   why: &str,
                   by_operations: bool| {
        let (pick, split_pick) = choose(&rows, split.as_ref(), level, filter, by_operations);
        let users = levels.get(level).copied().unwrap_or(0);
        let mut reasons = vec![why.to_string()];
        if let Some(sc) = split_pick {
            reasons.push(match pick {
                Some((k, m)) => format!(
                    "split: {}, ${:.2}/month at {users} users, ${:.2} less than the whole app on {} (${m:.2})",
                    sc.describe(),
                    sc.monthly,
                    m - sc.monthly,
                    rows[k].name
                ),
                None => format!(
                    "split: {}, ${:.2}/month at {users} users; the whole app fits no target of this kind",
                    sc.describe(),
                    sc.monthly
                ),
            });
            reasons.push(format!(
                "operations {}",
                sc.groups
                    .iter()
                    .map(|g| format!(
                        "{} on {}: {}",
                        g.services.join(", "),
                        g.name,
                        g.operations.map_or("-".into(), |o| format!("{o}/100"))
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            for c in split.as_ref().map_or(&[][..], |sp| &sp.crossings[..]) {
                reasons.push(c.describe());
            }
            recs.push(Recommendation {
                use_case,
                target: Some(sc.groups[0].target.clone()),
                monthly: Some(sc.monthly),
                users,
                reasons,
                split: Some(sc.groups),
            });
            return;
        }
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
            split: None,
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
        split,
        estimates,
    }
}

/// A use case's choice at level `i`: the whole app on the best target of
/// its kind, and a split instead when the whole app fits no target of
/// that kind or the split saves enough to pay for a second platform's
/// account, pipeline and bill.
fn choose(
    rows: &[TargetRow],
    split: Option<&SplitPlan>,
    i: usize,
    filter: &dyn Fn(&TargetRow) -> bool,
    by_operations: bool,
) -> (Option<(usize, f64)>, Option<SplitChoice>) {
    let whole = if by_operations {
        least_work(rows, i, filter)
    } else {
        cheapest_fitting(rows, i, filter)
    };
    let split = split
        .and_then(|sp| sp.pick(i, filter, by_operations))
        .filter(|sc| whole.is_none_or(|(_, m)| worth_splitting(m, sc.monthly)));
    (whole, split)
}

/// Judges the target for the app and prices it at every level (each
/// level's app already lifted to what its users need).
fn judge_and_price(
    engine: &Engine,
    comps: &[Component],
    t: &Target,
    levels: &[u32],
    apps: &[&App],
    shortfalls: &[&[capacity::Shortfall]],
    strategy: Strategy,
) -> (TargetRow, Vec<Estimate>) {
    let a = engine.assess_target(comps, t);
    let ests: Vec<Estimate> = apps
        .iter()
        .zip(levels)
        .zip(shortfalls)
        .map(|((app, users), shortfalls)| {
            let mut e = cost::estimate_capped(engine.catalog, app, t, *users, strategy);
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
    let row = TargetRow {
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
    };
    (row, ests)
}

fn fits(r: &TargetRow, i: usize) -> bool {
    r.family != "local"
        && r.status != Status::Blocked
        && r.fitness >= FIT_THRESHOLD
        && !r.incomplete[i]
}

/// The cheapest fitting, fully priced row at level `i`. Local hosting is
/// left out: it is not reachable by users on the internet.
fn cheapest_fitting(
    rows: &[TargetRow],
    i: usize,
    filter: &dyn Fn(&TargetRow) -> bool,
) -> Option<(usize, f64)> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| filter(r) && fits(r, i))
        .map(|(k, r)| (k, r.monthly[i]))
        .min_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then(rows[a.0].target.cmp(&rows[b.0].target))
        })
}

/// Where operating work matters, the cheapest of the fitting rows whose
/// operations score is within a margin of the best: a platform that
/// patches, backs up and renews for the team wins over a cheaper one that
/// leaves it all, unless they are close.
fn least_work(
    rows: &[TargetRow],
    i: usize,
    filter: &dyn Fn(&TargetRow) -> bool,
) -> Option<(usize, f64)> {
    let best = rows
        .iter()
        .filter(|r| filter(r) && fits(r, i))
        .filter_map(|r| r.operations)
        .max()?;
    cheapest_fitting(rows, i, &|r| {
        filter(r) && r.operations.is_some_and(|o| o + OPERATIONS_MARGIN >= best)
    })
}

/// The app with its front end (see `split::front_end`) on a web platform
/// and the rest on any target: each part judged and priced on every
/// target it could take, at every level.
#[derive(Clone, Debug, Serialize)]
pub struct SplitPlan {
    pub front: Vec<String>,
    pub rest: Vec<String>,
    /// The front end on each web platform (PaaS and serverless).
    pub front_rows: Vec<TargetRow>,
    /// The rest of the app on each target.
    pub rest_rows: Vec<TargetRow>,
    pub crossings: Vec<Crossing>,
}

/// One group of a recommended split.
#[derive(Clone, Debug, Serialize)]
pub struct SplitGroup {
    pub target: String,
    pub name: String,
    pub services: Vec<String>,
    pub monthly: f64,
    pub fitness: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<u32>,
}

pub struct SplitChoice {
    /// The rest first, then the front end.
    pub groups: Vec<SplitGroup>,
    pub monthly: f64,
}

impl SplitChoice {
    pub fn describe(&self) -> String {
        self.groups
            .iter()
            .map(|g| {
                format!(
                    "{} on {} (${:.2})",
                    g.services.join(", "),
                    g.name,
                    g.monthly
                )
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

impl SplitPlan {
    /// The best split at level `i` whose rest runs on a target `filter`
    /// accepts, on a different target than the front end.
    pub fn pick(
        &self,
        i: usize,
        filter: &dyn Fn(&TargetRow) -> bool,
        by_operations: bool,
    ) -> Option<SplitChoice> {
        let choose = |rows: &[TargetRow], filter: &dyn Fn(&TargetRow) -> bool| {
            if by_operations {
                least_work(rows, i, filter)
            } else {
                cheapest_fitting(rows, i, filter)
            }
        };
        let (b, back) = choose(&self.rest_rows, filter)?;
        let rest = &self.rest_rows[b];
        let (f, front) = choose(&self.front_rows, &|r| r.target != rest.target)?;
        let group = |r: &TargetRow, services: &[String], monthly: f64| SplitGroup {
            target: r.target.clone(),
            name: r.name.clone(),
            services: services.to_vec(),
            monthly,
            fitness: r.fitness,
            operations: r.operations,
        };
        Some(SplitChoice {
            monthly: back + front,
            groups: vec![
                group(rest, &self.rest, back),
                group(&self.front_rows[f], &self.front, front),
            ],
        })
    }
}

/// Judges and prices the app split into its front end and the rest, or
/// `None` when it has no front end to move.
fn split_plan(
    engine: &Engine,
    app: &App,
    levels: &[u32],
    apps: &[&App],
    shortfalls: &[&[capacity::Shortfall]],
    strategy: Strategy,
) -> Option<SplitPlan> {
    let front = split::front_end(app);
    if front.is_empty() {
        return None;
    }
    let moves = [Move {
        services: front.clone(),
        target: "front".into(),
    }];
    let sp = Split::new(app, "rest", &moves).ok()?;
    let parts = |g: usize| -> Vec<App> { apps.iter().map(|a| sp.part(a, g)).collect() };
    let (rest_apps, front_apps) = (parts(0), parts(1));
    let none: Vec<&[capacity::Shortfall]> = vec![&[]; apps.len()];
    let rows_of = |apps: &[App],
                   targets: &mut dyn Iterator<Item = &Target>,
                   sf: &[&[capacity::Shortfall]]| {
        let comps = components(&apps[0]);
        let refs: Vec<&App> = apps.iter().collect();
        targets
            .map(|t| judge_and_price(engine, &comps, t, levels, &refs, sf, strategy).0)
            .collect::<Vec<_>>()
    };
    let front_rows = rows_of(
        &front_apps,
        &mut engine
            .catalog
            .targets
            .iter()
            .filter(|t| matches!(t.family.as_str(), "paas" | "serverless")),
        &none,
    );
    let rest_rows = rows_of(
        &rest_apps,
        &mut engine
            .catalog
            .targets
            .iter()
            .filter(|t| t.family != "local"),
        shortfalls,
    );
    Some(SplitPlan {
        rest: sp.groups[0].services.clone(),
        front,
        front_rows,
        rest_rows,
        crossings: sp.crossings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, family: &str, status: Status, monthly: f64) -> TargetRow {
        TargetRow {
            target: target.into(),
            name: target.into(),
            family: family.into(),
            fitness: if status == Status::Blocked { 0 } else { 95 },
            operations: Some(100),
            status,
            verdict: String::new(),
            monthly: vec![monthly],
            incomplete: vec![false],
            first_blocker: None,
        }
    }

    fn split(rest: Vec<TargetRow>, front: Vec<TargetRow>) -> SplitPlan {
        SplitPlan {
            front: vec!["web".into()],
            rest: vec!["api".into()],
            front_rows: front,
            rest_rows: rest,
            crossings: Vec::new(),
        }
    }

    const PAAS: &dyn Fn(&TargetRow) -> bool = &|r: &TargetRow| r.family == "paas";

    #[test]
    fn a_split_that_removes_a_blocker_is_chosen() {
        // The whole app is blocked on every platform of the kind (say its
        // front end needs what none offers); without the front end, the
        // rest fits one.
        let rows = vec![row("render", "paas", Status::Blocked, 30.0)];
        let sp = split(
            vec![row("render", "paas", Status::Ready, 25.0)],
            vec![row("vercel", "serverless", Status::Ready, 20.0)],
        );
        let (whole, chosen) = choose(&rows, Some(&sp), 0, PAAS, false);
        assert!(whole.is_none());
        let c = chosen.expect("the split");
        assert_eq!(
            c.monthly, 45.0,
            "dearer than the blocked whole app, yet the only fit"
        );
        assert_eq!(
            c.describe(),
            "api on render ($25.00) + web on vercel ($20.00)"
        );
    }

    #[test]
    fn a_split_must_save_five_percent_and_five_dollars() {
        let rows = vec![row("render", "paas", Status::Ready, 100.0)];
        let with = |rest: f64| {
            let sp = split(
                vec![row("render", "paas", Status::Ready, rest)],
                vec![row("fly", "paas", Status::Ready, 2.0)],
            );
            choose(&rows, Some(&sp), 0, PAAS, false)
                .1
                .map(|c| c.monthly)
        };
        assert_eq!(with(92.0), Some(94.0), "$6 and 6 % less");
        assert_eq!(with(94.5), None, "$3.50 less: not worth a second platform");
        let big = vec![row("eks", "paas", Status::Ready, 1000.0)];
        let sp = split(
            vec![row("eks", "paas", Status::Ready, 940.0)],
            vec![row("fly", "paas", Status::Ready, 20.0)],
        );
        assert_eq!(
            choose(&big, Some(&sp), 0, PAAS, false).1.map(|c| c.monthly),
            None,
            "$40 less is 4 %: not enough"
        );
    }

    #[test]
    fn the_front_end_never_shares_the_rests_target() {
        let rows = vec![row("fly", "paas", Status::Ready, 100.0)];
        let sp = split(
            vec![row("fly", "paas", Status::Ready, 50.0)],
            vec![
                row("fly", "paas", Status::Ready, 1.0),
                row("railway", "paas", Status::Ready, 5.0),
            ],
        );
        let c = choose(&rows, Some(&sp), 0, PAAS, false).1.unwrap();
        assert_eq!(c.groups[1].target, "railway");
    }
}
