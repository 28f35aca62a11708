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

use crate::agent::Update;
use crate::state::{GoalState, GoalStatus, Link, SliceStatus, TreeVerdict};
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
    },
    /// Stop the actor of a slice whose attempt has reported its end.
    StopAttempt {
        /// The slice.
        slice: String,
    },
    /// Send a committed slice to the gates.
    Gate {
        /// The slice.
        slice: String,
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
    CheckBase,
    /// Give back the slot the base check ran in.
    ReleaseBase,
    /// Run the integration gates on a candidate commit.
    Integrate {
        /// The commit.
        commit: String,
        /// Its tree.
        tree: String,
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

/// The supervisor's decisions for one goal.
#[derive(Debug)]
pub struct Decider {
    phase: Phase,
    /// The plan's dependency order, computed once.
    order: Option<Vec<String>>,
    /// Usage of running attempts, per slice: (tokens in, tokens out).
    live: HashMap<String, (u64, u64)>,
    /// The candidate commit the integrator was told to move the branch to.
    advancing: Option<String>,
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
            order: None,
            live: HashMap::new(),
            advancing: None,
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

    /// An actor the goal cannot go on without (the gate actor, the
    /// integrator) is gone.
    pub fn on_actor_lost(&mut self, why: String) -> Vec<Action> {
        if self.phase == Phase::Done {
            return vec![];
        }
        vec![self.finish(GoalStatus::Failed, Some(why))]
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
            return vec![Action::CheckBase];
        }
        // Slices whose dependencies will never merge are blocked, once.
        let mut actions: Vec<Action> = state
            .slices
            .iter()
            .filter(|s| !s.blocked)
            .filter_map(|s| {
                let dep = state.blocked_by(s)?;
                Some(Action::Block {
                    slice: s.id.clone(),
                    reason: format!("dependency `{}` did not merge ({})", dep.id, dep.status),
                })
            })
            .collect();
        let mut starting = false;
        if self.phase == Phase::Working && state.budget_exhausted.is_none() {
            for slice in self.ready_to_start(state) {
                starting = true;
                actions.push(Action::Start { slice });
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
                SliceStatus::Gating => !s.gates_interrupted,
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
        };
        let Some(failed) = verdicts.iter().position(|v| *v == TreeVerdict::Failed) else {
            if let Some(passed) = verdicts.iter().rposition(|v| *v == TreeVerdict::Passed) {
                return vec![self.advance(&i.candidate[passed])];
            }
            if let Some(tip) = i.candidate.last() {
                return vec![test(&tip.commit, &tip.tree)];
            }
            // A retried goal whose gates were changed: the branch is judged again.
            let settled = state.slices_settled()
                && !state
                    .slices
                    .iter()
                    .any(|s| s.status == SliceStatus::Merging);
            if settled
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
                i.gates
                    .iter()
                    .rev()
                    .find(|r| r.name == g.name && r.tree == culprit.tree)
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

    /// Pending slices whose dependencies have merged, in dependency order,
    /// as many as the concurrency limit leaves room for.
    fn ready_to_start(&mut self, state: &GoalState) -> Vec<String> {
        // The dependency order is fixed for the goal: compute it once.
        if self.order.is_none() {
            match state.settings.plan.as_ref().map(|p| p.order()) {
                Some(Ok(order)) => self.order = Some(order),
                _ => return vec![],
            }
        }
        let running = state
            .slices
            .iter()
            .filter(|s| s.status == SliceStatus::Running)
            .count();
        let room = state.settings.concurrency.saturating_sub(running);
        self.order
            .iter()
            .flatten()
            .filter(|id| {
                state.slice(id).is_some_and(|s| {
                    s.status == SliceStatus::Pending
                        && s.depends_on.iter().all(|d| state.integrated(d))
                })
            })
            .take(room)
            .cloned()
            .collect()
    }

    /// Another attempt for a slice whose attempt failed, while attempts and
    /// budget remain and the goal is not stopping.
    fn retry(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        let cause = s.failure.clone()?;
        let may = self.phase == Phase::Working
            && s.status.is_final()
            && s.status != SliceStatus::Merged
            && state.budget_exhausted.is_none()
            && s.attempts < state.settings.max_attempts;
        may.then(|| Action::Retry {
            slice: slice.to_string(),
            cause,
        })
    }

    /// Where a slice with a result goes next: the gates or the integrator.
    fn send_on(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        s.commit.as_ref()?;
        s.tree.as_ref()?;
        let slice = slice.to_string();
        match s.status {
            SliceStatus::Gating => Some(Action::Gate { slice }),
            SliceStatus::Merging => Some(Action::Merge { slice }),
            _ => None,
        }
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

/// Why a goal whose base fails its slice gates is blocked, and how to go on.
fn base_failure(state: &GoalState, gates: &[crate::gate::GateResult]) -> String {
    let short: String = state.base_commit.chars().take(10).collect();
    let Some(g) = gates.iter().find(|g| !g.passed) else {
        return format!("the base commit {short} fails its slice gates; no agent was started");
    };
    // exit 127 is the shell's "command not found"; a missing module or
    // binary is the usual reason a gate cannot start.
    let tail = crate::util::tail(&g.log, 10, 4096);
    let missing = g.exit_code == Some(127)
        || ["No module named", "command not found", "not found"]
            .iter()
            .any(|m| tail.contains(m));
    let cause = if missing {
        " — it could not even start: a command or module it needs is missing on this machine"
    } else {
        ""
    };
    format!(
        "gate `{}` already fails on the base commit {short} ({}){cause}, so no agent was started. \
         Its last lines:\n{}\nFix the base, change the gate in omk.toml, or skip this check knowingly \
         with --no-base-check; log: {}",
        g.name,
        g.outcome,
        tail.trim_end(),
        g.log.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::Event;
    use serde_json::{json, Value};

    /// A goal's state and its decider, fed events as the log would hold them.
    struct Goal {
        state: GoalState,
        decider: Decider,
        seq: u64,
    }

    impl Goal {
        /// Slices `(id, depends_on)`, run `concurrency` at a time, with one
        /// gate for slices and the integration, and `limits` merged in.
        fn new(slices: &[(&str, &[&str])], concurrency: usize, limits: Value) -> Goal {
            let slices: Vec<Value> = slices
                .iter()
                .map(|(id, deps)| {
                    json!({"id": id, "prompt": "p", "write_scope": [format!("{id}/**")], "depends_on": deps})
                })
                .collect();
            let mut all_limits = json!({"slice_timeout_ms": 1000, "inactivity_timeout_ms": 1000, "gate_concurrency": 1});
            let mut max_attempts = json!(1);
            for (k, v) in limits.as_object().unwrap() {
                match k.as_str() {
                    "max_attempts" => max_attempts = v.clone(),
                    _ => all_limits[k] = v.clone(),
                }
            }
            let mut goal = Goal {
                state: GoalState::default(),
                decider: Decider::new(),
                seq: 0,
            };
            let _ = goal.feed(
                json!({"kind": "goal_started", "goal_id": "g", "goal": "goal",
                "repository": "/r", "base_commit": "base", "base_tree": "t0", "base_ref": null,
                "integration_branch": "omk/g/integration", "plan": {"slices": slices},
                "agent": "exec:true",
                "gates": [{"name": "test", "command": "true", "timeout": 1000, "scope": "both"}],
                "allow_no_gates": false, "max_attempts": max_attempts, "concurrency": concurrency,
                "deliver": "branch", "limits": all_limits}),
            );
            goal
        }

        /// Records one event (`kind` and fields) and returns what follows it.
        fn feed(&mut self, mut body: Value) -> Vec<Action> {
            self.seq += 1;
            body["seq"] = json!(self.seq);
            body["ts"] = json!("2026-12-02T00:00:00Z");
            let event: Event = serde_json::from_value(body).unwrap();
            self.state.apply(&event);
            self.decider.on_event(&self.state, &event.body)
        }

        fn next(&mut self) -> Vec<Action> {
            self.decider.next(&self.state)
        }

        fn started(&mut self, slice: &str) -> Vec<Action> {
            self.feed(json!({"kind": "slice_started", "slice": slice, "attempt": 1,
                "start_commit": "base", "branch": format!("omk/g/{slice}"), "worktree": "/pool/slot"}))
        }

        fn committed(&mut self, slice: &str) -> Vec<Action> {
            self.feed(json!({"kind": "slice_committed", "slice": slice, "attempt": 1,
                "commit": format!("c-{slice}"), "tree": format!("t-{slice}"), "changed_files": [format!("{slice}/f")]}))
        }

        fn verified(&mut self, slice: Option<&str>, passed: bool) -> Vec<Action> {
            self.feed(json!({"kind": "verified", "slice": slice, "passed": passed}))
        }

        fn merged(&mut self, slice: &str) -> Vec<Action> {
            self.feed(json!({"kind": "slice_merged", "slice": slice, "attempt": 1,
                "slice_commit": format!("c-{slice}"), "commit": format!("m-{slice}"), "tree": format!("mt-{slice}")}))
        }

        /// The integration gates start on slice `slice`'s merge.
        fn testing(&mut self, slice: &str) -> Vec<Action> {
            self.feed(
                json!({"kind": "integration_started", "commit": format!("m-{slice}"),
                "tree": format!("mt-{slice}"), "worktree": "/pool/int"}),
            )
        }

        fn integration_gate(&mut self, slice: &str, passed: bool) -> Vec<Action> {
            self.feed(
                json!({"kind": "gate_finished", "result": {"name": "test", "passed": passed,
                "exit_code": if passed { 0 } else { 1 }, "outcome": "exit", "duration_ms": 1,
                "tree": format!("mt-{slice}"), "log": "/l"}}),
            )
        }

        fn advanced(&mut self, slice: &str) -> Vec<Action> {
            self.feed(
                json!({"kind": "integration_advanced", "commit": format!("m-{slice}"),
                "tree": format!("mt-{slice}")}),
            )
        }

        fn failed(&mut self, slice: &str) -> Vec<Action> {
            self.feed(json!({"kind": "slice_failed", "slice": slice, "attempt": 1,
                "status": "failed", "reason": "agent failed: exit 1", "paths": []}))
        }
    }

    fn start(slice: &str) -> Action {
        Action::Start {
            slice: slice.into(),
        }
    }

    fn stop(slice: &str) -> Action {
        Action::StopAttempt {
            slice: slice.into(),
        }
    }

    fn integrate(slice: &str) -> Action {
        Action::Integrate {
            commit: format!("m-{slice}"),
            tree: format!("mt-{slice}"),
        }
    }

    fn advance(slice: &str) -> Action {
        Action::Advance {
            commit: format!("m-{slice}"),
            tree: format!("mt-{slice}"),
        }
    }

    fn release(slice: &str) -> Action {
        Action::Release {
            slice: slice.into(),
        }
    }

    #[test]
    fn slices_start_in_dependency_order_within_the_concurrency_limit() {
        let mut g = Goal::new(&[("a", &[]), ("b", &["a"]), ("c", &[])], 1, json!({}));
        assert_eq!(g.next(), [start("a")]);
        assert_eq!(g.started("a"), []);
        assert_eq!(g.next(), [], "one at a time");
        // A committed slice goes to its gates, and frees its place.
        assert_eq!(
            g.committed("a"),
            [stop("a"), Action::Gate { slice: "a".into() }]
        );
        assert_eq!(g.next(), [start("c")], "`b` waits for `a` to merge");
        assert_eq!(g.started("c"), []);
        assert_eq!(
            g.verified(Some("a"), true),
            [stop("a"), Action::Merge { slice: "a".into() }, release("a")]
        );
        assert_eq!(g.next(), []);
        assert_eq!(g.merged("a"), [release("a")]);
        assert_eq!(g.next(), [integrate("a")], "judged while `c` works");
        let _ = g.testing("a");
        let _ = g.integration_gate("a", true);
        let _ = g.verified(None, true);
        assert_eq!(g.next(), [advance("a")]);
        let _ = g.advanced("a");
        assert_eq!(g.next(), [], "`c` still holds the only place");
        assert_eq!(g.failed("c"), [stop("c"), release("c")]);
        assert_eq!(g.next(), [start("b")]);
    }

    #[test]
    fn a_slice_whose_dependency_failed_is_blocked_and_the_goal_ends_not_ready() {
        let mut g = Goal::new(&[("a", &[]), ("b", &["a"]), ("c", &["b"])], 4, json!({}));
        assert_eq!(g.next(), [start("a")]);
        let _ = g.started("a");
        let _ = g.failed("a");
        let actions = g.next();
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(
            actions[0],
            Action::Block {
                slice: "b".into(),
                reason: "dependency `a` did not merge (failed)".into()
            }
        );
        assert!(matches!(&actions[1], Action::Block { slice, .. } if slice == "c"));
        let Action::Finish { status, reason } = &actions[2] else {
            panic!("{actions:?}");
        };
        assert_eq!(*status, GoalStatus::NotReady);
        assert!(reason.as_deref().unwrap().contains("b (blocked by a)"));
        assert_eq!(g.decider.phase(), &Phase::Done);
        assert_eq!(g.next(), [], "a finished goal decides nothing more");
    }

    #[test]
    fn a_merge_is_judged_on_the_candidate_and_the_branch_moves_only_once_it_passed() {
        let mut g = Goal::new(&[("a", &[])], 1, json!({}));
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.committed("a");
        let _ = g.verified(Some("a"), true);
        let _ = g.merged("a");
        assert_eq!(g.next(), [integrate("a")]);
        let _ = g.testing("a");
        assert_eq!(g.next(), [], "the candidate is judged once");
        let _ = g.integration_gate("a", true);
        assert_eq!(g.verified(None, true), []);
        assert_eq!(g.state.integration.order, Vec::<String>::new());
        assert_eq!(g.next(), [advance("a")]);
        assert_eq!(g.next(), [], "the branch is moved once");
        let _ = g.advanced("a");
        assert_eq!(g.state.integration.order, ["a"]);
        assert_eq!(
            g.next(),
            [Action::Finish {
                status: GoalStatus::Ready,
                reason: None
            }]
        );
    }

    #[test]
    fn without_integration_gates_every_merge_moves_the_branch() {
        let mut g = Goal::new(&[("a", &[]), ("b", &["a"])], 1, json!({}));
        g.state.settings.gates[0].scope = crate::gate::GateScope::Slice;
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.committed("a");
        let _ = g.verified(Some("a"), true);
        let _ = g.merged("a");
        assert_eq!(g.next(), [advance("a")], "`b` waits for `a` on the branch");
        let _ = g.advanced("a");
        assert_eq!(g.next(), [start("b")]);
    }

    #[test]
    fn a_failed_candidate_is_bisected_to_the_first_failing_merge_which_is_taken_out() {
        let mut g = Goal::new(
            &[("a", &[]), ("b", &[]), ("c", &[])],
            3,
            json!({"max_attempts": 2}),
        );
        let _ = g.next();
        for s in ["a", "b", "c"] {
            let _ = g.started(s);
            let _ = g.committed(s);
            let _ = g.verified(Some(s), true);
        }
        let _ = g.merged("a");
        let _ = g.feed(json!({"kind": "slice_merged", "slice": "b", "attempt": 1,
            "slice_commit": "c-b", "commit": "m-b", "tree": "mt-b", "onto": "m-a"}));
        let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
            "slice_commit": "c-c", "commit": "m-c", "tree": "mt-c", "onto": "m-b"}));
        // The whole batch at once: its tip fails.
        assert_eq!(g.next(), [integrate("c")]);
        let _ = g.testing("c");
        let _ = g.integration_gate("c", false);
        let _ = g.verified(None, false);
        // Between the branch (passing) and `c` (failing): `b` first.
        assert_eq!(g.next(), [integrate("b")]);
        let _ = g.testing("b");
        let _ = g.integration_gate("b", false);
        let _ = g.verified(None, false);
        assert_eq!(g.next(), [integrate("a")]);
        let _ = g.testing("a");
        let _ = g.integration_gate("a", true);
        let _ = g.verified(None, true);
        // `b` is the first failing merge: `a` goes to the branch, `b` out, `c` again.
        let eject = Action::Eject {
            slice: "b".into(),
            gate: "test".into(),
            tree: "mt-b".into(),
            onto: "m-a".into(),
            remerge: vec!["c".into()],
        };
        assert_eq!(g.next(), [advance("a"), eject]);
        let after = g.feed(json!({"kind": "slice_ejected", "slice": "b", "attempt": 1,
            "gate": "test", "tree": "mt-b", "onto": "m-a", "remerge": ["c"]}));
        assert_eq!(
            after,
            [
                Action::Merge { slice: "c".into() },
                Action::Retry {
                    slice: "b".into(),
                    cause: RetryCause::Integration {
                        gate: "test".into(),
                        tree: "mt-b".into()
                    }
                }
            ]
        );
        let b = g.state.slice("b").unwrap();
        assert_eq!(b.status, SliceStatus::GateFailed);
        assert!(b
            .reason
            .as_deref()
            .unwrap()
            .contains("integration gate `test`"));
        assert_eq!(g.state.slice("c").unwrap().status, SliceStatus::Merging);
        // `c`'s merge onto the old candidate arrives late: it changes nothing.
        let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
            "slice_commit": "c-c", "commit": "m-c2", "tree": "mt-c2", "onto": "m-b"}));
        assert_eq!(g.state.slice("c").unwrap().status, SliceStatus::Merging);
        let _ = g.advanced("a");
        let _ = g.feed(json!({"kind": "slice_merged", "slice": "c", "attempt": 1,
            "slice_commit": "c-c", "commit": "m-c3", "tree": "mt-c3", "onto": "m-a"}));
        assert_eq!(g.state.integration.order, ["a"]);
        let tips: Vec<&str> = g
            .state
            .integration
            .candidate
            .iter()
            .map(|l| l.commit.as_str())
            .collect();
        assert_eq!(tips, ["m-c3"]);
    }

    #[test]
    fn a_culprit_without_attempts_left_stays_out_and_the_goal_ends_not_ready() {
        let mut g = Goal::new(&[("a", &[])], 1, json!({}));
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.committed("a");
        let _ = g.verified(Some("a"), true);
        let _ = g.merged("a");
        let _ = g.next();
        let _ = g.testing("a");
        let _ = g.integration_gate("a", false);
        let _ = g.verified(None, false);
        let [Action::Eject { slice, onto, .. }] = &g.next()[..] else {
            panic!("no ejection");
        };
        assert_eq!((slice.as_str(), onto.as_str()), ("a", "base"));
        let after = g.feed(json!({"kind": "slice_ejected", "slice": "a", "attempt": 1,
            "gate": "test", "tree": "mt-a", "onto": "base"}));
        assert_eq!(after, [], "one attempt only");
        let Some(Action::Finish { status, reason }) = g.next().pop() else {
            panic!("the goal did not end");
        };
        assert_eq!(status, GoalStatus::NotReady);
        assert!(reason.unwrap().contains("a (gate_failed)"));
    }

    #[test]
    fn a_cancel_stops_new_work_and_ends_the_goal_cancelled_once_nothing_runs() {
        let mut g = Goal::new(&[("a", &[]), ("b", &[])], 1, json!({}));
        let _ = g.next();
        let _ = g.started("a");
        assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
        assert_eq!(g.next(), [], "`b` does not start; `a` still runs");
        let _ = g.feed(json!({"kind": "slice_failed", "slice": "a", "attempt": 1,
            "status": "cancelled", "reason": "agent failed: cancelled", "paths": []}));
        assert_eq!(
            g.next(),
            [Action::Finish {
                status: GoalStatus::Cancelled,
                reason: Some("cancelled before every slice finished".into())
            }]
        );
    }

    #[test]
    fn an_agent_that_touched_the_checkout_halts_the_goal_as_failed() {
        let mut g = Goal::new(&[("a", &[]), ("b", &[])], 2, json!({}));
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.started("b");
        let actions = g.feed(
            json!({"kind": "checkout_touched", "slice": "a", "attempt": 1,
            "evidence": ["HEAD moved"]}),
        );
        assert_eq!(actions[..2], [Action::CancelAll, stop("a")]);
        // The first reason to halt is the one the goal ends with.
        assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
        let _ = g.failed("b");
        let Some(Action::Finish { status, reason }) = g.next().pop() else {
            panic!("the goal did not end");
        };
        assert_eq!(status, GoalStatus::Failed);
        assert!(reason
            .unwrap()
            .contains("slice `a` changed the user's repository (HEAD moved)"));
    }

    #[test]
    fn running_usage_spends_a_token_budget_once() {
        let mut g = Goal::new(&[("a", &[]), ("b", &[])], 1, json!({"budget_tokens": 100}));
        let _ = g.next();
        let _ = g.started("a");
        let usage = |n: u64| {
            json!({"kind": "agent_update", "slice": "a", "attempt": 1,
                "update": {"type": "usage", "tokens_in": n, "tokens_out": 0}})
        };
        assert_eq!(g.feed(usage(60)), []);
        let exhausted = Action::Exhaust {
            reason: "the token budget of 100 is spent (120 tokens)".into(),
        };
        assert_eq!(g.feed(usage(120)), [exhausted]);
        let _ = g.feed(json!({"kind": "budget_exhausted", "reason": "tokens"}));
        assert_eq!(g.feed(usage(130)), [], "once");
        let _ = g.failed("a");
        let Some(Action::Finish { status, .. }) = g.next().pop() else {
            panic!("the goal did not end");
        };
        assert_eq!(status, GoalStatus::NeedsBudget, "`b` never started");
    }

    #[test]
    fn a_resumed_goal_sends_committed_and_verified_slices_on() {
        let mut g = Goal::new(&[("a", &[]), ("b", &[]), ("c", &[])], 3, json!({}));
        let _ = g.next();
        for s in ["a", "b", "c"] {
            let _ = g.started(s);
        }
        let _ = g.committed("a");
        let _ = g.committed("b");
        let _ = g.verified(Some("b"), true);
        let mut resumed = Decider::new();
        assert_eq!(
            resumed.on_resume(&g.state),
            [
                Action::Gate { slice: "a".into() },
                Action::Merge { slice: "b".into() }
            ]
        );
    }

    #[test]
    fn a_resumed_goal_gives_the_retry_its_last_controller_did_not_record() {
        let mut g = Goal::new(&[("a", &[])], 1, json!({"max_attempts": 2}));
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.committed("a");
        let _ = g.feed(json!({"kind": "gate_finished", "slice": "a", "result": {"name": "test",
            "passed": false, "exit_code": 1, "outcome": "exit 1", "duration_ms": 1, "tree": "t-a", "log": "/l"}}));
        // Killed after the verdict, before `slice_retrying`.
        let _ = g.verified(Some("a"), false);
        let _ = g.feed(json!({"kind": "goal_resumed", "pid": 1}));
        let mut resumed = Decider::new();
        assert_eq!(
            resumed.on_resume(&g.state),
            [Action::Retry {
                slice: "a".into(),
                cause: RetryCause::Gate {
                    gate: "test".into()
                }
            }]
        );
    }

    #[test]
    fn a_failed_gate_a_refused_commit_or_a_conflict_is_retried_while_attempts_remain() {
        let mut g = Goal::new(
            &[("a", &[]), ("b", &[]), ("c", &[])],
            3,
            json!({"max_attempts": 2}),
        );
        let _ = g.next();
        for s in ["a", "b", "c"] {
            let _ = g.started(s);
        }
        let _ = g.committed("a");
        let _ = g.feed(json!({"kind": "gate_finished", "slice": "a", "result": {"name": "test",
            "passed": false, "exit_code": 1, "outcome": "exit 1", "duration_ms": 1, "tree": "t-a", "log": "/l"}}));
        let gate = RetryCause::Gate {
            gate: "test".into(),
        };
        assert_eq!(
            g.verified(Some("a"), false),
            [
                stop("a"),
                Action::Retry {
                    slice: "a".into(),
                    cause: gate
                },
                release("a")
            ]
        );
        let refused = g.feed(json!({"kind": "slice_failed", "slice": "b", "attempt": 1,
            "status": "scope_violation", "reason": "changed 1 path outside its write scope: x", "paths": ["x"]}));
        assert!(refused.contains(&Action::Retry {
            slice: "b".into(),
            cause: RetryCause::Scope
        }));
        let _ = g.committed("c");
        let _ = g.verified(Some("c"), true);
        let conflict =
            g.feed(json!({"kind": "merge_conflict", "slice": "c", "attempt": 1, "paths": ["x"]}));
        assert!(conflict.contains(&Action::Retry {
            slice: "c".into(),
            cause: RetryCause::Conflict
        }));
        // Its second attempt fails too, and that was the last.
        let _ = g.feed(json!({"kind": "slice_retrying", "slice": "a", "attempt": 1,
            "cause": {"type": "gate", "gate": "test"}, "feedback": "f", "work_from": "c-a"}));
        assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Pending);
        let _ = g.feed(json!({"kind": "slice_started", "slice": "a", "attempt": 2,
            "start_commit": "base", "branch": "omk/g/a", "worktree": "/pool/slot", "work_from": "c-a"}));
        let failed = g.feed(json!({"kind": "slice_failed", "slice": "a", "attempt": 2,
            "status": "scope_violation", "reason": "again", "paths": []}));
        assert!(
            !failed.iter().any(|a| matches!(a, Action::Retry { .. })),
            "no attempts left: {failed:?}"
        );
    }

    #[test]
    fn gates_stopped_by_a_cancel_are_no_verdict() {
        let mut g = Goal::new(&[("a", &[])], 1, json!({"max_attempts": 3}));
        let _ = g.next();
        let _ = g.started("a");
        let _ = g.committed("a");
        assert_eq!(g.decider.on_cancel(), [Action::CancelAll]);
        let after =
            g.feed(json!({"kind": "verified", "slice": "a", "passed": false, "interrupted": true}));
        assert_eq!(after, [], "no retry, no release");
        assert_eq!(g.state.slice("a").unwrap().status, SliceStatus::Gating);
        assert_eq!(
            g.next(),
            [Action::Finish {
                status: GoalStatus::Cancelled,
                reason: Some("cancelled before every slice finished".into())
            }]
        );
    }
}
