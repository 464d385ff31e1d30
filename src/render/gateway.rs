//! How public services are reached from outside a Kubernetes cluster. The
//! Gateway API by default: a Gateway of the app's own (or an existing one)
//! and one HTTPRoute per public service, TLS through cert-manager's Gateway
//! support, canaries by backend weights. An Ingress stays available with a
//! class setting, for clusters that still run an Ingress controller (the
//! ingress-nginx controller was retired in March 2026).

use crate::describe::app::{App, Protocol, Service};
use serde_json::{Value, json};

/// The GatewayClass GKE manages for an external Application Load Balancer.
pub const GKE_CLASS: &str = "gke-l7-global-external-managed";
/// The class Envoy Gateway's own install instructions create; DEPLOY.md
/// shows how on clusters without a managed Gateway controller.
pub const ENVOY_CLASS: &str = "eg";
/// The namespace Envoy Gateway runs its proxies in.
const ENVOY_NAMESPACE: &str = "envoy-gateway-system";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// A Gateway in the app's namespace, named after the app.
    OwnGateway { class: String },
    /// HTTPRoutes attached to a Gateway someone else runs (`ns/name`).
    Gateway { namespace: String, name: String },
    /// A networking.k8s.io/v1 Ingress of this class.
    Ingress { class: String },
}

impl Routing {
    /// The default for a target: GKE's managed Gateway, else Envoy Gateway.
    pub fn for_target(target_id: &str) -> Routing {
        let class = if target_id == "k8s-gke" {
            GKE_CLASS
        } else {
            ENVOY_CLASS
        };
        Routing::OwnGateway {
            class: class.into(),
        }
    }

    /// From the profile settings `gateway` (`ns/name` of an existing
    /// Gateway), `gateway-class` and `ingress-class`.
    pub fn from_settings(
        target_id: &str,
        gateway: Option<&str>,
        gateway_class: Option<&str>,
        ingress_class: Option<&str>,
    ) -> Routing {
        if let Some(class) = ingress_class {
            return Routing::Ingress {
                class: class.into(),
            };
        }
        if let Some(gw) = gateway {
            let (namespace, name) = gw.split_once('/').unwrap_or(("default", gw));
            return Routing::Gateway {
                namespace: namespace.into(),
                name: name.into(),
            };
        }
        match gateway_class {
            Some(class) => Routing::OwnGateway {
                class: class.into(),
            },
            None => Routing::for_target(target_id),
        }
    }

    /// The Gateway HTTPRoutes attach to: (namespace, name).
    pub fn gateway_ref(&self, app: &App) -> Option<(String, String)> {
        match self {
            Routing::OwnGateway { .. } => Some((app.name.clone(), app.name.clone())),
            Routing::Gateway { namespace, name } => Some((namespace.clone(), name.clone())),
            Routing::Ingress { .. } => None,
        }
    }

    /// Who delivers outside traffic to the pods, for NetworkPolicies.
    pub fn traffic_source(&self) -> Value {
        match self {
            // GKE's load balancer reaches pods from Google's front ends and
            // health checkers (documented ranges), not from a namespace.
            Routing::OwnGateway { class } if class == GKE_CLASS => json!([
                {"ipBlock": {"cidr": "35.191.0.0/16"}},
                {"ipBlock": {"cidr": "130.211.0.0/22"}}
            ]),
            Routing::OwnGateway { class } if class == ENVOY_CLASS => {
                json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ENVOY_NAMESPACE}}}])
            }
            Routing::Gateway { namespace, .. } => {
                json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}])
            }
            Routing::Ingress { class } if class == "nginx" => {
                json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}])
            }
            // A controller whose namespace is not known: any namespace,
            // still only on the public ports.
            _ => json!([{"namespaceSelector": {}}]),
        }
    }
}

/// Services reachable from outside, in app order, with the port they serve.
pub fn public_services(app: &App) -> Vec<(&String, &Service, u16)> {
    app.services
        .iter()
        .filter_map(|(n, s)| {
            let p = s.ports.iter().find(|p| {
                p.public
                    && matches!(
                        p.protocol,
                        Protocol::Http | Protocol::Websocket | Protocol::Grpc
                    )
            })?;
            Some((n, s, p.port))
        })
        .collect()
}

pub fn host(app: &App) -> String {
    app.domain
        .clone()
        .unwrap_or_else(|| format!("{}.example.com", app.name))
}

/// The path a public service is routed under: the first gets `/`.
fn path_of(app: &App, service: &str) -> String {
    match public_services(app).first() {
        Some((first, _, _)) if *first == service => "/".into(),
        _ => format!("/{service}"),
    }
}

/// The HTTPRoute of one public service. `backends` are (Service, weight);
/// one backend without a weight in generated files, the stable and canary
/// Services with their weights during a canary.
pub fn http_route(
    app: &App,
    routing: &Routing,
    service: &str,
    backends: &[(String, Option<u32>)],
) -> Value {
    let (gw_ns, gw_name) = routing
        .gateway_ref(app)
        .unwrap_or_else(|| (app.name.clone(), app.name.clone()));
    let port = public_services(app)
        .iter()
        .find(|(n, _, _)| *n == service)
        .map_or(80, |(_, _, p)| *p);
    let refs: Vec<Value> = backends
        .iter()
        .map(|(name, weight)| {
            let mut r = json!({"name": name, "port": port});
            if let Some(w) = weight {
                r["weight"] = json!(w);
            }
            r
        })
        .collect();
    let mut parent = json!({"name": gw_name, "namespace": gw_ns});
    if matches!(routing, Routing::OwnGateway { .. }) {
        parent["sectionName"] = json!("https");
    }
    let mut rule = json!({
        "matches": [{"path": {"type": "PathPrefix", "value": path_of(app, service)}}],
        "backendRefs": refs,
    });
    let long = app
        .services
        .get(service)
        .is_some_and(|s| s.traits.long_requests.is_some() || s.has_protocol(Protocol::Websocket));
    if long {
        // Long requests and WebSockets outlive a controller's default.
        rule["timeouts"] = json!({"request": "3600s"});
    }
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": service, "namespace": app.name},
        "spec": {"parentRefs": [parent], "hostnames": [host(app)], "rules": [rule]}})
}

/// The routing objects of generated files: (file name, objects).
pub fn objects(app: &App, routing: &Routing) -> Option<(String, Vec<Value>)> {
    let public = public_services(app);
    if public.is_empty() {
        return None;
    }
    let ns = &app.name;
    let host = host(app);
    let mut docs = Vec::new();
    match routing {
        Routing::OwnGateway { class } => {
            docs.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": app.name, "namespace": ns,
                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
                "spec": {"gatewayClassName": class, "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80, "hostname": host,
                        "allowedRoutes": {"namespaces": {"from": "Same"}}},
                    {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": host,
                        "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": format!("{}-tls", app.name)}]},
                        "allowedRoutes": {"namespaces": {"from": "Same"}}}
                ]}}));
            // Plain HTTP only redirects to HTTPS.
            docs.push(
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": format!("{}-https-redirect", app.name), "namespace": ns},
                "spec": {"parentRefs": [{"name": app.name, "namespace": ns, "sectionName": "http"}],
                    "hostnames": [host],
                    "rules": [{"filters": [{"type": "RequestRedirect",
                        "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}}),
            );
        }
        Routing::Gateway { .. } => {}
        Routing::Ingress { class } => {
            let paths: Vec<Value> = public.iter().map(|(n, _, port)| {
                json!({"path": path_of(app, n), "pathType": "Prefix", "backend": {"service": {"name": n, "port": {"number": port}}}})
            }).collect();
            let mut annotations = json!({"cert-manager.io/cluster-issuer": "letsencrypt"});
            if class == "nginx" {
                annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] = json!("3600");
                annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] = json!("3600");
                if public.iter().any(|(_, s, _)| s.traits.sticky_sessions) {
                    annotations["nginx.ingress.kubernetes.io/affinity"] = json!("cookie");
                }
            }
            docs.push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": app.name, "namespace": ns, "annotations": annotations},
                "spec": {
                    "ingressClassName": class,
                    "tls": [{"hosts": [host], "secretName": format!("{}-tls", app.name)}],
                    "rules": [{"host": host, "http": {"paths": paths}}]
                }}),
            );
            return Some(("ingress.yaml".into(), docs));
        }
    }
    for (name, _, _) in &public {
        docs.push(http_route(app, routing, name, &[(name.to_string(), None)]));
    }
    Some(("gateway.yaml".into(), docs))
}
