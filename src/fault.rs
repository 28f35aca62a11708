//! Fault injection for tests, debug builds only, the one mechanism:
//! `OMK_FAULT=kill:<point>:<n>` kills the omk process with SIGKILL the
//! `n`-th time it reaches `<point>`; `OMK_FAULT=panic:<point>:<n>` panics
//! there instead (on whatever task or thread reached it), to prove that a
//! panic ends as a failure, not a hang. At a point that names what reaches
//! it (a slice), `<n>` may be that name instead: `panic:slice.after_agent:a`.
//!
//! Points: `event` (after an event is durable), `worktree.added`,
//! `process.spawned` (an agent or gate just started), `slice.committed`
//! (before the commit is reported), `slice.after_agent` (a slice actor
//! whose agent ended, keyed by slice), `merge.made` (a merge commit
//! written, not yet reported), `branch.moved` (the integration branch
//! moved, not yet reported), `gate.job` (a gate job starting, keyed by what
//! it judges: a slice id, `integration` or `base`), `gate.run` (a gate job
//! about to run one gate).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Which point fails, how, and when.
struct Target {
    panics: bool,
    point: String,
    when: When,
}

enum When {
    /// The `n`-th time the point is reached.
    Nth(usize),
    /// Whenever it is reached for this key.
    Key(String),
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var("OMK_FAULT").ok()?;
            let mut parts = spec.splitn(3, ':');
            let (how, point, when) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Target {
                panics: match how {
                    "kill" => false,
                    "panic" => true,
                    _ => return None,
                },
                point: point.to_string(),
                when: match when.parse() {
                    Ok(n) => When::Nth(n),
                    Err(_) => When::Key(when.to_string()),
                },
            })
        })
        .as_ref()
}

/// Marks a point where a crash is worth testing.
pub fn point(name: &str) {
    point_for(name, "");
}

/// Marks a point reached on behalf of `key` (a slice id, say).
pub fn point_for(name: &str, key: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(target) = target().filter(|t| t.point == name) else {
        return;
    };
    let n = match &target.when {
        When::Key(k) if k == key => {
            fail(target.panics, name, key);
            return;
        }
        When::Key(_) => return,
        When::Nth(n) => *n,
    };
    static HITS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
    let count = hits
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert(0);
    *count += 1;
    if *count == n {
        drop(hits);
        fail(target.panics, name, key);
    }
}

fn fail(panics: bool, name: &str, key: &str) {
    if panics {
        match key {
            "" => panic!("injected fault at {name}"),
            key => panic!("injected fault at {name} for {key}"),
        }
    }
    // SAFETY: sending SIGKILL to ourselves; nothing runs after it.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}
