//! The goal supervisor: owns the goal's state and is its event log's single writer.
//!
//! It decides nothing itself. Every report from a child is recorded
//! ([`SupervisorState::record`] stamps, appends, folds it into
//! [`GoalState`], rewrites the proof and shows it); [`decide::Decider`] says
//! what follows — start slices, send committed ones to the gate actor and
//! verified ones to the integrator, block, stop, integrate, finish — and
//! the supervisor carries that out ([`SupervisorState::carry_out`]),
//! recording what it produced, until nothing follows. [`recover`] reads back
//! from git what a controller that died did not record. A child that fails
//! or panics fails its slice only; the supervisor carries on with the others.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

mod attempt;
mod decide;
mod finish;
mod jobs;
mod recover;

use crate::actors::gate::{GateArgs, GateHandle};
use crate::actors::integrator::{IntegratorArgs, IntegratorHandle};
use crate::actors::off_runtime;
use crate::actors::slice::SliceHandle;
use std::sync::Arc;

use crate::actors::limiter::Limiter;
use crate::agent::AgentSpec;
use crate::git::Repo;
use crate::report::Reporter;
use crate::state::{GoalState, LogEnd};
use crate::store::events::{Event, EventBody, EventLog};
use crate::store::{GoalDir, Store};
use decide::{Action, Decider, Phase};

/// The base check's logs' folder (no slice id can take it).
const BASE: &str = "_base";

/// The most of a failed gate's log a feedback attempt is shown.
const FEEDBACK_LINES: usize = 200;
const FEEDBACK_BYTES: usize = 16 * 1024;

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
    /// Something of the machine makes every attempt fail alike (the
    /// agent's program is gone, the disk is full): the goal stops starting
    /// work and ends `failed`, for `resume` once it is mended.
    Unworkable(String),
    /// The integrator could not make a slice's merge, for the machine's
    /// reason: no verdict on the slice; the goal stops as for `Unworkable`.
    MergeUnmade { slice: String, why: String },
}

/// How the supervisor starts.
#[allow(clippy::large_enum_variant)]
pub enum Start {
    /// A new goal: this `goal_started` event opens its log.
    New(EventBody),
    /// A goal taken over after its last controller stopped: its reopened
    /// log, and the limits raised from now on.
    Resume {
        log: EventLog,
        events: Vec<Event>,
        raised: crate::store::events::Raised,
    },
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
    gates: GateHandle,
    integrator: IntegratorHandle,
    /// Running slice actors: who they are and which attempt they run.
    slices: HashMap<ActorId, (String, u32, SliceHandle)>,
    /// Cancels everything: agents and gates (Ctrl-C).
    cancel: CancellationToken,
    /// Cancels running agents only (a budget ran out; committed work still merges).
    agent_cancel: CancellationToken,
    limiter: Arc<Limiter>,
    /// The repository's worktree pool, and the slots this goal's running
    /// agents hold, by slice.
    pool: Arc<crate::pool::Pool>,
    slots: HashMap<String, std::path::PathBuf>,
    /// The one watcher of the goal's Slurm jobs, started with the first.
    slurm: Option<crate::executor::slurm::Watcher>,
    /// Passing gate results kept per repository (the gate actor's too):
    /// what a cluster job's gates passed goes in once believed.
    gate_cache: crate::gate::Cache,
    /// When the proof was last written.
    proof_written: std::time::Instant,
    /// Every decision: what follows each event, and the goal's phase.
    decider: Decider,
    /// Whether this goal was taken over from an earlier controller.
    resumed: bool,
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
                None,
            ),
            Start::Resume {
                log,
                events,
                raised,
            } => {
                let known = GoalState::from_events(&events);
                let mut recovered = recover::recover_integration(&args.repo, &known)?;
                recovered.extend(recover::adopt_commits(&args.repo, &known));
                (log, known, recovered, Some(raised))
            }
        };
        let recover::StartingPoint {
            goal_id,
            integration_branch,
            green,
            tip,
            limits,
        } = recover::starting_point(&first, &recovered)?;
        let pool = Arc::new(crate::pool::Pool::new(args.store.pool_dir()));
        let gate_cache = match limits.no_gate_cache {
            true => crate::gate::Cache::off(),
            false => crate::gate::Cache::new(args.store.gate_cache_dir()),
        };
        let gates = GateHandle::spawn(GateArgs {
            supervisor: myself.clone(),
            repo: args.repo.clone(),
            pool: pool.clone(),
            concurrency: limits.gate_concurrency.max(1),
            cpus: limits.gate_cpus.unwrap_or_else(crate::machine::cores),
            cancel: cancel.clone(),
            cache: gate_cache.clone(),
        })
        .await?;
        let integrator = IntegratorHandle::spawn(IntegratorArgs {
            supervisor: myself.clone(),
            repo: args.repo.clone(),
            goal_id,
            branch_ref: format!("refs/heads/{integration_branch}"),
            green,
            tip,
        })
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
            limiter: Arc::new(Limiter::default()),
            pool,
            slots: HashMap::new(),
            slurm: None,
            gate_cache,
            proof_written: std::time::Instant::now(),
            decider: Decider::new(),
            resumed: resumed.is_some(),
            done: Some(args.done),
        };
        for body in recovered {
            state.record(body)?;
        }
        if let Some(raised) = resumed {
            state.record(EventBody::GoalResumed {
                pid: std::process::id(),
                raised,
            })?;
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.resumed {
            // Committed or verified slices of the last controller go on where they were.
            let actions = state.decider.on_resume(&state.state);
            state.carry_out_all(actions, &myself).await?;
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
        state.settle(&myself).await
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.decider.phase() == &Phase::Done {
            return Ok(()); // finished; late reports change nothing
        }
        let actions = match message {
            SupervisorMsg::Report(body) if state.is_stale(&body) => {
                tracing::debug!(kind = body.kind(), slice = ?body.slice(), attempt = ?body.attempt(), "stale report dropped");
                return Ok(());
            }
            SupervisorMsg::Report(mut body) => {
                state.price_report(&mut body);
                return state.process(body, &myself).await;
            }
            SupervisorMsg::Cancel => state.decider.on_cancel(),
            SupervisorMsg::Unworkable(why) => state.decider.on_unworkable(why),
            SupervisorMsg::MergeUnmade { slice, why } => state.decider.on_merge_unmade(&slice, why),
            SupervisorMsg::TimeBudgetSpent => state.decider.on_time_spent(&state.state),
        };
        state.carry_out_all(actions, &myself).await?;
        state.settle(&myself).await
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
        if state.decider.phase() == &Phase::Done {
            return Ok(());
        }
        let id = cell.get_id();
        if let Some((slice, attempt, _)) = state.slices.remove(&id) {
            let actions = state
                .decider
                .on_attempt_lost(&state.state, &slice, attempt, &why);
            state.carry_out_all(actions, &myself).await?;
            return state.settle(&myself).await;
        } else if id == state.gates.id() || id == state.integrator.id() {
            let who = if id == state.gates.id() {
                "gate actor"
            } else {
                "integrator"
            };
            let actions = state.decider.on_lost(format!("the {who} {why}"));
            return state.carry_out_all(actions, &myself).await;
        }
        Ok(())
    }
}

impl SupervisorState {
    /// Whether a child's report concerns an attempt of its slice that is
    /// over (a result that raced a retry): it is dropped, not recorded.
    fn is_stale(&self, body: &EventBody) -> bool {
        let (Some(slice), Some(attempt)) = (body.slice(), body.attempt()) else {
            return false;
        };
        self.state
            .slice(slice)
            .is_some_and(|s| s.attempts != attempt)
    }

    /// Appends an event, folds it into the state, rewrites the proof, shows it.
    fn record(&mut self, body: EventBody) -> crate::Result<()> {
        // The append is fsynced: it may wait on the disk, so the runtime
        // moves its other tasks off this thread meanwhile.
        let event = off_runtime(|| self.log.append(body))?;
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
        // Written atomically with an fsync: off the runtime's other tasks.
        off_runtime(|| crate::proof::write(&self.goal, &self.state))?;
        self.proof_written = std::time::Instant::now();
        Ok(())
    }

    /// Fills in an attempt's (or a reviewer's) cost from the configured
    /// price when the agent reported none.
    fn price_report(&self, body: &mut EventBody) {
        let Some(price) = &self.state.settings.limits.price else {
            return;
        };
        let report = match body {
            EventBody::AgentFinished { report, .. } => report,
            EventBody::GateFinished { result, .. } => match &mut result.review {
                Some(review) if !result.cached => &mut review.agent,
                _ => return,
            },
            _ => return,
        };
        if report.usd.is_none() {
            if let Some(tokens_in) = report.tokens_in {
                report.usd = Some(price.usd(tokens_in, report.tokens_out.unwrap_or(0)));
            }
        }
    }

    /// Gives the pool slot a slice's agent held back, detached.
    fn release_slot(&mut self, slice: &str) {
        if let Some(slot) = self.slots.remove(slice) {
            self.pool.release(&slot);
        }
    }

    /// Records `body` and carries out what follows it, and what follows
    /// the events that records, then whatever can start or end.
    async fn process(
        &mut self,
        body: EventBody,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        self.record_and_follow(body, myself).await?;
        self.settle(myself).await
    }

    /// Records `body`, and carries out what follows it (and so on), until
    /// nothing does.
    async fn record_and_follow(
        &mut self,
        body: EventBody,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let mut queue = std::collections::VecDeque::from([body]);
        while let Some(body) = queue.pop_front() {
            self.record(body.clone())?;
            tracing::debug!(
                goal = %self.state.goal_id,
                kind = body.kind(),
                slice = body.slice().unwrap_or_default(),
                "recorded"
            );
            for action in self.decider.on_event(&self.state, &body) {
                queue.extend(self.carry_out(action, myself).await?);
            }
        }
        Ok(())
    }

    /// Asks what can start or end now and carries it out, until nothing can.
    async fn settle(&mut self, myself: &ActorRef<SupervisorMsg>) -> Result<(), ActorProcessingErr> {
        loop {
            let actions = self.decider.next(&self.state);
            if actions.is_empty() {
                return Ok(());
            }
            self.carry_out_all(actions, myself).await?;
        }
    }

    /// Carries out `actions`, recording what they produce.
    async fn carry_out_all(
        &mut self,
        actions: Vec<Action>,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        for action in actions {
            for body in self.carry_out(action, myself).await? {
                self.record_and_follow(body, myself).await?;
            }
        }
        Ok(())
    }

    /// Does what one decision says; returns the events it produced, to record.
    async fn carry_out(
        &mut self,
        action: Action,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<Vec<EventBody>, ActorProcessingErr> {
        tracing::debug!(goal = %self.state.goal_id, ?action, "decided");
        match action {
            Action::Block { slice, reason } => {
                return Ok(vec![EventBody::SliceBlocked {
                    slice: slice.into(),
                    reason,
                }])
            }
            Action::Start {
                slice,
                start_commit,
                work_from,
            } => {
                return self
                    .start_slice(
                        &slice,
                        start_commit.into(),
                        work_from.map(String::from),
                        myself,
                    )
                    .await
            }
            Action::Fail {
                slice,
                attempt,
                reason,
            } => {
                return Ok(vec![EventBody::SliceFailed {
                    slice: slice.into(),
                    attempt,
                    status: crate::state::SliceStatus::Failed,
                    reason,
                    paths: vec![],
                }])
            }
            Action::StopAttempt { slice } => self.stop_slice_actor(&slice),
            Action::Gate {
                slice,
                ahead,
                priority,
            } => {
                let probe = self.probe(&slice, &ahead).await?;
                tracing::debug!(%slice, ?probe, "merge probed before the gates");
                let mut events = Vec::new();
                for action in self.decider.on_probe(&slice, probe, priority) {
                    events.extend(Box::pin(self.carry_out(action, myself)).await?);
                }
                return Ok(events);
            }
            Action::RunGates { slice, priority } => self.run_gates(&slice, priority)?,
            Action::Conflict { slice, paths, onto } => {
                let attempt = self.state.slice(&slice).map_or(0, |s| s.attempts);
                return Ok(vec![EventBody::MergeConflict {
                    slice: slice.into(),
                    attempt,
                    paths,
                    onto: onto.into(),
                    before_gates: true,
                }]);
            }
            Action::Defer {
                slice,
                behind,
                paths,
            } => {
                let attempt = self.state.slice(&slice).map_or(0, |s| s.attempts);
                return Ok(vec![EventBody::GatesDeferred {
                    slice: slice.into(),
                    attempt,
                    behind: behind.into(),
                    paths,
                }]);
            }
            Action::Merge { slice } => self.merge(&slice)?,
            Action::Retry { slice, cause, redo } => {
                return Ok(self.retrying(&slice, cause, redo)?.into_iter().collect())
            }
            Action::Release { slice } => self.release_slot(slice.as_str()),
            Action::Exhaust { reason } => {
                self.agent_cancel.cancel();
                return Ok(vec![EventBody::BudgetExhausted { reason }]);
            }
            Action::CancelAll => self.cancel.cancel(),
            Action::Integrate {
                commit,
                tree,
                priority,
            } => return Ok(vec![self.integrate(commit, tree, priority)?]),
            Action::Advance { commit, tree } => self.integrator.advance(commit, tree)?,
            Action::Eject {
                slice,
                gate,
                tree,
                onto,
                remerge,
            } => {
                self.integrator.rebuild_on(onto.clone())?;
                let attempt = self.state.slice(&slice).map_or(0, |s| s.attempts);
                return Ok(vec![EventBody::SliceEjected {
                    slice: slice.into(),
                    attempt,
                    gate,
                    tree: tree.into(),
                    onto: onto.into(),
                    remerge: remerge.into_iter().map(String::from).collect(),
                }]);
            }
            Action::CheckBase { priority } => self.check_base(priority)?,
            Action::Reproduced(found) => {
                return Ok(vec![EventBody::Landing(
                    crate::store::landing::LandStep::Reproduced(found),
                )])
            }
            Action::Finish { status, reason } => self.finish(status, reason, myself)?,
        }
        Ok(vec![])
    }

    fn stop_slice_actor(&mut self, slice: &str) {
        let id = self
            .slices
            .iter()
            .find(|(_, (s, _, _))| s == slice)
            .map(|(id, _)| *id);
        if let Some((_, _, actor)) = id.and_then(|id| self.slices.remove(&id)) {
            actor.stop();
        }
    }
}
