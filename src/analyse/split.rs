//! Split placements: one app's services on different targets, as teams do
//! when a static or Next.js front end goes to Vercel and the API and its
//! database stay elsewhere (seeds 001 and 003). A split is data: which
//! services, dependencies and session containers each group holds, and the
//! calls that now cross from one provider to another. Each group becomes
//! an app of its own (`Split::part`), so fitness, cost and generate work per
//! group unchanged.

use crate::analyse::cost::{self, Estimate};
use crate::analyse::fitness::facts::components;
use crate::analyse::fitness::{Assessment, Engine, Status};
use crate::analyse::placement::names_host;
use crate::describe::app::{App, Protocol};
use crate::state::settings::Strategy;
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::BTreeSet;

/// One part of the app and the target it runs on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub target: String,
    pub services: Vec<String>,
    pub dependencies: Vec<String>,
    pub sessions: Vec<String>,
    /// This group's share of the app's internet egress (its public
    /// services over all public services).
    pub egress_share: f64,
}

/// A call from a service in one group to a service or dependency held by
/// another: over the internet now, so its address becomes a setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crossing {
    pub service: String,
    pub to: String,
    /// The group (index) that holds `to`.
    pub to_group: usize,
    /// Settings of `service` that named `to`'s host; each becomes a secret
    /// to fill with `to`'s public address on its target.
    pub settings: Vec<String>,
    /// `to` has no public port: the other group must expose it first.
    pub needs_exposure: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Split {
    /// The first group is the rest of the app, on the main target.
    pub groups: Vec<Group>,
    pub crossings: Vec<Crossing>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("--split expects SERVICE[,SERVICE]=TARGET, got `{0}`")]
    Syntax(String),
    #[error("--split names `{0}`, which is not a service of this app")]
    UnknownService(String),
    #[error("service `{0}` is moved by two --split options")]
    Twice(String),
    #[error("--split moves every service away from the main target: leave at least one")]
    NothingLeft,
    #[error("--split moves services to `{0}`, the main target: name another target")]
    SameTarget(String),
}

/// Services moved to another target, as `--split web,docs=vercel` says.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub services: Vec<String>,
    pub target: String,
}

impl std::str::FromStr for Move {
    type Err = SplitError;
    fn from_str(s: &str) -> Result<Move, SplitError> {
        let (services, target) = s
            .split_once('=')
            .ok_or_else(|| SplitError::Syntax(s.into()))?;
        let services: Vec<String> = services
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
        let target = target.trim();
        if services.is_empty() || target.is_empty() {
            return Err(SplitError::Syntax(s.into()));
        }
        Ok(Move {
            services,
            target: target.into(),
        })
    }
}

/// The services a front-end platform can take: public HTTP only, no
/// database or cache of their own, no volumes, no containers started, no
/// peers they cannot name. What is left must still be a non-empty app.
pub fn front_end(app: &App) -> Vec<String> {
    let spawners: BTreeSet<&str> = app
        .sessions
        .values()
        .map(|s| s.spawned_by.as_str())
        .collect();
    let front: Vec<String> = app
        .services
        .iter()
        .filter(|(name, s)| {
            s.is_public()
                && s.ports.iter().all(|p| p.protocol == Protocol::Http)
                && s.volumes.is_empty()
                && !s.traits.spawns_containers
                && !s.traits.background_worker
                && s.traits.cron.is_none()
                && !s.connects_to_any
                && !spawners.contains(name.as_str())
                && s.depends_on
                    .iter()
                    .chain(s.connects_to.iter().map(|c| &c.to))
                    .all(|peer| app.services.contains_key(peer))
        })
        .map(|(n, _)| n.clone())
        .collect();
    if front.len() == app.services.len() {
        Vec::new()
    } else {
        front
    }
}

impl Split {
    /// Groups `app`: the moved services on their targets, everything else
    /// on `main_target`. A dependency goes with the first group whose
    /// services use it (the main group first); session containers with the
    /// service that starts them.
    pub fn new(app: &App, main_target: &str, moves: &[Move]) -> Result<Split, SplitError> {
        let mut group_of: IndexMap<&str, usize> = IndexMap::new();
        let mut targets = vec![main_target.to_string()];
        for m in moves {
            let g = match targets.iter().position(|t| *t == m.target) {
                Some(0) => return Err(SplitError::SameTarget(m.target.clone())),
                Some(g) => g,
                None => {
                    targets.push(m.target.clone());
                    targets.len() - 1
                }
            };
            for s in &m.services {
                let (name, _) = app
                    .services
                    .get_key_value(s)
                    .ok_or_else(|| SplitError::UnknownService(s.clone()))?;
                if group_of.insert(name.as_str(), g).is_some() {
                    return Err(SplitError::Twice(s.clone()));
                }
            }
        }
        if app
            .services
            .keys()
            .all(|s| group_of.contains_key(s.as_str()))
        {
            return Err(SplitError::NothingLeft);
        }
        let service_group = |s: &str| group_of.get(s).copied().unwrap_or(0);
        let mut groups: Vec<Group> = targets
            .into_iter()
            .map(|target| Group {
                target,
                services: Vec::new(),
                dependencies: Vec::new(),
                sessions: Vec::new(),
                egress_share: 0.0,
            })
            .collect();
        for name in app.services.keys() {
            groups[service_group(name)].services.push(name.clone());
        }
        for name in app.dependencies.keys() {
            let users = app
                .services
                .iter()
                .filter(|(_, s)| peers_of(s).any(|p| p == name))
                .map(|(n, _)| service_group(n));
            groups[users.min().unwrap_or(0)]
                .dependencies
                .push(name.clone());
        }
        for (name, s) in &app.sessions {
            groups[service_group(&s.spawned_by)]
                .sessions
                .push(name.clone());
        }
        let public = app.services.values().filter(|s| s.is_public()).count();
        for g in &mut groups {
            let mine = g
                .services
                .iter()
                .filter(|s| app.services[s.as_str()].is_public())
                .count();
            g.egress_share = if public == 0 {
                if g.services.is_empty() { 0.0 } else { 1.0 }
            } else {
                mine as f64 / public as f64
            };
        }
        let holder = |peer: &str| -> Option<usize> {
            groups.iter().position(|g| {
                g.services.iter().any(|s| s == peer) || g.dependencies.iter().any(|d| d == peer)
            })
        };
        let mut crossings = Vec::new();
        for (name, s) in &app.services {
            let mine = service_group(name);
            let peers: BTreeSet<&str> = peers_of(s).map(String::as_str).collect();
            for peer in peers {
                let Some(to_group) = holder(peer).filter(|g| *g != mine) else {
                    continue;
                };
                let settings = s
                    .env
                    .iter()
                    .filter(|(_, v)| names_host(v, peer))
                    .map(|(k, _)| k.clone())
                    .collect();
                let needs_exposure = app.services.get(peer).is_none_or(|p| !p.is_public());
                crossings.push(Crossing {
                    service: name.clone(),
                    to: peer.to_string(),
                    to_group,
                    settings,
                    needs_exposure,
                });
            }
        }
        Ok(Split { groups, crossings })
    }

    /// Group `i` as an app of its own: its services, dependencies and
    /// session containers; calls to other groups become secrets holding
    /// the other side's public address; its share of the egress.
    pub fn part(&self, app: &App, i: usize) -> App {
        let g = &self.groups[i];
        let mut part = app.clone();
        part.services.retain(|n, _| g.services.contains(n));
        part.dependencies.retain(|n, _| g.dependencies.contains(n));
        part.sessions.retain(|n, _| g.sessions.contains(n));
        for c in self
            .crossings
            .iter()
            .filter(|c| g.services.contains(&c.service))
        {
            let Some(svc) = part.services.get_mut(&c.service) else {
                continue;
            };
            svc.depends_on.retain(|p| *p != c.to);
            svc.connects_to.retain(|p| p.to != c.to);
            for k in &c.settings {
                svc.env.shift_remove(k);
                if !svc.secrets.contains(k) {
                    svc.secrets.push(k.clone());
                }
            }
        }
        let usage = part.usage.get_or_insert_with(Default::default);
        usage.egress_share = Some(g.egress_share);
        part
    }

    /// `targets` of the groups, in order, for messages.
    pub fn describe(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{} on {}", g.services.join(", "), g.target))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One group of a split, judged and priced on its target.
#[derive(Clone, Debug, Serialize)]
pub struct GroupEstimate {
    #[serde(flatten)]
    pub group: Group,
    pub assessment: Assessment,
    pub estimate: Estimate,
}

/// A split judged and priced: each group on its target, and the sum.
#[derive(Clone, Debug, Serialize)]
pub struct SplitEstimate {
    pub app: String,
    pub users: u32,
    pub groups: Vec<GroupEstimate>,
    pub crossings: Vec<Crossing>,
    pub total: f64,
    /// Some line of some group could not be priced: `total` is a floor.
    pub incomplete: bool,
    /// Some group cannot run on its target.
    pub blocked: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown target `{0}` in the split")]
pub struct UnknownTarget(pub String);

/// Fitness and cost of every group of `split` at `users`.
pub fn evaluate(
    engine: &Engine,
    app: &App,
    split: &Split,
    users: u32,
    strategy: Strategy,
) -> Result<SplitEstimate, UnknownTarget> {
    let mut groups = Vec::new();
    for (i, g) in split.groups.iter().enumerate() {
        let target = engine
            .catalog
            .target(&g.target)
            .ok_or_else(|| UnknownTarget(g.target.clone()))?;
        let part = split.part(app, i);
        let assessment = engine.assess_target(&components(&part), target);
        let estimate = cost::estimate(engine.catalog, &part, target, users, strategy);
        groups.push(GroupEstimate {
            group: g.clone(),
            assessment,
            estimate,
        });
    }
    Ok(SplitEstimate {
        app: app.name.clone(),
        users,
        total: groups.iter().map(|g| g.estimate.total).sum(),
        incomplete: groups.iter().any(|g| g.estimate.incomplete),
        blocked: groups
            .iter()
            .any(|g| g.assessment.status == Status::Blocked),
        groups,
        crossings: split.crossings.clone(),
    })
}

impl Crossing {
    /// What the team sets up for this call, in one line.
    pub fn describe(&self) -> String {
        let what = if self.settings.is_empty() {
            format!("`{}` calls `{}` across providers", self.service, self.to)
        } else {
            format!(
                "`{}` reaches `{}` across providers: set {} to its public address",
                self.service,
                self.to,
                self.settings
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if self.needs_exposure {
            format!(
                "{what} (it has no public port: expose it, with authentication and TLS, or keep both together)"
            )
        } else {
            what
        }
    }
}

/// Everything a service calls by name.
fn peers_of(s: &crate::describe::app::Service) -> impl Iterator<Item = &String> {
    s.depends_on
        .iter()
        .chain(s.connects_to.iter().map(|c| &c.to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(yaml: &str) -> App {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const SHOP: &str = r#"
apiVersion: deployment-manager/v1
kind: App
name: shop
services:
  web:
    image: shop/web:1
    ports: [{port: 3000, protocol: http, public: true}]
    env: {NEXT_PUBLIC_API_URL: "http://api:8080/v1", THEME: dark}
    depends_on: [api]
  api:
    image: shop/api:1
    ports: [{port: 8080, protocol: http, public: true}]
    env: {DATABASE_URL: "postgres://shop@db:5432/shop"}
    depends_on: [db]
  worker:
    image: shop/worker:1
    connects_to: [{to: db}]
    traits: {background_worker: true}
dependencies:
  db: {kind: postgres, version: "16"}
usage: {users: 100, egress_per_month: 50Gi}
"#;

    #[test]
    fn the_front_end_is_the_public_http_service_with_no_data_of_its_own() {
        assert_eq!(front_end(&app(SHOP)), vec!["web".to_string()]);
    }

    #[test]
    fn a_split_moves_the_front_end_and_turns_its_call_into_a_setting() {
        let a = app(SHOP);
        let moves = vec!["web=vercel".parse::<Move>().unwrap()];
        let s = Split::new(&a, "fly", &moves).unwrap();
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[0].services, ["api", "worker"]);
        assert_eq!(s.groups[0].dependencies, ["db"]);
        assert_eq!(s.groups[1].services, ["web"]);
        assert_eq!(s.groups[1].egress_share, 0.5);
        assert_eq!(
            s.crossings,
            vec![Crossing {
                service: "web".into(),
                to: "api".into(),
                to_group: 0,
                settings: vec!["NEXT_PUBLIC_API_URL".into()],
                needs_exposure: false,
            }]
        );
        let front = s.part(&a, 1);
        let web = &front.services["web"];
        assert!(web.depends_on.is_empty());
        assert_eq!(web.secrets, ["NEXT_PUBLIC_API_URL"]);
        assert_eq!(web.env.get("THEME").map(String::as_str), Some("dark"));
        assert!(front.dependencies.is_empty());
        let back = s.part(&a, 0);
        assert_eq!(back.services.keys().collect::<Vec<_>>(), ["api", "worker"]);
        assert_eq!(
            back.services["api"].env["DATABASE_URL"], "postgres://shop@db:5432/shop",
            "calls inside a group keep their address"
        );
    }

    #[test]
    fn bad_splits_say_what_is_wrong() {
        let a = app(SHOP);
        let split = |s: &[&str]| {
            let moves: Vec<Move> = s.iter().map(|m| m.parse().unwrap()).collect();
            Split::new(&a, "fly", &moves)
        };
        assert_eq!("web".parse::<Move>(), Err(SplitError::Syntax("web".into())));
        assert_eq!(
            split(&["shop=vercel"]),
            Err(SplitError::UnknownService("shop".into()))
        );
        assert_eq!(
            split(&["web=vercel", "web=render"]),
            Err(SplitError::Twice("web".into()))
        );
        assert_eq!(
            split(&["web,api,worker=render"]),
            Err(SplitError::NothingLeft)
        );
        assert_eq!(
            split(&["web=fly"]),
            Err(SplitError::SameTarget("fly".into()))
        );
        let two = split(&["web=vercel", "worker=render"]).unwrap();
        assert_eq!(
            two.groups
                .iter()
                .map(|g| g.target.as_str())
                .collect::<Vec<_>>(),
            ["fly", "vercel", "render"]
        );
    }

    #[test]
    fn a_dependency_two_groups_use_stays_with_the_main_group_and_is_a_crossing() {
        let mut a = app(SHOP);
        a.services
            .get_mut("web")
            .unwrap()
            .connects_to
            .push(crate::describe::app::Connection {
                to: "db".into(),
                port: None,
            });
        let moves = vec!["web=vercel".parse::<Move>().unwrap()];
        let s = Split::new(&a, "fly", &moves).unwrap();
        assert_eq!(s.groups[0].dependencies, ["db"]);
        let to_db = s.crossings.iter().find(|c| c.to == "db").unwrap();
        assert!(to_db.needs_exposure);
    }
}
