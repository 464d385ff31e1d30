//! `validate`: schema and meaning of a profile, as named checks. Each issue
//! has a path, a message, a hint and a severity. A check that could not run
//! says so (`not_run`) and is never counted as passed.

use super::cost::{self, Strategy};
use super::fitness::{Engine, FIT_THRESHOLD, Status, TIERS, swaps};
use crate::catalog::Catalog;
use crate::describe::app::App;
use crate::describe::secrets_list;
use crate::state::Profile;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Debug, Serialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
    pub hint: String,
    /// error | warn | info
    pub severity: &'static str,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    NotRun,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub issues: Vec<Issue>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Validation {
    pub profile: String,
    pub ok: bool,
    pub passed: usize,
    pub failed: usize,
    pub not_run: usize,
    pub checks: Vec<Check>,
}

fn issue(
    path: impl Into<String>,
    message: impl Into<String>,
    hint: impl Into<String>,
    severity: &'static str,
) -> Issue {
    Issue {
        path: path.into(),
        message: message.into(),
        hint: hint.into(),
        severity,
    }
}

fn check(id: &'static str, issues: Vec<Issue>) -> Check {
    let status = if issues.iter().any(|i| i.severity == "error") {
        CheckStatus::Fail
    } else if issues.iter().any(|i| i.severity == "warn") {
        CheckStatus::Warn
    } else {
        CheckStatus::Pass
    };
    Check {
        id,
        status,
        reason: None,
        issues,
    }
}

fn not_run(id: &'static str, reason: impl Into<String>) -> Check {
    Check {
        id,
        status: CheckStatus::NotRun,
        reason: Some(reason.into()),
        issues: Vec::new(),
    }
}

/// `provided` are the secret names available at deploy time (environment or
/// an env file); only names are compared, values are never read into state.
pub fn validate(
    catalog: &Catalog,
    engine: &Engine,
    p: &Profile,
    provided: &HashMap<String, bool>,
) -> Validation {
    let mut checks = Vec::new();
    let app = match swaps::effective(p) {
        Ok(a) => a,
        Err(e) => {
            checks.push(check(
                "schema",
                vec![issue(
                    "swaps",
                    e,
                    "remove the swap with `profile rollback`",
                    "error",
                )],
            ));
            return finish(p, checks);
        }
    };
    let text = serde_saphyr::to_string(&app).unwrap_or_default();
    checks.push(
        match crate::describe::load::check_app(&app, "app.yaml", &text) {
            Ok(()) => check("schema", Vec::new()),
            Err(e) => check(
                "schema",
                vec![issue(
                    e.label.clone(),
                    e.message.clone(),
                    e.help
                        .clone()
                        .unwrap_or_else(|| "fix the app description and re-import".into()),
                    "error",
                )],
            ),
        },
    );
    checks.push(check("ports", port_issues(&app, p)));
    checks.push(check("resource_limits", limit_issues(&app)));

    let secrets = secrets_list(&app);
    checks.push(check(
        "secrets_provided",
        secrets
            .iter()
            .filter(|s| !provided.get(&s.name).copied().unwrap_or(false))
            .map(|s| {
                let sev = if s.class == "per_install_generated" {
                    "info"
                } else {
                    "warn"
                };
                issue(
                    format!("secrets.{}", s.name),
                    format!("secret `{}` ({}) is not provided", s.name, s.class),
                    format!("export {} or pass it in --env-file at deploy time", s.name),
                    sev,
                )
            })
            .collect(),
    ));

    let tier = TIERS[(p.tier as usize).clamp(1, 5) - 1];
    let report = engine.report(&app, Some(tier), None);
    let t = &report.tiers[0];
    let mut fit = Vec::new();
    if t.score.overall < FIT_THRESHOLD {
        fit.push(issue(
            format!("tier.{}", tier.key),
            format!(
                "fitness {} is under the {} threshold of {FIT_THRESHOLD}",
                t.score.overall, tier.key
            ),
            "run `fitness` to see what costs points; apply swaps or pick another tier",
            "error",
        ));
    }
    checks.push(check("fitness_threshold", fit));
    let applied: BTreeSet<&str> = p.swaps.iter().map(|s| s.from.as_str()).collect();
    let mut swaps_needed = Vec::new();
    for f in t
        .blockers
        .iter()
        .chain(t.warnings.iter())
        .filter(|f| !f.swaps.is_empty())
    {
        if f.swaps.iter().any(|s| applied.contains(s.from.as_str())) {
            continue;
        }
        let best = &f.swaps[0];
        let sev = if t
            .blockers
            .iter()
            .any(|b| b.rule == f.rule && b.component == f.component)
        {
            "error"
        } else {
            "warn"
        };
        swaps_needed.push(issue(
            format!("dependencies.{}", f.component),
            f.message.clone(),
            format!(
                "deployment-manager swaps apply {} {} {}",
                p.name, best.from, best.to
            ),
            sev,
        ));
    }
    checks.push(check("dependency_swaps", swaps_needed));

    match p.settings.target_in(catalog) {
        None => {
            checks.push(not_run(
                "target_support",
                "no target: set `target` or `provider` on the profile",
            ));
            checks.push(not_run("pricing", "no target to price"));
        }
        Some(target) => {
            let comps = super::fitness::facts::components(&app);
            let a = engine.assess_target(&comps, target);
            let mut issues: Vec<Issue> = a
                .blockers
                .iter()
                .map(|b| {
                    issue(
                        format!("target.{}.{}", target.id, b.component),
                        b.message.clone(),
                        b.remedy
                            .clone()
                            .unwrap_or_else(|| "choose another target or change the app".into()),
                        "error",
                    )
                })
                .collect();
            if a.status != Status::Blocked && a.score.overall < FIT_THRESHOLD {
                issues.push(issue(
                    format!("target.{}", target.id),
                    format!(
                        "fitness {} on {} is under {FIT_THRESHOLD}",
                        a.score.overall, target.name
                    ),
                    "see `fitness --target`",
                    "error",
                ));
            }
            checks.push(check("target_support", issues));
            let e = cost::estimate(catalog, &app, target, app.users(), Strategy::Rolling);
            let mut issues = Vec::new();
            for l in e.lines.iter().filter(|l| l.price_not_found) {
                issues.push(issue(
                    format!("cost.{}", l.category),
                    format!("no catalog price for `{}`", l.name),
                    "add it with --catalog FILE",
                    "warn",
                ));
            }
            if e.uses_unconfirmed_prices {
                issues.push(issue(
                    "cost",
                    "the estimate uses UNCONFIRMED prices",
                    "check them against the provider's page",
                    "info",
                ));
            }
            checks.push(check("pricing", issues));
        }
    }
    finish(p, checks)
}

fn finish(p: &Profile, checks: Vec<Check>) -> Validation {
    let failed = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    let not_run = checks
        .iter()
        .filter(|c| c.status == CheckStatus::NotRun)
        .count();
    let passed = checks
        .iter()
        .filter(|c| matches!(c.status, CheckStatus::Pass | CheckStatus::Warn))
        .count();
    Validation {
        profile: p.name.clone(),
        ok: failed == 0,
        passed,
        failed,
        not_run,
        checks,
    }
}

fn port_issues(app: &App, p: &Profile) -> Vec<Issue> {
    let mut out = Vec::new();
    let depended: BTreeSet<&str> = app
        .services
        .values()
        .flat_map(|s| s.depends_on.iter().map(String::as_str))
        .collect();
    for (name, s) in &app.services {
        let ports: BTreeSet<u16> = s.ports.iter().map(|p| p.port).collect();
        if let Some(h) = &s.health {
            let hp = h
                .tcp_port()
                .or(h.port)
                .or_else(|| h.http.as_ref().and(s.ports.first().map(|p| p.port)));
            match hp {
                Some(port) if !ports.contains(&port) => out.push(issue(
                    format!("services.{name}.health"),
                    format!("health check uses port {port}, which `{name}` does not expose"),
                    "add the port under `ports` or fix the check",
                    "error",
                )),
                None if h.http.is_some() => out.push(issue(
                    format!("services.{name}.health.http"),
                    format!("`{name}` has an HTTP health check but no port"),
                    "add a port",
                    "error",
                )),
                _ => {}
            }
        }
        if depended.contains(name.as_str()) && s.ports.is_empty() {
            out.push(issue(
                format!("services.{name}.ports"),
                format!("other services depend on `{name}` but it exposes no port"),
                "add the port it listens on",
                "warn",
            ));
        }
    }
    let domain = p.settings.domain.as_deref().or(app.domain.as_deref());
    if domain.is_some() && !app.services.values().any(|s| s.is_public()) {
        out.push(issue(
            "domain",
            "a domain is set but no port is public",
            "mark the web port `public: true`",
            "warn",
        ));
    }
    out
}

fn limit_issues(app: &App) -> Vec<Issue> {
    let mut out = Vec::new();
    for (name, s) in &app.services {
        match &s.resources {
            None => out.push(issue(
                format!("services.{name}.resources"),
                format!("`{name}` sets no CPU or memory; 250m / 256Mi assumed for sizing"),
                "set resources.cpu and resources.memory",
                "warn",
            )),
            Some(r) => {
                if let (Some(a), Some(b)) = (r.memory, r.memory_limit)
                    && b < a
                {
                    out.push(issue(
                        format!("services.{name}.resources.memory_limit"),
                        "memory limit below request",
                        "raise memory_limit",
                        "error",
                    ));
                }
                if let (Some(a), Some(b)) = (r.cpu, r.cpu_limit)
                    && b < a
                {
                    out.push(issue(
                        format!("services.{name}.resources.cpu_limit"),
                        "CPU limit below request",
                        "raise cpu_limit",
                        "error",
                    ));
                }
            }
        }
    }
    out
}
