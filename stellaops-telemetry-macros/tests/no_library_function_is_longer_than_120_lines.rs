//! Every function on the library paths of the three crates (free functions, nested functions,
//! impl and trait methods) fits in 120 lines, counted from the signature's first line to the
//! closing brace. Unit-test modules (`#[cfg(test)]`, files named `tests.rs` or `*_tests.rs`) are
//! not library paths. The only exceptions are declarative tables, listed below by file and name;
//! an exception that no longer names a long function fails the test too, so the list cannot go
//! stale.

use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// The longest a library function may be, in lines.
const LIMIT: usize = 120;

/// The source trees checked, relative to the workspace root.
const TREES: [&str; 3] = [
    "stellaops-telemetry-core/src",
    "stellaops-telemetry-tower/src",
    "stellaops-telemetry-macros/src",
];

/// (file relative to the workspace root, function name, why it may be long).
const EXCEPTIONS: [(&str, &str, &str); 2] = [
    (
        "stellaops-telemetry-core/src/artefacts/alerts.rs",
        "table",
        "the alert rules: one declarative entry per alert, read as a table",
    ),
    (
        "stellaops-telemetry-core/src/artefacts/dashboards.rs",
        "table",
        "the dashboards: one declarative entry per panel, read as a table",
    ),
];

/// One function found in a source file.
struct Function {
    file: String,
    line: usize,
    name: String,
    lines: usize,
}

/// Collects every function with a body, skipping items under `#[cfg(test)]`.
struct Collector<'a> {
    file: &'a str,
    found: Vec<Function>,
}

impl Collector<'_> {
    fn record(&mut self, vis: Option<&syn::Visibility>, sig: &syn::Signature, block: &syn::Block) {
        let mut start = sig.span().start().line;
        if let Some(vis) = vis.filter(|vis| !matches!(vis, syn::Visibility::Inherited)) {
            start = start.min(vis.span().start().line);
        }
        let end = block.brace_token.span.close().end().line;
        self.found.push(Function {
            file: self.file.to_owned(),
            line: start,
            name: sig.ident.to_string(),
            lines: end + 1 - start,
        });
    }
}

/// Whether the attributes carry exactly `#[cfg(test)]`.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string() == "test")
    })
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test_only(&item.attrs) {
            visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if is_test_only(&item.attrs) {
            return;
        }
        self.record(Some(&item.vis), &item.sig, &item.block);
        visit::visit_item_fn(self, item);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_test_only(&item.attrs) {
            visit::visit_item_impl(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if is_test_only(&item.attrs) {
            return;
        }
        self.record(Some(&item.vis), &item.sig, &item.block);
        visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if is_test_only(&item.attrs) {
            return;
        }
        if let Some(block) = &item.default {
            self.record(None, &item.sig, block);
        }
        visit::visit_trait_item_fn(self, item);
    }
}

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Every `.rs` file under `dir`, sorted, leaving out unit-test files; a directory that cannot
/// be listed is a problem.
fn library_sources(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    let listed = std::fs::read_dir(dir).and_then(|entries| {
        entries
            .map(|entry| entry.map(|entry| entry.path()))
            .collect()
    });
    let mut entries: Vec<PathBuf> = match listed {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(format!("{}: cannot list: {err}", dir.display()));
            return;
        }
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            library_sources(&path, out, problems);
            continue;
        }
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let is_unit_test = name == "tests.rs" || name.ends_with("_tests.rs");
        if name.ends_with(".rs") && !is_unit_test {
            out.push(path);
        }
    }
}

#[test]
fn no_library_function_is_longer_than_120_lines() {
    let root = workspace_root();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for tree in TREES {
        library_sources(&root.join(tree), &mut files, &mut problems);
    }
    assert!(
        !files.is_empty(),
        "no library sources found under {}",
        root.display()
    );

    let mut long = Vec::new();
    for path in &files {
        let relative = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(err) => {
                problems.push(format!("{relative}: cannot read: {err}"));
                continue;
            }
        };
        let parsed = match syn::parse_file(&source) {
            Ok(parsed) => parsed,
            Err(err) => {
                let at = err.span().start();
                problems.push(format!(
                    "{relative}:{}:{}: does not parse: {err}",
                    at.line,
                    at.column + 1
                ));
                continue;
            }
        };
        let mut collector = Collector {
            file: &relative,
            found: Vec::new(),
        };
        collector.visit_file(&parsed);
        // Line numbers come from proc-macro2's span-locations; without it every line reads 0.
        assert!(
            collector.found.iter().all(|function| function.line > 0),
            "{relative}: functions read at line 0; proc-macro2's span-locations feature is off"
        );
        long.extend(
            collector
                .found
                .into_iter()
                .filter(|function| function.lines > LIMIT),
        );
    }

    for function in &long {
        let excepted = EXCEPTIONS
            .iter()
            .any(|(file, name, _)| *file == function.file && *name == function.name);
        if !excepted {
            problems.push(format!(
                "{}:{} {} ({} lines)",
                function.file, function.line, function.name, function.lines
            ));
        }
    }
    for (file, name, reason) in EXCEPTIONS {
        let still_long = long
            .iter()
            .any(|function| function.file == file && function.name == name);
        if !still_long {
            problems.push(format!(
                "{file} {name}: listed as an exception ({reason}) but no such function is longer \
                 than {LIMIT} lines; remove it from the list"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "library functions over {LIMIT} lines (split them into named steps), unparsable files or stale exceptions:\n{}",
        problems.join("\n")
    );
}
