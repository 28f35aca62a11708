//! The map of `src/` stays readable: no file over 650 lines, no function
//! over 125, and no import cycle between files (a file's imports are the
//! `crate::…` and `super::…` paths it names outside comments).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MAX_FILE_LINES: usize = 650;
const MAX_FN_LINES: usize = 125;

/// Every source file of `src/`, by its path below `src/`, with its text.
fn sources() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    crate::walk(&src)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn no_source_file_is_over_650_lines_and_no_function_over_125() {
    let mut long = Vec::new();
    for (file, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            long.push(format!("{file}: {} lines", lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            let is_fn = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
            ]
            .iter()
            .chain(&[
                "pub(super) fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
            ])
            .any(|p| body.starts_with(p));
            if !is_fn || line.trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let end = lines[i..]
                .iter()
                .position(|l| l.trim_end() == close)
                .unwrap_or(0);
            if end + 1 > MAX_FN_LINES {
                long.push(format!("{file}:{}: a function of {} lines", i + 1, end + 1));
            }
        }
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
}

/// The module path a file is (`git/mod.rs` → `git`, `git/slot.rs` → `git::slot`).
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The files each file imports from.
fn imports(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> =
        files.keys().map(|f| (module_of(f), f.clone())).collect();
    // The file a path names: its longest prefix that is a module.
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).cloned())
    };
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| p.starts_with(|c: char| c.is_ascii_lowercase() || c == '_'))
            .collect()
    };
    let mut graph = BTreeMap::new();
    for (file, text) in files {
        let me = module_of(file);
        let parent = &me[..me.len().saturating_sub(1)];
        let mut deps = BTreeSet::new();
        // Unit tests may reach anywhere; the map is the code's.
        let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (anchor, base) in [("crate::", &[][..]), ("super::", parent)] {
                let mut rest = line;
                while let Some(at) = rest.find(anchor) {
                    rest = &rest[at + anchor.len()..];
                    // `use crate::{a, b::c}` names several.
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                        None => vec![rest],
                    };
                    for name in names {
                        let path: Vec<String> =
                            base.iter().cloned().chain(ident(name.trim())).collect();
                        if let Some(target) = resolve(&path).filter(|t| t != file) {
                            deps.insert(target);
                        }
                    }
                }
            }
        }
        graph.insert(file.clone(), deps);
    }
    graph
}

#[test]
fn no_import_cycle_between_files_of_src() {
    let files: BTreeMap<String, String> = sources()
        .into_iter()
        .filter(|(f, _)| !f.ends_with("tests.rs") && !f.contains("/tests/"))
        .collect();
    let graph = imports(&files);
    // Depth-first search; a back edge is a cycle, shown as its files.
    fn visit(
        at: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == at) {
            cycles.push(path[i..].join(" → ") + " → " + at);
            return;
        }
        if !done.insert(at.to_string()) {
            return;
        }
        path.push(at.to_string());
        for next in graph.get(at).into_iter().flatten() {
            visit(next, graph, path, done, cycles);
        }
        path.pop();
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for file in graph.keys() {
        visit(file, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    // The check sees imports at all: the supervisor drives the gate actor.
    let supervisor = &graph["actors/supervisor/mod.rs"];
    assert!(supervisor.contains("actors/gate/mod.rs"), "{supervisor:?}");
}
