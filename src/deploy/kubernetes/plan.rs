//! What a Kubernetes deploy does, as data: the generated objects (the same
//! as `generate --target kubernetes`) in apply order, each app Deployment
//! marked with its release, slot and track, then the waits, the selector
//! switch, canary steps and scale-downs. Computed without a cluster, so
//! it is shown by `--dry-run` and tested here; `deploy.rs` carries it out.

use crate::analyse::cost::Strategy;
use crate::deploy::strategy::Pause;
use crate::describe::app::App;
use crate::render::gateway::{self, Routing};
use crate::render::kubernetes;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const FIELD_MANAGER: &str = "deployment-manager";
pub const LABEL_RELEASE: &str = "deployment-manager/release";
/// main (rolling), blue or green: which Deployment the Service selects.
pub const LABEL_SLOT: &str = "deployment-manager/slot";
/// stable or canary.
pub const LABEL_TRACK: &str = "deployment-manager/track";
const NAME: &str = "app.kubernetes.io/name";

/// How a canary's share of traffic is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Traffic {
    /// Canary pods beside stable pods behind one Service: the share is
    /// the ratio of ready pods, so it moves in whole pods.
    #[default]
    ReplicaRatio,
    /// An HTTPRoute with weighted backends (Gateway API found).
    GatewayApi,
    /// A second Ingress with ingress-nginx's canary-weight annotation.
    IngressNginx,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Server-side apply with our field manager.
    Apply { object: Value },
    /// Wait for a Deployment's rollout: every replica updated and ready.
    Wait {
        deployment: String,
        namespace: String,
    },
    /// Point a Service at another slot's pods (the blue-green switch).
    Switch {
        service: String,
        namespace: String,
        selector: BTreeMap<String, String>,
    },
    Scale {
        deployment: String,
        namespace: String,
        replicas: u32,
    },
    /// A canary step: the share reached, by the means detected.
    Weight {
        service: String,
        percent: u32,
        traffic: Traffic,
    },
    /// Watch the canary this long before the next step; `None` waits for
    /// `promote`.
    Pause { seconds: Option<u64> },
    Delete {
        api_version: String,
        kind: String,
        name: String,
        namespace: String,
    },
}

/// What runs in the cluster now, as far as a plan needs it.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Service → the slot its selector picks.
    pub slots: BTreeMap<String, String>,
    /// Deployment → the release its pod template carries.
    pub releases: BTreeMap<String, u32>,
}

pub struct Input<'a> {
    pub app: &'a App,
    pub release: u32,
    pub strategy: Strategy,
    pub canary_steps: &'a [u32],
    pub pause: &'a Pause,
    pub traffic: Traffic,
    /// How public services are reached; canaries weigh its routes.
    pub routing: &'a Routing,
    pub cleanup: bool,
    pub current: &'a Current,
}

/// Apply order: namespace, config and policy, secrets, storage,
/// workloads, services, ingress, autoscaling.
pub fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ServiceAccount" | "Role" | "RoleBinding" | "NetworkPolicy" | "ResourceQuota"
        | "LimitRange" | "ConfigMap" => 1,
        "Secret" => 2,
        "PersistentVolumeClaim" => 3,
        "Deployment" | "StatefulSet" | "Job" => 4,
        "Service" => 5,
        "Ingress" | "Gateway" | "HTTPRoute" => 6,
        _ => 7,
    }
}

pub fn deployment_name(service: &str, slot: &str) -> String {
    if slot == "main" {
        service.to_string()
    } else {
        format!("{service}-{slot}")
    }
}

/// The Secret the workloads read, with every key and no value: values
/// are filled in from the environment only when it is applied.
pub fn secret_object(app: &App) -> Option<Value> {
    let keys = kubernetes::secret_keys(app);
    if keys.is_empty() {
        return None;
    }
    let data: serde_json::Map<String, Value> = keys.into_iter().map(|k| (k, json!(""))).collect();
    Some(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": format!("{}-secrets", app.name), "namespace": app.name,
            "labels": {"app.kubernetes.io/part-of": app.name, "app.kubernetes.io/managed-by": "deployment-manager"}},
        "stringData": data}),
    )
}

fn set_labels(obj: &mut Value, at: &[&str], labels: &[(&str, String)]) {
    let mut v = obj;
    for k in at {
        v = v
            .as_object_mut()
            .expect("objects are mappings")
            .entry(k.to_string())
            .or_insert_with(|| json!({}));
    }
    for (k, val) in labels {
        v[*k] = json!(val);
    }
}

/// Marks an app Deployment for one release, slot and track.
fn mark(d: &mut Value, name: &str, release: u32, slot: &str, track: &str) {
    d["metadata"]["name"] = json!(name);
    let ids = [
        (LABEL_SLOT, slot.to_string()),
        (LABEL_TRACK, track.to_string()),
    ];
    set_labels(d, &["spec", "selector", "matchLabels"], &ids);
    let mut all = ids.to_vec();
    all.push((LABEL_RELEASE, release.to_string()));
    set_labels(d, &["spec", "template", "metadata", "labels"], &all);
    set_labels(d, &["metadata", "labels"], &all);
}

fn selector(service: &str, slot: &str, traffic: Traffic) -> BTreeMap<String, String> {
    let mut s = BTreeMap::from([
        (NAME.to_string(), service.to_string()),
        (LABEL_SLOT.to_string(), slot.to_string()),
    ]);
    if traffic != Traffic::ReplicaRatio {
        s.insert(LABEL_TRACK.into(), "stable".into());
    }
    s
}

/// Canary pods for `percent` of traffic beside `stable` ready pods.
pub fn canary_replicas(stable: u32, percent: u32) -> u32 {
    if percent >= 100 {
        return stable.max(1);
    }
    let k = (stable as f64 * percent as f64 / (100 - percent) as f64).ceil() as u32;
    k.clamp(1, stable.max(1))
}

/// How one service's canary gets its share: routes weigh only public
/// services (a private one has no route, and a route would expose it), so
/// the others use the replica ratio.
fn traffic_of(i: &Input, service: &str) -> Traffic {
    let routed = gateway::public_services(i.app)
        .iter()
        .any(|(n, _, _)| *n == service);
    if routed {
        i.traffic
    } else {
        Traffic::ReplicaRatio
    }
}

pub fn plan(i: &Input) -> Vec<Step> {
    let app = i.app;
    let ns = app.name.clone();
    let mut objects: Vec<Value> = kubernetes::objects(app, i.routing)
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .collect();
    objects.extend(secret_object(app));
    objects.sort_by_key(|o| rank(o["kind"].as_str().unwrap_or("")));

    // App services served through a Service of their own name.
    let routed: Vec<String> = app
        .services
        .keys()
        .filter(|n| {
            objects
                .iter()
                .any(|o| o["kind"] == "Service" && o["metadata"]["name"] == n.as_str())
        })
        .cloned()
        .collect();
    let live_slot = |svc: &str| i.current.slots.get(svc).cloned();
    let canary = i.strategy == Strategy::Canary;
    let mut waits = Vec::new();
    let mut after = Vec::new();
    let mut canaries = Vec::new();
    for o in objects.iter_mut() {
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        match o["kind"].as_str() {
            Some("Deployment") if app.services.contains_key(&name) => {
                let live = live_slot(&name);
                let slot = match (i.strategy, routed.contains(&name), live.as_deref()) {
                    (Strategy::BlueGreen, true, Some("blue")) => "green",
                    (Strategy::BlueGreen, true, _) => "blue",
                    // A canary ends by updating the live slot in place.
                    (Strategy::Canary, true, Some(l)) => l,
                    _ => "main",
                }
                .to_string();
                let stable_name = deployment_name(&name, &slot);
                if canary && routed.contains(&name) && live.is_some() {
                    let mut c = o.clone();
                    let stable = o["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
                    mark(
                        &mut c,
                        &format!("{name}-canary"),
                        i.release,
                        &slot,
                        "canary",
                    );
                    c["spec"]["replicas"] = json!(canary_replicas(
                        stable,
                        i.canary_steps.first().copied().unwrap_or(100)
                    ));
                    canaries.push((name.clone(), slot.clone(), stable, c));
                    // The stable Deployment keeps its release until the end.
                    let keep = i
                        .current
                        .releases
                        .get(&stable_name)
                        .copied()
                        .unwrap_or(i.release);
                    mark(o, &stable_name, keep, &slot, "stable");
                    continue;
                }
                if i.strategy == Strategy::Recreate {
                    o["spec"]["strategy"] = json!({"type": "Recreate"});
                }
                mark(o, &stable_name, i.release, &slot, "stable");
                waits.push(Step::Wait {
                    deployment: stable_name.clone(),
                    namespace: ns.clone(),
                });
                if let Some(l) = live.filter(|l| *l != slot && routed.contains(&name)) {
                    after.push(Step::Switch {
                        service: name.clone(),
                        namespace: ns.clone(),
                        selector: selector(&name, &slot, traffic_of(i, &name)),
                    });
                    let old = deployment_name(&name, &l);
                    let keep_warm = i.strategy == Strategy::BlueGreen && !i.cleanup;
                    if !keep_warm {
                        after.push(Step::Scale {
                            deployment: old,
                            namespace: ns.clone(),
                            replicas: 0,
                        });
                    }
                }
            }
            Some("Service") if routed.contains(&name) => {
                // Until the switch, the Service keeps selecting the live slot.
                let slot = live_slot(&name).unwrap_or_else(|| {
                    if i.strategy == Strategy::BlueGreen {
                        "blue".into()
                    } else {
                        "main".into()
                    }
                });
                o["spec"]["selector"] = json!(selector(&name, &slot, traffic_of(i, &name)));
            }
            _ => {}
        }
    }
    // Autoscalers follow their Deployment to its slot.
    let renamed: BTreeMap<String, String> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .filter_map(|o| {
            let svc = o["spec"]["template"]["metadata"]["labels"][NAME].as_str()?;
            let name = o["metadata"]["name"].as_str()?;
            (svc != name).then(|| (svc.to_string(), name.to_string()))
        })
        .collect();
    for o in objects
        .iter_mut()
        .filter(|o| o["kind"] == "HorizontalPodAutoscaler")
    {
        if let Some(new) = o["spec"]["scaleTargetRef"]["name"]
            .as_str()
            .and_then(|n| renamed.get(n))
        {
            o["spec"]["scaleTargetRef"]["name"] = json!(new);
        }
    }
    let mut steps: Vec<Step> = objects
        .into_iter()
        .map(|object| Step::Apply { object })
        .collect();
    steps.extend(waits);
    steps.extend(after);
    for (name, slot, stable, c) in canaries {
        steps.extend(canary_steps(i, &name, &slot, stable, c));
    }
    steps
}

/// A canary beside the live slot, moved step by step, then the live
/// Deployment updated in place and the canary removed.
fn canary_steps(i: &Input, name: &str, slot: &str, stable: u32, canary: Value) -> Vec<Step> {
    let traffic = traffic_of(i, name);
    let i = &Input { traffic, ..*i };
    let ns = i.app.name.clone();
    let canary_name = format!("{name}-canary");
    let mut steps = vec![Step::Apply { object: canary }];
    let mut extra: Vec<(String, String)> = Vec::new();
    if i.traffic != Traffic::ReplicaRatio {
        let mut sel = selector(name, slot, i.traffic);
        sel.insert(LABEL_TRACK.into(), "canary".into());
        let port = i.app.services[name].ports.first().map_or(80, |p| p.port);
        steps.push(Step::Apply { object: json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": canary_name, "namespace": ns, "labels": {NAME: name, "app.kubernetes.io/part-of": i.app.name}},
            "spec": {"selector": sel, "ports": [{"name": "main", "port": port, "targetPort": port}]}}) });
        extra.push(("v1".into(), "Service".into()));
    }
    steps.push(Step::Wait {
        deployment: canary_name.clone(),
        namespace: ns.clone(),
    });
    for &p in i.canary_steps.iter().filter(|p| **p < 100) {
        if i.traffic == Traffic::ReplicaRatio {
            steps.push(Step::Scale {
                deployment: canary_name.clone(),
                namespace: ns.clone(),
                replicas: canary_replicas(stable, p),
            });
            steps.push(Step::Wait {
                deployment: canary_name.clone(),
                namespace: ns.clone(),
            });
        } else {
            steps.push(Step::Apply {
                object: weight_object(i, name, p),
            });
        }
        steps.push(Step::Weight {
            service: name.into(),
            percent: p,
            traffic: i.traffic,
        });
        steps.push(Step::Pause {
            seconds: match i.pause {
                Pause::Timed(d) => Some(d.as_secs()),
                Pause::Manual => None,
            },
        });
    }
    steps.extend(finish_canary(i, name, slot, &canary_name));
    match i.traffic {
        // The weighted route is the service's own: back to one backend.
        Traffic::GatewayApi => steps.push(Step::Apply {
            object: gateway::http_route(i.app, i.routing, name, &[(name.to_string(), None)]),
        }),
        Traffic::IngressNginx => steps.push(Step::Delete {
            api_version: "networking.k8s.io/v1".into(),
            kind: "Ingress".into(),
            name: canary_ingress_name(i, name),
            namespace: ns.clone(),
        }),
        Traffic::ReplicaRatio => {}
    }
    for (api, kind) in extra {
        steps.push(Step::Delete {
            api_version: api,
            kind,
            name: canary_name.clone(),
            namespace: ns.clone(),
        });
    }
    steps
}

/// 100 %: the live Deployment takes the new release (a rolling update),
/// then the canary goes.
fn finish_canary(i: &Input, name: &str, slot: &str, canary_name: &str) -> Vec<Step> {
    let ns = i.app.name.clone();
    let mut d = kubernetes::objects(i.app, i.routing)
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
        .expect("the canary's Deployment exists");
    let stable_name = deployment_name(name, slot);
    mark(&mut d, &stable_name, i.release, slot, "stable");
    vec![
        Step::Apply { object: d },
        Step::Wait {
            deployment: stable_name,
            namespace: ns.clone(),
        },
        Step::Weight {
            service: name.into(),
            percent: 100,
            traffic: i.traffic,
        },
        Step::Delete {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: canary_name.into(),
            namespace: ns,
        },
    ]
}

/// The second Ingress ingress-nginx weighs a canary with.
fn canary_ingress_name(i: &Input, name: &str) -> String {
    format!("{}-{name}-canary", i.app.name)
}

/// The object that gives the canary `percent` of traffic.
fn weight_object(i: &Input, name: &str, percent: u32) -> Value {
    let ns = &i.app.name;
    let port = i.app.services[name].ports.first().map_or(80, |p| p.port);
    let canary = format!("{name}-canary");
    match i.traffic {
        // The generated route itself, with the canary as a weighted backend.
        Traffic::GatewayApi => gateway::http_route(
            i.app,
            i.routing,
            name,
            &[
                (name.to_string(), Some(100 - percent)),
                (canary, Some(percent)),
            ],
        ),
        _ => {
            let host = i.app.domain.clone().unwrap_or_default();
            let mut rule = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": canary, "port": {"number": port}}}}]}});
            if !host.is_empty() {
                rule["host"] = json!(host);
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": canary_ingress_name(i, name), "namespace": ns,
                    "annotations": {"nginx.ingress.kubernetes.io/canary": "true",
                        "nginx.ingress.kubernetes.io/canary-weight": percent.to_string()}},
                "spec": {"ingressClassName": "nginx", "rules": [rule]}})
        }
    }
}

/// Returning to an earlier release: a warm Deployment of another slot
/// that still runs it is scaled up and switched to; otherwise its objects
/// are applied again as a rolling update.
pub fn rollback_plan(
    app: &App,
    runs: u32,
    current: &Current,
    traffic: Traffic,
    routing: &Routing,
) -> Vec<Step> {
    let ns = app.name.clone();
    let mut steps = Vec::new();
    let mut switched = Vec::new();
    for (name, s) in &app.services {
        let live = current.slots.get(name).cloned();
        let warm = ["blue", "green", "main"].into_iter().find(|slot| {
            Some(*slot) != live.as_deref()
                && current.releases.get(&deployment_name(name, slot)) == Some(&runs)
        });
        if let (Some(slot), Some(l)) = (warm, live.as_ref()) {
            let d = deployment_name(name, slot);
            steps.push(Step::Scale {
                deployment: d.clone(),
                namespace: ns.clone(),
                replicas: s.min_replicas(),
            });
            steps.push(Step::Wait {
                deployment: d,
                namespace: ns.clone(),
            });
            steps.push(Step::Switch {
                service: name.clone(),
                namespace: ns.clone(),
                selector: selector(name, slot, traffic),
            });
            steps.push(Step::Scale {
                deployment: deployment_name(name, l),
                namespace: ns.clone(),
                replicas: 0,
            });
            switched.push(name.clone());
        }
    }
    if switched.len() == app.services.len() {
        return steps;
    }
    let pause = Pause::Timed(std::time::Duration::ZERO);
    plan(&Input {
        app,
        release: runs,
        strategy: Strategy::Rolling,
        canary_steps: &[100],
        pause: &pause,
        traffic,
        routing,
        cleanup: true,
        current,
    })
}

/// One line per step, for people (`--dry-run`) and snapshots.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Apply { object } => format!(
            "apply   {}/{}{}",
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or(""),
            object["metadata"]["labels"][LABEL_RELEASE]
                .as_str()
                .map(|r| format!(" (release {r})"))
                .unwrap_or_default()
        ),
        Step::Wait { deployment, .. } => format!("wait    rollout of Deployment/{deployment}"),
        Step::Switch {
            service, selector, ..
        } => format!(
            "switch  Service/{service} → slot {}",
            selector.get(LABEL_SLOT).map_or("", String::as_str)
        ),
        Step::Scale {
            deployment,
            replicas,
            ..
        } => format!("scale   Deployment/{deployment} to {replicas}"),
        Step::Weight {
            service,
            percent,
            traffic,
        } => {
            format!(
                "weight  {service}: {percent}% on the canary ({})",
                serde_json::to_value(traffic)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            )
        }
        Step::Pause { seconds: Some(s) } => format!("pause   {s} s, watching the canary"),
        Step::Pause { seconds: None } => "pause   until `promote` or `rollback`".into(),
        Step::Delete { kind, name, .. } => format!("delete  {kind}/{name}"),
    }
}
