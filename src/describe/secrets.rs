//! The secrets an app needs, classified as in seed 004 (infrastructure,
//! per_install_generated, user_prompt, remote_fetch), and templates for the
//! stores teams use. Only names ever appear; no value is held.

use super::app::App;
use super::secrets_detect::looks_secret;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct SecretSpec {
    pub name: String,
    pub class: &'static str,
    /// env or file
    pub target: &'static str,
    pub used_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
}

fn classify(name: &str) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    let n = name.to_ascii_uppercase();
    if n.contains("DATABASE_URL")
        || n.ends_with("_URL")
        || n.ends_with("_URI")
        || n.ends_with("_DSN")
    {
        ("infrastructure", None, Some("^[a-z][a-z0-9+.-]*://"))
    } else if n.contains("JWT")
        || n.contains("SESSION")
        || n == "SECRET_KEY"
        || n.ends_with("_AUTH_TOKEN")
        || (n.ends_with("_PASSWORD")
            && (n.contains("POSTGRES")
                || n.contains("MYSQL")
                || n.contains("REDIS")
                || n.contains("NEO4J")
                || n.contains("DB")))
    {
        ("per_install_generated", Some("random:32:alnum"), None)
    } else if n.contains("VAULT") || n.contains("AWS_") {
        ("remote_fetch", None, None)
    } else {
        ("user_prompt", None, None)
    }
}

/// Every secret the app declares or that its env names reveal.
pub fn secrets_list(app: &App) -> Vec<SecretSpec> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (svc, s) in &app.services {
        for name in s
            .secrets
            .iter()
            .chain(s.env.keys().filter(|k| looks_secret(k)))
        {
            by_name.entry(name.clone()).or_default().push(svc.clone());
        }
    }
    for (dep, d) in &app.dependencies {
        for name in &d.secrets {
            by_name.entry(name.clone()).or_default().push(dep.clone());
        }
    }
    by_name
        .into_iter()
        .map(|(name, mut used_by)| {
            used_by.dedup();
            let (class, generator, format) = classify(&name);
            let target = if name.contains("PRIVATE_KEY") || name.contains("CERT") {
                "file"
            } else {
                "env"
            };
            let prompt = (class == "user_prompt")
                .then(|| format!("Enter {}", name.to_lowercase().replace('_', " ")));
            SecretSpec {
                name,
                class,
                target,
                used_by,
                generator,
                prompt,
                format,
            }
        })
        .collect()
}

pub fn render_secrets_template(
    list: &[SecretSpec],
    app: &str,
    profile: &str,
    format: &str,
) -> Result<String, String> {
    let mut out = String::new();
    match format {
        "env" | "docker" => {
            out.push_str(&format!(
                "# secrets for {app} (profile {profile}); fill in values, never commit this file\n"
            ));
            for s in list {
                out.push_str(&format!(
                    "# {} ({}), used by {}\n{}=\n",
                    s.class,
                    s.target,
                    s.used_by.join(", "),
                    s.name
                ));
            }
        }
        "vault" => {
            let v: Vec<_> = list.iter().map(|s| serde_json::json!({"path": format!("secret/data/deployment-manager/{profile}/{}", s.used_by.first().cloned().unwrap_or_default()), "key": s.name, "class": s.class})).collect();
            out = serde_json::to_string_pretty(&serde_json::json!({"secrets": v}))
                .unwrap_or_default()
                + "\n";
        }
        "aws" => {
            let v: Vec<_> = list.iter().map(|s| serde_json::json!({"name": format!("deployment-manager/{profile}/{}", s.name), "key": s.name, "class": s.class})).collect();
            out = serde_json::to_string_pretty(&serde_json::json!({"secrets": v}))
                .unwrap_or_default()
                + "\n";
        }
        "k8s" => {
            out.push_str(&format!("# create with: kubectl create secret generic {app}-secrets --from-env-file=secrets.env\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {app}-secrets\ntype: Opaque\nstringData:\n"));
            for s in list {
                out.push_str(&format!("  {}: \"\"  # {}\n", s.name, s.class));
            }
        }
        "fly" => {
            for s in list {
                out.push_str(&format!(
                    "fly secrets set {}=\"$\\{{{}}}\"  # {}\n",
                    s.name, s.name, s.class
                ));
            }
        }
        "github" => {
            for s in list {
                out.push_str(&format!(
                    "gh secret set {}  # {}, used by {}\n",
                    s.name,
                    s.class,
                    s.used_by.join(", ")
                ));
            }
        }
        other => {
            return Err(format!(
                "unknown format `{other}`; use env, vault, aws, k8s, docker, fly or github"
            ));
        }
    }
    Ok(out)
}
