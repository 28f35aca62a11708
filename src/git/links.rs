//! Symlinks in a commit that lead out of the repository or into `.git`.
//!
//! Each link's text alone says little: `a/l1 -> ..` stays inside, and so
//! does `a/l2 -> l1/..` read as text, but the kernel resolves `l1` first,
//! so `a/l2` is the repository's parent. Links are therefore resolved the
//! way the kernel would, through the other links of the same tree.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};

use super::Repo;
use crate::error::Result;

/// How many links one resolution follows before it gives up, as Linux does.
const MAX_HOPS: usize = 40;

impl Repo {
    /// The symlinks of `commit` that resolve outside the repository or to
    /// `.git` (or below it), each as `path -> target: why`, when the link or
    /// a link it resolves through is among `changed`.
    pub fn unsafe_links(&self, commit: &str, changed: &[String]) -> Result<Vec<String>> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree()?;
        let mut links = BTreeMap::new();
        let mut failed = None;
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.filemode() == 0o120000 && entry.kind() == Some(ObjectType::Blob) {
                let path = format!("{dir}{}", entry.name().unwrap_or_default());
                match repo.find_blob(entry.id()) {
                    Ok(blob) => {
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        links.insert(path, target);
                    }
                    Err(e) => {
                        failed = Some(e);
                        return TreeWalkResult::Abort;
                    }
                }
            }
            TreeWalkResult::Ok
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let changed: BTreeSet<&str> = changed.iter().map(String::as_str).collect();
        Ok(judge(&links, &changed))
    }
}

/// Where resolving a link ends.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// Somewhere in the repository (which need not exist).
    Inside,
    /// Above the repository's root, or at an absolute path.
    Outside,
    /// At `.git` or below it.
    GitDir,
    /// A cycle, or more hops than the kernel follows: it resolves nowhere.
    Loop,
}

/// The unsafe links of a tree's `links` (path to target) that `changed`
/// touches, described.
fn judge(links: &BTreeMap<String, String>, changed: &BTreeSet<&str>) -> Vec<String> {
    let mut found = Vec::new();
    for (path, target) in links {
        let (resolved, via) = resolve(links, path);
        let ours = changed.contains(path.as_str()) || via.iter().any(|v| changed.contains(v));
        let why = match resolved {
            Resolved::Outside => "resolves outside the repository",
            Resolved::GitDir => "resolves into .git",
            Resolved::Inside | Resolved::Loop => continue,
        };
        if ours {
            found.push(format!("{path} -> {target}: {why}"));
        }
    }
    found
}

/// Resolves the link at `link` through `links`, as the kernel would, and
/// says where it ends and which links it went through.
fn resolve<'a>(links: &'a BTreeMap<String, String>, link: &str) -> (Resolved, Vec<&'a str>) {
    let mut at: Vec<&str> = Path::new(link)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("")
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    let mut via = Vec::new();
    let Some(first) = links.get(link) else {
        return (Resolved::Inside, via);
    };
    let mut todo: VecDeque<&str> = VecDeque::new();
    if !push_target(&mut todo, first) {
        return (Resolved::Outside, via);
    }
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        match part {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return (Resolved::Outside, via);
                }
            }
            name if name.eq_ignore_ascii_case(".git") => return (Resolved::GitDir, via),
            name => {
                at.push(name);
                let here = at.join("/");
                if let Some((path, target)) = links.get_key_value(here.as_str()) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return (Resolved::Loop, via);
                    }
                    via.push(path.as_str());
                    at.pop();
                    if !push_target(&mut todo, target) {
                        return (Resolved::Outside, via);
                    }
                }
            }
        }
    }
    (Resolved::Inside, via)
}

/// Puts `target`'s components in front of what is left to resolve; false
/// for an absolute target, which leaves the repository at once.
fn push_target<'a>(todo: &mut VecDeque<&'a str>, target: &'a str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    for part in target.split('/').rev() {
        todo.push_front(part);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    fn where_(pairs: &[(&str, &str)], link: &str) -> Resolved {
        resolve(&links(pairs), link).0
    }

    #[test]
    fn links_are_resolved_through_each_other() {
        assert_eq!(where_(&[("a/l", "../b")], "a/l"), Resolved::Inside);
        assert_eq!(where_(&[("l", "..")], "l"), Resolved::Outside);
        assert_eq!(where_(&[("l", "/etc/passwd")], "l"), Resolved::Outside);
        // Each alone stays inside; together the second climbs out.
        let chain = [("a/l1", ".."), ("a/l2", "l1/..")];
        assert_eq!(where_(&chain, "a/l1"), Resolved::Inside);
        assert_eq!(where_(&chain, "a/l2"), Resolved::Outside);
        let chain = [("l1", "."), ("l2", "l1/../..")];
        assert_eq!(where_(&chain, "l2"), Resolved::Outside);
        // Into the git directory, directly or through another link.
        assert_eq!(where_(&[("h", ".git/hooks")], "h"), Resolved::GitDir);
        let via = [("x/up", "../.."), ("x/hooks", "up/.git/hooks")];
        assert_eq!(where_(&via, "x/hooks"), Resolved::Outside);
        let via = [("x/up", ".."), ("x/hooks", "up/.GIT/hooks")];
        assert_eq!(where_(&via, "x/hooks"), Resolved::GitDir);
        // A cycle resolves nowhere, and ends.
        assert_eq!(where_(&[("a", "b"), ("b", "a")], "a"), Resolved::Loop);
    }

    #[test]
    fn only_links_the_change_touches_are_reported() {
        let tree = links(&[("old", ".."), ("a/l1", ".."), ("a/l2", "l1/..")]);
        // `old` escapes but was there before; `a/l2` escapes through the new `a/l1`.
        let changed: BTreeSet<&str> = ["a/l1"].into();
        assert_eq!(
            judge(&tree, &changed),
            ["a/l2 -> l1/..: resolves outside the repository"]
        );
        assert!(judge(&tree, &BTreeSet::new()).is_empty());
    }
}
