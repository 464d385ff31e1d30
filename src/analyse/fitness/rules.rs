//! The rule table (`data/rules.yaml`, extendable with `--rules FILE`) and its
//! evaluation: rules are data, matched against component and target facts.

use super::facts::Component;
use crate::catalog::Target;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::LazyLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Blocker,
    Warning,
    Penalty,
    Bonus,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    /// `tier` rules score a tier; `target` rules a target.
    pub scope: String,
    /// Tier(s) a tier rule applies to.
    #[serde(default)]
    pub tier: Option<Value>,
    #[serde(default)]
    pub group: Option<String>,
    pub when: serde_json::Map<String, Value>,
    pub effect: Effect,
    #[serde(default)]
    pub points: i32,
    pub subscore: String,
    #[serde(default)]
    pub priority: i32,
    pub message: String,
    #[serde(default)]
    pub remedy: Option<String>,
    /// A short verdict for comparison tables ("only with the Jobs runtime").
    #[serde(default)]
    pub verdict: Option<String>,
    /// Swaps from this component's kind may resolve the finding.
    #[serde(default)]
    pub swap_from: bool,
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    rules: Vec<Rule>,
}

static PLACEHOLDER: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\{([a-z_.]+)\}").expect("valid regex"));

static BUILTIN: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    serde_saphyr::from_str::<RuleFile>(include_str!("../../../data/rules.yaml"))
        .expect("embedded data/rules.yaml is valid (checked by tests)")
        .rules
});

pub fn builtin_rules() -> Vec<Rule> {
    BUILTIN.clone()
}

/// Parses a user rule file (same format as the built-in table).
pub fn parse_rules(
    file: &str,
    text: &str,
) -> Result<Vec<Rule>, Box<crate::describe::diagnostic::SpecError>> {
    serde_saphyr::from_str::<RuleFile>(text)
        .map(|f| f.rules)
        .map_err(|e| Box::new(crate::describe::load::from_yaml_error(file, text, &e)))
}

impl Rule {
    pub fn applies_to_tier(&self, tier: &str) -> bool {
        match &self.tier {
            None => true,
            Some(Value::String(t)) => t == tier,
            Some(Value::Array(a)) => a.iter().any(|t| t.as_str() == Some(tier)),
            _ => false,
        }
    }

    /// Whether every condition holds for this component (and target).
    pub fn matches(&self, c: &Component, target: Option<&Target>) -> bool {
        self.when.iter().all(|(key, expected)| {
            let actual = lookup(key, c, target);
            test(actual.as_ref(), expected, c, target)
        })
    }

    /// The message with `{component}`, `{target}`, `{tier}` and facts filled in.
    pub fn render(&self, text: &str, c: &Component, target: Option<&Target>, tier: &str) -> String {
        PLACEHOLDER
            .replace_all(text, |cap: &regex::Captures| {
                let key = &cap[1];
                match key {
                    "component" => format!("`{}`", c.name),
                    "target" => target.map_or_else(String::new, |t| t.name.clone()),
                    "tier" => tier.to_string(),
                    "target.evidence" => target.map_or_else(String::new, |t| t.evidence.clone()),
                    k => lookup(k, c, target).map_or_else(|| "?".into(), |v| text_of(&v)),
                }
            })
            .into_owned()
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

fn lookup(key: &str, c: &Component, target: Option<&Target>) -> Option<Value> {
    if let Some(k) = key.strip_prefix("component.") {
        if k == "managed_here" {
            let family = c.fact("managed_as").and_then(Value::as_str);
            let allowed = c
                .fact("managed_allowed")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || c.fact("external").and_then(Value::as_bool).unwrap_or(false);
            let here = target.zip(family).is_some_and(|(t, f)| t.offers_managed(f));
            return Some(Value::Bool(allowed && here));
        }
        return c.fact(k).cloned();
    }
    if let Some(k) = key.strip_prefix("target.") {
        let t = target?;
        return match k {
            "family" => Some(Value::String(t.family.clone())),
            "provider" => Some(Value::String(t.provider.clone())),
            "id" => Some(Value::String(t.id.clone())),
            "evidence" => Some(Value::String(t.evidence.clone())),
            _ => t.cap(k).cloned(),
        };
    }
    None
}

fn as_num(v: &Value, c: &Component, target: Option<&Target>) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.starts_with("component.") || s.starts_with("target.") => {
            lookup(s, c, target).and_then(|v| v.as_f64())
        }
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Equality that treats YAML's `yes`/`no` and booleans alike.
fn same(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| match v {
        Value::Bool(true) => Value::String("yes".into()),
        Value::Bool(false) => Value::String("no".into()),
        Value::String(s) if s == "true" => Value::String("yes".into()),
        Value::String(s) if s == "false" => Value::String("no".into()),
        other => other.clone(),
    };
    norm(a) == norm(b)
}

fn test(actual: Option<&Value>, expected: &Value, c: &Component, target: Option<&Target>) -> bool {
    match expected {
        Value::Array(options) => actual.is_some_and(|a| options.iter().any(|o| same(a, o))),
        Value::Object(ops) => ops.iter().all(|(op, rhs)| {
            if op == "exists" {
                return actual.is_some_and(|a| !a.is_null()) == rhs.as_bool().unwrap_or(true);
            }
            if op == "ne" {
                return !actual.is_some_and(|a| same(a, rhs));
            }
            let (Some(a), Some(b)) = (actual.and_then(Value::as_f64), as_num(rhs, c, target))
            else {
                return false;
            };
            match op.as_str() {
                "gt" => a > b,
                "ge" => a >= b,
                "lt" => a < b,
                "le" => a <= b,
                _ => false,
            }
        }),
        // A missing capability counts as "no" so targets need not list every gap.
        other => match actual {
            Some(a) => same(a, other),
            None => same(&Value::String("no".into()), other) && !c.facts.is_empty(),
        },
    }
}
