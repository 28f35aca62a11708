//! The steps of a goal, read back from its events: every agent run and
//! every gate run, with its attempt, outcome, times and log; and the steps
//! without a log of their own that failed an attempt: a refused commit, a
//! merge that conflicted.
//!
//! `goal logs` finds a slice's logs here, and `goal logs --failed` every
//! failed step; the event log is the only source, so this works for a goal
//! driven by another process, a finished one, or one from another clone.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::agent::AgentExit;
use crate::store::events::{Event, EventBody};

/// What ran in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// The slice's agent.
    Agent,
    /// A gate, by name.
    Gate(String),
    /// The check of the attempt's commit (write scope, links, `.git`).
    Commit,
    /// Its merge into the integration.
    Merge,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    /// It did its job: the agent finished, the gate passed.
    Passed,
    /// It failed (the outcome says how).
    Failed,
    /// A cancel stopped the agent: no verdict.
    Stopped,
}

/// One agent or gate run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The slice, or `None` for the integration's gates and the base check.
    pub slice: Option<String>,
    /// The slice's attempt it belongs to (0 for the integration's).
    pub attempt: u32,
    /// What ran.
    pub kind: StepKind,
    /// How it ended.
    pub end: StepEnd,
    /// How it ended, in words (`exit 1`, `timed out`, `ok`).
    pub outcome: String,
    /// Whether it is a gate result reused from an earlier run.
    pub cached: bool,
    /// When it started and ended (RFC 3339), as far as the log says.
    pub started: Option<String>,
    /// When it ended.
    pub ended: String,
    /// Its log.
    pub log: PathBuf,
    /// Its network, and what the sandbox refused it.
    pub network: Option<crate::sandbox::egress::NetworkRecord>,
    /// What happened, for a step without a log of its own (a refused
    /// commit, a conflict).
    pub said: Option<String>,
}

impl Step {
    /// A line saying which connections the sandbox refused this step, if any.
    pub fn refused_line(&self) -> Option<String> {
        let n = self.network.as_ref().filter(|n| !n.refused.is_empty())?;
        Some(format!(
            "omk: the sandbox refused connections to {}",
            n.refused_list()
        ))
    }

    /// `agent` or `gate NAME`.
    pub fn what(&self) -> String {
        match &self.kind {
            StepKind::Agent => "agent".into(),
            StepKind::Gate(name) => format!("gate {name}"),
            StepKind::Commit => "commit".into(),
            StepKind::Merge => "merge".into(),
        }
    }
}

/// A failed step without a log of its own: what happened is `said`.
fn unlogged(
    slice: &str,
    attempt: u32,
    kind: StepKind,
    outcome: &str,
    said: &str,
    e: &Event,
) -> Step {
    Step {
        slice: Some(slice.to_string()),
        attempt,
        kind,
        end: StepEnd::Failed,
        outcome: outcome.to_string(),
        cached: false,
        started: None,
        ended: e.ts.clone(),
        log: PathBuf::new(),
        network: None,
        said: Some(said.to_string()),
    }
}

/// Every step of the goal, in the order they ended.
pub fn steps(events: &[Event]) -> Vec<Step> {
    let mut attempt: HashMap<String, u32> = HashMap::new();
    let mut started: HashMap<(Option<String>, String), String> = HashMap::new();
    let mut steps = Vec::new();
    for e in events {
        match &e.body {
            EventBody::SliceStarted {
                slice, attempt: n, ..
            } => {
                attempt.insert(slice.clone(), *n);
                started.insert((Some(slice.clone()), String::new()), e.ts.clone());
            }
            EventBody::GateStarted { slice, gate, .. } => {
                started.insert((slice.clone(), gate.clone()), e.ts.clone());
            }
            EventBody::AgentFinished {
                slice,
                attempt: n,
                report,
            } => steps.push(Step {
                slice: Some(slice.clone()),
                attempt: *n,
                kind: StepKind::Agent,
                end: match report.exit {
                    AgentExit::Ok => StepEnd::Passed,
                    AgentExit::Cancelled => StepEnd::Stopped,
                    _ => StepEnd::Failed,
                },
                outcome: report.exit.to_string(),
                cached: false,
                started: started.remove(&(Some(slice.clone()), String::new())),
                ended: e.ts.clone(),
                log: report.log.clone(),
                network: report.network.clone(),
                said: None,
            }),
            EventBody::GateFinished { slice, result, .. } => steps.push(Step {
                slice: slice.clone(),
                attempt: slice
                    .as_ref()
                    .and_then(|s| attempt.get(s).copied())
                    .unwrap_or(0),
                kind: StepKind::Gate(result.name.clone()),
                // A gate a cancel stopped records no result at all.
                end: if result.passed {
                    StepEnd::Passed
                } else {
                    StepEnd::Failed
                },
                outcome: result.outcome.to_string(),
                cached: result.cached,
                started: started.remove(&(slice.clone(), result.name.clone())),
                ended: e.ts.clone(),
                log: result.log.clone(),
                network: result.network.clone(),
                said: None,
            }),
            EventBody::SliceFailed {
                slice,
                attempt: n,
                status: crate::state::SliceStatus::ScopeViolation,
                reason,
                ..
            } => steps.push(unlogged(slice, *n, StepKind::Commit, "refused", reason, e)),
            EventBody::MergeConflict {
                slice,
                attempt: n,
                paths,
                before_gates,
                ..
            } => {
                let when = match before_gates {
                    true => "before its gates ran",
                    false => "merging it",
                };
                let said = format!(
                    "it conflicts with the integration ({when}) on {}",
                    paths.join(", ")
                );
                steps.push(unlogged(slice, *n, StepKind::Merge, "conflict", &said, e));
            }
            _ => {}
        }
    }
    steps
}
