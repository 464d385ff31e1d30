//! Reading `app.yaml`: YAML and type errors from the parser, then the checks
//! that need the whole document (references, cycles, limits below requests).
//! Every error names file, line and column.

use super::app::{API_VERSION, App, Connection};
use super::diagnostic::{SpanIndex, SpecError};
use regex::Regex;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

/// Largest description we accept; real ones are a few KiB.
pub const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;
/// Most services and dependencies one app may have. Real apps have tens;
/// the bound keeps a plan (which prices every target at every user level)
/// from running for minutes on a hostile upload.
pub const MAX_COMPONENTS: usize = 2_000;

static DNS_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$").expect("valid regex"));
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]*$").expect("valid regex"));

/// YAML parsing options shared by every reader: duplicate keys are errors,
/// merge keys (`<<: *anchor`) are honoured, and the budget caps alias
/// expansion so a "billion laughs" file fails fast instead of eating memory.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::Options::default()
}

/// Turns a parser error into a located diagnostic, adding a did-you-mean for
/// unknown keys.
pub fn from_yaml_error(file: &str, src: &str, err: &serde_saphyr::Error) -> SpecError {
    let raw = err.without_snippet().to_string();
    let (offset, len) = err
        .location()
        .and_then(|l| {
            let s = l.span();
            Some((
                s.byte_offset()? as usize,
                s.byte_len().unwrap_or(1) as usize,
            ))
        })
        .unwrap_or((0, 0));
    // Some parser errors carry no position (or 1:1): find the spot.
    let (offset, len) = if offset == 0 {
        unplaced_error_offset(&raw, src).map_or((offset, len), |o| (o, 1))
    } else {
        (offset, len)
    };
    let found = src.get(offset..offset + len).unwrap_or("").trim();
    let message = clean_message(&raw, found);
    let mut e = SpecError::at(file, src, offset, len.max(1), message.clone());
    if let Some(help) = did_you_mean(&message) {
        e = e.with_help(help);
    }
    e
}

/// The parser's nesting limit (serde-saphyr's default budget).
const YAML_MAX_DEPTH: usize = 64;

/// Where an error the parser could not place most likely is: the first
/// control character the YAML spec forbids (NUL and friends), or the point
/// where flow collections nest past the depth limit.
fn unplaced_error_offset(raw: &str, src: &str) -> Option<usize> {
    if raw.contains("recursion limit") || raw.contains("Depth") {
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        for (i, c) in src.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > YAML_MAX_DEPTH {
                        return Some(i);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    src.char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        .map(|(i, _)| i)
}

/// Rewrites the parser's wording for people: drops its own position tail and
/// hints about parser options, and names the offending value.
fn clean_message(raw: &str, found: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let re = Regex::new(r"\s*(at )?line \d+,? col(umn)? \d+:?\s*").expect("valid regex");
    let mut s = re.replace_all(first, " ").trim().to_string();
    s = s
        .trim_start_matches("error: ")
        .trim_end_matches(':')
        .to_string();
    if let Some(i) = s.find(", set DuplicateKeyPolicy") {
        s.truncate(i);
    }
    if s.starts_with("budget breached: Depth") || s.contains("recursion limit exceeded") {
        return format!(
            "nested deeper than {YAML_MAX_DEPTH} levels of mappings and lists; refusing to read it"
        );
    }
    if s.starts_with("budget breached") {
        return "the document expands to too many nodes (alias or anchor bomb?); refusing to read it".into();
    }
    let numeric = Regex::new(r"^invalid (u8|u16|u32|u64|i32|i64|usize)$").expect("valid regex");
    if numeric.is_match(&s) {
        return format!("expected a whole number, found `{found}`");
    }
    if (s.starts_with("invalid") || s.starts_with("expected"))
        && !found.is_empty()
        && !s.contains('`')
    {
        s = format!("{s}, found `{found}`");
    }
    s
}

/// For "unknown field `x`, expected one of a, b" suggest the closest name.
pub fn did_you_mean(message: &str) -> Option<String> {
    let re = Regex::new(r"unknown (field|variant) `([^`]+)`").expect("valid regex");
    let unknown = re.captures(message)?.get(2)?.as_str().to_string();
    let list = message.split("expected one of").nth(1).unwrap_or("");
    let expected: Vec<String> = list
        .split(',')
        .map(|x| x.trim().trim_matches('`').trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    suggest(&unknown, expected.iter().map(String::as_str))
        .map(|s| format!("did you mean `{s}`?"))
        .or_else(|| {
            (!expected.is_empty()).then(|| format!("expected one of: {}", expected.join(", ")))
        })
}

/// The closest candidate by edit distance, if close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// Parses and checks an app description. Nothing is returned unless the whole
/// document is valid.
pub fn parse_app(file: &str, src: &str) -> Result<App, Box<SpecError>> {
    if src.len() > MAX_SPEC_BYTES {
        return Err(Box::new(SpecError::at(
            file,
            "",
            0,
            0,
            format!("file is {} bytes; the limit is {MAX_SPEC_BYTES}", src.len()),
        )));
    }
    let app: App = serde_saphyr::from_str_with_options(src, yaml_options())
        .map_err(|e| Box::new(from_yaml_error(file, src, &e)))?;
    check_app(&app, file, src)?;
    Ok(app)
}

/// Semantic checks that types alone cannot express.
pub fn check_app(app: &App, file: &str, src: &str) -> Result<(), Box<SpecError>> {
    let idx = SpanIndex::build(src);
    let err = |path: &str, msg: String| Box::new(idx.error(file, src, path, msg));

    if app.api_version != API_VERSION {
        return Err(err(
            "apiVersion",
            format!(
                "apiVersion is `{}`; this tool reads `{API_VERSION}`",
                app.api_version
            ),
        ));
    }
    if app.kind != "App" {
        return Err(err(
            "kind",
            format!("kind is `{}`; expected `App`", app.kind),
        ));
    }
    if !DNS_NAME.is_match(&app.name) {
        return Err(err(
            "name",
            format!(
                "name `{}` must be lowercase letters, digits and `-` (at most 63 characters)",
                app.name
            ),
        ));
    }
    if app.services.is_empty() {
        return Err(err("services", "an app needs at least one service".into()));
    }
    if let Some(r) = &app.release {
        if !app.services.contains_key(&r.service) {
            return Err(err(
                "release.service",
                format!(
                    "the release command runs with service `{}`, which the app does not have",
                    r.service
                ),
            ));
        }
        if r.command.is_empty() {
            return Err(err(
                "release.command",
                "the release command is empty; give the program and its arguments".into(),
            ));
        }
    }
    let components = app.services.len() + app.dependencies.len();
    if components > MAX_COMPONENTS {
        return Err(err(
            "services",
            format!(
                "the app has {components} services and dependencies; the limit is {MAX_COMPONENTS}"
            ),
        ));
    }

    let mut names: HashMap<&str, &str> = HashMap::new();
    for name in app.services.keys() {
        names.insert(name, "services");
    }
    for name in app.dependencies.keys() {
        if names.contains_key(name.as_str()) {
            return Err(err(
                &format!("dependencies.{name}"),
                format!("`{name}` is both a service and a dependency; names must be unique"),
            ));
        }
        names.insert(name, "dependencies");
    }

    for (name, svc) in &app.services {
        let at = |k: &str| format!("services.{name}{k}");
        if !DNS_NAME.is_match(name) {
            return Err(err(
                &at(""),
                format!("service name `{name}` must be lowercase letters, digits and `-`"),
            ));
        }
        if svc.image.is_none() && svc.build.is_none() {
            return Err(err(
                &at(""),
                format!("service `{name}` needs `image` or `build`"),
            ));
        }
        let mut seen_ports = BTreeSet::new();
        for (i, p) in svc.ports.iter().enumerate() {
            if p.port == 0 {
                return Err(err(
                    &at(&format!(".ports[{i}].port")),
                    "port 0 is not a port".into(),
                ));
            }
            if !seen_ports.insert(p.port) {
                return Err(err(
                    &at(&format!(".ports[{i}].port")),
                    format!("port {} is listed twice in service `{name}`", p.port),
                ));
            }
        }
        for dep in &svc.depends_on {
            if !names.contains_key(dep.as_str()) {
                let hint = suggest(dep, names.keys().copied());
                let i = svc.depends_on.iter().position(|d| d == dep).unwrap_or(0);
                let mut e = err(
                    &at(&format!(".depends_on[{i}]")),
                    format!(
                        "`{name}` depends on `{dep}`, which is neither a service nor a dependency"
                    ),
                );
                if let Some(h) = hint {
                    e.help = Some(format!("did you mean `{h}`?"));
                }
                return Err(e);
            }
            if dep == name {
                return Err(err(
                    &at(".depends_on"),
                    format!("`{name}` depends on itself"),
                ));
            }
        }
        check_calls(name, &svc.connects_to, &names, &at(""))
            .map_err(|(path, msg, help)| call_error(err(&path, msg), help))?;
        if let Some(r) = &svc.resources {
            if let (Some(req), Some(lim)) = (r.cpu, r.cpu_limit)
                && lim < req
            {
                return Err(err(
                    &at(".resources.cpu_limit"),
                    format!("cpu_limit {lim} is below the cpu request {req}"),
                ));
            }
            if let (Some(req), Some(lim)) = (r.memory, r.memory_limit)
                && lim < req
            {
                return Err(err(
                    &at(".resources.memory_limit"),
                    format!("memory_limit {lim} is below the memory request {req}"),
                ));
            }
        }
        if let Some(a) = &svc.autoscaling {
            if a.min > a.max {
                return Err(err(
                    &at(".autoscaling"),
                    format!("autoscaling min {} is above max {}", a.min, a.max),
                ));
            }
            if a.max == 0 {
                return Err(err(
                    &at(".autoscaling.max"),
                    "autoscaling max must be at least 1".into(),
                ));
            }
        }
        if let Some(h) = &svc.health {
            let kinds = [
                h.http.is_some(),
                h.tcp.is_some(),
                h.grpc.is_some(),
                !h.command.is_empty(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(err(
                    &at(".health"),
                    "a health check needs exactly one of `http`, `tcp`, `grpc` or `command`".into(),
                ));
            }
            if let Some(path) = &h.http
                && !path.starts_with('/')
            {
                return Err(err(
                    &at(".health.http"),
                    format!("health path `{path}` must start with `/`"),
                ));
            }
            if let (Some(i), Some(t)) = (h.interval, h.timeout)
                && t > i
                && i.0 > 0
            {
                return Err(err(
                    &at(".health.timeout"),
                    format!("health timeout {t} is longer than its interval {i}"),
                ));
            }
        }
        let mut vol_names = BTreeSet::new();
        for (i, v) in svc.volumes.iter().enumerate() {
            if !v.path.starts_with('/') {
                return Err(err(
                    &at(&format!(".volumes[{i}].path")),
                    format!("volume mount path `{}` must be absolute", v.path),
                ));
            }
            if !vol_names.insert(&v.name) {
                return Err(err(
                    &at(&format!(".volumes[{i}].name")),
                    format!("volume `{}` is mounted twice in `{name}`", v.name),
                ));
            }
        }
        for (i, s) in svc.secrets.iter().enumerate() {
            if !ENV_NAME.is_match(s) {
                return Err(err(
                    &at(&format!(".secrets[{i}]")),
                    format!("secret name `{s}` must be a valid environment variable name"),
                ));
            }
        }
        if let Some(cron) = &svc.traits.cron
            && cron.split_whitespace().count() != 5
        {
            return Err(err(
                &at(".traits.cron"),
                format!("cron schedule `{cron}` needs 5 fields (minute hour day month weekday)"),
            ));
        }
    }

    for (name, dep) in &app.dependencies {
        if !DNS_NAME.is_match(name) {
            return Err(err(
                &format!("dependencies.{name}"),
                format!("dependency name `{name}` must be lowercase letters, digits and `-`"),
            ));
        }
        if dep.kind.trim().is_empty() {
            return Err(err(
                &format!("dependencies.{name}.kind"),
                "kind must not be empty".into(),
            ));
        }
        check_calls(
            name,
            &dep.connects_to,
            &names,
            &format!("dependencies.{name}"),
        )
        .map_err(|(path, msg, help)| call_error(err(&path, msg), help))?;
    }

    let placements = app
        .services
        .iter()
        .map(|(n, s)| (format!("services.{n}"), &s.placement))
        .chain(
            app.dependencies
                .iter()
                .map(|(n, d)| (format!("dependencies.{n}"), &d.placement)),
        );
    for (at, placement) in placements {
        let Some(p) = placement else { continue };
        if let Err((i, why)) = p.parsed() {
            return Err(err(&format!("{at}.placement.constraints[{i}]"), why));
        }
        if p.max_per_node == Some(0) {
            return Err(err(
                &format!("{at}.placement.max_per_node"),
                "max_per_node 0 would place no replica; leave it out for no limit".into(),
            ));
        }
    }

    for (name, s) in &app.sessions {
        let at = format!("sessions.{name}.spawned_by");
        match app.services.get(&s.spawned_by) {
            None => {
                return Err(err(
                    &at,
                    format!(
                        "session workload `{name}` is spawned by `{}`, which is not a service",
                        s.spawned_by
                    ),
                ));
            }
            Some(svc) if !svc.traits.spawns_containers => {
                return Err(Box::new(
                    idx.error(
                        file,
                        src,
                        &at,
                        format!(
                            "`{}` spawns `{name}` but lacks `traits.spawns_containers: true`",
                            s.spawned_by
                        ),
                    )
                    .with_help(format!(
                        "add `traits: {{spawns_containers: true}}` to service `{}`",
                        s.spawned_by
                    )),
                ));
            }
            _ => {}
        }
        if let (Some(per_user), Some(total)) = (s.max_per_user, s.max_total)
            && per_user > total
        {
            return Err(err(
                &format!("sessions.{name}.max_per_user"),
                format!("max_per_user {per_user} exceeds max_total {total}"),
            ));
        }
    }

    if let Some(u) = &app.usage
        && let Some(c) = u.peak_concurrency
        && !(0.0..=1.0).contains(&c)
    {
        return Err(err(
            "usage.peak_concurrency",
            format!("peak_concurrency {c} must be between 0 and 1"),
        ));
    }

    if let Some(cycle) = find_cycle(app) {
        let first = &cycle[0];
        let path = if app.services.contains_key(first) {
            format!("services.{first}.depends_on")
        } else {
            format!("dependencies.{first}")
        };
        return Err(err(
            &path,
            format!("depends_on forms a cycle: {}", cycle.join(" → ")),
        ));
    }
    Ok(())
}

/// A dependency cycle among services, as the chain of names (first repeated last).
pub fn find_cycle(app: &App) -> Option<Vec<String>> {
    fn visit<'a>(
        app: &'a App,
        node: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[pos..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        if let Some(svc) = app.services.get(node) {
            for dep in &svc.depends_on {
                if let Some(c) = visit(app, dep, stack, done) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for name in app.services.keys() {
        if let Some(c) = visit(app, name, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// A problem in `connects_to`: (path, message, help).
type CallProblem = (String, String, Option<String>);

/// `connects_to` names peers of this app, not itself, on real ports.
fn check_calls(
    name: &str,
    calls: &[Connection],
    names: &HashMap<&str, &str>,
    at: &str,
) -> Result<(), CallProblem> {
    for (i, c) in calls.iter().enumerate() {
        let path = format!("{at}.connects_to[{i}]");
        if !names.contains_key(c.to.as_str()) {
            return Err((
                format!("{path}.to"),
                format!(
                    "`{name}` connects to `{}`, which is neither a service nor a dependency",
                    c.to
                ),
                suggest(&c.to, names.keys().copied()).map(|h| format!("did you mean `{h}`?")),
            ));
        }
        if c.to == name {
            return Err((
                format!("{path}.to"),
                format!("`{name}` connects to itself; list only calls to its peers"),
                None,
            ));
        }
        if c.port == Some(0) {
            return Err((format!("{path}.port"), "port 0 is not a port".into(), None));
        }
    }
    Ok(())
}

fn call_error(mut e: Box<SpecError>, help: Option<String>) -> Box<SpecError> {
    e.help = help.or(e.help);
    e
}
