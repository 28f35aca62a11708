//! A goal's state, derived only from its events.
//!
//! [`GoalState::apply`] is the one place where events change state; the
//! supervisor calls it for every event it records, and `replay` calls it on
//! the stored log. Serialized, a [`GoalState`] is the goal's proof.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent;
use crate::gate::{GateResult, GateSpec};
use crate::plan::{Plan, SliceSpec};
use crate::store::events::{Event, EventBody, RetryCause};

/// Where a finished goal's result goes (`--deliver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Deliver {
    /// Leave the result on `omk/<goal>/integration`.
    #[default]
    Branch,
    /// Also fast-forward the base branch, if it has not moved and is not checked out.
    Ff,
}

/// The status of a goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalStatus {
    /// Still running.
    #[default]
    Running,
    /// Every slice merged and every integration gate passed on the final tree.
    Ready,
    /// The run ended without `ready`.
    NotReady,
    /// The run could not go on.
    Blocked,
    /// A budget ran out.
    NeedsBudget,
    /// The run was cancelled.
    Cancelled,
    /// omk itself failed.
    Failed,
}

/// The status of a slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliceStatus {
    /// Waiting for its dependencies, a free slot, or a retry.
    #[default]
    Pending,
    /// Its agent is working.
    Running,
    /// Its gates are running.
    Gating,
    /// Waiting for the integrator.
    Merging,
    /// In the integration branch.
    Merged,
    /// The agent failed, changed nothing, or omk could not commit its work.
    Failed,
    /// It still conflicted after its last attempt.
    Conflict,
    /// Its commit touched paths outside its write scope.
    ScopeViolation,
    /// A gate failed on its commit.
    GateFailed,
    /// The run was cancelled before it finished.
    Cancelled,
}

impl SliceStatus {
    /// Whether the slice will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            SliceStatus::Pending
                | SliceStatus::Running
                | SliceStatus::Gating
                | SliceStatus::Merging
        )
    }
}

macro_rules! display_as_serde {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
                f.write_str(v.as_str().unwrap_or_default())
            }
        }
    )*};
}
display_as_serde!(GoalStatus, SliceStatus, Deliver);

/// One slice's state; in the proof, one entry of `slices`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceState {
    pub id: String,
    pub title: String,
    pub status: SliceStatus,
    /// Why it is not merged, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The paths behind `reason`: outside the write scope, or in conflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub attempts: u32,
    pub branch: String,
    /// The slice's own result commit.
    pub commit: Option<String>,
    pub tree: Option<String>,
    pub changed_files: Vec<String>,
    pub agent: Option<agent::Report>,
    /// The gates of its last attempt.
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<PathBuf>,
    /// The commit the last attempt started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_commit: Option<String>,
    /// The directories its worktree materializes, when sparse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<String>>,
    pub depends_on: Vec<String>,
    /// Every attempt that ended, and why (the last one too, once it has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_history: Vec<AttemptRecord>,
    /// What went wrong in the last failed attempt, for the next one.
    #[serde(skip)]
    pub feedback: Option<String>,
    /// Where the next attempt's worktree starts, when not at its start
    /// commit: the failed attempt's own commit.
    #[serde(skip)]
    pub work_from: Option<String>,
    /// The agent session of the running attempt, as the agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The session an interrupted attempt resumes when it runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_session: Option<String>,
    /// It was recorded `slice_blocked`: a dependency will never merge.
    #[serde(skip)]
    pub blocked: bool,
    /// What failed its last attempt, when another attempt could repair it.
    #[serde(skip)]
    pub failure: Option<crate::store::events::RetryCause>,
    /// The gate running now, for progress displays.
    #[serde(skip)]
    pub current_gate: Option<String>,
    /// Its gates were stopped by a cancel: it waits for them to run again.
    #[serde(skip)]
    pub gates_interrupted: bool,
}

/// How one attempt of a slice ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first.
    pub attempt: u32,
    /// How it ended: `merged`, or the status it failed with.
    pub status: SliceStatus,
    /// Why, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its commit, when it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The last lines of the gate that failed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

impl SliceState {
    /// A blocked slice is judged again: its dependencies may merge now.
    fn unblock(&mut self) {
        if std::mem::take(&mut self.blocked) {
            self.reason = None;
        }
    }

    /// Keeps the failed gate's last lines with the attempt that just ended.
    fn note_excerpt(&mut self, excerpt: Option<String>) {
        if let Some(a) = self.attempt_history.last_mut() {
            a.excerpt = excerpt;
        }
    }

    /// The last lines of the gate that failed its last attempt, if one did.
    pub fn excerpt(&self) -> Option<&str> {
        match self.status {
            SliceStatus::Merged => None,
            _ => self.attempt_history.last()?.excerpt.as_deref(),
        }
    }

    /// Notes in the history how the current attempt ended, once.
    fn end_attempt(&mut self) {
        // An attempt run again after an interruption keeps its number.
        if self.attempt_history.last().map(|a| a.attempt) == Some(self.attempts) {
            self.attempt_history.pop();
        }
        self.attempt_history.push(AttemptRecord {
            attempt: self.attempts,
            status: self.status,
            reason: self.reason.clone(),
            commit: self.commit.clone(),
            excerpt: None,
        });
    }
}

/// The integration: the branch, which only moves to trees the integration
/// gates passed, and the candidate on top of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    pub branch: String,
    /// Where the branch points: the newest green commit.
    pub commit: String,
    pub tree: String,
    /// The slices the branch holds, in the order they were merged.
    pub order: Vec<String>,
    /// Every integration gate result, on every candidate it judged.
    pub gates: Vec<GateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<PathBuf>,
    /// Merges on top of the branch that the integration gates have not
    /// passed yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate: Vec<Link>,
    /// The candidate commit the integration gates are running on.
    #[serde(skip)]
    pub testing: Option<String>,
}

/// One merge of the candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub slice: String,
    pub commit: String,
    pub tree: String,
}

/// What the integration gates said of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeVerdict {
    /// Every integration gate passed on it.
    Passed,
    /// One failed on it.
    Failed,
    /// Not every gate has run on it.
    Unknown,
}

impl Integration {
    /// The commit the next merge goes onto: the candidate's tip, or the branch.
    pub fn tip(&self) -> &str {
        self.candidate
            .last()
            .map_or(self.commit.as_str(), |l| l.commit.as_str())
    }

    /// What the gates named `gates` said of `tree`, by each gate's latest result.
    pub fn verdict_on(&self, tree: &str, gates: &[GateSpec]) -> TreeVerdict {
        let mut all = true;
        for gate in gates {
            let last = self
                .gates
                .iter()
                .rev()
                .find(|r| r.name == gate.name && r.tree == tree);
            match last {
                Some(r) if !r.passed => return TreeVerdict::Failed,
                Some(_) => {}
                None => all = false,
            }
        }
        match all {
            true => TreeVerdict::Passed,
            false => TreeVerdict::Unknown,
        }
    }
}

/// The result of `--deliver ff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub branch: String,
    pub delivered: bool,
    pub reason: String,
}

/// Run limits fixed when the goal started, recorded in `goal_started` so a
/// resumed goal runs under the same ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub slice_timeout_ms: u64,
    pub inactivity_timeout_ms: u64,
    pub gate_concurrency: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<crate::config::Price>,
    /// Extra directories agents may write (`[sandbox] writable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_writable: Vec<String>,
    /// Extra environment variables agents may see (`[sandbox] env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_env: Vec<String>,
    /// Variables naming a build cache kept per worktree slot (`[pool] cache`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slot_cache: Vec<String>,
    /// `--sparse`: set, with the directories every sparse slot also
    /// materializes (`[sparse] include`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<String>>,
    /// `--require-sandbox`: refuse to run agents and gates that cannot be
    /// fully confined, on resume too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_sandbox: bool,
    /// Run the slice gates on the base commit before any agent starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base_check: bool,
    /// Run every gate, even on a tree it already passed, and keep no result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_gate_cache: bool,
}

/// Settings fixed when the goal started; not part of the proof.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub limits: Limits,
    pub plan: Option<Plan>,
    pub gates: Vec<GateSpec>,
    pub allow_no_gates: bool,
    pub max_attempts: u32,
    pub concurrency: usize,
    pub deliver: Deliver,
    pub base_tree: String,
    /// Each slice's position in `GoalState::slices` and the plan, so a
    /// lookup by id costs O(1) on a goal of thousands of slices.
    pub index: std::collections::HashMap<String, usize>,
}

/// A goal's state; serialized, its proof.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoalState {
    pub goal_id: String,
    pub goal: String,
    pub status: GoalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub repository: PathBuf,
    pub base_commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ref: Option<String>,
    pub agent: String,
    pub slices: Vec<SliceState>,
    pub integration: Integration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Tokens and cost of every agent attempt so far.
    pub usage: Usage,
    /// The slice gates' results on the base commit, once they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_check: Option<BaseCheck>,
    /// Why the goal stopped starting work, when a budget ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_exhausted: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Where the event log ended when this proof was written: the supervisor
    /// pins it so `replay --verify` can tell a cut log from a whole one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_end: Option<LogEnd>,
    #[serde(skip)]
    pub settings: Settings,
}

/// The slice gates run on the base commit before any agent starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseCheck {
    /// Whether every one passed.
    pub passed: bool,
    /// Their results, on the base tree.
    pub gates: Vec<GateResult>,
}

/// The last event of the log a proof was written from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEnd {
    /// Its sequence number (the number of events).
    pub events: u64,
    /// The SHA-256 of its line.
    pub hash: String,
}

/// Goal-wide usage: the sum of every finished attempt's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, `null` when no agent reported any.
    pub tokens_in: Option<u64>,
    /// Output tokens, `null` when no agent reported any.
    pub tokens_out: Option<u64>,
    /// Cost in US dollars, `null` when unknown.
    pub usd: Option<f64>,
}

impl Usage {
    fn add(&mut self, r: &agent::Report) {
        fn sum<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        self.tokens_in = sum(self.tokens_in, r.tokens_in);
        self.tokens_out = sum(self.tokens_out, r.tokens_out);
        self.usd = sum(self.usd, r.usd);
    }
}

impl GoalState {
    /// Rebuilds a goal's state from its whole log.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> GoalState {
        let mut state = GoalState::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, event: &Event) {
        match &event.body {
            EventBody::GoalStarted {
                goal_id,
                goal,
                repository,
                base_commit,
                base_tree,
                base_ref,
                integration_branch,
                plan,
                agent,
                gates,
                allow_no_gates,
                max_attempts,
                concurrency,
                deliver,
                limits,
            } => {
                *self = GoalState {
                    goal_id: goal_id.clone(),
                    goal: goal.clone(),
                    status: GoalStatus::Running,
                    reason: None,
                    repository: repository.clone(),
                    base_commit: base_commit.clone(),
                    base_ref: base_ref.clone(),
                    agent: agent.clone(),
                    slices: plan
                        .slices
                        .iter()
                        .map(|s| SliceState {
                            id: s.id.clone(),
                            title: s.title.clone(),
                            branch: crate::git::conventions::slice_branch(goal_id, &s.id),
                            depends_on: s.depends_on.clone(),
                            ..SliceState::default()
                        })
                        .collect(),
                    integration: Integration {
                        branch: integration_branch.clone(),
                        commit: base_commit.clone(),
                        tree: base_tree.clone(),
                        ..Integration::default()
                    },
                    delivery: None,
                    usage: Usage::default(),
                    budget_exhausted: None,
                    base_check: None,
                    log_end: None,
                    started_at: event.ts.clone(),
                    finished_at: None,
                    settings: Settings {
                        limits: limits.clone(),
                        plan: Some(plan.clone()),
                        gates: gates.clone(),
                        allow_no_gates: *allow_no_gates,
                        max_attempts: *max_attempts,
                        concurrency: *concurrency,
                        deliver: *deliver,
                        base_tree: base_tree.clone(),
                        index: plan
                            .slices
                            .iter()
                            .enumerate()
                            .map(|(i, s)| (s.id.clone(), i))
                            .collect(),
                    },
                };
            }
            EventBody::SliceStarted {
                slice,
                attempt,
                branch,
                worktree,
                start_commit,
                sparse,
                ..
            } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::Running;
                    s.failure = None;
                    s.attempts = *attempt;
                    s.start_commit = Some(start_commit.clone());
                    s.sparse = sparse.clone();
                    s.branch = branch.clone();
                    s.worktree = Some(worktree.clone());
                    s.reason = None;
                    s.session = None;
                    s.resume_session = None;
                    s.paths.clear();
                    s.gates.clear();
                    s.commit = None;
                    s.tree = None;
                    s.changed_files.clear();
                }
            }
            EventBody::AgentUpdate {
                slice,
                update: agent::Update::Session { id },
                ..
            } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.session = Some(id.clone());
                }
            }
            EventBody::AgentUpdate { .. } => {}
            EventBody::AgentFinished { slice, report, .. } => {
                self.usage.add(report);
                if let Some(s) = self.slice_mut(slice) {
                    s.agent = Some(report.clone());
                }
            }
            EventBody::AgentRetry { .. } => {}
            EventBody::BaseChecked { passed, gates } => {
                self.base_check = Some(BaseCheck {
                    passed: *passed,
                    gates: gates.clone(),
                });
            }
            EventBody::BudgetExhausted { reason } => {
                self.budget_exhausted.get_or_insert_with(|| reason.clone());
            }
            EventBody::SliceCommitted {
                slice,
                commit,
                tree,
                changed_files,
                ..
            } => {
                let gated = !self.slice_gates(slice).is_empty();
                if let Some(s) = self.slice_mut(slice) {
                    s.commit = Some(commit.clone());
                    s.tree = Some(tree.clone());
                    s.changed_files = changed_files.clone();
                    s.status = if gated {
                        SliceStatus::Gating
                    } else {
                        SliceStatus::Merging
                    };
                }
            }
            EventBody::SliceFailed {
                slice,
                status,
                reason,
                paths,
                ..
            } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.status = *status;
                    s.reason = Some(reason.clone());
                    s.paths = paths.clone();
                    s.current_gate = None;
                    s.failure =
                        (*status == SliceStatus::ScopeViolation).then_some(RetryCause::Scope);
                    s.end_attempt();
                }
            }
            EventBody::SliceRetrying {
                slice,
                attempt,
                feedback,
                work_from,
                ..
            } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::Pending;
                    s.failure = None;
                    s.reason = Some(format!(
                        "attempt {attempt} failed; another attempt is told what went wrong"
                    ));
                    s.feedback = Some(feedback.clone());
                    s.work_from = work_from.clone();
                    // The agent goes on in its own session where it can.
                    s.resume_session = s.session.take();
                }
            }
            EventBody::CheckoutTouched {
                slice, evidence, ..
            } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::Failed;
                    s.reason = Some(format!(
                        "the user's repository changed while its agent ran: {}",
                        evidence.join("; ")
                    ));
                }
            }
            EventBody::SliceBlocked { slice, reason } => {
                if let Some(s) = self.slice_mut(slice) {
                    s.reason = Some(reason.clone());
                    s.blocked = true;
                }
            }
            EventBody::GateStarted { slice, gate, .. } => {
                if let Some(s) = slice.as_deref().and_then(|id| self.slice_mut(id)) {
                    s.current_gate = Some(gate.clone());
                }
            }
            EventBody::GateFinished { slice, result } => match slice {
                Some(id) => {
                    if let Some(s) = self.slice_mut(id) {
                        s.gates.push(result.clone());
                        s.current_gate = None;
                    }
                }
                None => self.integration.gates.push(result.clone()),
            },
            EventBody::Verified {
                slice: Some(id),
                interrupted: true,
                ..
            } => {
                // No verdict: the slice waits for its gates, which run again.
                if let Some(s) = self.slice_mut(id) {
                    s.gates.clear();
                    s.current_gate = None;
                    s.gates_interrupted = true;
                }
            }
            EventBody::Verified {
                slice: Some(id),
                passed,
                ..
            } => {
                if let Some(s) = self.slice_mut(id) {
                    if *passed {
                        s.status = SliceStatus::Merging;
                    } else {
                        let failed = s.gates.iter().find(|g| !g.passed);
                        let excerpt = failed.and_then(|g| g.excerpt.clone());
                        s.failure = failed.map(|g| RetryCause::Gate {
                            gate: g.name.clone(),
                        });
                        s.status = SliceStatus::GateFailed;
                        s.reason = Some(match failed {
                            Some(g) => format!(
                                "gate `{}` failed ({}); log: {}",
                                g.name,
                                g.outcome,
                                g.log.display()
                            ),
                            None => "a gate failed".into(),
                        });
                        s.end_attempt();
                        s.note_excerpt(excerpt);
                    }
                }
            }
            EventBody::Verified { slice: None, .. } => self.integration.testing = None,
            EventBody::SliceMerged {
                slice,
                commit,
                tree,
                onto,
                ..
            } => {
                // A merge onto a candidate that was rebuilt meanwhile is stale:
                // the slice is merged again onto the new one.
                if !onto.is_empty() && onto != self.integration.tip() {
                    return;
                }
                self.integration.candidate.push(Link {
                    slice: slice.clone(),
                    commit: commit.clone(),
                    tree: tree.clone(),
                });
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::Merged;
                    s.reason = None;
                    s.paths.clear();
                    s.feedback = None;
                    s.work_from = None;
                    s.end_attempt();
                }
            }
            EventBody::MergeConflict {
                slice,
                attempt,
                paths,
                onto,
            } => {
                if !onto.is_empty() && onto != self.integration.tip() {
                    return;
                }
                if let Some(s) = self.slice_mut(slice) {
                    s.paths = paths.clone();
                    s.status = SliceStatus::Conflict;
                    s.failure = Some(RetryCause::Conflict);
                    s.reason = Some(format!(
                        "conflicts with the integration after {attempt} attempt{} on {}",
                        if *attempt == 1 { "" } else { "s" },
                        paths.join(", ")
                    ));
                    s.end_attempt();
                }
            }
            EventBody::IntegrationStarted {
                worktree, commit, ..
            } => {
                self.integration.worktree = Some(worktree.clone());
                self.integration.testing = Some(commit.clone());
            }
            EventBody::IntegrationAdvanced { commit, tree } => {
                let i = &mut self.integration;
                if let Some(at) = i.candidate.iter().position(|l| &l.commit == commit) {
                    i.order.extend(i.candidate.drain(..=at).map(|l| l.slice));
                }
                i.commit = commit.clone();
                i.tree = tree.clone();
            }
            EventBody::SliceEjected {
                slice,
                gate,
                tree,
                onto,
                remerge,
                ..
            } => {
                let i = &mut self.integration;
                let keep = i
                    .candidate
                    .iter()
                    .position(|l| &l.commit == onto)
                    .map_or(0, |at| at + 1);
                i.candidate.truncate(keep);
                for id in remerge {
                    if let Some(s) = self.slice_mut(id) {
                        s.status = SliceStatus::Merging;
                    }
                }
                let failed = self
                    .integration
                    .gates
                    .iter()
                    .rev()
                    .find(|g| &g.name == gate && &g.tree == tree && !g.passed);
                let log = failed
                    .map(|g| format!("; log: {}", g.log.display()))
                    .unwrap_or_default();
                let excerpt = failed.and_then(|g| g.excerpt.clone());
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::GateFailed;
                    s.failure = Some(RetryCause::Integration {
                        gate: gate.clone(),
                        tree: tree.clone(),
                    });
                    s.reason = Some(format!(
                        "integration gate `{gate}` fails once it is merged, though its own gates passed{log}"
                    ));
                    s.end_attempt();
                    s.note_excerpt(excerpt);
                }
            }
            EventBody::Delivery {
                branch,
                delivered,
                reason,
            } => {
                self.delivery = Some(Delivery {
                    branch: branch.clone(),
                    delivered: *delivered,
                    reason: reason.clone(),
                });
            }
            EventBody::GoalResumed { raised, .. } => {
                if let Some(n) = raised.max_attempts {
                    self.settings.max_attempts = n;
                }
                let limits = &mut self.settings.limits;
                limits.budget_time_ms = raised.budget_time_ms.or(limits.budget_time_ms);
                limits.budget_tokens = raised.budget_tokens.or(limits.budget_tokens);
                limits.budget_usd = raised.budget_usd.or(limits.budget_usd);
                // Work that was in flight when the last controller stopped is
                // picked up again: interrupted attempts run again under the same
                // number, unfinished gates run again.
                self.status = GoalStatus::Running;
                self.reason = None;
                self.finished_at = None;
                self.budget_exhausted = None;
                self.delivery = None;
                for s in &mut self.slices {
                    match s.status {
                        SliceStatus::Running | SliceStatus::Cancelled => {
                            s.status = SliceStatus::Pending;
                            s.attempts = s.attempts.saturating_sub(1);
                            s.reason = None;
                            // The agent picks its own session up again where it can.
                            s.resume_session = s.session.take();
                        }
                        SliceStatus::Gating => {
                            s.gates.clear();
                            s.gates_interrupted = false;
                        }
                        _ => {}
                    }
                    s.unblock();
                    s.current_gate = None;
                }
                // Integration gates that were running run again.
                self.integration.testing = None;
            }
            EventBody::GoalRetried {
                slices,
                max_attempts,
            } => {
                self.status = GoalStatus::Running;
                self.reason = None;
                self.finished_at = None;
                self.settings.max_attempts = *max_attempts;
                for s in &mut self.slices {
                    if slices.contains(&s.id) && s.status != SliceStatus::Merged {
                        s.status = SliceStatus::Pending;
                        s.reason = None;
                        s.paths.clear();
                        // A fresh attempt starts from what is integrated, told
                        // what went wrong last time.
                        s.work_from = None;
                    }
                }
                // Dependents blocked by them may start once they merge.
                for s in &mut self.slices {
                    s.unblock();
                }
                self.integration.gates.clear();
            }
            EventBody::GoalFinished { status, reason } => {
                self.status = *status;
                self.reason = reason.clone();
                self.finished_at = Some(event.ts.clone());
                for s in &mut self.slices {
                    s.current_gate = None;
                }
            }
        }
    }

    /// The slice with this id.
    pub fn slice(&self, id: &str) -> Option<&SliceState> {
        let i = *self.settings.index.get(id)?;
        self.slices.get(i).filter(|s| s.id == id)
    }

    fn slice_mut(&mut self, id: &str) -> Option<&mut SliceState> {
        let i = *self.settings.index.get(id)?;
        self.slices.get_mut(i).filter(|s| s.id == id)
    }

    /// The plan entry of a slice.
    pub fn spec(&self, id: &str) -> Option<&SliceSpec> {
        let i = *self.settings.index.get(id)?;
        let plan = self.settings.plan.as_ref()?;
        plan.slices.get(i).filter(|s| s.id == id)
    }

    /// The gates that judge slice `id`: the plan's selection, else every per-slice gate.
    pub fn slice_gates(&self, id: &str) -> Vec<GateSpec> {
        let chosen = self.spec(id).and_then(|s| s.gates.clone());
        self.settings
            .gates
            .iter()
            .filter(|g| g.scope.judges_slices())
            .filter(|g| chosen.as_ref().is_none_or(|names| names.contains(&g.name)))
            .cloned()
            .collect()
    }

    /// The gates that judge the integration.
    pub fn integration_gates(&self) -> Vec<GateSpec> {
        self.settings
            .gates
            .iter()
            .filter(|g| g.scope.judges_integration())
            .cloned()
            .collect()
    }

    /// Whether slice `id` is on the integration branch: merged, and passed
    /// by the integration gates.
    pub fn integrated(&self, id: &str) -> bool {
        self.slice(id)
            .is_some_and(|s| s.status == SliceStatus::Merged)
            && !self.integration.candidate.iter().any(|l| l.slice == id)
    }

    /// Whether every slice has reached a state it will not leave.
    pub fn slices_settled(&self) -> bool {
        self.slices
            .iter()
            .all(|s| s.status.is_final() || self.blocked_by(s).is_some())
    }

    /// The first dependency of `slice` that ended without merging, if any.
    pub fn blocked_by(&self, slice: &SliceState) -> Option<&SliceState> {
        if slice.status != SliceStatus::Pending {
            return None;
        }
        slice.depends_on.iter().find_map(|d| {
            let dep = self.slice(d)?;
            let dead = (dep.status.is_final() && dep.status != SliceStatus::Merged)
                || self.blocked_by(dep).is_some();
            dead.then_some(dep)
        })
    }

    /// The goal's final status and reason, by the contract's rule: `ready`
    /// only when every slice merged and every integration gate passed on the
    /// exact tree `integration.tree` names.
    pub fn verdict(&self) -> (GoalStatus, Option<String>) {
        if let Some(reason) = &self.budget_exhausted {
            if self.slices.iter().any(|s| s.status != SliceStatus::Merged) {
                return (
                    GoalStatus::NeedsBudget,
                    Some(format!(
                        "{reason}; finished work is merged, the rest needs more budget"
                    )),
                );
            }
        }
        let unmerged: Vec<String> = self
            .slices
            .iter()
            .filter(|s| !self.integrated(&s.id))
            .map(|s| match self.blocked_by(s) {
                Some(dep) => format!("{} (blocked by {})", s.id, dep.id),
                None if s.status == SliceStatus::Merged => {
                    format!(
                        "{} (merged, but not yet passed by the integration gates)",
                        s.id
                    )
                }
                None => format!("{} ({})", s.id, s.status),
            })
            .collect();
        if !unmerged.is_empty() {
            return (
                GoalStatus::NotReady,
                Some(format!("not every slice merged: {}", unmerged.join(", "))),
            );
        }
        if self.settings.gates.is_empty() && !self.settings.allow_no_gates {
            return (
                GoalStatus::NotReady,
                Some("no gates are configured or detected, so nothing verified the result; add [[gate]] to omk.toml or pass --allow-no-gates".into()),
            );
        }
        for gate in self.integration_gates() {
            let result = self
                .integration
                .gates
                .iter()
                .rev()
                .find(|r| r.name == gate.name && r.tree == self.integration.tree);
            match result {
                Some(r) if r.passed => {}
                Some(r) => {
                    return (
                        GoalStatus::NotReady,
                        Some(format!(
                            "integration gate `{}` failed ({}); log: {}",
                            r.name,
                            r.outcome,
                            r.log.display()
                        )),
                    )
                }
                None => {
                    return (
                        GoalStatus::NotReady,
                        Some(format!(
                            "integration gate `{}` did not run on the final tree",
                            gate.name
                        )),
                    )
                }
            }
        }
        (GoalStatus::Ready, None)
    }
}
