//! Describe: the app description and the importers that produce one from
//! what teams already have (Compose files, Kubernetes manifests).

pub mod app;
pub mod compose;
pub mod diagnostic;
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
/// file/folder, telling them apart by content rather than by name.
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
            let is_ours = std::fs::read_to_string(&p)
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
    let src = std::fs::read_to_string(path).map_err(|e| {
        Box::new(SpecError::at(
            &display,
            "",
            0,
            0,
            format!("cannot read: {e}"),
        ))
    })?;
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
                && let Ok(dotenv) = std::fs::read_to_string(b.join(".env"))
            {
                for line in dotenv
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.starts_with('#'))
                {
                    if let Some((k, v)) = line.split_once('=') {
                        env.entry(k.trim().to_string())
                            .or_insert_with(|| v.trim().trim_matches('"').to_string());
                    }
                }
            }
            let opts = compose::ComposeOptions {
                env,
                profiles: compose_profiles.to_vec(),
                base_dir: base,
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
