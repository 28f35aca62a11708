//! The `exec:<command>` backend: any command, run by `sh -c` in the worktree.

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{AgentSpec, Report, Task, Update};
use crate::error::Result;
use crate::process::{self, Exit};

pub(super) async fn run(
    spec: &AgentSpec,
    command: &str,
    task: &Task,
    _updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    let process = process::Spec {
        command: command.to_string(),
        cwd: task.worktree.clone(),
        env: task.env(),
        log: task.log.clone(),
        timeout: task.timeout,
    };
    let (exit, took) = process::run(&process, cancel).await?;
    Ok(Report {
        spec: spec.to_string(),
        exit: match exit {
            Exit::Code(0) => "ok".to_string(),
            other => other.to_string(),
        },
        exit_code: exit.code(),
        tokens_in: None,
        tokens_out: None,
        usd: None,
        session_id: None,
        duration_ms: took.as_millis() as u64,
        log: task.log.clone(),
    })
}
