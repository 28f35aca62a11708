//! The goal's event log: append-only JSON Lines, one writer, fsync per event.
//!
//! Every actor reports what it did as an [`EventBody`]; the supervisor stamps
//! it with a sequence number and time, appends it here, and folds it into the
//! goal's state (`state::GoalState::apply`). The log alone is enough to
//! rebuild the state, so it is what `replay` reads.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent;
use crate::gate::{GateResult, GateSpec};
use crate::plan::Plan;
use crate::store::kinds::{Deliver, DeliverOptions, Delivery, GoalStatus, SliceStatus};
use crate::store::limits::Limits;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, … without gaps.
    pub seq: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub ts: String,
    /// The SHA-256 of the previous line as written (empty for the first), so
    /// an edited, reordered or cut log is detected.
    #[serde(default)]
    pub prev: String,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened. Serialized with its `kind` and, when it concerns one, its `slice`.
// `goal_started` is large and happens once per goal; boxing it would only
// complicate every match on the others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// The goal was created; carries everything needed to rebuild its state.
    GoalStarted {
        goal_id: String,
        goal: String,
        repository: PathBuf,
        base_commit: String,
        base_tree: String,
        base_ref: Option<String>,
        integration_branch: String,
        plan: Plan,
        agent: String,
        gates: Vec<GateSpec>,
        allow_no_gates: bool,
        max_attempts: u32,
        concurrency: usize,
        deliver: Deliver,
        #[serde(default, skip_serializing_if = "DeliverOptions::is_default")]
        deliver_options: DeliverOptions,
        #[serde(default)]
        limits: Limits,
    },
    /// A new controller took the goal over after the last one stopped.
    GoalResumed {
        pid: u32,
        /// Limits raised for the rest of the goal.
        #[serde(default, skip_serializing_if = "Raised::is_empty")]
        raised: Raised,
    },
    /// `goal retry`: an ended goal goes on, these slices with fresh attempts.
    GoalRetried {
        /// The slices that get attempts again.
        slices: Vec<String>,
        /// The goal's attempt limit from now on (raised so each gets more).
        max_attempts: u32,
    },
    /// An attempt of a slice was started.
    SliceStarted {
        slice: String,
        attempt: u32,
        start_commit: String,
        branch: String,
        worktree: PathBuf,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conflict_paths: Vec<String>,
        /// The agent session this attempt resumes (an interrupted attempt of
        /// a backend that can resume one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_session: Option<String>,
        /// The directories the worktree materializes (`--sparse`); absent
        /// for a full checkout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sparse: Option<Vec<String>>,
        /// The commit the worktree starts from when it is not
        /// `start_commit`: a feedback attempt goes on from the failed
        /// attempt's own commit, and is still judged against `start_commit`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_from: Option<String>,
    },
    /// The agent reported something while running.
    AgentUpdate {
        slice: String,
        attempt: u32,
        update: agent::Update,
    },
    /// The agent failed in a way worth retrying; the goal backs off and runs it again.
    AgentRetry {
        slice: String,
        attempt: u32,
        retry: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The agent process ended.
    AgentFinished {
        slice: String,
        attempt: u32,
        report: agent::Report,
    },
    /// What the agent did was committed on the slice's branch.
    SliceCommitted {
        slice: String,
        attempt: u32,
        commit: String,
        tree: String,
        changed_files: Vec<String>,
        /// Its gates ran with it, where it ran (a cluster job): their
        /// `gate_finished` and `verified` follow, and no gate job is sent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gated: bool,
    },
    /// The attempt ended without a mergeable commit.
    SliceFailed {
        slice: String,
        attempt: u32,
        status: SliceStatus,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paths: Vec<String>,
    },
    /// The user's repository changed while an unsandboxed agent ran.
    CheckoutTouched {
        slice: String,
        attempt: u32,
        evidence: Vec<String>,
    },
    /// The slice cannot start because a dependency will never merge.
    SliceBlocked { slice: String, reason: String },
    /// A gate started on a slice's tree (or the integration's, without `slice`).
    GateStarted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        /// The slice's attempt judged (absent for the integration, and in
        /// logs written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        gate: String,
        tree: String,
    },
    /// A setup's outputs were made ready in the slot of a slice's gates
    /// (or the integration's, without `slice`) for `tree`, before a gate ran.
    SetupReady {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        setup: String,
        /// What decides its outputs: command, inputs' content, environment.
        key: String,
        tree: String,
        /// The worktree slot it readied.
        #[serde(default)]
        slot: std::path::PathBuf,
        /// Run in the slot, or seeded from a run for the same key.
        how: crate::setup::How,
        duration_ms: u64,
    },
    /// A gate ended.
    GateFinished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        result: GateResult,
    },
    /// All gates of a slice (or of the integration) were run, up to the first failure.
    Verified {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slice: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        passed: bool,
        /// The run was cancelled while the gates ran: no verdict; they run
        /// again on resume.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
    },
    /// The slice's commit was merged onto the candidate: the merges the
    /// integration gates have not yet passed, on top of the integration
    /// branch.
    SliceMerged {
        slice: String,
        attempt: u32,
        /// What the slice contributes: one commit of its accepted tree on
        /// the commit it started from (in older logs, the attempt's own).
        slice_commit: String,
        /// The accepted attempt's commit, which stays local.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt_commit: Option<String>,
        commit: String,
        tree: String,
        /// The commit it was merged onto. A merge onto anything but the
        /// candidate's tip is stale (the candidate was rebuilt meanwhile)
        /// and changes nothing. Absent in logs from before candidates.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        onto: String,
    },
    /// The slice's commit conflicts with what is already integrated.
    MergeConflict {
        slice: String,
        attempt: u32,
        paths: Vec<String>,
        /// The commit it did not merge onto (see `slice_merged`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        onto: String,
        /// Found before its gates ran, which were skipped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        before_gates: bool,
    },
    /// The slice's gates wait: its commit conflicts with a slice that
    /// committed before it and is still on its way to the integration, so
    /// they would be spent for nothing if that one merges. They run once it
    /// has merged (then the conflict is the slice's verdict) or failed.
    GatesDeferred {
        slice: String,
        attempt: u32,
        /// The slice ahead of it.
        behind: String,
        paths: Vec<String>,
    },
    /// The integration gates passed on this candidate commit: the
    /// integration branch moved forward to it.
    IntegrationAdvanced {
        commit: String,
        tree: String,
        /// The branch was gone (deleted by someone) and was made again here.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recreated: bool,
    },
    /// The candidate failed an integration gate, and this slice's merge is
    /// the first whose tree fails it: the slice is taken out, the
    /// candidate goes back to the merge before it (which passed), and the
    /// slices merged after it are merged again.
    SliceEjected {
        slice: String,
        attempt: u32,
        /// The gate that failed.
        gate: String,
        /// The tree of the slice's merge, on which the gate failed.
        tree: String,
        /// The candidate commit the rest are merged onto again.
        onto: String,
        /// The slices merged after it, to merge again, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remerge: Vec<String>,
    },
    /// A slice's attempt failed in a way its agent can repair, and another
    /// attempt is due, told what went wrong.
    SliceRetrying {
        slice: String,
        /// The attempt that failed.
        attempt: u32,
        /// What went wrong.
        cause: RetryCause,
        /// What the next attempt's agent is told (its prompt and `OMK_FEEDBACK`).
        feedback: String,
        /// Where the next attempt's worktree starts: the failed commit, for a
        /// gate or scope failure; absent to start from the integration head.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_from: Option<String>,
    },
    /// The slice gates ran on the base commit, before any agent started.
    BaseChecked {
        passed: bool,
        gates: Vec<GateResult>,
    },
    /// A budget ran out: running agents are cancelled and no slice starts.
    BudgetExhausted { reason: String },
    /// The integration gates start on this candidate commit and tree (in
    /// whichever slot is free: logs before 0.12 name one as `worktree`).
    IntegrationStarted { commit: String, tree: String },
    /// The goal's result was delivered (`--deliver`, `goal deliver`), or why not.
    Delivery(Delivery),
    /// A step of landing the goal's pull request (`omk goal land`).
    Landing(crate::store::landing::LandStep),
    /// The goal ended.
    GoalFinished {
        status: GoalStatus,
        reason: Option<String>,
    },
}

/// Limits a resumed goal runs under from now on, where they were raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Raised {
    /// Attempts per slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Wall-clock time for this run of the goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_time_ms: Option<u64>,
    /// Input plus output tokens over all agents, all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// US dollars over all agents, all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

impl Raised {
    /// Whether nothing is raised.
    pub fn is_empty(&self) -> bool {
        *self == Raised::default()
    }
}

/// What made a slice's attempt fail in a way another attempt can repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RetryCause {
    /// A gate failed on its commit.
    Gate {
        /// The gate.
        gate: String,
    },
    /// Its commit was refused: paths outside its write scope, an unsafe
    /// symlink, a changed `.git`.
    Scope,
    /// Its commit conflicts with what is already integrated.
    Conflict,
    /// Its merge is the first that made an integration gate fail.
    Integration {
        /// The gate.
        gate: String,
        /// The tree it failed on.
        tree: String,
    },
}

impl EventBody {
    /// The `setup_ready` of a setup readied in a slot holding `tree`, for
    /// `slice`'s `attempt` (neither, for the base check and the integration).
    pub fn setup_ready(
        done: crate::setup::Readied,
        slice: Option<String>,
        attempt: Option<u32>,
        tree: &str,
    ) -> EventBody {
        EventBody::SetupReady {
            slice,
            attempt,
            setup: done.name,
            key: done.key,
            tree: tree.to_string(),
            slot: done.slot,
            how: done.how,
            duration_ms: done.duration_ms,
        }
    }

    /// The slice the event concerns, if any.
    pub fn slice(&self) -> Option<&str> {
        match self {
            EventBody::SliceStarted { slice, .. }
            | EventBody::AgentUpdate { slice, .. }
            | EventBody::AgentRetry { slice, .. }
            | EventBody::AgentFinished { slice, .. }
            | EventBody::SliceCommitted { slice, .. }
            | EventBody::SliceFailed { slice, .. }
            | EventBody::SliceBlocked { slice, .. }
            | EventBody::CheckoutTouched { slice, .. }
            | EventBody::SliceMerged { slice, .. }
            | EventBody::SliceRetrying { slice, .. }
            | EventBody::SliceEjected { slice, .. }
            | EventBody::MergeConflict { slice, .. }
            | EventBody::GatesDeferred { slice, .. } => Some(slice),
            EventBody::GateStarted { slice, .. }
            | EventBody::SetupReady { slice, .. }
            | EventBody::GateFinished { slice, .. }
            | EventBody::Verified { slice, .. } => slice.as_deref(),
            _ => None,
        }
    }

    /// The slice's attempt a report from a child concerns, if it says.
    pub fn attempt(&self) -> Option<u32> {
        match self {
            EventBody::AgentUpdate { attempt, .. }
            | EventBody::AgentRetry { attempt, .. }
            | EventBody::AgentFinished { attempt, .. }
            | EventBody::SliceCommitted { attempt, .. }
            | EventBody::SliceFailed { attempt, .. }
            | EventBody::CheckoutTouched { attempt, .. }
            | EventBody::SliceMerged { attempt, .. }
            | EventBody::MergeConflict { attempt, .. } => Some(*attempt),
            EventBody::GateStarted { attempt, .. }
            | EventBody::SetupReady { attempt, .. }
            | EventBody::GateFinished { attempt, .. }
            | EventBody::Verified { attempt, .. } => *attempt,
            _ => None,
        }
    }

    /// The event's `kind` as it appears in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::GoalStarted { .. } => "goal_started",
            EventBody::GoalResumed { .. } => "goal_resumed",
            EventBody::GoalRetried { .. } => "goal_retried",
            EventBody::SliceStarted { .. } => "slice_started",
            EventBody::AgentUpdate { .. } => "agent_update",
            EventBody::AgentRetry { .. } => "agent_retry",
            EventBody::AgentFinished { .. } => "agent_finished",
            EventBody::SliceCommitted { .. } => "slice_committed",
            EventBody::SliceFailed { .. } => "slice_failed",
            EventBody::SliceBlocked { .. } => "slice_blocked",
            EventBody::CheckoutTouched { .. } => "checkout_touched",
            EventBody::GateStarted { .. } => "gate_started",
            EventBody::SetupReady { .. } => "setup_ready",
            EventBody::GateFinished { .. } => "gate_finished",
            EventBody::Verified { .. } => "verified",
            EventBody::SliceMerged { .. } => "slice_merged",
            EventBody::MergeConflict { .. } => "merge_conflict",
            EventBody::GatesDeferred { .. } => "gates_deferred",
            EventBody::SliceRetrying { .. } => "slice_retrying",
            EventBody::BaseChecked { .. } => "base_checked",
            EventBody::BudgetExhausted { .. } => "budget_exhausted",
            EventBody::IntegrationStarted { .. } => "integration_started",
            EventBody::IntegrationAdvanced { .. } => "integration_advanced",
            EventBody::SliceEjected { .. } => "slice_ejected",
            EventBody::Delivery(_) => "delivery",
            EventBody::Landing(_) => "landing",
            EventBody::GoalFinished { .. } => "goal_finished",
        }
    }
}

mod log;
#[cfg(test)]
mod tests;

pub use log::{check_chain, line_hash, read, EventLog, Scan, Stop};
