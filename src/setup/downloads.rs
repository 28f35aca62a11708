//! A setup's download cache (`$OMK_SETUP_CACHE`): what its package manager
//! fetched, kept between its runs so a lockfile that changed one line
//! downloads one package, not all of them.
//!
//! The cache a run gets is its own copy of the one kept for the setup
//! (`<state>/pool/downloads/<key>`). It is kept back only from a passing run
//! on the goal's base tree — the user's commit, not an agent's: a run on a
//! slice's tree runs what its agent wrote (a lockfile naming another index,
//! a `setup.py`), and what it fetched dies with its copy. Agents and gates
//! never see it (it is neither in their environment nor writable to them).

use std::path::{Path, PathBuf};

use super::Store;
use crate::error::{Error, Result};

/// The variable that names a setup run's download cache.
pub const VAR: &str = "OMK_SETUP_CACHE";

/// A download cache lent to one run of a setup, removed when dropped.
#[derive(Debug)]
pub struct Lent {
    store: Store,
    key: String,
    /// The directory that holds the copy (`dir/<key>` is the cache).
    holder: PathBuf,
}

/// The key the cache of setup `name` is kept under (a setup's name may be
/// anything; the key is a file name).
fn key(name: &str) -> String {
    let mut key = crate::gate::Key::default();
    key.field(b"downloads");
    key.field(name.as_bytes());
    key.hex()
}

impl Lent {
    /// A copy of what `store` keeps for setup `name`, made in `tmp` (the
    /// run's temp dir), or an empty cache the first time. Blocking.
    pub fn copy(store: &Store, name: &str, tmp: &Path) -> Result<Lent> {
        let key = key(name);
        let holder = tmp.join(".omk-downloads");
        let lent = Lent {
            store: store.clone(),
            key,
            holder,
        };
        {
            let _lock = store.lock(&lent.key)?;
            store.seed(&lent.key, &lent.holder, std::slice::from_ref(&lent.key))?;
        }
        let dir = lent.dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(lent)
    }

    /// The cache the run writes in.
    pub fn dir(&self) -> PathBuf {
        self.holder.join(&self.key)
    }

    /// Keeps what the run left in its copy as the setup's cache, for every
    /// run after. Only for a run on the base tree. Blocking.
    pub fn keep(&self) -> Result<()> {
        let _lock = self.store.lock(&self.key)?;
        self.store
            .keep(&self.key, &self.holder, std::slice::from_ref(&self.key))
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.holder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_kept_back_only_when_asked_and_dies_with_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("downloads"));
        let (a, b) = (dir.path().join("a.tmp"), dir.path().join("b.tmp"));
        let first = Lent::copy(&store, "npm", &a).unwrap();
        assert_eq!(std::fs::read_dir(first.dir()).unwrap().count(), 0, "empty");
        std::fs::write(first.dir().join("left-pad.tgz"), "base").unwrap();
        first.keep().unwrap();
        drop(first);
        assert!(!a.join(".omk-downloads").exists(), "the copy is gone");
        // A later run starts from what was kept; what it adds is its own.
        let second = Lent::copy(&store, "npm", &b).unwrap();
        let read = |l: &Lent, f: &str| std::fs::read_to_string(l.dir().join(f)).ok();
        assert_eq!(read(&second, "left-pad.tgz").as_deref(), Some("base"));
        std::fs::write(second.dir().join("left-pad.tgz"), "poisoned").unwrap();
        std::fs::write(second.dir().join("evil.tgz"), "x").unwrap();
        drop(second);
        let third = Lent::copy(&store, "npm", &b).unwrap();
        assert_eq!(read(&third, "left-pad.tgz").as_deref(), Some("base"));
        assert_eq!(read(&third, "evil.tgz"), None);
        // Another setup's cache is another.
        let other = Lent::copy(&store, "pip", &a).unwrap();
        assert_eq!(read(&other, "left-pad.tgz"), None);
    }
}
