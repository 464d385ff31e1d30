//! Cost: a monthly estimate per target with a line-by-line breakdown. Each
//! line is a cost component (name, unit, quantity, unit price, source) in the
//! manner of Infracost; usage-based lines are marked, a price the catalog
//! lacks is flagged (never silently zero), and UNCONFIRMED prices say so.

/// The load model, the sizing optimizer and the queueing model decide the
/// placement; they are re-exported here for readers of estimates.
pub use crate::analyse::placement::{capacity, sizing, workload};

use crate::analyse::placement::{Hosting, Layout, NodePool, Placement};
use crate::catalog::{Catalog, HOURS_PER_MONTH, Price, PriceUnit, Target};
use crate::describe::app::App;
use crate::describe::known::known;
use serde::Serialize;
use std::collections::BTreeMap;
use workload::Unit;

pub const CATEGORIES: [&str; 9] = [
    "compute",
    "database",
    "cache",
    "storage",
    "bandwidth",
    "load_balancer",
    "control_plane",
    "platform",
    "other",
];

/// Settings are typed at the bottom of the layers; the estimator prices
/// the extra capacity each strategy needs during a deploy.
pub use crate::state::settings::Strategy;

#[derive(Clone, Debug, Serialize)]
pub struct CostLine {
    pub category: &'static str,
    pub name: String,
    pub unit: PriceUnit,
    pub quantity: f64,
    pub unit_price: Option<f64>,
    pub monthly: f64,
    pub usage_based: bool,
    pub price_not_found: bool,
    pub unconfirmed: bool,
    /// The price was read more than a year ago (`catalog check` says which).
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub target: String,
    pub target_name: String,
    pub provider: String,
    pub users: u32,
    pub strategy: Strategy,
    /// Totals per category plus `total`, as in seed 004's example.
    pub monthly_estimate: BTreeMap<String, f64>,
    pub total: f64,
    pub currency: &'static str,
    pub lines: Vec<CostLine>,
    /// Why each size and count was chosen.
    pub sizing: Vec<String>,
    pub assumptions: Vec<String>,
    pub notes: Vec<String>,
    /// Some lines could not be priced: the total is a lower bound.
    pub incomplete: bool,
    /// Every line is priced (`!incomplete`), for readers of the JSON.
    pub complete: bool,
    pub uses_unconfirmed_prices: bool,
    /// Some line's price is more than a year old.
    pub uses_stale_prices: bool,
    /// What these users want beyond the app's caps, with the wait they
    /// meet and the total that meets the load.
    pub shortfalls: Vec<capacity::Shortfall>,
    /// How the priced things sit on the target, and on which nodes.
    pub layout: Layout,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodePool>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Builds lines against the catalog, so every line carries its source.
struct Lines<'a> {
    catalog: &'a Catalog,
    lines: Vec<CostLine>,
    /// For marking stale prices, read once per estimate.
    today: jiff::civil::Date,
}

impl<'a> Lines<'a> {
    /// A line priced from the catalog: `quantity` in the price's own unit
    /// (months, hours, GB…); free quantities are subtracted.
    fn add(
        &mut self,
        category: &'static str,
        name: impl Into<String>,
        price_id: &str,
        quantity: f64,
        usage_based: bool,
        note: Option<String>,
    ) {
        let price = self.catalog.price(price_id);
        self.push(
            category,
            name.into(),
            price,
            price_id,
            quantity,
            usage_based,
            note,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        category: &'static str,
        name: String,
        price: Option<&Price>,
        price_id: &str,
        quantity: f64,
        usage_based: bool,
        note: Option<String>,
    ) {
        let unit = price.map_or(PriceUnit::Month, |p| p.unit);
        let free = price.and_then(|p| p.free_quantity).unwrap_or(0.0);
        let billable = (quantity - free).max(0.0);
        let unit_price = price.and_then(|p| p.usd);
        let mut monthly = unit_price.map_or(0.0, |u| u * billable);
        if let Some(credit) = price.and_then(|p| p.free_usd) {
            monthly = (monthly - credit).max(0.0);
        }
        let mut note = note;
        if free > 0.0 && quantity > 0.0 {
            let n = format!("first {free} {} free", unit);
            note = Some(note.map_or(n.clone(), |x| format!("{x}; {n}")));
        }
        if let Some(c) = price.and_then(|p| p.free_usd) {
            let n = format!("${c:.2}/month credit applied");
            note = Some(note.map_or(n.clone(), |x| format!("{x}; {n}")));
        }
        self.lines.push(CostLine {
            category,
            name,
            unit,
            // Four places, so quantity × unit price is the monthly amount
            // to the cent (0.8125 vCPU-months, not 0.81).
            quantity: (quantity * 10_000.0).round() / 10_000.0,
            unit_price,
            monthly: round2(monthly),
            usage_based,
            price_not_found: unit_price.is_none(),
            unconfirmed: price.is_some_and(|p| p.unconfirmed()),
            stale: price.is_some_and(|p| p.stale_on(self.today)),
            price_id: Some(price_id.to_string()),
            source: price.map(|p| p.source.clone()),
            captured: price.map(|p| p.captured.clone()),
            note,
        });
    }

    /// `count` resources that run all month (a managed database, a load
    /// balancer), priced in whatever time unit the catalog gives: an hourly
    /// price is billed 730 hours, never one.
    fn always_on(
        &mut self,
        category: &'static str,
        name: impl Into<String>,
        price_id: &str,
        count: f64,
        note: Option<String>,
    ) {
        let per_month = self
            .catalog
            .price(price_id)
            .and_then(Price::units_per_always_on_month)
            .unwrap_or(1.0);
        self.add(category, name, price_id, count * per_month, false, note);
    }

    fn free(&mut self, category: &'static str, name: impl Into<String>, note: &str) {
        self.lines.push(CostLine {
            category,
            name: name.into(),
            unit: PriceUnit::Month,
            quantity: 1.0,
            unit_price: Some(0.0),
            monthly: 0.0,
            usage_based: false,
            price_not_found: false,
            unconfirmed: false,
            stale: false,
            price_id: None,
            source: None,
            captured: None,
            note: Some(note.into()),
        });
    }
}

/// The catalog's category for a managed dependency family.
fn category_of(dep_kind: &str) -> &'static str {
    match known().get(dep_kind).map(|k| k.class.as_str()) {
        Some("database" | "graph_database" | "vector_store" | "search") => "database",
        Some("cache") => "cache",
        Some("storage") => "storage",
        _ => "other",
    }
}

/// Estimates the monthly cost of running `app` on `target` for `users`,
/// as capped; where a cap binds, the shortfall says what meeting the load
/// would cost.
pub fn estimate(
    catalog: &Catalog,
    app: &App,
    target: &Target,
    users: u32,
    strategy: Strategy,
) -> Estimate {
    let mut e = estimate_capped(catalog, app, target, users, strategy);
    price_shortfalls(catalog, app, target, &mut e);
    e
}

/// Prices what meeting the load would cost where a cap binds (a second
/// estimate with the caps lifted), and notes each shortfall. Kept apart
/// from [`estimate_capped`] so a plan pays for it only where it reports.
pub fn price_shortfalls(catalog: &Catalog, app: &App, target: &Target, e: &mut Estimate) {
    if e.shortfalls.is_empty() {
        return;
    }
    let lifted = lift_caps(app, &e.shortfalls);
    let met = estimate_capped(catalog, &lifted, target, e.users, e.strategy);
    let gap = met.lines.iter().find(|l| l.price_not_found).map(|l| {
        l.note
            .clone()
            .unwrap_or_else(|| format!("{} is not priced", l.name))
    });
    for s in &mut e.shortfalls {
        s.total_if_met = Some(met.total);
        s.met_complete = met.complete;
        s.met_gap = gap.clone();
        e.notes.push(format!("capacity: {}", s.describe()));
    }
}

/// The app with every binding cap raised to what its shortfall needs.
pub fn lift_caps(app: &App, shortfalls: &[capacity::Shortfall]) -> App {
    let mut lifted = app.clone();
    for s in shortfalls {
        if let Some(name) = s.what.strip_prefix("sessions ")
            && let Some(w) = lifted.sessions.get_mut(name)
        {
            w.max_total = Some(s.needed);
        }
        if let Some(name) = s.what.strip_prefix("service ")
            && let Some(svc) = lifted.services.get_mut(name)
        {
            match &mut svc.autoscaling {
                Some(a) => a.max = s.needed,
                None => svc.replicas = Some(s.needed),
            }
        }
    }
    lifted
}

/// The estimate as the app is capped, shortfalls found but not priced.
pub fn estimate_capped(
    catalog: &Catalog,
    app: &App,
    target: &Target,
    users: u32,
    strategy: Strategy,
) -> Estimate {
    let placement = crate::analyse::placement::place(catalog, app, target, users, strategy);
    price(catalog, app, target, &placement)
}

/// Prices a placement line by line: every line is a thing the placement
/// holds (a node pool, a managed offering, a volume, a load balancer).
pub fn price(catalog: &Catalog, app: &App, target: &Target, placement: &Placement) -> Estimate {
    let w = &placement.workload;
    let mut lines = Lines {
        catalog,
        lines: Vec::new(),
        today: crate::catalog::today(),
    };
    let sizing = placement.sizing.clone();
    let mut notes = Vec::new();
    let p = &target.pricing;
    let strategy = placement.strategy;

    for d in &placement.dependencies {
        let cat = category_of(&d.kind);
        match &d.hosting {
            Hosting::SelfHosted => {}
            Hosting::Managed { offering, .. } => lines.always_on(
                cat,
                format!("{} → managed {}", d.name, d.kind),
                &offering.price_id,
                1.0,
                None,
            ),
            Hosting::Outside {
                family,
                offering,
                on_target,
            } => {
                // Stored data is priced per GB-month; anything else runs all month.
                let size = app.dependencies.get(&d.name).and_then(|x| x.size);
                let qty = match catalog.price(&offering.price_id) {
                    Some(p) if p.unit == PriceUnit::GbMonth => size.map_or(10.0, |s| s.as_gib()),
                    Some(p) => p.units_per_always_on_month().unwrap_or(1.0),
                    None => 1.0,
                };
                if *on_target {
                    let name = format!("{} → {family}", d.name);
                    lines.add(cat, name, &offering.price_id, qty, false, None);
                } else {
                    lines.add(
                        cat,
                        format!("{} → {family} (outside {})", d.name, target.name),
                        &offering.price_id,
                        qty,
                        false,
                        Some(
                            "no managed offering on this target; priced at an outside provider"
                                .into(),
                        ),
                    );
                }
            }
            Hosting::Unpriced => lines.add(
                cat,
                format!("{} ({})", d.name, d.kind),
                &format!("external.{}", d.kind),
                1.0,
                true,
                Some("an outside service whose price is not in the catalog".into()),
            ),
        }
    }

    match placement.layout {
        Layout::OwnMachine => {
            lines.free(
                "compute",
                "your own machine",
                "runs on hardware you already have; electricity and your time are not counted",
            );
            notes.push(
                "local: no hosting bill; not reachable from the internet without a tunnel".into(),
            );
        }
        Layout::OneHost | Layout::HostsBehindLoadBalancer | Layout::Swarm | Layout::Cluster => {
            on_nodes(&mut lines, target, placement, &mut notes)
        }
        Layout::Instances => instances(&mut lines, target, placement, &mut notes),
        Layout::Usage if p.model == "usage" => usage(&mut lines, target, placement, &mut notes),
        Layout::Usage => notes.push(format!("unknown pricing model `{}`", p.model)),
    }

    if strategy == Strategy::BlueGreen
        && p.model != "vm"
        && p.model != "kubernetes"
        && p.model != "local"
    {
        notes.push("blue-green: a second full copy runs only during each deploy; at a few deploys a day that adds under 1% to compute".into());
    }
    if strategy == Strategy::Canary && p.model == "instances" {
        let first = w
            .services
            .iter()
            .find(|u| u.public && u.dependency.is_none());
        if let Some(u) = first {
            notes.push(format!("canary: one extra `{}` instance runs while a canary is in progress; it is not in the monthly total (a few hours per deploy)", u.name));
        }
    }

    let mut monthly: BTreeMap<String, f64> = BTreeMap::new();
    for l in &lines.lines {
        *monthly.entry(l.category.to_string()).or_default() += l.monthly;
    }
    for v in monthly.values_mut() {
        *v = round2(*v);
    }
    let total = round2(monthly.values().sum());
    monthly.insert("total".into(), total);
    let incomplete = lines.lines.iter().any(|l| l.price_not_found);
    let uses_unconfirmed = lines.lines.iter().any(|l| l.unconfirmed);
    let uses_stale = lines.lines.iter().any(|l| l.stale);
    if uses_stale {
        notes.push(format!(
            "some prices were read more than {} days ago (marked stale): check them at their source",
            crate::catalog::STALE_AFTER_DAYS
        ));
    }
    if incomplete {
        notes.push("some lines have no price in the catalog: the total is a lower bound".into());
    }
    if uses_unconfirmed {
        notes.push(
            "uses UNCONFIRMED prices (marked per line): check them before relying on the total"
                .into(),
        );
    }
    Estimate {
        target: target.id.clone(),
        target_name: target.name.clone(),
        provider: target.provider.clone(),
        users: placement.users,
        strategy,
        monthly_estimate: monthly,
        total,
        currency: "USD",
        lines: lines.lines,
        sizing,
        assumptions: w.assumptions.clone(),
        notes,
        incomplete,
        complete: !incomplete,
        uses_unconfirmed_prices: uses_unconfirmed,
        uses_stale_prices: uses_stale,
        shortfalls: w.shortfalls.clone(),
        layout: placement.layout,
        nodes: placement.nodes.clone(),
    }
}

/// Nodes (VMs or Kubernetes workers) and what comes with them: addresses,
/// egress over the included allowance, volumes, control plane, load balancer.
fn on_nodes(lines: &mut Lines, target: &Target, placement: &Placement, notes: &mut Vec<String>) {
    let p = &target.pricing;
    let catalog = lines.catalog;
    let w = &placement.workload;
    let kubernetes = placement.layout == Layout::Cluster;
    match &placement.nodes {
        Some(pool) => {
            let price = catalog.price(&pool.offering.price_id);
            let qty = if price.is_some_and(|x| x.unit == PriceUnit::Hour) {
                pool.count as f64 * HOURS_PER_MONTH
            } else {
                pool.count as f64
            };
            let label = if kubernetes { "worker nodes" } else { "VMs" };
            lines.add(
                "compute",
                format!("{} × {} ({label})", pool.count, pool.offering.item),
                &pool.offering.price_id,
                qty,
                false,
                None,
            );
            if let Some(ip) = &p.ipv4 {
                lines.add(
                    "other",
                    format!("{} public IPv4 address(es)", pool.count),
                    ip,
                    pool.count as f64 * HOURS_PER_MONTH,
                    false,
                    None,
                );
            }
            let included: f64 =
                price.and_then(|x| x.included_egress_gb).unwrap_or(0.0) * pool.count as f64;
            if let Some(eg) = &p.egress {
                let over = (w.egress_gb - included).max(0.0);
                let note = Some(format!(
                    "{:.0} GB egress, {:.0} GB included with the nodes",
                    w.egress_gb, included
                ));
                lines.add(
                    "bandwidth",
                    "internet egress",
                    eg,
                    if included > 0.0 { over } else { w.egress_gb },
                    true,
                    note,
                );
            }
        }
        None => lines.add(
            "compute",
            "no instance size fits",
            "sizing.none",
            1.0,
            false,
            placement.unplaceable.clone(),
        ),
    }
    let disk = placement.volume_gb;
    if disk > 0.0 {
        match &p.volume {
            Some(v) => lines.add(
                "storage",
                format!("block volumes ({disk:.0} GB)"),
                v,
                disk,
                false,
                None,
            ),
            None => notes.push(format!(
                "{disk:.0} GB of volumes assumed to fit the nodes' local disks"
            )),
        }
    }
    if kubernetes {
        match &p.control_plane {
            Some(cp) => {
                let qty = if catalog
                    .price(cp)
                    .is_some_and(|x| x.unit == PriceUnit::ClusterHour)
                {
                    HOURS_PER_MONTH
                } else {
                    1.0
                };
                lines.add(
                    "control_plane",
                    "cluster control plane",
                    cp,
                    qty,
                    false,
                    None,
                );
            }
            None => lines.free("control_plane", "cluster control plane", "included"),
        }
    }
    let public = placement.compute_units().any(|u| u.public);
    if placement.load_balancer {
        match &p.lb {
            Some(lb) => {
                let qty = if catalog.price(lb).is_some_and(|x| x.unit == PriceUnit::Hour) {
                    HOURS_PER_MONTH
                } else {
                    1.0
                };
                lines.add(
                    "load_balancer",
                    "load balancer",
                    lb,
                    qty,
                    false,
                    Some("spreads traffic over replicas on several nodes".into()),
                );
            }
            None => notes.push(
                "no load balancer price in the catalog: use DNS round-robin or a proxy on one node"
                    .into(),
            ),
        }
    } else if public {
        notes.push(
            "single node: TLS and routing by a reverse proxy on the VM (Caddy), no load balancer"
                .into(),
        );
    }
}

fn instances(lines: &mut Lines, target: &Target, placement: &Placement, notes: &mut Vec<String>) {
    let p = &target.pricing;
    let catalog = lines.catalog;
    let w = &placement.workload;
    if let Some(plan) = &p.plan {
        lines.add("platform", "workspace plan", plan, 1.0, false, None);
    }
    let mut included_egress = 0.0;
    for u in placement.units.iter().chain(placement.sessions.iter()) {
        match &u.instance {
            Some(size) => {
                let what = if u.dependency.is_some() {
                    "self-hosted"
                } else {
                    "service"
                };
                lines.add(
                    "compute",
                    format!("{} × {} for `{}` ({what})", u.replicas, size.item, u.name),
                    &size.price_id,
                    u.replicas as f64,
                    false,
                    None,
                );
                included_egress += catalog
                    .price(&size.price_id)
                    .and_then(|x| x.included_egress_gb)
                    .unwrap_or(0.0)
                    * u.replicas as f64;
            }
            None => lines.add(
                "compute",
                format!("`{}` ({} vCPU, {:.1} GB)", u.name, u.cpu, u.memory_gb),
                "sizing.none",
                1.0,
                false,
                Some("no instance size on this platform is large enough".into()),
            ),
        }
        if u.disk_gb > 0.0 {
            match &p.volume {
                Some(v) => lines.add(
                    "storage",
                    format!("`{}` disk ({:.0} GB)", u.name, u.disk_gb),
                    v,
                    u.disk_gb,
                    false,
                    None,
                ),
                None => notes.push(format!(
                    "`{}` needs {:.0} GB of disk, which this platform does not offer",
                    u.name, u.disk_gb
                )),
            }
        }
    }
    if let Some(eg) = &p.egress {
        let over = (w.egress_gb - included_egress).max(0.0);
        lines.add(
            "bandwidth",
            "internet egress",
            eg,
            over,
            true,
            Some(format!(
                "{:.0} GB egress, {:.0} GB included",
                w.egress_gb, included_egress
            )),
        );
    } else {
        notes.push("bandwidth: included in the instance prices (fair use)".into());
    }
}

fn usage(lines: &mut Lines, target: &Target, placement: &Placement, notes: &mut Vec<String>) {
    let w = &placement.workload;
    let units: Vec<&Unit> = placement.compute_units().collect();
    let p = &target.pricing;
    let catalog = lines.catalog;
    let (Some(vcpu_id), Some(mem_id)) = (p.rates.get("vcpu"), p.rates.get("memory")) else {
        notes.push("no usage rates in the catalog for this target".into());
        return;
    };
    let unit_of = |id: &str| catalog.price(id).map_or(PriceUnit::VcpuHour, |x| x.unit);
    // Convert vCPU-months (or GB-months) of work into the rate's unit.
    let to_unit =
        |months: f64, unit: PriceUnit| months * unit.per_month().unwrap_or(HOURS_PER_MONTH);
    let plan_start = lines.lines.len();
    if let Some(plan) = &p.plan {
        lines.add("platform", "plan", plan, 1.0, false, None);
    }
    let (mut cpu_months, mut mem_months) = (0.0, 0.0);
    if p.serverless_functions {
        // Functions bill per request: assume 50 ms of CPU and 300 ms of
        // provisioned memory per request at 1 GB.
        let cpu_h = w.requests_per_month * 0.05 / 3600.0;
        let mem_gbh = w.requests_per_month * 0.3 * 1.0 / 3600.0;
        lines.add(
            "compute",
            format!(
                "function CPU ({:.0} requests × 50 ms)",
                w.requests_per_month
            ),
            vcpu_id,
            cpu_h,
            true,
            None,
        );
        lines.add(
            "compute",
            "function memory (1 GB × 300 ms per request)",
            mem_id,
            mem_gbh,
            true,
            None,
        );
        lines.add(
            "compute",
            "function invocations",
            "vercel.invocations",
            w.requests_per_month / 1e6,
            true,
            None,
        );
        notes.push("functions: 50 ms CPU and 300 ms wall time at 1 GB per request assumed".into());
    } else {
        for u in units.iter().copied().chain(w.sessions.iter()) {
            // Usage-billed CPU is what is used; reserved memory is billed whole.
            let util = if target.pricing.plan.is_some() && u.duty >= 1.0 {
                0.25
            } else {
                1.0
            };
            cpu_months += u.cpu * u.replicas as f64 * u.duty * util;
            mem_months += u.memory_gb * u.replicas as f64 * u.duty;
        }
        let cu = unit_of(vcpu_id);
        let mu = unit_of(mem_id);
        lines.add(
            "compute",
            format!("vCPU ({cpu_months:.2} vCPU-months)"),
            vcpu_id,
            to_unit(cpu_months, cu),
            true,
            None,
        );
        lines.add(
            "compute",
            format!("memory ({mem_months:.2} GB-months)"),
            mem_id,
            to_unit(mem_months, mu),
            true,
            None,
        );
        if target.pricing.plan.is_some() {
            notes.push("usage billing: CPU at 25% average utilisation of the reserved cores, memory billed in full".into());
        } else {
            notes.push(
                "always-on instances (minimum instances = replicas) billed for all 730 hours"
                    .into(),
            );
        }
    }
    if let Some(included) = p
        .plan
        .as_ref()
        .and_then(|id| catalog.price(id))
        .and_then(|x| x.included_usd)
    {
        let usage_total: f64 = lines.lines[plan_start..]
            .iter()
            .filter(|l| l.category == "compute")
            .map(|l| l.monthly)
            .sum();
        let credit = usage_total.min(included);
        if credit > 0.0 {
            lines.lines.push(CostLine {
                category: "platform",
                name: format!("usage included in the plan (up to ${included:.2})"),
                unit: PriceUnit::Month,
                quantity: 1.0,
                unit_price: Some(-credit),
                monthly: round2(-credit),
                usage_based: true,
                price_not_found: false,
                unconfirmed: false,
                stale: false,
                price_id: p.plan.clone(),
                source: catalog
                    .price(p.plan.as_deref().unwrap_or(""))
                    .map(|x| x.source.clone()),
                captured: None,
                note: None,
            });
        }
    }
    let disk: f64 = units.iter().map(|u| u.disk_gb).sum();
    if disk > 0.0 {
        match &p.volume {
            Some(v) => lines.add(
                "storage",
                format!("volumes ({disk:.0} GB)"),
                v,
                disk,
                false,
                None,
            ),
            None => notes.push(format!(
                "{disk:.0} GB of persistent data has nowhere to live on this platform"
            )),
        }
    }
    if let Some(lb) = &p.lb
        && placement.load_balancer
    {
        lines.add(
            "load_balancer",
            "load balancer",
            lb,
            HOURS_PER_MONTH,
            false,
            None,
        );
    }
    if let Some(ip) = &p.ipv4 {
        let tasks: u32 = units.iter().map(|u| u.replicas).sum();
        lines.add(
            "other",
            format!("{tasks} task public IPv4 address(es)"),
            ip,
            tasks as f64 * HOURS_PER_MONTH,
            false,
            None,
        );
    }
    if let Some(eg) = &p.egress {
        lines.add("bandwidth", "internet egress", eg, w.egress_gb, true, None);
    }
}
