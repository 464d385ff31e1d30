//! The report as one self-contained HTML file: inline CSS (light and dark),
//! inline SVG charts, no scripts, nothing fetched.

use super::Report;
use crate::analyse::fitness::{Assessment, Status};
use std::fmt::Write;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub const STYLE: &str = r##"
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de;
        --ready: #d3f5dc; --limited: #fff1c2; --blocked: #ffd7d5; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9da7b3; --line: #30363d;
          --ready: #1f4d2b; --limited: #4d3d12; --blocked: #5c1f1c; }
}
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1, h2, h3 { line-height: 1.2; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; }
th, td { border: 1px solid var(--line); padding: .3em .5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ready { background: var(--ready); } .limited { background: var(--limited); } .blocked { background: var(--blocked); }
.muted { color: var(--muted); }
figure { margin: 1.5em 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
/* plotters draws text and axes in black: follow the page colour instead */
figure svg text { fill: var(--fg) !important; }
figure svg [stroke="#000000"], figure svg line[stroke="#000000"] { stroke: var(--fg); }
figure svg polyline[stroke="#000000"] { stroke: var(--fg); }
figure svg rect[fill="#FFFFFF"], figure svg rect[fill="#ffffff"] { fill: transparent; }
code { font-size: 90%; }
"##;

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Ready => "ready",
        Status::Limited => "limited",
        Status::Blocked => "blocked",
    }
}

pub fn matrix(out: &mut String, title: &str, rows: &[Assessment]) {
    let _ = write!(
        out,
        "<h3>{title}</h3>\n<table class=\"matrix\"><thead><tr><th>{}</th><th>score</th><th>operations</th><th>verdict</th><th>blockers and remedies</th><th>warnings</th></tr></thead><tbody>\n",
        if title == "Tiers" { "tier" } else { "target" }
    );
    for a in rows {
        let blockers: Vec<String> = a
            .blockers
            .iter()
            .map(|b| {
                let mut s = esc(&b.message);
                if let Some(r) = &b.remedy {
                    let _ = write!(s, " <span class=\"muted\">Remedy: {}</span>", esc(r));
                }
                for w in &b.swaps {
                    let _ = write!(
                        s,
                        " <span class=\"muted\">Swap {} → {} ({}).</span>",
                        esc(&w.from),
                        esc(&w.to),
                        esc(&w.relationship)
                    );
                }
                s
            })
            .collect();
        let warnings: Vec<String> = a.warnings.iter().map(|w| esc(&w.message)).collect();
        let _ = writeln!(
            out,
            "<tr class=\"{cls}\" data-id=\"{id}\" data-score=\"{score}\"><td>{name}</td><td class=\"num\">{score}</td><td>{ops}</td><td>{verdict}</td><td>{b}</td><td>{w}</td></tr>",
            cls = status_class(a.status),
            id = esc(&a.id),
            name = esc(&a.name),
            score = a.score.overall,
            ops = esc(&crate::report::operations_cell(a)),
            verdict = esc(&a.verdict),
            b = blockers.join("<br>"),
            w = warnings.join("<br>"),
        );
    }
    out.push_str("</tbody></table>\n");
}

pub fn render(r: &Report, bar_svg: &str, line_svg: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{app}: where to run it and what it costs</title>\n<style>{STYLE}</style></head><body>\n<h1>{app}: where to run it, what it costs, how to get there</h1>\n<p class=\"muted\">Report by deployment-manager {ver}, {date}. Prices from the built-in catalog; every source and date is listed at the end.</p>\n",
        app = esc(&r.app),
        ver = env!("CARGO_PKG_VERSION"),
        date = r.generated
    );
    // Recommendation first: it is what most readers came for.
    o.push_str("<h2 id=\"recommendations\">Recommendations</h2>\n<table><thead><tr><th>use case</th><th>target</th><th>per month</th><th>at users</th><th>why</th></tr></thead><tbody>\n");
    for rec in &r.plan.recommendations {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(rec.use_case),
            esc(&rec.placed_on()),
            rec.monthly.map_or("-".into(), |m| format!("${m:.2}")),
            rec.users,
            esc(&rec.reasons.join("; "))
        );
    }
    o.push_str("</tbody></table>\n");

    o.push_str("<h2 id=\"fitness\">Fitness</h2>\n<p>Green: ready. Yellow: runs with limits. Red: blocked, with the remedy or the dependency swap that unblocks it.</p>\n");
    matrix(&mut o, "Tiers", &r.fitness.tiers);
    matrix(&mut o, "Targets", &r.fitness.targets);

    let _ = write!(
        o,
        "<h2 id=\"cost\">Cost</h2>\n<figure id=\"cost-by-target\" data-users=\"{}\">{bar_svg}</figure>\n<figure id=\"cost-by-users\">{line_svg}</figure>\n",
        r.users
    );
    o.push_str("<h3>Monthly cost by target and users</h3>\n<table id=\"cost-table\"><thead><tr><th>target</th><th>fitness</th>");
    for l in &r.plan.levels {
        let _ = write!(o, "<th>{l} users</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for row in &r.plan.rows {
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td>",
            status_class(row.status),
            esc(&row.name),
            row.fitness
        );
        for (i, m) in row.monthly.iter().enumerate() {
            let bound = if row.incomplete.get(i).copied().unwrap_or(false) {
                "≥ "
            } else {
                ""
            };
            let _ = write!(o, "<td class=\"num\">{bound}${m:.2}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n<p class=\"muted\">≥ marks a lower bound: a price the catalog lacks is not counted as zero.</p>\n");
    o.push_str("<h3>Growth path</h3>\n<ol>\n");
    for s in &r.plan.growth_path {
        let _ = writeln!(
            o,
            "<li>{} users: <strong>{}</strong> {} — {}</li>",
            s.users,
            esc(s.target.as_deref().unwrap_or("none fits")),
            s.monthly
                .map_or(String::new(), |m| format!("${m:.2}/month")),
            esc(&s.why)
        );
    }
    o.push_str("</ol>\n");
    if !r.plan.warnings.is_empty() {
        o.push_str("<h3>Capacity</h3>\n<ul id=\"capacity\">\n");
        for w in &r.plan.warnings {
            let _ = writeln!(o, "<li>{}</li>", esc(w));
        }
        o.push_str("</ul>\n");
    }

    let _ = writeln!(
        o,
        "<h2 id=\"target\">Chosen target: {}</h2>",
        esc(r.chosen.as_deref().unwrap_or("none"))
    );
    if let Some(n) = &r.files_note {
        let _ = writeln!(o, "<p>{}</p>", esc(n));
    }
    if !r.files.is_empty() {
        let _ = writeln!(
            o,
            "<p>Generate them with <code>deployment-manager generate APP --target {} --out deploy/</code>:</p>\n<ul>",
            esc(r.chosen.as_deref().unwrap_or(""))
        );
        for f in &r.files {
            let _ = writeln!(o, "<li><code>{}</code></li>", esc(f));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h3>Secrets to set</h3>\n");
    if r.secrets.is_empty() {
        o.push_str("<p>None.</p>\n");
    } else {
        o.push_str("<table><thead><tr><th>name</th><th>class</th><th>delivered as</th><th>used by</th></tr></thead><tbody>\n");
        for s in &r.secrets {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.name),
                esc(s.class),
                esc(s.target),
                esc(&s.used_by.join(", "))
            );
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("<h3>Operational checklist</h3>\n<ul id=\"checklist\">\n");
    for (what, how) in &r.checklist {
        let _ = writeln!(o, "<li><strong>{}</strong>: {}</li>", esc(what), esc(how));
    }
    o.push_str("</ul>\n<h2 id=\"sources\">Price sources</h2>\n<table><thead><tr><th>price</th><th>source</th><th>read on</th></tr></thead><tbody>\n");
    for s in &r.sources {
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code>{}{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.price),
            if s.unconfirmed { " (unconfirmed)" } else { "" },
            if s.stale {
                " <strong>(stale)</strong>"
            } else {
                ""
            },
            esc(&s.source),
            esc(&s.captured)
        );
    }
    o.push_str("</tbody></table>\n</body></html>\n");
    o
}
