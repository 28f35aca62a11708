//! Warm build state for slots that have none.
//!
//! `[pool] keep` (a `target`, a `node_modules/.cache`) and `[pool] cache`
//! make a recycled slot's builds incremental; a new slot has nothing, and on
//! a real crate every new slot's first gate built the whole dependency tree
//! again. So when the base check has run its gates in a slot, that slot's
//! build state is kept aside (`<pool>/warm`), and a slot found without any
//! (new, or emptied by eviction) is seeded from it before its agent or its
//! gates start. Only untracked, kept paths are copied: the tracked files are
//! the commit's, reset and checked as ever, and gate results stay keyed by
//! tree. A copy never shares blocks a build could write through: `cp -a
//! --reflink=auto` shares them copy-on-write where the filesystem can, and
//! copies them where it cannot; hard links would let one slot's build
//! rewrite another's files in place (cargo, for one, overwrites outputs).

use std::path::Path;

use super::{Pool, Store};
use crate::error::Result;

impl Pool {
    /// Where the warm build state is kept.
    fn warm_store(&self) -> Store {
        Store::new(self.dir.join("warm"))
    }

    /// Keeps `slot`'s build state — its `keep` paths and its `caches`
    /// (`slot-N.cache/<NAME>`) — as the one slots without any start from,
    /// calling `locked` once the copy is sure to be waited for: slots
    /// seeded meanwhile get this copy, not the one before, nor none.
    /// Blocking: it copies.
    pub fn keep_warm(
        &self,
        slot: &Path,
        keep: &[String],
        caches: &[String],
        locked: impl FnOnce(),
    ) -> Result<()> {
        if keep.is_empty() && caches.is_empty() {
            locked();
            return Ok(());
        }
        let store = self.warm_store();
        let (build, cache) = keys(keep, caches);
        let _lock = store.lock(&build);
        locked();
        let _lock = _lock?;
        // A copy of a day ago serves as well: a build tool redoes what
        // changed since. Copying hundreds of megabytes at every goal's
        // start would cost more than it saves.
        let fresh = store
            .kept_at(&build)
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < WARM_FOR);
        if fresh {
            return Ok(());
        }
        store.keep(&build, slot, keep)?;
        store.keep(&cache, &slot.with_extension("cache"), caches)
    }

    /// Seeds `slot` with the warm build state when it has none of its own;
    /// says whether it did. Blocking: it copies.
    pub fn warm_up(&self, slot: &Path, keep: &[String], caches: &[String]) -> Result<bool> {
        let store = self.warm_store();
        let (build, cache) = keys(keep, caches);
        let cache_dir = slot.with_extension("cache");
        let present = |dir: &Path, path: &String| match std::fs::read_dir(dir.join(path)) {
            Ok(mut entries) => entries.next().is_some(),
            Err(_) => std::fs::symlink_metadata(dir.join(path)).is_ok(),
        };
        let cold = !keep.iter().any(|p| present(slot, p))
            && !caches.iter().any(|c| present(&cache_dir, c));
        if (keep.is_empty() && caches.is_empty()) || !cold {
            return Ok(false);
        }
        let _lock = store.lock(&build)?;
        if !store.has(&build) {
            return Ok(false);
        }
        store.seed(&build, slot, keep)?;
        if store.has(&cache) {
            store.seed(&cache, &cache_dir, caches)?;
        }
        Ok(true)
    }

    /// The warm build state kept, and the bytes it takes.
    pub fn warm_usage(&self) -> (usize, u64) {
        self.warm_store().usage()
    }

    /// Removes the warm build state unless a slot is being seeded from it
    /// now; returns how many copies, and the bytes freed.
    pub fn clear_warm(&self) -> (usize, u64) {
        self.warm_store().clear_idle()
    }
}

/// How long a kept build state is not replaced by a newer base's.
const WARM_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The store's keys of the build state of `keep` and of `caches`: goals
/// that keep other paths keep apart.
fn keys(keep: &[String], caches: &[String]) -> (String, String) {
    let key = |kind: &str, names: &[String]| {
        let mut key = crate::gate::Key::default();
        key.field(kind.as_bytes());
        names.iter().for_each(|n| key.field(n.as_bytes()));
        format!("{kind}-{}", key.hex())
    };
    (key("keep", keep), key("cache", caches))
}
