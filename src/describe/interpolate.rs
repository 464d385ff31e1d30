//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `$$`.
//! Applied to every string value after parsing, as Compose does.
//!
//! Written as one left-to-right pass with an explicit stack, because files
//! come from strangers (dashboard uploads): nesting depth, output size and
//! so work are bounded, and nothing recurses on the input's shape.

use serde_json::Value;
use std::collections::HashMap;

/// Deepest `${…${…}…}` nesting accepted. Real files nest two or three.
pub const MAX_DEPTH: usize = 32;
/// Most bytes interpolation may produce for one document, all strings
/// together (`$BIG$BIG$BIG…` would otherwise multiply a value's size).
pub const MAX_OUTPUT: usize = 16 << 20;

/// Interpolates every string in `doc` in place. `warn(path, msg)` is told of
/// unset variables that fell back to an empty string; a `:?` error, or a
/// string past the bounds, aborts with the path of the offending value.
pub fn interpolate(
    doc: &mut Value,
    env: &HashMap<String, String>,
    path: &str,
    warn: &mut dyn FnMut(String, String),
) -> Result<(), (String, String)> {
    let mut budget = MAX_OUTPUT;
    // Children are pushed in reverse so that values are visited (and warned
    // about) in document order.
    let mut todo: Vec<(&mut Value, String)> = vec![(doc, path.to_string())];
    while let Some((value, at)) = todo.pop() {
        match value {
            Value::String(s) => {
                let out = expand(s, env, &mut budget, &mut |m| warn(at.clone(), m))
                    .map_err(|m| (at.clone(), m))?;
                *s = out;
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate().rev() {
                    todo.push((item, format!("{at}[{i}]")));
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut().rev() {
                    let child = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    todo.push((v, child));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Interpolates one string with the default bounds.
pub fn interpolate_str(
    s: &str,
    env: &HashMap<String, String>,
    warn: &mut dyn FnMut(String),
) -> Result<String, String> {
    let mut budget = MAX_OUTPUT;
    expand(s, env, &mut budget, warn)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    /// `:-` / `-`: the word replaces an unset (or empty) variable.
    Default,
    /// `:?` / `?`: the word is the error message for an unset variable.
    Required,
    /// `:+` / `+`: the word replaces a set (non-empty) variable.
    Alternative,
}

/// An open `${NAME<op>` whose word is being read.
struct Frame {
    name: String,
    op: Op,
    /// Whether the word's text is needed; when not, it is only parsed, so
    /// that unused defaults neither warn nor fail.
    collect: bool,
    /// The result when the word is not used (the variable's value).
    value: String,
    word: String,
    /// Byte offset of the `$`, for messages.
    at: usize,
}

fn expand(
    s: &str,
    env: &HashMap<String, String>,
    budget: &mut usize,
    warn: &mut dyn FnMut(String),
) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut top = String::with_capacity(s.len().min(*budget));
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    // Appends to whichever output is open, if it is needed, within budget.
    fn emit(
        top: &mut String,
        stack: &mut [Frame],
        budget: &mut usize,
        text: &str,
    ) -> Result<(), String> {
        let out = match stack.last_mut() {
            Some(f) if !f.collect => return Ok(()),
            Some(f) => &mut f.word,
            None => top,
        };
        if text.len() > *budget {
            return Err(format!(
                "interpolation would produce more than {} MiB",
                MAX_OUTPUT >> 20
            ));
        }
        *budget -= text.len();
        out.push_str(text);
        Ok(())
    }
    let collecting = |stack: &[Frame]| stack.last().is_none_or(|f| f.collect);
    // Only for messages: counting characters on every `${` would make a
    // string of many substitutions quadratic.
    let column = |at: usize| s[..at].chars().count() + 1;
    let name_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(bytes.len(), |n| from + n)
    };
    while i < bytes.len() {
        // Copy the literal run up to the next `$` (or `}` inside a `${`).
        let special = bytes[i..]
            .iter()
            .position(|b| *b == b'$' || (*b == b'}' && !stack.is_empty()))
            .map_or(bytes.len(), |n| i + n);
        if special > i {
            emit(&mut top, &mut stack, budget, &s[i..special])?;
            i = special;
            continue;
        }
        if bytes[i] == b'}' {
            let f = stack.pop().expect("a `}` is special only inside `${`");
            let parent_collects = collecting(&stack);
            if f.collect && f.op == Op::Required {
                return Err(format!(
                    "required variable `{}` is missing: {}",
                    f.name, f.word
                ));
            }
            if parent_collects {
                let result = if f.collect { &f.word } else { &f.value };
                emit(&mut top, &mut stack, budget, result)?;
            }
            i += 1;
            continue;
        }
        // bytes[i] == '$'
        match bytes.get(i + 1) {
            Some(b'$') => {
                emit(&mut top, &mut stack, budget, "$")?;
                i += 2;
            }
            Some(b'{') => {
                let start = i + 2;
                let end = name_end(start);
                let name = &s[start..end];
                if name.is_empty() {
                    return Err(if end >= bytes.len() {
                        format!("unclosed `${{` at character {}", column(i))
                    } else {
                        format!("`${{` at character {} has no variable name", column(i))
                    });
                }
                let rest = &s[end..];
                if rest.starts_with('}') {
                    if collecting(&stack) {
                        let v = lookup(name, env, warn);
                        emit(&mut top, &mut stack, budget, &v)?;
                    }
                    i = end + 1;
                    continue;
                }
                let (op, colon, op_len) = match rest.as_bytes() {
                    [b':', b'-', ..] => (Op::Default, true, 2),
                    [b':', b'?', ..] => (Op::Required, true, 2),
                    [b':', b'+', ..] => (Op::Alternative, true, 2),
                    [b'-', ..] => (Op::Default, false, 1),
                    [b'?', ..] => (Op::Required, false, 1),
                    [b'+', ..] => (Op::Alternative, false, 1),
                    [] => return Err(format!("unclosed `${{` at character {}", column(i))),
                    _ => {
                        let shown: String = rest.chars().take(20).collect();
                        return Err(format!(
                            "unsupported substitution `${{{name}{shown}` at character {}",
                            column(i)
                        ));
                    }
                };
                if stack.len() >= MAX_DEPTH {
                    return Err(format!(
                        "`${{…}}` nested deeper than {MAX_DEPTH} levels at character {}",
                        column(i)
                    ));
                }
                let parent = collecting(&stack);
                let value = if parent { env.get(name) } else { None };
                let set = value.is_some();
                let non_empty = value.is_some_and(|v| !v.is_empty());
                let present = if colon { non_empty } else { set };
                let word_needed = match op {
                    Op::Default | Op::Required => !present,
                    Op::Alternative => present,
                };
                let value = match op {
                    Op::Alternative => String::new(),
                    _ => value.cloned().unwrap_or_default(),
                };
                stack.push(Frame {
                    name: name.to_string(),
                    op,
                    collect: parent && word_needed,
                    value,
                    word: String::new(),
                    at: i,
                });
                i = end + op_len;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let end = name_end(i + 1);
                if collecting(&stack) {
                    let v = lookup(&s[i + 1..end], env, warn);
                    emit(&mut top, &mut stack, budget, &v)?;
                }
                i = end;
            }
            _ => {
                emit(&mut top, &mut stack, budget, "$")?;
                i += 1;
            }
        }
    }
    if let Some(f) = stack.last() {
        return Err(format!("unclosed `${{` at character {}", column(f.at)));
    }
    Ok(top)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("SET", "yes"), ("EMPTY", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(s: &str) -> Result<String, String> {
        interpolate_str(s, &env(), &mut |_| {})
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
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${UNSET+alt}").unwrap(), "");
        assert_eq!(run("a}b{c$").unwrap(), "a}b{c$");
        assert_eq!(run("${UNSET:-{\"a\":1}}").unwrap(), "{\"a\":1}");
        assert_eq!(run("é${SET}ü").unwrap(), "éyesü");
        assert!(
            run("${UNSET:?must be set}")
                .unwrap_err()
                .contains("must be set")
        );
        assert!(run("${SET:?must be set}").is_ok());
        assert!(run("${UNCLOSED").is_err());
        assert!(run("${UNSET:-${").is_err());
        assert!(run("${}").unwrap_err().contains("no variable name"));
        assert!(run("${A*B}").unwrap_err().contains("unsupported"));
    }

    #[test]
    fn unused_words_neither_warn_nor_fail() {
        let mut warned = Vec::new();
        let out = interpolate_str("${SET:-${NOPE}${NOPE:?boom}}", &env(), &mut |m| {
            warned.push(m)
        })
        .unwrap();
        assert_eq!(out, "yes");
        assert!(warned.is_empty(), "{warned:?}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let n = 100_000;
        let s = "${X:-".repeat(n) + &"}".repeat(n);
        let e = run(&s).unwrap_err();
        assert!(e.contains("nested deeper than 32"), "{e}");
        let ok = "${X:-".repeat(MAX_DEPTH) + "v" + &"}".repeat(MAX_DEPTH);
        assert_eq!(run(&ok).unwrap(), "v");
    }

    #[test]
    fn output_is_bounded() {
        let big: HashMap<String, String> = [("B".to_string(), "x".repeat(1 << 20))].into();
        let s = "$B".repeat(17);
        let e = interpolate_str(&s, &big, &mut |_| {}).unwrap_err();
        assert!(e.contains("more than 16 MiB"), "{e}");
        let mut doc = serde_json::json!({"a": "$B".repeat(10), "b": ["$B".repeat(10)]});
        let e = interpolate(&mut doc, &big, "", &mut |_, _| {}).unwrap_err();
        assert_eq!(e.0, "b[0]");
    }

    #[test]
    fn document_walk_reports_paths_in_order() {
        let mut doc = serde_json::json!({"s": {"web": {"env": ["$A", "${B}"]}}, "t": "$C"});
        let mut seen = Vec::new();
        interpolate(&mut doc, &env(), "", &mut |p, _| seen.push(p)).unwrap();
        assert_eq!(seen, ["s.web.env[0]", "s.web.env[1]", "t"]);
    }
}
