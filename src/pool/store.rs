//! Copies of paths of a slot kept per key, for other slots to be seeded
//! from: each setup key's outputs once a setup produced them, and the warm
//! build state (`[pool] keep`, `[pool] cache`) the base check left. Agents
//! and gates cannot write here (it lies beside the slots, outside every
//! sandbox's writable set), so what a slot is seeded with is what omk kept.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kept outputs of a repository's setups, one directory per key.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The file in a key's directory that says its outputs are whole.
const COMPLETE: &str = ".complete";

impl Store {
    /// The store in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// Whether `key`'s outputs are kept.
    pub fn has(&self, key: &str) -> bool {
        self.entry(key).join(COMPLETE).exists()
    }

    /// When `key`'s outputs were kept, if they are.
    pub fn kept_at(&self, key: &str) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.entry(key).join(COMPLETE))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Waits for `key`'s lock and holds it until the returned file is
    /// dropped: one slot runs a setup for a key while the others wait, then
    /// seed from what it kept. Blocking.
    pub fn lock(&self, key: &str) -> Result<std::fs::File> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let path = self.dir.join(format!("{key}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io(format!("locking {}", path.display()), e));
        }
        Ok(file)
    }

    /// Keeps the `outputs` a setup made in `slot` as `key`'s: copied into a
    /// directory of their own, which takes the key's name whole or not at all.
    pub fn keep(&self, key: &str, slot: &Path, outputs: &[String]) -> Result<()> {
        let entry = self.entry(key);
        let partial = self.dir.join(format!("{key}.partial"));
        remove(&partial)?;
        for output in outputs {
            let from = slot.join(output);
            if std::fs::symlink_metadata(&from).is_ok() {
                copy(&from, &partial.join(output))?;
            }
        }
        std::fs::create_dir_all(&partial)
            .and_then(|_| std::fs::write(partial.join(COMPLETE), key))
            .map_err(|e| Error::io(format!("writing {}", partial.display()), e))?;
        remove(&entry)?;
        std::fs::rename(&partial, &entry)
            .map_err(|e| Error::io(format!("renaming {}", partial.display()), e))
    }

    /// Replaces the `outputs` in `slot` with `key`'s kept ones (an output the
    /// setup did not make is removed).
    pub fn seed(&self, key: &str, slot: &Path, outputs: &[String]) -> Result<()> {
        let entry = self.entry(key);
        for output in outputs {
            let to = slot.join(output);
            remove(&to)?;
            let from = entry.join(output);
            if std::fs::symlink_metadata(&from).is_ok() {
                copy(&from, &to)?;
            }
        }
        Ok(())
    }

    /// The keys kept, and the bytes they take.
    pub fn usage(&self) -> (usize, u64) {
        self.entries().iter().fold((0, 0), |(n, bytes), e| {
            (n + 1, bytes + crate::machine::disk_usage(e))
        })
    }

    /// Removes every kept key no slot is seeding from or making now (its
    /// lock is free); returns how many, and the bytes freed.
    pub fn clear_idle(&self) -> (usize, u64) {
        use std::os::fd::AsRawFd;
        let (mut removed, mut freed) = (0, 0);
        for entry in self.entries() {
            let lock = entry.with_extension("lock");
            let Ok(file) = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock)
            else {
                continue;
            };
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue;
            }
            let bytes = crate::machine::disk_usage(&entry);
            if std::fs::remove_dir_all(&entry).is_ok() {
                removed += 1;
                freed += bytes;
                let _ = std::fs::remove_file(&lock);
            }
        }
        (removed, freed)
    }

    /// The directories of the kept keys.
    fn entries(&self) -> Vec<PathBuf> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        read.flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.extension().is_none())
            .collect()
    }

    /// Removes `outputs` from `slot`, before a setup makes them afresh.
    pub fn clear(slot: &Path, outputs: &[String]) -> Result<()> {
        outputs.iter().try_for_each(|o| remove(&slot.join(o)))
    }
}

/// Removes `path`, whatever it is, if it is there.
fn remove(path: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    removed.map_err(|e| Error::io(format!("removing {}", path.display()), e))
}

/// Copies `from` to `to` (whose parent is made), with modes, times and
/// symlinks as they are.
///
/// `cp -a --reflink=auto`, not a walk of our own: it shares the blocks
/// where the filesystem can (btrfs, XFS: a 330 MB `node_modules` in a blink)
/// and copies them where it cannot, and keeps hard links and symlinks as
/// they are — what package managers' trees rely on.
fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let out = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| Error::io("running cp".to_string(), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::io(
        format!("copying {} to {}", from.display(), to.display()),
        std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_outputs_seed_a_slot_and_replace_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("setup"));
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        std::fs::create_dir_all(one.join("node_modules/dep")).unwrap();
        std::fs::write(one.join("node_modules/dep/index.js"), "v1").unwrap();
        std::fs::create_dir_all(&two).unwrap();
        let outputs = ["node_modules".to_string(), ".venv".to_string()];
        assert!(!store.has("k"));
        store.keep("k", &one, &outputs).unwrap();
        assert!(store.has("k"));
        // What an agent left in the other slot is replaced, not merged.
        std::fs::create_dir_all(two.join("node_modules/dep")).unwrap();
        std::fs::write(two.join("node_modules/dep/index.js"), "poisoned").unwrap();
        std::fs::write(two.join("node_modules/extra.js"), "left").unwrap();
        std::fs::create_dir_all(two.join(".venv")).unwrap();
        store.seed("k", &two, &outputs).unwrap();
        let read = |p: &str| std::fs::read_to_string(two.join(p)).unwrap();
        assert_eq!(read("node_modules/dep/index.js"), "v1");
        assert!(!two.join("node_modules/extra.js").exists());
        assert!(!two.join(".venv").exists(), "the setup made none");
        // Kept again, the key's outputs are replaced whole.
        std::fs::write(one.join("node_modules/dep/index.js"), "v2").unwrap();
        store.keep("k", &one, &outputs).unwrap();
        store.seed("k", &two, &outputs).unwrap();
        assert_eq!(read("node_modules/dep/index.js"), "v2");
        // One in use is kept by `clear_idle`; an idle one is removed.
        assert_eq!(store.usage().0, 1);
        let held = store.lock("k").unwrap();
        assert_eq!(store.clear_idle().0, 0);
        drop(held);
        let (removed, freed) = store.clear_idle();
        assert_eq!(removed, 1);
        assert!(freed > 0);
        assert!(!store.has("k"));
    }
}
