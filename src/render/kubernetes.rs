//! Kubernetes: a kustomize-ready folder. Hardened pods (non-root, read-only
//! root filesystem with emptyDir scratch, all capabilities dropped, no
//! privilege escalation, seccomp RuntimeDefault, requests and limits),
//! Secret references only, NetworkPolicies from the app's graph, and — for
//! apps that start containers — the Jobs runtime in a sandbox namespace
//! instead of a Docker socket (seed 002).

use super::compose::{data_path, dependency_image, image_of};
use super::gateway::Routing;
use super::yaml::documents;
use super::{GeneratedFile, header};
use crate::analyse::graph::{Graph, Reach, runs_as_container};
use crate::describe::app::{App, HealthCheck, Protocol, Service};
use crate::describe::known::known;
use crate::describe::node_placement::{NodeKey, NodePlacement, kube_arch};
use crate::describe::secrets_list;
use serde_json::{Map, Value, json};

const UID: u32 = 10001;

fn labels(app: &App, component: &str) -> Value {
    json!({"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": app.name, "app.kubernetes.io/managed-by": "deployment-manager"})
}

fn selector(component: &str) -> Value {
    json!({"app.kubernetes.io/name": component})
}

/// NetworkPolicy port list of a reach; `None` allows every port.
fn policy_ports(reach: &Reach) -> Option<Vec<Value>> {
    match reach {
        Reach::AnyPort => None,
        Reach::Ports(ports) => Some(
            ports
                .iter()
                .map(|p| json!({"protocol": if p.udp { "UDP" } else { "TCP" }, "port": p.port}))
                .collect(),
        ),
    }
}

/// One rule per edge: `direction` is `from` (ingress) or `to` (egress).
fn edge_rule(direction: &str, peer: &str, reach: &Reach) -> Value {
    let mut rule = json!({direction: [{"podSelector": {"matchLabels": selector(peer)}}]});
    if let Some(ports) = policy_ports(reach) {
        rule["ports"] = Value::Array(ports);
    }
    rule
}

/// The release command's pod: not selected by its service's Service (it
/// serves nothing), so it has a name of its own.
pub fn release_component(service: &str) -> String {
    format!("{service}-release")
}

/// Ingress from every caller and egress to every callee in the graph; the
/// release command's pod calls what its service calls.
fn graph_rules(app: &App, graph: &Graph, name: &str) -> (Vec<Value>, Vec<Value>) {
    let release = app.release.as_ref().map(|r| r.service.as_str());
    let ingress = graph
        .callers_of(name)
        .filter(|e| runs_as_container(app, &e.from))
        .flat_map(|e| {
            let mut rules = vec![edge_rule("from", &e.from, &e.reach)];
            if release == Some(e.from.as_str()) {
                rules.push(edge_rule("from", &release_component(&e.from), &e.reach));
            }
            rules
        })
        .collect();
    let mut egress: Vec<Value> = graph
        .callees_of(name)
        .filter(|e| runs_as_container(app, &e.to))
        .map(|e| edge_rule("to", &e.to, &e.reach))
        .collect();
    // A managed offering lives outside the cluster, often at a private
    // address of the VPC, and on the provider's port rather than the
    // engine's (DigitalOcean's clusters do not listen on 5432): neither is
    // known until it exists, so its callers may reach any address. DEPLOY.md
    // says how to narrow the rule to it.
    if graph.callees_of(name).any(|e| {
        app.dependencies
            .get(&e.to)
            .is_some_and(|d| d.managed_by.is_some())
    }) {
        egress.push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}));
    }
    (ingress, egress)
}

fn probe(h: &HealthCheck, first_port: Option<u16>) -> Value {
    let mut p = Map::new();
    if let Some(path) = &h.http {
        p.insert(
            "httpGet".into(),
            json!({"path": path, "port": h.port.or(first_port).unwrap_or(80)}),
        );
    } else if let Some(port) = h.tcp {
        p.insert("tcpSocket".into(), json!({"port": port}));
    } else if let Some(g) = &h.grpc {
        let mut grpc = json!({"port": g.port});
        if let Some(service) = &g.service {
            grpc["service"] = json!(service);
        }
        p.insert("grpc".into(), grpc);
    } else {
        p.insert("exec".into(), json!({"command": h.command}));
    }
    p.insert(
        "periodSeconds".into(),
        json!(h.interval.map_or(10, |d| d.0.max(1))),
    );
    p.insert(
        "timeoutSeconds".into(),
        json!(h.timeout.map_or(5, |d| d.0.max(1))),
    );
    p.insert("failureThreshold".into(), json!(h.retries.unwrap_or(3)));
    Value::Object(p)
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": UID,
        "runAsGroup": UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

fn pod_security() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}})
}

/// app.yaml's placement as pod scheduling: constraints on node labels,
/// hostname, OS and architecture become required node affinity (Kubernetes
/// names the last three `kubernetes.io/…`); spread labels become topology
/// spread. A swarm role, node id or engine label has no counterpart.
fn schedule(pod: &mut Value, placement: Option<&NodePlacement>, name: &str) {
    let Some(p) = placement else { return };
    let terms: Vec<Value> = p
        .parsed()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let (key, value) = match &c.key {
                NodeKey::Label(l) => (l.as_str(), c.value.clone()),
                NodeKey::Hostname => ("kubernetes.io/hostname", c.value.clone()),
                NodeKey::Os => ("kubernetes.io/os", c.value.clone()),
                NodeKey::Arch => ("kubernetes.io/arch", kube_arch(&c.value).to_string()),
                NodeKey::Role | NodeKey::Id | NodeKey::EngineLabel(_) => return None,
            };
            let op = if c.equal { "In" } else { "NotIn" };
            Some(json!({"key": key, "operator": op, "values": [value]}))
        })
        .collect();
    if !terms.is_empty() {
        pod["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": terms}]}}});
    }
    if !p.spread.is_empty() {
        let spread: Vec<Value> = p
            .spread
            .iter()
            .map(|l| json!({"maxSkew": 1, "topologyKey": l, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector(name)}}))
            .collect();
        pod["topologySpreadConstraints"] = Value::Array(spread);
    }
}

fn resources(cpu: f64, mem_mib: u64, cpu_limit: f64, mem_limit_mib: u64) -> Value {
    json!({
        "requests": {"cpu": format!("{}m", (cpu * 1000.0).round() as u64), "memory": format!("{mem_mib}Mi")},
        "limits": {"cpu": format!("{}m", (cpu_limit * 1000.0).round() as u64), "memory": format!("{mem_limit_mib}Mi")}
    })
}

/// The objects of every file, before they become YAML; the Kubernetes
/// engine applies these same objects.
pub fn objects(app: &App, routing: &Routing) -> Vec<(String, Vec<Value>)> {
    let ns = app.name.clone();
    let sandbox_ns = format!("{}-sandbox", app.name);
    let secrets = secrets_list(app);
    let spawner = app.services.values().any(|s| s.traits.spawns_containers);
    let mut files: Vec<(String, Vec<Value>)> = Vec::new();
    let graph = Graph::of(app);

    files.push(("namespace.yaml".into(), vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})]));

    // Default deny, then DNS for everyone.
    let mut policies = vec![
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-dns", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}}),
    ];

    for (name, s) in &app.services {
        let mut docs = Vec::new();
        let sa = if s.traits.spawns_containers {
            format!("{name}-sessions")
        } else {
            name.to_string()
        };
        docs.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns, "labels": labels(app, name)}, "automountServiceAccountToken": s.traits.spawns_containers}));
        if !s.env.is_empty() {
            docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-config"), "namespace": ns, "labels": labels(app, name)}, "data": s.env}));
        }
        docs.push(workload(app, &ns, name, s, &sa, &secrets, &sandbox_ns));
        if !s.ports.is_empty() {
            let ports: Vec<Value> = s.ports.iter().map(|p| json!({"name": format!("p{}", p.port), "port": p.port, "targetPort": p.port, "protocol": if p.protocol == Protocol::Udp { "UDP" } else { "TCP" }})).collect();
            let mut spec = json!({"selector": selector(name), "ports": ports});
            if s.traits.sticky_sessions {
                spec["sessionAffinity"] = json!("ClientIP");
            }
            docs.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels(app, name)}, "spec": spec}));
        }
        if let Some(a) = &s.autoscaling {
            let mut metrics = vec![
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": a.cpu_percent.unwrap_or(70)}}}),
            ];
            if let Some(m) = a.memory_percent {
                metrics.push(json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": m}}}));
            }
            docs.push(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name, "namespace": ns, "labels": labels(app, name)}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}, "minReplicas": a.min, "maxReplicas": a.max, "metrics": metrics}}));
        }
        if s.min_replicas() > 1 {
            docs.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns, "labels": labels(app, name)}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(name)}}}));
        }
        for v in s.persistent_volumes() {
            docs.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("{name}-{}", v.name), "namespace": ns, "labels": labels(app, name)}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": v.size.map_or("1Gi".to_string(), |z| z.to_string())}}}}));
        }
        // Who may call this service: its callers in the graph, and the
        // ingress controller on public ports; it may call its callees.
        let (mut ingress_rules, mut egress) = graph_rules(app, &graph, name);
        if s.is_public() {
            ingress_rules.push(json!({"from": routing.traffic_source(), "ports": s.ports.iter().filter(|p| p.public).map(|p| json!({"port": p.port})).collect::<Vec<_>>()}));
        }
        // App services call outside APIs (model providers, payment, …) over HTTPS.
        egress.push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}], "ports": [{"port": 443}]}));
        if s.traits.spawns_containers {
            egress.push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}, {"port": 6443}]}));
        }
        let mut spec = json!({"podSelector": {"matchLabels": selector(name)}, "policyTypes": ["Ingress", "Egress"], "egress": egress});
        if !ingress_rules.is_empty() {
            spec["ingress"] = Value::Array(ingress_rules);
        }
        if app.release.as_ref().is_some_and(|r| &r.service == name) {
            // The release command calls what its service calls, and
            // nothing calls it.
            let mut own = spec.clone();
            own["podSelector"] = json!({"matchLabels": selector(&release_component(name))});
            own["policyTypes"] = json!(["Ingress", "Egress"]);
            if let Some(o) = own.as_object_mut() {
                o.remove("ingress");
            }
            policies.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": format!("{}-traffic", release_component(name)), "namespace": ns}, "spec": own}));
        }
        policies.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": format!("{name}-traffic"), "namespace": ns}, "spec": spec}));
        files.push((format!("{name}.yaml"), docs));
    }

    for (name, d) in &app.dependencies {
        if !d.runs_as_container() {
            continue;
        }
        let k = known().get(&d.kind);
        let port = k.and_then(|k| k.port).unwrap_or(80);
        let mem = d
            .memory
            .or(k.and_then(|k| k.memory))
            .map_or(512, |m| m.as_mib().round() as u64);
        let cpu = d.cpu.or(k.and_then(|k| k.cpu)).map_or(0.25, |c| c.cores());
        let size = d
            .size
            .or(k.and_then(|k| k.size))
            .map_or("1Gi".to_string(), |s| s.to_string());
        let image = dependency_image(&d.kind, d.version.as_deref(), d.image.as_deref());
        let mut env = Vec::new();
        if d.kind == "postgres" {
            env.push(json!({"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{}-secrets", app.name), "key": "POSTGRES_PASSWORD"}}}));
            env.push(json!({"name": "PGDATA", "value": format!("{}/pgdata", data_path(&d.kind))}));
        }
        let mut container = json!({
            "name": name, "image": image, "imagePullPolicy": "Always",
            "ports": [{"containerPort": port}],
            "resources": resources(cpu, mem, cpu, mem),
            "securityContext": container_security(),
            "volumeMounts": [{"name": "data", "mountPath": data_path(&d.kind)}, {"name": "tmp", "mountPath": "/tmp"}, {"name": "run", "mountPath": "/var/run"}],
            "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10, "timeoutSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 20, "timeoutSeconds": 5},
        });
        if !env.is_empty() {
            container["env"] = Value::Array(env);
        }
        let (ingress_rules, egress) = graph_rules(app, &graph, name);
        let mut pod = json!({
            "automountServiceAccountToken": false, "securityContext": pod_security(),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "run", "emptyDir": {}}]
        });
        schedule(&mut pod, d.placement.as_ref(), name);
        let docs = vec![
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns, "labels": labels(app, name)}, "spec": {
                "serviceName": name, "replicas": 1, "selector": {"matchLabels": selector(name)},
                "template": {"metadata": {"labels": labels(app, name)}, "spec": pod},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}]
            }}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels(app, name)}, "spec": {"selector": selector(name), "ports": [{"name": "main", "port": port, "targetPort": port}]}}),
        ];
        let mut np = json!({"podSelector": {"matchLabels": selector(name)}, "policyTypes": ["Ingress", "Egress"], "egress": egress});
        if !ingress_rules.is_empty() {
            np["ingress"] = Value::Array(ingress_rules);
        }
        policies.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": format!("{name}-traffic"), "namespace": ns}, "spec": np}));
        files.push((format!("{name}.yaml"), docs));
    }

    if let Some(routes) = super::gateway::objects(app, routing) {
        files.push(routes);
    }
    files.push(("network-policies.yaml".into(), policies));

    if spawner {
        files.push(("sandbox.yaml".into(), sandbox(app, &ns, &sandbox_ns)));
    }

    files
}

/// Keys of the `<app>-secrets` Secret the workloads read.
pub fn secret_keys(app: &App) -> Vec<String> {
    let mut keys: Vec<String> = secrets_list(app).into_iter().map(|s| s.name).collect();
    if app.dependencies.values().any(|d| d.kind == "postgres")
        && !keys.iter().any(|k| k == "POSTGRES_PASSWORD")
    {
        keys.push("POSTGRES_PASSWORD".into());
    }
    keys
}

/// The release command as a Job: its service's pod (image, settings,
/// secrets, service account, security) running the command once, never
/// restarted, within its timeout. `name` differs per release when the
/// deploy runs it (a Job's pod template cannot change).
pub fn release_job(app: &App, name: &str) -> Option<Value> {
    let r = app.release.as_ref()?;
    let s = app.services.get(&r.service)?;
    let ns = app.name.as_str();
    let sa = if s.traits.spawns_containers {
        format!("{}-sessions", r.service)
    } else {
        r.service.clone()
    };
    let secrets = secrets_list(app);
    let deployment = workload(
        app,
        ns,
        &r.service,
        s,
        &sa,
        &secrets,
        &format!("{ns}-sandbox"),
    );
    let mut pod = deployment["spec"]["template"]["spec"].clone();
    if let Some(c) = pod["containers"][0].as_object_mut() {
        for k in ["readinessProbe", "livenessProbe", "ports", "command"] {
            c.remove(k);
        }
        // app.yaml's `command` is the image's CMD: Kubernetes' args.
        c.insert("args".into(), json!(r.command));
    }
    pod["restartPolicy"] = json!("Never");
    let component = release_component(&r.service);
    Some(
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns, "labels": labels(app, &component)}, "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": r.timeout_s(),
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels(app, &component)}, "spec": pod}
        }}),
    )
}

pub fn render(app: &App, routing: &Routing) -> Vec<GeneratedFile> {
    let ns = app.name.clone();
    let files = objects(app, routing);
    let mut resources_list: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    resources_list.sort();
    let secret_keys = secret_keys(app);
    let h = header(app, "#");
    let mut out: Vec<GeneratedFile> = files
        .into_iter()
        .map(|(f, docs)| GeneratedFile::new(f, documents(&h, &docs)))
        .collect();
    let mut kustomization = h.clone();
    kustomization.push_str(&super::yaml::to_yaml(&json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": ns,
        "resources": resources_list,
    })));
    kustomization.push_str(&format!(
        "# Secrets are never generated with values. Create them before applying:\n#   kubectl -n {ns} create secret generic {}-secrets --from-env-file=secrets.env\n# keys: {}\n",
        app.name,
        if secret_keys.is_empty() { "(none)".to_string() } else { secret_keys.join(", ") }
    ));
    out.push(GeneratedFile::new("kustomization.yaml", kustomization));
    // Not in the kustomization: it runs before each rollout, on its own.
    if let Some(job) = release_job(app, &format!("{}-release", app.name)) {
        out.push(GeneratedFile::new(
            "release-job.yaml",
            documents(&h, &[job]),
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn workload(
    app: &App,
    ns: &str,
    name: &str,
    s: &Service,
    sa: &str,
    secrets: &[crate::describe::secrets::SecretSpec],
    sandbox_ns: &str,
) -> Value {
    let cpu = s.cpu().cores();
    let mem = s.memory().as_mib().round() as u64;
    let cpu_l = s
        .resources
        .as_ref()
        .and_then(|r| r.cpu_limit)
        .map_or(cpu, |c| c.cores());
    let mem_l = s
        .resources
        .as_ref()
        .and_then(|r| r.memory_limit)
        .map_or(mem, |m| m.as_mib().round() as u64);
    let mut c = Map::new();
    c.insert("name".into(), json!(name));
    c.insert("image".into(), json!(image_of(app, name, s)));
    c.insert("imagePullPolicy".into(), json!("Always"));
    if !s.command.is_empty() {
        c.insert("command".into(), json!(s.command));
    }
    if !s.ports.is_empty() {
        c.insert("ports".into(), json!(s.ports.iter().map(|p| json!({"containerPort": p.port, "protocol": if p.protocol == Protocol::Udp { "UDP" } else { "TCP" }})).collect::<Vec<_>>()));
    }
    let mut env: Vec<Value> = secrets
        .iter()
        .filter(|x| x.used_by.iter().any(|u| u == name))
        .map(|x| json!({"name": x.name, "valueFrom": {"secretKeyRef": {"name": format!("{}-secrets", app.name), "key": x.name}}}))
        .collect();
    if s.traits.spawns_containers {
        env.push(json!({"name": "SESSION_RUNTIME", "value": "kubernetes-jobs"}));
        env.push(json!({"name": "SESSION_NAMESPACE", "value": sandbox_ns}));
    }
    if !env.is_empty() {
        c.insert("env".into(), Value::Array(env));
    }
    if !s.env.is_empty() {
        c.insert(
            "envFrom".into(),
            json!([{"configMapRef": {"name": format!("{name}-config")}}]),
        );
    }
    c.insert("resources".into(), resources(cpu, mem, cpu_l, mem_l));
    c.insert("securityContext".into(), container_security());
    let first = s.ports.first().map(|p| p.port);
    match &s.health {
        Some(h) => {
            c.insert("readinessProbe".into(), probe(h, first));
            c.insert("livenessProbe".into(), probe(h, first));
        }
        None if first.is_some() => {
            let p = json!({"tcpSocket": {"port": first}, "periodSeconds": 10, "timeoutSeconds": 5});
            c.insert("readinessProbe".into(), p.clone());
            c.insert("livenessProbe".into(), p);
        }
        None => {}
    }
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": {}})];
    for v in &s.volumes {
        mounts.push(json!({"name": v.name, "mountPath": v.path}));
        if v.persistent {
            volumes.push(json!({"name": v.name, "persistentVolumeClaim": {"claimName": format!("{name}-{}", v.name)}}));
        } else {
            volumes.push(json!({"name": v.name, "emptyDir": {}}));
        }
    }
    c.insert("volumeMounts".into(), Value::Array(mounts));
    let mut pod = json!({
        "serviceAccountName": sa,
        "automountServiceAccountToken": s.traits.spawns_containers,
        "securityContext": pod_security(),
        "containers": [Value::Object(c)],
        "volumes": volumes,
    });
    schedule(&mut pod, s.placement.as_ref(), name);
    let replicas = s.min_replicas();
    let max_surge = if s.persistent_volumes().next().is_some() {
        0
    } else {
        1
    };
    let mut metadata = json!({"name": name, "namespace": ns, "labels": labels(app, name)});
    if s.traits.spawns_containers {
        metadata["annotations"] = json!({"checkov.io/skip1": "CKV_K8S_38=this service creates session Jobs through the API, so it needs its token; its Role is limited to Jobs in the sandbox namespace"});
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {
        "replicas": replicas,
        "selector": {"matchLabels": selector(name)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": if max_surge == 0 { 1 } else { 0 }}},
        "template": {"metadata": {"labels": labels(app, name)}, "spec": pod}
    }})
}

/// Seed 002's Jobs runtime: the app creates one Job per session in a
/// separate namespace with a least-privilege Role; sandboxes get no token,
/// no egress, hard limits, a deadline and a TTL; quota caps the total.
fn sandbox(app: &App, ns: &str, sandbox_ns: &str) -> Vec<Value> {
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sandbox_ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    ];
    let spawners: Vec<&String> = app
        .services
        .iter()
        .filter(|(_, s)| s.traits.spawns_containers)
        .map(|(n, _)| n)
        .collect();
    docs.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "session-runner", "namespace": sandbox_ns}, "rules": [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]}
    ]}));
    docs.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "session-runner", "namespace": sandbox_ns}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-runner"},
        "subjects": spawners.iter().map(|n| json!({"kind": "ServiceAccount", "name": format!("{n}-sessions"), "namespace": ns})).collect::<Vec<_>>()}));
    let total_cpu: f64 = app
        .sessions
        .values()
        .map(|w| w.cpu.map_or(0.5, |c| c.cores()) * w.max_total.unwrap_or(10) as f64)
        .sum();
    let total_mem: f64 = app
        .sessions
        .values()
        .map(|w| w.memory.map_or(256.0, |m| m.as_mib()) * w.max_total.unwrap_or(10) as f64)
        .sum();
    let max_jobs: u32 = app
        .sessions
        .values()
        .map(|w| w.max_total.unwrap_or(10) + w.warm_pool.unwrap_or(0))
        .sum::<u32>()
        .max(1);
    docs.push(json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "sessions", "namespace": sandbox_ns}, "spec": {"hard": {
        "count/jobs.batch": max_jobs, "pods": max_jobs,
        "limits.cpu": format!("{}m", (total_cpu.max(0.5) * 1000.0).round() as u64),
        "limits.memory": format!("{}Mi", total_mem.max(256.0).round() as u64)
    }}}));
    let (dcpu, dmem) = app.sessions.values().next().map_or((500, 256), |w| {
        (
            w.cpu.map_or(500, |c| c.0),
            w.memory.map_or(256, |m| m.as_mib().round() as u64),
        )
    });
    docs.push(json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "sessions", "namespace": sandbox_ns}, "spec": {"limits": [{"type": "Container",
        "default": {"cpu": format!("{dcpu}m"), "memory": format!("{dmem}Mi")},
        "defaultRequest": {"cpu": format!("{}m", (dcpu / 5).max(10)), "memory": format!("{}Mi", (dmem / 2).max(16))},
        "max": {"cpu": format!("{}m", dcpu.max(100) * 2), "memory": format!("{}Mi", dmem.max(64) * 2)}}]}}));
    docs.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "sandbox-isolation", "namespace": sandbox_ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}));
    for (name, w) in &app.sessions {
        let cpu = w.cpu.map_or(500, |c| c.0);
        let mem = w.memory.map_or(256, |m| m.as_mib().round() as u64);
        let deadline = w.max_duration.map_or(600, |d| d.0.max(1));
        let job_pod = json!({
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": pod_security(),
            "containers": [{
                "name": "session", "image": w.image, "imagePullPolicy": "Always",
                "resources": resources(cpu as f64 / 1000.0 / 2.0, mem / 2, cpu as f64 / 1000.0, mem),
                "securityContext": container_security(),
                "volumeMounts": [{"name": "work", "mountPath": "/tmp"}]
            }],
            "volumes": [{"name": "work", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
        });
        let template = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": format!("{name}-"), "namespace": sandbox_ns, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": app.name}}, "spec": {
            "backoffLimit": 0, "ttlSecondsAfterFinished": 300, "activeDeadlineSeconds": deadline,
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": job_pod.clone()}
        }});
        docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-job-template"), "namespace": ns}, "data": {
            "job.yaml": super::yaml::to_yaml(&template),
            "runtimeClassName": "gvisor (set spec.template.spec.runtimeClassName when the cluster has it)"
        }}));
        if let Some(pool) = w.warm_pool.filter(|p| *p > 0) {
            // Seed 002's approach 2: pre-started workers that take sessions from a queue.
            let mut pool_pod = job_pod.clone();
            pool_pod["restartPolicy"] = json!("Always");
            pool_pod["containers"][0]["env"] = json!([{"name": "SESSION_QUEUE", "value": format!("{name}-queue")}, {"name": "SESSION_HEARTBEAT_FILE", "value": "/tmp/heartbeat"}]);
            // Contract: a pooled worker touches its heartbeat file while it
            // waits on the queue; a stale file means it is stuck.
            let heartbeat = json!({"exec": {"command": ["sh", "-c", "test $(( $(date +%s) - $(stat -c %Y /tmp/heartbeat) )) -lt 60"]}, "periodSeconds": 15, "timeoutSeconds": 5});
            pool_pod["containers"][0]["livenessProbe"] = heartbeat.clone();
            pool_pod["containers"][0]["readinessProbe"] = heartbeat;
            docs.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("{name}-warm-pool"), "namespace": sandbox_ns, "labels": {"app.kubernetes.io/name": format!("{name}-warm-pool")}}, "spec": {
                "replicas": pool,
                "selector": {"matchLabels": {"app.kubernetes.io/name": format!("{name}-warm-pool")}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": format!("{name}-warm-pool")}}, "spec": pool_pod}
            }}));
        }
    }
    docs
}
