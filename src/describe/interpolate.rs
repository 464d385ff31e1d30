//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `$$`.
//! Applied to every string value after parsing, as Compose does.

use serde_json::Value;
use std::collections::HashMap;

/// Interpolates every string in `doc` in place. `warn(path, msg)` is told of
/// unset variables that fell back to an empty string; a `:?` error aborts.
pub fn interpolate(
    doc: &mut Value,
    env: &HashMap<String, String>,
    path: &str,
    warn: &mut dyn FnMut(String, String),
) -> Result<(), (String, String)> {
    match doc {
        Value::String(s) => {
            *s = interpolate_str(s, env, &mut |m| warn(path.to_string(), m))
                .map_err(|m| (path.to_string(), m))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, env, &format!("{path}[{i}]"), warn)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, env, &child, warn)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn interpolate_str(
    s: &str,
    env: &HashMap<String, String>,
    warn: &mut dyn FnMut(String),
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unclosed `${{` in `{s}`"));
                }
                let body: String = chars[start..j].iter().collect();
                out.push_str(&expand(&body, env, warn)?);
                i = j + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name, env, warn));
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn lookup(name: &str, env: &HashMap<String, String>, warn: &mut dyn FnMut(String)) -> String {
    match env.get(name) {
        Some(v) => v.clone(),
        None => {
            warn(format!(
                "variable `{name}` is not set; an empty string was used"
            ));
            String::new()
        }
    }
}

fn expand(
    body: &str,
    env: &HashMap<String, String>,
    warn: &mut dyn FnMut(String),
) -> Result<String, String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(name_end);
    if name.is_empty() {
        return Err(format!("`${{{body}}}` has no variable name"));
    }
    let value = env.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let op = |p: &str| rest.strip_prefix(p);
    if rest.is_empty() {
        return Ok(lookup(name, env, warn));
    }
    if let Some(d) = op(":-") {
        return if set_nonempty {
            Ok(value.cloned().unwrap_or_default())
        } else {
            interpolate_str(d, env, warn)
        };
    }
    if let Some(d) = op("-") {
        return match value {
            Some(v) => Ok(v.clone()),
            None => interpolate_str(d, env, warn),
        };
    }
    if let Some(m) = op(":?") {
        return if set_nonempty {
            Ok(value.cloned().unwrap_or_default())
        } else {
            Err(format!("required variable `{name}` is missing: {m}"))
        };
    }
    if let Some(m) = op("?") {
        return value
            .cloned()
            .ok_or_else(|| format!("required variable `{name}` is missing: {m}"));
    }
    if let Some(alt) = op(":+") {
        return if set_nonempty {
            interpolate_str(alt, env, warn)
        } else {
            Ok(String::new())
        };
    }
    if let Some(alt) = op("+") {
        return if value.is_some() {
            interpolate_str(alt, env, warn)
        } else {
            Ok(String::new())
        };
    }
    Err(format!("unsupported substitution `${{{body}}}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<String, String> {
        let env: HashMap<String, String> = [("SET", "yes"), ("EMPTY", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        interpolate_str(s, &env, &mut |_| {})
    }

    #[test]
    fn compose_substitution_forms() {
        assert_eq!(run("${SET}").unwrap(), "yes");
        assert_eq!(run("$SET-x").unwrap(), "yes-x");
        assert_eq!(run("${UNSET:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY-fallback}").unwrap(), "");
        assert_eq!(run("${UNSET:-${SET}}").unwrap(), "yes");
        assert_eq!(run("$$HOME").unwrap(), "$HOME");
        assert_eq!(run("${SET:+alt}").unwrap(), "alt");
        assert!(
            run("${UNSET:?must be set}")
                .unwrap_err()
                .contains("must be set")
        );
        assert!(run("${UNCLOSED").is_err());
    }
}
