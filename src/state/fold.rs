//! [`GoalState::apply`]: the one place where events change a goal's state.

use super::*;
use crate::store::events::{Event, EventBody};

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
        use EventBody::*;
        match &event.body {
            GoalStarted { .. }
            | GoalResumed { .. }
            | GoalRetried { .. }
            | GoalFinished { .. }
            | BudgetExhausted { .. }
            | Delivery(_)
            | Landing(_)
            | BaseChecked { .. } => self.apply_goal(event),
            // What a gate ran with is in the log; the state needs none of it.
            SetupReady { .. } => {}
            SliceStarted { .. }
            | AgentUpdate { .. }
            | AgentFinished { .. }
            | AgentRetry { .. }
            | SliceCommitted { .. }
            | SliceFailed { .. }
            | SliceRetrying { .. }
            | CheckoutTouched { .. }
            | SliceBlocked { .. } => self.apply_attempt(event),
            GateStarted { .. } | GateFinished { .. } | Verified { .. } => self.apply_gates(event),
            SliceMerged { .. }
            | MergeConflict { .. }
            | GatesDeferred { .. }
            | IntegrationStarted { .. }
            | IntegrationAdvanced { .. }
            | SliceEjected { .. } => self.apply_integration(event),
        }
    }

    /// The goal as a whole: how it started, resumed, was retried, ended, was
    /// delivered; its base check and budgets.
    fn apply_goal(&mut self, event: &Event) {
        match &event.body {
            EventBody::GoalStarted { .. } => *self = GoalState::started(event),
            EventBody::BaseChecked { passed, gates } => {
                self.base_check = Some(BaseCheck {
                    passed: *passed,
                    gates: gates.clone(),
                });
            }
            EventBody::BudgetExhausted { reason } => {
                self.budget_exhausted.get_or_insert_with(|| reason.clone());
            }
            EventBody::Delivery(delivery) => {
                if let Some(earlier) = self.delivery.replace(delivery.clone()) {
                    self.earlier_deliveries.push(earlier);
                }
            }
            EventBody::Landing(step) => {
                self.landing
                    .get_or_insert_with(Default::default)
                    .apply(step);
                use crate::store::landing::{LandStep, Reproduction};
                match step {
                    LandStep::Reopened { told, .. } => self.reopened(told),
                    // The goal runs again, only to run the check's gate.
                    LandStep::Reproducing { head, check, gate } => {
                        self.runs_again();
                        self.integration.reproducing = Some(Reproduction {
                            head: head.clone(),
                            check: check.clone(),
                            gate: gate.clone(),
                            results: vec![],
                        });
                    }
                    LandStep::Reproduced(_) => self.integration.reproducing = None,
                    _ => {}
                }
            }
            EventBody::GoalResumed { raised, .. } => self.resumed(raised),
            EventBody::GoalRetried {
                slices,
                max_attempts,
            } => {
                self.runs_again();
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
            _ => {}
        }
    }

    /// The goal, ended, runs again (resumed, retried, reopened by its pull
    /// request, or to reproduce a failed check): no end, no reason yet.
    fn runs_again(&mut self) {
        self.status = GoalStatus::Running;
        self.reason = None;
        self.finished_at = None;
    }

    /// The pull request sent feedback back: the goal runs again, and each
    /// slice `told` something gets another attempt on the integration
    /// (which holds its merged work), told it.
    fn reopened(&mut self, told: &[crate::store::landing::Told]) {
        self.runs_again();
        for t in told {
            if let Some(s) = self.slice_mut(&t.slice) {
                s.status = SliceStatus::Pending;
                s.ended = None;
                s.reason = Some("reopened: its pull request sent feedback".into());
                s.feedback = Some(t.feedback.clone());
                s.work_from = None;
                s.paths.clear();
                s.resume_session = s.session.take();
            }
        }
        self.integration.gates.clear();
        self.integration.testing = None;
    }

    /// A new controller takes the goal over, with `raised` limits.
    fn resumed(&mut self, raised: &crate::store::events::Raised) {
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
        self.runs_again();
        self.budget_exhausted = None;
        // It is delivered again when it ends; the last delivery is kept. A
        // reproduction never moves the branch: its delivery stays current.
        if self.integration.reproducing.is_none() {
            if let Some(delivery) = self.delivery.take() {
                self.earlier_deliveries.push(delivery);
            }
        }
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
                    // Gates that ran with the attempt and were not all
                    // recorded run again here.
                    s.gates_follow = false;
                }
                _ => {}
            }
            s.unblock();
            s.current_gate = None;
        }
        // Integration gates that were running run again.
        self.integration.testing = None;
    }

    /// The state a `goal_started` event opens: every slice pending.
    fn started(event: &Event) -> GoalState {
        let EventBody::GoalStarted {
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
            deliver_options,
            limits,
        } = &event.body
        else {
            return GoalState::default();
        };
        GoalState {
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
                    gates_chosen: match &s.gates {
                        Some(names) => GateChoice {
                            gates: names.clone(),
                            by: GateChooser::Plan,
                        },
                        None => GateChoice {
                            gates: gates
                                .iter()
                                .filter(|g| g.scope.judges_slices())
                                .map(|g| g.name.clone())
                                .collect(),
                            by: GateChooser::Configuration,
                        },
                    },
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
            earlier_deliveries: vec![],
            landing: None,
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
                deliver_options: deliver_options.clone(),
                base_tree: base_tree.clone(),
                index: plan
                    .slices
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.id.clone(), i))
                    .collect(),
                order: plan
                    .order_positions()
                    .unwrap_or_else(|_| (0..plan.slices.len()).collect()),
            },
        }
    }

    /// A slice's attempts: started, what its agent did, committed, failed,
    /// blocked, sent back.
    fn apply_attempt(&mut self, event: &Event) {
        match &event.body {
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
                    s.ended = None;
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
            EventBody::SliceCommitted {
                slice,
                commit,
                tree,
                changed_files,
                gated: ran_with_it,
                ..
            } => {
                let gated = !self.slice_gates(slice).is_empty();
                if let Some(s) = self.slice_mut(slice) {
                    s.gates_follow = gated && *ran_with_it;
                    s.unjudged = 0;
                    s.commit = Some(commit.clone());
                    s.tree = Some(tree.clone());
                    s.changed_files = changed_files.clone();
                    s.committed_seq = event.seq;
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
                    s.ended = Some(AttemptEnd::Failed(*status));
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
                    s.retrying(*attempt, feedback, work_from.as_ref());
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
            _ => {}
        }
    }

    /// A slice's (or a candidate's) gates and their verdict.
    fn apply_gates(&mut self, event: &Event) {
        match &event.body {
            EventBody::GateStarted { slice, gate, .. } => {
                if let Some(s) = slice.as_deref().and_then(|id| self.slice_mut(id)) {
                    s.current_gate = Some(gate.clone());
                }
            }
            EventBody::GateFinished { slice, result, .. } => {
                // A reviewer's tokens count like an agent's (a cached review
                // spent nothing now).
                if let Some(r) = result.review.as_ref().filter(|_| !result.cached) {
                    self.usage.add(&r.agent);
                }
                match slice {
                    Some(id) => {
                        if let Some(s) = self.slice_mut(id) {
                            s.gates.push(result.clone());
                            s.current_gate = None;
                        }
                    }
                    // A reproduction's results judge no candidate.
                    None if self
                        .integration
                        .reproducing
                        .as_ref()
                        .is_some_and(|r| r.gate == result.name) =>
                    {
                        if let Some(r) = &mut self.integration.reproducing {
                            r.results.push(result.clone());
                        }
                    }
                    None => {
                        if !result.outcome.judged() {
                            *self
                                .integration
                                .unjudged
                                .entry(result.tree.clone())
                                .or_default() += 1;
                        }
                        self.integration.gates.push(result.clone());
                    }
                }
            }
            EventBody::Verified {
                slice: Some(id),
                interrupted: true,
                ..
            } => {
                // No verdict: the slice waits for its gates, which run again.
                if let Some(s) = self.slice_mut(id) {
                    s.gates_follow = false;
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
                    s.gates_follow = false;
                    let failed = s.gates.iter().find(|g| !g.passed);
                    if failed.is_some_and(|g| !g.outcome.judged()) && !*passed {
                        // No verdict: the slice is still to be judged.
                        s.unjudged += 1;
                        s.gates.clear();
                        s.current_gate = None;
                    } else if *passed {
                        s.unjudged = 0;
                        s.status = SliceStatus::Merging;
                    } else {
                        let excerpt = failed.and_then(|g| g.excerpt.clone());
                        s.ended = Some(AttemptEnd::GateFailed {
                            gate: failed.map(|g| g.name.clone()),
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
            _ => {}
        }
    }

    /// The candidate and the branch: merges, conflicts, gate runs on the
    /// integration, advances, ejections.
    fn apply_integration(&mut self, event: &Event) {
        match &event.body {
            EventBody::SliceMerged {
                slice,
                slice_commit,
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
                    s.merged_files.extend(s.changed_files.iter().cloned());
                    s.contributed = Some(slice_commit.clone());
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
                ..
            } => {
                if !onto.is_empty() && onto != self.integration.tip() {
                    return;
                }
                if let Some(s) = self.slice_mut(slice) {
                    s.paths = paths.clone();
                    s.status = SliceStatus::Conflict;
                    s.ended = Some(AttemptEnd::Conflict);
                    s.reason = Some(format!(
                        "conflicts with the integration after {attempt} attempt{} on {}",
                        if *attempt == 1 { "" } else { "s" },
                        paths.join(", ")
                    ));
                    s.end_attempt();
                }
            }
            // Which slices wait behind which is the supervisor's schedule
            // (`Decider`), made again on resume.
            EventBody::GatesDeferred { .. } => {}
            EventBody::IntegrationStarted { commit, .. } => {
                self.integration.testing = Some(commit.clone());
            }
            EventBody::IntegrationAdvanced { commit, tree, .. } => {
                let i = &mut self.integration;
                if let Some(at) = i.candidate.iter().position(|l| &l.commit == commit) {
                    let advanced: Vec<Link> = i.candidate.drain(..=at).collect();
                    i.order.extend(advanced.iter().map(|l| l.slice.clone()));
                    i.merges.extend(advanced);
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
                let failed = self.integration.last_failure(gate, tree);
                let log = failed
                    .map(|g| format!("; log: {}", g.log.display()))
                    .unwrap_or_default();
                let excerpt = failed.and_then(|g| g.excerpt.clone());
                if let Some(s) = self.slice_mut(slice) {
                    s.status = SliceStatus::GateFailed;
                    s.ended = Some(AttemptEnd::Ejected {
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
            _ => {}
        }
    }
}

impl SliceState {
    /// Its attempt `attempt` failed and another follows, told `feedback`,
    /// going on from `work_from` when the decider said so.
    fn retrying(&mut self, attempt: u32, feedback: &str, work_from: Option<&String>) {
        self.status = SliceStatus::Pending;
        self.ended = None;
        self.reason = Some(format!(
            "attempt {attempt} failed; another attempt is told what went wrong"
        ));
        self.feedback = Some(feedback.to_string());
        self.work_from = work_from.cloned();
        // A refused commit is recorded only as where the next
        // attempt goes on from: it is that attempt's commit.
        if let Some(a) = self
            .attempt_history
            .last_mut()
            .filter(|a| a.attempt == attempt && a.commit.is_none())
        {
            a.commit = work_from.cloned();
        }
        // The agent goes on in its own session where it can.
        self.resume_session = self.session.take();
    }
}
