//! omk's worktrees from the repository's side: adding, removing, pruning,
//! finding where a branch is checked out, and the per-worktree config git
//! needs for sparse checkouts.

use super::*;

impl Repo {
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
        // A `git gc` the user runs meanwhile prunes worktrees, and takes a
        // half-made one's admin directory for stale: made again.
        let admin_dir_gone = |e: &Error| e.to_string().contains(".git/worktrees/");
        super::again_after_gc(3, admin_dir_gone, |n| {
            if n > 1 {
                let _ = std::fs::remove_dir_all(path);
                let _ = self.git(&["worktree", "prune"]);
            }
            self.git(&args)
        })?;
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
    pub(super) fn prune_worktrees(&self) -> Result<()> {
        let _one_at_a_time = worktree_admin();
        self.git(&["worktree", "prune"]).map(|_| ())
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
