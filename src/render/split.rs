//! A split app's files: each group's target renders its part into a
//! folder named after the target, and `SPLIT.md` and `split.json` at the
//! top say what runs where, what each part costs, and which settings carry
//! the calls that now cross between providers.

use super::{GeneratedFile, Options, RenderError, render_from};
use crate::analyse::fitness::Engine;
use crate::analyse::split::{self, Split, SplitEstimate};
use crate::describe::app::App;
use std::fmt::Write;

pub fn render(
    engine: &Engine,
    app: &App,
    split: &Split,
    options: &Options,
) -> Result<Vec<GeneratedFile>, RenderError> {
    let users = options.users.unwrap_or_else(|| app.users());
    let judged = split::evaluate(engine, app, split, users, options.strategy)
        .map_err(|e| RenderError::UnknownTarget(e.0))?;
    let mut files = Vec::new();
    for (i, g) in split.groups.iter().enumerate() {
        let part = split.part(app, i);
        for f in render_from(engine, &part, &g.target, options)? {
            files.push(GeneratedFile::new(
                format!("{}/{}", g.target, f.path),
                f.content,
            ));
        }
    }
    files.push(GeneratedFile::new("SPLIT.md", guide(app, &judged)));
    files.push(GeneratedFile::new(
        "split.json",
        serde_json::to_string_pretty(&summary(&judged)).expect("plain data") + "\n",
    ));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The machine-readable record: groups, their targets and prices, the
/// crossings.
fn summary(j: &SplitEstimate) -> serde_json::Value {
    serde_json::json!({
        "app": j.app,
        "users": j.users,
        "monthly_total": (j.total * 100.0).round() / 100.0,
        "complete": !j.incomplete,
        "groups": j.groups.iter().map(|g| serde_json::json!({
            "target": g.group.target,
            "folder": format!("{}/", g.group.target),
            "services": g.group.services,
            "dependencies": g.group.dependencies,
            "sessions": g.group.sessions,
            "egress_share": g.group.egress_share,
            "fitness": g.assessment.score.overall,
            "monthly": (g.estimate.total * 100.0).round() / 100.0,
            "complete": g.estimate.complete,
        })).collect::<Vec<_>>(),
        "crossings": j.crossings,
    })
}

fn guide(app: &App, j: &SplitEstimate) -> String {
    let mut o = format!(
        "# {}: split over {} targets\n\nEach folder holds one part of the app for its target, with its own DEPLOY.md and placement.json. Priced at {} users.\n\n| folder | target | services | dependencies | per month |\n|---|---|---|---|---:|\n",
        app.name,
        j.groups.len(),
        j.users
    );
    for g in &j.groups {
        let deps = if g.group.dependencies.is_empty() {
            "-".to_string()
        } else {
            g.group.dependencies.join(", ")
        };
        let _ = writeln!(
            o,
            "| `{}/` | {} | {} | {} | {}${:.2} |",
            g.group.target,
            g.estimate.target_name,
            g.group.services.join(", "),
            deps,
            if g.estimate.incomplete { "≥ " } else { "" },
            g.estimate.total
        );
    }
    let _ = writeln!(
        o,
        "| | | | **total** | **{}${:.2}** |\n",
        if j.incomplete { "≥ " } else { "" },
        j.total
    );
    o.push_str("## Calls between the parts\n\n");
    if j.crossings.is_empty() {
        o.push_str("No service of one part names a service or dependency of another: no address to pass between providers. A browser that calls another part's public address may still need that part to allow its origin (CORS).\n\n");
    } else {
        for c in &j.crossings {
            let _ = writeln!(o, "- {}", c.describe());
        }
        o.push_str("\nThese settings are secrets of the calling part: set them on its target with the other part's public HTTPS address once that part is deployed. Calls between providers cross the internet: they need TLS, and cost egress on the side that answers.\n\n");
    }
    o.push_str("## Order\n\n");
    let mut order: Vec<(usize, &split::GroupEstimate)> = j.groups.iter().enumerate().collect();
    // The parts others call go first, so their addresses are known.
    order.sort_by_key(|(i, _)| !j.crossings.iter().any(|c| c.to_group == *i));
    for (n, (_, g)) in order.iter().enumerate() {
        let _ = writeln!(
            o,
            "{}. Deploy `{}/` to {} (see its DEPLOY.md).",
            n + 1,
            g.group.target,
            g.estimate.target_name
        );
    }
    o
}
