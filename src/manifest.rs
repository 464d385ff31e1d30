//! The deployment manifest v0.1 of seed 004 (app, infrastructure,
//! networking), built from a profile and the cost engine's sizing, with a
//! published JSON Schema.

use crate::analyse::cost::{self, Estimate, Strategy};
use crate::analyse::fitness::swaps;
use crate::catalog::{Catalog, Target};
use crate::state::Profile;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: &str = "v0.1";

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: String,
    /// Tier key: local, desktop, mobile, saas, enterprise.
    pub target: String,
    pub provider: String,
    /// The catalog target the infrastructure is sized for.
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub app: ManifestApp,
    pub infrastructure: Infrastructure,
    pub networking: Networking,
    /// Secret names the deploy must be given (never values).
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub swaps: Vec<swaps::AppliedSwap>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestApp {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Infrastructure {
    pub compute: Compute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Resource>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// droplet, vm, node, instance, usage…
    #[serde(rename = "type")]
    pub kind: String,
    pub size: String,
    pub count: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub size: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Networking {
    pub load_balancer: bool,
    /// letsencrypt, managed or none
    pub ssl: String,
    pub cdn: bool,
}

/// How the profile's public services are reached on Kubernetes: settings
/// `gateway` (an existing `ns/name`), `gateway-class`, `ingress-class`.
pub fn profile_routing(p: &Profile, target_id: &str) -> crate::render::gateway::Routing {
    let s = &p.settings;
    crate::render::gateway::Routing::from_settings(
        target_id,
        s.gateway.as_deref(),
        s.gateway_class.as_deref(),
        s.ingress_class.as_deref(),
    )
}

pub fn build(
    catalog: &Catalog,
    p: &Profile,
    target: &Target,
) -> Result<(Manifest, Estimate), String> {
    let app = swaps::effective(p)?;
    let users = p.settings.users.unwrap_or_else(|| app.users());
    let strategy: Strategy = p.settings.strategy_or(None);
    let e = cost::estimate(catalog, &app, target, users, strategy);
    let line = |cat: &str| e.lines.iter().find(|l| l.category == cat);
    let item_of = |cat: &str| {
        line(cat)
            .and_then(|l| l.price_id.as_ref())
            .and_then(|id| catalog.price(id))
            .map(|p| p.item.clone())
    };
    let compute = line("compute");
    let count = compute
        .map_or(1, |l| {
            if l.unit == crate::catalog::PriceUnit::Hour {
                (l.quantity / crate::catalog::HOURS_PER_MONTH).round() as u32
            } else {
                l.quantity.round() as u32
            }
        })
        .max(1);
    let kind = match (target.pricing.model.as_str(), target.provider.as_str()) {
        ("vm", "digitalocean") => "droplet",
        ("vm", _) => "vm",
        ("kubernetes", _) => "node",
        ("instances", _) => "instance",
        ("local", _) => "local",
        _ => "usage",
    };
    let size = compute
        .and_then(|l| l.price_id.as_ref())
        .map(|id| {
            id.rsplit_once('.')
                .map_or(id.clone(), |(_, s)| s.to_string())
        })
        .unwrap_or_else(|| "usage-based".into());
    let managed = |cat: &str, kind: &str| -> Option<Resource> {
        let l = line(cat)?;
        let id = l.price_id.clone()?;
        Some(Resource {
            kind: kind.to_string(),
            size: id
                .rsplit_once('.')
                .map_or(id.clone(), |(_, s)| s.to_string()),
        })
    };
    let region = p.settings.region.clone();
    let infrastructure = Infrastructure {
        compute: Compute {
            kind: kind.into(),
            size,
            count,
        },
        database: managed("database", "managed-postgres")
            .filter(|_| {
                item_of("database").is_some_and(|i| {
                    i.contains("Postgres") || i.contains("PostgreSQL") || i.contains("Supabase")
                })
            })
            .or_else(|| managed("database", "managed-database")),
        cache: managed("cache", "managed-redis"),
        storage: line("storage").map(|l| Resource {
            kind: if l.price_id.as_deref().is_some_and(|i| i.contains("spaces")) {
                "spaces".into()
            } else if l.name.contains("volume") || l.name.contains("disk") {
                "block-storage".into()
            } else {
                "object-storage".into()
            },
            size: {
                let gb: f64 = app
                    .dependencies
                    .values()
                    .filter(|d| {
                        crate::describe::known::known()
                            .get(&d.kind)
                            .is_some_and(|k| k.class == "storage")
                    })
                    .filter_map(|d| d.size.map(|s| s.as_gib()))
                    .sum();
                if gb > 0.0 {
                    format!("{gb:.0}Gi")
                } else {
                    format!("{}", l.quantity)
                }
            },
        }),
    };
    let lb = e.lines.iter().any(|l| l.category == "load_balancer");
    let tier = crate::analyse::fitness::TIERS[(p.tier as usize).clamp(1, 5) - 1].key;
    let secrets = crate::describe::secrets_list(&app)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let m = Manifest {
        schema_version: SCHEMA_VERSION.into(),
        target: tier.into(),
        provider: target.provider.clone(),
        platform: target.id.clone(),
        region,
        app: ManifestApp {
            name: app.name.clone(),
            version: app.version.clone().unwrap_or_else(|| "0.0.0".into()),
            domain: p.settings.domain.clone().or(app.domain.clone()),
        },
        infrastructure,
        networking: Networking {
            load_balancer: lb,
            ssl: if matches!(
                target.family.as_str(),
                "vm" | "compose" | "swarm" | "kubernetes"
            ) {
                "letsencrypt".into()
            } else if target.family == "local" {
                "none".into()
            } else {
                "managed".into()
            },
            cdn: app.services.values().any(|s| s.is_public())
                && matches!(target.family.as_str(), "paas" | "serverless"),
        },
        secrets,
        swaps: p.swaps.clone(),
    };
    Ok((m, e))
}
