//! The goal supervisor: owns the goal's state and is its event log's single writer.
//!
//! Every report from a child is recorded ([`Supervisor`] stamps, appends,
//! folds it into [`GoalState`], rewrites the proof and shows it), then the
//! supervisor decides what follows: start slices whose dependencies are
//! merged (within the concurrency limit), send committed slices to the gate
//! actor and verified ones to the integrator, retry conflicts, and finally
//! verify the integration and finish. A child that fails or panics fails its
//! slice only; the supervisor carries on with the others.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::gate::{GateActor, GateArgs, GateJob, GateMsg};
use super::integrator::{IntegratorActor, IntegratorArgs, IntegratorMsg};
use super::slice::{self, SliceActor, SliceArgs, SliceMsg};
use std::sync::Arc;

use super::limiter::Limiter;
use crate::agent::{AgentSpec, Task, Update};
use crate::git::Repo;
use crate::report::Reporter;
use crate::state::{Deliver, GoalState, GoalStatus, LogEnd, SliceStatus};
use crate::store::events::{Event, EventBody, EventLog};
use crate::store::{GoalDir, Store};
use crate::util::write_atomic;

/// How often the proof is rewritten while a goal runs.
const PROOF_EVERY: Duration = Duration::from_secs(1);

/// Messages to the supervisor.
// Reports are moved, never copied, and arrive a few per slice: boxing them buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SupervisorMsg {
    /// A child reports what it did.
    Report(EventBody),
    /// Stop starting work and cancel running agents; the goal ends `cancelled`.
    Cancel,
    /// The goal's time budget ran out.
    TimeBudgetSpent,
}

/// How the supervisor starts.
#[allow(clippy::large_enum_variant)]
pub enum Start {
    /// A new goal: this `goal_started` event opens its log.
    New(EventBody),
    /// A goal taken over after its last controller stopped: its reopened log.
    Resume { log: EventLog, events: Vec<Event> },
}

/// Startup arguments.
pub struct SupervisorArgs {
    pub repo: Repo,
    pub store: Store,
    pub goal: GoalDir,
    pub start: Start,
    pub agent: AgentSpec,
    pub reporter: Reporter,
    /// Receives the final state.
    pub done: oneshot::Sender<GoalState>,
}

/// The supervisor's state.
pub struct SupervisorState {
    repo: Repo,
    goal: GoalDir,
    agent: AgentSpec,
    log: EventLog,
    state: GoalState,
    reporter: Reporter,
    gates: ActorRef<GateMsg>,
    integrator: ActorRef<IntegratorMsg>,
    /// Running slice actors: who they are and which attempt they run.
    slices: HashMap<ActorId, (String, u32, ActorRef<SliceMsg>)>,
    /// Cancels everything: agents and gates (Ctrl-C).
    cancel: CancellationToken,
    /// Cancels running agents only (a budget ran out; committed work still merges).
    agent_cancel: CancellationToken,
    /// Usage of running attempts, per slice: (tokens in, tokens out).
    live: HashMap<String, (u64, u64)>,
    limiter: Arc<Limiter>,
    /// The repository's worktree pool, and the slots this goal holds.
    pool: Arc<crate::pool::Pool>,
    slots: HashMap<String, std::path::PathBuf>,
    /// The plan's dependency order, computed once.
    order: Option<Vec<String>>,
    /// When the proof was last written.
    proof_written: std::time::Instant,
    /// Set when the goal must stop early: how it ends, and why.
    halt: Option<(GoalStatus, String)>,
    integration_started: bool,
    /// Set when resuming: slices to send on to gates or the integrator once started.
    redispatch: bool,
    done: Option<oneshot::Sender<GoalState>>,
}

/// The goal supervisor.
pub struct Supervisor;

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let cancel = CancellationToken::new();
        // What the log says, and what happened after it that the log missed.
        let (log, first, recovered, resumed) = match args.start {
            Start::New(started) => (
                EventLog::create(&args.goal.events())?,
                GoalState::default(),
                vec![started],
                false,
            ),
            Start::Resume { log, events } => {
                let known = GoalState::from_events(&events);
                let mut recovered = recover_integration(&args.repo, &known)?;
                recovered.extend(adopt_commits(&args.repo, &known));
                (log, known, recovered, true)
            }
        };
        let (goal_id, integration_branch, head) = match (&first.goal_id, recovered.first()) {
            (id, _) if !id.is_empty() => (
                id.clone(),
                first.integration.branch.clone(),
                first.integration.commit.clone(),
            ),
            (
                _,
                Some(EventBody::GoalStarted {
                    goal_id,
                    integration_branch,
                    base_commit,
                    ..
                }),
            ) => (
                goal_id.clone(),
                integration_branch.clone(),
                base_commit.clone(),
            ),
            _ => return Err("the first event must be goal_started".into()),
        };
        // A merge the log missed moved the integration head.
        let head = recovered
            .iter()
            .rev()
            .find_map(|b| match b {
                EventBody::SliceMerged { commit, .. } => Some(commit.clone()),
                _ => None,
            })
            .unwrap_or(head);
        let gate_concurrency = match recovered.first() {
            Some(EventBody::GoalStarted { limits, .. }) => limits.gate_concurrency,
            _ => first.settings.limits.gate_concurrency,
        };
        let pool = Arc::new(crate::pool::Pool::new(args.store.root().join("pool")));
        let (gates, _) = Actor::spawn_linked(
            None,
            GateActor,
            GateArgs {
                supervisor: myself.clone(),
                repo: args.repo.clone(),
                pool: pool.clone(),
                concurrency: gate_concurrency.max(1),
                cancel: cancel.clone(),
                cache: crate::gate::Cache::new(args.store.root().join("gate-cache")),
            },
            myself.get_cell(),
        )
        .await?;
        let (integrator, _) = Actor::spawn_linked(
            None,
            IntegratorActor,
            IntegratorArgs {
                supervisor: myself.clone(),
                repo: args.repo.clone(),
                goal_id,
                branch_ref: format!("refs/heads/{integration_branch}"),
                head,
            },
            myself.get_cell(),
        )
        .await?;
        let mut state = SupervisorState {
            repo: args.repo,
            goal: args.goal,
            agent: args.agent,
            log,
            state: first,
            reporter: args.reporter,
            gates,
            integrator,
            slices: HashMap::new(),
            agent_cancel: cancel.child_token(),
            cancel,
            live: HashMap::new(),
            limiter: Arc::new(Limiter::default()),
            halt: None,
            order: None,
            pool,
            slots: HashMap::new(),
            proof_written: std::time::Instant::now(),
            integration_started: false,
            redispatch: resumed,
            done: Some(args.done),
        };
        for body in recovered {
            state.record(body)?;
        }
        if resumed {
            state.record(EventBody::GoalResumed {
                pid: std::process::id(),
            })?;
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.redispatch {
            // Committed or verified slices of the last controller go on where they were.
            let waiting: Vec<String> = state
                .state
                .slices
                .iter()
                .filter(|s| matches!(s.status, SliceStatus::Gating | SliceStatus::Merging))
                .map(|s| s.id.clone())
                .collect();
            for id in waiting {
                // A gating slice goes on in the slot it had.
                let slot = state.state.slice(&id).and_then(|s| s.worktree.clone());
                if let Some(slot) = slot.filter(|p| p.starts_with(state.pool.dir())) {
                    if state
                        .state
                        .slice(&id)
                        .is_some_and(|s| s.status == SliceStatus::Gating)
                    {
                        state.pool.hold(&slot)?;
                        state.slots.insert(id.clone(), slot);
                    }
                }
                state.dispatch(&id)?;
            }
        }
        if let Some(limit) = state
            .state
            .settings
            .limits
            .budget_time_ms
            .map(Duration::from_millis)
        {
            let me = myself.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                let _ = me.send_message(SupervisorMsg::TimeBudgetSpent);
            });
        }
        state.drive(&myself).await
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.done.is_none() {
            return Ok(()); // finished; late reports change nothing
        }
        match message {
            SupervisorMsg::Report(mut body) => {
                state.price_report(&mut body);
                state.record(body.clone())?;
                state.track_usage(&body)?;
                if let EventBody::Verified { slice: None, .. } = body {
                    // The integration gates were the last step.
                    let (status, reason) = state.state.verdict();
                    return state.finish(status, reason, &myself);
                }
                if let EventBody::CheckoutTouched {
                    slice, evidence, ..
                } = &body
                {
                    // An agent changed the user's repository: stop everything.
                    let reason = format!(
                        "slice `{slice}` changed the user's repository ({}); stopped",
                        evidence.join("; ")
                    );
                    state.halt.get_or_insert((GoalStatus::Failed, reason));
                    state.cancel.cancel();
                }
                state.follow_up(&body)?;
            }
            SupervisorMsg::Cancel => {
                state.halt.get_or_insert((
                    GoalStatus::Cancelled,
                    "cancelled before every slice finished".into(),
                ));
                state.cancel.cancel();
            }
            SupervisorMsg::TimeBudgetSpent => {
                let limit = Duration::from_millis(
                    state
                        .state
                        .settings
                        .limits
                        .budget_time_ms
                        .unwrap_or_default(),
                );
                state.exhaust(format!(
                    "the time budget of {} ran out",
                    crate::util::human_duration(limit)
                ))?;
            }
        }
        state.drive(&myself).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Never stop just because a child did (ractor's default would).
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("crashed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped without a result{}",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
            ),
            _ => return Ok(()),
        };
        if state.done.is_none() {
            return Ok(());
        }
        let id = cell.get_id();
        if let Some((slice, attempt, _)) = state.slices.remove(&id) {
            let still_running = state
                .state
                .slice(&slice)
                .is_some_and(|s| s.status == SliceStatus::Running && s.attempts == attempt);
            if still_running {
                state.record(EventBody::SliceFailed {
                    slice,
                    attempt,
                    status: SliceStatus::Failed,
                    reason: format!("slice actor {why}"),
                    paths: vec![],
                })?;
            }
        } else if id == state.gates.get_id() || id == state.integrator.get_id() {
            let who = if id == state.gates.get_id() {
                "gate actor"
            } else {
                "integrator"
            };
            state.finish(
                GoalStatus::Failed,
                Some(format!("the {who} {why}")),
                &myself,
            )?;
            return Ok(());
        }
        state.drive(&myself).await
    }
}

impl SupervisorState {
    /// Appends an event, folds it into the state, rewrites the proof, shows it.
    fn record(&mut self, body: EventBody) -> crate::Result<()> {
        let event = self.log.append(body)?;
        self.state.apply(&event);
        self.state.log_end = Some(LogEnd {
            events: event.seq,
            hash: self.log.last_hash().to_string(),
        });
        // The proof is O(slices) bytes: rewriting it after every event would
        // make a goal quadratic. It is written when the goal starts, resumes
        // and ends, and at most once a second in between; the log is the
        // record, and `status` rebuilds from it.
        let milestone = matches!(
            event.body,
            EventBody::GoalStarted { .. }
                | EventBody::GoalResumed { .. }
                | EventBody::GoalFinished { .. }
        );
        if milestone || self.proof_written.elapsed() >= PROOF_EVERY {
            self.write_proof()?;
        }
        self.reporter.event(&event, &self.state);
        Ok(())
    }

    fn write_proof(&mut self) -> crate::Result<()> {
        let proof = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| crate::Error::io("encoding proof", e.into()))?;
        let proof = String::from_utf8_lossy(&proof);
        write_atomic(&self.goal.proof(), crate::redact::redact(&proof).as_bytes())?;
        self.proof_written = std::time::Instant::now();
        Ok(())
    }

    /// Fills in an attempt's cost from the configured price when the agent reported none.
    fn price_report(&self, body: &mut EventBody) {
        if let (EventBody::AgentFinished { report, .. }, Some(price)) =
            (body, &self.state.settings.limits.price)
        {
            if report.usd.is_none() {
                if let Some(tokens_in) = report.tokens_in {
                    report.usd = Some(price.usd(tokens_in, report.tokens_out.unwrap_or(0)));
                }
            }
        }
    }

    /// Keeps the usage of running attempts and stops the goal when a budget is spent.
    fn track_usage(&mut self, body: &EventBody) -> crate::Result<()> {
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
            }
            EventBody::AgentFinished { slice, .. } => {
                self.live.remove(slice);
            }
            _ => return Ok(()),
        }
        let usage = &self.state.usage;
        let (live_in, live_out) = self
            .live
            .values()
            .fold((0, 0), |(i, o), (a, b)| (i + a, o + b));
        let tokens =
            usage.tokens_in.unwrap_or(0) + usage.tokens_out.unwrap_or(0) + live_in + live_out;
        let limits = &self.state.settings.limits;
        if let Some(limit) = limits.budget_tokens {
            if tokens >= limit {
                return self.exhaust(format!(
                    "the token budget of {limit} is spent ({tokens} tokens)"
                ));
            }
        }
        if let Some(limit) = limits.budget_usd {
            let live_usd = limits
                .price
                .as_ref()
                .map_or(0.0, |p| p.usd(live_in, live_out));
            let usd = usage.usd.unwrap_or(0.0) + live_usd;
            if usd >= limit {
                return self.exhaust(format!("the budget of ${limit:.2} is spent (${usd:.4})"));
            }
        }
        Ok(())
    }

    /// Records that a budget ran out and cancels the running agents, once.
    fn exhaust(&mut self, reason: String) -> crate::Result<()> {
        if self.state.budget_exhausted.is_none() {
            self.record(EventBody::BudgetExhausted { reason })?;
            self.agent_cancel.cancel();
        }
        Ok(())
    }

    /// Sends a slice on to the next stage after an event moved it there.
    fn follow_up(&mut self, body: &EventBody) -> Result<(), ActorProcessingErr> {
        match body {
            EventBody::SliceCommitted { slice, .. }
            | EventBody::Verified {
                slice: Some(slice), ..
            } => {
                self.stop_slice_actor(slice);
                self.dispatch(slice)?;
            }
            EventBody::SliceFailed { slice, .. } | EventBody::CheckoutTouched { slice, .. } => {
                self.stop_slice_actor(slice)
            }
            _ => {}
        }
        // A slice that is no longer running or gating needs its tree no more.
        if let Some(slice) = body.slice() {
            let needs_tree = self
                .state
                .slice(slice)
                .is_some_and(|s| matches!(s.status, SliceStatus::Running | SliceStatus::Gating));
            if !needs_tree {
                self.release_slot(slice);
            }
        }
        Ok(())
    }

    /// Gives a slice's (or the integration's) pool slot back, detached.
    fn release_slot(&mut self, owner: &str) {
        if let Some(slot) = self.slots.remove(owner) {
            self.pool.release(&slot);
        }
    }

    /// Sends a committed slice to the gate actor, or a verified one to the integrator.
    fn dispatch(&mut self, slice: &str) -> Result<(), ActorProcessingErr> {
        let Some(s) = self.state.slice(slice).cloned() else {
            return Ok(());
        };
        let (Some(commit), Some(tree)) = (s.commit.clone(), s.tree.clone()) else {
            return Ok(());
        };
        match s.status {
            SliceStatus::Gating => {
                let Some(slot) = s.worktree.clone() else {
                    return Ok(());
                };
                let job = self.gate_job(
                    Some(&s.id),
                    slot,
                    commit,
                    tree,
                    s.sparse.clone(),
                    self.state.slice_gates(slice),
                    self.attempt_logs(slice, s.attempts),
                )?;
                self.gates.send_message(GateMsg::Run(Box::new(job)))?
            }
            SliceStatus::Merging => self.integrator.send_message(IntegratorMsg::Merge {
                slice: s.id.clone(),
                attempt: s.attempts,
                commit,
                start: s.start_commit.clone(),
            })?,
            _ => {}
        }
        Ok(())
    }

    /// A gate job judging `commit` (whose tree is `tree`) in `slot`.
    #[allow(clippy::too_many_arguments)]
    fn gate_job(
        &self,
        slice: Option<&str>,
        slot: std::path::PathBuf,
        commit: String,
        tree: String,
        cone: Option<Vec<String>>,
        gates: Vec<crate::gate::GateSpec>,
        log_dir: std::path::PathBuf,
    ) -> crate::Result<GateJob> {
        let limits = &self.state.settings.limits;
        Ok(GateJob {
            slice: slice.map(str::to_string),
            bench: crate::gate::Bench {
                goal_id: self.state.goal_id.clone(),
                caches: crate::pool::Pool::caches(&slot, &limits.slot_cache)?,
                tmp: slot.with_extension("tmp"),
                dir: slot,
                env: limits.sandbox_env.clone(),
                writable: limits.sandbox_writable.clone(),
            },
            commit,
            cone,
            tree,
            gates,
            log_dir,
        })
    }

    fn stop_slice_actor(&mut self, slice: &str) {
        let id = self
            .slices
            .iter()
            .find(|(_, (s, _, _))| s == slice)
            .map(|(id, _)| *id);
        if let Some((_, _, actor)) = id.and_then(|id| self.slices.remove(&id)) {
            actor.stop(None);
        }
    }

    fn attempt_logs(&self, slice: &str, attempt: u32) -> std::path::PathBuf {
        self.goal
            .logs()
            .join(slice)
            .join(format!("attempt-{attempt}"))
    }

    /// Starts what can start, and finishes the goal when nothing is left.
    async fn drive(&mut self, myself: &ActorRef<SupervisorMsg>) -> Result<(), ActorProcessingErr> {
        if self.done.is_none() || self.integration_started {
            return Ok(());
        }
        // Slices whose dependencies will never merge are blocked, once.
        loop {
            let blocked = self.state.slices.iter().find_map(|s| {
                let dep = self.state.blocked_by(s)?;
                s.reason
                    .is_none()
                    .then(|| (s.id.clone(), dep.id.clone(), dep.status))
            });
            let Some((slice, dep, status)) = blocked else {
                break;
            };
            let reason = format!("dependency `{dep}` did not merge ({status})");
            self.record(EventBody::SliceBlocked { slice, reason })?;
        }
        if self.halt.is_none() && self.state.budget_exhausted.is_none() {
            self.start_ready_slices(myself).await?;
        }
        let busy = self.state.slices.iter().any(|s| {
            matches!(
                s.status,
                SliceStatus::Running | SliceStatus::Gating | SliceStatus::Merging
            )
        });
        if busy {
            return Ok(());
        }
        if let Some((status, reason)) = self.halt.clone() {
            return self.finish(status, Some(reason), myself);
        }
        if self.state.budget_exhausted.is_some() {
            let (status, reason) = self.state.verdict();
            return self.finish(status, reason, myself);
        }
        if !self.state.slices_settled() {
            return Ok(());
        }
        let gates = self.state.integration_gates();
        if self.state.integration.order.is_empty() || gates.is_empty() {
            let (status, reason) = self.state.verdict();
            return self.finish(status, reason, myself);
        }
        self.integration_started = true;
        let worktree = self.pool.acquire(&self.repo, false)?;
        self.slots
            .insert(crate::plan::INTEGRATION.to_string(), worktree.clone());
        let (commit, tree) = (
            self.state.integration.commit.clone(),
            self.state.integration.tree.clone(),
        );
        self.record(EventBody::IntegrationStarted {
            commit: commit.clone(),
            tree: tree.clone(),
            worktree: worktree.clone(),
        })?;
        let job = self.gate_job(
            None,
            worktree,
            commit,
            tree,
            None,
            gates,
            self.goal.logs().join(crate::plan::INTEGRATION),
        )?;
        self.gates.send_message(GateMsg::Run(Box::new(job)))?;
        Ok(())
    }

    async fn start_ready_slices(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        // The dependency order is fixed for the goal: compute it once.
        if self.order.is_none() {
            self.order = match self.state.settings.plan.as_ref().map(|p| p.order()) {
                Some(Ok(order)) => Some(order),
                _ => return Ok(()),
            };
        }
        let mut running = self
            .state
            .slices
            .iter()
            .filter(|s| s.status == SliceStatus::Running)
            .count();
        let order = std::mem::take(&mut self.order).unwrap_or_default();
        for id in &order {
            if running >= self.state.settings.concurrency {
                break;
            }
            let Some(s) = self.state.slice(id) else {
                continue;
            };
            let deps_merged = s.depends_on.iter().all(|d| {
                self.state
                    .slice(d)
                    .is_some_and(|d| d.status == SliceStatus::Merged)
            });
            if s.status == SliceStatus::Pending && deps_merged {
                if let Err(e) = self.start_slice(id, myself).await {
                    self.order = Some(order);
                    return Err(e);
                }
                running += 1;
            }
        }
        self.order = Some(order);
        Ok(())
    }

    async fn start_slice(
        &mut self,
        id: &str,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(s), Some(spec)) = (self.state.slice(id).cloned(), self.state.spec(id).cloned())
        else {
            return Ok(());
        };
        let attempt = s.attempts + 1;
        // Dependent slices and retries build on what is already integrated.
        let start_commit = if attempt == 1 && s.depends_on.is_empty() {
            self.state.base_commit.clone()
        } else {
            self.state.integration.commit.clone()
        };
        let limits = &self.state.settings.limits;
        let sparse = limits
            .sparse
            .as_ref()
            .and_then(|include| crate::plan::cone(&spec.write_scope, include));
        let worktree = self.pool.acquire(&self.repo, sparse.is_some())?;
        self.slots.insert(id.to_string(), worktree.clone());
        let caches = crate::pool::Pool::caches(&worktree, &self.state.settings.limits.slot_cache)?;
        let conflict_paths = s.retry_after_conflict.clone();
        self.record(EventBody::SliceStarted {
            slice: id.to_string(),
            attempt,
            start_commit: start_commit.clone(),
            branch: s.branch.clone(),
            worktree: worktree.clone(),
            conflict_paths: conflict_paths.clone(),
            resume_session: s.resume_session.clone(),
            sparse: sparse.clone(),
        })?;
        let others: Vec<_> = self
            .state
            .settings
            .plan
            .iter()
            .flat_map(|p| &p.slices)
            .filter(|o| o.id != id)
            .collect();
        let worktree_for_policy = worktree.clone();
        let gate_names: Vec<String> = self
            .state
            .slice_gates(id)
            .into_iter()
            .map(|g| g.name)
            .collect();
        let task = Task {
            goal_id: self.state.goal_id.clone(),
            slice_id: id.to_string(),
            prompt: match &s.resume_session {
                // The agent remembers its work; its worktree does not.
                Some(_) => format!(
                    "omk was interrupted while you worked on this, and your worktree was reset to its start. \
                     Check the files and redo whatever is missing.\n\n{}",
                    slice::prompt(&self.state.goal, &spec, &others, &gate_names, &conflict_paths)
                ),
                None => slice::prompt(&self.state.goal, &spec, &others, &gate_names, &conflict_paths),
            },
            worktree,
            write_scope: spec.write_scope.clone(),
            attempt,
            log: self.attempt_logs(id, attempt).join("agent.log"),
            timeout: Duration::from_millis(self.state.settings.limits.slice_timeout_ms),
            inactivity: Duration::from_millis(self.state.settings.limits.inactivity_timeout_ms),
            policy: crate::agent::policy::Policy::new(
                &worktree_for_policy,
                &self.state.settings.limits.deny,
            ),
            answer: None,
            planning: false,
            resume_session: s.resume_session.clone(),
            inherit: crate::agent::allowed_env(&self.state.settings.limits.sandbox_env)
                .into_iter()
                .filter(|(k, _)| !caches.iter().any(|(c, _)| c == k))
                .chain(caches.iter().cloned())
                .collect(),
            confinement: crate::sandbox::Confinement::new(
                [worktree_for_policy.clone(), worktree_for_policy.with_extension("tmp")]
                    .into_iter()
                    .chain(crate::sandbox::writable_dirs(
                        self.agent.is_kimi(),
                        &self.state.settings.limits.sandbox_writable,
                    ))
                    .chain(caches.iter().map(|(_, dir)| dir.into()))
                    .collect(),
            ),
            tmp: worktree_for_policy.with_extension("tmp"),
        };
        let args = SliceArgs {
            supervisor: myself.clone(),
            repo: self.repo.clone(),
            agent: self.agent.clone(),
            task,
            branch: s.branch.clone(),
            cone: sparse,
            start_commit,
            commit_message: format!(
                "omk: {}\n\nOmk-Goal: {}\nOmk-Slice: {id}\nOmk-Attempt: {attempt}\n",
                if spec.title.is_empty() {
                    id
                } else {
                    &spec.title
                },
                self.state.goal_id
            ),
            cancel: self.agent_cancel.clone(),
            limiter: self.limiter.clone(),
            pool: self.pool.clone(),
        };
        match Actor::spawn_linked(None, SliceActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.slices
                    .insert(actor.get_id(), (id.to_string(), attempt, actor));
            }
            Err(e) => self.record(EventBody::SliceFailed {
                slice: id.to_string(),
                attempt,
                status: SliceStatus::Failed,
                reason: format!("could not start the slice actor: {e}"),
                paths: vec![],
            })?,
        }
        Ok(())
    }

    /// Delivers if asked, records the end, hands the state over, and stops.
    fn finish(
        &mut self,
        status: GoalStatus,
        reason: Option<String>,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        if status == GoalStatus::Ready && self.state.settings.deliver == Deliver::Ff {
            let delivery = self.deliver();
            self.record(delivery)?;
        }
        self.record(EventBody::GoalFinished { status, reason })?;
        let held: Vec<String> = self.slots.keys().cloned().collect();
        for owner in held {
            self.release_slot(&owner);
        }
        self.reporter.finish();
        self.cancel.cancel();
        if let Some(done) = self.done.take() {
            let _ = done.send(self.state.clone());
        }
        myself.stop(None);
        Ok(())
    }

    /// Fast-forwards the base branch to the integration, if that is safe.
    fn deliver(&self) -> EventBody {
        let s = &self.state;
        let Some(branch) = s.base_ref.clone() else {
            return EventBody::Delivery {
                branch: "(none)".into(),
                delivered: false,
                reason: "--base is not a branch, so there is nothing to fast-forward".into(),
            };
        };
        let outcome = (|| -> crate::Result<Result<(), String>> {
            if self.repo.ref_target(&branch)?.as_deref() != Some(s.base_commit.as_str()) {
                return Ok(Err("the branch moved since the goal started".into()));
            }
            if self.repo.is_checked_out(&branch)? {
                return Ok(Err(
                    "the branch is checked out in a worktree; run `git merge --ff-only` there"
                        .into(),
                ));
            }
            self.repo.update_ref(
                &branch,
                &s.integration.commit,
                &s.base_commit,
                "omk: deliver goal",
            )?;
            Ok(Ok(()))
        })();
        let (delivered, reason) = match outcome {
            Ok(Ok(())) => (true, format!("fast-forwarded to {}", s.integration.commit)),
            Ok(Err(why)) => (false, why),
            Err(e) => (false, e.to_string()),
        };
        EventBody::Delivery {
            branch,
            delivered,
            reason,
        }
    }
}

/// The merges the log missed: the last controller moved the integration
/// branch (one merge per slice it was sent, in order) but stopped before
/// recording them. Walking first parents back from the branch must reach the
/// recorded head through merges of slices the log shows as `merging`;
/// anything else moved the branch, and omk does not build on a history it
/// did not write.
fn recover_integration(
    repo: &Repo,
    known: &GoalState,
) -> Result<Vec<EventBody>, ActorProcessingErr> {
    let branch = &known.integration.branch;
    let recorded = &known.integration.commit;
    let actual = repo
        .ref_target(&format!("refs/heads/{branch}"))?
        .ok_or_else(|| format!("the integration branch {branch} is gone; it cannot be resumed"))?;
    let mut missed = Vec::new();
    let mut at = actual.clone();
    while &at != recorded {
        let parents = repo.parents(&at)?;
        let merged = known.slices.iter().find(|s| {
            s.status == SliceStatus::Merging
                && parents.len() == 2
                && s.commit.as_ref() == Some(&parents[1])
                && !missed
                    .iter()
                    .any(|m: &EventBody| m.slice() == Some(s.id.as_str()))
        });
        let Some(s) = merged else {
            return Err(format!(
                "the integration branch {branch} points at {actual}, which does not descend from the recorded {recorded} through omk's merges: it was moved outside omk, so the goal cannot be resumed safely"
            )
            .into());
        };
        missed.push(EventBody::SliceMerged {
            slice: s.id.clone(),
            attempt: s.attempts,
            slice_commit: parents[1].clone(),
            tree: repo.tree_of(&at)?,
            commit: at.clone(),
        });
        at = parents[0].clone();
    }
    missed.reverse();
    Ok(missed)
}

/// Commits the last controller made for running slices but did not record:
/// they are taken as the slices' results instead of running the agents again.
fn adopt_commits(repo: &Repo, known: &GoalState) -> Vec<EventBody> {
    let mut adopted = Vec::new();
    for s in known
        .slices
        .iter()
        .filter(|s| s.status == SliceStatus::Running)
    {
        let Some(start) = &s.start_commit else {
            continue;
        };
        let Ok(Some(head)) = repo.ref_target(&format!("refs/heads/{}", s.branch)) else {
            continue;
        };
        if &head == start {
            continue;
        }
        let trailers = [
            format!("Omk-Goal: {}", known.goal_id),
            format!("Omk-Slice: {}", s.id),
            format!("Omk-Attempt: {}", s.attempts),
        ];
        let ours = repo
            .commit_message(&head)
            .is_ok_and(|m| trailers.iter().all(|t| m.contains(t.as_str())));
        let Ok(changed) = repo.changed_files(start, &head) else {
            continue;
        };
        let (Ok(tree), true) = (repo.tree_of(&head), ours) else {
            continue;
        };
        let scope = known
            .spec(&s.id)
            .map(|spec| spec.write_scope.clone())
            .unwrap_or_default();
        let Ok(rejected) = slice::judge_commit(repo, &scope, &head, &changed) else {
            continue;
        };
        adopted.push(match rejected {
            None => EventBody::SliceCommitted {
                slice: s.id.clone(),
                attempt: s.attempts,
                commit: head,
                tree,
                changed_files: changed,
            },
            Some(slice::Rejected { reason, paths }) => EventBody::SliceFailed {
                slice: s.id.clone(),
                attempt: s.attempts,
                status: SliceStatus::ScopeViolation,
                reason,
                paths,
            },
        });
    }
    adopted
}
