//! Everything omk asks of git, in one place.
//!
//! Objects, refs, commits and diffs go through git2. What touches a
//! worktree's files or merges shells out to the `git` binary, which does it
//! better:
//! - `merge-tree --write-tree` merges two commits inside the object database
//!   in ~3 ms at any repository size; git2's `merge_commits` builds a full
//!   index and costs ~180 ms on 100k files.
//! - `worktree add --detach` / `--no-checkout`: git2 can only add a worktree
//!   on a branch with a full checkout.
//! - `checkout --force` + `clean`, `add --all` + `write-tree`, `status`:
//!   git's index-aware versions are 4-5x faster than libgit2's on 100k files,
//!   and libgit2 reads neither sparse checkouts (`sparse-checkout`, used for
//!   `--sparse` slots) nor sparse indexes.
//!
//! Every method is synchronous; actors call them from `spawn_blocking`.
//! omk's own worktrees are untrusted: see [`Slot`].

pub mod conventions;
mod guard;
mod history;
mod links;
mod merge;
mod remote;
mod slot;
mod worktrees;

pub use merge::{Merge, Merged};
pub use remote::{PushStatus, Pushed};

use guard::worktree_marks;
pub use guard::{changed_marks, Guard};
pub use slot::Slot;

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository, Signature};

use crate::error::{Error, Result};

/// A repository omk works on.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The top of the user's working tree.
    pub root: PathBuf,
    /// The git directory shared by all of its worktrees.
    pub common_dir: PathBuf,
}

/// A commit made from what an agent left in its worktree.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The slice's result commit.
    pub commit: String,
    /// Its tree.
    pub tree: String,
    /// Every path that differs from the start commit, sorted.
    pub changed_files: Vec<String>,
}

/// What `git status` shows of a worktree: every modified, deleted or
/// untracked (not ignored) path, with its size and modification time. Marks
/// taken at two moments differ when something wrote in the worktree between
/// them; a clean worktree has none.
pub type Marks = std::collections::BTreeMap<String, Option<(u64, i128)>>;

impl Repo {
    /// Finds the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<Repo> {
        let repo =
            Repository::discover(dir).map_err(|_| Error::NotARepository(dir.to_path_buf()))?;
        let root = repo.workdir().ok_or_else(|| {
            Error::Usage(format!(
                "{} is a bare repository; omk needs a working tree",
                dir.display()
            ))
        })?;
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let common_dir = repo
            .commondir()
            .canonicalize()
            .unwrap_or_else(|_| repo.commondir().to_path_buf());
        // No agent or gate this process starts sees the checkout; its
        // slots need the git directory.
        crate::sandbox::view::hide_checkout(&root, &common_dir);
        Ok(Repo { root, common_dir })
    }

    /// Makes an empty repository at `dir` (a worker's scratch copy).
    pub fn init(dir: &Path) -> Result<Repo> {
        Repository::init(dir)?;
        Repo::discover(dir)
    }

    /// Opens the repository with git2.
    pub fn open(&self) -> Result<Repository> {
        Ok(Repository::open(&self.root)?)
    }

    /// Resolves `rev` to a commit id.
    pub fn resolve_commit(&self, rev: &str) -> Result<String> {
        let repo = self.open()?;
        if rev == "HEAD" && repo.head().is_err() {
            return Err(Error::NoCommits(self.root.clone()));
        }
        let unknown = || Error::UnknownRev {
            rev: rev.to_string(),
            repo: self.root.clone(),
        };
        let object = repo.revparse_single(rev).map_err(|_| unknown())?;
        let commit = object.peel_to_commit().map_err(|_| unknown())?;
        Ok(commit.id().to_string())
    }

    /// The full branch name `rev` refers to, when it is a branch (or `HEAD` on one).
    pub fn branch_of(&self, rev: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let name = if rev == "HEAD" {
            repo.find_reference("HEAD")?
                .symbolic_target()?
                .map(str::to_string)
        } else {
            repo.find_branch(rev, git2::BranchType::Local)
                .ok()
                .and_then(|b| b.get().name().ok().map(str::to_string))
        };
        Ok(name.filter(|n| n.starts_with("refs/heads/")))
    }

    /// Whether the user's checkout has uncommitted changes (ignored files aside).
    pub fn has_uncommitted_changes(&self) -> Result<bool> {
        Ok(!worktree_marks(&self.root)?.is_empty())
    }

    /// The text of the file at `path` in `commit`, if it has one.
    pub fn file_at(&self, commit: &str, path: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        let Ok(blob) = repo.find_blob(entry.id()) else {
            return Ok(None);
        };
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// The id of what `commit`'s tree holds at `path` (a blob or a tree),
    /// if anything.
    pub fn entry_id(&self, commit: &str, path: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree()?;
        Ok(tree
            .get_path(Path::new(path))
            .ok()
            .map(|e| e.id().to_string()))
    }

    /// The tree of a commit.
    pub fn tree_of(&self, commit: &str) -> Result<String> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree_id();
        Ok(tree.to_string())
    }

    /// The bytes of every file in `commit`'s tree: what a full checkout writes.
    ///
    /// git's `ls-tree -l` reads the sizes 4x faster than a walk through git2
    /// (160 ms against 700 ms on 100k files).
    pub fn checkout_bytes(&self, commit: &str) -> Result<u64> {
        let listing = self.git(&["ls-tree", "-r", "-l", "-z", commit])?;
        // `<mode> <type> <object> <size>\t<path>`; the size is `-` but for blobs.
        Ok(listing
            .split('\0')
            .filter_map(|entry| entry.split('\t').next()?.split_whitespace().nth(3))
            .filter_map(|size| size.parse::<u64>().ok())
            .sum())
    }

    /// Creates `branch` at `commit`; fails if it exists.
    pub fn create_ref(&self, name: &str, commit: &str, message: &str) -> Result<()> {
        let repo = self.open()?;
        repo.reference(name, Oid::from_str(commit)?, false, message)?;
        Ok(())
    }

    /// Points omk's own ref `name` at `commit`, whatever it held.
    pub fn hold(&self, name: &str, commit: &str, message: &str) -> Result<()> {
        let repo = self.open()?;
        repo.reference(name, Oid::from_str(commit)?, true, message)?;
        Ok(())
    }

    /// Fails when an object `commit` brings beyond `known` (commits whose
    /// objects are all there) is missing: a commit written while a `git gc
    /// --prune=now` ran can be held by a ref and still lack a tree it names.
    ///
    /// git, not git2: `rev-list --missing=print` walks only what is new.
    pub fn check_whole(&self, commit: &str, known: &[&str]) -> Result<()> {
        let mut args = vec!["rev-list", "--objects", "--missing=print", commit, "--not"];
        args.extend(known);
        let listed = self.git(&args)?;
        match listed.lines().find(|l| l.starts_with('?')) {
            None => Ok(()),
            Some(missing) => Err(Error::GitCommand {
                args: args.join(" "),
                stderr: format!(
                    "objects vanished: {} of commit {commit} is missing",
                    &missing[1..]
                ),
            }),
        }
    }

    /// Removes omk's own ref `name`, if it is there.
    pub fn release(&self, name: &str) -> Result<()> {
        let repo = self.open()?;
        if let Ok(mut r) = repo.find_reference(name) {
            r.delete()?;
        }
        Ok(())
    }

    /// Moves `name` from `expected` to `new`, failing if it moved meanwhile.
    pub fn update_ref(&self, name: &str, new: &str, expected: &str, message: &str) -> Result<()> {
        let repo = self.open()?;
        repo.reference_matching(
            name,
            Oid::from_str(new)?,
            true,
            Oid::from_str(expected)?,
            message,
        )?;
        Ok(())
    }

    /// [`Repo::update_ref`] of one of omk's branches, waiting out a lock
    /// another process holds (a `git` the user runs meanwhile) for up to
    /// `patience`; a lock still there then, and untouched for as long, was
    /// left by a process that died: it is removed and the move tried once
    /// more. The compare-and-swap still refuses a branch someone moved.
    pub fn update_ref_patiently(
        &self,
        name: &str,
        new: &str,
        expected: &str,
        message: &str,
        patience: std::time::Duration,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let lock = self.common_dir.join(format!("{name}.lock"));
        loop {
            match self.update_ref(name, new, expected, message) {
                Err(Error::Git(e)) if e.code() == git2::ErrorCode::Locked => {}
                done => return done,
            }
            if started.elapsed() < patience {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            let untouched = std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= patience);
            let branch = name.trim_start_matches("refs/heads/");
            if untouched && conventions::is_omk_branch(branch) {
                self.clear_stale_ref_lock(branch)?;
            }
            return self.update_ref(name, new, expected, message);
        }
    }

    /// The commit a ref points at, if it exists.
    pub fn ref_target(&self, name: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let found = repo.find_reference(name).ok().and_then(|r| r.target());
        Ok(found.map(|o| o.to_string()))
    }

    /// Deletes a branch omk created, if it exists.
    pub fn delete_branch(&self, name: &str) -> Result<bool> {
        let repo = self.open()?;
        let deleted = match repo.find_reference(&format!("refs/heads/{name}")) {
            Ok(mut r) => {
                r.delete()?;
                true
            }
            Err(_) => false,
        };
        Ok(deleted)
    }

    /// The branches under `prefix` (short names).
    pub fn branches_under(&self, prefix: &str) -> Result<Vec<String>> {
        let repo = self.open()?;
        let mut names = Vec::new();
        for r in repo
            .references_glob(&format!("refs/heads/{prefix}*"))?
            .flatten()
        {
            if let Some(n) = r.name().ok().and_then(|n| n.strip_prefix("refs/heads/")) {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes the lock of an omk branch left by a process that died while
    /// moving it. Only omk writes its branches, and only while holding the
    /// goal's lock, so such a lock is stale.
    pub fn clear_stale_ref_lock(&self, branch: &str) -> Result<()> {
        if !conventions::is_omk_branch(branch) {
            return Ok(());
        }
        self.clear_lock_of(&format!("refs/heads/{branch}"))
    }

    /// Removes the lock of omk's own ref `name` (under `refs/omk/`, such as
    /// the candidate's hold) that a process which died while moving it
    /// left. The caller holds the goal's lock: no one else moves it.
    pub fn clear_stale_hold(&self, name: &str) -> Result<()> {
        if !name.starts_with("refs/omk/") {
            return Ok(());
        }
        self.clear_lock_of(name)
    }

    /// Removes ref `name`'s lock file, if there is one.
    fn clear_lock_of(&self, name: &str) -> Result<()> {
        let lock = self.common_dir.join(format!("{name}.lock"));
        match std::fs::remove_file(&lock) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing stale {}", lock.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Runs `git` in the repository and returns stdout, failing on non-zero exit.
    fn git(&self, args: &[&str]) -> Result<String> {
        git_at(&self.root, args)
    }

    fn git_output(&self, args: &[&str]) -> Result<std::process::Output> {
        git_output_at(&self.root, args)
    }

    /// Of the untracked paths `patterns` names (`[pool] keep`), those the
    /// repository does not ignore: a slot keeps them, so its agents'
    /// commits and the gates' tree checks would count them as changes.
    /// A pattern is checked through a file below what it names
    /// (`**/__pycache__` as `__pycache__/x`), as git ignores directories.
    pub fn unignored(&self, patterns: &[String]) -> Result<Vec<String>> {
        let mut unignored = Vec::new();
        for pattern in patterns {
            let probe = pattern
                .trim_start_matches("**/")
                .trim_end_matches('/')
                .replace('*', "x");
            let probe = format!("{probe}/x");
            // `git check-ignore`, not git2: it reads the same rules git does,
            // .git/info/exclude and core.excludesFile included.
            let out = self.git_output(&["check-ignore", "-q", "--no-index", &probe])?;
            match out.status.code() {
                Some(0) => {}
                Some(1) => unignored.push(pattern.clone()),
                _ => return Err(command_error(&["check-ignore", &probe], &out)),
            }
        }
        Ok(unignored)
    }
}

/// How many times a commit or a merge is tried when its objects vanish
/// under it.
pub(crate) const OBJECT_TRIES: u32 = 4;

/// Does `step` again, up to `tries` times in all, while it fails as
/// `transient` says: what a `git gc` the user runs meanwhile takes from
/// under omk (objects just written and on no ref yet, a worktree's
/// half-made admin directory) is made again. `step` is told which try it
/// is, from 1.
pub(crate) fn again_after_gc<T>(
    tries: u32,
    transient: impl Fn(&Error) -> bool,
    mut step: impl FnMut(u32) -> Result<T>,
) -> Result<T> {
    let mut n = 1;
    loop {
        match step(n) {
            Err(e) if n < tries && transient(&e) => {
                tracing::warn!(error = %e, "what omk had just written is gone (a git gc?); again");
                std::thread::sleep(std::time::Duration::from_millis(50));
                n += 1;
            }
            done => return done,
        }
    }
}

/// Runs git in `dir` and returns its output, failing on a non-zero exit.
fn git_at(dir: &Path, args: &[&str]) -> Result<String> {
    checked(args, git_output(git_command(dir), args)?)
}

fn git_output_at(dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    git_output(git_command(dir), args)
}

/// stdout of a finished git command, or its failure.
fn checked(args: &[&str], out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        return Err(command_error(args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `command` with `args`.
fn git_output(mut command: Command, args: &[&str]) -> Result<std::process::Output> {
    command
        .args(args)
        .output()
        .map_err(|e| Error::io("running git (is it installed and on PATH?)", e))
}

/// The one way omk starts git, in `dir`.
///
/// No background gc while slices are in flight; no index refresh by a
/// command that only reads (`status` would write the user's index); and
/// nothing configured runs on omk's behalf: no hooks (`worktree add` and
/// `checkout` would run `post-checkout`), no fsmonitor.
fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(["-c", "gc.auto=0"])
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(["-c", "core.fsmonitor=false"])
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(std::process::Stdio::null());
    command
}

/// Refuses to move a branch omk did not create.
fn check_own_branch(branch: &str) -> Result<()> {
    match conventions::is_omk_branch(branch) {
        true => Ok(()),
        false => Err(Error::Worktree(format!(
            "omk moves only its own branches, not {branch}"
        ))),
    }
}

fn command_error(args: &[&str], out: &std::process::Output) -> Error {
    Error::GitCommand {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// The user's configured identity, or omk's own when none is set.
/// `Name <email>` as its two parts, when it is of that form.
pub fn parse_author(text: &str) -> Option<(String, String)> {
    let (name, rest) = text.trim().split_once('<')?;
    let email = rest.strip_suffix('>')?.trim();
    let name = name.trim();
    (!name.is_empty()
        && email.contains('@')
        && !email.contains(['<', '>', '\n'])
        && !name.contains('\n'))
    .then(|| (name.to_string(), email.to_string()))
}

fn signature(repo: &Repository) -> Result<Signature<'static>> {
    Ok(repo
        .signature()
        .or_else(|_| Signature::now("omk", "omk@localhost"))?)
}

/// The installed git's version line, e.g. `git version 2.47.3`.
pub fn version() -> Option<String> {
    let out = Command::new("git").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests;
