//! The `exec:<command>` backend: any command, run by `sh -c` in the worktree.
//!
//! Its output goes to the attempt's log; output is its sign of life for the
//! inactivity timeout.

use std::process::Stdio;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{report, watch, Activity, Report, Task};
use crate::capture::open_log;
use crate::error::{IoContext, Result};
use crate::process::exit_of;

pub(super) async fn run(command: &str, task: &Task, cancel: &CancellationToken) -> Result<Report> {
    // Output goes to a bounded log (see `crate::capture`); a wanted answer
    // is stdout alone, to its own file.
    let capture = crate::capture::Capture::start(&task.log)?;
    let stdout = match &task.answer {
        Some(path) => Stdio::from(open_log(path)?),
        None => capture.stdio()?,
    };
    let mut cmd = task.command("sh", command)?;
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(capture.stdio()?);
    let mut group = super::spawn(cmd, task, command)?;
    let activity = Activity::new();
    let output_grows = {
        let (activity, written) = (activity.clone(), capture.written());
        let answer = task.answer.clone();
        async move {
            let mut seen = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let answered = answer
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
                let len = written.load(std::sync::atomic::Ordering::Relaxed) + answered;
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
            capture.finish().await?;
            return Ok(report(stop.into(), None));
        }
        _ = output_grows => unreachable!("the output watcher never ends"),
    };
    let mut r = report(exit.into(), exit.code());
    capture.finish().await?;
    if let Some(answer) = &task.answer {
        crate::redact::redact_file(answer)?;
    }
    r.message = task
        .answer
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    Ok(r)
}
