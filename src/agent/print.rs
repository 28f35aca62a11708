//! The `kimi-print` backend: `kimi --print --output-format stream-json`.
//!
//! One process per attempt with the prompt on the command line. stdout is
//! one JSON message per line, mixed with plain-text error lines, all kept in
//! the transcript. Print mode approves every tool call itself, so the
//! approval policy cannot be applied here; the write-scope check still is.
//! Exit 75 is retryable, 1 is not. Token usage is read afterwards from the
//! session's `wire.jsonl`, which is why omk chooses the session id.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{report, start_kimi, step_tokens, watch, Activity, AgentExit, Report, Task, Update};
use crate::error::{Error, IoContext, Result};
use crate::process::{exit_of, Exit};

/// The exit code the Python CLI uses for retryable failures.
const RETRYABLE_EXIT: i32 = 75;

pub(super) async fn run(
    task: &Task,
    updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    let (mut group, session, capture, log) = start_kimi(
        task,
        &["--print", "--output-format", "stream-json"],
        &["-p", &task.prompt],
        Stdio::null(),
        &updates,
    )?;
    let Some(stdout) = group.child.stdout.take() else {
        return Err(Error::AgentIo("the agent's stdout was not captured".into()));
    };
    let activity = Activity::new();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let read = {
        let (activity, said, log) = (activity.clone(), said.clone(), &log);
        async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                activity.touch();
                log.note("<-", &line);
                if let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) {
                    if msg["role"] == "assistant" {
                        if let (Some(text), Ok(mut said)) = (msg["content"].as_str(), said.lock()) {
                            said.push_str(text);
                            said.push('\n');
                        }
                    }
                }
            }
        }
    };
    let exit = tokio::select! {
        (status, _) = async { tokio::join!(group.child.wait(), read) } => {
            let status = status.context(|| "waiting for the Kimi CLI (--print)".to_string())?;
            group.kill();
            exit_of(status)
        }
        stop = watch(task, &activity, cancel) => {
            group.terminate().await;
            log.close();
            capture.finish().await?;
            let mut r = report(stop.into(), None);
            r.session_id = Some(session);
            return Ok(r);
        }
    };
    log.close();
    capture.finish().await?;
    let mut r = match exit {
        Exit::Code(0) => report(AgentExit::Ok, Some(0)),
        other => {
            let mut r = report(other.into(), other.code());
            r.retryable = other.code() == Some(RETRYABLE_EXIT);
            r
        }
    };
    if let Some((tokens_in, tokens_out)) = session_usage(&session) {
        r.tokens_in = Some(tokens_in);
        r.tokens_out = Some(tokens_out);
        let _ = updates.send(Update::Usage {
            tokens_in,
            tokens_out: Some(tokens_out),
        });
    }
    r.session_id = Some(session);
    r.set_message(&said.lock().map(|s| s.clone()).unwrap_or_default());
    Ok(r)
}

/// The Kimi CLI's data directory: `$KIMI_SHARE_DIR`, else `~/.kimi`.
fn share_dir() -> Option<PathBuf> {
    std::env::var_os("KIMI_SHARE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kimi")))
}

/// Sums the token usage of every step of `session` from its `wire.jsonl`.
fn session_usage(session: &str) -> Option<(u64, u64)> {
    let sessions = share_dir()?.join("sessions");
    let dir = std::fs::read_dir(sessions)
        .ok()?
        .flatten()
        .map(|d| d.path().join(session))
        .find(|p| p.is_dir())?;
    let text = std::fs::read_to_string(dir.join("wire.jsonl")).ok()?;
    let (mut tin, mut tout, mut seen) = (0, 0, false);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let msg = &v["message"];
        if msg["type"] != "StatusUpdate" {
            continue;
        }
        if let Some((i, o)) = step_tokens(&msg["payload"]) {
            tin += i;
            tout += o;
            seen = true;
        }
    }
    seen.then_some((tin, tout))
}
