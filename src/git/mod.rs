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
mod links;
mod merge;
mod remote;
mod slot;

pub use merge::{Merge, Merged};
pub use remote::{PushStatus, Pushed};

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

/// A snapshot of the user's HEAD, index, refs and working files (see
/// [`Repo::guard`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    head: String,
    index: u64,
    refs: std::collections::BTreeMap<String, String>,
    files: Marks,
}

/// What `git status` shows of a worktree: every modified, deleted or
/// untracked (not ignored) path, with its size and modification time. Marks
/// taken at two moments differ when something wrote in the worktree between
/// them; a clean worktree has none.
pub type Marks = std::collections::BTreeMap<String, Option<(u64, i128)>>;

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
fn worktree_marks(dir: &Path) -> Result<Marks> {
    marks_of(dir, &git_at(dir, STATUS)?)
}

/// `git status` as [`Marks`] read it.
const STATUS: &[&str] = &[
    "status",
    "--porcelain=v1",
    "-z",
    "--untracked-files=all",
    "--no-renames",
    "--ignore-submodules=all",
];

/// The marks of the worktree at `dir`, whose `git status` is `status`.
fn marks_of(dir: &Path, status: &str) -> Result<Marks> {
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

    /// The tree of a commit.
    pub fn tree_of(&self, commit: &str) -> Result<String> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree_id();
        Ok(tree.to_string())
    }

    /// Whether the repository's config has `extensions.worktreeConfig` on.
    pub fn worktree_config_enabled(&self) -> bool {
        self.open()
            .and_then(|r| Ok(r.config()?.get_bool("extensions.worktreeconfig")?))
            .unwrap_or(false)
    }

    /// Turns `extensions.worktreeConfig` off again when nothing needs it: no
    /// slot under `pool` is sparse, and no other worktree (the main one
    /// included) has a `config.worktree` of its own. Returns whether it did.
    pub fn drop_worktree_config(&self, pool: &Path) -> Result<bool> {
        let repo = self.open()?;
        if self.common_dir.join("config.worktree").exists() {
            return Ok(false);
        }
        for name in repo.worktrees()?.iter().flatten().flatten() {
            let path = repo.find_worktree(name)?.path().to_path_buf();
            let needed = match path.starts_with(pool) {
                true => self.is_sparse(&path),
                false => self
                    .common_dir
                    .join("worktrees")
                    .join(name)
                    .join("config.worktree")
                    .exists(),
            };
            if needed {
                return Ok(false);
            }
        }
        let mut config = repo.config()?.open_level(git2::ConfigLevel::Local)?;
        match config.remove("extensions.worktreeConfig") {
            Err(e) if e.code() != git2::ErrorCode::NotFound => Err(e.into()),
            _ => Ok(true),
        }
    }

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
            .map(|b| crate::util::fnv1a64(&b))
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

    /// The commit a ref points at, if it exists.
    pub fn ref_target(&self, name: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let found = repo.find_reference(name).ok().and_then(|r| r.target());
        Ok(found.map(|o| o.to_string()))
    }

    /// Where `branch` (a full ref name) is checked out: the main worktree or another; `None` if nowhere.
    pub fn checked_out_at(&self, branch: &str) -> Result<Option<PathBuf>> {
        let repo = self.open()?;
        let head_of = |r: &Repository| {
            r.find_reference("HEAD")
                .ok()
                .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
        };
        if head_of(&repo).as_deref() == Some(branch) {
            // Components drop the trailing `/` git2 leaves on a workdir.
            return Ok(Some(repo.workdir().map_or_else(
                || self.root.clone(),
                |dir| dir.components().collect(),
            )));
        }
        for name in repo.worktrees()?.iter().flatten().flatten() {
            let Ok(wt) = repo.find_worktree(name) else {
                continue;
            };
            if let Ok(r) = Repository::open_from_worktree(&wt) {
                if head_of(&r).as_deref() == Some(branch) {
                    return Ok(Some(wt.path().components().collect()));
                }
            }
        }
        Ok(None)
    }

    /// Adds a worktree at `path` at `commit`, on a new `branch` or detached,
    /// with its files checked out unless `checkout` is false.
    ///
    /// Concurrent `git worktree add`s in one repository can read each other's
    /// half-written admin directories, so omk adds one at a time.
    pub fn add_worktree(
        &self,
        path: &Path,
        branch: Option<&str>,
        commit: &str,
        checkout: bool,
    ) -> Result<()> {
        let _one_at_a_time = worktree_admin();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let path_arg = path.to_string_lossy();
        let existing = match branch {
            Some(b) => self.ref_target(&format!("refs/heads/{b}"))?.is_some(),
            None => false,
        };
        let mut args = vec!["worktree", "add", "--quiet"];
        if !checkout {
            args.push("--no-checkout");
        }
        match branch {
            // A resumed or cleaned goal's branch exists already: check it out, then reset.
            Some(b) if existing => args.extend([path_arg.as_ref(), b]),
            Some(b) => args.extend(["-b", b, path_arg.as_ref(), commit]),
            None => args.extend(["--detach", path_arg.as_ref(), commit]),
        }
        self.git(&args)?;
        crate::fault::point("worktree.added");
        if existing {
            self.reset_worktree(path, commit)?;
        }
        Ok(())
    }

    /// Removes a worktree omk created, with whatever it holds, and forgets it.
    pub fn remove_worktree(&self, path: &Path) -> Result<()> {
        if path.exists() {
            let p = path.to_string_lossy();
            if self
                .git(&["worktree", "remove", "--force", "--force", p.as_ref()])
                .is_err()
            {
                std::fs::remove_dir_all(path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            }
        }
        self.prune_worktrees()
    }

    /// Forgets worktrees whose directories are gone. Serialized with adds: a
    /// worktree being added looks stale to a concurrent prune.
    fn prune_worktrees(&self) -> Result<()> {
        let _one_at_a_time = worktree_admin();
        self.git(&["worktree", "prune"]).map(|_| ())
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

    /// Removes the lock of an omk branch left by a process that died while
    /// moving it. Only omk writes its branches, and only while holding the
    /// goal's lock, so such a lock is stale.
    pub fn clear_stale_ref_lock(&self, branch: &str) -> Result<()> {
        if !conventions::is_omk_branch(branch) {
            return Ok(());
        }
        let lock = self.common_dir.join(format!("refs/heads/{branch}.lock"));
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

/// The lock around changes to the repository's worktree list (add, prune):
/// concurrent ones read each other's half-written admin directories.
fn worktree_admin() -> std::sync::MutexGuard<'static, ()> {
    static ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ADMIN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every path that differs between two trees (both sides of renames), sorted.
fn changed_between(repo: &Repository, a: &git2::Tree, b: &git2::Tree) -> Result<Vec<String>> {
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
