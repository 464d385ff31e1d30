//! The report in Markdown, with the same SVG charts written as files beside
//! it and linked by relative path.

use super::Report;
use std::fmt::Write;

pub fn render(r: &Report, bar_file: &str, line_file: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# {}: where to run it, what it costs, how to get there\n",
        r.app
    );
    let _ = writeln!(
        o,
        "Report by deployment-manager {}, {}.\n",
        env!("CARGO_PKG_VERSION"),
        r.generated
    );
    o.push_str("## Recommendations\n\n| use case | target | per month | at users | why |\n|---|---|---:|---:|---|\n");
    for rec in &r.plan.recommendations {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            rec.use_case,
            rec.placed_on(),
            rec.monthly.map_or("-".into(), |m| format!("${m:.2}")),
            rec.users,
            rec.reasons.join("; ").replace('|', "\\|")
        );
    }
    o.push_str(
        "\n## Fitness\n\n| tier or target | score | operations | status | blockers |\n|---|---:|---|---|---|\n",
    );
    for a in r.fitness.tiers.iter().chain(&r.fitness.targets) {
        let b: Vec<String> = a
            .blockers
            .iter()
            .map(|b| match &b.remedy {
                Some(rem) => format!("{} (remedy: {rem})", b.message),
                None => b.message.clone(),
            })
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {:?} | {} |",
            a.name,
            a.score.overall,
            crate::report::operations_cell(a),
            a.status,
            b.join("<br>").replace('|', "\\|")
        );
    }
    let _ = writeln!(
        o,
        "\n## Cost\n\n![Monthly cost per target at {} users]({bar_file})\n\n![Monthly cost as users grow]({line_file})\n",
        r.users
    );
    o.push_str("| target |");
    for l in &r.plan.levels {
        let _ = write!(o, " {l} users |");
    }
    o.push_str("\n|---|");
    o.push_str(&"---:|".repeat(r.plan.levels.len()));
    o.push('\n');
    for row in &r.plan.rows {
        let _ = write!(o, "| {} |", row.name);
        for (i, m) in row.monthly.iter().enumerate() {
            let bound = if row.incomplete.get(i).copied().unwrap_or(false) {
                "≥ "
            } else {
                ""
            };
            let _ = write!(o, " {bound}${m:.2} |");
        }
        o.push('\n');
    }
    o.push_str("\n≥ marks a lower bound: a price the catalog lacks is not counted as zero.\n");
    o.push_str("\n### Growth path\n\n");
    for s in &r.plan.growth_path {
        let _ = writeln!(
            o,
            "1. {} users: **{}** {} — {}",
            s.users,
            s.target.as_deref().unwrap_or("none fits"),
            s.monthly
                .map_or(String::new(), |m| format!("${m:.2}/month")),
            s.why
        );
    }
    if !r.plan.warnings.is_empty() {
        o.push_str("\n### Capacity\n\n");
        for w in &r.plan.warnings {
            let _ = writeln!(o, "- {w}");
        }
    }
    let _ = writeln!(
        o,
        "\n## Chosen target: {}\n",
        r.chosen.as_deref().unwrap_or("none")
    );
    if let Some(n) = &r.files_note {
        let _ = writeln!(o, "{n}\n");
    }
    for f in &r.files {
        let _ = writeln!(o, "- `{f}`");
    }
    o.push_str("\n### Secrets to set\n\n");
    if r.secrets.is_empty() {
        o.push_str("None.\n");
    }
    for s in &r.secrets {
        let _ = writeln!(
            o,
            "- `{}` ({}, as {}; used by {})",
            s.name,
            s.class,
            s.target,
            s.used_by.join(", ")
        );
    }
    o.push_str("\n### Operational checklist\n\n");
    for (what, how) in &r.checklist {
        let _ = writeln!(o, "- **{what}**: {how}");
    }
    o.push_str("\n## Price sources\n\n| price | source | read on |\n|---|---|---|\n");
    for s in &r.sources {
        let _ = writeln!(
            o,
            "| `{}`{}{} | {} | {} |",
            s.price,
            if s.unconfirmed { " (unconfirmed)" } else { "" },
            if s.stale { " **(stale)**" } else { "" },
            s.source,
            s.captured
        );
    }
    o
}
