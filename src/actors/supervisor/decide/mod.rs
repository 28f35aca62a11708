//! The supervisor's decisions: given what has happened, what to do next.
//!
//! [`Decider`] is pure: it reads the goal's state (the fold over its
//! events) and the facts the supervisor reports ([`Probe`], a lost actor),
//! and answers with [`Action`]s. It starts no process, touches no git and
//! reads no file; the supervisor carries its actions out, and whatever that
//! records comes back through [`Decider::on_event`]. So every decision of a
//! goal — which slice starts and from which commit, which goes to the gates
//! (how urgently) or the integrator, which failure is retried and from
//! where, when the goal stops, and how it ends — is made here, and is
//! tested by feeding states and events.
//!
//! `mod.rs` holds the phase and the entry points; `slices.rs` what each
//! slice gets next and the rules behind it; `integration.rs` the
//! integration's next step; `action.rs` what is answered.

use std::collections::HashMap;

mod action;
mod integration;
mod slices;

pub use action::{Action, Probe, Redo};

use crate::actors::gate::Priority;
use crate::agent::Update;
use crate::state::{GoalState, GoalStatus, SliceStatus};
use crate::store::events::EventBody;

/// How many times in a row gates may fail to run on one tree (no
/// verdict) before the goal stops as omk's or the machine's failure.
const MAX_UNJUDGED: u32 = 2;

/// Where the goal is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The slice gates run on the base commit; no agent starts until they pass.
    CheckingBase,
    /// Slices start, are gated and merge.
    Working,
    /// Stopping early (a cancel, an agent that changed the user's
    /// repository): nothing new starts, and once nothing runs the goal
    /// ends as `status`.
    Halting {
        /// How the goal will end.
        status: GoalStatus,
        /// Why.
        reason: String,
    },
    /// The goal has ended; late reports change nothing.
    Done,
}

/// The supervisor's decisions for one goal.
#[derive(Debug)]
pub struct Decider {
    phase: Phase,
    /// Usage of running attempts, per slice: (tokens in, tokens out).
    live: HashMap<String, (u64, u64)>,
    /// The candidate commit the integrator was told to move the branch to.
    advancing: Option<String>,
    /// Slices whose gates wait, and the slice ahead of each.
    held: HashMap<String, String>,
    /// Slices whose merge git could not make: no verdict, no merge in
    /// flight; they are merged again when the goal is resumed.
    unmerged: std::collections::HashSet<String>,
}

impl Default for Decider {
    fn default() -> Self {
        Decider::new()
    }
}

impl Decider {
    /// A goal that is working.
    pub fn new() -> Decider {
        Decider {
            phase: Phase::Working,
            live: HashMap::new(),
            advancing: None,
            held: HashMap::new(),
            unmerged: Default::default(),
        }
    }

    /// Where the goal is.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// What follows `body`, which has been recorded: `state` includes it.
    #[must_use]
    pub fn on_event(&mut self, state: &GoalState, body: &EventBody) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        let mut actions = Vec::new();
        match body {
            EventBody::AgentUpdate {
                slice,
                update:
                    Update::Usage {
                        tokens_in,
                        tokens_out,
                    },
                ..
            } => {
                self.live
                    .insert(slice.clone(), (*tokens_in, tokens_out.unwrap_or(0)));
                actions.extend(self.over_budget(state));
            }
            EventBody::AgentFinished { slice, .. } => {
                self.live.remove(slice);
                actions.extend(self.over_budget(state));
            }
            EventBody::BaseChecked { passed, gates } => {
                return self.base_checked(state, *passed, gates);
            }
            EventBody::Verified { slice: None, .. } => {
                // What the integration gates said is in the state; `next`
                // follows it (an interrupted run is no verdict).
                return vec![];
            }
            EventBody::IntegrationAdvanced { .. } => {
                self.advancing = None;
                return vec![];
            }
            EventBody::GatesDeferred { slice, behind, .. } => {
                // It keeps its slot; `next` sends it on once `behind` is done.
                self.held.insert(slice.clone(), behind.clone());
                return vec![];
            }
            EventBody::SliceEjected { slice, remerge, .. } => {
                // The rest of the candidate, then whatever was on its way to
                // it, merge again onto what is left.
                let in_flight = state
                    .slices
                    .iter()
                    .filter(|s| s.status == SliceStatus::Merging && !remerge.contains(&s.id))
                    .map(|s| &s.id);
                actions.extend(
                    remerge
                        .iter()
                        .chain(in_flight)
                        .map(|id| Action::Merge { slice: id.into() }),
                );
                actions.extend(self.retry(state, slice));
                return actions;
            }
            EventBody::Verified {
                slice: Some(_),
                interrupted: true,
                ..
            } => {
                // No verdict: it waits for its gates to run again.
                return vec![];
            }
            EventBody::CheckoutTouched {
                slice, evidence, ..
            } => {
                let reason = format!(
                    "slice `{slice}` changed the user's repository ({}); stopped",
                    evidence.join("; ")
                );
                self.halt(GoalStatus::Failed, reason);
                actions.push(Action::CancelAll);
                actions.push(Action::StopAttempt {
                    slice: slice.into(),
                });
            }
            EventBody::Verified {
                slice: Some(slice),
                passed: false,
                ..
            } if state
                .slice(slice)
                .is_some_and(|s| s.unjudged > MAX_UNJUDGED) =>
            {
                actions.push(self.slice_unjudged(state, slice));
            }
            EventBody::SliceCommitted { slice, .. }
            | EventBody::Verified {
                slice: Some(slice), ..
            } => {
                actions.push(Action::StopAttempt {
                    slice: slice.into(),
                });
                actions.extend(self.send_on(state, slice));
                actions.extend(self.retry(state, slice));
            }
            EventBody::SliceFailed { slice, .. } => {
                actions.push(Action::StopAttempt {
                    slice: slice.into(),
                });
                actions.extend(self.retry(state, slice));
            }
            // A conflict with a candidate rebuilt meanwhile is stale: the
            // slice is still merging, onto the new one, and has no failure.
            EventBody::MergeConflict { slice, .. } => actions.extend(self.retry(state, slice)),
            _ => {}
        }
        // A slice whose agent is no longer running needs its slot no more:
        // its commit is in the object database, and its gates take whichever
        // slot is free when they run.
        if let Some(slice) = body.slice() {
            let needs_tree = state
                .slice(slice)
                .is_some_and(|s| s.status == SliceStatus::Running);
            if !needs_tree {
                actions.push(Action::Release {
                    slice: slice.into(),
                });
            }
        }
        actions
    }

    /// The base check ended: work starts, or the goal ends `blocked` (the
    /// base fails a gate) or `failed` (a gate could not run on it).
    fn base_checked(
        &mut self,
        state: &GoalState,
        passed: bool,
        gates: &[crate::gate::GateResult],
    ) -> Vec<Action> {
        let mut actions = vec![];
        if self.phase != Phase::CheckingBase {
            return actions;
        }
        let unjudged = gates.iter().find(|g| !g.passed && !g.outcome.judged());
        if passed {
            self.phase = Phase::Working;
        } else if let Some(g) = unjudged {
            // The base was not judged: omk's or the machine's failure.
            let reason = format!(
                "gate `{}` could not run on the base commit ({}), so no agent was started; this is a failure of omk or of this machine, not of the base",
                g.name, g.outcome
            );
            actions.push(self.finish(GoalStatus::Failed, Some(reason)));
        } else {
            let reason = base_failure(state, gates);
            actions.push(self.finish(GoalStatus::Blocked, Some(reason)));
        }
        actions
    }

    /// A slice's gates could not run on its commit, again and again: not
    /// the slice's failure, and not one more attempt will mend it. The goal
    /// stops.
    fn slice_unjudged(&mut self, state: &GoalState, slice: &str) -> Action {
        let times = state.slice(slice).map(|s| s.unjudged).unwrap_or_default();
        self.halt(
            GoalStatus::Failed,
            format!(
                "the gates of slice `{slice}` could not run on its commit, {times} times in a row; this is a failure of omk or of this machine (see `omk goal logs {}`), not of the slice",
                state.goal_id
            ),
        );
        Action::CancelAll
    }

    /// The run is cancelled: nothing new starts; the goal ends `cancelled`.
    #[must_use]
    pub fn on_cancel(&mut self) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        self.halt(
            GoalStatus::Cancelled,
            "cancelled before every slice finished".into(),
        );
        vec![Action::CancelAll]
    }

    /// The time budget ran out.
    #[must_use]
    pub fn on_time_spent(&mut self, state: &GoalState) -> Vec<Action> {
        let limit = std::time::Duration::from_millis(
            state.settings.limits.budget_time_ms.unwrap_or_default(),
        );
        self.exhaust(
            state,
            format!(
                "the time budget of {} ran out",
                crate::words::human_duration(limit)
            ),
        )
        .into_iter()
        .collect()
    }

    /// Something of the machine makes every attempt fail alike (the
    /// agent's program is gone, the disk is full): no slice starts, running
    /// ones are cancelled, and the goal ends `failed` once they stopped.
    #[must_use]
    pub fn on_unworkable(&mut self, why: String) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        self.halt(GoalStatus::Failed, why);
        vec![Action::CancelAll]
    }

    /// Slice `slice`'s merge could not be made, for the machine's reason
    /// (`why`): not the slice's failure; the goal stops as
    /// [`Decider::on_unworkable`] says, and waits for that merge no more.
    #[must_use]
    pub fn on_merge_unmade(&mut self, slice: &str, why: String) -> Vec<Action> {
        self.unmerged.insert(slice.to_string());
        self.on_unworkable(why)
    }

    /// An actor the goal cannot go on without (the gate actor, the
    /// integrator) is gone.
    #[must_use]
    pub fn on_lost(&mut self, why: String) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        vec![self.finish(GoalStatus::Failed, Some(why))]
    }

    /// The actor running attempt `attempt` of `slice` is gone without a
    /// result (`why`): if that attempt is still running, it failed.
    #[must_use]
    pub fn on_attempt_lost(
        &mut self,
        state: &GoalState,
        slice: &str,
        attempt: u32,
        why: &str,
    ) -> Vec<Action> {
        let running = state
            .slice(slice)
            .is_some_and(|s| s.status == SliceStatus::Running && s.attempts == attempt);
        if self.phase == Phase::Done || !running {
            return vec![];
        }
        vec![Action::Fail {
            slice: slice.into(),
            attempt,
            reason: format!("slice actor {why}"),
        }]
    }

    /// What a slice's merge probe found decides whether its gates run: a
    /// conflict with the integration is its result; one with a slice ahead
    /// holds its gates until that one is merged or gone.
    #[must_use]
    pub fn on_probe(&mut self, slice: &str, probe: Probe, priority: Priority) -> Vec<Action> {
        let slice: crate::ids::SliceId = slice.into();
        vec![match probe {
            Probe::Clean => Action::RunGates { slice, priority },
            Probe::Integration { onto, paths } => Action::Conflict { slice, paths, onto },
            Probe::Ahead { ahead, paths } => Action::Defer {
                slice,
                behind: ahead,
                paths,
            },
        }]
    }

    /// A resumed goal: the slices the last controller left committed or
    /// verified go on where they were, and those it left failed with
    /// attempts to spare get them — unless a budget is spent already.
    #[must_use]
    pub fn on_resume(&mut self, state: &GoalState) -> Vec<Action> {
        if let Some(spent) = self.over_budget(state) {
            return vec![spent];
        }
        state
            .slices
            .iter()
            .filter_map(|s| {
                self.send_on(state, &s.id)
                    .or_else(|| self.retry(state, &s.id))
            })
            .collect()
    }

    /// What can start or end now. The supervisor asks after every message,
    /// carrying out the answer, until there is none: each action here
    /// changes the state or the phase, so the same is not asked twice.
    #[must_use]
    pub fn next(&mut self, state: &GoalState) -> Vec<Action> {
        if matches!(self.phase, Phase::Done | Phase::CheckingBase) {
            return vec![];
        }
        // Before any agent starts, the base must pass the slice gates.
        let has_slice_gates = state.settings.gates.iter().any(|g| g.scope.judges_slices());
        if self.phase == Phase::Working
            && state.settings.limits.base_check
            && state.base_check.is_none()
            && has_slice_gates
        {
            self.phase = Phase::CheckingBase;
            return vec![Action::CheckBase {
                priority: Priority::Critical,
            }];
        }
        // Slices whose dependencies will never merge are blocked, once.
        let blockers = state.blockers();
        let mut actions: Vec<Action> = state
            .slices
            .iter()
            .zip(&blockers)
            .filter(|(s, _)| !s.blocked)
            .filter_map(|(s, blocker)| {
                let dep = &state.slices[(*blocker)?];
                Some(Action::Block {
                    slice: (&s.id).into(),
                    reason: format!("dependency `{}` did not merge ({})", dep.id, dep.status),
                })
            })
            .collect();
        if self.phase == Phase::Working {
            actions.extend(self.release(state));
        }
        let mut starting = false;
        if self.phase == Phase::Working && state.budget_exhausted.is_none() {
            for start in self.ready_to_start(state) {
                starting = true;
                actions.push(start);
            }
        }
        // The integration goes on while slices work, unless the goal stops.
        let mut integrating = false;
        if !matches!(self.phase, Phase::Halting { .. }) {
            let step = self.integration_step(state);
            integrating = !step.is_empty();
            actions.extend(step);
        }
        let busy = state.integration.testing.is_some()
            || self.advancing.is_some()
            || state.slices.iter().any(|s| match s.status {
                SliceStatus::Running => true,
                SliceStatus::Merging => !self.unmerged.contains(&s.id),
                // Gates that could not run too often are not run again.
                SliceStatus::Gating => {
                    !s.gates_interrupted
                        && !self.held.contains_key(&s.id)
                        && s.unjudged <= MAX_UNJUDGED
                }
                _ => false,
            });
        if busy || starting || integrating {
            return actions;
        }
        if let Phase::Halting { status, reason } = self.phase.clone() {
            actions.push(self.finish(status, Some(reason)));
            return actions;
        }
        if state.budget_exhausted.is_some() {
            let (status, reason) = state.verdict();
            actions.push(self.finish(status, reason));
            return actions;
        }
        if !state.slices_settled() {
            return actions;
        }
        let (status, reason) = state.verdict();
        actions.push(self.finish(status, reason));
        actions
    }
    /// The budget that running and finished attempts have spent, if one is.
    fn over_budget(&mut self, state: &GoalState) -> Option<Action> {
        let usage = &state.usage;
        let (live_in, live_out) = self
            .live
            .values()
            .fold((0, 0), |(i, o), (a, b)| (i + a, o + b));
        let tokens =
            usage.tokens_in.unwrap_or(0) + usage.tokens_out.unwrap_or(0) + live_in + live_out;
        let limits = &state.settings.limits;
        if let Some(limit) = limits.budget_tokens {
            if tokens >= limit {
                return self.exhaust(
                    state,
                    format!("the token budget of {limit} is spent ({tokens} tokens)"),
                );
            }
        }
        if let Some(limit) = limits.budget_usd {
            let live_usd = limits
                .price
                .as_ref()
                .map_or(0.0, |p| p.usd(live_in, live_out));
            let usd = usage.usd.unwrap_or(0.0) + live_usd;
            if usd >= limit {
                return self.exhaust(
                    state,
                    format!("the budget of ${limit:.2} is spent (${usd:.4})"),
                );
            }
        }
        None
    }

    /// A budget ran out, unless one already did.
    fn exhaust(&self, state: &GoalState, reason: String) -> Option<Action> {
        (state.budget_exhausted.is_none() && self.phase != Phase::Done)
            .then_some(Action::Exhaust { reason })
    }

    /// Stops starting work; the first reason to halt is the one the goal
    /// ends with.
    fn halt(&mut self, status: GoalStatus, reason: String) {
        if matches!(self.phase, Phase::Working | Phase::CheckingBase) {
            self.phase = Phase::Halting { status, reason };
        }
    }

    fn finish(&mut self, status: GoalStatus, reason: Option<String>) -> Action {
        self.phase = Phase::Done;
        Action::Finish { status, reason }
    }
}

/// Why a goal whose base fails its slice gates is blocked, and how to go
/// on: from the results alone (their excerpts), never their log files.
fn base_failure(state: &GoalState, gates: &[crate::gate::GateResult]) -> String {
    let short = crate::words::short(&state.base_commit);
    let Some(g) = gates.iter().find(|g| !g.passed) else {
        return format!("the base commit {short} fails its slice gates; no agent was started");
    };
    // exit 127 is the shell's "command not found"; a missing module or
    // binary is the usual reason a gate cannot start.
    let excerpt = g.excerpt.as_deref().unwrap_or_default();
    let missing = g.exit_code == Some(127)
        || ["No module named", "command not found", "not found"]
            .iter()
            .any(|m| excerpt.contains(m));
    let set_up = !state.settings.limits.setups.is_empty();
    let cause = if excerpt.starts_with("setup `") {
        " — its setup failed: fix the setup's command or its inputs"
    } else if missing && set_up {
        " — it could not even start: a command or module it needs is missing on this machine, or from what the setups install"
    } else if missing {
        " — it could not even start: a command or module it needs is missing on this machine, or in the slot (what the repository installs, as node_modules or a venv: add a [[setup]] that installs it)"
    } else {
        ""
    };
    format!(
        "gate `{}` already fails on the base commit {short} ({}){cause}, so no agent was started. \
         Its output:\n{}\nFix the base, change the gate in omk.toml, or skip this check knowingly \
         with --no-base-check; log: {}",
        g.name,
        g.outcome,
        excerpt.trim_end(),
        g.log.display()
    )
}

#[cfg(test)]
mod tests;
