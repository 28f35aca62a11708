//! What a planner is told about the repository, computed from the base
//! commit's tree in one pass and bounded so it fits in a prompt.

use std::collections::BTreeMap;
use std::fmt::Write;

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};

use crate::error::Result;
use crate::git::Repo;

/// How many directories the summary lists at most.
const MAX_DIRS: usize = 120;
/// How deep directories are summarised.
const MAX_DEPTH: usize = 3;

/// Files known to mark builds, tests and workspaces.
const BUILD_FILES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "go.mod",
    "pyproject.toml",
    "setup.py",
    "Makefile",
    "CMakeLists.txt",
    "pom.xml",
    "build.gradle",
];

/// The tracked files of a commit, and what they say about the repository.
#[derive(Debug, Clone, Default)]
pub struct RepoContext {
    /// Every tracked path with its size, sorted.
    pub files: Vec<(String, u64)>,
}

#[derive(Default)]
struct DirStats {
    files: u64,
    bytes: u64,
    langs: BTreeMap<&'static str, u64>,
}

impl RepoContext {
    /// Reads the tree of `commit`.
    pub fn load(repo: &Repo, commit: &str) -> Result<RepoContext> {
        let git = repo.open()?;
        let tree = git.find_commit(Oid::from_str(commit)?)?.tree()?;
        let odb = git.odb()?;
        let mut files = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let size = odb
                    .read_header(entry.id())
                    .map(|(s, _)| s as u64)
                    .unwrap_or(0);
                files.push((format!("{dir}{}", entry.name().unwrap_or("")), size));
            }
            TreeWalkResult::Ok
        })?;
        files.sort();
        Ok(RepoContext { files })
    }

    /// Whether a directory holds tracked files (`""` is the root).
    pub fn has_dir(&self, dir: &str) -> bool {
        if dir.is_empty() {
            return true;
        }
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let i = self
            .files
            .partition_point(|(p, _)| p.as_str() < prefix.as_str());
        self.files
            .get(i)
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    /// The summary given to planning agents.
    pub fn summary(&self, gates: &[String]) -> String {
        let mut dirs: BTreeMap<String, DirStats> = BTreeMap::new();
        let mut langs: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut build = Vec::new();
        let mut tests = BTreeMap::new();
        let mut total = 0u64;
        for (path, size) in &self.files {
            total += size;
            let lang = language(path);
            if let Some(l) = lang {
                *langs.entry(l).or_default() += 1;
            }
            let parts: Vec<&str> = path.split('/').collect();
            let name = parts[parts.len() - 1];
            if BUILD_FILES.contains(&name) {
                build.push(path.clone());
            }
            if let Some(i) = parts
                .iter()
                .position(|p| matches!(*p, "test" | "tests" | "spec" | "__tests__"))
            {
                *tests.entry(parts[..=i].join("/")).or_insert(0u64) += 1;
            }
            for depth in 1..parts.len().min(MAX_DEPTH + 1) {
                let d = dirs.entry(parts[..depth].join("/")).or_default();
                d.files += 1;
                d.bytes += size;
                if let Some(l) = lang {
                    *d.langs.entry(l).or_default() += 1;
                }
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Tracked files: {} ({} bytes).",
            self.files.len(),
            total
        );
        let _ = writeln!(out, "Languages by file count: {}.", ranked(&langs, 8));
        // The biggest directories first, then by name, up to the bound.
        let mut listed: Vec<(&String, &DirStats)> = dirs.iter().collect();
        listed.sort_by(|a, b| b.1.files.cmp(&a.1.files).then(a.0.cmp(b.0)));
        listed.truncate(MAX_DIRS);
        listed.sort_by(|a, b| a.0.cmp(b.0));
        let _ = writeln!(
            out,
            "Directories (files, bytes, languages), up to depth {MAX_DEPTH}:"
        );
        for (d, s) in &listed {
            let _ = writeln!(
                out,
                "  {d}/  {} files, {} bytes{}",
                s.files,
                s.bytes,
                if s.langs.is_empty() {
                    String::new()
                } else {
                    format!(", {}", ranked(&s.langs, 3))
                }
            );
        }
        if dirs.len() > listed.len() {
            let _ = writeln!(
                out,
                "  … {} smaller directories not listed",
                dirs.len() - listed.len()
            );
        }
        let _ = writeln!(out, "Build files: {}.", list(&build, 40));
        let test_dirs: Vec<String> = tests.iter().map(|(d, n)| format!("{d}/ ({n})")).collect();
        let _ = writeln!(out, "Test directories: {}.", list(&test_dirs, 40));
        let members = self.workspace_members();
        if !members.is_empty() {
            let _ = writeln!(out, "Workspace members: {}.", list(&members, 60));
        }
        let _ = writeln!(
            out,
            "Gates that will judge the work: {}.",
            if gates.is_empty() {
                "none".into()
            } else {
                gates.join(", ")
            }
        );
        out
    }

    /// Cargo workspace members, npm workspaces and Go modules: the directories
    /// that hold a manifest below the root.
    pub fn workspace_members(&self) -> Vec<String> {
        let mut members: Vec<String> = self
            .files
            .iter()
            .filter_map(|(p, _)| {
                let (dir, name) = p.rsplit_once('/')?;
                matches!(name, "Cargo.toml" | "package.json" | "go.mod").then(|| dir.to_string())
            })
            .collect();
        members.dedup();
        members
    }
}

fn language(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "rs" => "Rust",
        "py" => "Python",
        "go" => "Go",
        "ts" | "tsx" => "TypeScript",
        "js" | "jsx" | "mjs" => "JavaScript",
        "java" => "Java",
        "kt" => "Kotlin",
        "c" | "h" => "C",
        "cc" | "cpp" | "hpp" => "C++",
        "rb" => "Ruby",
        "sh" => "Shell",
        "md" => "Markdown",
        "toml" | "yaml" | "yml" | "json" => "Config",
        _ => return None,
    })
}

fn ranked(counts: &BTreeMap<&'static str, u64>, n: usize) -> String {
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = v.iter().take(n).map(|(l, c)| format!("{l} {c}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn list(items: &[String], n: usize) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s += &format!(", … {} more", items.len() - n);
    }
    s
}
