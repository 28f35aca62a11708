//! What omk checks to know the user's repository was not changed: a guard
//! of its refs, index, HEAD and worktrees' files, compared around work.

use super::*;

impl Repo {
    /// What an agent must not change in the user's repository: where HEAD
    /// points, the index, every ref but omk's own, and the working files.
    pub fn guard(&self) -> Result<Guard> {
        let repo = self.open()?;
        let head = repo.find_reference("HEAD")?;
        let head = match head.symbolic_target().ok().flatten() {
            Some(t) => format!("-> {t}"),
            None => head.target().map(|o| o.to_string()).unwrap_or_default(),
        };
        let index = std::fs::read(repo.path().join("index"))
            .map(|b| crate::files::fnv1a64(&b))
            .unwrap_or(0);
        let mut refs = std::collections::BTreeMap::new();
        for r in repo.references()?.flatten() {
            let (Ok(name), Some(target)) = (r.name(), r.target()) else {
                continue;
            };
            if !name.starts_with("refs/heads/omk/") {
                refs.insert(name.to_string(), target.to_string());
            }
        }
        let files = match repo.is_bare() {
            true => Marks::new(),
            false => worktree_marks(&self.root)?,
        };
        Ok(Guard {
            head,
            index,
            refs,
            files,
        })
    }
}

/// A snapshot of the user's HEAD, index, refs and working files (see
/// [`Repo::guard`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    head: String,
    index: u64,
    refs: std::collections::BTreeMap<String, String>,
    files: Marks,
}

/// The paths whose mark differs between `before` and `now`, sorted.
pub fn changed_marks(before: &Marks, now: &Marks) -> Vec<String> {
    let mut paths: Vec<String> = now
        .iter()
        .filter(|(p, m)| before.get(*p) != Some(m))
        .chain(before.iter().filter(|(p, _)| !now.contains_key(*p)))
        .map(|(p, _)| p.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The marks of the worktree at `dir` (see [`Marks`]). Reads only: the
/// index is not refreshed or written.
///
/// git's own `status` reads sparse checkouts and sparse indexes, which
/// libgit2 cannot; `GIT_OPTIONAL_LOCKS=0` (see [`git_at`]) keeps it from
/// refreshing the index.
pub(super) fn worktree_marks(dir: &Path) -> Result<Marks> {
    marks_of(dir, &git_at(dir, STATUS)?)
}

/// `git status` as [`Marks`] read it.
pub(super) const STATUS: &[&str] = &[
    "status",
    "--porcelain=v1",
    "-z",
    "--untracked-files=all",
    "--no-renames",
    "--ignore-submodules=all",
];

/// The marks of the worktree at `dir`, whose `git status` is `status`.
pub(super) fn marks_of(dir: &Path, status: &str) -> Result<Marks> {
    use std::os::unix::fs::MetadataExt;
    let mut marks = Marks::new();
    for entry in status.split('\0') {
        // `XY path`
        let Some(path) = entry.get(3..).filter(|p| !p.is_empty()) else {
            continue;
        };
        let mark = std::fs::symlink_metadata(dir.join(path)).ok().map(|m| {
            (
                m.len(),
                m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            )
        });
        marks.insert(path.to_string(), mark);
    }
    Ok(marks)
}

impl Guard {
    /// What differs in `now`, as evidence.
    pub fn changes(&self, now: &Guard) -> Vec<String> {
        let mut evidence = Vec::new();
        if self.head != now.head {
            evidence.push(format!("HEAD moved from {} to {}", self.head, now.head));
        }
        if self.index != now.index {
            evidence.push("the index changed".to_string());
        }
        for (name, target) in &now.refs {
            match self.refs.get(name) {
                None => evidence.push(format!("{name} was created at {target}")),
                Some(old) if old != target => {
                    evidence.push(format!("{name} moved from {old} to {target}"))
                }
                _ => {}
            }
        }
        for name in self.refs.keys().filter(|n| !now.refs.contains_key(*n)) {
            evidence.push(format!("{name} was deleted"));
        }
        for path in changed_marks(&self.files, &now.files) {
            evidence.push(format!("{path} was written in the checkout"));
        }
        evidence
    }
}
