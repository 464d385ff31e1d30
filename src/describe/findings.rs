//! What an import could not carry over, per key and per target, so nothing is
//! dropped silently: `error` (cannot be expressed), `warning` (dropped or
//! behaviour changes), `info` (ignored harmlessly).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Target families an import finding can differ on.
pub const TARGET_FAMILIES: [&str; 6] = ["local", "vm", "compose", "swarm", "kubernetes", "paas"];

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Path of the source key, e.g. `services.web.privileged`.
    pub path: String,
    /// The worst severity over all targets.
    pub severity: Severity,
    pub message: String,
    /// Severity per target family where it differs by target.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_target: BTreeMap<&'static str, Severity>,
}

#[derive(Default, Debug, Serialize)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn add(&mut self, path: impl Into<String>, severity: Severity, message: impl Into<String>) {
        self.0.push(Finding {
            path: path.into(),
            severity,
            message: message.into(),
            per_target: BTreeMap::new(),
        });
    }

    /// A finding whose severity depends on the target family; families not
    /// listed get `elsewhere`.
    pub fn add_per_target(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        listed: &[(&'static str, Severity)],
        elsewhere: Severity,
    ) {
        let per_target: BTreeMap<_, _> = TARGET_FAMILIES
            .iter()
            .map(|f| {
                let s = listed
                    .iter()
                    .find(|(n, _)| n == f)
                    .map_or(elsewhere, |(_, s)| *s);
                (*f, s)
            })
            .collect();
        let severity = per_target.values().copied().max().unwrap_or(elsewhere);
        self.0.push(Finding {
            path: path.into(),
            severity,
            message: message.into(),
            per_target,
        });
    }

    pub fn count(&self, s: Severity) -> usize {
        self.0.iter().filter(|f| f.severity == s).count()
    }

    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.path.cmp(&b.path))
        });
    }
}
