//! Images without a registry. A service with a `build:` context is built
//! once, on the first target engine, under a content-addressed tag; then
//! every image a release needs is shipped to each engine that lacks it (or
//! holds a different build under the same tag) as the engine API's
//! `save` stream fed straight into another engine's `load`, over the
//! connection the deploy already has (SSH for remote hosts). What to build
//! and send is decided first, as data ([`plan`]), and carried out after.
//!
//! A profile with a registry (`profile set P registry …`) builds the same
//! way, then pushes the build once and lets every other target pull it, as
//! Kamal does; a cluster (Kubernetes) always pulls, so there the build
//! runs on this machine's engine and is pushed ([`for_cluster`]).

use crate::deploy::docker_host::client::Host;
use crate::deploy::events::Progress;
use crate::deploy::release::PlanLine;
use crate::deploy::spec::{BuildSpec, ReleaseSpec};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptions, ImportImageOptions, PushImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// One engine's copies of the images a release needs: image → id.
pub type Holding = BTreeMap<String, Option<String>>;

/// `image` goes from engine `from` to each engine in `to` (indices into
/// the engines given to [`plan`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Shipment {
    pub image: String,
    pub id: String,
    pub from: usize,
    pub to: Vec<usize>,
}

/// Where every image comes from: its id, and the transfers that give each
/// target engine that very id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImagePlan {
    pub ids: BTreeMap<String, String>,
    pub shipments: Vec<Shipment>,
}

/// Decides the transfers. `engines[..targets]` are the deploy's targets;
/// an engine after them (this machine's own, when it is not a target) is a
/// source only. The source of an image is the first engine holding it,
/// this machine's first: what the operator built last wins, and a target
/// whose copy of the tag differs receives it. Targets that disagree among
/// themselves with no build here to settle it are an error.
pub fn plan(
    images: &[String],
    engines: &[(String, Holding)],
    targets: usize,
) -> Result<ImagePlan, String> {
    let mut out = ImagePlan::default();
    let order: Vec<usize> = (targets..engines.len()).chain(0..targets).collect();
    for image in images {
        let held = |i: usize| engines[i].1.get(image).cloned().flatten();
        let Some(from) = order.iter().copied().find(|&i| held(i).is_some()) else {
            let names: Vec<&str> = engines.iter().map(|e| e.0.as_str()).collect();
            return Err(format!(
                "image {image} is on none of {}; build it (docker build -t {image} .) or give the service a build: context; nothing was changed",
                names.join(", ")
            ));
        };
        let id = held(from).unwrap_or_default();
        if from < targets {
            let other: Vec<String> = (0..targets).filter_map(held).filter(|x| *x != id).collect();
            if !other.is_empty() {
                return Err(format!(
                    "image {image} differs between hosts ({id}, {}); load the build you mean on this machine and deploy again, or tag each build apart",
                    other.join(", ")
                ));
            }
        }
        let to: Vec<usize> = (0..targets)
            .filter(|&i| held(i).as_deref() != Some(id.as_str()))
            .collect();
        if !to.is_empty() {
            out.shipments.push(Shipment {
                image: image.clone(),
                id: id.clone(),
                from,
                to,
            });
        }
        out.ids.insert(image.clone(), id);
    }
    Ok(out)
}

/// A build context as a tar stream, byte for byte the same for the same
/// files: entries sorted, owners and times zeroed, `.git` and what
/// `.dockerignore` names left out.
pub fn context_tar(dir: &Path) -> Result<Vec<u8>, String> {
    let ignore = Ignore::read(dir);
    let mut files = Vec::new();
    walk(dir, dir, &ignore, &mut files)?;
    files.sort();
    let mut tar = tar::Builder::new(Vec::new());
    for rel in files {
        let path = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, &rel, target)
                .map_err(|e| e.to_string())?;
        } else {
            let data =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            h.set_mode(meta.permissions().mode() & 0o777);
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append_data(&mut h, &rel, data.as_slice())
                .map_err(|e| e.to_string())?;
        }
    }
    tar.into_inner().map_err(|e| e.to_string())
}

fn walk(root: &Path, dir: &Path, ignore: &Ignore, out: &mut Vec<String>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        if rel == ".git" || ignore.skips(&rel) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            walk(root, &path, ignore, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// `.dockerignore` patterns (`*`, `?`, `**`, leading `!` re-includes),
/// matched against the path and each of its parent folders.
struct Ignore(Vec<(regex::Regex, bool)>);

impl Ignore {
    fn read(dir: &Path) -> Ignore {
        let text = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
        Ignore(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| {
                    let (keep, pat) = match l.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, l),
                    };
                    let pat = pat.trim_start_matches("./").trim_matches('/');
                    regex::Regex::new(&glob_regex(pat)).ok().map(|r| (r, keep))
                })
                .collect(),
        )
    }

    fn skips(&self, rel: &str) -> bool {
        let mut skipped = false;
        for (re, keep) in &self.0 {
            let hit =
                re.is_match(rel) || rel.match_indices('/').any(|(i, _)| re.is_match(&rel[..i]));
            if hit {
                skipped = !keep;
            }
        }
        skipped
    }
}

fn glob_regex(pat: &str) -> String {
    let mut re = String::from("^");
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                re.push_str(".*");
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

/// The tag of a build: the digest of its context, Dockerfile and
/// arguments, after the git revision of the context when it has one.
pub fn build_tag(repo: &str, b: &BuildSpec, context: &[u8], git: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(context);
    h.update(b.dockerfile.as_deref().unwrap_or("Dockerfile"));
    for (k, v) in &b.args {
        h.update(format!("\0{k}={v}"));
    }
    let digest: String = h.finalize()[..6]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    match git {
        Some(rev) => format!("{repo}:{rev}-{digest}"),
        None => format!("{repo}:{digest}"),
    }
}

fn git_revision(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
}

/// A build decided: the service, its tag and its context.
pub struct Build {
    pub service: String,
    pub tag: String,
    pub spec: BuildSpec,
    context: Vec<u8>,
}

/// Reads each build context and names its image; the spec's services get
/// their tags, under `registry` when the profile has one (the image's last
/// path segment after it: `api` of `ghcr.io/old/api` goes to
/// `REGISTRY/api:…`). Nothing is sent anywhere yet.
pub fn decide_builds(spec: &mut ReleaseSpec, registry: Option<&str>) -> Result<Vec<Build>, String> {
    let mut out = Vec::new();
    for s in &mut spec.services {
        let Some(b) = s.build.clone() else { continue };
        let dir = Path::new(&b.context);
        if !dir.is_dir() {
            return Err(format!(
                "build context {} of service {} is not a folder",
                dir.display(),
                s.name
            ));
        }
        let context = context_tar(dir)?;
        let (repo, _) = split_tag(&s.image);
        let repo = match registry {
            Some(r) => format!("{r}/{}", repo.rsplit('/').next().unwrap_or(repo)),
            None => repo.to_string(),
        };
        let tag = build_tag(&repo, &b, &context, git_revision(dir).as_deref());
        s.image = tag.clone();
        s.build = None;
        out.push(Build {
            service: s.name.clone(),
            tag,
            spec: b,
            context,
        });
    }
    Ok(out)
}

/// Builds on `host` through the engine API (the context as a tar body),
/// unless it already has the tag.
pub async fn build(host: &Host, b: &Build, progress: &Progress) -> Result<(), String> {
    if host.image_id(&b.tag).await?.is_some() {
        progress.step(
            "build",
            format!("{}: {} is built already", b.service, b.tag),
        );
        return Ok(());
    }
    let started = Instant::now();
    let opts = BuildImageOptions {
        t: Some(b.tag.clone()),
        dockerfile: b
            .spec
            .dockerfile
            .clone()
            .unwrap_or_else(|| "Dockerfile".into()),
        buildargs: Some(b.spec.args.clone().into_iter().collect::<HashMap<_, _>>()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_full(b.context.clone().into());
    let mut stream = host.docker.build_image(opts, None, Some(body));
    let mut log: Vec<String> = Vec::new();
    while let Some(msg) = stream.next().await {
        let info = msg.map_err(|e| format!("cannot build {} on {}: {e}", b.service, host.name))?;
        if let Some(line) = info.stream {
            log.extend(
                line.lines()
                    .map(String::from)
                    .filter(|l| !l.trim().is_empty()),
            );
        }
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            let tail = log[log.len().saturating_sub(10)..].join("\n");
            return Err(format!(
                "the build of {} failed on {}: {e}\n{tail}",
                b.service, host.name
            ));
        }
    }
    progress.step(
        "build",
        format!(
            "{}: built {} on {} ({} KiB context, {:.1}s)",
            b.service,
            b.tag,
            host.name,
            b.context.len() / 1024,
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Streams `image` from `from` into `to` (`docker save | docker load`
/// through the engine API, nothing on disk) and checks that `to` now holds
/// `id`. Returns the bytes sent.
pub async fn ship(from: &Host, to: &Host, image: &str, id: &str) -> Result<u64, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let source = from.docker.clone();
    let name = image.to_string();
    let reader = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut stream = Box::pin(source.export_image(&name));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            if let Ok(c) = &chunk {
                sent += c.len() as u64;
            }
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
        sent
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let opts = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let mut load = Box::pin(to.docker.import_image_stream(opts, body, None));
    while let Some(msg) = load.next().await {
        let info = msg.map_err(|e| format!("cannot load {image} into {}: {e}", to.name))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("cannot load {image} into {}: {e}", to.name));
        }
    }
    let sent = reader.await.map_err(|e| e.to_string())?;
    match to.image_id(image).await? {
        Some(got) if got == id => Ok(sent),
        got => Err(format!(
            "{image} sent from {} to {} arrived as {} instead of {id}",
            from.name,
            to.name,
            got.unwrap_or_else(|| "nothing".into())
        )),
    }
}

/// What each engine holds of `images`.
pub async fn holding(host: &Host, images: &[String]) -> Result<Holding, String> {
    let mut out = Holding::new();
    for image in images {
        out.insert(image.clone(), host.image_id(image).await?);
    }
    Ok(out)
}

/// Tells engines apart: the engine id alone is not enough, as engines
/// started from one configuration folder share it.
async fn identity(h: &Host) -> Option<(String, String, String)> {
    let i = h.docker.info().await.ok()?;
    Some((
        i.id?,
        i.name.unwrap_or_default(),
        i.docker_root_dir.unwrap_or_default(),
    ))
}

/// The registry host of an image reference, as Docker reads it: the first
/// path segment when it names a host, else Docker Hub.
fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first == "localhost" || first.contains('.') || first.contains(':') => {
            first
        }
        _ => "https://index.docker.io/v1/",
    }
}

/// The operator's login for `host` in a Docker configuration file's text
/// (`auths.<host>.auth`, base64 of `user:password`, what `docker login`
/// writes). Credential helpers are not run.
fn credentials_in(config: &str, host: &str) -> Option<DockerCredentials> {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths.get(host).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| {
                k.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    == host
            })
            .map(|(_, e)| e)
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.into()),
        password: Some(password.into()),
        serveraddress: Some(host.into()),
        ..Default::default()
    })
}

/// Credentials for the registry of `image` from `$DOCKER_CONFIG/config.json`
/// or `~/.docker/config.json`, as the docker CLI on this machine would send
/// them: the engine API takes them from the client, never from the engine.
fn credentials(image: &str) -> Option<DockerCredentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    credentials_in(&text, registry_host(image))
}

/// `repo:tag` → (`repo`, `tag`); a port is not a tag.
fn split_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// Pushes `image` from `host` to its registry and returns the reference
/// pinned to the digest the registry stored (`repo:tag@sha256:…`).
async fn push(host: &Host, image: &str) -> Result<String, String> {
    let (repo, tag) = split_tag(image);
    let options = PushImageOptions {
        tag: Some(tag.into()),
        ..Default::default()
    };
    let mut stream = host
        .docker
        .push_image(repo, Some(options), credentials(image));
    while let Some(item) = stream.next().await {
        item.map_err(|e| format!("cannot push {image} from {}: {e}", host.name))?;
    }
    let inspected = host
        .docker
        .inspect_image(image)
        .await
        .map_err(|e| e.to_string())?;
    let digest = inspected
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(String::from))
        .ok_or_else(|| {
            format!(
                "{image} was pushed but {} reports no digest for it",
                host.name
            )
        })?;
    Ok(format!("{image}@{digest}"))
}

/// Pulls `image` from its registry onto `host`, with this machine's login
/// for that registry when it has one.
async fn pull(host: &Host, image: &str) -> Result<(), String> {
    let options = bollard::query_parameters::CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let mut stream = host
        .docker
        .create_image(Some(options), None, credentials(image));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(why) = info.error_detail.and_then(|d| d.message) {
            return Err(why);
        }
    }
    Ok(())
}

/// This machine's own engine when it is none of the targets, as an extra
/// source of images.
pub async fn local_source(targets: &[Host]) -> Option<Host> {
    let local = crate::deploy::docker_host::client::connect("local")
        .await
        .ok()?;
    let me = identity(&local).await?;
    for t in targets {
        if identity(t).await.as_ref() == Some(&me) {
            return None;
        }
    }
    Some(Host {
        name: "this machine".into(),
        docker: local.docker,
    })
}

/// Builds each of `builds` on `builder` (unless it has the tag) and, with
/// a registry, pushes it there. Returns the plan lines of a dry run and,
/// per pushed tag, its reference pinned to the registry's digest.
async fn build_and_push(
    builder: &Host,
    builds: &[Build],
    registry: Option<&str>,
    progress: &Progress,
    dry_run: bool,
) -> Result<(Vec<PlanLine>, BTreeMap<String, String>), String> {
    let mut lines = Vec::new();
    let mut pinned = BTreeMap::new();
    for b in builds {
        if dry_run {
            let done = builder.image_id(&b.tag).await?.is_some();
            lines.push(PlanLine {
                host: builder.name.clone(),
                action: if done { "keep" } else { "build" }.into(),
                kind: "image".into(),
                name: b.tag.clone(),
                detail: format!(
                    "{} from {} ({} KiB context)",
                    b.service,
                    b.spec.context,
                    b.context.len() / 1024
                ),
            });
            if let Some(r) = registry {
                lines.push(PlanLine {
                    host: builder.name.clone(),
                    action: "push".into(),
                    kind: "image".into(),
                    name: b.tag.clone(),
                    detail: format!("to {r}, where every other target pulls it"),
                });
            }
            continue;
        }
        build(builder, b, progress).await?;
        if registry.is_some() {
            let started = Instant::now();
            let reference = push(builder, &b.tag).await?;
            progress.step(
                "image",
                format!(
                    "pushed {reference} from {} ({:.1}s)",
                    builder.name,
                    started.elapsed().as_secs_f64()
                ),
            );
            pinned.insert(b.tag.clone(), reference);
        }
    }
    Ok((lines, pinned))
}

/// A cluster pulls every image itself: services built from source are
/// built on this machine's engine and pushed to the profile's registry,
/// which is required then. Returns the plan lines of a dry run and, per
/// built service, the reference the cluster runs (pinned to its digest
/// after a real push).
pub async fn for_cluster(
    spec: &mut ReleaseSpec,
    registry: Option<&str>,
    progress: &Progress,
    dry_run: bool,
) -> Result<(Vec<PlanLine>, Vec<(String, String)>), String> {
    let Some(built) = spec.services.iter().find(|s| s.build.is_some()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let Some(registry) = registry else {
        return Err(format!(
            "service {} is built from source, and a cluster pulls its images from a registry: name one with `profile set <profile> registry <host>/<namespace>` (the deploy then builds and pushes it), or build and push it yourself and set `image:` in app.yaml",
            built.name
        ));
    };
    let builds = decide_builds(spec, Some(registry))?;
    let local = crate::deploy::docker_host::client::connect("local")
        .await
        .map_err(|e| format!("building needs a Docker engine on this machine: {e}"))?;
    let builder = Host {
        name: "this machine".into(),
        docker: local.docker,
    };
    let (lines, pinned) =
        build_and_push(&builder, &builds, Some(registry), progress, dry_run).await?;
    let refs = builds
        .iter()
        .map(|b| {
            let r = pinned.get(&b.tag).cloned().unwrap_or_else(|| b.tag.clone());
            (b.service.clone(), r)
        })
        .collect();
    Ok((lines, refs))
}

/// Everything a release needs on every target: builds (on the first
/// target), then transfers (or, with a registry, a push and pulls), then
/// the image ids in `spec`. A dry run decides the same and returns it as
/// plan lines, changing nothing.
pub async fn ensure(
    targets: &[Host],
    spec: &mut ReleaseSpec,
    registry: Option<&str>,
    progress: &Progress,
    dry_run: bool,
) -> Result<Vec<PlanLine>, String> {
    let builds = decide_builds(spec, registry)?;
    let first = targets.first().ok_or("no host to deploy to")?;
    let (mut lines, _) = build_and_push(first, &builds, registry, progress, dry_run).await?;
    let images = spec.images();
    let local = local_source(targets).await;
    let mut engines = Vec::new();
    for h in targets.iter().chain(local.as_ref()) {
        engines.push((h.name.clone(), holding(h, &images).await?));
    }
    // On a dry run a build not made yet is as good as on the first target.
    if dry_run {
        for b in &builds {
            let held = engines[0].1.entry(b.tag.clone()).or_default();
            held.get_or_insert_with(|| format!("(built from {})", b.spec.context));
        }
    }
    // An image no engine holds comes from its registry, as with Kamal: the
    // first host pulls it, and it is sent on like any other, so hosts that
    // cannot reach the registry still get it.
    for image in &images {
        if engines
            .iter()
            .any(|(_, h)| h.get(image).is_some_and(Option::is_some))
        {
            continue;
        }
        if dry_run {
            lines.push(PlanLine {
                host: first.name.clone(),
                action: "pull".into(),
                kind: "image".into(),
                name: image.clone(),
                detail: "from its registry, then sent to the other hosts".into(),
            });
            engines[0].1.insert(image.clone(), Some("(pulled)".into()));
            continue;
        }
        let started = Instant::now();
        pull(first, image).await.map_err(|e| {
            let names: Vec<&str> = engines.iter().map(|e| e.0.as_str()).collect();
            format!(
                "image {image} is on none of {} and {} could not pull it ({e}); build it (docker build -t {image} .) or give the service a build: context; nothing was changed",
                names.join(", "),
                first.name
            )
        })?;
        progress.step(
            "image",
            format!(
                "pulled {image} on {} ({:.1}s)",
                first.name,
                started.elapsed().as_secs_f64()
            ),
        );
        engines[0]
            .1
            .insert(image.clone(), first.image_id(image).await?);
    }
    let decided = plan(&images, &engines, targets.len())?;
    let all: Vec<&Host> = targets.iter().chain(local.as_ref()).collect();
    // What the registry holds, the other targets pull from it.
    let from_registry = |image: &str| registry.is_some() && builds.iter().any(|b| b.tag == image);
    for s in &decided.shipments {
        for &to in &s.to {
            if from_registry(&s.image) {
                if dry_run {
                    lines.push(PlanLine {
                        host: all[to].name.clone(),
                        action: "pull".into(),
                        kind: "image".into(),
                        name: s.image.clone(),
                        detail: "from the profile's registry".into(),
                    });
                    continue;
                }
                // By its tag, which names the content: the id is checked.
                let started = Instant::now();
                pull(all[to], &s.image)
                    .await
                    .map_err(|e| format!("{} cannot pull {}: {e}", all[to].name, s.image))?;
                match all[to].image_id(&s.image).await? {
                    Some(got) if got == s.id => {}
                    got => {
                        return Err(format!(
                            "{} pulled {} as {} instead of the build {}",
                            all[to].name,
                            s.image,
                            got.unwrap_or_else(|| "nothing".into()),
                            s.id
                        ));
                    }
                }
                progress.step(
                    "image",
                    format!(
                        "pulled {} on {} from the registry ({:.1}s)",
                        s.image,
                        all[to].name,
                        started.elapsed().as_secs_f64()
                    ),
                );
                continue;
            }
            if dry_run {
                lines.push(PlanLine {
                    host: all[to].name.clone(),
                    action: "send".into(),
                    kind: "image".into(),
                    name: s.image.clone(),
                    detail: format!("from {}, as a save/load stream", all[s.from].name),
                });
                continue;
            }
            let started = Instant::now();
            let bytes = ship(all[s.from], all[to], &s.image, &s.id).await?;
            progress.step(
                "image",
                format!(
                    "sent {} from {} to {} ({:.1} MB in {:.1}s)",
                    s.image,
                    all[s.from].name,
                    all[to].name,
                    bytes as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                ),
            );
        }
    }
    let sent: usize = decided.shipments.iter().map(|s| s.to.len()).sum();
    let present = images.len() * targets.len() - sent;
    if !dry_run && present > 0 {
        progress.step(
            "image",
            format!("{present} image copy(ies) already on their host(s), not sent"),
        );
    }
    for s in &mut spec.services {
        s.image_id = decided.ids.get(&s.image).cloned().unwrap_or_default();
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(items: &[(&str, Option<&str>)]) -> Holding {
        items
            .iter()
            .map(|(i, id)| (i.to_string(), id.map(String::from)))
            .collect()
    }

    fn engines(h: &[&[(&str, Option<&str>)]]) -> Vec<(String, Holding)> {
        h.iter()
            .enumerate()
            .map(|(i, x)| (format!("e{i}"), holding(x)))
            .collect()
    }

    #[test]
    fn the_first_holder_sends_to_every_target_lacking_the_image() {
        let e = engines(&[&[("a", None)], &[("a", Some("1"))], &[("a", None)]]);
        let p = plan(&["a".into()], &e, 3).unwrap();
        assert_eq!(p.ids["a"], "1");
        assert_eq!(
            p.shipments,
            [Shipment {
                image: "a".into(),
                id: "1".into(),
                from: 1,
                to: vec![0, 2]
            }]
        );
    }

    #[test]
    fn this_machine_wins_and_replaces_a_stale_copy() {
        // Two targets, then this machine with a newer build of the tag.
        let e = engines(&[&[("a", Some("old"))], &[("a", None)], &[("a", Some("new"))]]);
        let p = plan(&["a".into()], &e, 2).unwrap();
        assert_eq!(p.ids["a"], "new");
        assert_eq!(p.shipments[0].from, 2);
        assert_eq!(p.shipments[0].to, [0, 1]);
    }

    #[test]
    fn nothing_is_sent_when_every_target_holds_the_same_id() {
        let e = engines(&[&[("a", Some("1"))], &[("a", Some("1"))]]);
        assert!(plan(&["a".into()], &e, 2).unwrap().shipments.is_empty());
    }

    #[test]
    fn targets_that_disagree_or_an_image_nowhere_are_errors() {
        let e = engines(&[&[("a", Some("1"))], &[("a", Some("2"))]]);
        let err = plan(&["a".into()], &e, 2).unwrap_err();
        assert!(err.contains("differs between hosts"), "{err}");
        let e = engines(&[&[("a", None)], &[("a", None)]]);
        let err = plan(&["a".into()], &e, 2).unwrap_err();
        assert!(err.contains("on none of e0, e1"), "{err}");
    }

    #[test]
    fn a_docker_login_is_read_for_the_registry_of_the_image() {
        // base64("ci:s3cret")
        let config = r#"{"auths": {"ghcr.io": {"auth": "Y2k6czNjcmV0"}, "https://registry.example.com": {"auth": "Y2k6czNjcmV0"}}}"#;
        let c = credentials_in(config, registry_host("ghcr.io/acme/api:1")).unwrap();
        assert_eq!(c.username.as_deref(), Some("ci"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert!(credentials_in(config, registry_host("registry.example.com/x:1")).is_some());
        assert!(credentials_in(config, registry_host("localhost:5000/x:1")).is_none());
        assert_eq!(registry_host("acme/api:1"), "https://index.docker.io/v1/");
        assert_eq!(
            split_tag("localhost:5000/api"),
            ("localhost:5000/api", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/api:ab12"),
            ("localhost:5000/api", "ab12")
        );
    }

    #[test]
    fn a_build_is_named_under_the_registry_by_its_last_path_segment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut spec = ReleaseSpec::default();
        spec.services.push(crate::deploy::spec::ServiceSpec {
            name: "api".into(),
            image: "ghcr.io/old/api:1".into(),
            build: Some(BuildSpec {
                context: dir.path().to_string_lossy().into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut plain = spec.clone();
        let b = decide_builds(&mut spec, Some("localhost:5000/team")).unwrap();
        assert!(
            b[0].tag.starts_with("localhost:5000/team/api:"),
            "{}",
            b[0].tag
        );
        assert_eq!(spec.services[0].image, b[0].tag);
        assert!(spec.services[0].build.is_none());
        let p = decide_builds(&mut plain, None).unwrap();
        assert!(p[0].tag.starts_with("ghcr.io/old/api:"), "{}", p[0].tag);
        assert_eq!(p[0].tag.rsplit(':').next(), b[0].tag.rsplit(':').next());
    }

    #[test]
    fn a_context_tar_is_the_same_for_the_same_files_and_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        std::fs::create_dir_all(dir.path().join("node_modules/x")).unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("src/deep/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("node_modules/x/big"), "b").unwrap();
        std::fs::write(dir.path().join("debug.log"), "l").unwrap();
        std::fs::write(dir.path().join("keep.log"), "k").unwrap();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "node_modules\n*.log\n!keep.log\n",
        )
        .unwrap();
        let one = context_tar(dir.path()).unwrap();
        // A touched file with the same content gives the same bytes.
        std::fs::write(dir.path().join("src/deep/a.txt"), "a").unwrap();
        assert_eq!(one, context_tar(dir.path()).unwrap());
        let names: Vec<String> = tar::Archive::new(one.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [".dockerignore", "Dockerfile", "keep.log", "src/deep/a.txt"]
        );
        let b = BuildSpec {
            context: ".".into(),
            dockerfile: None,
            args: BTreeMap::new(),
        };
        let tag = build_tag("shop-web", &b, &one, Some("abc123"));
        assert!(
            tag.starts_with("shop-web:abc123-") && tag.len() == "shop-web:abc123-".len() + 12,
            "{tag}"
        );
        let other = BuildSpec {
            args: BTreeMap::from([("V".into(), "2".into())]),
            ..b.clone()
        };
        assert_ne!(
            build_tag("shop-web", &other, &one, None),
            build_tag("shop-web", &b, &one, None)
        );
    }
}
