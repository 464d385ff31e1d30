//! Which nodes of a cluster a service may run on, in swarm's own words
//! (`node.labels.disk==ssd`, `node.role!=manager`), so a compose file's
//! `deploy.placement` carries over unchanged. Kubernetes gets the label
//! constraints as node affinity; other keys have no equivalent there.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `placement:` of a service or dependency in app.yaml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NodePlacement {
    /// Every one must hold for a node to run a replica: `node.labels.K==V`,
    /// `node.hostname==H`, `node.role==worker`, `node.id==…`,
    /// `node.platform.os==linux`, `node.platform.arch==x86_64`,
    /// `engine.labels.K==V`; `!=` for "not".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Node labels to spread replicas evenly over, in order (`zone`, then
    /// `rack`): swarm's spread preferences, Kubernetes' topology spread.
    /// Replicas are spread over nodes in any case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<String>,
    /// At most this many replicas on one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_node: Option<u32>,
}

impl NodePlacement {
    pub fn is_empty(&self) -> bool {
        *self == NodePlacement::default()
    }

    /// The constraints, parsed; the first one that does not parse is the error.
    pub fn parsed(&self) -> Result<Vec<Constraint>, (usize, String)> {
        self.constraints
            .iter()
            .enumerate()
            .map(|(i, c)| Constraint::parse(c).map_err(|e| (i, e)))
            .collect()
    }
}

/// What a constraint looks at on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKey {
    Id,
    Hostname,
    Role,
    Os,
    Arch,
    /// A label the swarm's operator set on the node (`docker node update --label-add`).
    Label(String),
    /// A label from the engine's own configuration.
    EngineLabel(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub key: NodeKey,
    pub equal: bool,
    pub value: String,
}

/// What a node offers to constraints.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    pub os: String,
    pub arch: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub engine_labels: std::collections::BTreeMap<String, String>,
}

impl Constraint {
    /// Parses `key==value` or `key!=value` (spaces around either part allowed).
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let (key, value, equal) = if let Some((k, v)) = text.split_once("==") {
            (k, v, true)
        } else if let Some((k, v)) = text.split_once("!=") {
            (k, v, false)
        } else {
            return Err(format!(
                "constraint `{text}` needs `==` or `!=`, as in `node.labels.disk==ssd`"
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || value.contains("==") || value.contains("!=") {
            return Err(format!(
                "constraint `{text}` needs one value after its operator"
            ));
        }
        let key = match key {
            "node.id" => NodeKey::Id,
            "node.hostname" => NodeKey::Hostname,
            "node.role" => NodeKey::Role,
            "node.platform.os" => NodeKey::Os,
            "node.platform.arch" => NodeKey::Arch,
            k => match (
                k.strip_prefix("node.labels."),
                k.strip_prefix("engine.labels."),
            ) {
                (Some(l), _) if !l.is_empty() => NodeKey::Label(l.into()),
                (_, Some(l)) if !l.is_empty() => NodeKey::EngineLabel(l.into()),
                _ => {
                    return Err(format!(
                        "constraint `{text}`: `{k}` is not a node attribute; use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label> or engine.labels.<label>"
                    ));
                }
            },
        };
        if key == NodeKey::Role && !matches!(value, "manager" | "worker") {
            return Err(format!(
                "constraint `{text}`: a node's role is `manager` or `worker`"
            ));
        }
        Ok(Constraint {
            key,
            equal,
            value: value.into(),
        })
    }

    /// Swarm's reading: a label the node lacks never equals a value (and
    /// so always satisfies `!=`).
    pub fn holds_on(&self, node: &NodeFacts) -> bool {
        let found = match &self.key {
            NodeKey::Id => Some(&node.id),
            NodeKey::Hostname => Some(&node.hostname),
            NodeKey::Role => Some(&node.role),
            NodeKey::Os => Some(&node.os),
            NodeKey::Arch => Some(&node.arch),
            NodeKey::Label(l) => node.labels.get(l),
            NodeKey::EngineLabel(l) => node.engine_labels.get(l),
        };
        let same = found.is_some_and(|v| v.eq_ignore_ascii_case(&self.value));
        same == self.equal
    }

    /// The node label it tests, for targets that only know node labels.
    pub fn label(&self) -> Option<&str> {
        match &self.key {
            NodeKey::Label(l) => Some(l),
            _ => None,
        }
    }
}

/// Swarm reports the kernel's architecture names, Kubernetes Go's.
const ARCH_NAMES: [(&str, &str); 2] = [("x86_64", "amd64"), ("aarch64", "arm64")];

/// A swarm (kernel) architecture name in Kubernetes' words.
pub fn kube_arch(arch: &str) -> &str {
    ARCH_NAMES
        .iter()
        .find(|(k, _)| *k == arch)
        .map_or(arch, |(_, g)| g)
}

/// A Kubernetes architecture name in swarm's (the kernel's) words.
pub fn swarm_arch(arch: &str) -> &str {
    ARCH_NAMES
        .iter()
        .find(|(_, g)| *g == arch)
        .map_or(arch, |(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(hostname: &str, role: &str, labels: &[(&str, &str)]) -> NodeFacts {
        NodeFacts {
            id: format!("id-{hostname}"),
            hostname: hostname.into(),
            role: role.into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            engine_labels: Default::default(),
        }
    }

    #[test]
    fn swarm_constraints_parse_with_or_without_spaces() {
        let c = Constraint::parse("node.labels.disk == ssd").unwrap();
        assert_eq!(c.key, NodeKey::Label("disk".into()));
        assert!(c.equal);
        assert_eq!(c.value, "ssd");
        let c = Constraint::parse("node.role!=manager").unwrap();
        assert_eq!(c.key, NodeKey::Role);
        assert!(!c.equal);
    }

    #[test]
    fn malformed_constraints_say_what_is_wrong() {
        assert!(
            Constraint::parse("node.labels.disk=ssd")
                .unwrap_err()
                .contains("`==` or `!=`")
        );
        assert!(
            Constraint::parse("node.colour==red")
                .unwrap_err()
                .contains("not a node attribute")
        );
        assert!(Constraint::parse("node.labels.==x").is_err());
        assert!(Constraint::parse("node.hostname==").is_err());
        assert!(
            Constraint::parse("node.role==boss")
                .unwrap_err()
                .contains("manager")
        );
    }

    #[test]
    fn constraints_hold_as_swarm_reads_them() {
        let ssd = node("db1", "worker", &[("disk", "ssd")]);
        let bare = node("web1", "manager", &[]);
        let c = Constraint::parse("node.labels.disk==ssd").unwrap();
        assert!(c.holds_on(&ssd) && !c.holds_on(&bare));
        // A missing label is "not equal".
        let c = Constraint::parse("node.labels.disk!=ssd").unwrap();
        assert!(!c.holds_on(&ssd) && c.holds_on(&bare));
        let c = Constraint::parse("node.role==manager").unwrap();
        assert!(c.holds_on(&bare) && !c.holds_on(&ssd));
        let c = Constraint::parse("node.hostname!=db1").unwrap();
        assert!(!c.holds_on(&ssd) && c.holds_on(&bare));
    }
}
