//! Describe: the app description and the importers that produce one from
//! what teams already have (Compose files, Kubernetes manifests).

pub mod app;
pub mod compose;
pub mod diagnostic;
pub mod files;
pub mod findings;
pub mod interpolate;
pub mod known;
pub mod kubernetes;
pub mod load;
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
    let display = path.display().to_string();
    if path.is_dir() {
        for candidate in [
            "app.yaml",
            "app.yml",
            "compose.yaml",
            "compose.yml",
            "docker-compose.yml",
            "docker-compose.yaml",
        ] {
            let p = path.join(candidate);
            // A folder of manifests may well hold an `app.yaml` of its own.
            let is_ours = files::read_text(&p, load::MAX_SPEC_BYTES as u64)
                .is_ok_and(|t| sniff(&t) != SourceKind::KubernetesManifests);
            if p.is_file() && is_ours {
                return load_path(&p, compose_profiles);
            }
        }
        let k = kubernetes::import_manifests(path)?;
        return Ok(Loaded {
            app: k.app,
            source: SourceKind::KubernetesManifests,
            findings: k.findings,
        });
    }
    let src = read_spec(path)?;
    match sniff(&src) {
        SourceKind::AppYaml => Ok(Loaded {
            app: load::parse_app(&display, &src)?,
            source: SourceKind::AppYaml,
            findings: Findings::default(),
        }),
        SourceKind::KubernetesManifests => {
            let k = kubernetes::import_manifests(path)?;
            Ok(Loaded {
                app: k.app,
                source: SourceKind::KubernetesManifests,
                findings: k.findings,
            })
        }
        SourceKind::Compose => {
            let base = path.parent().map(Path::to_path_buf);
            let mut env: HashMap<String, String> = std::env::vars().collect();
            if let Some(b) = &base
                && let Ok(dotenv) = files::read_text(&b.join(".env"), files::MAX_ENV_FILE)
            {
                for (k, v) in parse_dotenv(&dotenv) {
                    env.entry(k).or_insert(v);
                }
            }
            let opts = compose::ComposeOptions {
                env,
                profiles: compose_profiles.to_vec(),
                base_dir: base,
                ..Default::default()
            };
            let c = compose::import_compose(&display, &src, &opts)?;
            Ok(Loaded {
                app: c.app,
                source: SourceKind::Compose,
                findings: c.findings,
            })
        }
    }
}

/// Reads a description file; bytes that are not UTF-8 are an error at the
/// line and column where they start.
pub fn read_spec(path: &Path) -> Result<String, Box<SpecError>> {
    let display = path.display().to_string();
    let bytes = files::read_bytes(path, load::MAX_SPEC_BYTES as u64).map_err(|e| {
        Box::new(SpecError::at(
            &display,
            "",
            0,
            0,
            format!("cannot read: {e}"),
        ))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        Box::new(SpecError::at(
            &display,
            &lossy,
            offset,
            1,
            "this byte is not UTF-8: descriptions are UTF-8 text",
        ))
    })
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
    if src.len() > load::MAX_SPEC_BYTES {
        return Err(Box::new(SpecError::at(
            filename,
            "",
            0,
            0,
            format!(
                "file is {} bytes; the limit is {}",
                src.len(),
                load::MAX_SPEC_BYTES
            ),
        )));
    }
    match sniff(src) {
        SourceKind::AppYaml => Ok(Loaded {
            app: load::parse_app(filename, src)?,
            source: SourceKind::AppYaml,
            findings: Findings::default(),
        }),
        SourceKind::KubernetesManifests => {
            let k = kubernetes::import_text(filename, src, default_name)?;
            Ok(Loaded {
                app: k.app,
                source: SourceKind::KubernetesManifests,
                findings: k.findings,
            })
        }
        SourceKind::Compose => {
            let mut env = sealed.env.clone();
            if let Some(dotenv) = sealed.files.get(".env") {
                for (k, v) in parse_dotenv(dotenv) {
                    env.entry(k).or_insert(v);
                }
            }
            let opts = compose::ComposeOptions {
                env,
                sealed_files: Some(sealed.files.clone()),
                default_name: Some(default_name.to_string()),
                ..Default::default()
            };
            let c = compose::import_compose(filename, src, &opts)?;
            Ok(Loaded {
                app: c.app,
                source: SourceKind::Compose,
                findings: c.findings,
            })
        }
    }
}

/// `KEY=value` lines of a `.env` file (comments and blank lines skipped,
/// surrounding quotes removed).
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().trim_start_matches("export ").to_string(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect()
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
