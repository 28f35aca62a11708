//! Reading history: parents, messages, changed files, diffs, bundles.

use super::*;

impl Repo {
    /// The parents of a commit, in order.
    pub fn parents(&self, commit: &str) -> Result<Vec<String>> {
        let repo = self.open()?;
        let c = repo.find_commit(Oid::from_str(commit)?)?;
        let parents = c.parent_ids().map(|p| p.to_string()).collect();
        Ok(parents)
    }

    /// A commit's full message.
    pub fn commit_message(&self, commit: &str) -> Result<String> {
        let repo = self.open()?;
        let c = repo.find_commit(Oid::from_str(commit)?)?;
        let message = String::from_utf8_lossy(c.message_bytes()).into_owned();
        Ok(message)
    }

    /// Every path that differs between two commits, sorted.
    pub fn changed_files(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let repo = self.open()?;
        let a = repo.find_commit(Oid::from_str(from)?)?.tree()?;
        let b = repo.find_commit(Oid::from_str(to)?)?.tree()?;
        changed_between(&repo, &a, &b)
    }

    /// Every file path in `commit`, sorted. `ls-tree` lists 100k paths
    /// faster than a tree walk through git2.
    pub fn tracked_files(&self, commit: &str) -> Result<Vec<String>> {
        let listing = self.git(&["ls-tree", "-r", "--name-only", "-z", commit])?;
        Ok(listing
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Lines added and removed between two commits.
    pub fn diff_stat(&self, from: &str, to: &str) -> Result<(usize, usize)> {
        let repo = self.open()?;
        let a = repo.find_commit(Oid::from_str(from)?)?.tree()?;
        let b = repo.find_commit(Oid::from_str(to)?)?.tree()?;
        let stats = repo.diff_tree_to_tree(Some(&a), Some(&b), None)?.stats()?;
        Ok((stats.insertions(), stats.deletions()))
    }

    /// The patch from `from` to `to` as `git diff` prints it, or `None` when
    /// it is longer than `limit` bytes. git2, not git: no diff driver or
    /// setting of the repository's config runs or changes it.
    pub fn diff_patch(&self, from: &str, to: &str, limit: usize) -> Result<Option<String>> {
        let repo = self.open()?;
        let a = repo.find_commit(Oid::from_str(from)?)?.tree()?;
        let b = repo.find_commit(Oid::from_str(to)?)?.tree()?;
        let diff = repo.diff_tree_to_tree(Some(&a), Some(&b), None)?;
        let mut out = Vec::new();
        let printed = diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                out.push(line.origin() as u8);
            }
            out.extend_from_slice(line.content());
            out.len() <= limit
        });
        match printed {
            Ok(()) => Ok(Some(String::from_utf8_lossy(&out).into_owned())),
            Err(_) if out.len() > limit => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `revs` (refs to carry, `^commit`s the reader already has) to
    /// the bundle file `path`: how commits travel to and from a cluster's
    /// workers through shared storage. git, not git2, which cannot write
    /// bundles.
    pub fn bundle_create(&self, path: &Path, revs: &[&str]) -> Result<()> {
        let p = path.to_string_lossy();
        let mut args = vec!["bundle", "create", "--quiet", p.as_ref()];
        args.extend_from_slice(revs);
        self.git(&args).map(drop)
    }

    /// Fetches from the bundle file `path` by `refspec` (`src:dst`), never
    /// forced: a `dst` that would not fast-forward is refused.
    pub fn fetch_bundle(&self, path: &Path, refspec: &str) -> Result<()> {
        let p = path.to_string_lossy();
        self.git(&["fetch", "--quiet", "--no-tags", p.as_ref(), refspec])
            .map(drop)
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, commit: &str) -> Result<bool> {
        let repo = self.open()?;
        let (a, c) = (Oid::from_str(ancestor)?, Oid::from_str(commit)?);
        Ok(a == c || repo.graph_descendant_of(c, a)?)
    }
}

/// Every path that differs between two trees (both sides of renames), sorted.
pub(super) fn changed_between(
    repo: &Repository,
    a: &git2::Tree,
    b: &git2::Tree,
) -> Result<Vec<String>> {
    let diff = repo.diff_tree_to_tree(Some(a), Some(b), None)?;
    let mut changed: Vec<String> = diff
        .deltas()
        .flat_map(|d| [d.old_file().path(), d.new_file().path()])
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    changed.sort();
    changed.dedup();
    Ok(changed)
}
