//! Describe: the app description and the importers that produce one from
//! what teams already have (Compose files, Kubernetes manifests).

pub mod app;
pub mod compose;
mod compose_calls;
mod compose_values;
pub mod diagnostic;
pub mod files;
pub mod findings;
pub mod interpolate;
pub mod known;
pub mod kubernetes;
mod kubernetes_calls;
mod kubernetes_doc;
pub mod kubernetes_keys;
pub mod load;
pub mod node_placement;
pub mod peers;
pub mod secrets;
pub mod secrets_detect;
pub use secrets::{render_secrets_template, secrets_list};
pub mod units;

use app::App;
use diagnostic::SpecError;
use findings::Findings;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// What a path held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    AppYaml,
    Compose,
    KubernetesManifests,
}

pub struct Loaded {
    pub app: App,
    pub source: SourceKind,
    pub findings: Findings,
}

/// Loads an app from an `app.yaml`, a Compose file or a Kubernetes manifest
/// file/folder, telling them apart by content rather than by name. This is
/// the user's own machine: `${VAR}` reads their environment and `.env`, and
/// `env_file` their files (regular files only, bounded in size).
pub fn load_path(path: &Path, compose_profiles: &[String]) -> Result<Loaded, Box<SpecError>> {
    let (file, src) = if path.is_dir() {
        // A folder of manifests may well hold an `app.yaml` of its own.
        let ours = [
            "app.yaml",
            "app.yml",
            "compose.yaml",
            "compose.yml",
            "docker-compose.yml",
            "docker-compose.yaml",
        ]
        .into_iter()
        .map(|candidate| path.join(candidate))
        .find_map(|p| {
            let text = files::read_text(&p, files::MAX_SPEC_FILE).ok()?;
            (sniff(&text) != SourceKind::KubernetesManifests).then_some((p, text))
        });
        match ours {
            Some(found) => found,
            None => return Ok(kubernetes::import_manifests(path)?.into()),
        }
    } else {
        (path.to_path_buf(), read_spec(path)?)
    };
    let display = file.display().to_string();
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    load_text(
        &display,
        &src,
        || kubernetes::import_text(&display, &src, stem),
        || {
            let base = file.parent().map(Path::to_path_buf);
            let mut env: HashMap<String, String> = std::env::vars().collect();
            if let Some(b) = &base
                && let Ok(dotenv) = files::read_text(&b.join(".env"), files::MAX_ENV_FILE)
            {
                for (k, v) in compose::parse_env_file(&dotenv) {
                    env.entry(k).or_insert(v);
                }
            }
            compose::ComposeOptions {
                env,
                profiles: compose_profiles.to_vec(),
                base_dir: base,
                ..Default::default()
            }
        },
    )
}

/// Reads a description file; bytes that are not UTF-8 are an error at the
/// line and column where they start.
pub fn read_spec(path: &Path) -> Result<String, Box<SpecError>> {
    let bytes = files::read_bytes(path, files::MAX_SPEC_FILE).map_err(|e| cannot_read(path, &e))?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        Box::new(SpecError::at(
            &path.display().to_string(),
            &lossy,
            offset,
            1,
            "this byte is not UTF-8: descriptions are UTF-8 text",
        ))
    })
}

/// A file that could not be read, as a spec error naming it.
pub(crate) fn cannot_read(path: &Path, why: &str) -> Box<SpecError> {
    Box::new(SpecError::at(
        &path.display().to_string(),
        "",
        0,
        0,
        format!("cannot read: {why}"),
    ))
}

/// What came with an upload besides the file itself. Nothing else is read:
/// not the server's environment, not its files.
#[derive(Default, Clone, Debug)]
pub struct Sealed {
    /// Variables for `${VAR}`, as sent (form fields).
    pub env: HashMap<String, String>,
    /// Files sent alongside, by name: `.env` adds variables (sent values win)
    /// and `env_file` may name any of them.
    pub files: HashMap<String, String>,
}

/// Loads an uploaded description. Compose files are interpolated only from
/// the values sent with them, `env_file` may name only files sent with them,
/// and an app without a `name:` is named after `default_name` (uploads have
/// no folder for Compose's project-name rule to use).
pub fn load_upload(
    filename: &str,
    src: &str,
    sealed: &Sealed,
    default_name: &str,
) -> Result<Loaded, Box<SpecError>> {
    load_text(
        filename,
        src,
        || kubernetes::import_text(filename, src, default_name),
        || {
            let mut env = sealed.env.clone();
            if let Some(dotenv) = sealed.files.get(".env") {
                for (k, v) in compose::parse_env_file(dotenv) {
                    env.entry(k).or_insert(v);
                }
            }
            compose::ComposeOptions {
                env,
                sealed_files: Some(sealed.files.clone()),
                default_name: Some(default_name.to_string()),
                ..Default::default()
            }
        },
    )
}

/// Reads a description by its content: app.yaml as is, manifests and
/// Compose files through their importers (the caller says where manifests
/// and Compose's variables and files come from).
fn load_text(
    file: &str,
    src: &str,
    manifests: impl FnOnce() -> Result<kubernetes::K8sImport, Box<SpecError>>,
    compose_options: impl FnOnce() -> compose::ComposeOptions,
) -> Result<Loaded, Box<SpecError>> {
    match sniff(src) {
        SourceKind::AppYaml => Ok(Loaded {
            app: load::parse_app(file, src)?,
            source: SourceKind::AppYaml,
            findings: Findings::default(),
        }),
        SourceKind::KubernetesManifests => Ok(manifests()?.into()),
        SourceKind::Compose => {
            let c = compose::import_compose(file, src, &compose_options())?;
            Ok(Loaded {
                app: c.app,
                source: SourceKind::Compose,
                findings: c.findings,
            })
        }
    }
}

impl From<kubernetes::K8sImport> for Loaded {
    fn from(k: kubernetes::K8sImport) -> Self {
        Loaded {
            app: k.app,
            source: SourceKind::KubernetesManifests,
            findings: k.findings,
        }
    }
}

/// Guesses the format from the top-level keys.
pub fn sniff(src: &str) -> SourceKind {
    let top: Vec<&str> = src
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']) && l.contains(':'))
        .filter_map(|l| l.split(':').next())
        .map(|k| k.trim().trim_matches('"'))
        .collect();
    if top.contains(&"apiVersion") && src.contains(app::API_VERSION) {
        SourceKind::AppYaml
    } else if top.contains(&"apiVersion") && top.contains(&"kind") {
        SourceKind::KubernetesManifests
    } else if top.contains(&"services") {
        SourceKind::Compose
    } else {
        SourceKind::AppYaml
    }
}
