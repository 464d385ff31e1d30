//! Import a folder (or file) of Kubernetes manifests into an [`App`]: the
//! migration path of teams leaving self-managed clusters (seed 000).
//! Workloads become services, well-known images dependencies; Services and
//! Ingresses decide which ports are public; Secrets are read by name only.

use super::app::*;
use super::compose_values::sanitize_name;
use super::diagnostic::SpecError;
use super::files;
use super::findings::{Findings, Severity};
use super::known::{image_tag, known};
use super::kubernetes_doc::{Doc, selects};
use super::load::{from_yaml_error, yaml_options};
use super::node_placement::{NodePlacement, swarm_arch};
use super::secrets_detect::looks_secret;
use super::units::{Cpu, Duration, Size};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use Severity::{Info, Warning};

pub struct K8sImport {
    pub app: App,
    pub findings: Findings,
}

/// Reads every `.yaml`/`.yml`/`.json` under `path` (sorted, so output is
/// deterministic; see [`files::manifest_files`] for links) and imports the
/// objects found.
pub fn import_manifests(path: &Path) -> Result<K8sImport, Box<SpecError>> {
    let files = if path.is_dir() {
        files::manifest_files(path).map_err(|e| super::cannot_read(path, &e))?
    } else {
        vec![path.to_path_buf()]
    };
    let mut docs = Vec::new();
    for f in &files {
        let text = super::read_spec(f)?;
        parse_docs(&f.display().to_string(), &text, &mut docs)?;
    }
    finish(&path.display().to_string(), &folder_app_name(path), &docs)
}

/// The app's name from where its manifests live: the folder (or file)
/// name, or the folder above a generically named one (`shop/k8s`).
fn folder_app_name(path: &Path) -> String {
    const GENERIC: [&str; 7] = [
        "k8s",
        "kubernetes",
        "manifests",
        "deploy",
        "kube",
        "base",
        "yaml",
    ];
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let stem = |p: &Path| p.file_stem().and_then(|s| s.to_str()).map(sanitize_name);
    match stem(&real) {
        Some(s) if GENERIC.contains(&s.as_str()) => real.parent().and_then(stem).unwrap_or(s),
        Some(s) => s,
        None => "app".into(),
    }
}

/// Most objects one import reads: each workload takes a few objects, so far
/// more than that is no app.
const MAX_OBJECTS: usize = 10 * super::load::MAX_COMPONENTS;

/// Imports the manifests of one text (an upload), naming the app `app_name`.
pub fn import_text(file: &str, text: &str, app_name: &str) -> Result<K8sImport, Box<SpecError>> {
    if text.len() > super::load::MAX_SPEC_BYTES {
        return Err(Box::new(SpecError::at(
            file,
            "",
            0,
            0,
            format!(
                "file is {} bytes; the limit is {}",
                text.len(),
                super::load::MAX_SPEC_BYTES
            ),
        )));
    }
    let mut docs = Vec::new();
    parse_docs(file, text, &mut docs)?;
    finish(file, &sanitize_name(app_name), &docs)
}

fn parse_docs(name: &str, text: &str, docs: &mut Vec<Doc>) -> Result<(), Box<SpecError>> {
    let values: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, yaml_options())
        .map_err(|e| Box::new(from_yaml_error(name, text, &e)))?;
    for v in values.into_iter().filter(|v| !v.is_null()) {
        if v.get("kind").and_then(Value::as_str) == Some("List") {
            for item in v
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                docs.push(Doc {
                    file: name.to_string(),
                    value: item.clone(),
                });
            }
        } else {
            docs.push(Doc {
                file: name.to_string(),
                value: v,
            });
        }
    }
    Ok(())
}

fn finish(what: &str, app_name: &str, docs: &[Doc]) -> Result<K8sImport, Box<SpecError>> {
    if docs.len() > MAX_OBJECTS {
        return Err(Box::new(SpecError::at(
            what,
            "",
            0,
            0,
            format!("{} objects; the limit is {MAX_OBJECTS}", docs.len()),
        )));
    }
    if docs.is_empty() {
        return Err(Box::new(SpecError::at(
            what,
            "",
            0,
            0,
            "no Kubernetes objects found",
        )));
    }
    let k = import_docs(app_name, docs);
    // Never hand back an app.yaml that would not read back.
    let yaml = serde_saphyr::to_string(&k.app).unwrap_or_default();
    if let Err(e) = super::load::check_app(&k.app, "app.yaml", &yaml) {
        return Err(Box::new(SpecError::at(
            what,
            "",
            0,
            0,
            format!(
                "cannot be expressed in app.yaml ({}): {}",
                e.label, e.message
            ),
        )));
    }
    Ok(k)
}

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn import_docs(app_name: &str, docs: &[Doc]) -> K8sImport {
    let mut f = Findings::default();
    // The namespace names the app better than the folder does.
    let app_name = docs
        .iter()
        .find(|d| d.kind() == "Namespace")
        .map_or(app_name.to_string(), |d| sanitize_name(&d.name()));
    let mut app = App::new(&app_name);

    let config_maps: BTreeMap<String, &Value> = docs
        .iter()
        .filter(|d| d.kind() == "ConfigMap")
        .map(|d| (d.name(), d.value.get("data").unwrap_or(&Value::Null)))
        .collect();
    let pvcs: BTreeMap<String, Option<Size>> = docs
        .iter()
        .filter(|d| d.kind() == "PersistentVolumeClaim")
        .map(|d| (d.name(), storage_request(&d.value)))
        .collect();
    // Pod labels → service ports that select them, and which Services are public.
    let mut public_services = BTreeSet::new();
    for d in docs.iter().filter(|d| d.kind() == "Ingress") {
        for backend in ingress_backends(&d.value) {
            public_services.insert(backend);
        }
    }
    let services: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Service").collect();
    // Does some Role allow creating Jobs or Pods? Then a workload spawns containers.
    let spawner_accounts = job_creating_accounts(docs);

    for d in docs {
        let kind = d.kind();
        match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => {
                import_workload(
                    d,
                    &mut app,
                    &mut f,
                    &config_maps,
                    &pvcs,
                    &services,
                    &public_services,
                    &spawner_accounts,
                );
            }
            "Service" | "Ingress" | "ConfigMap" | "PersistentVolumeClaim" => {}
            "Secret" => {
                let keys: Vec<String> = ["data", "stringData"]
                    .iter()
                    .filter_map(|k| d.value.get(*k).and_then(Value::as_object))
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                f.add(
                    d.at(),
                    Info,
                    format!(
                        "Secret `{}` read by key names only ({}); values are never imported",
                        d.name(),
                        keys.join(", ")
                    ),
                );
            }
            "HorizontalPodAutoscaler" => {}
            "Namespace" => f.add(d.at(), Info, "namespace is chosen per profile"),
            "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => {
                f.add(
                    d.at(),
                    Info,
                    "RBAC is generated from the app's needs (least privilege) and not imported",
                );
            }
            "NetworkPolicy" | "PodDisruptionBudget" => f.add(
                d.at(),
                Info,
                format!("{kind} is generated per target from the app's graph and not imported"),
            ),
            "ResourceQuota" | "LimitRange" => f.add(
                d.at(),
                Info,
                format!("{kind} is generated for session sandboxes and not imported"),
            ),
            "" => f.add(d.at(), Warning, "document without `kind` skipped"),
            other => f.add(
                d.at(),
                Warning,
                format!("{other} is not understood and was not imported"),
            ),
        }
    }
    for d in docs
        .iter()
        .filter(|d| d.kind() == "HorizontalPodAutoscaler")
    {
        let target = s(d.value.pointer("/spec/scaleTargetRef/name")).map(|n| sanitize_name(&n));
        let svc = target.as_ref().and_then(|t| app.services.get_mut(t));
        match svc {
            Some(svc) => {
                let min = d
                    .value
                    .pointer("/spec/minReplicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1) as u32;
                let max = d
                    .value
                    .pointer("/spec/maxReplicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(min as u64) as u32;
                let util = |res: &str| -> Option<u8> {
                    d.value
                        .pointer("/spec/metrics")?
                        .as_array()?
                        .iter()
                        .find_map(|m| {
                            let r = m.get("resource")?;
                            (r.get("name")?.as_str()? == res).then(|| {
                                r.pointer("/target/averageUtilization")?
                                    .as_u64()
                                    .map(|u| u as u8)
                            })?
                        })
                };
                svc.autoscaling = Some(Autoscaling {
                    min,
                    max,
                    cpu_percent: util("cpu"),
                    memory_percent: util("memory"),
                });
            }
            None => f.add(
                d.at(),
                Warning,
                "autoscaler targets a workload that was not imported",
            ),
        }
    }
    super::kubernetes_calls::infer_calls(&mut app, docs, &mut f);
    // The public hostname, as the first Ingress rule names it.
    app.domain = docs
        .iter()
        .filter(|d| d.kind() == "Ingress")
        .find_map(|d| s(d.value.pointer("/spec/rules/0/host")));
    const READ_KINDS: [&str; 10] = [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Service",
        "Ingress",
        "ConfigMap",
        "PersistentVolumeClaim",
        "HorizontalPodAutoscaler",
    ];
    let dependencies: BTreeSet<String> = app.dependencies.keys().cloned().collect();
    let is_dependency = |d: &Doc| dependencies.contains(&sanitize_name(&d.name()));
    super::kubernetes_keys::note_unread(docs, &READ_KINDS, is_dependency, &mut f);
    app.usage = Some(Usage {
        users: Some(10),
        ..Usage::default()
    });
    f.add(
        "usage",
        Info,
        "manifests carry no usage figures; assumed 10 users (set usage.users in app.yaml)",
    );
    f.sort();
    K8sImport { app, findings: f }
}

fn storage_request(v: &Value) -> Option<Size> {
    v.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(|s| Size::parse(s).ok())
}

fn ingress_backends(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = s(v.pointer("/spec/defaultBackend/service/name")) {
        out.push(n);
    }
    for rule in v
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = s(p.pointer("/backend/service/name")) {
                out.push(n);
            }
        }
    }
    out
}

fn job_creating_accounts(docs: &[Doc]) -> BTreeSet<String> {
    let creating_roles: BTreeSet<String> = docs
        .iter()
        .filter(|d| matches!(d.kind(), "Role" | "ClusterRole"))
        .filter(|d| {
            d.value
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|r| {
                    let has = |key: &str, want: &[&str]| {
                        r.get(key).and_then(Value::as_array).is_some_and(|a| {
                            a.iter()
                                .any(|x| x.as_str().is_some_and(|x| want.contains(&x) || x == "*"))
                        })
                    };
                    has("resources", &["jobs", "pods"]) && has("verbs", &["create"])
                })
        })
        .map(|d| d.name())
        .collect();
    docs.iter()
        .filter(|d| matches!(d.kind(), "RoleBinding" | "ClusterRoleBinding"))
        .filter(|d| {
            s(d.value.pointer("/roleRef/name")).is_some_and(|r| creating_roles.contains(&r))
        })
        .flat_map(|d| {
            d.value
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|sub| s(sub.get("name")))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn import_workload(
    d: &Doc,
    app: &mut App,
    f: &mut Findings,
    config_maps: &BTreeMap<String, &Value>,
    pvcs: &BTreeMap<String, Option<Size>>,
    services: &[&Doc],
    public_services: &BTreeSet<String>,
    spawners: &BTreeSet<String>,
) {
    let kind = d.kind();
    let Some(pod) = d.pod_template() else {
        f.add(d.at(), Warning, "workload without a pod template skipped");
        return;
    };
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(main) = containers.first() else {
        f.add(d.at(), Warning, "workload without containers skipped");
        return;
    };
    if containers.len() > 1 {
        f.add_per_target(
            d.at(),
            format!(
                "{} sidecar container(s) not imported; only `{}` is",
                containers.len() - 1,
                s(main.get("name")).unwrap_or_default()
            ),
            &[("kubernetes", Warning)],
            Warning,
        );
    }
    // An init container of the same image that migrates is the release
    // command: it then runs once per release, not once per pod start.
    let mut release: Option<Vec<String>> = None;
    for init in pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let line: Vec<String> = ["command", "args"]
            .iter()
            .filter_map(|k| init.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let init_name = s(init.get("name")).unwrap_or_default();
        let same_image = init.get("image") == main.get("image");
        if release.is_none() && same_image && migrates(&line.join(" ")) {
            release = Some(line);
        } else {
            f.add(
                d.at(),
                Warning,
                format!("init container `{init_name}` is not imported: targets order start-up themselves, and a migration belongs in app.yaml's release command (run with the service's image)"),
            );
        }
    }
    let name = sanitize_name(&d.name());
    let image = s(main.get("image")).unwrap_or_default();
    let labels = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    if let Some(dep_kind) = known().kind_of_image(&image) {
        let size = d
            .value
            .pointer("/spec/volumeClaimTemplates/0")
            .and_then(storage_request)
            .or_else(|| known().get(dep_kind).and_then(|k| k.size));
        let (cpu, memory, _, _) = container_resources(main);
        app.dependencies.insert(
            name.clone(),
            Dependency {
                kind: dep_kind.into(),
                version: image_tag(&image),
                image: Some(image.clone()),
                size,
                memory,
                cpu,
                managed: true,
                secrets: Vec::new(),
                connects_to: Vec::new(),
                placement: node_selector(pod),
                managed_by: None,
            },
        );
        f.add(
            d.at(),
            Info,
            format!("`{name}` recognised as a {dep_kind} dependency"),
        );
        return;
    }
    if known().is_edge_proxy(&image) {
        f.add(
            d.at(),
            Info,
            format!("`{name}` is an edge proxy; targets provide their own, so it was not imported"),
        );
        return;
    }

    let mut svc = Service {
        image: Some(image),
        ..Service::default()
    };
    let mut cmd: Vec<String> = main
        .get("command")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect();
    cmd.extend(
        main.get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from)),
    );
    svc.command = cmd;

    for p in main
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(port) = p
            .get("containerPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        let udp = p.get("protocol").and_then(Value::as_str) == Some("UDP");
        let port_name = s(p.get("name")).unwrap_or_default();
        let mut protocol = if udp {
            Protocol::Udp
        } else {
            protocol_named(&port_name).unwrap_or(Protocol::Tcp)
        };
        let mut public = false;
        for sv in services.iter().filter(|sv| selects(&sv.value, &labels)) {
            let Some(sp) = sv
                .value
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|sp| match sp.get("targetPort") {
                    Some(Value::Number(n)) => n.as_u64() == Some(port as u64),
                    Some(Value::String(n)) => *n == port_name,
                    None => sp.get("port").and_then(Value::as_u64) == Some(port as u64),
                    _ => false,
                })
            else {
                continue;
            };
            // The Service may name the protocol when the container does not
            // (`appProtocol`, or the port's name): the same rule either way.
            if protocol == Protocol::Tcp
                && let Some(named) = [sp.get("appProtocol"), sp.get("name")]
                    .into_iter()
                    .filter_map(|v| v.and_then(Value::as_str))
                    .find_map(protocol_named)
            {
                protocol = named;
            }
            let ty = sv
                .value
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if matches!(ty, "LoadBalancer" | "NodePort") || public_services.contains(&sv.name()) {
                public = true;
            }
            if public_services.contains(&sv.name()) && protocol == Protocol::Tcp {
                protocol = Protocol::Http;
            }
        }
        svc.ports.push(Port {
            port,
            protocol,
            public,
            published: None,
        });
    }

    let mut env = indexmap::IndexMap::new();
    for e in main
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(k) = s(e.get("name")) else { continue };
        if e.pointer("/valueFrom/secretKeyRef").is_some() || looks_secret(&k) {
            if !svc.secrets.contains(&k) {
                svc.secrets.push(k);
            }
        } else if let Some(v) = s(e.get("value")) {
            env.insert(k, v);
        } else if let Some(cm) = e.pointer("/valueFrom/configMapKeyRef") {
            let v = s(cm.get("name")).and_then(|n| {
                config_maps
                    .get(&n)
                    .and_then(|m| m.get(s(cm.get("key")).unwrap_or_default()))
                    .and_then(Value::as_str)
                    .map(String::from)
            });
            env.insert(k, v.unwrap_or_default());
        } else {
            f.add(
                format!("{}.env.{k}", d.at()),
                Warning,
                format!("`{k}` comes from a field reference; imported empty"),
            );
            env.insert(k, String::new());
        }
    }
    for ef in main
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(cm) = s(ef.pointer("/configMapRef/name")) {
            match config_maps.get(&cm).and_then(|v| v.as_object()) {
                Some(data) => {
                    for (k, v) in data {
                        if looks_secret(k) {
                            svc.secrets.push(k.clone());
                            f.add(format!("{}.envFrom.{cm}", d.at()), Warning, format!("ConfigMap key `{k}` looks like a secret; imported as a secret reference"));
                        } else {
                            env.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                None => f.add(
                    format!("{}.envFrom", d.at()),
                    Warning,
                    format!("ConfigMap `{cm}` not found among the manifests"),
                ),
            }
        }
        if let Some(sec) = s(ef.pointer("/secretRef/name")) {
            f.add(format!("{}.envFrom", d.at()), Warning, format!("all keys of Secret `{sec}` are injected; list them under `secrets` in app.yaml (names are not known from the reference)"));
        }
    }
    svc.env = env;

    let (cpu, memory, cpu_limit, memory_limit) = container_resources(main);
    if cpu.is_some() || memory.is_some() || cpu_limit.is_some() || memory_limit.is_some() {
        svc.resources = Some(Resources {
            cpu: cpu.or(cpu_limit),
            memory: memory.or(memory_limit),
            cpu_limit,
            memory_limit,
        });
    }
    svc.replicas = d
        .value
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .map(|r| r as u32);
    svc.placement = node_selector(pod);
    // Readiness gates traffic, so it is the check carried over (then
    // liveness, then startup); a probe app.yaml cannot hold is named in a
    // finding rather than dropped in silence.
    let named_ports: BTreeMap<String, u16> = main
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p.get("containerPort")?.as_u64()?;
            Some((s(p.get("name"))?, u16::try_from(port).ok()?))
        })
        .collect();
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let Some(p) = main.get(probe) else { continue };
        match probe_to_health(p, &named_ports) {
            Ok(h) if svc.health.is_none() => {
                if let Some(g) = &h.grpc {
                    f.add(d.at(), Info, format!("`{probe}` of `{}` is a gRPC health probe on port {}: kept as health.grpc; Kubernetes and Cloud Run call it natively, our Docker-host and Swarm deploys call it from the proxy, Compose and VMs check that the port accepts connections", d.name(), g.port));
                }
                svc.health = Some(h);
            }
            // One check per service in app.yaml: a probe that checks
            // something else is named, not dropped in silence.
            Ok(h) => {
                let kept = svc.health.as_ref().expect("set above");
                let same = (&h.http, h.port, h.tcp, &h.grpc, &h.command)
                    == (&kept.http, kept.port, kept.tcp, &kept.grpc, &kept.command);
                if !same {
                    f.add(d.at(), Warning, format!("`{probe}` of `{}` checks something other than the probe kept as its health check (app.yaml holds one); it was not carried over", d.name()));
                }
            }
            Err(why) => f.add(
                d.at(),
                Warning,
                format!("`{probe}` of `{}` not carried over: {why}", d.name()),
            ),
        }
    }

    let mounts = main
        .get("volumeMounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let templates = d
        .value
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in &mounts {
        let (Some(vname), Some(path)) = (s(m.get("name")), s(m.get("mountPath"))) else {
            continue;
        };
        let vol = volumes
            .iter()
            .find(|v| s(v.get("name")).as_deref() == Some(vname.as_str()));
        if let Some(v) = vol {
            if let Some(claim) = s(v.pointer("/persistentVolumeClaim/claimName")) {
                svc.volumes.push(Volume {
                    name: sanitize_name(&claim),
                    path,
                    size: pvcs.get(&claim).copied().flatten(),
                    persistent: true,
                    host_path: None,
                });
            } else if v.get("emptyDir").is_some() {
                svc.volumes.push(Volume {
                    name: sanitize_name(&vname),
                    path,
                    size: None,
                    persistent: false,
                    host_path: None,
                });
            } else if let Some(hp) = s(v.pointer("/hostPath/path")) {
                if hp.ends_with("docker.sock") {
                    svc.traits.spawns_containers = true;
                    f.add(d.at(), Warning, "mounts the node's Docker socket: marked spawns_containers; use the Jobs runtime instead");
                } else {
                    svc.volumes.push(Volume {
                        name: sanitize_name(&vname),
                        path,
                        size: None,
                        persistent: true,
                        host_path: Some(hp),
                    });
                    f.add(
                        d.at(),
                        Warning,
                        "hostPath volume imported as a persistent volume",
                    );
                }
            } else if v.get("configMap").is_some()
                || v.get("secret").is_some()
                || v.get("projected").is_some()
            {
                f.add(
                    format!("{}.volumes.{vname}", d.at()),
                    Info,
                    "config/secret file mounts are generated per target, not imported",
                );
            } else {
                f.add(
                    format!("{}.volumes.{vname}", d.at()),
                    Warning,
                    "volume type not understood; not imported",
                );
            }
        } else if let Some(t) = templates
            .iter()
            .find(|t| s(t.pointer("/metadata/name")).as_deref() == Some(vname.as_str()))
        {
            svc.volumes.push(Volume {
                name: sanitize_name(&vname),
                path,
                size: storage_request(t),
                persistent: true,
                host_path: None,
            });
        }
    }
    if let Some(sa) = s(pod.pointer("/spec/serviceAccountName"))
        && spawners.contains(&sa)
    {
        svc.traits.spawns_containers = true;
        f.add(d.at(), Info, format!("service account `{sa}` may create Jobs/Pods: marked spawns_containers (Kubernetes Jobs runtime)"));
    }
    if pod
        .pointer("/spec/containers/0/securityContext/privileged")
        .and_then(Value::as_bool)
        == Some(true)
    {
        svc.traits.privileged = true;
    }
    if pod
        .pointer("/spec/containers/0/resources/limits/nvidia.com~1gpu")
        .is_some()
    {
        svc.traits.gpu = true;
    }
    match kind {
        "CronJob" => svc.traits.cron = s(d.value.pointer("/spec/schedule")),
        "Job" => f.add(d.at(), Warning, "a one-off Job is imported as a background worker; run it as a release command instead if it is a migration"),
        "DaemonSet" => f.add_per_target(d.at(), "DaemonSet (one per node) imported as one service", &[("kubernetes", Info)], Warning),
        _ => {}
    }
    if matches!(kind, "Job") || (svc.ports.is_empty() && kind != "CronJob") {
        svc.traits.background_worker = true;
    }
    if let Some(command) = release {
        if app.release.is_none() {
            f.add(
                d.at(),
                Info,
                format!("its init container runs `{}` before every pod starts: imported as the release command, run once per release before traffic moves", command.join(" ")),
            );
            app.release = Some(ReleaseCommand {
                service: name.clone(),
                command,
                timeout: None,
            });
        } else {
            f.add(
                d.at(),
                Warning,
                "a second migrating init container: only one release command is kept",
            );
        }
    }
    app.services.insert(name, svc);
}

/// Does a command line run schema migrations (the usual tools' verbs)?
fn migrates(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "migrat",
        "alembic upgrade",
        "db:migrate",
        "flyway",
        "liquibase",
        "goose up",
        "db push",
    ]
    .iter()
    .any(|k| l.contains(k))
}

fn container_resources(c: &Value) -> (Option<Cpu>, Option<Size>, Option<Cpu>, Option<Size>) {
    let cpu = |p: &str| {
        c.pointer(p)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .and_then(|s| Cpu::parse(&s).ok())
    };
    let mem = |p: &str| {
        c.pointer(p)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .and_then(|s| Size::parse(&s).ok())
    };
    (
        cpu("/resources/requests/cpu"),
        mem("/resources/requests/memory"),
        cpu("/resources/limits/cpu"),
        mem("/resources/limits/memory"),
    )
}

/// The protocol a port's name (or a Service's `appProtocol`) declares, by
/// the one rule used for containers and Services alike.
fn protocol_named(name: &str) -> Option<Protocol> {
    let name = name.to_ascii_lowercase();
    // `appProtocol` may carry a prefix (`kubernetes.io/ws`).
    let name = name.rsplit('/').next().unwrap_or(&name);
    if name.contains("grpc") {
        Some(Protocol::Grpc)
    } else if name.starts_with("ws") || name.contains("websocket") {
        Some(Protocol::Websocket)
    } else if name.contains("http") || name == "web" {
        Some(Protocol::Http)
    } else {
        None
    }
}

/// A probe as an app.yaml health check; named ports are resolved against
/// the container's ports. The error says why it cannot be one.
fn probe_to_health(p: &Value, named_ports: &BTreeMap<String, u16>) -> Result<HealthCheck, String> {
    let secs = |k: &str| p.get(k).and_then(Value::as_u64).map(Duration);
    let port_of = |v: Option<&Value>| -> Result<Option<u16>, String> {
        match v {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("port {n} is out of range")),
            Some(Value::String(name)) => {
                named_ports.get(name).copied().map(Some).ok_or_else(|| {
                    format!("it names port `{name}`, which the container does not declare")
                })
            }
            Some(other) => Err(format!("port {other} is neither a number nor a name")),
        }
    };
    let mut h = HealthCheck {
        interval: secs("periodSeconds"),
        timeout: secs("timeoutSeconds"),
        start_period: secs("initialDelaySeconds"),
        retries: p
            .get("failureThreshold")
            .and_then(Value::as_u64)
            .map(|r| r as u32),
        ..HealthCheck::default()
    };
    if let Some(g) = p.get("httpGet") {
        h.http = Some(s(g.get("path")).unwrap_or_else(|| "/".into()));
        h.port = port_of(g.get("port"))?;
    } else if let Some(t) = p.get("tcpSocket") {
        h.tcp = Some(port_of(t.get("port"))?.ok_or("a tcpSocket probe without a port")?);
    } else if let Some(e) = p.pointer("/exec/command").and_then(Value::as_array) {
        h.command = e
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
    } else if let Some(g) = p.get("grpc") {
        h.grpc = Some(GrpcHealth {
            port: port_of(g.get("port"))?.ok_or("a grpc probe without a port")?,
            service: s(g.get("service")),
        });
    } else {
        return Err("it has no httpGet, tcpSocket, exec or grpc handler".into());
    }
    Ok(h)
}

/// A pod's `nodeSelector` as placement constraints, in swarm's words:
/// node labels as they are, and the well-known hostname, OS and
/// architecture labels as the node attributes they stand for.
fn node_selector(pod: &Value) -> Option<NodePlacement> {
    let selector = pod.pointer("/spec/nodeSelector")?.as_object()?;
    let constraints: Vec<String> = selector
        .iter()
        .filter_map(|(k, v)| {
            let v = v.as_str()?;
            Some(match k.as_str() {
                "kubernetes.io/hostname" => format!("node.hostname=={v}"),
                "kubernetes.io/os" => format!("node.platform.os=={v}"),
                "kubernetes.io/arch" => format!("node.platform.arch=={}", swarm_arch(v)),
                label => format!("node.labels.{label}=={v}"),
            })
        })
        .collect();
    (!constraints.is_empty()).then(|| NodePlacement {
        constraints,
        ..Default::default()
    })
}
