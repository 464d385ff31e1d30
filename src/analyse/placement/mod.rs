//! The placement: what runs where for one (app, target, users, strategy),
//! decided once. `cost` prices it line by line, `render` writes it (a
//! managed dependency becomes connection secrets instead of a container, N
//! nodes become N hosts), and every generated folder records it in
//! `placement.json`, so the bill and the files describe the same thing.

pub mod capacity;
pub mod sizing;
pub mod workload;

use crate::catalog::{Catalog, Price, Target};
use crate::describe::app::App;
use crate::describe::known::known;
use crate::state::settings::Strategy;
use serde::Serialize;
use workload::{Unit, Workload};

#[derive(Clone, Debug, Serialize)]
pub struct Placement {
    pub target: String,
    pub target_name: String,
    pub provider: String,
    pub users: u32,
    pub strategy: Strategy,
    pub layout: Layout,
    /// What runs on the target's compute: app services and self-hosted
    /// dependencies, with the replicas these users need.
    pub units: Vec<Placed>,
    /// Session containers started per user, at their peak count.
    pub sessions: Vec<Placed>,
    /// Every dependency and how it is hosted.
    pub dependencies: Vec<PlacedDependency>,
    /// The nodes that carry the units (VM and Kubernetes targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodePool>,
    /// Why no node size could carry the units, when none could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unplaceable: Option<String>,
    /// A load balancer spreads public traffic over several nodes.
    pub load_balancer: bool,
    /// Persistent disk on the target's volumes, in GB.
    pub volume_gb: f64,
    pub egress_gb: f64,
    /// Why each size and count was chosen.
    pub sizing: Vec<String>,
    /// The load these users put on the app (replicas, sessions, egress),
    /// with the assumptions and shortfalls it was derived with.
    #[serde(skip)]
    pub workload: Workload,
}

/// How the units sit on the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The operator's own machine.
    OwnMachine,
    /// One VM running the compose file.
    OneHost,
    /// Identical VMs, each running the stateless compose file, behind the
    /// load balancer (every dependency is managed or there is none).
    HostsBehindLoadBalancer,
    /// Several VMs joined into a Docker Swarm: stateful services stay on
    /// the node that holds their volume, the rest spread.
    Swarm,
    /// A Kubernetes node pool.
    Cluster,
    /// One platform instance size per service (Fly, Render, Heroku, …).
    Instances,
    /// Billed by use: no node or instance to choose.
    Usage,
}

#[derive(Clone, Debug, Serialize)]
pub struct Placed {
    pub name: String,
    pub replicas: u32,
    pub cpu: f64,
    pub memory_gb: f64,
    pub disk_gb: f64,
    /// The dependency kind, for self-hosted dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
    /// The platform instance size, on instance-priced targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<Offering>,
}

/// A priced catalog item: its id and what the provider calls it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offering {
    pub price_id: String,
    pub item: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlacedDependency {
    pub name: String,
    pub kind: String,
    pub hosting: Hosting,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Hosting {
    /// The target's managed offering of its family replaces the container.
    Managed { family: String, offering: Offering },
    /// A service outside the app (an API, a hosted store), priced on the
    /// target when it offers one, else at an outside provider.
    Outside {
        family: String,
        offering: Offering,
        on_target: bool,
    },
    /// An outside service whose price the catalog lacks.
    Unpriced,
    /// A container of the app, on the target's compute.
    SelfHosted,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodePool {
    pub offering: Offering,
    pub count: u32,
    pub vcpu: f64,
    pub memory_gb: f64,
}

impl Layout {
    /// How a person would say it, with the node pool when there is one.
    pub fn describe(self, nodes: Option<&NodePool>) -> String {
        let on = |what: &str| {
            nodes.map_or(what.to_string(), |n| {
                format!("{} × {} {what}", n.count, n.offering.item)
            })
        };
        match self {
            Layout::OwnMachine => "your own machine".into(),
            Layout::OneHost => on("(one VM)"),
            Layout::HostsBehindLoadBalancer => on("behind a load balancer"),
            Layout::Swarm => on("as a swarm"),
            Layout::Cluster => on("in a cluster"),
            Layout::Instances => "platform instances".into(),
            Layout::Usage => "billed by use".into(),
        }
    }
}

impl Placement {
    /// The workload's units that run on the target's compute (app services
    /// and self-hosted dependencies), in the workload's order.
    pub fn compute_units(&self) -> impl Iterator<Item = &Unit> {
        self.workload
            .services
            .iter()
            .filter(|w| self.units.iter().any(|u| u.name == w.name))
    }

    /// The managed offering that hosts dependency `name`, if any.
    pub fn managed(&self, name: &str) -> Option<&Offering> {
        self.dependencies
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| match &d.hosting {
                Hosting::Managed { offering, .. } => Some(offering),
                _ => None,
            })
    }

    /// The app as this placement runs it: dependencies hosted by a managed
    /// offering are marked (no container; the services that call them read
    /// their address from secrets), and where nothing scales replicas at run
    /// time (a VM, a swarm) each service gets the replicas priced for it.
    pub fn shape(&self, app: &App) -> App {
        let mut shaped = app.clone();
        for d in &self.dependencies {
            let Hosting::Managed { offering, .. } = &d.hosting else {
                continue;
            };
            if let Some(dep) = shaped.dependencies.get_mut(&d.name) {
                dep.managed_by = Some(offering.item.clone());
                // Its credentials are the provider's, read by the callers.
                dep.secrets.clear();
            }
            for svc in shaped.services.values_mut() {
                // A plain setting that names the dependency's host now has
                // to hold the managed offering's address: it becomes a
                // secret of the same name, filled on the host.
                let moved: Vec<String> = svc
                    .env
                    .iter()
                    .filter(|(_, v)| names_host(v, &d.name))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in moved {
                    svc.env.shift_remove(&k);
                    if !svc.secrets.contains(&k) {
                        svc.secrets.push(k);
                    }
                }
            }
        }
        if matches!(
            self.layout,
            Layout::OneHost | Layout::HostsBehindLoadBalancer | Layout::Swarm
        ) {
            for u in &self.units {
                if let Some(svc) = shaped.services.get_mut(&u.name)
                    && svc.autoscaling.is_some()
                {
                    svc.autoscaling = None;
                    svc.replicas = Some(u.replicas);
                }
            }
        }
        shaped
    }
}

/// Does a setting's value address `host` (`db`, `db:5432`,
/// `postgres://u@db:5432/x`, `http://db/`)?
pub(crate) fn names_host(value: &str, host: &str) -> bool {
    let after_scheme = value.split_once("://").map_or(value, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hostport.split(',').any(|hp| {
        let h = hp.rsplit_once(':').map_or(hp, |(h, _)| h);
        h == host
    })
}

/// Decides the placement of `app` on `target` for `users`.
pub fn place(
    catalog: &Catalog,
    app: &App,
    target: &Target,
    users: u32,
    strategy: Strategy,
) -> Placement {
    let w = workload::derive(app, users);
    let p = &target.pricing;
    let mut dependencies = Vec::new();
    let mut on_compute: Vec<Unit> = Vec::new();
    for unit in &w.services {
        let Some(kind) = &unit.dependency else {
            on_compute.push(unit.clone());
            continue;
        };
        let family = known().get(kind).and_then(|k| k.managed_as.clone());
        let allowed = app.dependencies.get(&unit.name).is_none_or(|d| d.managed);
        let offer = family
            .as_deref()
            .and_then(|f| Some((f, p.managed.get(f)?)))
            .filter(|_| allowed);
        let hosting = match offer {
            Some((family, id)) => Hosting::Managed {
                family: family.to_string(),
                offering: offering(catalog, id),
            },
            None => {
                on_compute.push(unit.clone());
                Hosting::SelfHosted
            }
        };
        dependencies.push(PlacedDependency {
            name: unit.name.clone(),
            kind: kind.clone(),
            hosting,
        });
    }
    for (name, d) in &app.dependencies {
        let k = known().get(&d.kind);
        if !k.is_some_and(|k| k.external) {
            continue;
        }
        let family = k
            .and_then(|k| k.managed_as.clone())
            .unwrap_or_else(|| d.kind.clone());
        let hosting = match (p.managed.get(&family), catalog.external.get(&family)) {
            (Some(id), _) => Hosting::Outside {
                family,
                offering: offering(catalog, id),
                on_target: true,
            },
            (None, Some(id)) => Hosting::Outside {
                family,
                offering: offering(catalog, id),
                on_target: false,
            },
            (None, None) => Hosting::Unpriced,
        };
        dependencies.push(PlacedDependency {
            name: name.clone(),
            kind: d.kind.clone(),
            hosting,
        });
    }

    let mut placement = Placement {
        target: target.id.clone(),
        target_name: target.name.clone(),
        provider: target.provider.clone(),
        users,
        strategy,
        layout: Layout::Usage,
        units: on_compute.iter().map(placed).collect(),
        sessions: w.sessions.iter().map(placed).collect(),
        dependencies,
        nodes: None,
        unplaceable: None,
        load_balancer: false,
        volume_gb: 0.0,
        egress_gb: w.egress_gb,
        sizing: Vec::new(),
        workload: w,
    };
    match p.model.as_str() {
        "local" => placement.layout = Layout::OwnMachine,
        "vm" | "kubernetes" => on_nodes(&mut placement, catalog, target, &on_compute),
        "instances" => on_instances(&mut placement, catalog, target),
        _ => {
            placement.volume_gb = disk_of(on_compute.iter());
            placement.load_balancer = p.lb.is_some() && on_compute.iter().any(|u| u.public);
        }
    }
    placement
}

/// Total disk in GB; `0.0` when there is none (an empty float sum is -0.0).
fn disk_of<'a>(units: impl Iterator<Item = &'a Unit>) -> f64 {
    units.fold(0.0, |total, u| total + u.disk_gb)
}

fn offering(catalog: &Catalog, price_id: &str) -> Offering {
    Offering {
        price_id: price_id.to_string(),
        item: catalog
            .price(price_id)
            .map_or_else(|| price_id.to_string(), |p| p.item.clone()),
    }
}

fn placed(u: &Unit) -> Placed {
    Placed {
        name: u.name.clone(),
        replicas: u.replicas,
        cpu: u.cpu,
        memory_gb: u.memory_gb,
        disk_gb: u.disk_gb,
        dependency: u.dependency.clone(),
        instance: None,
    }
}

/// Packs the units, the sessions and the strategy's deploy headroom onto
/// the cheapest nodes that hold them, and lays the nodes out.
fn on_nodes(placement: &mut Placement, catalog: &Catalog, target: &Target, units: &[Unit]) {
    let p = &target.pricing;
    let kubernetes = p.model == "kubernetes";
    let mut pack: Vec<Unit> = units.to_vec();
    pack.extend(placement.workload.sessions.iter().cloned());
    // Deploy headroom: blue-green runs a full second copy, canary one more replica.
    match placement.strategy {
        Strategy::BlueGreen => {
            for u in units.iter().filter(|u| u.dependency.is_none()) {
                let mut copy = u.clone();
                copy.name = format!("{} (green)", u.name);
                pack.push(copy);
            }
            placement.sizing.push(
                "blue-green: capacity for a second copy of every app service during deploys".into(),
            );
        }
        Strategy::Canary => {
            if let Some(u) = units
                .iter()
                .filter(|u| u.dependency.is_none() && u.public)
                .max_by(|a, b| a.memory_gb.total_cmp(&b.memory_gb))
            {
                let mut copy = u.clone();
                copy.name = format!("{} (canary)", u.name);
                copy.replicas = 1;
                pack.push(copy);
                placement
                    .sizing
                    .push(format!("canary: room for one extra `{}` replica", u.name));
            }
        }
        _ => {}
    }
    let sizes: Vec<&Price> = p
        .instances
        .iter()
        .filter_map(|id| catalog.price(id))
        .collect();
    let ha = units.iter().any(|u| u.public && u.replicas >= 2);
    // Past fifty VMs a team runs an orchestrator; a managed cluster's node
    // pool grows to thousands (GKE allows 15,000 nodes), so 1,000 bounds it.
    let max_nodes = p.max_nodes.unwrap_or(if kubernetes { 1000 } else { 50 });
    // A one-machine target (Compose) keeps its replicas on that machine.
    let min_nodes = p
        .min_nodes
        .unwrap_or(1)
        .max(if ha { 2 } else { 1 })
        .min(max_nodes);
    if ha && max_nodes == 1 {
        placement
            .sizing
            .push("one machine: the replicas share it, so a machine failure stops the app".into());
    }
    // Off Kubernetes (whose cluster always has its load balancer), a public
    // app on several VMs needs one: its price counts against that choice.
    let public = units.iter().any(|u| u.public);
    let lb_monthly = if public && !kubernetes {
        p.lb.as_deref()
            .and_then(|id| catalog.price(id))
            .and_then(|x| x.monthly())
            .unwrap_or(0.0)
    } else {
        0.0
    };
    match sizing::choose(&sizes, &pack, min_nodes, max_nodes, lb_monthly) {
        Some(choice) => {
            placement.nodes = Some(NodePool {
                offering: Offering {
                    price_id: choice.size.id.clone(),
                    item: choice.size.item.clone(),
                },
                count: choice.nodes,
                vcpu: choice.size.vcpu.unwrap_or(0.0),
                memory_gb: choice.size.memory_gb.unwrap_or(0.0),
            });
            placement.sizing.push(choice.explain);
        }
        None => {
            let all = pack
                .iter()
                .map(|u| format!("{} ({} vCPU, {:.1} GB)", u.name, u.cpu, u.memory_gb))
                .collect::<Vec<_>>()
                .join(", ");
            placement.unplaceable = Some(format!(
                "largest catalog size is too small for one of: {all}"
            ));
        }
    }
    let count = placement.nodes.as_ref().map_or(1, |n| n.count);
    // State lives on one node's disk: spreading such an app over several
    // VMs needs an orchestrator that keeps each volume's service with it.
    let stateful = units
        .iter()
        .any(|u| u.dependency.is_some() || u.disk_gb > 0.0)
        || !placement.workload.sessions.is_empty();
    placement.layout = if kubernetes {
        Layout::Cluster
    } else if target.family == "swarm" || (count > 1 && stateful) {
        Layout::Swarm
    } else if count > 1 {
        Layout::HostsBehindLoadBalancer
    } else {
        Layout::OneHost
    };
    if count > 1 && !kubernetes {
        placement.sizing.push(match placement.layout {
            Layout::Swarm => format!("{count} VMs form a Docker Swarm: stateful services stay on the node that holds their volume, the rest spread over all nodes"),
            _ => format!("{count} identical VMs run the app behind the load balancer; every dependency is managed, so no VM holds state"),
        });
    }
    placement.load_balancer = public && (kubernetes || count > 1);
    placement.volume_gb = disk_of(units.iter().chain(&placement.workload.sessions));
}

/// The cheapest instance size that holds one replica, per unit.
fn on_instances(placement: &mut Placement, catalog: &Catalog, target: &Target) {
    placement.layout = Layout::Instances;
    let sizes: Vec<&Price> = target
        .pricing
        .instances
        .iter()
        .filter_map(|id| catalog.price(id))
        .collect();
    for u in placement
        .units
        .iter_mut()
        .chain(placement.sessions.iter_mut())
    {
        let fit = sizes
            .iter()
            .filter(|s| {
                s.vcpu.unwrap_or(0.0) + 1e-9 >= u.cpu
                    && s.memory_gb.unwrap_or(0.0) + 1e-9 >= u.memory_gb
            })
            .min_by(|a, b| {
                a.usd
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.usd.unwrap_or(f64::MAX))
            });
        if let Some(size) = fit {
            u.instance = Some(Offering {
                price_id: size.id.clone(),
                item: size.item.clone(),
            });
            placement.sizing.push(format!(
                "`{}` needs {} vCPU / {:.2} GB per replica: {} is the cheapest instance that fits",
                u.name, u.cpu, u.memory_gb, size.item
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::names_host;

    #[test]
    fn a_setting_names_a_host_only_as_its_host() {
        assert!(names_host("db", "db"));
        assert!(names_host("db:5432", "db"));
        assert!(names_host(
            "postgres://app:x@db:5432/app?sslmode=disable",
            "db"
        ));
        assert!(names_host("redis://cache:6379/0", "cache"));
        assert!(names_host("http://db/", "db"));
        assert!(names_host("mongodb://a:1,db:27017/x", "db"));
        assert!(!names_host("dbx:5432", "db"));
        assert!(!names_host("postgres://db@other:5432/db", "db"));
        assert!(!names_host("http://api/db", "db"));
        assert!(!names_host("true", "db"));
    }
}
