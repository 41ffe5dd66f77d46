//! A small YAML writer: maps, sequences and scalars, with comments, always quoting strings.
//!
//! The generated files need comments (the "do not edit" line, notes on fixed rules), which
//! no serde YAML serializer writes; the subset here is all the artefacts use. Strings are
//! always quoted (single quotes when they hold `"` or `\`, as regexes and OTTL statements do,
//! JSON-style double quotes otherwise), so no value is ever read back as a number, a boolean
//! or `null`.

use std::fmt::Write as _;

/// A YAML value.
#[derive(Debug, Clone)]
pub(crate) enum Yaml {
    /// A string, always quoted.
    Str(String),
    /// A number or boolean, written as it is.
    Raw(String),
    /// A literal block scalar (`|-`), for multi-line PromQL.
    Block(String),
    /// A mapping, in insertion order.
    Map(Vec<Entry>),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A sequence of strings written on one line (`[a, b]`).
    Flow(Vec<String>),
}

/// One key of a mapping, with optional comment lines written above it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    comments: Vec<String>,
    key: String,
    value: Yaml,
}

/// Builds a mapping.
#[derive(Debug, Default, Clone)]
pub(crate) struct MapBuilder(Vec<Entry>);

impl MapBuilder {
    pub(crate) fn new() -> Self {
        MapBuilder(Vec::new())
    }

    /// Adds `key: value`.
    pub(crate) fn entry(mut self, key: impl Into<String>, value: Yaml) -> Self {
        self.0.push(Entry {
            comments: Vec::new(),
            key: key.into(),
            value,
        });
        self
    }

    /// Adds `key: value` with comment lines above it.
    pub(crate) fn commented(
        mut self,
        comments: &[&str],
        key: impl Into<String>,
        value: Yaml,
    ) -> Self {
        self.0.push(Entry {
            comments: comments.iter().map(|c| (*c).to_owned()).collect(),
            key: key.into(),
            value,
        });
        self
    }

    /// Adds `key: "value"`.
    pub(crate) fn str(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.entry(key, Yaml::Str(value.into()))
    }

    /// Adds `key: value` for a number or boolean.
    pub(crate) fn raw(self, key: impl Into<String>, value: impl ToString) -> Self {
        self.entry(key, Yaml::Raw(value.to_string()))
    }

    /// Keeps only the keys `keep` accepts.
    pub(crate) fn retain(mut self, keep: impl Fn(&str) -> bool) -> Self {
        self.0.retain(|e| keep(&e.key));
        self
    }

    pub(crate) fn build(self) -> Yaml {
        Yaml::Map(self.0)
    }
}

/// `Yaml::Str` from anything string-like.
pub(crate) fn s(value: impl Into<String>) -> Yaml {
    Yaml::Str(value.into())
}

/// Renders `value` (a mapping) as a YAML document after the `header` comment lines.
pub(crate) fn document(header: &[String], value: &Yaml) -> String {
    let mut out = String::new();
    for line in header {
        comment(&mut out, 0, line);
    }
    match value {
        Yaml::Map(entries) => map(&mut out, 0, entries),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

fn comment(out: &mut String, indent: usize, text: &str) {
    for line in text.lines() {
        pad(out, indent);
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

fn map(out: &mut String, indent: usize, entries: &[Entry]) {
    for entry in entries {
        for c in &entry.comments {
            comment(out, indent, c);
        }
        pad(out, indent);
        let _ = write!(out, "{}:", key(&entry.key));
        value_after_key(out, indent, &entry.value);
    }
}

fn value_after_key(out: &mut String, indent: usize, value: &Yaml) {
    match value {
        Yaml::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            map(out, indent + 2, entries);
        }
        Yaml::Seq(items) if !items.is_empty() => {
            out.push('\n');
            seq(out, indent + 2, items);
        }
        Yaml::Block(text) => {
            out.push_str(" |-\n");
            for line in text.lines() {
                if !line.is_empty() {
                    pad(out, indent + 2);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, indent: usize, items: &[Yaml]) {
    for item in items {
        if let Yaml::Map(entries) = item
            && let Some(first) = entries.first()
        {
            for c in &first.comments {
                comment(out, indent, c);
            }
        }
        pad(out, indent);
        out.push_str("- ");
        match item {
            Yaml::Map(entries) if !entries.is_empty() => {
                // The first entry continues the `- ` line; the rest align with it.
                map_in_seq(out, indent + 2, entries);
            }
            Yaml::Seq(inner) if !inner.is_empty() => {
                out.push('\n');
                seq(out, indent + 2, inner);
            }
            Yaml::Block(text) => {
                out.push_str("|-\n");
                for line in text.lines() {
                    pad(out, indent + 2);
                    out.push_str(line);
                    out.push('\n');
                }
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn map_in_seq(out: &mut String, indent: usize, entries: &[Entry]) {
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            for c in &entry.comments {
                comment(out, indent, c);
            }
            pad(out, indent);
        }
        let _ = write!(out, "{}:", key(&entry.key));
        value_after_key(out, indent, &entry.value);
    }
}

fn inline(value: &Yaml) -> String {
    match value {
        Yaml::Str(text) => quote(text),
        Yaml::Raw(text) => text.clone(),
        Yaml::Block(text) => quote(text),
        Yaml::Map(entries) if entries.is_empty() => "{}".to_owned(),
        Yaml::Seq(items) if items.is_empty() => "[]".to_owned(),
        Yaml::Flow(items) => {
            let inner: Vec<String> = items.iter().map(|i| quote(i)).collect();
            format!("[{}]", inner.join(", "))
        }
        Yaml::Map(_) | Yaml::Seq(_) => String::new(),
    }
}

fn key(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'.' | b'-'))
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if plain { text.to_owned() } else { quote(text) }
}

/// Quotes a string: single quotes when it holds `"` or `\` and nothing that needs an escape,
/// JSON double quotes (valid YAML) otherwise.
pub(crate) fn quote(text: &str) -> String {
    let needs_escape = text.chars().any(|c| c.is_control());
    if !needs_escape && (text.contains('"') || text.contains('\\')) {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_and_sequences_render_with_two_space_indentation() {
        let doc = MapBuilder::new()
            .entry(
                "groups",
                Yaml::Seq(vec![
                    MapBuilder::new()
                        .str("name", "g")
                        .entry(
                            "rules",
                            Yaml::Seq(vec![
                                MapBuilder::new()
                                    .str("alert", "A")
                                    .commented(&["why"], "expr", Yaml::Block("up == 0".into()))
                                    .entry(
                                        "labels",
                                        MapBuilder::new().str("severity", "critical").build(),
                                    )
                                    .build(),
                            ]),
                        )
                        .build(),
                ]),
            )
            .entry("list", Yaml::Flow(vec!["a".into(), "b\"c".into()]))
            .build();
        let text = document(&["generated".to_owned()], &doc);
        assert_eq!(
            text,
            "# generated\ngroups:\n  - name: \"g\"\n    rules:\n      - alert: \"A\"\n        # why\n        expr: |-\n          up == 0\n        labels:\n          severity: \"critical\"\nlist: [\"a\", 'b\"c']\n"
        );
    }
}
