//! Reports for every example: one self-contained HTML file whose charts
//! carry the numbers the JSON output gives, that headless Chromium opens
//! without console errors or network requests; and the Markdown flavour
//! with its SVGs beside it.

use std::path::Path;
use std::process::Command;

const EXAMPLES: [&str; 5] = [
    "will-it-compile",
    "coding-platform",
    "automation-agents",
    "minsky-sessions",
    "picker-wheel",
];

fn dm(args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The text of every `<text>` element inside the figure with this id.
fn figure_texts(html: &str, id: &str) -> Vec<String> {
    let start = html
        .find(&format!("<figure id=\"{id}\""))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let end = start + html[start..].find("</figure>").unwrap();
    let fig = &html[start..end];
    assert!(fig.contains("<svg"), "figure {id} has no SVG");
    fig.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn every_example_report_carries_the_json_numbers_in_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    for ex in EXAMPLES {
        let app = format!("examples/{ex}/app.yaml");
        let out = dir.path().join(format!("{ex}.html"));
        let o = dm(&["report", &app, "-o", out.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let report = &v["report"];
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(
            !html.contains("<script") && !html.contains("<link") && !html.contains("src="),
            "{ex}: the report must not fetch or run anything"
        );
        let bars = figure_texts(&html, "cost-by-target");
        for b in report["bars"].as_array().unwrap() {
            // A bar with an unpriced line is a lower bound, and says so.
            let bound = if b["complete"] == true { "" } else { "≥ " };
            let label = format!("{bound}${:.2}", b["total"].as_f64().unwrap());
            assert!(
                bars.contains(&label),
                "{ex}: bar {} {label} missing from {bars:?}",
                b["target"]
            );
            assert!(
                bars.contains(&b["target"].as_str().unwrap().to_string()),
                "{ex}: axis label {}",
                b["target"]
            );
        }
        let lines = figure_texts(&html, "cost-by-users");
        for s in report["plan"]["growth_path"].as_array().unwrap() {
            if let (Some(t), Some(m)) = (s["target"].as_str(), s["monthly"].as_f64()) {
                let label = format!("{}: {t} ${m:.2}", s["users"]);
                assert!(
                    lines.contains(&label),
                    "{ex}: growth path mark `{label}` missing from {lines:?}"
                );
            }
        }
        for s in report["series"].as_array().unwrap() {
            assert!(
                lines.contains(&s["target"].as_str().unwrap().to_string()),
                "{ex}: legend {}",
                s["target"]
            );
        }
        // The fitness matrix: one row per tier and target, colour-coded.
        let rows = html.matches("<tr class=\"ready\" data-id").count()
            + html.matches("<tr class=\"limited\" data-id").count()
            + html.matches("<tr class=\"blocked\" data-id").count();
        let expected = report["fitness"]["tiers"].as_array().unwrap().len()
            + report["fitness"]["targets"].as_array().unwrap().len();
        assert_eq!(rows, expected, "{ex}");
        for section in [
            "id=\"recommendations\"",
            "id=\"sources\"",
            "id=\"checklist\"",
            "Secrets to set",
            "USD per month",
            "users (log scale)",
        ] {
            assert!(html.contains(section), "{ex}: missing {section}");
        }
        for src in report["sources"].as_array().unwrap() {
            assert!(html.contains(&src["captured"].as_str().unwrap().to_string()));
        }
        open_in_chromium(&out);
    }
}

/// Headless Chromium loads the file; its console must stay silent.
fn open_in_chromium(path: &Path) {
    let o = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("chromium (scripts/test.sh installs it)");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.matches("<svg").count() == 2,
        "{}: Chromium did not render both charts",
        path.display()
    );
    let log = String::from_utf8_lossy(&o.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{}: console output {console:?}",
        path.display()
    );
}

#[test]
fn markdown_report_writes_its_charts_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("plan.md");
    dm(&[
        "report",
        "examples/picker-wheel/app.yaml",
        "-o",
        md.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&md).unwrap();
    for svg in ["plan-cost-by-target.svg", "plan-cost-by-users.svg"] {
        assert!(text.contains(&format!("]({svg})")), "{svg} is not linked");
        let body = std::fs::read_to_string(dir.path().join(svg)).unwrap();
        assert!(
            body.starts_with("<svg") && body.contains("USD per month"),
            "{svg}"
        );
    }
    assert!(text.contains("## Price sources") && text.contains("### Operational checklist"));
    let bad = Command::new(env!("CARGO_BIN_EXE_deployment-manager"))
        .args(["report", "examples/picker-wheel/app.yaml", "-o"])
        .arg(dir.path().join("plan.pdf"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(!dir.path().join("plan.pdf").exists());
}
