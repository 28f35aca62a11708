//! Runs one subprocess in its own session, confined, with a timeout, a
//! cancel token and its output captured to a log file.
//!
//! Agents and gates are both started through [`Group`], so both are stopped
//! the same way: the whole process group, `SIGTERM` first, `SIGKILL` after a
//! grace period. In the sandbox's pid namespace the kernel then kills
//! whatever else the process left running (see [`crate::sandbox`]); without
//! one, whatever the group left running after a normal exit is killed too.
//! Each group is a session of its own, so no agent or gate has a
//! controlling terminal (it cannot read or inject keystrokes into omk's).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{IoContext, Result};

/// How long a group gets between `SIGTERM` and `SIGKILL`.
const GRACE: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The shell command, run as `sh -c <command>`.
    pub command: String,
    /// The working directory.
    pub cwd: PathBuf,
    /// The whole environment: nothing else of omk's is passed on.
    pub env: Vec<(String, String)>,
    /// Where it may write.
    pub confinement: crate::sandbox::Confinement,
    /// Where stdout and stderr go (created or truncated).
    pub log: PathBuf,
    /// How long it may run.
    pub timeout: Duration,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal it did not get from omk killed it.
    Signal(i32),
    /// omk killed it at its timeout.
    TimedOut,
    /// omk killed it because the run was cancelled.
    Cancelled,
}

impl Exit {
    /// Whether the process exited 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The exit code, when there is one.
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            _ => None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => f.write_str("timed out"),
            Exit::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Runs `spec` to its end and says how it ended and how long it took.
///
/// Its output goes to `spec.log` through [`crate::capture`]: bounded, and
/// scrubbed once it ends.
pub async fn run(spec: &Spec, cancel: &CancellationToken) -> Result<(Exit, Duration)> {
    let capture = crate::capture::Capture::start(&spec.log)?;
    let started = Instant::now();
    let mut command = spec.confinement.command("sh")?;
    command
        .env_clear()
        .arg("-c")
        .arg(&spec.command)
        .stdin(Stdio::null())
        .stdout(capture.stdio()?)
        .stderr(capture.stdio()?);
    let mut group = Group::spawn(command, &spec.cwd, &spec.env, &spec.command)?;
    let ended = tokio::select! {
        status = group.child.wait() => Some(status),
        _ = tokio::time::sleep(spec.timeout) => None,
        _ = cancel.cancelled() => None,
    };
    let exit = match ended {
        Some(status) => {
            let status = status.context(|| format!("waiting for `{}`", spec.command))?;
            group.kill();
            exit_of(status)
        }
        None => {
            group.terminate().await;
            if cancel.is_cancelled() {
                Exit::Cancelled
            } else {
                Exit::TimedOut
            }
        }
    };
    let took = started.elapsed();
    capture.finish().await?;
    Ok((exit, took))
}

/// How a finished process ended.
pub fn exit_of(status: std::process::ExitStatus) -> Exit {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Signal(0),
    }
}

/// A child process leading its own process group.
///
/// Dropping it kills the whole group, so no path out of a backend leaves
/// agent processes behind.
pub struct Group {
    /// The group leader.
    pub child: tokio::process::Child,
    pgid: Option<i32>,
}

impl Group {
    /// Spawns `command` in `cwd` with `env` added, as the leader of a new
    /// session (and so of a new process group).
    pub fn spawn(
        mut command: tokio::process::Command,
        cwd: &std::path::Path,
        env: &[(String, String)],
        what: &str,
    ) -> Result<Group> {
        // SAFETY: setsid is async-signal-safe and only detaches the child
        // from omk's session and terminal.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .spawn()
            .context(|| format!("starting `{what}` in {}", cwd.display()))?;
        let pgid = child.id().map(|id| id as i32);
        if let Some(id) = pgid {
            live_groups().insert(id, ());
        }
        crate::fault::point("process.spawned");
        Ok(Group { child, pgid })
    }

    /// Kills every process of the group at once.
    pub fn kill(&self) {
        kill_group(self.pgid, libc::SIGKILL);
    }

    /// Asks the group to stop (SIGTERM), then kills what is left after a grace period.
    pub async fn terminate(&mut self) {
        kill_group(self.pgid, libc::SIGTERM);
        if tokio::time::timeout(GRACE, self.child.wait())
            .await
            .is_err()
        {
            kill_group(self.pgid, libc::SIGKILL);
            let _ = self.child.wait().await;
        }
        kill_group(self.pgid, libc::SIGKILL);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        if let Some(id) = self.pgid {
            live_groups().remove(&id);
        }
    }
}

fn live_groups() -> &'static dashmap::DashMap<i32, ()> {
    static GROUPS: std::sync::OnceLock<dashmap::DashMap<i32, ()>> = std::sync::OnceLock::new();
    GROUPS.get_or_init(dashmap::DashMap::new)
}

/// Kills every process group this process started and has not reaped, for
/// an exit that cannot wait (a second Ctrl-C).
pub fn kill_all_groups() {
    for entry in live_groups().iter() {
        kill_group(Some(*entry.key()), libc::SIGKILL);
    }
}

/// Kills the process groups of agents and gates a previous controller of
/// `goal_id` left running when it died: every process whose environment
/// names the goal (`OMK_GOAL_ID`) and no cluster job (`OMK_JOB`), with its
/// group. Returns how many groups.
pub fn kill_orphans(goal_id: &str) -> usize {
    let needle = format!("OMK_GOAL_ID={goal_id}");
    let me = std::process::id() as i32;
    let mut groups = std::collections::BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let mut vars = environ.split(|b| *b == 0);
        // A cluster job's agents and gates (`OMK_JOB`) are their worker's,
        // even on this machine: a resumed goal takes their job up again.
        let ours = |var: &[u8]| var == needle.as_bytes();
        let remote = |var: &[u8]| var.starts_with(b"OMK_JOB=");
        if vars.clone().any(ours) && !vars.any(remote) {
            // SAFETY: getpgid only reads the process table.
            let pgid = unsafe { libc::getpgid(pid) };
            if pgid > 0 && pgid != me {
                groups.insert(pgid);
            }
        }
    }
    for pgid in &groups {
        kill_group(Some(*pgid), libc::SIGKILL);
    }
    groups.len()
}

fn kill_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid.filter(|p| *p > 0) {
        // SAFETY: killpg only sends a signal; a stale group id yields ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, command: &str, timeout: Duration) -> Spec {
        Spec {
            command: command.into(),
            cwd: dir.to_path_buf(),
            env: vec![
                ("OMK_TEST_VAR".into(), "seen".into()),
                ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ],
            confinement: Default::default(),
            log: dir.join("logs/out.log"),
            timeout,
        }
    }

    /// Whether `pid` runs; a zombie waiting for its reaper does not.
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(
            dir.path(),
            "echo $OMK_TEST_VAR; echo err >&2; exit 3",
            Duration::from_secs(10),
        );
        let (exit, _) = run(&s, &CancellationToken::new()).await.unwrap();
        assert_eq!(exit, Exit::Code(3));
        assert_eq!(std::fs::read_to_string(&s.log).unwrap(), "seen\nerr\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let s = spec(dir.path(), &command, Duration::from_millis(300));
        let (exit, took) = run(&s, &CancellationToken::new()).await.unwrap();
        assert_eq!(exit, Exit::TimedOut);
        assert!(
            took >= Duration::from_millis(300),
            "stopped early: {took:?}"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Signals are delivered asynchronously: give the kernel a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !alive(pid),
            "the background child {pid} survived the timeout"
        );
    }

    #[tokio::test]
    async fn cancel_stops_a_running_process() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "sleep 30", Duration::from_secs(60));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c2.cancel();
        });
        let (exit, _) = run(&s, &cancel).await.unwrap();
        assert_eq!(exit, Exit::Cancelled);
    }
}
