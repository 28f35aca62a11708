//! The worktree pool: checkouts kept per repository and recycled.
//!
//! Creating a full worktree costs seconds on a large repository and removing
//! one more; switching an existing one to another branch and cleaning it
//! costs a fraction. So agents and gates run in slots (`<state>/pool/slot-N`)
//! that outlive goals: a slot is taken when a slice's agent starts, reset to
//! exactly the slice's start commit on its branch
//! (`git::Repo::prepare_worktree`), and given back once the agent's work is
//! committed; a gate job takes one when its first gate has to run (the slot
//! its slice committed in, when free), resets it to the judged commit, and
//! gives it back when its gates end. So the pool grows to the number of
//! agents and gate jobs running at once, not to the number of slices. Each
//! slot is held through an `flock` on `slot-N.lock`, so two goals never
//! share one and a dead holder frees it.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{IoContext, Result};

mod disk;
mod store;
mod warm;
pub use disk::{Trimmed, Usage};
pub use store::Store;

/// A repository's pool of worktree slots.
#[derive(Debug)]
pub struct Pool {
    dir: PathBuf,
    held: Mutex<BTreeMap<PathBuf, std::fs::File>>,
}

impl Pool {
    /// The pool in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Pool {
        Pool {
            dir,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    /// Where the slots live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes a free slot, preferring existing ones, and returns its path.
    /// Slots already sparse (or full) are preferred for a `sparse` (or
    /// full) checkout: switching one to the other rewrites most of its tree.
    pub fn acquire(&self, repo: &crate::git::Repo, sparse: bool) -> Result<PathBuf> {
        self.acquire_near(repo, sparse, None)
    }

    /// Takes a free slot as [`Pool::acquire`] does, but `near` first when
    /// it is free: the slot that last held the tree wanted (a slice's gates
    /// in the slot its agent committed in) resets in a moment.
    pub fn acquire_near(
        &self,
        repo: &crate::git::Repo,
        sparse: bool,
        near: Option<&Path>,
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .context(|| format!("creating {}", self.dir.display()))?;
        let near = near.filter(|n| n.parent() == Some(self.dir.as_path()) && n.is_dir());
        for slot in near.map(Path::to_path_buf).into_iter().chain(self.slots()) {
            if repo.is_sparse(&slot) == sparse && self.try_hold(&slot)? {
                return Ok(slot);
            }
        }
        for k in 0.. {
            let slot = self.dir.join(format!("slot-{k}"));
            // A new sparse slot is made in a moment, while turning a full
            // one sparse deletes most of its files: only new ones, then.
            if sparse && slot.exists() {
                continue;
            }
            if self.try_hold(&slot)? {
                return Ok(slot);
            }
        }
        unreachable!("the slot numbers are unbounded")
    }

    /// Gives a slot back. Its lock is undone explicitly: closing the file
    /// alone leaves it held while a process forked meanwhile (to become a
    /// `git` or an agent) still has the descriptor until its exec.
    pub fn release(&self, slot: &Path) {
        self.let_go(slot, true);
    }

    /// Undoes the hold on `slot`; `used` says whether something ran in it,
    /// which the lock file's time then records (what [`Pool::trim`] orders
    /// slots by): a slot only looked at keeps its time.
    fn let_go(&self, slot: &Path, used: bool) {
        if let Ok(mut held) = self.held.lock() {
            if let Some(file) = held.remove(slot) {
                if used {
                    let _ = file.set_modified(std::time::SystemTime::now());
                }
                // SAFETY: flock on a descriptor we own.
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            }
        }
    }

    fn try_hold(&self, slot: &Path) -> Result<bool> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.contains_key(slot) {
            return Ok(false);
        }
        let lock = slot.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .context(|| format!("opening {}", lock.display()))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Ok(false);
        }
        held.insert(slot.to_path_buf(), file);
        Ok(true)
    }

    /// Where the setups' outputs are kept, per key, for every slot
    /// (`<state>/pool/setup`).
    pub fn setup_store(&self) -> Store {
        Store::new(self.dir.join("setup"))
    }

    /// Where the setups' download caches are kept (`<state>/pool/downloads`).
    pub fn downloads(&self) -> Store {
        Store::new(self.dir.join("downloads"))
    }

    /// The build caches of `slot` named by `names` (`[pool] cache`), each
    /// a directory `slot-N.cache/<NAME>` that outlives recycling, made if
    /// missing: the variables to set for the slot's agents and gates.
    pub fn caches(slot: &Path, names: &[String]) -> Result<Vec<(String, String)>> {
        let mut vars = Vec::new();
        for name in names {
            let dir = slot.with_extension("cache").join(name);
            std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
            vars.push((name.clone(), dir.display().to_string()));
        }
        Ok(vars)
    }

    /// `bench` placed in `slot`: its checkout, temp dir and build caches
    /// (made if missing).
    pub fn bench_in(slot: PathBuf, bench: crate::gate::Bench) -> Result<crate::gate::Bench> {
        let caches = Pool::caches(&slot, &bench.cache_names())?;
        Ok(bench.in_slot(slot, caches))
    }

    /// Removes an idle `slot` this pool holds, with its temp and cache
    /// directories and its lock: it is made again when needed.
    pub fn remove_slot(&self, repo: &crate::git::Repo, slot: &Path) -> Result<()> {
        repo.remove_worktree(slot)?;
        let _ = std::fs::remove_dir_all(slot.with_extension("tmp"));
        let _ = std::fs::remove_dir_all(slot.with_extension("cache"));
        let _ = std::fs::remove_file(slot.with_extension("lock"));
        Ok(())
    }

    /// The slots no process holds, for cleanup.
    pub fn idle_slots(&self) -> Vec<PathBuf> {
        self.slots()
            .into_iter()
            .filter(|slot| self.try_hold(slot).unwrap_or(false))
            .collect()
    }

    /// The slots made so far, held or not, sorted.
    pub fn slots(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        // Slots are `slot-N`; their `slot-N.tmp` and `.cache` dirs go with
        // them, and the setups' store (`setup`) is none.
        let mut slots: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.extension().is_none()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("slot-"))
            })
            .collect();
        slots.sort();
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_once_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("repo");
        let init = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(&main)
            .status()
            .unwrap();
        assert!(init.success());
        let repo = crate::git::Repo::discover(&main).unwrap();
        let a = Pool::new(dir.path().join("pool"));
        let b = Pool::new(dir.path().join("pool"));
        let s0 = a.acquire(&repo, false).unwrap();
        let s1 = b.acquire(&repo, false).unwrap();
        assert_ne!(s0, s1, "a slot held by one pool is not given to another");
        std::fs::create_dir_all(&s1).unwrap();
        assert_ne!(
            a.acquire_near(&repo, false, Some(&s0)).unwrap(),
            s0,
            "a held slot is not taken, even when wanted"
        );
        b.release(&s1);
        assert_eq!(
            a.acquire_near(&repo, false, Some(&s1)).unwrap(),
            s1,
            "the slot wanted is taken when it is free"
        );
        a.release(&s0);
        assert_eq!(
            b.acquire(&repo, false).unwrap(),
            s0,
            "a released slot is reused first"
        );
        // A sparse slice gets a new slot rather than a full one to thin out.
        std::fs::create_dir_all(&s0).unwrap();
        b.release(&s0);
        let sparse = b.acquire(&repo, true).unwrap();
        assert!(sparse != s0 && sparse != s1, "{}", sparse.display());
        assert_eq!(b.acquire(&repo, false).unwrap(), s0);
    }
}
