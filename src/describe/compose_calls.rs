//! The service graph of a compose import. Compose's default network lets
//! every service reach every other, so the graph is read from what each
//! service says about its peers: environment values, command lines and the
//! config files it mounts. Where that cannot be read (a mounted folder of
//! config we cannot see), the service keeps reaching every peer it could on
//! Compose: all of the app, or the members of its explicit networks.

use super::app::{App, Connection};
use super::compose_values::{ComposeOptions, as_str_list, dep_name, env_entries, value_text};
use super::files;
use super::findings::{Findings, Severity};
use super::peers::{Calls, PeerNames};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Most files of one mounted config folder read for peer names.
const MAX_CONFIG_FILES: usize = 50;

pub(super) fn infer_calls(
    app: &mut App,
    services: &Map<String, Value>,
    env_seen: &HashMap<String, Vec<(String, String)>>,
    opts: &ComposeOptions,
    f: &mut Findings,
) {
    let imported = |raw: &str| {
        let n = dep_name(raw);
        (app.services.contains_key(&n) || app.dependencies.contains_key(&n)).then_some(n)
    };
    let mut names = PeerNames::default();
    let mut networks: Vec<(String, BTreeSet<String>)> = Vec::new();
    let explicit_networks = services.values().any(|s| s.get("networks").is_some());
    for (raw, svc) in services {
        let Some(component) = imported(raw) else {
            continue;
        };
        names.add(raw, &component);
        for key in ["container_name", "hostname"] {
            if let Some(alias) = svc.get(key) {
                names.add(&value_text(alias), &component);
            }
        }
        if let Some(Value::Object(nets)) = svc.get("networks") {
            for alias in nets
                .values()
                .filter_map(|n| n.get("aliases"))
                .flat_map(as_str_list)
            {
                names.add(&alias, &component);
            }
        }
        // `links: [db:database]` makes `database` mean `db`.
        for link in svc.get("links").map(as_str_list).unwrap_or_default() {
            if let Some((target, alias)) = link.split_once(':')
                && let Some(target) = imported(target)
            {
                names.add(alias, &target);
            }
        }
        networks.push((component, service_networks(svc)));
    }

    for (raw, svc) in services {
        let me = dep_name(raw);
        let at = format!("services.{raw}");
        let mut calls = Calls::default();
        for key in ["command", "entrypoint"] {
            if let Some(v) = svc.get(key) {
                calls.scan(&names, &me, key, &as_str_list(v).join(" "), false);
            }
        }
        // A recognised image (n8n, a broker) may call peers too.
        if let Some(dep) = app.dependencies.get_mut(&me) {
            let env = svc.get("environment").map(env_entries).unwrap_or_default();
            for (k, v) in env {
                calls.scan_env(&names, &me, &k, v.as_deref().unwrap_or(""));
            }
            calls.apply(&me, &[], &mut dep.connects_to, &at, f);
            continue;
        }
        if !app.services.contains_key(&me) {
            continue;
        }
        for (k, v) in env_seen.get(raw).into_iter().flatten() {
            calls.scan_env(&names, &me, k, v);
        }
        let mut unread = Vec::new();
        let mounts: Vec<(String, String)> = app.services[&me]
            .volumes
            .iter()
            .filter_map(|v| Some((v.host_path.clone()?, v.path.clone())))
            .filter(|(_, target)| is_config_mount(target))
            .collect();
        for (source, _) in &mounts {
            match read_config(source, opts) {
                Ok(texts) => {
                    for text in texts {
                        calls.scan(&names, &me, &format!("file {source}"), &text, false);
                    }
                }
                Err(why) => unread.push(format!("`{source}`: {why}")),
            }
        }
        if svc.get("configs").is_some() {
            unread.push("its `configs`".into());
        }
        let svc = app.services.get_mut(&me).expect("checked above");
        calls.apply(&me, &svc.depends_on, &mut svc.connects_to, &at, f);
        if unread.is_empty() {
            continue;
        }
        let why = format!(
            "`{raw}` reads configuration that was not read ({}), so its peers cannot be known",
            unread.join(", ")
        );
        if explicit_networks {
            let mine = networks
                .iter()
                .find(|(c, _)| *c == me)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            let mates: Vec<String> = networks
                .iter()
                .filter(|(c, n)| *c != me && !n.is_disjoint(&mine))
                .map(|(c, _)| c.clone())
                .collect();
            let svc = app.services.get_mut(&me).expect("checked above");
            for mate in &mates {
                let call = Connection {
                    to: mate.clone(),
                    port: None,
                };
                if !svc.connects_to.contains(&call) {
                    svc.connects_to.push(call);
                }
            }
            f.add(
                at,
                Severity::Warning,
                format!(
                    "{why}: it keeps reaching every service on its networks ({}), as on Compose",
                    mates.join(", ")
                ),
            );
        } else {
            app.services
                .get_mut(&me)
                .expect("checked above")
                .connects_to_any = true;
            f.add(at, Severity::Warning, format!("{why}: it keeps reaching every service of the app, as on Compose's default network (connects_to_any); list its calls under connects_to to isolate it"));
        }
    }
}

/// The networks a service joins (`default` when it names none).
fn service_networks(svc: &Value) -> BTreeSet<String> {
    match svc.get("networks") {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(v @ Value::Array(_)) => as_str_list(v).into_iter().collect(),
        _ => BTreeSet::from(["default".to_string()]),
    }
}

/// A bind mount that carries configuration (where peers are named), as
/// opposed to code or data.
fn is_config_mount(target: &str) -> bool {
    const CONFIG_EXT: [&str; 11] = [
        "conf",
        "cfg",
        "ini",
        "yml",
        "yaml",
        "json",
        "toml",
        "properties",
        "xml",
        "env",
        "cnf",
    ];
    let ext = Path::new(target)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    target.starts_with("/etc/") || target.starts_with("/config") || CONFIG_EXT.contains(&ext)
}

/// The text of a mounted config file, or of the files of a mounted folder.
fn read_config(source: &str, opts: &ComposeOptions) -> Result<Vec<String>, String> {
    if opts.sealed_files.is_some() {
        return Err("an upload carries no mounted files".into());
    }
    if source.starts_with('~') {
        return Err("in the home folder of the host".into());
    }
    let path = match &opts.base_dir {
        Some(base) => base.join(source),
        None => Path::new(source).to_path_buf(),
    };
    if path.is_dir() {
        let mut texts = Vec::new();
        let entries: Vec<_> = std::fs::read_dir(&path)
            .map_err(|e| e.to_string())?
            .flatten()
            .take(MAX_CONFIG_FILES + 1)
            .collect();
        if entries.len() > MAX_CONFIG_FILES {
            return Err(format!("a folder of more than {MAX_CONFIG_FILES} files"));
        }
        for entry in entries {
            if let Ok(text) = files::read_text(&entry.path(), files::MAX_ENV_FILE) {
                texts.push(text);
            }
        }
        return Ok(texts);
    }
    files::read_text(&path, files::MAX_ENV_FILE).map(|t| vec![t])
}
