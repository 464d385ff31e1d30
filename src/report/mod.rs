//! Reports: everything the planning core knows about one app, in one
//! self-contained file a person can read — the fitness matrix, cost
//! charts, the growth path, the recommendation, the chosen target's files,
//! secrets to set, the operational checklist and every price's source.

pub mod charts;
pub mod html;
pub mod markdown;

use crate::analyse::cost::{CostLine, Strategy};
use crate::analyse::fitness::{Engine, FitnessReport};
use crate::analyse::plan::{self, Plan};
use crate::describe::app::App;
use crate::describe::secrets::{SecretSpec, secrets_list};
use serde::Serialize;
use std::collections::BTreeMap;

pub const LEVELS: [u32; 6] = [2, 10, 50, 200, 1000, 10_000];

#[derive(Debug, Serialize)]
pub struct PriceSource {
    pub price: String,
    pub source: String,
    pub captured: String,
    pub unconfirmed: bool,
    /// Read more than a year ago.
    pub stale: bool,
}

/// One bar of the cost-by-target chart: a total and its breakdown.
#[derive(Debug, Serialize, Clone)]
pub struct Bar {
    pub target: String,
    pub name: String,
    pub total: f64,
    /// Every line is priced; otherwise `total` is a lower bound.
    pub complete: bool,
    pub breakdown: BTreeMap<String, f64>,
}

/// One line of the cost-by-users chart.
#[derive(Debug, Serialize, Clone)]
pub struct Series {
    pub target: String,
    pub name: String,
    /// (users, monthly USD)
    pub points: Vec<(u32, f64)>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub app: String,
    pub generated: String,
    pub users: u32,
    pub fitness: FitnessReport,
    pub plan: Plan,
    /// Target the files and checklist are for.
    pub chosen: Option<String>,
    pub files: Vec<String>,
    pub files_note: Option<String>,
    pub secrets: Vec<SecretSpec>,
    pub checklist: Vec<(String, String)>,
    pub sources: Vec<PriceSource>,
    pub bars: Vec<Bar>,
    pub series: Vec<Series>,
}

/// The level of the bar chart: the app's expected users, rounded to the
/// nearest planned level.
fn chart_level(app: &App, users: Option<u32>) -> usize {
    let want = users
        .or_else(|| app.usage.as_ref().and_then(|u| u.users))
        .unwrap_or(200);
    LEVELS
        .iter()
        .enumerate()
        .min_by_key(|(_, l)| (**l as i64 - want as i64).abs())
        .map_or(3, |(i, _)| i)
}

fn category(l: &CostLine) -> String {
    l.category.to_string()
}

pub fn build(engine: &Engine, app: &App, chosen: Option<&str>, users: Option<u32>) -> Report {
    let fitness = engine.report(app, None, None);
    let plan = plan::plan(engine, app, &LEVELS, Strategy::Rolling);
    let level = chart_level(app, users);
    let fits = |t: &str| {
        plan.rows
            .iter()
            .any(|r| r.target == t && r.status != crate::analyse::fitness::Status::Blocked)
    };
    // `estimates` holds one row per target, one estimate per level.
    let mut bars: Vec<Bar> = plan
        .estimates
        .iter()
        .filter_map(|per_level| per_level.get(level))
        .filter(|e| fits(&e.target))
        .map(|e| {
            let mut breakdown = BTreeMap::new();
            for l in &e.lines {
                *breakdown.entry(category(l)).or_insert(0.0) += l.monthly;
            }
            Bar {
                target: e.target.clone(),
                name: e.target_name.clone(),
                total: e.total,
                complete: e.complete,
                breakdown,
            }
        })
        .collect();
    bars.sort_by(|a, b| a.total.total_cmp(&b.total).then(a.target.cmp(&b.target)));
    // The six cheapest fitting targets at the planned level keep the line
    // chart readable; the table lists them all.
    let series: Vec<Series> = bars
        .iter()
        .take(6)
        .map(|b| Series {
            target: b.target.clone(),
            name: b.name.clone(),
            points: plan
                .estimates
                .iter()
                .find(|per_level| per_level.first().is_some_and(|e| e.target == b.target))
                .map(|per_level| per_level.iter().map(|e| (e.users, e.total)).collect())
                .unwrap_or_default(),
        })
        .collect();
    let chosen = chosen.map(String::from).or_else(|| {
        plan.recommendations
            .iter()
            .find(|r| r.use_case == "small_team")
            .or(plan.recommendations.first())
            .and_then(|r| r.target.clone())
    });
    let (files, files_note) = match &chosen {
        Some(t) => match crate::render::render_from(
            engine,
            app,
            t,
            &crate::render::Options {
                users,
                ..Default::default()
            },
        ) {
            Ok(f) => (f.into_iter().map(|f| f.path).collect(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
        None => (Vec::new(), Some("no target fits this app".into())),
    };
    let mut sources: BTreeMap<String, PriceSource> = BTreeMap::new();
    for e in plan.estimates.iter().flatten() {
        for l in &e.lines {
            if let (Some(id), Some(src)) = (&l.price_id, &l.source) {
                sources.entry(id.clone()).or_insert_with(|| PriceSource {
                    price: id.clone(),
                    source: src.clone(),
                    captured: l.captured.clone().unwrap_or_default(),
                    unconfirmed: l.unconfirmed,
                    stale: l.stale,
                });
            }
        }
    }
    Report {
        app: app.name.clone(),
        generated: jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
        users: LEVELS[level],
        checklist: checklist(app),
        secrets: secrets_list(app),
        fitness,
        plan,
        chosen,
        files,
        files_note,
        sources: sources.into_values().collect(),
        bars,
        series,
    }
}

/// What has to be true before real users arrive, whatever the target.
fn checklist(app: &App) -> Vec<(String, String)> {
    let mut c = vec![
        (
            "TLS".to_string(),
            "Serve only HTTPS; let the platform or Caddy obtain and renew certificates, redirect HTTP.".to_string(),
        ),
        (
            "Firewall".into(),
            "Open 80/443 only (and SSH from your address); databases and caches never listen publicly.".into(),
        ),
        (
            "Monitoring".into(),
            "Run `deployment-manager monitor` (or the platform's checks) with a webhook that reaches a person.".into(),
        ),
        (
            "Logs".into(),
            "Keep at least 14 days; container logs are rotated at 3 × 10 MB per container.".into(),
        ),
    ];
    if !app.dependencies.is_empty() || app.services.values().any(|s| !s.volumes.is_empty()) {
        c.push((
            "Backups and a tested restore".into(),
            "Nightly dumps of every database and volume, kept off the host, and a restore rehearsed on a scratch copy before you need it.".into(),
        ));
    }
    if !app.sessions.is_empty() || app.services.values().any(|s| s.traits.spawns_containers) {
        c.push((
            "Session containers".into(),
            "Cap them per user and in total, give each CPU, memory and time limits, no network unless needed, and never the raw Docker socket.".into(),
        ));
    }
    c
}

/// The files of a report at `path`: one HTML file, or Markdown with its
/// two SVG charts beside it. Returns (path, content) pairs.
pub fn files(
    r: &Report,
    path: &std::path::Path,
) -> Result<Vec<(std::path::PathBuf, String)>, String> {
    let bar = charts::cost_by_target(&r.bars, r.users)?;
    let line = charts::cost_by_users(&r.series, &r.plan.growth_path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("html");
    match ext {
        "html" | "htm" => Ok(vec![(path.to_path_buf(), html::render(r, &bar, &line))]),
        "md" | "markdown" => {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("report");
            let bar_name = format!("{stem}-cost-by-target.svg");
            let line_name = format!("{stem}-cost-by-users.svg");
            let dir = path.parent().unwrap_or(std::path::Path::new(""));
            Ok(vec![
                (
                    path.to_path_buf(),
                    markdown::render(r, &bar_name, &line_name),
                ),
                (dir.join(bar_name), bar),
                (dir.join(line_name), line),
            ])
        }
        other => Err(format!("reports are .html or .md, not .{other}")),
    }
}

/// "70/100 · hard · security medium · production-ready": the operations
/// score beside fitness, as seed 002 compares environments.
pub fn operations_cell(a: &crate::analyse::fitness::Assessment) -> String {
    let Some(o) = &a.operations else {
        return "-".into();
    };
    format!(
        "{}/100 · {} · security {} · {}",
        o.score,
        o.difficulty.as_str(),
        o.security.as_str(),
        o.production_ready.describe()
    )
}
