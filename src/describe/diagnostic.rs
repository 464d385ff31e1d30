//! Errors in a user's file, shown with file, line, column and the offending
//! text (miette renders the snippet). Both YAML/type errors from the parser and
//! semantic errors found afterwards (cycles, unknown references) use this.

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Serialize;
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[error("{file}:{line}:{column}: {message}")]
#[diagnostic(code(deployment_manager::spec))]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

/// A machine-readable form of a [`SpecError`], for `--json`.
#[derive(Debug, Serialize)]
pub struct SpecErrorJson<'a> {
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub message: &'a str,
    pub help: Option<&'a str>,
}

impl SpecError {
    pub fn at(
        file: &str,
        src: &str,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset = offset.min(src.len());
        let (line, column) = line_col(src, offset);
        let message = message.into();
        SpecError {
            file: file.into(),
            line,
            column,
            label: "here".into(),
            span: Some(SourceSpan::new(offset.into(), len.min(src.len() - offset))),
            src: NamedSource::new(file, src.to_string()),
            message,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn to_json(&self) -> SpecErrorJson<'_> {
        SpecErrorJson {
            file: &self.file,
            line: self.line,
            column: self.column,
            message: &self.message,
            help: self.help.as_deref(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Byte spans of every node of a YAML document by path (`services.api.ports[0]`).
/// Keys are indexed as `path@key`, values as `path`.
#[derive(Default, Debug)]
pub struct SpanIndex {
    spans: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    pub fn build(src: &str) -> Self {
        let mut index = SpanIndex::default();
        if let Ok(root) = serde_saphyr::from_str::<serde_saphyr::Spanned<node::Node>>(src) {
            index.walk("", &root);
        }
        index
    }

    fn walk(&mut self, path: &str, node: &serde_saphyr::Spanned<node::Node>) {
        if let Some(span) = span_of(&node.defined) {
            self.spans.insert(path.to_string(), span);
        }
        match &node.value {
            node::Node::Map(entries) => {
                for (key, value) in entries {
                    let child = if path.is_empty() {
                        key.value.clone()
                    } else {
                        format!("{path}.{}", key.value)
                    };
                    if let Some(span) = span_of(&key.defined) {
                        self.spans.insert(format!("{child}@key"), span);
                    }
                    self.walk(&child, value);
                }
            }
            node::Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(&format!("{path}[{i}]"), item);
                }
            }
            node::Node::Scalar => {}
        }
    }

    /// The span of a path's key if it is a map entry, else of its value;
    /// falls back to the nearest ancestor that exists.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some(s) = self.spans.get(&format!("{p}@key")).or(self.spans.get(&p)) {
                return Some(*s);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }

    pub fn value(&self, path: &str) -> Option<(usize, usize)> {
        self.spans.get(path).copied()
    }

    /// An error pointing at a value (falls back to its key or an ancestor).
    pub fn error_at_value(
        &self,
        file: &str,
        src: &str,
        path: &str,
        msg: impl Into<String>,
    ) -> SpecError {
        let (offset, len) = self
            .value(path)
            .or_else(|| self.locate(path))
            .unwrap_or((0, 0));
        let mut e = SpecError::at(file, src, offset, len, msg);
        e.label = path.to_string();
        e
    }

    pub fn error(&self, file: &str, src: &str, path: &str, msg: impl Into<String>) -> SpecError {
        let (offset, len) = self.locate(path).unwrap_or((0, 0));
        let mut e = SpecError::at(file, src, offset, len, msg);
        e.label = path.to_string();
        e
    }
}

fn span_of(loc: &serde_saphyr::Location) -> Option<(usize, usize)> {
    let span = loc.span();
    let off = span.byte_offset()? as usize;
    Some((off, span.byte_len().unwrap_or(0) as usize))
}

mod node {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_saphyr::Spanned;
    use std::fmt;

    /// A YAML node whose children carry their source spans.
    pub enum Node {
        Map(Vec<(Spanned<String>, Spanned<Node>)>),
        Seq(Vec<Spanned<Node>>),
        Scalar,
    }

    /// Any scalar key, as text.
    struct Key(String);

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a scalar key")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                    Ok(Key(v.into()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                    Ok(Key(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                    Ok(Key(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                    Ok(Key(v.to_string()))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                    Ok(Key(v.to_string()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                    Ok(Key("~".into()))
                }
            }
            d.deserialize_any(V)
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Node;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any YAML node")
                }
                fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_unit<E>(self) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_none<E>(self) -> Result<Node, E> {
                    Ok(Node::Scalar)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                        items.push(item);
                    }
                    Ok(Node::Seq(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(k) = map.next_key::<Spanned<Key>>()? {
                        let v = map.next_value::<Spanned<Node>>()?;
                        let key = Spanned::new(k.value.0, k.referenced, k.defined);
                        entries.push((key, v));
                    }
                    Ok(Node::Map(entries))
                }
            }
            d.deserialize_any(V)
        }
    }
}
