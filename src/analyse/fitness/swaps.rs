//! The swap registry (`data/swaps.yaml`): replace a backing service with
//! another in a profile, never in the app's code. Applying a swap rewrites
//! the dependency's kind in the profile's copy of the app; fitness is then
//! scored again.

use crate::describe::app::App;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Swap {
    pub id: String,
    pub from: String,
    pub to: String,
    /// embedded | managed_service | api_alternative
    pub relationship: String,
    pub tiers: Vec<String>,
    pub score_effect: i32,
    pub effort: String,
    #[serde(default)]
    pub pros: Vec<String>,
    #[serde(default)]
    pub cons: Vec<String>,
}

#[derive(Deserialize)]
struct SwapFile {
    swaps: Vec<Swap>,
}

static SWAPS: LazyLock<Vec<Swap>> = LazyLock::new(|| {
    serde_saphyr::from_str::<SwapFile>(include_str!("../../../data/swaps.yaml"))
        .expect("embedded data/swaps.yaml is valid (checked by tests)")
        .swaps
});

pub fn registry() -> &'static [Swap] {
    &SWAPS
}

/// Swaps away from a dependency kind, best first for the tier.
pub fn swaps_for(kind: &str, tier: Option<&str>) -> Vec<&'static Swap> {
    let mut v: Vec<&Swap> = registry()
        .iter()
        .filter(|s| s.from == kind && tier.is_none_or(|t| s.tiers.iter().any(|x| x == t)))
        .collect();
    v.sort_by(|a, b| b.score_effect.cmp(&a.score_effect).then(a.id.cmp(&b.id)));
    v
}

pub fn find(from: &str, to: &str) -> Option<&'static Swap> {
    registry().iter().find(|s| s.from == from && s.to == to)
}

pub use crate::state::AppliedSwap;

/// The app a profile runs: its app with its swaps applied. Every reader
/// of a profile's app goes through here.
pub fn effective(p: &crate::state::Profile) -> Result<App, String> {
    apply(&p.app, &p.swaps)
}

/// Applies swaps to a copy of the app. Unknown pairs are an error.
pub fn apply(app: &App, swaps: &[AppliedSwap]) -> Result<App, String> {
    let mut out = app.clone();
    for s in swaps {
        find(&s.from, &s.to)
            .ok_or_else(|| format!("no swap from `{}` to `{}` in the registry", s.from, s.to))?;
        let mut hit = false;
        for (name, dep) in out.dependencies.iter_mut() {
            if dep.kind == s.from && s.dependency.as_ref().is_none_or(|d| d == name) {
                dep.kind = s.to.clone();
                dep.image = None;
                hit = true;
            }
        }
        if !hit {
            return Err(format!("the app has no `{}` dependency to swap", s.from));
        }
    }
    Ok(out)
}
