//! Agents: the processes that do a slice's work in its worktree.
//!
//! [`AgentSpec`] is what `--agent` names; [`run`] runs one attempt of one
//! slice and returns a [`Report`]. While it runs, a backend may stream
//! [`Update`]s (session id, token usage, what it is doing); the slice actor
//! forwards them into the goal's event log. Every backend is cancelled
//! through the same [`CancellationToken`] and bounded by the task's timeout.

mod exec;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Which agent runs in each slice (`--agent SPEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSpec {
    /// `exec:<command>`: a shell command; exit 0 means it finished.
    Exec {
        /// The command, run by `sh -c` in the worktree.
        command: String,
    },
}

impl AgentSpec {
    /// Parses an `--agent` value.
    pub fn parse(spec: &str) -> Result<AgentSpec> {
        if let Some(command) = spec.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(Error::Usage(
                    "--agent exec: needs a command, e.g. --agent 'exec:./my-agent.sh'".into(),
                ));
            }
            return Ok(AgentSpec::Exec {
                command: command.to_string(),
            });
        }
        match spec {
            "kimi" | "kimi-wire" | "kimi-print" => Err(Error::Usage(format!(
                "--agent {spec}: the Kimi backends are not in this build yet; use --agent 'exec:<command>' to run any CLI agent"
            ))),
            s if s.starts_with("acp:") => Err(Error::Usage(format!(
                "--agent {s}: ACP agents are not in this build yet; use --agent 'exec:<command>'"
            ))),
            other => Err(Error::Usage(format!(
                "--agent `{other}` is not an agent spec; use kimi, kimi-wire, kimi-print, acp:<command> or exec:<command>"
            ))),
        }
    }
}

impl std::fmt::Display for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentSpec::Exec { command } => write!(f, "exec:{command}"),
        }
    }
}

/// One attempt of one slice, as an agent sees it.
#[derive(Debug, Clone)]
pub struct Task {
    /// The goal's id.
    pub goal_id: String,
    /// The slice's id.
    pub slice_id: String,
    /// The full prompt.
    pub prompt: String,
    /// The worktree the agent works in (absolute).
    pub worktree: PathBuf,
    /// The slice's write scope.
    pub write_scope: Vec<String>,
    /// 1 for the first try.
    pub attempt: u32,
    /// Where the agent's output is captured.
    pub log: PathBuf,
    /// How long the attempt may take.
    pub timeout: Duration,
}

impl Task {
    /// The `OMK_*` variables every agent process gets (see the contract).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OMK_GOAL_ID".into(), self.goal_id.clone()),
            ("OMK_SLICE_ID".into(), self.slice_id.clone()),
            ("OMK_PROMPT".into(), self.prompt.clone()),
            ("OMK_WORKTREE".into(), self.worktree.display().to_string()),
            ("OMK_WRITE_SCOPE".into(), self.write_scope.join("\n")),
            ("OMK_ATTEMPT".into(), self.attempt.to_string()),
        ]
    }
}

/// Something a running agent reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// The agent's own session id, for resuming it.
    Session {
        /// The id.
        id: String,
    },
    /// Tokens spent so far in this attempt.
    Usage {
        /// Input tokens.
        tokens_in: u64,
        /// Output tokens.
        tokens_out: u64,
    },
}

/// How an attempt ended, as recorded in the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The `--agent` spec that ran.
    pub spec: String,
    /// `ok`, or how it failed (`exit 3`, `timed out`, `cancelled`).
    pub exit: String,
    /// The process exit code, when there is one.
    pub exit_code: Option<i32>,
    /// Input tokens, `null` when the backend reports none.
    pub tokens_in: Option<u64>,
    /// Output tokens, `null` when the backend reports none.
    pub tokens_out: Option<u64>,
    /// Cost in US dollars, `null` when unknown.
    pub usd: Option<f64>,
    /// The agent's session id, when it has one.
    pub session_id: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// The captured transcript or output.
    pub log: PathBuf,
}

impl Report {
    /// Whether the agent finished its work.
    pub fn ok(&self) -> bool {
        self.exit == "ok"
    }
}

/// Runs one attempt of `task` with the agent `spec`.
pub async fn run(
    spec: &AgentSpec,
    task: &Task,
    updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    match spec {
        AgentSpec::Exec { command } => exec::run(spec, command, task, updates, cancel).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_what_is_accepted() {
        assert_eq!(
            AgentSpec::parse("exec:./a.sh --fast").unwrap().to_string(),
            "exec:./a.sh --fast"
        );
        assert!(AgentSpec::parse("exec:")
            .unwrap_err()
            .to_string()
            .contains("needs a command"));
        let err = AgentSpec::parse("claude").unwrap_err();
        assert!(err.to_string().contains("exec:<command>"));
        assert_eq!(err.exit_code(), 2);
    }
}
