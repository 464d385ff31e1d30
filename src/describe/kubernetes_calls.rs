//! The service graph of a Kubernetes import: which Services each workload
//! calls, read from its container's env values, the ConfigMap and Secret
//! keys it reads (as variables or mounted files) and its command line. A
//! value the manifests do not hold (a Secret created elsewhere) means the
//! workload's peers cannot be known: it keeps reaching the whole app.

use super::app::App;
use super::compose_values::sanitize_name;
use super::findings::{Findings, Severity};
use super::kubernetes_doc::{Doc, selects};
use super::peers::{Calls, PeerNames, key_names_host};
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;

const WORKLOADS: [&str; 5] = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"];

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// Key → value of every ConfigMap, and of every Secret (decoded), by name.
fn config_data(docs: &[Doc], kind: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    docs.iter()
        .filter(|d| d.kind() == kind)
        .map(|d| {
            let mut data = BTreeMap::new();
            let plain = if kind == "Secret" {
                "stringData"
            } else {
                "data"
            };
            for (k, v) in d
                .value
                .get(plain)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                data.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
            if kind == "Secret" {
                for (k, v) in d
                    .value
                    .get("data")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if let Some(bytes) = v.as_str().and_then(|v| b64.decode(v).ok()) {
                        data.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
            (d.name(), data)
        })
        .collect()
}

pub(super) fn infer_calls(app: &mut App, docs: &[Doc], f: &mut Findings) {
    let config_maps = config_data(docs, "ConfigMap");
    let secrets = config_data(docs, "Secret");
    let workloads: Vec<(&Doc, String, &Value)> = docs
        .iter()
        .filter(|d| WORKLOADS.contains(&d.kind()))
        .filter_map(|d| {
            let component = sanitize_name(&d.name());
            let imported =
                app.services.contains_key(&component) || app.dependencies.contains_key(&component);
            Some((d, component, d.pod_template()?)).filter(|_| imported)
        })
        .collect();

    let mut names = PeerNames::default();
    for (_, component, pod) in &workloads {
        names.add(component, component);
        let labels = pod
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for svc in docs.iter().filter(|d| d.kind() == "Service") {
            if selects(&svc.value, &labels) {
                names.add(&svc.name(), component);
            }
        }
    }

    for (d, me, pod) in &workloads {
        let Some(main) = pod.pointer("/spec/containers/0") else {
            continue;
        };
        let mut calls = Calls::default();
        let mut unknown = Vec::new();
        let scan_map = |what: &str, data: &BTreeMap<String, String>, calls: &mut Calls| {
            for (k, v) in data {
                calls.scan(&names, me, &format!("{what} key {k}"), v, key_names_host(k));
            }
        };
        for e in main
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key) = text(e.get("name")) else {
                continue;
            };
            if let Some(v) = text(e.get("value")) {
                calls.scan_env(&names, me, key, v);
            }
            for (kind, data) in [
                ("configMapKeyRef", &config_maps),
                ("secretKeyRef", &secrets),
            ] {
                let Some(r) = e.pointer(&format!("/valueFrom/{kind}")) else {
                    continue;
                };
                let (from, item) = (
                    text(r.get("name")).unwrap_or(""),
                    text(r.get("key")).unwrap_or(""),
                );
                let what = if kind == "secretKeyRef" {
                    "Secret"
                } else {
                    "ConfigMap"
                };
                match data.get(from).and_then(|m| m.get(item)) {
                    Some(v) => calls.scan(
                        &names,
                        me,
                        &format!("env {key} from {what} {from}"),
                        v,
                        key_names_host(key),
                    ),
                    None => unknown.push(format!("env `{key}` from {what} `{from}`")),
                }
            }
        }
        for e in main
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (kind, data, what) in [
                ("configMapRef", &config_maps, "ConfigMap"),
                ("secretRef", &secrets, "Secret"),
            ] {
                let Some(from) = e.pointer(&format!("/{kind}/name")).and_then(Value::as_str) else {
                    continue;
                };
                match data.get(from) {
                    Some(m) => scan_map(&format!("{what} {from}"), m, &mut calls),
                    None => unknown.push(format!("all variables of {what} `{from}`")),
                }
            }
        }
        let command: Vec<&str> = ["command", "args"]
            .iter()
            .flat_map(|k| main.get(*k).and_then(Value::as_array).into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        calls.scan(&names, me, "command", &command.join(" "), false);
        // ConfigMaps and Secrets mounted as files the container reads.
        let mounted: Vec<&str> = main
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| text(m.get("name")))
            .collect();
        let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array);
        for v in volumes.into_iter().flatten() {
            if !text(v.get("name")).is_some_and(|n| mounted.contains(&n)) {
                continue;
            }
            let sources = [
                (
                    "ConfigMap",
                    text(v.pointer("/configMap/name")),
                    &config_maps,
                ),
                ("Secret", text(v.pointer("/secret/secretName")), &secrets),
            ];
            for (what, from, data) in sources {
                let Some(from) = from else { continue };
                for (k, body) in data.get(from).into_iter().flatten() {
                    let evidence = format!("{what} {from} file {k}");
                    calls.scan(&names, me, &evidence, body, false);
                }
            }
        }
        let at = d.at();
        if let Some(dep) = app.dependencies.get_mut(me) {
            calls.apply(me, &[], &mut dep.connects_to, &at, f);
            continue;
        }
        let Some(svc) = app.services.get_mut(me) else {
            continue;
        };
        calls.apply(me, &svc.depends_on, &mut svc.connects_to, &at, f);
        if !unknown.is_empty() {
            svc.connects_to_any = true;
            f.add(at, Severity::Warning, format!("`{me}` reads {} that the manifests do not hold, so its peers cannot be known: it keeps reaching every workload of the app, as it could in its namespace (connects_to_any); list its calls under connects_to to isolate it", unknown.join(", ")));
        }
    }
}
