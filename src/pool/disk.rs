//! The pool's disk bound (`[pool] max_disk`).
//!
//! Slots and their build state (`[pool] keep` paths, `[pool] cache`
//! directories) outlive goals, and on real repositories they are most of
//! what omk takes on disk. When a goal ends, the pool is measured and,
//! over its bound, idle slots give up their build state,
//! least recently used first (a slot without any is seeded warm again when
//! next used), then idle slots go whole. Slots held by a running agent or
//! gate job are never touched.

use std::path::PathBuf;
use std::time::SystemTime;

use super::Pool;
use crate::git::Repo;

/// What a trim found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// The bound it kept to.
    pub bound: u64,
    /// What the pool took before.
    pub before: u64,
    /// The bytes it freed.
    pub freed: u64,
}

/// What the pool takes on disk, part by part: each a count and its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The slots, with their temp and cache directories.
    pub slots: (usize, u64),
    /// The setups' kept outputs, by key.
    pub setups: (usize, u64),
    /// The setups' download caches, by setup.
    pub downloads: (usize, u64),
    /// The warm build state new slots start from.
    pub warm: (usize, u64),
}

impl Usage {
    /// The bytes in all.
    pub fn total(&self) -> u64 {
        self.slots.1 + self.setups.1 + self.downloads.1 + self.warm.1
    }
}

impl Pool {
    /// What the pool takes, in one walk of it.
    pub fn usage(&self) -> Usage {
        let slots = self.slots();
        Usage {
            slots: (slots.len(), slots.iter().map(|s| slot_usage(s)).sum()),
            setups: self.setup_store().usage(),
            downloads: self.downloads().usage(),
            warm: self.warm_usage(),
        }
    }

    /// The bound `max` (`[pool] max_disk`) sets, or by default half of
    /// what the pool could take: what it takes (`used`) and the free space.
    pub fn bound(&self, max: Option<u64>, used: u64) -> u64 {
        max.unwrap_or_else(|| {
            let free = crate::machine::free_bytes(self.dir()).unwrap_or(0);
            (used + free) / 2
        })
    }

    /// Frees what idle slots hold, least recently used first, until the
    /// pool takes at most its bound. Blocking: it measures and removes.
    pub fn trim(&self, repo: &Repo, max: Option<u64>) -> Trimmed {
        let before = self.usage().total();
        let bound = self.bound(max, before);
        let mut used = before;
        if used <= bound {
            return Trimmed {
                bound,
                before,
                freed: 0,
            };
        }
        let mut idle: Vec<(SystemTime, PathBuf)> = self
            .slots()
            .into_iter()
            .filter(|s| self.try_hold(s).unwrap_or(false))
            .map(|s| (last_used(&s), s))
            .collect();
        idle.sort();
        // Their build state first: the slots stay, and start warm again.
        for (_, slot) in &idle {
            if used <= bound {
                break;
            }
            let had = slot_usage(slot);
            let cleaned = repo
                .slot(slot)
                .ok()
                .flatten()
                .map(|s| s.git(&["clean", "-ffdxq"]));
            if let Some(Err(e)) = cleaned {
                tracing::warn!(slot = %slot.display(), error = %e, "could not free a slot's build state");
            }
            let _ = std::fs::remove_dir_all(slot.with_extension("cache"));
            used -= had.saturating_sub(slot_usage(slot)).min(used);
        }
        // Then the slots themselves.
        for (_, slot) in &idle {
            if used <= bound {
                break;
            }
            let had = slot_usage(slot);
            if self.remove_slot(repo, slot).is_ok() {
                used -= had.min(used);
            }
        }
        // Looked at, not used: each keeps its time for the next trim.
        for (_, slot) in &idle {
            self.let_go(slot, false);
        }
        Trimmed {
            bound,
            before,
            freed: before - used,
        }
    }
}

/// A slot's bytes with its temp and cache directories.
fn slot_usage(slot: &std::path::Path) -> u64 {
    crate::machine::disk_usage(slot)
        + crate::machine::disk_usage(&slot.with_extension("tmp"))
        + crate::machine::disk_usage(&slot.with_extension("cache"))
}

/// When a slot was last given back (its lock file's time).
fn last_used(slot: &std::path::Path) -> SystemTime {
    std::fs::metadata(slot.with_extension("lock"))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_leaves_the_slots_it_keeps_as_recently_used_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("repo");
        let init = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(&main)
            .status()
            .unwrap();
        assert!(init.success());
        let repo = Repo::discover(&main).unwrap();
        let pool = Pool::new(dir.path().join("pool"));
        let (old, new) = (
            pool.acquire(&repo, false).unwrap(),
            pool.acquire(&repo, false).unwrap(),
        );
        for slot in [&old, &new] {
            std::fs::create_dir_all(slot).unwrap();
            std::fs::write(slot.join("build.o"), vec![0u8; 4096]).unwrap();
        }
        pool.release(&old);
        pool.release(&new);
        let day_ago = SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
        let lock = std::fs::File::options()
            .write(true)
            .open(old.with_extension("lock"))
            .unwrap();
        lock.set_modified(day_ago).unwrap();
        let kept = last_used(&new);
        // Over its bound by a byte: the least recently used slot goes (not
        // being a worktree, it has no build state to lose first), and the
        // other, only looked at, is as recently used as it was.
        let trimmed = pool.trim(&repo, Some(pool.usage().total() - 1));
        assert!(trimmed.freed > 0, "{trimmed:?}");
        assert!(!old.exists(), "the least recently used first");
        assert!(new.join("build.o").exists());
        assert_eq!(last_used(&new), kept);
    }
}
