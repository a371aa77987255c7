//! The structure stays as designed: every module of `src/` sits in one layer
//! (the order `src/lib.rs` lists them in), imports only from layers below its
//! own, and no two files import each other, directly or round a circle. Reads
//! the source as text: `crate::…` paths and `super::…` paths outside test
//! modules and comments are the imports. Run it alone with
//! `cargo test --test layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom; modules on one line are peers and must not import each other.
const LAYERS: &[&[&str]] = &[
    &["main", "lib"],
    &["cli"],
    &["demo"],
    &["app"],
    &["api"],
    &["server"],
    &["agent"],
    &["check", "telemetry"],
    &["runtime", "repo"],
    &["config", "latch", "diff"],
    &["canon"],
    &["report", "shard", "text", "time"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `.rs` file under `src/`, as its module path (`agent/mod.rs` → `agent`,
/// `check/verdict.rs` → `check::verdict`).
fn source_files(root: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") && parts.len() > 1 {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The source without its test modules (`#[cfg(test)] mod … { … }` to its
/// closing brace, and `#[cfg(test)] mod name;` files, which are tests whole).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find(['{', ';']) else {
            break;
        };
        if after.as_bytes()[open] == b';' {
            rest = &after[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The module paths `text` names after `prefix` (`crate::` or `super::`).
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        found.push(segments.clone());
        // A `use crate::a::{b, c::d}` group: each member is a path too.
        if rest[end..].starts_with('{') {
            let group_end = rest[end..].find('}').map_or(rest.len(), |i| end + i);
            let base = segments;
            for member in rest[end + 1..group_end].split(',') {
                let member = member.trim();
                let mut path = base.clone();
                path.extend(member.split("::").map(str::trim).filter(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                }));
                found.push(path);
            }
        }
    }
    found
}

/// The longest prefix of `path` that is a file's module.
fn file_of(path: &[&str], files: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| files.contains_key(m))
}

/// The source without comment lines: a doc link names a module, it does not
/// import it.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn imports(files: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, path) in files {
        let text = without_comments(&without_tests(&std::fs::read_to_string(path).unwrap()));
        let mut targets = BTreeSet::new();
        for p in paths_after(&text, "crate::") {
            if let Some(target) = file_of(&p, files) {
                targets.insert(target);
            }
        }
        // `super::` is the parent module: of a `mod.rs`, the folder's parent.
        let own: Vec<&str> = module.split("::").collect();
        let is_folder = path.ends_with("mod.rs");
        let parent: Vec<&str> = if is_folder {
            own[..own.len().saturating_sub(1)].to_vec()
        } else {
            own[..own.len() - 1].to_vec()
        };
        for p in paths_after(&text, "super::") {
            let mut full = parent.clone();
            full.extend(p);
            if let Some(target) = file_of(&full, files) {
                targets.insert(target);
            }
        }
        targets.remove(module);
        graph.insert(module.clone(), targets);
    }
    graph
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_has_a_layer_and_lib_lists_them_in_layer_order() {
    let files = source_files(&src());
    let tops: BTreeSet<&str> = files
        .keys()
        .map(|m| m.split("::").next().unwrap())
        .collect();
    let unplaced: Vec<&&str> = tops.iter().filter(|t| layer_of(t).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in tests/layers.rs: {unplaced:?}"
    );
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let listed: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(listed.len() > 10, "lib.rs lists {listed:?}");
    let layers: Vec<usize> = listed.iter().map(|m| layer_of(m).unwrap()).collect();
    assert!(
        layers.windows(2).all(|w| w[0] <= w[1]),
        "lib.rs must list the modules top layer first: {listed:?}"
    );
}

#[test]
fn no_module_imports_one_above_its_layer() {
    let files = source_files(&src());
    let graph = imports(&files);
    assert!(graph.len() > 50, "read {} files", graph.len());
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        let from_top = from.split("::").next().unwrap();
        for to in targets {
            let to_top = to.split("::").next().unwrap();
            if from_top == to_top {
                continue;
            }
            let (Some(a), Some(b)) = (layer_of(from_top), layer_of(to_top)) else {
                continue;
            };
            if b <= a {
                upward.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports of a module in the same or a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_file_imports_round_a_circle() {
    let files = source_files(&src());
    let graph = imports(&files);
    // Depth-first search for a back edge; reports the first circle found.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut circle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            // A folder's `mod.rs` declares and re-exports its files: that edge
            // is the folder's shape, not an import.
            if next.starts_with(&format!("{node}::")) {
                continue;
            }
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("files import each other: {}", circle.join(" → "));
        }
    }
}
