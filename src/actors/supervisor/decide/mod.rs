//! The supervisor's decisions: given what has happened, what to do next.
//!
//! [`Decider`] is pure: it reads the goal's state (the fold over its
//! events) and what the supervisor tells it, and answers with [`Action`]s.
//! It starts no process and touches no git; the supervisor carries its
//! actions out, and whatever that records comes back through
//! [`Decider::on_event`]. So every decision of a goal — which slice starts,
//! which goes to the gates or the integrator, when the goal stops, and how
//! it ends — is made here, and is tested by feeding states and events.

use std::collections::HashMap;

use crate::actors::gate::Priority;
use crate::agent::Update;
use crate::state::{AttemptEnd, GoalState, GoalStatus, Link, SliceState, SliceStatus, TreeVerdict};
use crate::store::events::{EventBody, RetryCause};

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

/// Something the supervisor must carry out.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record that a pending slice can never start.
    Block {
        /// The slice.
        slice: String,
        /// Which dependency did not merge, in words.
        reason: String,
    },
    /// Start the next attempt of a pending slice.
    Start {
        /// The slice.
        slice: String,
        /// The commit it starts from, and is judged against.
        start_commit: String,
        /// The failed commit a feedback attempt goes on from, checked out
        /// on top of `start_commit`'s history.
        work_from: Option<String>,
    },
    /// Record that a slice's attempt failed: its actor ended without a result.
    Fail {
        /// The slice.
        slice: String,
        /// The attempt.
        attempt: u32,
        /// Why, in words.
        reason: String,
    },
    /// Stop the actor of a slice whose attempt has reported its end.
    StopAttempt {
        /// The slice.
        slice: String,
    },
    /// Send a committed slice to the gates — once a merge probe says its
    /// commit conflicts neither with the integration nor with one of
    /// `ahead` (see [`Decider::on_probe`]): else its gates would be spent
    /// for nothing.
    Gate {
        /// The slice.
        slice: String,
        /// Slices that committed before it, are still on their way to the
        /// integration, and changed a path it changed (or a folder of one).
        ahead: Vec<String>,
        /// How urgent its gate job is.
        priority: Priority,
    },
    /// Run the gates of a slice whose merge probe found no conflict.
    RunGates {
        /// The slice.
        slice: String,
        /// How urgent its gate job is.
        priority: Priority,
    },
    /// Record that a committed slice conflicts with the integration before
    /// its gates ran.
    Conflict {
        /// The slice.
        slice: String,
        /// The conflicting paths.
        paths: Vec<String>,
        /// The candidate commit it conflicts with.
        onto: String,
    },
    /// Record that a slice's gates wait for a slice ahead whose commit
    /// conflicts with it: once that one merged, its conflict is real.
    Defer {
        /// The slice.
        slice: String,
        /// The slice ahead.
        behind: String,
        /// The conflicting paths.
        paths: Vec<String>,
    },
    /// Send a verified slice to the integrator, to merge onto the candidate.
    Merge {
        /// The slice.
        slice: String,
    },
    /// Give a slice whose attempt failed another, told what went wrong.
    Retry {
        /// The slice.
        slice: String,
        /// What went wrong.
        cause: RetryCause,
        /// Where the next attempt works from.
        redo: Redo,
    },
    /// Give back the slot of a slice that no longer needs its tree.
    Release {
        /// The slice.
        slice: String,
    },
    /// Record that a budget ran out, and cancel the running agents.
    Exhaust {
        /// Which budget, in words.
        reason: String,
    },
    /// Cancel every running agent and gate.
    CancelAll,
    /// Run the slice gates on the base commit.
    CheckBase {
        /// How urgent the job is.
        priority: Priority,
    },
    /// Give back the slot the base check ran in.
    ReleaseBase,
    /// Run the integration gates on a candidate commit.
    Integrate {
        /// The commit.
        commit: String,
        /// Its tree.
        tree: String,
        /// How urgent the job is.
        priority: Priority,
    },
    /// Move the integration branch forward to a candidate commit the
    /// integration gates passed.
    Advance {
        /// The commit.
        commit: String,
        /// Its tree.
        tree: String,
    },
    /// Take a slice out of the candidate: its merge is the first on which
    /// an integration gate fails. The candidate goes back to `onto`, and
    /// the slices merged after it are merged again.
    Eject {
        /// The slice.
        slice: String,
        /// The gate that failed.
        gate: String,
        /// The tree of its merge.
        tree: String,
        /// The candidate commit before its merge (or the branch).
        onto: String,
        /// The slices merged after it, in order.
        remerge: Vec<String>,
    },
    /// End the goal.
    Finish {
        /// How it ends.
        status: GoalStatus,
        /// Why, when not ready.
        reason: Option<String>,
    },
}

/// Where the next attempt of a failed slice works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redo {
    /// From the failed attempt's commit, which it fixes: its gates failed
    /// or its commit was refused, but the rest of its work stands.
    ItsCommit,
    /// From the integration's tip, without its change, which it makes
    /// again: its change conflicts with, or breaks, the others' work.
    OnTheIntegration,
}

/// What a merge probe found for a committed slice before its gates: the
/// first conflict, if any. The probe is the supervisor's (it runs git);
/// what follows from it is [`Decider::on_probe`]'s.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Its commit merges cleanly onto the candidate and every slice ahead.
    Clean,
    /// Its commit conflicts with the candidate `onto` on `paths`.
    Integration {
        /// The candidate's tip.
        onto: String,
        /// The conflicting paths.
        paths: Vec<String>,
    },
    /// Its commit conflicts with slice `ahead`'s on `paths`.
    Ahead {
        /// The slice ahead.
        ahead: String,
        /// The conflicting paths.
        paths: Vec<String>,
    },
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
        }
    }

    /// Where the goal is.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// What follows `body`, which has been recorded: `state` includes it.
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
                actions.push(Action::ReleaseBase);
                if self.phase == Phase::CheckingBase {
                    if *passed {
                        self.phase = Phase::Working;
                    } else {
                        let reason = base_failure(state, gates);
                        actions.push(self.finish(GoalStatus::Blocked, Some(reason)));
                    }
                }
                return actions;
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
                        .map(|id| Action::Merge { slice: id.clone() }),
                );
                actions.extend(self.retry(state, slice));
                return actions;
            }
            EventBody::Verified {
                slice: Some(_),
                interrupted: true,
                ..
            } => {
                // No verdict: it waits, in its slot, for its gates to run again.
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
                    slice: slice.clone(),
                });
            }
            EventBody::SliceCommitted { slice, .. }
            | EventBody::Verified {
                slice: Some(slice), ..
            } => {
                actions.push(Action::StopAttempt {
                    slice: slice.clone(),
                });
                actions.extend(self.send_on(state, slice));
                actions.extend(self.retry(state, slice));
            }
            EventBody::SliceFailed { slice, .. } => {
                actions.push(Action::StopAttempt {
                    slice: slice.clone(),
                });
                actions.extend(self.retry(state, slice));
            }
            // A conflict with a candidate rebuilt meanwhile is stale: the
            // slice is still merging, onto the new one, and has no failure.
            EventBody::MergeConflict { slice, .. } => actions.extend(self.retry(state, slice)),
            _ => {}
        }
        // A slice that is no longer running or gating needs its tree no more.
        if let Some(slice) = body.slice() {
            let needs_tree = state
                .slice(slice)
                .is_some_and(|s| matches!(s.status, SliceStatus::Running | SliceStatus::Gating));
            if !needs_tree {
                actions.push(Action::Release {
                    slice: slice.to_string(),
                });
            }
        }
        actions
    }

    /// The run is cancelled: nothing new starts; the goal ends `cancelled`.
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
    pub fn on_time_spent(&mut self, state: &GoalState) -> Vec<Action> {
        let limit = std::time::Duration::from_millis(
            state.settings.limits.budget_time_ms.unwrap_or_default(),
        );
        self.exhaust(
            state,
            format!(
                "the time budget of {} ran out",
                crate::util::human_duration(limit)
            ),
        )
        .into_iter()
        .collect()
    }

    /// The agent's program is gone: every attempt would fail alike, so no
    /// slice starts, running ones are cancelled, and the goal ends `failed`
    /// once they stopped.
    pub fn on_agent_gone(&mut self, why: String) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        self.halt(GoalStatus::Failed, why);
        vec![Action::CancelAll]
    }

    /// An actor the goal cannot go on without (the gate actor, the
    /// integrator) is gone.
    pub fn on_lost(&mut self, why: String) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        vec![self.finish(GoalStatus::Failed, Some(why))]
    }

    /// The actor running attempt `attempt` of `slice` is gone without a
    /// result (`why`): if that attempt is still running, it failed.
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
            slice: slice.to_string(),
            attempt,
            reason: format!("slice actor {why}"),
        }]
    }

    /// What a slice's merge probe found decides whether its gates run: a
    /// conflict with the integration is its result; one with a slice ahead
    /// holds its gates until that one is merged or gone.
    pub fn on_probe(&mut self, slice: &str, probe: Probe, priority: Priority) -> Vec<Action> {
        let slice = slice.to_string();
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
                    slice: s.id.clone(),
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
                SliceStatus::Running | SliceStatus::Merging => true,
                SliceStatus::Gating => !s.gates_interrupted && !self.held.contains_key(&s.id),
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

    /// What the integration does next: judge the newest candidate, move the
    /// branch to a candidate that passed, or find the first merge of a
    /// failed candidate whose tree fails (bisection: the branch passed, the
    /// failed commit did not, so the first failing merge lies between) and
    /// take it out.
    fn integration_step(&mut self, state: &GoalState) -> Vec<Action> {
        let i = &state.integration;
        if self.advancing.is_some() || i.testing.is_some() {
            return vec![];
        }
        let gates = state.integration_gates();
        if gates.is_empty() {
            // Nothing judges the integration: every merge is as good as it gets.
            return i
                .candidate
                .last()
                .map(|l| self.advance(l))
                .into_iter()
                .collect();
        }
        let verdicts: Vec<TreeVerdict> = i
            .candidate
            .iter()
            .map(|l| i.verdict_on(&l.tree, &gates))
            .collect();
        let test = |commit: &str, tree: &str| Action::Integrate {
            commit: commit.to_string(),
            tree: tree.to_string(),
            priority: Priority::Candidate,
        };
        let Some(failed) = verdicts.iter().position(|v| *v == TreeVerdict::Failed) else {
            if let Some(passed) = verdicts.iter().rposition(|v| *v == TreeVerdict::Passed) {
                return vec![self.advance(&i.candidate[passed])];
            }
            if let Some(tip) = i.candidate.last() {
                return vec![test(&tip.commit, &tip.tree)];
            }
            // A retried goal whose gates were changed: the branch is judged again.
            // (A merging slice is not settled.)
            if state.slices_settled()
                && !i.order.is_empty()
                && i.verdict_on(&i.tree, &gates) == TreeVerdict::Unknown
            {
                return vec![test(&i.commit, &i.tree)];
            }
            return vec![];
        };
        let passed = verdicts[..failed]
            .iter()
            .rposition(|v| *v == TreeVerdict::Passed);
        let unknown = passed.map_or(0, |p| p + 1);
        if unknown < failed {
            let mid = &i.candidate[(unknown + failed) / 2];
            return vec![test(&mid.commit, &mid.tree)];
        }
        // Found: the merge at `failed` is the first whose tree fails.
        let culprit = &i.candidate[failed];
        let gate = gates
            .iter()
            .find(|g| {
                i.last_result(&g.name, &culprit.tree)
                    .is_some_and(|r| !r.passed)
            })
            .map(|g| g.name.clone())
            .unwrap_or_default();
        let mut actions = Vec::new();
        let onto = match passed {
            Some(p) => {
                actions.push(self.advance(&i.candidate[p]));
                i.candidate[p].commit.clone()
            }
            None => i.commit.clone(),
        };
        actions.push(Action::Eject {
            slice: culprit.slice.clone(),
            gate,
            tree: culprit.tree.clone(),
            onto,
            remerge: i.candidate[failed + 1..]
                .iter()
                .map(|l| l.slice.clone())
                .collect(),
        });
        actions
    }

    fn advance(&mut self, to: &Link) -> Action {
        self.advancing = Some(to.commit.clone());
        Action::Advance {
            commit: to.commit.clone(),
            tree: to.tree.clone(),
        }
    }

    /// Starts for the pending slices whose dependencies have merged, in
    /// dependency order, as many as the concurrency limit leaves room for.
    ///
    /// A feedback attempt after a failed gate or a refused commit goes on
    /// from that commit and is judged against the same start; a first
    /// attempt without dependencies starts from the base; dependent slices
    /// and other retries build on what is merged so far: the candidate's
    /// tip (the branch, and merges its gates have yet to judge).
    fn ready_to_start(&self, state: &GoalState) -> Vec<Action> {
        let running = state
            .slices
            .iter()
            .filter(|s| s.status == SliceStatus::Running)
            .count();
        let room = state.settings.concurrency.saturating_sub(running);
        state
            .settings
            .order
            .iter()
            .filter_map(|&i| state.slices.get(i))
            .filter(|s| {
                s.status == SliceStatus::Pending && s.depends_on.iter().all(|d| state.integrated(d))
            })
            .take(room)
            .map(|s| {
                let start_commit = match (&s.work_from, &s.start_commit) {
                    (Some(_), Some(start)) => start.clone(),
                    _ if s.attempts == 0 && s.depends_on.is_empty() => state.base_commit.clone(),
                    _ => state.integration.tip().to_string(),
                };
                Action::Start {
                    slice: s.id.clone(),
                    start_commit,
                    work_from: s.work_from.clone().filter(|_| s.start_commit.is_some()),
                }
            })
            .collect()
    }

    /// Another attempt for a slice whose attempt failed in a way another
    /// can repair, while attempts and budget remain and the goal is not
    /// stopping.
    fn retry(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        let (cause, redo) = repairable(s.ended.as_ref()?)?;
        let may = self.phase == Phase::Working
            && s.status.is_final()
            && s.status != SliceStatus::Merged
            && state.budget_exhausted.is_none()
            && s.attempts < state.settings.max_attempts;
        may.then(|| Action::Retry {
            slice: slice.to_string(),
            cause,
            redo,
        })
    }

    /// Where a slice with a result goes next: the gates or the integrator.
    fn send_on(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        s.commit.as_ref()?;
        s.tree.as_ref()?;
        let slice = slice.to_string();
        match s.status {
            SliceStatus::Gating if s.gates_follow => None,
            SliceStatus::Gating => Some(Action::Gate {
                ahead: ahead_of(state, s),
                priority: slice_priority(state, &slice),
                slice,
            }),
            SliceStatus::Merging => Some(Action::Merge { slice }),
            _ => None,
        }
    }

    /// The held slices whose slice ahead is no longer on its way (it merged
    /// into the candidate, or failed): they go to their gates, checked again.
    fn release(&mut self, state: &GoalState) -> Vec<Action> {
        let on_its_way = |id: &str| {
            state
                .slice(id)
                .is_some_and(|s| matches!(s.status, SliceStatus::Gating | SliceStatus::Merging))
        };
        let mut free: Vec<String> = self
            .held
            .iter()
            .filter(|(_, behind)| !on_its_way(behind))
            .map(|(slice, _)| slice.clone())
            .collect();
        free.sort_by_key(|id| state.slice(id).map(|s| s.committed_seq));
        free.into_iter()
            .filter_map(|id| {
                self.held.remove(&id);
                self.send_on(state, &id)
            })
            .collect()
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

/// What another attempt can repair, and where it works from: a failed
/// gate or a refused commit is fixed on the attempt's commit; a conflict
/// or a broken integration is redone on the integration. An agent that
/// failed or timed out is not tried again: the same task would fail alike.
fn repairable(end: &AttemptEnd) -> Option<(RetryCause, Redo)> {
    match end {
        AttemptEnd::Failed(SliceStatus::ScopeViolation) => {
            Some((RetryCause::Scope, Redo::ItsCommit))
        }
        AttemptEnd::Failed(_) | AttemptEnd::GateFailed { gate: None } => None,
        AttemptEnd::GateFailed { gate: Some(gate) } => {
            Some((RetryCause::Gate { gate: gate.clone() }, Redo::ItsCommit))
        }
        AttemptEnd::Conflict => Some((RetryCause::Conflict, Redo::OnTheIntegration)),
        AttemptEnd::Ejected { gate, tree } => Some((
            RetryCause::Integration {
                gate: gate.clone(),
                tree: tree.clone(),
            },
            Redo::OnTheIntegration,
        )),
    }
}

/// How urgent a slice's gate job is: slices others wait for go first, with
/// the base check; then the integration's candidate; then the others. That
/// keeps the critical path short.
fn slice_priority(state: &GoalState, slice: &str) -> Priority {
    match state
        .slices
        .iter()
        .any(|s| s.depends_on.iter().any(|d| d == slice))
    {
        true => Priority::Critical,
        false => Priority::Other,
    }
}

/// The slices `s` could conflict with on their way to the integration:
/// committed before it, not yet merged into the candidate, and with a
/// changed path in common (or a file where the other has a folder). Only
/// earlier commits count, so two slices never wait for each other.
fn ahead_of(state: &GoalState, s: &SliceState) -> Vec<String> {
    use std::collections::HashSet;
    let with_folders = |files: &[String]| -> HashSet<String> {
        let mut all = HashSet::new();
        for f in files {
            all.insert(f.clone());
            let mut at = f.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                all.insert(parent.to_string());
                at = parent;
            }
        }
        all
    };
    let mine = with_folders(&s.changed_files);
    let mut ahead: Vec<&SliceState> = state
        .slices
        .iter()
        .filter(|o| {
            o.id != s.id
                && matches!(o.status, SliceStatus::Gating | SliceStatus::Merging)
                && o.commit.is_some()
                && o.committed_seq < s.committed_seq
                && (o.changed_files.iter().any(|f| mine.contains(f)) || {
                    let theirs = with_folders(&o.changed_files);
                    s.changed_files.iter().any(|f| theirs.contains(f))
                })
        })
        .collect();
    ahead.sort_by_key(|o| o.committed_seq);
    ahead.into_iter().map(|o| o.id.clone()).collect()
}

/// Why a goal whose base fails its slice gates is blocked, and how to go
/// on: from the results alone (their excerpts), never their log files.
fn base_failure(state: &GoalState, gates: &[crate::gate::GateResult]) -> String {
    let short = crate::util::short(&state.base_commit);
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
    let cause = if missing {
        " — it could not even start: a command or module it needs is missing on this machine"
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
