//! The filesystem sandbox of agent processes: Linux Landlock.
//!
//! An agent may read anything but write only below its worktree, its own
//! private temp directory, the agent's state directories (the Kimi CLIs'
//! data dirs) and `/dev` (for `/dev/null` and terminals), plus what
//! `[sandbox] writable` in `omk.toml` adds. Everything else — the user's
//! checkout, sibling worktrees, the repository's `.git` (hooks, config,
//! refs), omk's state — is refused by the kernel. Network access is not
//! restricted.
//!
//! The rules are built in omk's process; the child only applies them between
//! fork and exec, with two async-signal-safe system calls. No root is needed.
//! On a kernel without Landlock omk says so once and relies on detection
//! (the write-scope check), unless `--require-sandbox` asks it to refuse.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI,
};

use crate::error::{Error, Result};

/// The Landlock ABI omk asks for; older kernels get what they support.
const WANTED: ABI = ABI::V5;

/// The Landlock ABI version the kernel supports, `None` when it has none (or
/// `OMK_LANDLOCK=0` says to act as if).
pub fn abi() -> Option<i64> {
    if std::env::var("OMK_LANDLOCK").is_ok_and(|v| v == "0") {
        return None;
    }
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    (v > 0).then_some(v)
}

/// A ruleset ready to be applied to one agent process.
#[derive(Debug)]
pub struct Sandbox {
    fd: OwnedFd,
}

impl Sandbox {
    /// Rules letting a process write only below `writable` (which must exist).
    /// `None` when the kernel has no Landlock.
    pub fn new(writable: &[PathBuf]) -> Result<Option<Sandbox>> {
        if abi().is_none() {
            return Ok(None);
        }
        let fail =
            |e: &dyn std::fmt::Display| Error::Actor(format!("building the Landlock sandbox: {e}"));
        let all = AccessFs::from_all(WANTED);
        let read = AccessFs::from_read(WANTED);
        let mut ruleset = Ruleset::default()
            .handle_access(all)
            .map_err(|e| fail(&e))?
            .create()
            .map_err(|e| fail(&e))?
            .add_rule(PathBeneath::new(
                PathFd::new("/").map_err(|e| fail(&e))?,
                read,
            ))
            .map_err(|e| fail(&e))?;
        let mut paths: Vec<PathBuf> = writable.to_vec();
        paths.push(PathBuf::from("/dev"));
        for p in paths.iter().filter(|p| p.exists()) {
            let fd = PathFd::new(p).map_err(|e| fail(&e))?;
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, all))
                .map_err(|e| fail(&e))?;
        }
        let fd: Option<OwnedFd> = ruleset.into();
        Ok(fd.map(|fd| Sandbox { fd }))
    }

    /// Makes `command`'s process restrict itself before it runs.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and only makes two
        // async-signal-safe system calls on a descriptor the parent keeps open
        // until the spawn returns.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The writable directories for an agent besides its worktree and temp dir:
/// the Kimi CLIs' state dirs (created for the Kimi backends, which need
/// them; kept for other agents only when they exist) and `extra`, created.
pub fn writable_dirs(kimi: bool, extra: &[String]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for d in agent_state_dirs() {
        if kimi {
            let _ = std::fs::create_dir_all(&d);
        }
        if d.exists() {
            dirs.push(d);
        }
    }
    for e in extra {
        let d = expand_home(e);
        let _ = std::fs::create_dir_all(&d);
        dirs.push(d);
    }
    dirs
}

/// Directories an agent backend keeps its own state in, which stay writable.
pub fn agent_state_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    [
        var("KIMI_SHARE_DIR").or_else(|| home.as_ref().map(|h| h.join(".kimi"))),
        var("KIMI_CODE_HOME").or_else(|| home.as_ref().map(|h| h.join(".kimi-code"))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Expands a leading `~/` in a configured path.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}
