//! How an agent's attempt ended: the report the proof records, and the
//! exit it is summed up by.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How an attempt ended, as recorded in the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The `--agent` spec that ran.
    pub spec: String,
    /// How it ended.
    pub exit: AgentExit,
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
    /// Whether trying again later may succeed (rate limits, server errors).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// Where it ran, when not on the machine driving the goal
    /// (`slurm job 42 on node1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_on: Option<String>,
    /// The network it had, and the connections it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::sandbox::egress::NetworkRecord>,
    /// What the agent said: its assistant messages, or an `exec:` agent's
    /// stdout when `Task::answer` is set. Not part of the proof.
    #[serde(skip)]
    pub message: Option<String>,
}

impl Report {
    /// Sets `message` from what the agent's reader gathered, if anything.
    pub(crate) fn set_message(&mut self, said: &str) {
        self.message = Some(said.to_string()).filter(|s| !s.is_empty());
    }

    /// Whether the agent finished its work.
    pub fn ok(&self) -> bool {
        self.exit == AgentExit::Ok
    }
}

/// Why [`watch`] stopped an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The goal was cancelled.
    Cancelled,
    /// The attempt reached its wall-clock timeout.
    TimedOut,
    /// The agent was silent for the inactivity timeout.
    Inactive,
}

/// How an agent's attempt ended. In events and proofs it is the text
/// `ok`, `exit N`, `killed by signal N`, `timed out`, `inactive`,
/// `cancelled` or `error: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentExit {
    /// It finished its work.
    Ok,
    /// Its process exited with this non-zero code.
    Exited(i32),
    /// A signal omk did not send killed it.
    Killed(i32),
    /// omk stopped it at the attempt's timeout.
    TimedOut,
    /// omk stopped it after the inactivity timeout.
    Inactive,
    /// The goal was cancelled (or a budget ran out).
    Cancelled,
    /// The protocol failed, or the turn ended otherwise than normally.
    Error(String),
}

impl AgentExit {
    /// An [`AgentExit::Error`] saying what went wrong.
    pub fn error(what: impl std::fmt::Display) -> AgentExit {
        AgentExit::Error(what.to_string())
    }
}

impl std::fmt::Display for AgentExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentExit::Ok => f.write_str("ok"),
            AgentExit::Exited(code) => write!(f, "exit {code}"),
            AgentExit::Killed(sig) => write!(f, "killed by signal {sig}"),
            AgentExit::TimedOut => f.write_str("timed out"),
            AgentExit::Inactive => f.write_str("inactive"),
            AgentExit::Cancelled => f.write_str("cancelled"),
            AgentExit::Error(what) => write!(f, "error: {what}"),
        }
    }
}

impl std::str::FromStr for AgentExit {
    type Err = std::convert::Infallible;

    /// Reads the text [`Display`](std::fmt::Display) writes; anything else
    /// is an error in the agent's own words.
    fn from_str(text: &str) -> std::result::Result<AgentExit, Self::Err> {
        let number = |rest: &str| rest.parse::<i32>().ok();
        Ok(match text {
            "ok" => AgentExit::Ok,
            "timed out" => AgentExit::TimedOut,
            "inactive" => AgentExit::Inactive,
            "cancelled" => AgentExit::Cancelled,
            _ => match (
                text.strip_prefix("exit ").and_then(number),
                text.strip_prefix("killed by signal ").and_then(number),
            ) {
                (Some(code), _) => AgentExit::Exited(code),
                (_, Some(sig)) => AgentExit::Killed(sig),
                _ => AgentExit::Error(text.strip_prefix("error: ").unwrap_or(text).to_string()),
            },
        })
    }
}

impl Serialize for AgentExit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentExit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(text.parse().unwrap_or_else(|never| match never {}))
    }
}

impl From<Stop> for AgentExit {
    fn from(stop: Stop) -> AgentExit {
        match stop {
            Stop::Cancelled => AgentExit::Cancelled,
            Stop::TimedOut => AgentExit::TimedOut,
            Stop::Inactive => AgentExit::Inactive,
        }
    }
}

impl From<crate::process::Exit> for AgentExit {
    fn from(exit: crate::process::Exit) -> AgentExit {
        use crate::process::Exit;
        match exit {
            Exit::Code(0) => AgentExit::Ok,
            Exit::Code(code) => AgentExit::Exited(code),
            Exit::Signal(sig) => AgentExit::Killed(sig),
            Exit::TimedOut => AgentExit::TimedOut,
            Exit::Cancelled => AgentExit::Cancelled,
        }
    }
}

/// A report with everything but the exit left for [`run`] to fill in.
pub(super) fn report(exit: AgentExit, exit_code: Option<i32>) -> Report {
    Report {
        spec: String::new(),
        exit,
        exit_code,
        tokens_in: None,
        tokens_out: None,
        usd: None,
        session_id: None,
        duration_ms: 0,
        log: PathBuf::new(),
        retryable: false,
        ran_on: None,
        network: None,
        message: None,
    }
}
