//! What the Python Kimi CLI's backends (wire and print) share: starting it
//! on a session, reading its token counts, telling a failure worth retrying.

use tokio::sync::mpsc::UnboundedSender;

use super::{kimi_bin, spawn, Task, Update};
use crate::capture::{Capture, Transcript};
use crate::error::Result;

/// Starts the Python Kimi CLI for `task` with `mode` (e.g. `--wire`), in the
/// worktree, on the session the attempt resumes or a new one omk chooses,
/// and reports that session. Returns the running agent, its session id, the
/// bounded log its stderr goes to, and the transcript omk writes beside it.
pub(super) fn start_kimi(
    task: &Task,
    mode: &[&str],
    extra: &[&str],
    stdin: std::process::Stdio,
    updates: &UnboundedSender<Update>,
) -> Result<(crate::process::Group, String, Capture, Transcript)> {
    let session = task.resume_session.clone().unwrap_or_else(new_uuid);
    let capture = Capture::start(&task.log)?;
    let transcript = capture.transcript()?;
    let stderr = capture.stdio()?;
    let bin = kimi_bin();
    let mut cmd = task.command(&bin)?;
    cmd.args(mode)
        .arg("-w")
        .arg(&task.worktree)
        .args(["-S", &session])
        .args(extra)
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    let group = spawn(cmd, task, &format!("{bin} {}", mode.join(" ")))?;
    let _ = updates.send(Update::Session {
        id: session.clone(),
    });
    Ok((group, session, capture, transcript))
}

/// Whether an error message speaks of a failure worth retrying.
pub(super) fn retryable_text(message: &str) -> bool {
    [
        "429",
        "500",
        "502",
        "503",
        "504",
        "rate limit",
        "overloaded",
        "Connection error",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// The tokens of one step, from the Python Kimi CLI's `StatusUpdate`
/// payload (wire events and the session's `wire.jsonl` alike): input counts
/// fresh and cached tokens, output the generated ones.
pub(super) fn step_tokens(status: &serde_json::Value) -> Option<(u64, u64)> {
    let u = status.get("token_usage")?;
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    Some((
        n("input_other") + n("input_cache_read") + n("input_cache_creation"),
        n("output"),
    ))
}

/// A fresh random (version 4) UUID, for session ids omk chooses.
pub(super) fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, byte)| match i {
            6 => format!("{:02x}", (byte & 0x0f) | 0x40),
            8 => format!("{:02x}", (byte & 0x3f) | 0x80),
            _ => format!("{byte:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
