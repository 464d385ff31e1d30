//! What is priced is what is generated: for every example on every target
//! that runs containers itself, at a small and a large user count, the
//! dependencies priced as managed have no container in the generated
//! files and every other one has, the replicas written are the replicas
//! priced, and the node count and size, the load balancer and the layout
//! in DEPLOY.md are the priced ones. The estimate is computed on its own
//! path (`estimate_capped`), the files through `render_from`.

mod common;
use common::{EXAMPLES, example};
use deployment_manager::analyse::cost::{self, Strategy};
use deployment_manager::analyse::fitness::Engine;
use deployment_manager::catalog::Catalog;
use deployment_manager::describe::known::known;
use deployment_manager::render::{GeneratedFile, Options, RenderError, render_from};
use serde_json::Value;
use std::collections::BTreeSet;

const TARGETS: [&str; 9] = [
    "vm-digitalocean",
    "vm-hetzner",
    "vm-aws-ec2",
    "vm-gcp",
    "compose",
    "swarm",
    "k8s-gke",
    "k8s-doks",
    "k8s-eks",
];

fn file<'a>(files: &'a [GeneratedFile], path: &str) -> Option<&'a str> {
    files
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.content.as_str())
}

fn yaml_docs(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// A container the files run: its name, its replicas, and the min and max
/// of the HorizontalPodAutoscaler that decides them, if one does.
type Workload = (String, Option<u64>, Option<(u64, u64)>);

fn generated_workloads(files: &[GeneratedFile]) -> Vec<Workload> {
    let mut out = Vec::new();
    for path in ["compose.yaml", "stack.yaml"] {
        if let Some(text) = file(files, path) {
            let v: Value = serde_saphyr::from_str(text).unwrap();
            for (name, svc) in v["services"].as_object().unwrap() {
                let replicas = svc["deploy"]["replicas"].as_u64().or(Some(1));
                out.push((name.clone(), replicas, None));
            }
            return out;
        }
    }
    let docs: Vec<Value> = files
        .iter()
        .filter(|f| f.path.ends_with(".yaml"))
        .flat_map(|f| yaml_docs(&f.content))
        .collect();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or("");
        if kind == "Deployment" || kind == "StatefulSet" {
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let hpa = docs.iter().find(|h| {
                h["kind"] == "HorizontalPodAutoscaler"
                    && h["spec"]["scaleTargetRef"]["name"].as_str() == Some(&name)
            });
            let range = hpa.map(|h| {
                (
                    h["spec"]["minReplicas"].as_u64().unwrap(),
                    h["spec"]["maxReplicas"].as_u64().unwrap(),
                )
            });
            out.push((name, d["spec"]["replicas"].as_u64(), range));
        }
    }
    out
}

#[test]
fn what_is_priced_is_what_is_generated() {
    let cat = Catalog::embedded();
    let engine = Engine::new(&cat, Vec::new());
    let mut checked = 0;
    for ex in EXAMPLES {
        let app = example(ex);
        for t in TARGETS {
            let target = cat.target(t).unwrap();
            for users in [10, 1000] {
                let options = Options {
                    users: Some(users),
                    ..Default::default()
                };
                let files = match render_from(&engine, &app, t, &options) {
                    Ok(f) => f,
                    Err(RenderError::Blocked { .. }) => continue,
                    Err(e) => panic!("{ex}/{t}: {e}"),
                };
                let e = cost::estimate_capped(&cat, &app, target, users, Strategy::Rolling);
                let at = format!("{ex} on {t} at {users} users");

                // Dependencies: managed as priced, containers for the rest.
                let managed: BTreeSet<String> = e
                    .lines
                    .iter()
                    .filter(|l| {
                        l.price_id
                            .as_ref()
                            .is_some_and(|id| target.pricing.managed.values().any(|m| m == id))
                    })
                    .filter_map(|l| l.name.split_once(" → managed ").map(|(n, _)| n.to_string()))
                    .collect();
                let workloads = generated_workloads(&files);
                let names: BTreeSet<&str> = workloads.iter().map(|w| w.0.as_str()).collect();
                for (name, d) in &app.dependencies {
                    let k = known().get(&d.kind);
                    if k.is_some_and(|k| k.external || k.class == "embedded") {
                        continue;
                    }
                    if managed.contains(name) {
                        assert!(
                            !names.contains(name.as_str()),
                            "{at}: `{name}` is priced as managed but runs as a container"
                        );
                    } else {
                        assert!(
                            names.contains(name.as_str()),
                            "{at}: `{name}` is priced on the nodes but has no container ({names:?})"
                        );
                    }
                }

                // Replicas: the placement's, in placement.json and the files.
                let placement: Value =
                    serde_json::from_str(file(&files, "placement.json").unwrap()).unwrap();
                assert_eq!(
                    placement["monthly"]["total"],
                    serde_json::json!(e.total),
                    "{at}"
                );
                for u in placement["placement"]["units"].as_array().unwrap() {
                    let name = u["name"].as_str().unwrap();
                    let priced = u["replicas"].as_u64().unwrap();
                    let Some((_, replicas, range)) = workloads.iter().find(|w| w.0 == name) else {
                        panic!("{at}: `{name}` is priced but not generated ({names:?})");
                    };
                    match range {
                        Some((min, max)) => assert!(
                            (*min..=*max).contains(&priced),
                            "{at}: `{name}` priced at {priced} replicas, outside its autoscaler's {min}..{max}"
                        ),
                        None => assert_eq!(*replicas, Some(priced), "{at}: `{name}` replicas"),
                    }
                }

                // Nodes, load balancer and layout, as priced.
                let docs = file(&files, "DEPLOY.md").unwrap();
                let compute = e
                    .lines
                    .iter()
                    .find(|l| l.category == "compute" && l.name.contains(" × "))
                    .unwrap_or_else(|| panic!("{at}: no node line in {:?}", e.lines));
                let (count, rest) = compute.name.split_once(" × ").unwrap();
                let count: u32 = count.parse().unwrap();
                let item = rest.rsplit_once(" (").unwrap().0;
                let lb = e.lines.iter().any(|l| l.category == "load_balancer");
                if t.starts_with("vm-") {
                    let create = if count == 1 {
                        format!("Create one VM of size {item}")
                    } else {
                        format!("Create {count} VMs of size {item}")
                    };
                    assert!(docs.contains(&create), "{at}: DEPLOY.md lacks `{create}`");
                    assert_eq!(
                        docs.contains("load balancer"),
                        lb,
                        "{at}: load balancer priced {lb}"
                    );
                    // More than one VM: a swarm when state lives on them,
                    // else identical VMs that hold none.
                    if count > 1 {
                        let holds_state = workloads
                            .iter()
                            .any(|w| !app.services.contains_key(&w.0) && w.0 != "docker-proxy")
                            || app
                                .services
                                .values()
                                .any(|s| s.persistent_volumes().next().is_some())
                            || !app.sessions.is_empty();
                        assert_eq!(
                            file(&files, "stack.yaml").is_some(),
                            holds_state,
                            "{at}: a swarm exactly when the VMs hold state"
                        );
                    } else {
                        assert!(
                            file(&files, "compose.yaml").is_some(),
                            "{at}: one VM runs compose"
                        );
                    }
                }
                if t == "compose" {
                    assert_eq!(count, 1, "{at}: Compose runs on one machine");
                    assert!(!lb, "{at}: one machine needs no load balancer");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "only {checked} placements checked");
}
