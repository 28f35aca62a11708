//! The worktree pool: checkouts kept per repository and recycled.
//!
//! Creating a full worktree costs seconds on a large repository and removing
//! one more; switching an existing one to another branch and cleaning it
//! costs a fraction. So slices run in slots (`<state>/pool/slot-N`) that
//! outlive goals: a slot is taken when a slice starts, reset to exactly the
//! slice's start commit on its branch (`git::Repo::prepare_worktree`), and
//! given back when the slice no longer needs its tree (committed and
//! verified, or failed). The pool grows to the number of slots in use at
//! once. Each slot is held through an `flock` on `slot-N.lock`, so two
//! goals never share one and a dead holder frees it.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::git::Marks;

/// A slot holding a finished tree.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The slot.
    pub slot: PathBuf,
    /// The slice whose tree it holds.
    pub owner: String,
    /// Which settling this is: a slot settled again later holds another tree.
    pub n: u64,
    /// What `git status` showed of it when it settled.
    pub marks: Marks,
}

/// A repository's pool of worktree slots.
#[derive(Debug)]
pub struct Pool {
    dir: PathBuf,
    held: Mutex<BTreeMap<PathBuf, std::fs::File>>,
    /// The settled slots, and the number of the last settling.
    settled: Mutex<(BTreeMap<PathBuf, Settled>, u64)>,
}

impl Pool {
    /// The pool in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Pool {
        Pool {
            dir,
            held: Mutex::new(BTreeMap::new()),
            settled: Mutex::new((BTreeMap::new(), 0)),
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
        std::fs::create_dir_all(&self.dir)
            .context(|| format!("creating {}", self.dir.display()))?;
        for slot in self.slots() {
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

    /// Holds a slot a resumed slice already works in.
    pub fn hold(&self, slot: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .context(|| format!("creating {}", self.dir.display()))?;
        if self.try_hold(slot)? {
            Ok(())
        } else {
            Err(Error::SlotHeld(slot.to_path_buf()))
        }
    }

    /// Gives a slot back. Its lock is undone explicitly: closing the file
    /// alone leaves it held while a process forked meanwhile (to become a
    /// `git` or an agent) still has the descriptor until its exec.
    pub fn release(&self, slot: &Path) {
        self.unsettle(slot);
        if let Ok(mut held) = self.held.lock() {
            if let Some(file) = held.remove(slot) {
                // SAFETY: flock on a descriptor we own.
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            }
        }
    }

    /// Marks a slot as holding `owner`'s finished tree: nothing may write in
    /// it until its gates start (see [`Pool::unsettle`]). Without a sandbox,
    /// every agent run checks that such slots stayed as they were.
    pub fn settle(&self, slot: &Path, owner: &str, marks: Marks) {
        let mut settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        settled.1 += 1;
        let n = settled.1;
        let entry = Settled {
            slot: slot.to_path_buf(),
            owner: owner.to_string(),
            n,
            marks,
        };
        settled.0.insert(slot.to_path_buf(), entry);
    }

    /// Ends a slot's settled time: gates are about to write in it.
    pub fn unsettle(&self, slot: &Path) {
        let mut settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        settled.0.remove(slot);
    }

    /// The settled slots.
    pub fn settled(&self) -> Vec<Settled> {
        let settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        settled.0.values().cloned().collect()
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
    pub fn setup_store(&self) -> crate::setup::Store {
        crate::setup::Store::new(self.dir.join("setup"))
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
        assert!(b.hold(&s0).is_err());
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
