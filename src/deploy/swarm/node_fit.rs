//! Which nodes of the swarm can take each service, decided before anything
//! changes: swarm itself would accept a service no node can run and leave
//! its tasks pending until the deploy times out, and would move a
//! database's task to a node where its volume is empty. Nodes are read
//! once ([`read_nodes`]); the judgement ([`judge`]) is pure.

use crate::deploy::release::PlanLine;
use crate::deploy::spec::{AccessorySpec, ReleaseSpec};
use crate::describe::node_placement::{NodeFacts, NodePlacement};
use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeState};
use std::collections::BTreeMap;

/// A node as placement sees it.
#[derive(Clone, Debug, Default)]
pub struct SwarmNode {
    pub facts: NodeFacts,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// The address the node talks to the swarm from.
    pub address: String,
}

impl SwarmNode {
    fn from_api(n: Node) -> SwarmNode {
        let spec = n.spec.unwrap_or_default();
        let desc = n.description.unwrap_or_default();
        let platform = desc.platform.unwrap_or_default();
        let status = n.status.unwrap_or_default();
        SwarmNode {
            facts: NodeFacts {
                id: n.id.unwrap_or_default(),
                hostname: desc.hostname.unwrap_or_default(),
                role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
                os: platform.os.unwrap_or_default(),
                arch: platform.architecture.unwrap_or_default(),
                labels: spec.labels.unwrap_or_default().into_iter().collect(),
                engine_labels: desc
                    .engine
                    .and_then(|e| e.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            },
            state: status.state.unwrap_or(NodeState::UNKNOWN).to_string(),
            address: status.addr.unwrap_or_default(),
            availability: spec
                .availability
                .unwrap_or(NodeSpecAvailabilityEnum::ACTIVE)
                .to_string(),
        }
    }
}

pub async fn read_nodes(docker: &bollard::Docker) -> Result<Vec<SwarmNode>, String> {
    let mut nodes: Vec<SwarmNode> = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(|e| format!("list nodes: {e}"))?
        .into_iter()
        .map(SwarmNode::from_api)
        .collect();
    nodes.sort_by(|a, b| (&a.facts.hostname, &a.facts.id).cmp(&(&b.facts.hostname, &b.facts.id)));
    Ok(nodes)
}

/// One thing to place: a service's replicas or a dependency's one task.
struct Workload<'a> {
    name: &'a str,
    replicas: u32,
    placement: &'a NodePlacement,
    /// A named volume its data lives in (local to the node of its task).
    volume: Option<&'a str>,
}

fn workloads(spec: &ReleaseSpec) -> Vec<Workload<'_>> {
    let services = spec.services.iter().map(|s| Workload {
        name: &s.name,
        replicas: s.replicas,
        placement: &s.placement,
        volume: s
            .volumes
            .iter()
            .filter_map(|v| v.split_once(':'))
            .find(|(src, _)| !src.starts_with('/'))
            .map(|(src, _)| src),
    });
    let accessories = spec.accessories.iter().map(|a| Workload {
        name: &a.name,
        replicas: 1,
        placement: &a.placement,
        volume: a.volume.as_ref().map(|(v, _)| v.as_str()),
    });
    services.chain(accessories).collect()
}

/// Why `node` cannot run tasks of `placement`, or `None` when it can.
fn refusal(node: &SwarmNode, placement: &NodePlacement) -> Option<String> {
    if node.state != "ready" {
        return Some(format!("{}: {}", node.facts.hostname, node.state));
    }
    if node.availability != "active" {
        return Some(format!("{}: {}", node.facts.hostname, node.availability));
    }
    let constraints = placement.parsed().unwrap_or_default();
    let failed: Vec<&str> = placement
        .constraints
        .iter()
        .zip(&constraints)
        .filter(|(_, c)| !c.holds_on(&node.facts))
        .map(|(text, _)| text.as_str())
        .collect();
    (!failed.is_empty()).then(|| format!("{}: not {}", node.facts.hostname, failed.join(", ")))
}

/// A plan line per service saying which nodes can run it, a warning for
/// a volume that several nodes could take (its task would find an empty
/// one after a move); an error, naming each node's reason, when no node
/// can take a service or its replicas.
pub fn judge(
    spec: &ReleaseSpec,
    nodes: &[SwarmNode],
    manager: &str,
) -> Result<Vec<PlanLine>, String> {
    let mut lines = Vec::new();
    for w in workloads(spec) {
        let (fit, refused): (Vec<&SwarmNode>, Vec<String>) = {
            let mut fit = Vec::new();
            let mut refused = Vec::new();
            for n in nodes {
                match refusal(n, w.placement) {
                    None => fit.push(n),
                    Some(why) => refused.push(why),
                }
            }
            (fit, refused)
        };
        let what = match w.volume {
            Some(v) => format!("{}'s volume {v}", w.name),
            None => w.name.to_string(),
        };
        if fit.is_empty() {
            return Err(format!(
                "no node of the swarm can take {what} ({}); change its placement in app.yaml, or make a node fit (`docker node update --availability active`, `--label-add`)",
                refused.join("; ")
            ));
        }
        if let Some(max) = w.placement.max_per_node
            && (max as usize).saturating_mul(fit.len()) < w.replicas as usize
        {
            return Err(format!(
                "{} wants {} replicas at most {max} per node, and only {} node(s) can run it ({})",
                w.name,
                w.replicas,
                fit.len(),
                fit.iter()
                    .map(|n| n.facts.hostname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let names: Vec<&str> = fit.iter().map(|n| n.facts.hostname.as_str()).collect();
        let (action, detail) = match w.volume {
            Some(v) if fit.len() > 1 => (
                "warn",
                format!(
                    "{} nodes can run it ({}), but volume {v} lives on one node: a task moved elsewhere starts with an empty one; pin it with `placement: {{constraints: [node.hostname=={}]}}` or a node label",
                    fit.len(),
                    names.join(", "),
                    names[0]
                ),
            ),
            _ => ("ok", format!("can run on {}", names.join(", "))),
        };
        lines.push(PlanLine {
            host: manager.to_string(),
            action: action.into(),
            kind: "placement".into(),
            name: w.name.to_string(),
            detail,
        });
    }
    Ok(lines)
}

/// Where each dependency's moved data goes in a swarm: the one node its
/// placement lets its task run on (its node id, by dependency). A
/// dependency that could start on several nodes is refused before anything
/// changes, since its task could start where the copied volume is not;
/// the error names the pin that fixes it (the manager, `manager`, as the
/// example).
pub fn data_homes(
    accessories: &[AccessorySpec],
    nodes: &[SwarmNode],
    manager: &str,
) -> Result<BTreeMap<String, String>, String> {
    let example = nodes
        .iter()
        .find(|n| n.facts.id == manager)
        .map_or("<node>", |n| n.facts.hostname.as_str());
    let mut homes = BTreeMap::new();
    let mut loose = Vec::new();
    for a in accessories.iter().filter(|a| a.volume.is_some()) {
        let fit: Vec<&SwarmNode> = nodes
            .iter()
            .filter(|n| refusal(n, &a.placement).is_none())
            .collect();
        match fit.as_slice() {
            [one] => {
                homes.insert(a.name.clone(), one.facts.id.clone());
            }
            [] => loose.push(format!("no node can run {}", a.name)),
            many => loose.push(format!(
                "{} could run on {}",
                a.name,
                many.iter()
                    .map(|n| n.facts.hostname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if loose.is_empty() {
        return Ok(homes);
    }
    Err(format!(
        "the moved data is copied to the one node each dependency runs on, but {}: pin each to one node with `placement: {{constraints: [node.hostname=={example}]}}` (or another node's name) in app.yaml, then move again",
        loose.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::spec::{AccessorySpec, ServiceSpec};

    fn node(host: &str, state: &str, availability: &str, labels: &[(&str, &str)]) -> SwarmNode {
        SwarmNode {
            facts: NodeFacts {
                id: host.into(),
                hostname: host.into(),
                role: "worker".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            state: state.into(),
            availability: availability.into(),
            address: String::new(),
        }
    }

    fn spec(constraints: &[&str], replicas: u32, max_per_node: Option<u32>) -> ReleaseSpec {
        let placement = NodePlacement {
            constraints: constraints.iter().map(|c| c.to_string()).collect(),
            max_per_node,
            ..Default::default()
        };
        ReleaseSpec {
            services: vec![ServiceSpec {
                name: "web".into(),
                replicas,
                ..Default::default()
            }],
            accessories: vec![AccessorySpec {
                name: "db".into(),
                kind: "postgres".into(),
                volume: Some(("db-data".into(), "/var/lib/postgresql/data".into())),
                placement,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn three() -> Vec<SwarmNode> {
        vec![
            node("n1", "ready", "active", &[]),
            node("n2", "ready", "drain", &[("disk", "ssd")]),
            node("n3", "down", "active", &[("disk", "ssd")]),
        ]
    }

    #[test]
    fn a_volume_no_node_can_take_is_refused_with_each_nodes_reason() {
        let err = judge(&spec(&["node.labels.disk==ssd"], 1, None), &three(), "m").unwrap_err();
        assert!(err.contains("db's volume db-data"), "{err}");
        assert!(err.contains("n1: not node.labels.disk==ssd"), "{err}");
        assert!(err.contains("n2: drain"), "{err}");
        assert!(err.contains("n3: down"), "{err}");
    }

    #[test]
    fn a_volume_several_nodes_could_take_is_a_warning_naming_a_pin() {
        let nodes = vec![
            node("n1", "ready", "active", &[]),
            node("n2", "ready", "active", &[]),
        ];
        let lines = judge(&spec(&[], 2, None), &nodes, "m").unwrap();
        let db = lines.iter().find(|l| l.name == "db").unwrap();
        assert_eq!(db.action, "warn");
        assert!(db.detail.contains("node.hostname==n1"), "{}", db.detail);
        let web = lines.iter().find(|l| l.name == "web").unwrap();
        assert_eq!(
            (web.action.as_str(), web.detail.as_str()),
            ("ok", "can run on n1, n2")
        );
        // Pinned: fine.
        let lines = judge(&spec(&["node.hostname==n2"], 2, None), &nodes, "m").unwrap();
        assert!(lines.iter().all(|l| l.action == "ok"), "{lines:?}");
    }

    #[test]
    fn moved_data_goes_to_the_one_node_its_dependency_is_pinned_to() {
        let nodes = vec![
            node("n1", "ready", "active", &[]),
            node("n2", "ready", "active", &[]),
            node("n3", "down", "active", &[]),
        ];
        let err = data_homes(&spec(&[], 1, None).accessories, &nodes, "n1").unwrap_err();
        // A node that is down is not a place it could start.
        assert!(err.contains("db could run on n1, n2:"), "{err}");
        assert!(err.contains("node.hostname==n1"), "{err}");
        let homes = data_homes(
            &spec(&["node.hostname==n2"], 1, None).accessories,
            &nodes,
            "n1",
        )
        .unwrap();
        assert_eq!(homes.get("db").map(String::as_str), Some("n2"));
        let err = data_homes(
            &spec(&["node.hostname==n3"], 1, None).accessories,
            &nodes,
            "n1",
        )
        .unwrap_err();
        assert!(err.contains("no node can run db"), "{err}");
    }

    #[test]
    fn replicas_beyond_max_per_node_times_fitting_nodes_are_refused() {
        let mut s = spec(&[], 3, None);
        s.services[0].placement.max_per_node = Some(1);
        let nodes = vec![
            node("n1", "ready", "active", &[]),
            node("n2", "ready", "active", &[]),
        ];
        let err = judge(&s, &nodes, "m").unwrap_err();
        assert!(
            err.contains("web wants 3 replicas at most 1 per node"),
            "{err}"
        );
        s.services[0].replicas = 2;
        assert!(judge(&s, &nodes, "m").is_ok());
    }
}
