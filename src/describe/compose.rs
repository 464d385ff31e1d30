//! Import a Compose file (the Compose Specification as real files use it) into
//! an [`App`]. Well-known images become dependencies, edge proxies are
//! dropped, secret-looking variables become secret references, and every key
//! that cannot be carried over is reported in [`Findings`].

use super::app::*;
pub use super::compose_values::{ComposeOptions, sanitize_name};
use super::compose_values::{as_str_list, dep_name, env_entries, value_text};
use super::diagnostic::{SpanIndex, SpecError};
use super::files;
use super::findings::{Findings, Severity};
use super::interpolate::interpolate;
use super::known::{image_repository, image_tag, known};
use super::load::{MAX_COMPONENTS, MAX_SPEC_BYTES, check_app, from_yaml_error, yaml_options};
use super::node_placement::{Constraint, NodePlacement};
use super::secrets_detect::looks_secret;
use super::units::{Cpu, Duration, Size};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use Severity::{Error as Err_, Info, Warning};

pub struct ComposeImport {
    pub app: App,
    pub findings: Findings,
}

pub fn import_compose(
    file: &str,
    src: &str,
    opts: &ComposeOptions,
) -> Result<ComposeImport, Box<SpecError>> {
    if src.len() > MAX_SPEC_BYTES {
        return Err(Box::new(SpecError::at(
            file,
            "",
            0,
            0,
            "compose file exceeds 8 MiB",
        )));
    }
    let mut doc: Value = serde_saphyr::from_str_with_options(src, yaml_options())
        .map_err(|e| Box::new(from_yaml_error(file, src, &e)))?;
    let idx = SpanIndex::build(src);
    let err = |path: &str, msg: String| Box::new(idx.error(file, src, path, msg));
    let mut findings = Findings::default();

    interpolate(&mut doc, &opts.env, "", &mut |path, msg| {
        findings.add(path, Warning, msg);
    })
    .map_err(|(path, msg)| Box::new(idx.error_at_value(file, src, &path, msg)))?;

    let root = doc.as_object().ok_or_else(|| {
        err(
            "",
            "a compose file is a mapping with a `services` key".into(),
        )
    })?;
    let services = root
        .get("services")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            err(
                "services",
                "a compose file needs a `services` mapping".into(),
            )
        })?;

    if services.len() > MAX_COMPONENTS {
        return Err(err(
            "services",
            format!(
                "the file has {} services; the limit is {MAX_COMPONENTS}",
                services.len()
            ),
        ));
    }
    let (name, named_by) = project_name(root, file, opts);
    if let Some(named_by) = named_by {
        findings.add(
            "name",
            Info,
            format!("app named `{name}` after {named_by}, as Compose names the project"),
        );
    }
    let mut app = App::new(&name);

    for (key, value) in root {
        match key.as_str() {
            "services" | "name" => {}
            "version" => findings.add("version", Info, "`version` is obsolete in the Compose Specification and ignored"),
            "volumes" => note_top_volumes(value, &mut findings),
            "secrets" => note_top_secrets(value, &mut findings),
            "networks" => findings.add("networks", Info, "networks are not imported as such: each target derives its isolation from the service graph (a service whose peers are unknown keeps reaching the members of its networks)"),
            "configs" => findings.add_per_target("configs", "config files are not imported; mount them from the image or a volume", &[("swarm", Warning), ("kubernetes", Warning), ("compose", Warning)], Warning),
            k if k.starts_with("x-") => findings.add(k, Info, "extension field ignored (anchors from it were already applied)"),
            k => findings.add(k, Warning, format!("top-level key `{k}` is not understood and was not imported")),
        }
    }

    let mut skipped = BTreeSet::new();
    // Web servers recognised as edge proxies: (name, image, whether it
    // serves something of its own: a mounted site or config, a published
    // port). Dropped below unless one of them is the whole app.
    let mut proxies: Vec<(String, String, bool)> = Vec::new();
    // Each imported service's environment as written (secrets included),
    // read only for the names of the peers it calls.
    let mut env_seen: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (svc_name, svc) in services {
        let path = format!("services.{svc_name}");
        let Some(svc) = svc.as_object() else {
            return Err(err(
                &path,
                format!("service `{svc_name}` must be a mapping"),
            ));
        };
        if let Some(p) = svc.get("profiles").and_then(Value::as_array) {
            let active = p
                .iter()
                .filter_map(Value::as_str)
                .any(|p| opts.profiles.iter().any(|a| a == p));
            if !active {
                findings.add(format!("{path}.profiles"), Info, format!("service `{svc_name}` skipped: none of its profiles is active (pass --compose-profile to include it)"));
                skipped.insert(svc_name.clone());
                continue;
            }
        }
        let image = svc
            .get("image")
            .filter(|v| !v.is_null() && !v.is_object() && !v.is_array())
            .map(value_text);
        if let Some(image) = &image {
            if known().is_edge_proxy(image) {
                let serves = svc.get("volumes").is_some() || svc.get("ports").is_some();
                proxies.push((
                    svc_name.clone(),
                    image_repository(image).to_string(),
                    serves,
                ));
                skipped.insert(svc_name.clone());
                continue;
            }
            if svc.get("build").is_none()
                && let Some(kind) = known().kind_of_image(image)
            {
                let dep = import_dependency(svc_name, kind, image, svc, &path, &mut findings);
                name_is_free(&app, svc_name).map_err(|m| err(&path, m))?;
                app.dependencies.insert(dep_name(svc_name), dep);
                continue;
            }
        }
        let mut seen = Vec::new();
        let service = import_service(svc_name, svc, root, &path, opts, &mut findings, &mut seen)
            .map_err(|(p, m)| err(&p, m))?;
        name_is_free(&app, svc_name).map_err(|m| err(&path, m))?;
        app.services.insert(dep_name(svc_name), service);
        env_seen.insert(svc_name.clone(), seen);
    }

    // When nothing else is left, a web server that serves something of its
    // own is the app (an nginx serving its mounted site): keep it, as
    // Compose runs it. Every other proxy is dropped, and said so.
    let whole_app = app.services.is_empty();
    for (svc_name, image, serves) in &proxies {
        let path = format!("services.{svc_name}");
        let kept = whole_app && *serves;
        if let (true, Some(svc)) = (kept, services.get(svc_name).and_then(Value::as_object)) {
            let mut seen = Vec::new();
            let service =
                import_service(svc_name, svc, root, &path, opts, &mut findings, &mut seen)
                    .map_err(|(p, m)| err(&p, m))?;
            name_is_free(&app, svc_name).map_err(|m| err(&path, m))?;
            app.services.insert(dep_name(svc_name), service);
            env_seen.insert(svc_name.clone(), seen);
            skipped.remove(svc_name);
            findings.add(
                path,
                Info,
                format!("`{svc_name}` is a web server serving its own content, config or port, and nothing else serves this app: imported as its service, not dropped as an edge proxy"),
            );
        } else {
            findings.add_per_target(
                path,
                format!("`{svc_name}` ({image}) is an edge proxy; targets provide their own TLS and routing, so it was not imported"),
                &[("local", Info), ("vm", Info), ("compose", Info)],
                Info,
            );
        }
    }

    // A stack of data services only (a lone redis, a database with its
    // admin UI dropped as a proxy) is what the team runs: its services run
    // their images, as Compose runs them, rather than being refused.
    if app.services.is_empty() && !app.dependencies.is_empty() {
        for (svc_name, svc) in services {
            let Some(dep) = app.dependencies.shift_remove(&dep_name(svc_name)) else {
                continue;
            };
            let path = format!("services.{svc_name}");
            let Some(svc) = svc.as_object() else { continue };
            let mut seen = Vec::new();
            let mut service =
                import_service(svc_name, svc, root, &path, opts, &mut findings, &mut seen)
                    .map_err(|(p, m)| err(&p, m))?;
            if let (true, Some(port)) = (
                service.ports.is_empty(),
                known().get(&dep.kind).and_then(|k| k.port),
            ) {
                service.ports.push(Port {
                    port,
                    protocol: Protocol::Tcp,
                    public: false,
                    published: None,
                });
            }
            app.services.insert(dep_name(svc_name), service);
            env_seen.insert(svc_name.clone(), seen);
            findings.add(
                path,
                Info,
                format!("the file holds data services only: `{svc_name}` ({}) is imported as a service that runs its image, as Compose runs it, not as a dependency a managed offering could replace", dep.kind),
            );
        }
    }

    release_from_one_off(&mut app, services, &mut findings);

    // depends_on may point at skipped services: drop those edges, reported.
    let all: BTreeSet<String> = app
        .services
        .keys()
        .chain(app.dependencies.keys())
        .cloned()
        .collect();
    for (name, svc) in app.services.iter() {
        if let Some(d) = svc
            .depends_on
            .iter()
            .find(|d| !all.contains(*d) && !skipped.contains(*d))
        {
            return Err(err(
                &format!("services.{name}.depends_on"),
                format!("`{name}` depends on `{d}`, which is not defined"),
            ));
        }
    }
    for (name, svc) in app.services.iter_mut() {
        svc.depends_on.retain(|d| {
            let keep = all.contains(d);
            if !keep {
                findings.add(
                    format!("services.{name}.depends_on"),
                    Info,
                    format!("dependency on skipped service `{d}` dropped"),
                );
            }
            keep
        });
    }
    if app.services.is_empty() {
        return Err(err(
            "services",
            "no application service left after recognising dependencies and edge proxies".into(),
        ));
    }
    super::compose_calls::infer_calls(&mut app, services, &env_seen, opts, &mut findings);
    let users = 10;
    app.usage = Some(Usage {
        users: Some(users),
        ..Usage::default()
    });
    findings.add("usage", Info, format!("compose files carry no usage figures; assumed {users} users (set usage.users in app.yaml)"));
    // What cannot be expressed in app.yaml is an error at the compose key it
    // came from, never an invalid app.yaml.
    let yaml = serde_saphyr::to_string(&app).unwrap_or_default();
    if let Err(e) = check_app(&app, "app.yaml", &yaml) {
        return Err(err(
            &e.label,
            format!("cannot be expressed in app.yaml: {}", e.message),
        ));
    }
    findings.sort();
    Ok(ComposeImport { app, findings })
}

/// A one-off service that others wait for with
/// `condition: service_completed_successfully` (migrations, as Compose
/// users write them) is the release command: it runs once per release
/// before traffic moves, with the image and settings of the service that
/// shares its image (else of the first that waits for it).
fn release_from_one_off(app: &mut App, raw: &Map<String, Value>, f: &mut Findings) {
    let waited: Vec<(String, String)> = raw
        .iter()
        .flat_map(|(waiter, svc)| {
            svc.get("depends_on")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(_, c)| {
                    c.get("condition").and_then(Value::as_str)
                        == Some("service_completed_successfully")
                })
                .map(move |(job, _)| (dep_name(job), dep_name(waiter)))
        })
        .collect();
    for (job, waiter) in &waited {
        let Some(one_off) = app.services.get(job) else {
            continue;
        };
        let at = format!("services.{job}");
        if app.release.is_some() {
            f.add(at, Warning, format!("`{job}` is a second one-off service run before others start; only one release command is kept, so it stays a service"));
            continue;
        }
        if one_off.command.is_empty() {
            f.add(at, Warning, format!("`{job}` runs its image's default command once; app.yaml's release command needs the command written out, so it stays a service"));
            continue;
        }
        let same_image = |s: &Service| {
            (s.image.is_some() && s.image == one_off.image)
                || s.build
                    .as_ref()
                    .zip(one_off.build.as_ref())
                    .is_some_and(|(a, b)| a.context == b.context)
        };
        let service = app
            .services
            .iter()
            .find(|(n, s)| *n != job && same_image(s))
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| waiter.clone());
        if !app.services.contains_key(&service) {
            continue;
        }
        let command = one_off.command.clone();
        let own = &app.services[&service].env;
        let different_env = one_off.env.iter().any(|(k, v)| own.get(k) != Some(v));
        app.services.shift_remove(job);
        for s in app.services.values_mut() {
            s.depends_on.retain(|d| d != job);
            s.connects_to.retain(|c| &c.to != job);
        }
        f.add(
            at,
            Info,
            format!(
                "`{job}` runs once before `{waiter}` starts: imported as the release command (`{}`), run with `{service}`'s image, settings and secrets once per release before traffic moves{}",
                command.join(" "),
                if different_env { "; its own environment differed from that service's and was not kept" } else { "" }
            ),
        );
        app.release = Some(ReleaseCommand {
            service,
            command,
            timeout: None,
        });
    }
}

/// Two compose names may sanitise to the same app name (`a_b`, `a-b`).
fn name_is_free(app: &App, svc_name: &str) -> Result<(), String> {
    let name = dep_name(svc_name);
    if app.dependencies.contains_key(&name) || app.services.contains_key(&name) {
        return Err(format!(
            "`{svc_name}` becomes `{name}`, a name another service already has"
        ));
    }
    Ok(())
}

/// Compose's project-name rules, in its order: `COMPOSE_PROJECT_NAME`
/// (environment or `.env`), the top-level `name:`, then the folder the file
/// is in (an upload has none: its profile's name stands in). Returns the
/// name, made DNS-safe, and what gave it unless the file's own `name:` did.
fn project_name(
    root: &Map<String, Value>,
    file: &str,
    opts: &ComposeOptions,
) -> (String, Option<&'static str>) {
    let usable = |n: &str| {
        n.chars()
            .any(|c| c.is_ascii_alphanumeric())
            .then(|| sanitize_name(n))
    };
    if let Some(n) = opts.env.get("COMPOSE_PROJECT_NAME").and_then(|n| usable(n)) {
        return (n, Some("COMPOSE_PROJECT_NAME"));
    }
    if let Some(n) = root.get("name").and_then(Value::as_str).and_then(usable) {
        return (n, None);
    }
    if let Some(n) = opts.default_name.as_deref().and_then(usable) {
        return (n, Some("the profile it was uploaded to"));
    }
    if let Some(n) = folder_name(file).and_then(|n| usable(&n)) {
        return (n, Some("its folder"));
    }
    (
        "app".into(),
        Some("nothing (no name, folder or COMPOSE_PROJECT_NAME)"),
    )
}

/// The name of the folder a compose file is in, resolving `.` and relative
/// paths as Compose does (the file `docker-compose.yml` in the current
/// folder is named after the current folder).
fn folder_name(file: &str) -> Option<String> {
    let dir = Path::new(file).parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let real = dir.canonicalize().ok()?;
    Some(real.file_name()?.to_str()?.to_string())
}

fn note_top_volumes(v: &Value, f: &mut Findings) {
    if let Some(vols) = v.as_object() {
        for (name, def) in vols {
            if let Some(d) = def.as_object() {
                for k in d.keys() {
                    match k.as_str() {
                        "external" => f.add_per_target(
                            format!("volumes.{name}.external"),
                            "external volume: the target must already have it",
                            &[("paas", Warning), ("kubernetes", Warning)],
                            Info,
                        ),
                        "driver" | "driver_opts" => f.add_per_target(
                            format!("volumes.{name}.{k}"),
                            "volume driver options only apply to Docker hosts",
                            &[
                                ("local", Info),
                                ("vm", Info),
                                ("compose", Info),
                                ("swarm", Info),
                            ],
                            Warning,
                        ),
                        "name" | "labels" => f.add(
                            format!("volumes.{name}.{k}"),
                            Info,
                            "volume metadata ignored",
                        ),
                        other => f.add(
                            format!("volumes.{name}.{other}"),
                            Warning,
                            "volume option not understood",
                        ),
                    }
                }
            }
        }
    }
}

fn note_top_secrets(v: &Value, f: &mut Findings) {
    if let Some(secrets) = v.as_object() {
        for (name, def) in secrets {
            let source = def
                .as_object()
                .and_then(|d| d.keys().next().cloned())
                .unwrap_or_default();
            f.add(
                format!("secrets.{name}"),
                Info,
                format!("secret `{name}` imported by name only; its {source} source is not read (provide the value at deploy time)"),
            );
        }
    }
}

/// `KEY=value` lines of an env file or `.env` (comments, blank lines and
/// `export ` skipped, surrounding quotes removed).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn import_dependency(
    svc_name: &str,
    kind: &str,
    image: &str,
    svc: &Map<String, Value>,
    path: &str,
    f: &mut Findings,
) -> Dependency {
    let mut dep = Dependency {
        kind: kind.to_string(),
        version: image_tag(image),
        image: Some(image.to_string()),
        managed: true,
        ..Dependency::default()
    };
    if let Some(env) = svc.get("environment") {
        for (k, _) in env_entries(env) {
            if looks_secret(&k) {
                dep.secrets.push(k);
            }
        }
    }
    if let Some(p) = svc.get("deploy").and_then(|d| d.get("placement")) {
        dep.placement = compose_placement(p, &format!("{path}.deploy.placement"), f);
    }
    let (cpu, mem) = compose_resources(svc);
    dep.cpu = cpu.0.or(cpu.1);
    dep.memory = mem.0.or(mem.1);
    let has_volume = svc
        .get("volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| !v.is_empty());
    if has_volume {
        dep.size = known().get(kind).and_then(|k| k.size);
    } else if known().get(kind).is_some_and(|k| k.class != "cache") {
        f.add(format!("{path}.volumes"), Warning, format!("`{svc_name}` ({kind}) has no volume: its data is lost when the container is replaced; imported as persistent"));
        dep.size = known().get(kind).and_then(|k| k.size);
    }
    f.add(path, Info, format!("`{svc_name}` recognised as a {kind} dependency (image {}); targets may replace it with a managed offering", image_repository(image)));
    dep
}

/// `deploy.placement` as app.yaml's `placement`: constraints as they are
/// (checked like app.yaml's), spread preferences over node labels, and
/// `max_replicas_per_node`. What has no equivalent is reported and left out.
fn compose_placement(v: &Value, at: &str, f: &mut Findings) -> Option<NodePlacement> {
    let mut placement = NodePlacement::default();
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for (i, c) in list("constraints").iter().enumerate() {
        let text = value_text(c);
        match Constraint::parse(&text) {
            Ok(_) => placement.constraints.push(text),
            Err(why) => f.add(
                format!("{at}.constraints[{i}]"),
                Warning,
                format!("{why}; left out"),
            ),
        }
    }
    for (i, p) in list("preferences").iter().enumerate() {
        let spread = p.get("spread").map(value_text).unwrap_or_default();
        match spread.strip_prefix("node.labels.") {
            Some(label) if !label.is_empty() => placement.spread.push(label.to_string()),
            _ => f.add(
                format!("{at}.preferences[{i}]"),
                Warning,
                format!("spread over `{spread}` is not a node label; left out"),
            ),
        }
    }
    placement.max_per_node = v
        .get("max_replicas_per_node")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .map(|n| n as u32);
    if !placement.constraints.is_empty() {
        f.add_per_target(
            at,
            "placement constraints name this cluster's nodes and labels; Kubernetes gets the node-label ones as node affinity",
            &[("swarm", Info), ("kubernetes", Warning)],
            Info,
        );
    }
    (!placement.is_empty()).then_some(placement)
}

/// ((reservation cpu, limit cpu), (reservation memory, limit memory))
type ResourcePair = ((Option<Cpu>, Option<Cpu>), (Option<Size>, Option<Size>));

fn compose_resources(svc: &Map<String, Value>) -> ResourcePair {
    let res = svc.get("deploy").and_then(|d| d.get("resources"));
    let get = |which: &str, key: &str| res.and_then(|r| r.get(which)).and_then(|l| l.get(key));
    let cpu = |v: Option<&Value>| v.and_then(|v| Cpu::parse(&value_text(v)).ok());
    let mem = |v: Option<&Value>| v.and_then(|v| Size::parse(&value_text(v)).ok());
    let cpu_res = cpu(get("reservations", "cpus"));
    let cpu_lim = cpu(get("limits", "cpus")).or_else(|| cpu(svc.get("cpus")));
    let mem_res = mem(get("reservations", "memory")).or_else(|| mem(svc.get("mem_reservation")));
    let mem_lim = mem(get("limits", "memory")).or_else(|| mem(svc.get("mem_limit")));
    ((cpu_res, cpu_lim), (mem_res, mem_lim))
}

/// Ports that usually speak HTTP; anything else imported as plain TCP.
fn guess_protocol(port: u16) -> Protocol {
    match port {
        80 | 443 | 3000 | 3001 | 4000 | 5000 | 5173 | 8000 | 8001 | 8002 | 8080 | 8081 | 8443
        | 8888 | 9000 => Protocol::Http,
        _ => Protocol::Tcp,
    }
}

fn parse_port(v: &Value, path: &str, f: &mut Findings) -> Result<Vec<Port>, String> {
    match v {
        Value::Object(m) => {
            let target = m
                .get("target")
                .and_then(|t| value_text(t).parse::<u16>().ok())
                .ok_or_else(|| "long-syntax port needs a numeric `target`".to_string())?;
            let published = m
                .get("published")
                .and_then(|p| value_text(p).split('-').next()?.parse::<u16>().ok());
            let udp = m.get("protocol").and_then(Value::as_str) == Some("udp");
            if m.get("host_ip").is_some() {
                f.add(
                    format!("{path}.host_ip"),
                    Info,
                    "host_ip binding only applies on Docker hosts",
                );
            }
            let protocol = if udp {
                Protocol::Udp
            } else {
                guess_protocol(target)
            };
            Ok(vec![Port {
                port: target,
                protocol,
                public: published.is_some(),
                published: published.filter(|p| *p != target),
            }])
        }
        Value::Number(n) => {
            let p = n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or("port out of range")?;
            Ok(vec![Port {
                port: p,
                protocol: guess_protocol(p),
                public: false,
                published: None,
            }])
        }
        Value::String(s) => {
            let (spec, proto) = match s.rsplit_once('/') {
                Some((a, p)) => (a, p),
                None => (s.as_str(), "tcp"),
            };
            let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
            let container = parts[0];
            let host = parts.get(1).copied();
            if parts.len() == 3 {
                f.add(path, Info, "host IP binding only applies on Docker hosts");
            }
            let range = |r: &str| -> Result<(u16, u16), String> {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                let a: u16 = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a port mapping"))?;
                let b: u16 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a port mapping"))?;
                if b < a {
                    return Err(format!("port range `{r}` is reversed"));
                }
                Ok((a, b))
            };
            let (c0, c1) = range(container)?;
            let host_start = match host {
                Some(h) if !h.is_empty() => Some(range(h)?.0),
                _ => None,
            };
            if c1 - c0 > 100 {
                return Err(format!("port range `{container}` is wider than 100 ports"));
            }
            Ok((c0..=c1)
                .enumerate()
                .map(|(i, p)| {
                    let published = host_start.map(|h| h + i as u16);
                    Port {
                        port: p,
                        protocol: if proto == "udp" {
                            Protocol::Udp
                        } else {
                            guess_protocol(p)
                        },
                        public: host.is_some(),
                        published: published.filter(|h| *h != p),
                    }
                })
                .collect())
        }
        _ => Err("a port is a number, a \"host:container\" string or a mapping".into()),
    }
}

fn parse_health(v: &Value, path: &str, ports: &[Port], f: &mut Findings) -> Option<HealthCheck> {
    let m = v.as_object()?;
    if m.get("disable").and_then(Value::as_bool) == Some(true) {
        f.add(path, Info, "healthcheck disabled in compose; none imported");
        return None;
    }
    let test = m.get("test")?;
    let words: Vec<String> = match test {
        Value::String(s) => vec!["CMD-SHELL".into(), s.clone()],
        Value::Array(a) => a.iter().map(value_text).collect(),
        _ => return None,
    };
    if words.first().map(String::as_str) == Some("NONE") {
        return None;
    }
    let cmd: Vec<String> = match words.first().map(String::as_str) {
        Some("CMD") => words[1..].to_vec(),
        Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), words[1..].join(" ")],
        _ => words.clone(),
    };
    let dur = |k: &str| m.get(k).and_then(|d| Duration::parse(&value_text(d)).ok());
    let mut h = HealthCheck {
        interval: dur("interval"),
        timeout: dur("timeout"),
        start_period: dur("start_period"),
        retries: m.get("retries").and_then(Value::as_u64).map(|r| r as u32),
        ..HealthCheck::default()
    };
    // curl/wget against localhost is an HTTP check every target can run natively.
    let joined = cmd.join(" ");
    let re = regex::Regex::new(r"(?:curl|wget)[^\n]*?https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/[^\s'|&;]*)?").expect("valid regex");
    if let Some(c) = re.captures(&joined) {
        h.http = Some(c.get(2).map_or("/".into(), |p| p.as_str().to_string()));
        h.port = c
            .get(1)
            .and_then(|p| p.as_str().parse().ok())
            .filter(|p| ports.first().is_none_or(|f| f.port != *p));
    } else {
        h.command = cmd;
        f.add_per_target(path, "command health check kept as is; PaaS targets that only probe HTTP/TCP will not run it", &[("local", Info), ("vm", Info), ("compose", Info), ("swarm", Info), ("kubernetes", Info)], Warning);
    }
    Some(h)
}

fn import_service(
    svc_name: &str,
    svc: &Map<String, Value>,
    root: &Map<String, Value>,
    path: &str,
    opts: &ComposeOptions,
    f: &mut Findings,
    env_seen: &mut Vec<(String, String)>,
) -> Result<Service, (String, String)> {
    let mut s = Service {
        image: svc
            .get("image")
            .filter(|v| !v.is_null() && !v.is_object() && !v.is_array())
            .map(value_text),
        ..Service::default()
    };
    let mut secret_names: Vec<String> = Vec::new();
    let mut env: IndexMap<String, String> = IndexMap::new();
    let take_env = |entries: Vec<(String, Option<String>)>,
                    at: &str,
                    f: &mut Findings,
                    env: &mut IndexMap<String, String>,
                    secrets: &mut Vec<String>,
                    seen: &mut Vec<(String, String)>| {
        for (k, v) in entries {
            // Every value, secret or not, may name a peer (a DSN); only the
            // peer's name is kept from it.
            if let Some(v) = &v {
                seen.push((k.clone(), v.clone()));
            }
            if looks_secret(&k) {
                if v.as_deref()
                    .is_some_and(|v| !v.is_empty() && !v.starts_with("${"))
                {
                    f.add(format!("{at}.{k}"), Warning, format!("`{k}` looks like a secret and had a literal value; imported as a secret reference and the value was dropped"));
                }
                if !secrets.contains(&k) {
                    secrets.push(k);
                }
            } else if let Some(v) = v {
                env.insert(k, v);
            } else {
                f.add(format!("{at}.{k}"), Info, format!("`{k}` is passed through from the host environment; imported with an empty value"));
                env.insert(k, String::new());
            }
        }
    };

    for (key, value) in svc {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "image" => {}
            "build" => {
                s.build = Some(match value {
                    Value::String(ctx) => Build {
                        context: ctx.clone(),
                        ..Build::default()
                    },
                    Value::Object(b) => {
                        for k in b.keys() {
                            if !matches!(k.as_str(), "context" | "dockerfile" | "args") {
                                f.add(format!("{at}.{k}"), Info, format!("build option `{k}` is not carried over; targets build with context, dockerfile and args"));
                            }
                        }
                        Build {
                            context: b
                                .get("context")
                                .map(value_text)
                                .unwrap_or_else(|| ".".into()),
                            dockerfile: b.get("dockerfile").map(value_text),
                            args: env_entries(b.get("args").unwrap_or(&Value::Null))
                                .into_iter()
                                .map(|(k, v)| (k, v.unwrap_or_default()))
                                .collect(),
                        }
                    }
                    _ => return Err((at, "build is a path or a mapping".into())),
                });
            }
            "command" => s.command.extend(as_str_list(value)),
            "entrypoint" => {
                let mut ep = as_str_list(value);
                ep.append(&mut s.command);
                s.command = ep;
                f.add(
                    at,
                    Warning,
                    "entrypoint merged into command; targets run it as the container command",
                );
            }
            "ports" => {
                for (i, p) in value.as_array().into_iter().flatten().enumerate() {
                    let pat = format!("{at}[{i}]");
                    for port in parse_port(p, &pat, f).map_err(|m| (pat.clone(), m))? {
                        if !s.ports.iter().any(|x| x.port == port.port) {
                            s.ports.push(port);
                        }
                    }
                }
            }
            "expose" => {
                for p in value.as_array().into_iter().flatten() {
                    if let Ok(n) = value_text(p).split('/').next().unwrap_or("").parse::<u16>()
                        && !s.ports.iter().any(|x| x.port == n)
                    {
                        s.ports.push(Port {
                            port: n,
                            protocol: guess_protocol(n),
                            public: false,
                            published: None,
                        });
                    }
                }
            }
            "environment" => take_env(
                env_entries(value),
                &at,
                f,
                &mut env,
                &mut secret_names,
                env_seen,
            ),
            "env_file" => {
                let files: Vec<(String, bool)> = match value {
                    Value::String(p) => vec![(p.clone(), true)],
                    Value::Array(a) => a
                        .iter()
                        .map(|e| match e {
                            Value::Object(m) => (
                                m.get("path").map(value_text).unwrap_or_default(),
                                m.get("required").and_then(Value::as_bool).unwrap_or(true),
                            ),
                            other => (value_text(other), true),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for (p, required) in files {
                    let read = match &opts.sealed_files {
                        Some(sent) => match sent.get(p.trim_start_matches("./")) {
                            Some(text) => Ok(text.clone()),
                            None if required => {
                                return Err((
                                    at.clone(),
                                    format!(
                                        "env_file `{p}` was not sent with the upload: an uploaded compose file may name only files uploaded with it (the server reads none of its own)"
                                    ),
                                ));
                            }
                            None => Err("not sent with the upload".to_string()),
                        },
                        None => {
                            let full = opts
                                .base_dir
                                .as_ref()
                                .map_or_else(|| Path::new(&p).to_path_buf(), |b| b.join(&p));
                            files::read_text(&full, files::MAX_ENV_FILE)
                        }
                    };
                    match read {
                        Ok(text) => take_env(
                            parse_env_file(&text)
                                .into_iter()
                                .map(|(k, v)| (k, Some(v)))
                                .collect(),
                            &at,
                            f,
                            &mut env,
                            &mut secret_names,
                            env_seen,
                        ),
                        Err(_) if !required => f.add(
                            at.clone(),
                            Info,
                            format!("optional env_file `{p}` not found"),
                        ),
                        Err(e) => f.add(
                            at.clone(),
                            Warning,
                            format!(
                                "env_file `{p}` could not be read ({e}); its variables are missing"
                            ),
                        ),
                    }
                }
            }
            "healthcheck" => {}
            "deploy" => import_deploy(value, &at, &mut s, f),
            "cpus" | "mem_limit" | "mem_reservation" => {}
            "depends_on" => match value {
                Value::Array(a) => {
                    s.depends_on = a
                        .iter()
                        .map(value_text)
                        .map(|d| sanitize_name(&d))
                        .collect()
                }
                Value::Object(m) => {
                    for (d, cond) in m {
                        s.depends_on.push(sanitize_name(d));
                        if let Some(c) = cond.get("condition").and_then(Value::as_str)
                            && c != "service_started"
                        {
                            f.add(format!("{at}.{d}.condition"), Info, format!("condition `{c}` becomes start ordering plus health gating on targets that support it"));
                        }
                    }
                }
                _ => {}
            },
            "volumes" => import_volumes(value, &at, svc_name, root, &mut s, f),
            "tmpfs" => f.add(
                at,
                Info,
                "tmpfs mounts become writable scratch space (emptyDir) where supported",
            ),
            "secrets" => {
                for sec in value.as_array().into_iter().flatten() {
                    let name = match sec {
                        Value::Object(m) => m.get("source").map(value_text).unwrap_or_default(),
                        other => value_text(other),
                    };
                    if !name.is_empty() && !secret_names.contains(&name) {
                        secret_names.push(name);
                    }
                }
            }
            "privileged" => {
                if value.as_bool() == Some(true) {
                    s.traits.privileged = true;
                    f.add_per_target(
                        at,
                        "privileged containers only run on hosts you control",
                        &[
                            ("local", Warning),
                            ("vm", Warning),
                            ("compose", Warning),
                            ("swarm", Err_),
                            ("kubernetes", Warning),
                        ],
                        Err_,
                    );
                }
            }
            "gpus" => {
                s.traits.gpu = true;
            }
            "network_mode" => {
                let mode = value_text(value);
                let sev = if mode == "host" { Err_ } else { Warning };
                f.add_per_target(
                    at,
                    format!("network_mode `{mode}` cannot be expressed off a single Docker host"),
                    &[("local", Info), ("vm", Info), ("compose", Info)],
                    sev,
                );
            }
            "cap_add" | "devices" | "sysctls" | "ulimits" | "security_opt" | "pid" | "ipc"
            | "userns_mode" | "cgroup_parent" => {
                f.add_per_target(
                    at,
                    format!("`{key}` needs host-level control; dropped on managed platforms"),
                    &[
                        ("local", Info),
                        ("vm", Info),
                        ("compose", Info),
                        ("swarm", Warning),
                        ("kubernetes", Warning),
                    ],
                    Err_,
                );
            }
            "restart" => f.add(
                at,
                Info,
                "restart policy is set per target (always restart, with health-gated deploys)",
            ),
            "container_name" => f.add_per_target(
                at,
                "fixed container names prevent running two versions side by side; dropped",
                &[("paas", Info)],
                Warning,
            ),
            "init" => match value.as_bool() {
                Some(b) => s.init = Some(b),
                None => f.add(
                    at,
                    Warning,
                    "`init` is not true or false; the default (an init process) is kept",
                ),
            },
            "stop_grace_period" => match Duration::parse(&value_text(value)) {
                Ok(d) => s.stop_grace_period = Some(d),
                Err(e) => f.add(
                    at,
                    Warning,
                    format!("{e}; the default stop timeout is kept"),
                ),
            },
            "labels" | "logging" | "hostname" | "domainname" | "tty" | "stdin_open"
            | "stop_signal" | "platform" | "pull_policy" | "working_dir" | "user" | "shm_size"
            | "read_only" | "annotations" | "attach" | "develop" | "mac_address"
            | "oom_score_adj" | "cap_drop" | "group_add" | "scale" => {
                if key == "scale" {
                    s.replicas = value.as_u64().map(|r| r as u32);
                } else {
                    f.add(at, Info, format!("`{key}` is not part of the app description; targets use their own defaults"));
                }
            }
            "networks" => f.add(at, Info, "service networks are derived from depends_on"),
            "extra_hosts" | "dns" | "dns_search" | "dns_opt" | "links" | "external_links" => f
                .add_per_target(
                    at,
                    format!("`{key}` is Docker-host networking; use service names instead"),
                    &[("local", Info), ("vm", Info), ("compose", Info)],
                    Warning,
                ),
            "extends" => f.add(
                at,
                Warning,
                "`extends` is not resolved; inline the extended service",
            ),
            "configs" => f.add(
                at,
                Warning,
                "configs are not imported; bake them into the image or a volume",
            ),
            "profiles" => {}
            k if k.starts_with("x-") => f.add(at, Info, "extension field ignored"),
            k => f.add(
                at,
                Warning,
                format!("service key `{k}` is not understood and was not imported"),
            ),
        }
    }
    if let Some(h) = svc.get("healthcheck") {
        s.health = parse_health(h, &format!("{path}.healthcheck"), &s.ports, f);
    }
    let ((cpu_res, cpu_lim), (mem_res, mem_lim)) = compose_resources(svc);
    if cpu_res.is_some() || cpu_lim.is_some() || mem_res.is_some() || mem_lim.is_some() {
        s.resources = Some(Resources {
            cpu: cpu_res.or(cpu_lim),
            memory: mem_res.or(mem_lim),
            cpu_limit: cpu_lim,
            memory_limit: mem_lim,
        });
    }
    s.env = env;
    s.secrets = secret_names;
    if s.image.is_none() && s.build.is_none() {
        return Err((
            path.to_string(),
            format!("service `{svc_name}` has neither `image` nor `build`"),
        ));
    }
    if s.ports.iter().any(|p| p.public) && s.ports.iter().all(|p| p.protocol == Protocol::Tcp) {
        f.add(format!("{path}.ports"), Info, "published TCP port imported as raw TCP; change protocol to http in app.yaml if it serves HTTP");
    }
    Ok(s)
}

fn import_deploy(v: &Value, at: &str, s: &mut Service, f: &mut Findings) {
    let Some(d) = v.as_object() else { return };
    for (k, val) in d {
        let p = format!("{at}.{k}");
        match k.as_str() {
            "replicas" => s.replicas = val.as_u64().map(|r| r as u32),
            "resources" => {
                if let Some(devs) = val
                    .get("reservations")
                    .and_then(|r| r.get("devices"))
                    .and_then(Value::as_array)
                    && devs.iter().any(|d| {
                        d.get("capabilities")
                            .and_then(Value::as_array)
                            .is_some_and(|c| c.iter().any(|x| x == "gpu"))
                    })
                {
                    s.traits.gpu = true;
                }
            }
            "mode" => {
                if val.as_str() == Some("global") {
                    f.add_per_target(p, "global mode (one per node) maps to a DaemonSet on Kubernetes and is dropped elsewhere", &[("swarm", Info), ("kubernetes", Info)], Warning);
                }
            }
            "update_config" | "rollback_config" => f.add(
                p,
                Info,
                "update behaviour comes from the profile's deploy strategy",
            ),
            "restart_policy" => f.add(p, Info, "restart policy is set per target"),
            "placement" => s.placement = compose_placement(val, &p, f),
            "labels" | "endpoint_mode" => f.add(p, Info, format!("deploy.{k} ignored")),
            other => f.add(p, Warning, format!("deploy.{other} is not understood")),
        }
    }
}

fn import_volumes(
    v: &Value,
    at: &str,
    svc_name: &str,
    root: &Map<String, Value>,
    s: &mut Service,
    f: &mut Findings,
) {
    let named: BTreeSet<&String> = root
        .get("volumes")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    for (i, vol) in v.as_array().into_iter().flatten().enumerate() {
        let p = format!("{at}[{i}]");
        let (kind, source, target) = match vol {
            Value::String(spec) => {
                let parts: Vec<&str> = spec.split(':').collect();
                match parts.as_slice() {
                    [t] => ("volume", String::new(), t.to_string()),
                    [src, t, ..] => {
                        let bind =
                            src.starts_with('.') || src.starts_with('/') || src.starts_with('~');
                        (
                            if bind { "bind" } else { "volume" },
                            src.to_string(),
                            t.to_string(),
                        )
                    }
                    [] => continue,
                }
            }
            Value::Object(m) => (
                match m.get("type").and_then(Value::as_str) {
                    Some("bind") => "bind",
                    Some("tmpfs") => "tmpfs",
                    _ => "volume",
                },
                m.get("source").map(value_text).unwrap_or_default(),
                m.get("target").map(value_text).unwrap_or_default(),
            ),
            _ => continue,
        };
        if source.ends_with("docker.sock") {
            s.traits.spawns_containers = true;
            f.add_per_target(p, format!("`{svc_name}` mounts the Docker socket: it starts containers itself (spawns_containers). This gives it root on the host"), &[("local", Warning), ("vm", Warning), ("compose", Warning), ("swarm", Warning), ("kubernetes", Err_)], Err_);
            continue;
        }
        let name = if source.is_empty() {
            format!("{}-data", sanitize_name(svc_name))
        } else {
            sanitize_name(source.trim_start_matches("./"))
        };
        match kind {
            "tmpfs" => s.volumes.push(Volume {
                name,
                path: target,
                size: None,
                persistent: false,
                host_path: None,
            }),
            "bind" => {
                f.add_per_target(p, format!("bind mount `{source}` becomes a persistent volume; copy its contents in on targets without host paths"), &[("local", Info), ("vm", Info), ("compose", Info)], Warning);
                s.volumes.push(Volume {
                    name,
                    path: target,
                    size: None,
                    persistent: true,
                    host_path: Some(source),
                });
            }
            _ => {
                if !source.is_empty() && !named.contains(&source) {
                    f.add(
                        p,
                        Warning,
                        format!("volume `{source}` is not declared under top-level volumes"),
                    );
                }
                s.volumes.push(Volume {
                    name,
                    path: target,
                    size: None,
                    persistent: true,
                    host_path: None,
                });
            }
        }
    }
}
