//! Fault injection for tests: `OMK_FAULT=kill:<point>:<n>` kills the omk
//! process with SIGKILL the `n`-th time it reaches `<point>`. Debug builds only.
//!
//! Points: `event` (after an event is durable), `worktree.added`,
//! `process.spawned` (an agent or gate just started), `slice.committed`
//! (before the commit is reported), `merge.ref_moved` (before the merge is
//! reported).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Marks a point where a crash is worth testing.
pub fn point(name: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("OMK_FAULT").ok()?;
        let mut parts = spec.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("kill"), Some(point), Some(n)) => Some((point.to_string(), n.parse().ok()?)),
            _ => None,
        }
    });
    let Some((target, n)) = target else { return };
    if target != name {
        return;
    }
    static HITS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
    let count = hits
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert(0);
    *count += 1;
    if *count == *n {
        // SAFETY: sending SIGKILL to ourselves; nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
