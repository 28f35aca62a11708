//! `goal run --detach`: the goal's controller in a process of its own, in
//! a session of its own, so that it outlives whoever started it (a shell,
//! an MCP client); the starter learns the goal's id at once and leaves.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::error::IoContext;

/// How a detached start went.
#[derive(Debug)]
pub enum Detached {
    /// The goal exists and its controller runs; its output goes to `log`.
    Started { goal_id: String, log: PathBuf },
    /// The controller ended before the goal existed (bad input, a plan
    /// that could not be made): its exit code and what it said.
    Ended { code: u8, said: String },
}

/// How often the starter looks whether the goal exists yet.
const POLL: Duration = Duration::from_millis(50);

/// Starts `omk` again with `args` (this command's arguments without
/// `--detach`) and a new goal id, in a session of its own, stdin closed,
/// stdout and stderr to a file in the repository's store; returns once the
/// goal's log has its first event, or the controller ended first. Planning
/// by an agent happens before the goal exists, so this may take as long.
pub fn detach(dir: &Path, args: &[OsString]) -> Result<Detached> {
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal_id = crate::store::new_goal_id();
    let log = store.detached_log(&goal_id);
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
    }
    let out = std::fs::File::create(&log).context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context(|| "finding omk's own program".to_string())?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .args(["--goal-id", &goal_id, "--no-progress"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the child leaves this session so
    // that a signal to the starter's terminal or process group misses it.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .context(|| "starting the goal's controller".to_string())?;
    let events = store
        .root()
        .join("goals")
        .join(&goal_id)
        .join("events.jsonl");
    loop {
        let begun = std::fs::metadata(&events).is_ok_and(|m| m.len() > 0);
        if begun {
            return Ok(Detached::Started { goal_id, log });
        }
        if let Some(status) = child
            .try_wait()
            .context(|| "waiting for the goal's controller".to_string())?
        {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            let code = status.code().map_or(1, |c| c.clamp(0, 255) as u8);
            return Ok(Detached::Ended { code, said });
        }
        std::thread::sleep(POLL);
    }
}
