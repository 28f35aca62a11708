//! omk's own worktrees (pool slots, the planner's scratch tree), which
//! agents work in and so can forge.
//!
//! An agent can rewrite its worktree's `.git` file to point anywhere — the
//! user's `.git`, or a git directory it made whose config runs a command
//! (`core.fsmonitor`). So omk never lets that file decide where its git
//! commands go: a [`Slot`] is found from the repository's side (the
//! `worktrees/<name>/gitdir` entry that git made for it, which agents cannot
//! write), every git command on it names that directory and the work tree
//! explicitly, and the `.git` file is put back before each one.

use std::path::{Path, PathBuf};

use git2::Oid;

use super::guard::{marks_of, STATUS};
use super::history::changed_between;
use super::{checked, git_command, git_output, signature, Committed, Marks, Repo};
use crate::error::{Error, Result};

/// One of omk's worktrees, addressed through the git directory git made for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The work tree.
    pub dir: PathBuf,
    /// Its git directory: `<common dir>/worktrees/<name>`.
    pub git_dir: PathBuf,
}

impl Repo {
    /// The worktree at `dir`, when git knows it as one of this repository's.
    ///
    /// Found from `<common dir>/worktrees/*/gitdir`, never from the
    /// worktree's own `.git` file.
    pub fn slot(&self, dir: &Path) -> Result<Option<Slot>> {
        let want = canonical(dir).join(".git");
        let Ok(entries) = std::fs::read_dir(self.common_dir.join("worktrees")) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let Ok(gitdir) = std::fs::read_to_string(entry.path().join("gitdir")) else {
                continue;
            };
            let named = Path::new(gitdir.trim_end_matches('\n'));
            let named = match named.parent() {
                Some(wt) => canonical(wt).join(".git"),
                None => continue,
            };
            if named == want && entry.path().join("HEAD").is_file() {
                return Ok(Some(Slot {
                    dir: dir.to_path_buf(),
                    git_dir: entry.path(),
                }));
            }
        }
        Ok(None)
    }

    fn known_slot(&self, dir: &Path) -> Result<Slot> {
        self.slot(dir)?.ok_or_else(|| {
            Error::Worktree(format!(
                "{} is not one of this repository's worktrees",
                dir.display()
            ))
        })
    }

    /// Makes `path` a worktree checked out at exactly `commit`, on `branch`
    /// (an omk branch, created or moved there) or detached: a missing
    /// worktree is added, one left half-made by a crash is made again, and an
    /// existing one — a pool slot that served another slice — is switched and
    /// cleaned of every untracked and ignored file, its `.git` file put back.
    ///
    /// With a `cone` (directories; `--sparse`), only the files at the top
    /// and below those directories are materialized, with a sparse index;
    /// without one, every file is.
    pub fn prepare_worktree(
        &self,
        path: &Path,
        branch: Option<&str>,
        commit: &str,
        cone: Option<&[String]>,
        keep: &[String],
    ) -> Result<Slot> {
        if let Some(b) = branch {
            super::check_own_branch(b)?;
            self.clear_stale_ref_lock(b)?;
        }
        if path.exists() && self.slot(path)?.is_none() {
            remove_all(path)?;
            self.prune_worktrees()?;
        }
        let fresh = !path.exists();
        if fresh {
            // A slot deleted by hand (or with omk's state) is still
            // registered, and git refuses to add it again: forget it first.
            self.prune_worktrees()?;
            // Detached: a branch is set with git2 below, so the git CLI never
            // sees one branch checked out in two slots. A sparse slot is
            // checked out below, once its cone is set.
            self.add_worktree(path, None, commit, cone.is_none())?;
        }
        let slot = self.known_slot(path)?;
        slot.clear_stale_locks()?;
        // Slots stay detached; the slice's branch is moved by omk itself, so
        // no branch is ever checked out in a slot (and no slot ever has to
        // touch another).
        if let Some(b) = branch {
            let repo = self.open()?;
            repo.reference(
                &format!("refs/heads/{b}"),
                Oid::from_str(commit)?,
                true,
                "omk: start attempt",
            )?;
        }
        match cone {
            Some(dirs) => {
                let mut set = vec!["sparse-checkout", "set", "--cone", "--sparse-index", "--"];
                set.extend(dirs.iter().map(String::as_str));
                if fresh {
                    // Nothing is checked out yet: set the cone, then fill it.
                    slot.git(&set)?;
                    slot.reset_clean(commit, keep)?;
                } else {
                    // Back to a clean `commit` first, so changing the cone
                    // finds no modified file to keep.
                    slot.reset_clean(commit, keep)?;
                    slot.git(&set)?;
                }
            }
            None => {
                if slot.is_sparse() {
                    slot.git(&["sparse-checkout", "disable"])?;
                }
                slot.reset_clean(commit, keep)?;
            }
        }
        Ok(slot)
    }

    /// Resets the worktree at `path` to exactly `commit`'s tree, removing
    /// every untracked or ignored file.
    pub fn reset_worktree(&self, path: &Path, commit: &str) -> Result<()> {
        let slot = self.known_slot(path)?;
        slot.clear_stale_locks()?;
        slot.reset_clean(commit, &[])
    }

    /// Commits everything that changed in the worktree at `path` (as `git add
    /// -A` would, honouring .gitignore) and reports what differs from `start`.
    ///
    /// Returns `None` when the final tree equals `start`'s. Commits the agent
    /// made itself are kept; the result is whatever `HEAD` ends on, and
    /// `branch` (an omk branch) is moved to it.
    pub fn commit_worktree(
        &self,
        path: &Path,
        branch: &str,
        start: &str,
        message: &str,
    ) -> Result<Option<Committed>> {
        super::check_own_branch(branch)?;
        let slot = self.known_slot(path)?;
        // Objects written and not yet on a ref can be pruned under it (a
        // `git gc --prune=now` meanwhile): it is done again, every file
        // hashed afresh.
        super::again_after_gc(super::OBJECT_TRIES, Error::objects_vanished, |n| {
            self.commit_once(&slot, branch, start, message, n > 1)
        })
    }

    /// One try of [`Repo::commit_worktree`]; `afresh` hashes every file
    /// again instead of trusting the index's stat data.
    fn commit_once(
        &self,
        slot: &Slot,
        branch: &str,
        start: &str,
        message: &str,
        afresh: bool,
    ) -> Result<Option<Committed>> {
        crate::fault::disk_point("slice.commit")
            .map_err(|e| Error::io("committing the slice's work", e))?;
        slot.clear_stale_locks()?;
        self.clear_stale_ref_lock(branch)?;
        // git, not git2: its index-aware `add` is about 5x faster on 100k
        // files, and libgit2 cannot read a sparse index.
        match afresh {
            true => slot.git(&["add", "--all", "--renormalize"])?,
            false => slot.git(&["add", "--all"])?,
        };
        let tree_id = Oid::from_str(slot.git(&["write-tree"])?.trim())?;
        let repo = self.open()?;
        let head = repo.find_commit(Oid::from_str(&slot.head()?)?)?;
        let result = if tree_id == head.tree_id() {
            head.id()
        } else {
            let sig = signature(&repo)?;
            let tree = repo.find_tree(tree_id)?;
            repo.commit(None, &sig, &sig, message, &tree, &[&head])?
        };
        let result_text = result.to_string();
        slot.git(&["update-ref", "--no-deref", "HEAD", &result_text])?;
        repo.reference(
            &format!("refs/heads/{branch}"),
            result,
            true,
            "omk: commit slice",
        )?;
        self.check_whole(&result_text, &[&head.id().to_string()])?;
        let start = repo.find_commit(Oid::from_str(start)?)?;
        let result_tree = repo.find_commit(result)?.tree()?;
        if result_tree.id() == start.tree_id() {
            return Ok(None);
        }
        let changed = changed_between(&repo, &start.tree()?, &result_tree)?;
        crate::fault::point("slice.committed");
        Ok(Some(Committed {
            commit: result_text,
            tree: result_tree.id().to_string(),
            changed_files: changed,
        }))
    }

    /// Whether a sparse slot is among this repository's worktrees at `dir`.
    pub fn is_sparse(&self, dir: &Path) -> bool {
        self.slot(dir).ok().flatten().is_some_and(|s| s.is_sparse())
    }
}

impl Slot {
    /// What the `.git` file must say.
    fn dotgit(&self) -> String {
        format!("gitdir: {}\n", self.git_dir.display())
    }

    /// How the worktree's `.git` differs from what git wrote, if it does:
    /// evidence that something in the worktree rewrote it.
    pub fn dotgit_tampered(&self) -> Option<String> {
        let path = self.dir.join(".git");
        match std::fs::symlink_metadata(&path) {
            Err(_) => Some(".git was removed".into()),
            Ok(m) if m.file_type().is_symlink() => Some(".git was replaced by a symlink".into()),
            Ok(m) if m.is_dir() => Some(".git was replaced by a directory".into()),
            Ok(_) => match std::fs::read_to_string(&path) {
                Ok(text) if text == self.dotgit() => None,
                Ok(text) => Some(format!(
                    ".git was rewritten to `{}`",
                    text.trim().chars().take(200).collect::<String>()
                )),
                Err(e) => Some(format!(".git cannot be read: {e}")),
            },
        }
    }

    /// Puts the `.git` file back as git wrote it, whatever is there now.
    pub fn restore_dotgit(&self) -> Result<()> {
        if self.dotgit_tampered().is_none() {
            return Ok(());
        }
        let path = self.dir.join(".git");
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            remove_all(&path)?;
        }
        crate::files::write_atomic(&path, self.dotgit().as_bytes())
    }

    /// Runs git on this worktree, by its git directory, and returns stdout.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        checked(args, git_output(self.command()?, args)?)
    }

    /// A git command on this worktree: its git directory and work tree
    /// named, so nothing in the worktree redirects it, with its `.git` file
    /// put back first for any tool that reads it.
    fn command(&self) -> Result<std::process::Command> {
        self.restore_dotgit()?;
        let mut command = git_command(&self.dir);
        command
            .arg("--git-dir")
            .arg(&self.git_dir)
            .arg("--work-tree")
            .arg(&self.dir);
        Ok(command)
    }

    /// The commit checked out.
    pub fn head(&self) -> Result<String> {
        Ok(self
            .git(&["rev-parse", "--verify", "HEAD"])?
            .trim()
            .to_string())
    }

    /// Whether this is a sparse checkout (its own `config.worktree` sets
    /// `core.sparseCheckout`).
    pub fn is_sparse(&self) -> bool {
        git2::Config::open(&self.git_dir.join("config.worktree"))
            .and_then(|c| c.get_bool("core.sparsecheckout"))
            .unwrap_or(false)
    }

    /// What `git status` shows of the worktree (see [`Marks`]).
    pub fn marks(&self) -> Result<Marks> {
        marks_of(&self.dir, &self.git(STATUS)?)
    }

    /// The tree the worktree's files make, as `git add --all` would stage
    /// them, computed in a scratch index: the slot's own index is not touched.
    pub fn files_tree(&self) -> Result<String> {
        let scratch = self
            .git_dir
            .join(format!("index.omk-{}", std::process::id()));
        let index = self.git_dir.join("index");
        if index.exists() {
            std::fs::copy(&index, &scratch)
                .map_err(|e| Error::io(format!("copying {}", index.display()), e))?;
        }
        let run = |args: &[&str]| -> Result<String> {
            let mut command = self.command()?;
            command.env("GIT_INDEX_FILE", &scratch);
            checked(args, git_output(command, args)?)
        };
        let tree = run(&["add", "--all"]).and_then(|_| run(&["write-tree"]));
        let _ = std::fs::remove_file(&scratch);
        Ok(tree?.trim().to_string())
    }

    /// Resets the files to exactly `commit` (its files in the cone, for a
    /// sparse one), detached, and removes every untracked and ignored file,
    /// nested repositories included — but the untracked paths matching
    /// `keep` (`[pool] keep`: build state a user chose to keep).
    ///
    /// git, not git2: its checkout compares the index's stat data and
    /// touches only what changed (about 4x faster than libgit2's on 100k
    /// files), and libgit2 reads neither sparse checkouts nor sparse indexes.
    fn reset_clean(&self, commit: &str, keep: &[String]) -> Result<()> {
        self.git(&["checkout", "--quiet", "--force", "--detach", commit])?;
        // With -x, git still honours the ignore patterns given with -e.
        let mut clean = vec!["clean", "--quiet", "-f", "-f", "-d", "-x"];
        for pattern in keep {
            clean.extend(["-e", pattern.as_str()]);
        }
        self.git(&clean).map(drop)
    }

    /// Removes an `index.lock` or `HEAD.lock` left by a process that died
    /// (omk itself in a crash, or an agent's git killed with its group).
    /// omk touches a worktree's index and HEAD only when no agent runs there
    /// and while it holds the goal's lock and the slot's, so any lock found
    /// then is stale.
    fn clear_stale_locks(&self) -> Result<()> {
        for name in ["index.lock", "HEAD.lock"] {
            let lock = self.git_dir.join(name);
            match std::fs::remove_file(&lock) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("removing stale {}", lock.display()), e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn remove_all(path: &Path) -> Result<()> {
    std::fs::remove_dir_all(path).map_err(|e| {
        Error::io(
            format!("removing the broken worktree {}", path.display()),
            e,
        )
    })
}
