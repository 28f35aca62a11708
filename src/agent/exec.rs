//! The `exec:<command>` backend: any command, run by `sh -c` in the worktree.
//!
//! Its output goes to the attempt's log; output is its sign of life for the
//! inactivity timeout.

use std::process::Stdio;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{report, watch, Activity, Report, Task};
use crate::error::{IoContext, Result};
use crate::process::{exit_of, open_log};

pub(super) async fn run(command: &str, task: &Task, cancel: &CancellationToken) -> Result<Report> {
    let log = open_log(&task.log)?;
    let log_err = log
        .try_clone()
        .context(|| format!("opening {}", task.log.display()))?;
    // A wanted answer is stdout alone; otherwise stdout joins stderr in the log.
    let log = match &task.answer {
        Some(path) => open_log(path)?,
        None => log,
    };
    let mut cmd = task.command("sh")?;
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    let mut group = super::spawn(cmd, task, command)?;
    let activity = Activity::new();
    let output_grows = {
        let (activity, log) = (activity.clone(), task.log.clone());
        async move {
            let mut seen = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
                if len != seen {
                    seen = len;
                    activity.touch();
                }
            }
        }
    };
    let exit = tokio::select! {
        status = group.child.wait() => {
            let status = status.context(|| format!("waiting for `{command}`"))?;
            group.kill();
            exit_of(status)
        }
        stop = watch(task, &activity, cancel) => {
            group.terminate().await;
            return Ok(report(stop.into(), None));
        }
        _ = output_grows => unreachable!("the output watcher never ends"),
    };
    let mut r = report(exit.into(), exit.code());
    crate::redact::redact_file(&task.log)?;
    if let Some(answer) = &task.answer {
        crate::redact::redact_file(answer)?;
    }
    r.message = task
        .answer
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    Ok(r)
}
