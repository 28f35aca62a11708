//! Fault injection for tests, debug builds only: `OMK_FAULT=kill:<point>:<n>`
//! kills the omk process with SIGKILL the `n`-th time it reaches `<point>`;
//! `OMK_FAULT=panic:<point>:<n>` panics there instead (on whatever task or
//! thread reached it), to prove that a panic ends as a failure, not a hang.
//!
//! Points: `event` (after an event is durable), `worktree.added`,
//! `process.spawned` (an agent or gate just started), `slice.committed`
//! (before the commit is reported), `merge.made` (a merge commit written,
//! not yet reported), `branch.moved` (the integration branch moved, not yet
//! reported), `gate.run` (a gate job about to run one gate).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Marks a point where a crash is worth testing.
pub fn point(name: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    static TARGET: OnceLock<Option<(bool, String, usize)>> = OnceLock::new();
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("OMK_FAULT").ok()?;
        let mut parts = spec.splitn(3, ':');
        let (how, point, n) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
        match how {
            "kill" => Some((false, point.to_string(), n)),
            "panic" => Some((true, point.to_string(), n)),
            _ => None,
        }
    });
    let Some((panics, target, n)) = target else {
        return;
    };
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
    if *count == *n && *panics {
        drop(hits);
        panic!("injected fault at {name}");
    }
    if *count == *n {
        // SAFETY: sending SIGKILL to ourselves; nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
