//! Fitness: a 0–100 score per tier and per target, computed from the app's
//! own components against the rule table, with blockers, warnings and swaps,
//! each point lost explained in one line.

pub mod facts;
pub mod operations;
pub mod rules;
pub mod swaps;

use crate::catalog::{Catalog, Target};
use crate::describe::app::App;
use facts::{Component, components};
use rules::{Effect, Rule};
use serde::Serialize;
use std::collections::BTreeMap;

/// Deployment tiers of seed 004.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tier {
    pub number: u8,
    pub key: &'static str,
}

pub const TIERS: [Tier; 5] = [
    Tier {
        number: 1,
        key: "local",
    },
    Tier {
        number: 2,
        key: "desktop",
    },
    Tier {
        number: 3,
        key: "mobile",
    },
    Tier {
        number: 4,
        key: "saas",
    },
    Tier {
        number: 5,
        key: "enterprise",
    },
];

/// `4`, `saas`, `cloud`, `web`, `tier-4`… → tier 4. Unknown names are an
/// error (the original silently mapped them to mobile).
pub fn parse_tier(s: &str) -> Result<Tier, String> {
    let t = s.trim().to_lowercase();
    let t = t.trim_start_matches("tier-").trim_start_matches("tier");
    let n = match t {
        "1" | "local" | "dev" => 1,
        "2" | "desktop" => 2,
        "3" | "mobile" | "ios" | "android" => 3,
        "4" | "saas" | "cloud" | "web" => 4,
        "5" | "enterprise" | "on-prem" | "onprem" | "on-premises" => 5,
        _ => {
            return Err(format!(
                "unknown tier `{s}`; use 1–5 or local, desktop, mobile, saas (cloud, web), enterprise (on-prem)"
            ));
        }
    };
    Ok(TIERS[n - 1])
}

/// Score at or above which a tier or target is considered fit (validate).
pub const FIT_THRESHOLD: u32 = 50;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Score {
    pub overall: u32,
    pub portability: u32,
    pub resources: u32,
    pub licensing: u32,
    pub platform_support: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct SwapSuggestion {
    pub from: String,
    pub to: String,
    pub relationship: String,
    pub score_effect: i32,
    pub effort: String,
    pub pros: Vec<String>,
    pub cons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: String,
    pub component: String,
    pub effect: Effect,
    pub subscore: String,
    /// Points lost (negative) or gained (positive) on the sub-score.
    pub points: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swaps: Vec<SwapSuggestion>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ready,
    Limited,
    Blocked,
}

#[derive(Clone, Debug, Serialize)]
pub struct Assessment {
    pub id: String,
    pub name: String,
    /// `tier` or `target`
    pub scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    pub score: Score,
    pub status: Status,
    /// One phrase for comparison tables: yes / no / with caveats / only with…
    pub verdict: String,
    pub blockers: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub bonuses: Vec<Finding>,
    /// How much operating the target takes (targets only; `None` when the
    /// catalog has no operating facts for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<operations::OperationsScore>,
}

impl Assessment {
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.blockers
            .iter()
            .chain(&self.warnings)
            .chain(&self.bonuses)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FitnessReport {
    pub app: String,
    pub components: Vec<ComponentSummary>,
    pub tiers: Vec<Assessment>,
    pub targets: Vec<Assessment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComponentSummary {
    pub name: String,
    pub kind: String,
    pub class: String,
    pub heavy: bool,
}

pub struct Engine<'a> {
    pub catalog: &'a Catalog,
    pub rules: Vec<Rule>,
}

impl<'a> Engine<'a> {
    pub fn new(catalog: &'a Catalog, extra_rules: Vec<Rule>) -> Self {
        let mut rules = rules::builtin_rules();
        // A user rule with a built-in id replaces it.
        for r in extra_rules {
            match rules.iter_mut().find(|x| x.id == r.id) {
                Some(slot) => *slot = r,
                None => rules.push(r),
            }
        }
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Engine { catalog, rules }
    }

    pub fn report(&self, app: &App, tier: Option<Tier>, target: Option<&str>) -> FitnessReport {
        let comps = components(app);
        let tiers = TIERS
            .iter()
            .filter(|t| tier.is_none_or(|x| x == **t))
            .map(|t| self.assess_tier(app, &comps, *t))
            .collect();
        let targets = self
            .catalog
            .targets
            .iter()
            .filter(|t| target.is_none_or(|id| id == t.id))
            .filter(|t| tier.is_none_or(|x| t.tiers.iter().any(|k| k == x.key)))
            .map(|t| self.assess_target(&comps, t))
            .collect();
        FitnessReport {
            app: app.name.clone(),
            components: comps
                .iter()
                .map(|c| ComponentSummary {
                    name: c.name.clone(),
                    kind: c.kind().into(),
                    class: c
                        .fact("class")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .into(),
                    heavy: c.fact("heavy").and_then(|v| v.as_bool()).unwrap_or(false),
                })
                .collect(),
            tiers,
            targets,
        }
    }

    fn assess_tier(&self, app: &App, comps: &[Component], tier: Tier) -> Assessment {
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.scope == "tier" && r.applies_to_tier(tier.key))
            .collect();
        let mut findings = self.evaluate(&rules, comps, None, tier.key);
        findings.extend(budget_findings(app, tier));
        finish(
            tier.key.to_string(),
            format!("Tier {} ({})", tier.number, tier.key),
            "tier",
            None,
            findings,
            None,
        )
    }

    pub fn assess_target(&self, comps: &[Component], target: &Target) -> Assessment {
        let rules: Vec<&Rule> = self.rules.iter().filter(|r| r.scope == "target").collect();
        let tier = if target.tiers.iter().any(|t| t == "saas") {
            "saas"
        } else {
            target.tiers.first().map_or("saas", String::as_str)
        };
        let findings = self.evaluate(&rules, comps, Some(target), tier);
        let verdict_rules: BTreeMap<&str, &str> = rules
            .iter()
            .filter_map(|r| Some((r.id.as_str(), r.verdict.as_deref()?)))
            .collect();
        let mut a = finish(
            target.id.clone(),
            target.name.clone(),
            "target",
            Some(target.family.clone()),
            findings,
            Some(&verdict_rules),
        );
        a.operations = operations::assess(target, operations::runs_untrusted_code(comps));
        a
    }

    fn evaluate(
        &self,
        rules: &[&Rule],
        comps: &[Component],
        target: Option<&Target>,
        tier: &str,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in comps {
            let mut groups_done: Vec<&str> = Vec::new();
            for r in rules {
                if let Some(g) = &r.group
                    && groups_done.contains(&g.as_str())
                {
                    continue;
                }
                if !r.matches(c, target) {
                    continue;
                }
                if let Some(g) = &r.group {
                    groups_done.push(g);
                }
                let swaps = if r.swap_from {
                    let kind = c.fact("dep_kind").and_then(|v| v.as_str()).unwrap_or("");
                    swaps::swaps_for(kind, Some(tier))
                        .into_iter()
                        .map(|s| SwapSuggestion {
                            from: s.from.clone(),
                            to: s.to.clone(),
                            relationship: s.relationship.clone(),
                            score_effect: s.score_effect,
                            effort: s.effort.clone(),
                            pros: s.pros.clone(),
                            cons: s.cons.clone(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let points = match r.effect {
                    Effect::Bonus => r.points,
                    Effect::Blocker => -100,
                    _ => -r.points,
                };
                out.push(Finding {
                    rule: r.id.clone(),
                    component: c.name.clone(),
                    effect: r.effect,
                    subscore: r.subscore.clone(),
                    points,
                    message: r.render(&r.message, c, target, tier),
                    remedy: r.remedy.as_ref().map(|m| r.render(m, c, target, tier)),
                    swaps,
                });
            }
        }
        out
    }
}

/// Resource budgets per tier (seed 004's desktop budget: 2 GB RAM, 2 cores).
fn budget_findings(app: &App, tier: Tier) -> Vec<Finding> {
    let (mem_budget, cpu_budget) = match tier.key {
        "desktop" => (2.0, 2.0),
        "mobile" => (0.5, 1.0),
        _ => return Vec::new(),
    };
    let mem: f64 = app
        .services
        .values()
        .map(|s| s.memory().as_gib() * s.min_replicas() as f64)
        .sum::<f64>()
        + app
            .dependencies
            .values()
            .map(|d| {
                let k = crate::describe::known::known().get(&d.kind);
                if k.is_some_and(|k| k.external || k.class == "embedded") {
                    0.0
                } else {
                    d.memory
                        .or(k.and_then(|k| k.memory))
                        .map_or(0.5, |m| m.as_gib())
                }
            })
            .sum::<f64>();
    let cpu: f64 = app
        .services
        .values()
        .map(|s| s.cpu().cores() * s.min_replicas() as f64)
        .sum();
    let mut out = Vec::new();
    if mem > mem_budget {
        let over = ((mem / mem_budget - 1.0) * 20.0).round().min(40.0) as i32;
        out.push(Finding {
            rule: "budget-memory".into(),
            component: app.name.clone(),
            effect: Effect::Penalty,
            subscore: "resources".into(),
            points: -over.max(5),
            message: format!(
                "the app needs {mem:.1} GB of memory; the {} budget is {mem_budget} GB",
                tier.key
            ),
            remedy: None,
            swaps: Vec::new(),
        });
    }
    if cpu > cpu_budget {
        out.push(Finding {
            rule: "budget-cpu".into(),
            component: app.name.clone(),
            effect: Effect::Penalty,
            subscore: "resources".into(),
            points: -10,
            message: format!(
                "the app reserves {cpu:.1} CPU cores; the {} budget is {cpu_budget}",
                tier.key
            ),
            remedy: None,
            swaps: Vec::new(),
        });
    }
    out
}

fn finish(
    id: String,
    name: String,
    scope: &'static str,
    family: Option<String>,
    findings: Vec<Finding>,
    verdicts: Option<&BTreeMap<&str, &str>>,
) -> Assessment {
    let mut sub: BTreeMap<&str, i32> = [
        ("portability", 100),
        ("resources", 100),
        ("licensing", 100),
        ("platform", 100),
    ]
    .into();
    for f in &findings {
        if f.effect != Effect::Blocker
            && let Some(v) = sub.get_mut(f.subscore.as_str())
        {
            *v = (*v + f.points).clamp(0, 100);
        }
    }
    let (mut blockers, mut warnings, mut bonuses) = (Vec::new(), Vec::new(), Vec::new());
    for f in findings {
        match f.effect {
            Effect::Blocker => blockers.push(f),
            Effect::Bonus => bonuses.push(f),
            _ => warnings.push(f),
        }
    }
    let get = |k: &str| sub.get(k).copied().unwrap_or(100).max(0) as u32;
    let mean =
        (get("portability") + get("resources") + get("licensing") + get("platform")) as f64 / 4.0;
    // A blocker means it cannot run as is: overall 0, sub-scores kept for context.
    let overall = if blockers.is_empty() {
        mean.round() as u32
    } else {
        0
    };
    let status = if !blockers.is_empty() {
        Status::Blocked
    } else if overall < 75 || !warnings.is_empty() {
        Status::Limited
    } else {
        Status::Ready
    };
    let verdict_of =
        |f: &Finding| verdicts.and_then(|v| v.get(f.rule.as_str()).map(|s| s.to_string()));
    let verdict = match status {
        Status::Blocked => blockers
            .iter()
            .find_map(verdict_of)
            .unwrap_or_else(|| "no".into()),
        _ => warnings
            .iter()
            .find_map(verdict_of)
            .filter(|v| !v.starts_with("yes"))
            .unwrap_or_else(|| "yes".into()),
    };
    Assessment {
        id,
        name,
        scope,
        family,
        score: Score {
            overall,
            portability: get("portability"),
            resources: get("resources"),
            licensing: get("licensing"),
            platform_support: get("platform"),
        },
        status,
        verdict,
        blockers,
        warnings,
        bonuses,
        operations: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_aliases_and_unknown_tiers() {
        assert_eq!(parse_tier("cloud").unwrap().number, 4);
        assert_eq!(parse_tier("web").unwrap().number, 4);
        assert_eq!(parse_tier("on-prem").unwrap().number, 5);
        assert_eq!(parse_tier("tier-2").unwrap().key, "desktop");
        assert_eq!(parse_tier("3").unwrap().key, "mobile");
        assert!(
            parse_tier("spaceship")
                .unwrap_err()
                .contains("unknown tier")
        );
        assert!(parse_tier("").is_err());
    }

    #[test]
    fn rule_and_swap_tables_load() {
        assert!(rules::builtin_rules().len() >= 40);
        assert!(swaps::registry().len() >= 15);
        assert!(swaps::find("postgres", "sqlite").is_some());
    }
}
