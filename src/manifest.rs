//! The deployment manifest v0.1 of seed 004 (app, infrastructure,
//! networking), built from a profile and the cost engine's sizing, with a
//! published JSON Schema.

use crate::analyse::cost::{self, Estimate, Strategy};
use crate::analyse::fitness::swaps;
use crate::analyse::placement::{Hosting, Offering, place};
use crate::catalog::{Catalog, Target};
use crate::describe::known::known;
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
    // The manifest names what the placement holds; the estimate prices it.
    let placement = place(catalog, &app, target, users, strategy);
    let mut e = cost::price(catalog, &app, target, &placement);
    cost::price_shortfalls(catalog, &app, target, &mut e);
    // Seed 004 names sizes by the provider's slug (`s-2vcpu-4gb`).
    let slug = |o: &Offering| {
        o.price_id
            .rsplit_once('.')
            .map_or(o.price_id.clone(), |(_, s)| s.to_string())
    };
    let kind = match (target.pricing.model.as_str(), target.provider.as_str()) {
        ("vm", "digitalocean") => "droplet",
        ("vm", _) => "vm",
        ("kubernetes", _) => "node",
        ("instances", _) => "instance",
        ("local", _) => "local",
        _ => "usage",
    };
    let (size, count) = match (
        &placement.nodes,
        placement
            .units
            .iter()
            .find_map(|u| Some((u.instance.as_ref()?, u.replicas))),
    ) {
        (Some(pool), _) => (slug(&pool.offering), pool.count),
        (None, Some((instance, replicas))) => (slug(instance), replicas),
        (None, None) => ("usage-based".to_string(), 1),
    };
    // The first dependency of a class hosted by an offering, not a container.
    let hosted = |class: &str| {
        placement.dependencies.iter().find_map(|d| {
            let offering = match &d.hosting {
                Hosting::Managed { offering, .. } | Hosting::Outside { offering, .. } => offering,
                _ => return None,
            };
            let c = known().get(&d.kind).map(|k| k.class.as_str());
            let matches = match class {
                "database" => matches!(
                    c,
                    Some("database" | "graph_database" | "vector_store" | "search")
                ),
                other => c == Some(other),
            };
            matches.then_some((d, offering))
        })
    };
    let object_gb: f64 = app
        .dependencies
        .values()
        .filter(|d| known().get(&d.kind).is_some_and(|k| k.class == "storage"))
        .filter_map(|d| d.size.map(|s| s.as_gib()))
        .sum();
    let storage = match hosted("storage") {
        Some((_, offering)) => Some(Resource {
            kind: if offering.price_id.contains("spaces") {
                "spaces".into()
            } else {
                "object-storage".into()
            },
            size: format!("{object_gb:.0}Gi"),
        }),
        None if placement.volume_gb > 0.0 => Some(Resource {
            kind: "block-storage".into(),
            size: format!("{:.0}Gi", placement.volume_gb),
        }),
        None => None,
    };
    let region = p.settings.region.clone();
    let infrastructure = Infrastructure {
        compute: Compute {
            kind: kind.into(),
            size,
            count: count.max(1),
        },
        database: hosted("database").map(|(d, offering)| Resource {
            kind: if d.kind == "postgres" || d.kind == "pgvector" {
                "managed-postgres".into()
            } else {
                "managed-database".into()
            },
            size: slug(offering),
        }),
        cache: hosted("cache").map(|(_, offering)| Resource {
            kind: "managed-redis".into(),
            size: slug(offering),
        }),
        storage,
    };
    let lb = placement.load_balancer && target.pricing.lb.is_some();
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
