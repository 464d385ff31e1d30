//! The catalog of targets and prices: data files embedded in the binary
//! (`data/catalog/*.yaml`), optionally overridden or extended by a user file
//! (`--catalog FILE`). Every price names its source and the date it was read.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// Prices older than this are flagged by `catalog check`.
pub const STALE_AFTER_DAYS: i64 = 365;
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What one unit of a price is; a catalog with any other unit is refused
/// when it is read, so every estimate converts from a known unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceUnit {
    Hour,
    /// A Kubernetes control plane for an hour.
    ClusterHour,
    Month,
    /// Transferred or stored once (egress, a request's payload).
    Gb,
    GbHour,
    GbMonth,
    GibSecond,
    VcpuHour,
    VcpuMonth,
    VcpuSecond,
    MillionRequests,
}

impl PriceUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceUnit::Hour => "hour",
            PriceUnit::ClusterHour => "cluster_hour",
            PriceUnit::Month => "month",
            PriceUnit::Gb => "gb",
            PriceUnit::GbHour => "gb_hour",
            PriceUnit::GbMonth => "gb_month",
            PriceUnit::GibSecond => "gib_second",
            PriceUnit::VcpuHour => "vcpu_hour",
            PriceUnit::VcpuMonth => "vcpu_month",
            PriceUnit::VcpuSecond => "vcpu_second",
            PriceUnit::MillionRequests => "million_requests",
        }
    }

    /// How many units a month of one resource (or one vCPU or GB) is:
    /// 730 hours, 2,628,000 seconds, 1 month; `None` for units that say
    /// nothing of time (GB transferred, requests).
    pub fn per_month(self) -> Option<f64> {
        match self {
            PriceUnit::Hour | PriceUnit::ClusterHour | PriceUnit::GbHour | PriceUnit::VcpuHour => {
                Some(HOURS_PER_MONTH)
            }
            PriceUnit::Month | PriceUnit::GbMonth | PriceUnit::VcpuMonth => Some(1.0),
            PriceUnit::GibSecond | PriceUnit::VcpuSecond => Some(HOURS_PER_MONTH * 3600.0),
            PriceUnit::Gb | PriceUnit::MillionRequests => None,
        }
    }
}

impl std::fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub id: String,
    pub provider: String,
    pub item: String,
    pub unit: PriceUnit,
    /// Absent when no source confirmed any figure: estimates flag it.
    #[serde(default)]
    pub usd: Option<f64>,
    #[serde(default)]
    pub vcpu: Option<f64>,
    #[serde(default)]
    pub memory_gb: Option<f64>,
    #[serde(default)]
    pub disk_gb: Option<f64>,
    #[serde(default)]
    pub included_egress_gb: Option<f64>,
    #[serde(default)]
    pub included_gb: Option<f64>,
    /// Usage included for free each month, in the price's unit.
    #[serde(default)]
    pub free_quantity: Option<f64>,
    /// A monthly credit in dollars (GKE's free cluster).
    #[serde(default)]
    pub free_usd: Option<f64>,
    /// Usage credit bundled in a plan (Railway).
    #[serde(default)]
    pub included_usd: Option<f64>,
    pub source: String,
    pub captured: String,
    pub backing: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl Price {
    pub fn unconfirmed(&self) -> bool {
        self.backing == "UNCONFIRMED"
    }

    /// Read more than [`STALE_AFTER_DAYS`] before `today` (an unreadable
    /// date counts as stale: nobody knows how old it is).
    pub fn stale_on(&self, today: jiff::civil::Date) -> bool {
        match self.captured.parse::<jiff::civil::Date>() {
            Ok(d) => today.since(d).map_or(0, |s| s.get_days() as i64) > STALE_AFTER_DAYS,
            Err(_) => true,
        }
    }
    /// How many of this price's units one resource that runs all month
    /// uses: 730 for an hourly price, 1 for a monthly one; `None` for
    /// usage units (GB, requests, vCPU-seconds) that say nothing of time.
    pub fn units_per_always_on_month(&self) -> Option<f64> {
        match self.unit {
            PriceUnit::Hour | PriceUnit::ClusterHour => Some(HOURS_PER_MONTH),
            PriceUnit::Month => Some(1.0),
            _ => None,
        }
    }
    /// Monthly price for units priced per month or per hour.
    pub fn monthly(&self) -> Option<f64> {
        let usd = self.usd?;
        Some(match self.unit {
            PriceUnit::Hour | PriceUnit::ClusterHour => usd * HOURS_PER_MONTH,
            _ => usd,
        })
    }
}

/// How well a target supports something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    Yes,
    Caveat,
    No,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub family: String,
    pub provider: String,
    pub tiers: Vec<String>,
    pub capabilities: IndexMap<String, Value>,
    pub evidence: String,
    pub pricing: Pricing,
    /// Who does the operating work there (absent in a user's catalog: the
    /// operations score is then unknown, never guessed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Operations>,
}

/// Who does a piece of operating work: the provider, or the team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duty {
    Provider,
    You,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Instances on several hosts and restarts elsewhere, by the platform.
    BuiltIn,
    /// Possible, set up and run by the team (several VMs, a load balancer).
    You,
    /// One machine.
    None,
}

/// What separates code the app runs for its users from everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A microVM or user-space kernel per instance (Firecracker, gVisor).
    Sandboxed,
    /// Containers sharing the host's kernel.
    Containers,
    /// The Docker socket is handed to the app: root on the host.
    HostSocket,
}

/// The operating facts of a target, with where they were read.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    /// Operating system and runtime security updates.
    pub patching: Duty,
    /// Backups of the managed data stores the target offers.
    pub backups: Duty,
    pub high_availability: Availability,
    pub untrusted_code: Isolation,
    /// TLS certificates issued and renewed.
    pub tls: Duty,
    pub source: String,
}

impl Target {
    pub fn cap(&self, name: &str) -> Option<&Value> {
        self.capabilities.get(name)
    }
    pub fn support(&self, name: &str) -> Support {
        match self.cap(name) {
            Some(Value::Bool(true)) => Support::Yes,
            Some(Value::String(s)) if s == "yes" || s == "true" => Support::Yes,
            Some(Value::String(s)) if s == "caveat" => Support::Caveat,
            _ => Support::No,
        }
    }
    pub fn number(&self, name: &str) -> Option<f64> {
        self.cap(name).and_then(Value::as_f64)
    }
    pub fn offers_managed(&self, family: &str) -> bool {
        self.cap("managed")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(family)))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// local | vm | kubernetes | instances | usage
    pub model: String,
    #[serde(default)]
    pub instances: Vec<String>,
    #[serde(default)]
    pub volume: Option<String>,
    #[serde(default)]
    pub egress: Option<String>,
    #[serde(default)]
    pub lb: Option<String>,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub control_plane: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub rates: IndexMap<String, String>,
    #[serde(default)]
    pub managed: IndexMap<String, String>,
    #[serde(default)]
    pub min_nodes: Option<u32>,
    #[serde(default)]
    pub max_nodes: Option<u32>,
    /// Databases run as ordinary usage-billed services (Railway).
    #[serde(default)]
    pub managed_as_usage: bool,
    #[serde(default)]
    pub serverless_functions: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Catalog {
    #[serde(default)]
    pub prices: Vec<Price>,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Managed services outside any target, by family.
    #[serde(default)]
    pub external: IndexMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {0}: {1}")]
    Read(String, String),
    #[error("{0}")]
    Parse(String),
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn embedded() -> Catalog {
        let prices: Catalog =
            serde_saphyr::from_str(include_str!("../../data/catalog/prices.yaml"))
                .expect("embedded prices.yaml is valid (checked by tests)");
        let targets: Catalog =
            serde_saphyr::from_str(include_str!("../../data/catalog/targets.yaml"))
                .expect("embedded targets.yaml is valid (checked by tests)");
        Catalog {
            prices: prices.prices,
            targets: targets.targets,
            external: targets.external,
        }
    }

    /// The embedded catalog with a user file merged over it: entries with an
    /// existing id replace it, new ids are added.
    pub fn with_overrides(path: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::embedded();
        if let Some(p) = path {
            let text = crate::describe::files::read_text(p, crate::describe::files::MAX_SPEC_FILE)
                .map_err(|e| CatalogError::Read(p.display().to_string(), e))?;
            let user: Catalog = serde_saphyr::from_str(&text).map_err(|e| {
                CatalogError::Parse(
                    crate::describe::load::from_yaml_error(&p.display().to_string(), &text, &e)
                        .to_string(),
                )
            })?;
            for price in user.prices {
                match cat.prices.iter_mut().find(|x| x.id == price.id) {
                    Some(slot) => *slot = price,
                    None => cat.prices.push(price),
                }
            }
            for target in user.targets {
                match cat.targets.iter_mut().find(|x| x.id == target.id) {
                    Some(slot) => *slot = target,
                    None => cat.targets.push(target),
                }
            }
            cat.external.extend(user.external);
        }
        Ok(cat)
    }

    pub fn price(&self, id: &str) -> Option<&Price> {
        self.prices.iter().find(|p| p.id == id)
    }

    pub fn target(&self, id: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// Checks every entry: sources, dates, staleness, unconfirmed figures and
    /// references from targets to prices.
    pub fn check(&self, today: jiff::civil::Date) -> Vec<CatalogIssue> {
        let mut out = Vec::new();
        let mut push = |id: &str, severity: &'static str, message: String| {
            out.push(CatalogIssue {
                id: id.to_string(),
                severity,
                message,
            })
        };
        let mut ids = std::collections::BTreeSet::new();
        for p in &self.prices {
            if !ids.insert(&p.id) {
                push(&p.id, "error", "duplicate price id".into());
            }
            if !p.source.starts_with("https://") {
                push(
                    &p.id,
                    "error",
                    format!("source `{}` is not an https URL", p.source),
                );
            }
            match p.captured.parse::<jiff::civil::Date>() {
                Ok(d) => {
                    let age = today.since(d).map(|s| s.get_days() as i64).unwrap_or(0);
                    if d > today {
                        push(&p.id, "error", format!("captured {d} is in the future"));
                    } else if p.stale_on(today) {
                        push(
                            &p.id,
                            "warning",
                            format!("stale: read {d}, {age} days ago (over {STALE_AFTER_DAYS})"),
                        );
                    }
                }
                Err(_) => push(
                    &p.id,
                    "error",
                    format!("captured `{}` is not a YYYY-MM-DD date", p.captured),
                ),
            }
            if p.usd.is_none() {
                push(
                    &p.id,
                    "warning",
                    "no price known: estimates that need it flag the line as price not found"
                        .into(),
                );
            } else if p.unconfirmed() {
                push(
                    &p.id,
                    "info",
                    "UNCONFIRMED figure: estimates that use it say so".into(),
                );
            }
            if p.usd.is_some_and(|u| u < 0.0) {
                push(&p.id, "error", "negative price".into());
            }
            // A resource that runs all month and costs under $1 is almost
            // always a unit mistake (an hourly price read as monthly), as
            // managed Postgres on AWS once was.
            if let (Some(usd), Some(units)) = (p.usd, p.units_per_always_on_month())
                && usd > 0.0
                && usd * units < 1.0
            {
                push(
                    &p.id,
                    "warning",
                    format!(
                        "an always-on {} costs ${:.2} a month at ${usd} per {}: check the unit",
                        p.item,
                        usd * units,
                        p.unit
                    ),
                );
            }
        }
        for t in &self.targets {
            let refs = t
                .pricing
                .instances
                .iter()
                .chain(t.pricing.volume.iter())
                .chain(t.pricing.egress.iter())
                .chain(t.pricing.lb.iter())
                .chain(t.pricing.ipv4.iter())
                .chain(t.pricing.control_plane.iter())
                .chain(t.pricing.plan.iter())
                .chain(t.pricing.rates.values())
                .chain(t.pricing.managed.values());
            for r in refs {
                if self.price(r).is_none() {
                    push(&t.id, "error", format!("refers to unknown price `{r}`"));
                }
            }
            if !["local", "vm", "kubernetes", "instances", "usage"]
                .contains(&t.pricing.model.as_str())
            {
                push(
                    &t.id,
                    "error",
                    format!("unknown pricing model `{}`", t.pricing.model),
                );
            }
        }
        for (family, id) in &self.external {
            if self.price(id).is_none() {
                push(
                    family,
                    "error",
                    format!("external {family} refers to unknown price `{id}`"),
                );
            }
        }
        out
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CatalogIssue {
    pub id: String,
    pub severity: &'static str,
    pub message: String,
}

/// Today's date in UTC (for staleness checks).
pub fn today() -> jiff::civil::Date {
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_consistent() {
        let cat = Catalog::embedded();
        assert!(cat.prices.len() >= 100, "{} prices", cat.prices.len());
        assert!(cat.targets.len() >= 23);
        let date: jiff::civil::Date = "2026-11-22".parse().unwrap();
        let errors: Vec<_> = cat
            .check(date)
            .into_iter()
            .filter(|i| i.severity == "error")
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn every_required_target_is_present() {
        let cat = Catalog::embedded();
        for id in [
            "local",
            "vm-digitalocean",
            "vm-hetzner",
            "vm-aws-ec2",
            "vm-gcp",
            "vm-linode",
            "vm-vultr",
            "compose",
            "swarm",
            "k8s-gke",
            "k8s-eks",
            "k8s-aks",
            "k8s-doks",
            "fly",
            "render",
            "railway",
            "heroku",
            "cloud-run",
            "app-runner",
            "ecs-fargate",
            "aci",
            "do-app-platform",
            "vercel",
        ] {
            assert!(cat.target(id).is_some(), "missing target {id}");
        }
    }

    #[test]
    fn stale_and_unknown_prices_are_flagged() {
        let cat = Catalog::embedded();
        let issues = cat.check("2026-11-22".parse().unwrap());
        assert!(
            issues
                .iter()
                .any(|i| i.id == "heroku.basic" && i.message.starts_with("stale"))
        );
        assert!(
            issues
                .iter()
                .any(|i| i.id == "azure.aci.vcpu" && i.message.contains("no price known"))
        );
    }
}
