//! Merging in the object database: `merge-tree`, a commit object, no
//! checkout and no ref. [`Repo::merge_slice`] is the one merge step of omk,
//! used by the integrator and by `replay --verify`.

use git2::Oid;

use super::{command_error, signature, Repo};
use crate::error::Result;

/// The result of merging two commits in the object database.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// The merged tree.
    Clean(String),
    /// The paths that conflict, sorted.
    Conflict(Vec<String>),
}

/// A slice merged onto a commit ([`Repo::merge_slice`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    /// The merge commit and its tree.
    Commit { commit: String, tree: String },
    /// The paths that conflict, sorted.
    Conflict(Vec<String>),
}

impl Repo {
    /// Whether `commit` reaches `ancestor` through single-parent commits
    /// only: then `ancestor` is the merge base of `commit` and any commit
    /// that contains `ancestor`, and a merge need not search for one.
    fn descends_linearly(&self, commit: &str, ancestor: &str) -> Result<bool> {
        let repo = self.open()?;
        let ancestor = Oid::from_str(ancestor)?;
        let mut at = repo.find_commit(Oid::from_str(commit)?)?;
        // An agent rarely commits more than a few times; past this, search.
        for _ in 0..1000 {
            if at.id() == ancestor {
                return Ok(true);
            }
            if at.parent_count() != 1 {
                return Ok(false);
            }
            at = at.parent(0)?;
        }
        Ok(false)
    }

    /// Merges `theirs` into `ours` in the object database.
    ///
    /// `start`, the commit `theirs` was made from, is an ancestor of `ours`;
    /// when `theirs` reaches it through single-parent commits it is their
    /// merge base and is passed as such. Otherwise git finds one, walking the
    /// history of both: O(commits) on a long-running integration branch.
    pub fn merge_tree(&self, ours: &str, theirs: &str, start: Option<&str>) -> Result<Merge> {
        let base = match start {
            Some(s) if self.descends_linearly(theirs, s)? => Some(s),
            _ => None,
        };
        let base_arg = base.map(|b| format!("--merge-base={b}"));
        let mut args = vec!["merge-tree", "--write-tree", "--name-only", "--no-messages"];
        args.extend(base_arg.as_deref());
        args.extend([ours, theirs]);
        let out = self.git_output(&args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let tree = lines.next().unwrap_or_default().trim().to_string();
        match out.status.code() {
            Some(0) => Ok(Merge::Clean(tree)),
            Some(1) => {
                let mut paths: Vec<String> = lines
                    .take_while(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                paths.sort();
                paths.dedup();
                Ok(Merge::Conflict(paths))
            }
            _ => Err(command_error(&args, &out)),
        }
    }

    /// The one merge step of omk, used by the integrator and by `replay
    /// --verify`: merges `slice_commit` (made from `start`) onto `onto` and
    /// writes the merge commit, touching no ref.
    pub fn merge_slice(
        &self,
        onto: &str,
        slice_commit: &str,
        start: Option<&str>,
        message: &str,
    ) -> Result<Merged> {
        Ok(match self.merge_tree(onto, slice_commit, start)? {
            Merge::Clean(tree) => Merged::Commit {
                commit: self.commit_tree(&tree, &[onto, slice_commit], message)?,
                tree,
            },
            Merge::Conflict(paths) => Merged::Conflict(paths),
        })
    }

    /// Writes a merge commit of `tree` with `parents`; touches no ref.
    pub fn commit_tree(&self, tree: &str, parents: &[&str], message: &str) -> Result<String> {
        self.commit_tree_by(tree, parents, message, None)
    }

    /// [`Repo::commit_tree`], authored and committed by `author` (`Name
    /// <email>`) when given, else as the repository is configured.
    pub fn commit_tree_by(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
        author: Option<&str>,
    ) -> Result<String> {
        let repo = self.open()?;
        let sig = match author.and_then(super::parse_author) {
            Some((name, email)) => git2::Signature::now(&name, &email)?,
            None => signature(&repo)?,
        };
        let tree = repo.find_tree(Oid::from_str(tree)?)?;
        let parents = parents
            .iter()
            .map(|p| Ok(repo.find_commit(Oid::from_str(p)?)?))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        Ok(repo
            .commit(None, &sig, &sig, message, &tree, &refs)?
            .to_string())
    }
}
