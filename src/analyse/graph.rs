//! The app's service graph: who calls whom, on which ports. Built once from
//! `depends_on`, `connects_to` and `connects_to_any`, so that every generator
//! that isolates traffic (NetworkPolicies, Compose and Swarm networks) allows
//! the same calls and no others.

use crate::describe::app::{App, Protocol};
use crate::describe::known::known;
use std::collections::{BTreeMap, BTreeSet};

/// A port a call is made on; UDP only where the peer declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    pub port: u16,
    pub udp: bool,
}

/// Which ports of the peer one component may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The peer's ports are not known (it declares none and the call names
    /// none), or the caller's peers are unknown: any port.
    AnyPort,
    Ports(BTreeSet<PortSpec>),
}

impl Reach {
    fn merge(&mut self, other: Reach) {
        match (&mut *self, other) {
            (Reach::AnyPort, _) => {}
            (_, Reach::AnyPort) => *self = Reach::AnyPort,
            (Reach::Ports(a), Reach::Ports(b)) => a.extend(b),
        }
    }
}

/// Why an edge exists, for findings and DEPLOY.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Because {
    DependsOn,
    ConnectsTo,
    /// The caller's peers are unknown (`connects_to_any`).
    AnyPeer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub reach: Reach,
    pub because: BTreeSet<Because>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// One edge per (caller, callee), ports merged; in the app's order.
    pub edges: Vec<Edge>,
    /// Services whose peers are unknown: they reach every component.
    pub open: Vec<String>,
}

/// Ports a component listens on, as the graph sees them.
pub fn listening_ports(app: &App, name: &str) -> BTreeSet<PortSpec> {
    if let Some(s) = app.services.get(name) {
        return s
            .ports
            .iter()
            .map(|p| PortSpec {
                port: p.port,
                udp: p.protocol == Protocol::Udp,
            })
            .collect();
    }
    app.dependencies
        .get(name)
        .and_then(|d| known().get(&d.kind))
        .and_then(|k| k.port)
        .map(|port| PortSpec { port, udp: false })
        .into_iter()
        .collect()
}

/// Does this component run as a container of the app (not an external
/// service, not embedded in another)? Only those can be reached or isolated.
pub fn runs_as_container(app: &App, name: &str) -> bool {
    app.services.contains_key(name)
        || app
            .dependencies
            .get(name)
            .is_some_and(|d| d.runs_as_container())
}

/// Most graph networks one app gets on a Docker host or swarm. Docker's
/// default address pools hold about 30 networks per engine, shared by every
/// project on it; past this the layout falls back to one shared network.
pub const MAX_NETWORKS: usize = 8;

/// Compose/Swarm networks that carry the graph. Networks have no direction
/// or port, so each called component gets one (`to-<name>`) that it and its
/// callers join: every edge connects, and the only extra reach is between
/// two callers of the same component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkLayout {
    /// Networks each component joins; a component absent here calls and is
    /// called by nothing and stays on the project's default network.
    pub joins: BTreeMap<String, Vec<String>>,
    /// Every network, in order.
    pub networks: Vec<String>,
    /// More callees than [`MAX_NETWORKS`]: one `backend` network for all.
    pub shared: bool,
}

impl Graph {
    pub fn networks(&self, app: &App) -> NetworkLayout {
        let edges: Vec<&Edge> = self
            .edges
            .iter()
            .filter(|e| runs_as_container(app, &e.from) && runs_as_container(app, &e.to))
            .collect();
        let mut callees: Vec<&str> = Vec::new();
        for e in &edges {
            if !callees.contains(&e.to.as_str()) {
                callees.push(&e.to);
            }
        }
        let mut layout = NetworkLayout::default();
        if callees.len() > MAX_NETWORKS {
            layout.shared = true;
            layout.networks.push("backend".into());
            for name in app.services.keys().chain(app.dependencies.keys()) {
                if runs_as_container(app, name) {
                    layout.joins.insert(name.clone(), vec!["backend".into()]);
                }
            }
            return layout;
        }
        for callee in callees {
            let net = format!("to-{callee}");
            let members = std::iter::once(callee).chain(
                edges
                    .iter()
                    .filter(|e| e.to == callee)
                    .map(|e| e.from.as_str()),
            );
            for m in members {
                let joins = layout.joins.entry(m.to_string()).or_default();
                if !joins.contains(&net) {
                    joins.push(net.clone());
                }
            }
            layout.networks.push(net);
        }
        layout
    }

    pub fn of(app: &App) -> Graph {
        let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
        let order: BTreeMap<&str, usize> = app
            .services
            .keys()
            .chain(app.dependencies.keys())
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut add = |from: &str, to: &str, reach: Reach, because: Because| {
            let (Some(&f), Some(&t)) = (order.get(from), order.get(to)) else {
                return; // checked by the loader; never cut or invent
            };
            if f == t {
                return;
            }
            let e = edges.entry((f, t)).or_insert_with(|| Edge {
                from: from.into(),
                to: to.into(),
                reach: Reach::Ports(BTreeSet::new()),
                because: BTreeSet::new(),
            });
            e.reach.merge(reach);
            e.because.insert(because);
        };
        let all_ports = |to: &str| {
            let ports = listening_ports(app, to);
            if ports.is_empty() {
                Reach::AnyPort
            } else {
                Reach::Ports(ports)
            }
        };
        let mut open = Vec::new();
        let calls = app
            .services
            .iter()
            .map(|(n, s)| (n, &s.connects_to))
            .chain(app.dependencies.iter().map(|(n, d)| (n, &d.connects_to)));
        for (name, connects_to) in calls {
            for c in connects_to {
                let reach = match c.port {
                    Some(port) => {
                        let udp = listening_ports(app, &c.to)
                            .iter()
                            .any(|p| p.port == port && p.udp);
                        Reach::Ports(BTreeSet::from([PortSpec { port, udp }]))
                    }
                    None => all_ports(&c.to),
                };
                add(name, &c.to, reach, Because::ConnectsTo);
            }
        }
        for (name, s) in &app.services {
            for d in &s.depends_on {
                add(name, d, all_ports(d), Because::DependsOn);
            }
            if s.connects_to_any {
                open.push(name.clone());
                for peer in app.services.keys().chain(app.dependencies.keys()) {
                    add(name, peer, Reach::AnyPort, Because::AnyPeer);
                }
            }
        }
        Graph {
            edges: edges.into_values().collect(),
            open,
        }
    }

    pub fn callers_of<'a>(&'a self, to: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.to == to)
    }

    pub fn callees_of<'a>(&'a self, from: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.from == from)
    }

    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.edges.iter().any(|e| e.from == from && e.to == to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::app::{Connection, Dependency, Port, Service};

    fn app() -> App {
        let mut app = App::new("shop");
        let svc = |ports: &[u16]| Service {
            image: Some("x".into()),
            ports: ports
                .iter()
                .map(|&port| Port {
                    port,
                    ..Port::default()
                })
                .collect(),
            ..Service::default()
        };
        let mut web = svc(&[8080]);
        web.connects_to = vec![
            Connection {
                to: "cart".into(),
                port: Some(7070),
            },
            Connection {
                to: "db".into(),
                port: None,
            },
        ];
        web.depends_on = vec!["db".into()];
        app.services.insert("web".into(), web);
        app.services.insert("cart".into(), svc(&[7070, 9090]));
        app.services.insert("jobs".into(), svc(&[]));
        app.dependencies.insert(
            "db".into(),
            Dependency {
                kind: "postgres".into(),
                ..Dependency::default()
            },
        );
        app
    }

    fn ports(list: &[u16]) -> Reach {
        Reach::Ports(
            list.iter()
                .map(|&port| PortSpec { port, udp: false })
                .collect(),
        )
    }

    #[test]
    fn edges_merge_depends_on_and_connects_to_with_their_ports() {
        let g = Graph::of(&app());
        assert_eq!(g.edges.len(), 2);
        assert_eq!(g.edges[0].to, "cart");
        assert_eq!(g.edges[0].reach, ports(&[7070]), "only the port named");
        assert_eq!(g.edges[1].to, "db");
        assert_eq!(g.edges[1].reach, ports(&[5432]), "the dependency's port");
        assert_eq!(
            g.edges[1].because,
            BTreeSet::from([Because::DependsOn, Because::ConnectsTo])
        );
        assert!(!g.allows("cart", "web"), "edges have a direction");
        assert!(!g.allows("jobs", "db"));
    }

    #[test]
    fn a_service_with_unknown_peers_reaches_every_component_on_any_port() {
        let mut app = app();
        app.services["jobs"].connects_to_any = true;
        let g = Graph::of(&app);
        assert_eq!(g.open, ["jobs"]);
        let from_jobs: Vec<_> = g.callees_of("jobs").map(|e| e.to.as_str()).collect();
        assert_eq!(from_jobs, ["web", "cart", "db"]);
        assert!(g.callees_of("jobs").all(|e| e.reach == Reach::AnyPort));
    }

    #[test]
    fn networks_join_each_callee_with_its_callers_only() {
        let g = Graph::of(&app());
        let n = g.networks(&app());
        assert_eq!(n.networks, ["to-cart", "to-db"]);
        assert_eq!(n.joins["web"], ["to-cart", "to-db"]);
        assert_eq!(n.joins["cart"], ["to-cart"]);
        assert_eq!(n.joins["db"], ["to-db"]);
        assert!(
            !n.joins.contains_key("jobs"),
            "calls nothing: default network"
        );
        assert!(!n.shared);
    }

    #[test]
    fn too_many_callees_share_one_network() {
        let mut app = app();
        for i in 0..MAX_NETWORKS {
            let name = format!("s{i}");
            app.services.insert(name.clone(), Service::default());
            app.services["web"].connects_to.push(Connection {
                to: name,
                port: Some(80),
            });
        }
        let n = Graph::of(&app).networks(&app);
        assert!(n.shared);
        assert_eq!(n.networks, ["backend"]);
        assert_eq!(n.joins.len(), app.services.len() + 1);
    }

    #[test]
    fn a_peer_without_ports_is_reached_on_any_port() {
        let mut app = app();
        app.services["web"].connects_to.push(Connection {
            to: "jobs".into(),
            port: None,
        });
        let g = Graph::of(&app);
        let e = g.callees_of("web").find(|e| e.to == "jobs").unwrap();
        assert_eq!(e.reach, Reach::AnyPort);
    }
}
