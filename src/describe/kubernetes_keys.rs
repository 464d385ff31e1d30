//! Nothing is dropped in silence: after a Kubernetes import, every key of
//! every object is either one the importer reads (listed here, next to what
//! reads it) or named in a finding. Objects handled as a whole (RBAC,
//! NetworkPolicies, Secrets, kinds not understood) already have their
//! finding and are skipped.

use super::findings::{Findings, Severity};
use super::kubernetes_doc::Doc;
use serde_json::Value;

/// Kinds whose finding at the object covers all of its keys.
const WHOLE: [&str; 13] = [
    "Secret",
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ResourceQuota",
    "LimitRange",
    "",
    "CustomResourceDefinition",
];

/// Read from every object.
const COMMON: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata.name",
    "metadata.namespace",
    "metadata.labels.**",
];

/// Read from a workload's own spec (the pod template is below).
const WORKLOAD: &[&str] = &[
    "spec.replicas",
    "spec.selector.**",
    "spec.serviceName",
    "spec.schedule",
    "spec.volumeClaimTemplates.*.metadata.name",
    "spec.volumeClaimTemplates.*.spec.resources.requests.storage",
];

/// Read from the pod template; the first container is the service.
const POD: &[&str] = &[
    "metadata.labels.**",
    "spec.serviceAccountName",
    "spec.nodeSelector.**",
    "spec.initContainers.**",
    "spec.containers.0.name",
    "spec.containers.0.image",
    "spec.containers.0.command.*",
    "spec.containers.0.args.*",
    "spec.containers.0.ports.*.containerPort",
    "spec.containers.0.ports.*.name",
    "spec.containers.0.ports.*.protocol",
    "spec.containers.0.env.*.name",
    "spec.containers.0.env.*.value",
    "spec.containers.0.env.*.valueFrom.configMapKeyRef.name",
    "spec.containers.0.env.*.valueFrom.configMapKeyRef.key",
    "spec.containers.0.env.*.valueFrom.secretKeyRef.name",
    "spec.containers.0.env.*.valueFrom.secretKeyRef.key",
    "spec.containers.0.envFrom.*.configMapRef.name",
    "spec.containers.0.envFrom.*.secretRef.name",
    "spec.containers.0.resources.requests.cpu",
    "spec.containers.0.resources.requests.memory",
    "spec.containers.0.resources.limits.cpu",
    "spec.containers.0.resources.limits.memory",
    "spec.containers.0.resources.limits.nvidia.com/gpu",
    "spec.containers.0.readinessProbe.**",
    "spec.containers.0.livenessProbe.**",
    "spec.containers.0.startupProbe.**",
    "spec.containers.0.volumeMounts.*.name",
    "spec.containers.0.volumeMounts.*.mountPath",
    "spec.containers.0.securityContext.privileged",
    "spec.volumes.*.name",
    "spec.volumes.*.persistentVolumeClaim.claimName",
    "spec.volumes.*.emptyDir.**",
    "spec.volumes.*.hostPath.path",
    "spec.volumes.*.configMap.**",
    "spec.volumes.*.secret.**",
    "spec.volumes.*.projected.**",
];

/// Read from the pod template of a workload recognised as a dependency
/// (a database image): targets run or replace it their own way, so only
/// what says which and how big is read.
const DEPENDENCY_POD: &[&str] = &[
    "metadata.labels.**",
    "spec.containers.0.name",
    "spec.containers.0.image",
    "spec.containers.0.ports.0.containerPort",
    "spec.containers.0.ports.0.name",
    "spec.containers.0.ports.0.protocol",
    "spec.containers.0.resources.requests.cpu",
    "spec.containers.0.resources.requests.memory",
    "spec.containers.0.resources.limits.cpu",
    "spec.containers.0.resources.limits.memory",
    "spec.containers.0.volumeMounts.*.name",
    "spec.containers.0.volumeMounts.*.mountPath",
];

const SERVICE: &[&str] = &[
    "spec.selector.**",
    "spec.ports.*.port",
    "spec.ports.*.targetPort",
    "spec.ports.*.name",
    "spec.ports.*.protocol",
    "spec.ports.*.appProtocol",
    "spec.type",
    "spec.clusterIP",
];

const INGRESS: &[&str] = &[
    "spec.rules.*.host",
    "spec.rules.*.http.paths.*.backend.service.name",
    "spec.rules.*.http.paths.*.backend.service.port.**",
];

const HPA: &[&str] = &[
    "spec.scaleTargetRef.**",
    "spec.minReplicas",
    "spec.maxReplicas",
    "spec.metrics.*.type",
    "spec.metrics.*.resource.name",
    "spec.metrics.*.resource.target.type",
    "spec.metrics.*.resource.target.averageUtilization",
];

/// Every leaf of a document as its path of keys and indices.
pub fn leaves(v: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut stack: Vec<(Vec<String>, &Value)> = vec![(Vec::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m.iter().rev() {
                    let mut p = path.clone();
                    p.push(k.clone());
                    stack.push((p, x));
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate().rev() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    stack.push((p, x));
                }
            }
            _ => out.push(path),
        }
    }
    out
}

fn matches(pattern: &str, path: &[String]) -> bool {
    let pat: Vec<&str> = split_pattern(pattern);
    let mut i = 0;
    for (j, seg) in pat.iter().enumerate() {
        if *seg == "**" {
            return j == pat.len() - 1;
        }
        match path.get(i) {
            Some(p) if *seg == "*" || seg == p => i += 1,
            _ => return false,
        }
    }
    i == path.len()
}

/// Splits on dots, keeping `nvidia.com/gpu` whole (the one dotted key read).
fn split_pattern(pattern: &str) -> Vec<&str> {
    match pattern.strip_suffix(".nvidia.com/gpu") {
        Some(head) => {
            let mut v: Vec<&str> = head.split('.').collect();
            v.push("nvidia.com/gpu");
            v
        }
        None => pattern.split('.').collect(),
    }
}

/// The pod template's path in a workload, if it is one.
fn pod_prefix(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => Some(&["spec", "template"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// Is this leaf one the importer reads (or covers with a finding of its
/// own)? `dependency`: the workload became a dependency, not a service.
pub fn is_read(kind: &str, path: &[String], dependency: bool) -> bool {
    if WHOLE.contains(&kind) || COMMON.iter().any(|p| matches(p, path)) {
        return true;
    }
    let own: &[&str] = match kind {
        "Service" => SERVICE,
        "Ingress" => INGRESS,
        "HorizontalPodAutoscaler" => HPA,
        "ConfigMap" => &["data.**"],
        "PersistentVolumeClaim" => &["spec.resources.requests.storage"],
        _ => &[],
    };
    if own.iter().any(|p| matches(p, path)) {
        return true;
    }
    let Some(prefix) = pod_prefix(kind) else {
        return false;
    };
    if WORKLOAD.iter().any(|p| matches(p, path)) {
        return true;
    }
    let Some(rest) =
        path.strip_prefix(&prefix.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
    else {
        return false;
    };
    // Containers after the first are sidecars, named in their own finding.
    if rest.len() > 2 && rest[0] == "spec" && rest[1] == "containers" && rest[2] != "0" {
        return true;
    }
    let pod = if dependency { DEPENDENCY_POD } else { POD };
    pod.iter().any(|p| matches(p, rest))
}

/// A finding per object that lists the keys no part of the import reads.
pub(super) fn note_unread(
    docs: &[Doc],
    known_kinds: &[&str],
    is_dependency: impl Fn(&Doc) -> bool,
    f: &mut Findings,
) {
    for d in docs {
        let kind = d.kind();
        if !known_kinds.contains(&kind) {
            continue; // "not understood" already names the whole object
        }
        let dependency = is_dependency(d);
        let unread: Vec<String> = leaves(&d.value)
            .into_iter()
            .filter(|p| !is_read(kind, p, dependency))
            .map(|p| p.join("."))
            .collect();
        if !unread.is_empty() {
            f.add(
                d.at(),
                Severity::Info,
                format!(
                    "not carried over (app.yaml has no equivalent; targets generate their own): {}",
                    unread.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_read_svc(kind: &str, path: &[String]) -> bool {
        is_read(kind, path, false)
    }

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn patterns_match_keys_indices_and_subtrees() {
        assert!(is_read_svc(
            "Deployment",
            &p("spec.template.spec.containers.0.image")
        ));
        assert!(is_read_svc(
            "Deployment",
            &p("spec.template.spec.containers.0.ports.3.containerPort")
        ));
        assert!(
            is_read_svc("Deployment", &p("spec.template.spec.containers.1.image")),
            "sidecar"
        );
        assert!(is_read_svc(
            "CronJob",
            &p("spec.jobTemplate.spec.template.spec.containers.0.image")
        ));
        assert!(is_read_svc(
            "Deployment",
            &p("spec.template.spec.containers.0.readinessProbe.grpc.port")
        ));
        assert!(!is_read_svc(
            "Deployment",
            &p("spec.template.spec.affinity.nodeAffinity")
        ));
        assert!(!is_read_svc("Deployment", &p("metadata.annotations.team")));
        assert!(!is_read_svc(
            "Deployment",
            &p("spec.template.spec.containers.0.imagePullPolicy")
        ));
        let gpu = vec![
            "spec".into(),
            "template".into(),
            "spec".into(),
            "containers".into(),
            "0".into(),
            "resources".into(),
            "limits".into(),
            "nvidia.com/gpu".into(),
        ];
        assert!(is_read_svc("Deployment", &gpu));
        assert!(is_read_svc("Secret", &p("data.password")));
        let second_port = p("spec.template.spec.containers.0.ports.1.containerPort");
        assert!(is_read_svc("Deployment", &second_port));
        assert!(
            !is_read("Deployment", &second_port, true),
            "a database's extra port"
        );
    }
}
