//! Fault injection for tests, debug builds only, the one mechanism:
//! `OMK_FAULT=kill:<point>:<n>` kills the omk process with SIGKILL the
//! `n`-th time it reaches `<point>`; `OMK_FAULT=panic:<point>:<n>` panics
//! there instead (on whatever task or thread reached it), to prove that a
//! panic ends as a failure, not a hang; `OMK_FAULT=enospc:<point>:<n>`
//! makes a point that writes (`disk_point`) fail as on a full disk. At a point that names what reaches
//! it (a slice), `<n>` may be that name instead: `panic:slice.after_agent:a`.
//!
//! Points: `event` (after an event is durable), `worktree.added`,
//! `process.spawned` (an agent or gate just started), `slice.committed`
//! (before the commit is reported), `slice.after_agent` (a slice actor
//! whose agent ended, keyed by slice), `merge.made` (a merge commit
//! written, not yet reported), `branch.moved` (the integration branch
//! moved, not yet reported), `gate.job` (a gate job starting, keyed by what
//! it judges: a slice id, `integration` or `base`), `gate.run` (a gate job
//! about to run one gate), `slice.commit` (a disk point: a slice's work
//! about to be committed).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Which point fails, how, and when.
struct Target {
    how: How,
    point: String,
    when: When,
}

/// How a targeted point fails.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Kill,
    Panic,
    /// A point that writes fails as on a full disk (`ENOSPC`).
    DiskFull,
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
                how: match how {
                    "kill" => How::Kill,
                    "panic" => How::Panic,
                    "enospc" => How::DiskFull,
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
    if let Some(how) = reached(name, key) {
        fail(how, name, key);
    }
}

/// Marks a point that writes to disk: with `enospc:<point>:<n>` it fails
/// there as on a full disk.
pub fn disk_point(name: &str) -> std::io::Result<()> {
    match reached(name, "") {
        Some(How::DiskFull) => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
        Some(how) => {
            fail(how, name, "");
            Ok(())
        }
        None => Ok(()),
    }
}

/// How this reach of point `name` (for `key`) fails, if it is the one
/// targeted.
fn reached(name: &str, key: &str) -> Option<How> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let target = target().filter(|t| t.point == name)?;
    let n = match &target.when {
        When::Key(k) if k == key => return Some(target.how),
        When::Key(_) => return None,
        When::Nth(n) => *n,
    };
    static HITS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
    let count = hits
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert(0);
    *count += 1;
    (*count == n).then_some(target.how)
}

fn fail(how: How, name: &str, key: &str) {
    match (how, key) {
        (How::DiskFull, _) => {}
        (How::Panic, "") => panic!("injected fault at {name}"),
        (How::Panic, key) => panic!("injected fault at {name} for {key}"),
        // SAFETY: sending SIGKILL to ourselves; nothing runs after it.
        (How::Kill, _) => unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        },
    }
}
