//! `--split`: fitness and cost of an app whose services run on several
//! targets, group by group (the files are written by `generate --split`).

use super::output::{json, money, paint, score_cell};
use super::{Ctx, Failure, Res, print_assessment_findings, print_estimate, total_of};
use crate::analyse::cost::Strategy;
use crate::analyse::fitness::Status;
use crate::analyse::split::{self, Move, Split};
use crate::catalog::Catalog;
use crate::describe::app::App;

/// The split the options ask for, every target checked against the catalog.
pub(crate) fn parse(
    catalog: &Catalog,
    app: &App,
    main: &str,
    specs: &[String],
) -> Result<Split, Failure> {
    let moves: Vec<Move> = specs
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e: split::SplitError| Failure::input(e.to_string()))?;
    for t in std::iter::once(main).chain(moves.iter().map(|m| m.target.as_str())) {
        if catalog.target(t).is_none() {
            return Err(Failure::input(format!("unknown target `{t}`")));
        }
    }
    Split::new(app, main, &moves).map_err(|e| Failure::input(e.to_string()))
}

fn judge(
    ctx: &Ctx,
    key: &str,
    target: Option<&str>,
    specs: &[String],
    users: Option<u32>,
    strategy: Strategy,
) -> Result<(App, split::SplitEstimate), Failure> {
    let (app, profile, _) = ctx.load_app(key)?;
    let settings = profile.as_ref().map(|p| &p.settings);
    let main = match target {
        Some(t) => t.to_string(),
        None => settings
            .and_then(|s| s.target_in(&ctx.session.catalog))
            .map(|t| t.id.clone())
            .ok_or_else(|| {
                Failure::input("--split needs --target (where the rest of the app runs)")
            })?,
    };
    let users = users
        .or_else(|| settings.and_then(|s| s.users))
        .unwrap_or_else(|| app.users());
    let sp = parse(&ctx.session.catalog, &app, &main, specs)?;
    let judged = split::evaluate(&ctx.engine(), &app, &sp, users, strategy)
        .map_err(|e| Failure::input(e.to_string()))?;
    Ok((app, judged))
}

pub(crate) fn fitness_cmd(ctx: &Ctx, key: &str, target: &str, specs: &[String], fail: bool) -> Res {
    let (app, j) = judge(ctx, key, Some(target), specs, None, Strategy::default())?;
    if ctx.json {
        json(&serde_json::json!({
            "app": app.name,
            "groups": j.groups.iter().map(|g| serde_json::json!({
                "target": g.group.target,
                "services": g.group.services,
                "dependencies": g.group.dependencies,
                "sessions": g.group.sessions,
                "assessment": g.assessment,
            })).collect::<Vec<_>>(),
            "crossings": j.crossings,
        }));
    } else {
        println!(
            "Fitness of {}, split over {} targets",
            paint(&app.name, "1"),
            j.groups.len()
        );
        for g in &j.groups {
            let a = &g.assessment;
            println!(
                "\n{} on {}: {} ({}){}",
                paint(&g.group.services.join(", "), "1"),
                a.name,
                score_cell(a.score.overall, a.status == Status::Blocked),
                a.verdict,
                a.operations
                    .as_ref()
                    .map_or(String::new(), |o| format!(", operations {}/100", o.score))
            );
            print_assessment_findings(a);
        }
        print_crossings(&j);
    }
    if fail && j.blocked {
        return Err(Failure::explained("blockers found"));
    }
    Ok(())
}

pub(crate) fn estimate_cmd(
    ctx: &Ctx,
    key: &str,
    target: Option<&str>,
    specs: &[String],
    users: Option<u32>,
    strategy: &str,
    verbose: bool,
) -> Res {
    let strategy: Strategy = strategy.parse().map_err(Failure::input)?;
    let (app, j) = judge(ctx, key, target, specs, users, strategy)?;
    if ctx.json {
        json(&j);
        return Ok(());
    }
    for (i, g) in j.groups.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_estimate(
            &format!("{} ({})", app.name, g.group.services.join(", ")),
            &g.estimate,
            verbose,
        );
        if g.assessment.status == Status::Blocked {
            println!(
                "{} {} cannot run {}: see `fitness --split`",
                paint("blocked:", "31"),
                g.assessment.name,
                g.group.services.join(", ")
            );
        }
    }
    let total = j
        .groups
        .iter()
        .map(|g| total_of(&g.estimate))
        .collect::<Vec<_>>();
    println!(
        "\n{} split over {} targets at {} users: {} / month ({})",
        app.name,
        j.groups.len(),
        j.users,
        paint(
            &if j.incomplete {
                format!("≥ {}", money(j.total))
            } else {
                money(j.total)
            },
            "1"
        ),
        total.join(" + ")
    );
    print_crossings(&j);
    Ok(())
}

fn print_crossings(j: &split::SplitEstimate) {
    for c in &j.crossings {
        println!("crossing: {}", c.describe());
    }
}
