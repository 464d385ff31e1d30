//! Small readers of Compose values shared by the importer (`compose.rs`)
//! and its call inference (`compose_calls.rs`): the import's options,
//! names made DNS-safe, string lists, scalars as text and env entries.

use serde_json::Value;
use std::collections::HashMap;

/// Options of an import: the variables for `${VAR}` interpolation (the
/// environment plus the `.env` file beside the compose file) and the active
/// Compose profiles.
#[derive(Default, Clone)]
pub struct ComposeOptions {
    pub env: HashMap<String, String>,
    pub profiles: Vec<String>,
    /// Folder used to resolve `env_file` paths.
    pub base_dir: Option<std::path::PathBuf>,
    /// An upload's files by name: when set, `env_file` may name only these
    /// and nothing is read from disk.
    pub sealed_files: Option<HashMap<String, String>>,
    /// The app's name when the file has no `name:` (instead of its folder).
    pub default_name: Option<String>,
}

pub fn dep_name(n: &str) -> String {
    sanitize_name(n)
}

/// Compose allows `_` and capitals in names; ours are DNS labels.
pub fn sanitize_name(n: &str) -> String {
    let s: String = n
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "app".into()
    } else {
        s.chars().take(63).collect()
    }
}

pub fn as_str_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => shell_words(s),
        Value::Array(a) => a.iter().map(value_text).collect(),
        _ => Vec::new(),
    }
}

pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits a command string the way a shell would for simple cases (quotes,
/// no expansions), which is what `command: "python app.py --port 80"` needs.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                has = true;
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Reads env entries from `environment` (map or list) into (name, value).
pub fn env_entries(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| value_text(v))))
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(value_text)
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (e, None),
            })
            .collect(),
        _ => Vec::new(),
    }
}
