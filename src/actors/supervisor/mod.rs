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

mod decide;
mod recover;

use crate::actors::gate::{GateActor, GateArgs, GateJob, GateMsg};
use crate::actors::integrator::{IntegratorActor, IntegratorArgs, IntegratorMsg};
use crate::actors::slice::{self, SliceActor, SliceArgs, SliceMsg};
use std::sync::Arc;

use crate::actors::limiter::Limiter;
use crate::agent::{AgentSpec, Task};
use crate::git::Repo;
use crate::report::Reporter;
use crate::state::{Deliver, GoalState, GoalStatus, LogEnd, SliceStatus};
use crate::store::events::{Event, EventBody, EventLog, RetryCause};
use crate::store::{GoalDir, Store};
use crate::util::write_atomic;
use decide::{Action, Decider, Phase};

/// The owner of the slot a base check runs in, and its logs' folder (no
/// slice id can take it).
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
    gates: ActorRef<GateMsg>,
    integrator: ActorRef<IntegratorMsg>,
    /// Running slice actors: who they are and which attempt they run.
    slices: HashMap<ActorId, (String, u32, ActorRef<SliceMsg>)>,
    /// Cancels everything: agents and gates (Ctrl-C).
    cancel: CancellationToken,
    /// Cancels running agents only (a budget ran out; committed work still merges).
    agent_cancel: CancellationToken,
    limiter: Arc<Limiter>,
    /// The repository's worktree pool, and the slots this goal holds.
    pool: Arc<crate::pool::Pool>,
    slots: HashMap<String, std::path::PathBuf>,
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
        let (goal_id, integration_branch, tip) = match (&first.goal_id, recovered.first()) {
            (id, _) if !id.is_empty() => (
                id.clone(),
                first.integration.branch.clone(),
                first.integration.tip().to_string(),
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
        // The branch, where the log missed its last move.
        let green = recovered
            .iter()
            .find_map(|b| match b {
                EventBody::IntegrationAdvanced { commit, .. } => Some(commit.clone()),
                _ => None,
            })
            .unwrap_or_else(|| match first.integration.commit.is_empty() {
                true => tip.clone(),
                false => first.integration.commit.clone(),
            });
        let limits = match recovered.first() {
            Some(EventBody::GoalStarted { limits, .. }) => limits.clone(),
            _ => first.settings.limits.clone(),
        };
        let pool = Arc::new(crate::pool::Pool::new(args.store.pool_dir()));
        let (gates, _) = Actor::spawn_linked(
            None,
            GateActor,
            GateArgs {
                supervisor: myself.clone(),
                repo: args.repo.clone(),
                pool: pool.clone(),
                concurrency: limits.gate_concurrency.max(1),
                cancel: cancel.clone(),
                cache: match limits.no_gate_cache {
                    true => crate::gate::Cache::off(),
                    false => crate::gate::Cache::new(args.store.gate_cache_dir()),
                },
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
                green,
                tip,
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
            limiter: Arc::new(Limiter::default()),
            pool,
            slots: HashMap::new(),
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
            SupervisorMsg::Report(mut body) => {
                state.price_report(&mut body);
                return state.process(body, &myself).await;
            }
            SupervisorMsg::Cancel => state.decider.on_cancel(),
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
            let still_running = state
                .state
                .slice(&slice)
                .is_some_and(|s| s.status == SliceStatus::Running && s.attempts == attempt);
            if still_running {
                let failed = EventBody::SliceFailed {
                    slice,
                    attempt,
                    status: SliceStatus::Failed,
                    reason: format!("slice actor {why}"),
                    paths: vec![],
                };
                return state.process(failed, &myself).await;
            }
        } else if id == state.gates.get_id() || id == state.integrator.get_id() {
            let who = if id == state.gates.get_id() {
                "gate actor"
            } else {
                "integrator"
            };
            let actions = state.decider.on_actor_lost(format!("the {who} {why}"));
            return state.carry_out_all(actions, &myself).await;
        }
        Ok(())
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
        let encode = |e: serde_json::Error| crate::Error::json("encoding proof", e);
        let mut proof = serde_json::to_value(&self.state).map_err(encode)?;
        crate::redact::redact_json(&mut proof);
        let proof = serde_json::to_vec_pretty(&proof).map_err(encode)?;
        write_atomic(&self.goal.proof(), &proof)?;
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

    /// Gives a slice's (or the integration's) pool slot back, detached.
    fn release_slot(&mut self, owner: &str) {
        if let Some(slot) = self.slots.remove(owner) {
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
        match action {
            Action::Block { slice, reason } => {
                return Ok(vec![EventBody::SliceBlocked { slice, reason }])
            }
            Action::Start { slice } => return self.start_slice(&slice, myself).await,
            Action::StopAttempt { slice } => self.stop_slice_actor(&slice),
            Action::Gate { slice } => self.gate(&slice)?,
            Action::Merge { slice } => self.merge(&slice)?,
            Action::Retry { slice, cause } => {
                return Ok(self.retrying(&slice, cause)?.into_iter().collect())
            }
            Action::Release { slice } => self.release_slot(&slice),
            Action::ReleaseBase => self.release_slot(BASE),
            Action::Exhaust { reason } => {
                self.agent_cancel.cancel();
                return Ok(vec![EventBody::BudgetExhausted { reason }]);
            }
            Action::CancelAll => self.cancel.cancel(),
            Action::Integrate { commit, tree } => return Ok(vec![self.integrate(commit, tree)?]),
            Action::Advance { commit, tree } => self
                .integrator
                .send_message(IntegratorMsg::Advance { commit, tree })?,
            Action::Eject {
                slice,
                gate,
                tree,
                onto,
                remerge,
            } => {
                self.integrator
                    .send_message(IntegratorMsg::Rebuild { tip: onto.clone() })?;
                let attempt = self.state.slice(&slice).map_or(0, |s| s.attempts);
                return Ok(vec![EventBody::SliceEjected {
                    slice,
                    attempt,
                    gate,
                    tree,
                    onto,
                    remerge,
                }]);
            }
            Action::CheckBase => self.check_base()?,
            Action::Finish { status, reason } => self.finish(status, reason, myself)?,
        }
        Ok(vec![])
    }

    /// Sends a committed slice to the gate actor, in the slot it committed in.
    fn gate(&mut self, slice: &str) -> Result<(), ActorProcessingErr> {
        let Some(s) = self.state.slice(slice).cloned() else {
            return Ok(());
        };
        let (Some(commit), Some(tree), Some(slot)) = (s.commit, s.tree, s.worktree) else {
            return Ok(());
        };
        // A resumed slice goes on in the slot it had.
        if !self.slots.contains_key(slice) && slot.starts_with(self.pool.dir()) {
            self.pool.hold(&slot)?;
            self.slots.insert(slice.to_string(), slot.clone());
        }
        let job = self.gate_job(
            Some(slice),
            slot,
            commit,
            tree,
            s.sparse,
            self.state.slice_gates(slice),
            self.attempt_logs(slice, s.attempts),
        )?;
        self.gates.send_message(GateMsg::Run(Box::new(job)))?;
        Ok(())
    }

    /// What the next attempt of a failed slice is told, and where it starts.
    fn retrying(&self, slice: &str, cause: RetryCause) -> crate::Result<Option<EventBody>> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(None);
        };
        let spec = self.state.spec(slice);
        // The failed attempt's commit, which its branch holds.
        let committed = match &s.commit {
            Some(c) => Some(c.clone()),
            None => self
                .repo
                .ref_target(&format!("refs/heads/{}", s.branch))?
                .filter(|head| Some(head) != s.start_commit.as_ref()),
        };
        let (feedback, work_from) = match &cause {
            RetryCause::Gate { gate } => {
                let result = s.gates.iter().find(|g| &g.name == gate);
                let (outcome, log) = match result {
                    Some(r) => (r.outcome.clone(), crate::util::tail(&r.log, FEEDBACK_LINES, FEEDBACK_BYTES)),
                    None => ("failed".to_string(), String::new()),
                };
                let lines = log.lines().count();
                (
                    format!(
                        "Gate `{gate}` failed on your commit ({outcome}). The last {lines} lines of its output:\n\n```\n{}\n```\n\nYour worktree holds that commit: fix what the gate reports, then finish.",
                        log.trim_end()
                    ),
                    committed,
                )
            }
            RetryCause::Scope => (
                format!(
                    "Your commit was refused: {}.\nYou may change only paths matching: {}.\nYour worktree holds that commit: undo what is not allowed, keep the rest, then finish.",
                    s.reason.as_deref().unwrap_or("it broke a rule"),
                    spec.map(|p| p.write_scope.join(", ")).unwrap_or_default()
                ),
                committed,
            ),
            RetryCause::Integration { gate, tree } => {
                let result = self
                    .state
                    .integration
                    .gates
                    .iter()
                    .rev()
                    .find(|g| &g.name == gate && &g.tree == tree && !g.passed);
                let (outcome, log) = match result {
                    Some(r) => (r.outcome.clone(), crate::util::tail(&r.log, FEEDBACK_LINES, FEEDBACK_BYTES)),
                    None => ("failed".to_string(), String::new()),
                };
                let lines = log.lines().count();
                (
                    format!(
                        "Your commit passed its own gates, but merged with the work of the other slices the integration gate `{gate}` failed ({outcome}). The last {lines} lines of its output:\n\n```\n{}\n```\n\nThe worktree now starts from the merged work of the others, without your change: redo your change on top of it so that the gate passes, then finish.",
                        log.trim_end()
                    ),
                    None,
                )
            }
            RetryCause::Conflict => (
                format!(
                    "Your previous attempt conflicted with work already merged in: {}. The worktree now starts from the merged result; redo your change on top of it.",
                    s.paths.join(", ")
                ),
                None,
            ),
        };
        Ok(Some(EventBody::SliceRetrying {
            slice: slice.to_string(),
            attempt: s.attempts,
            cause,
            feedback,
            work_from,
        }))
    }

    /// Sends a verified slice to the integrator.
    fn merge(&mut self, slice: &str) -> Result<(), ActorProcessingErr> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(());
        };
        let Some(commit) = s.commit.clone() else {
            return Ok(());
        };
        self.integrator.send_message(IntegratorMsg::Merge {
            slice: s.id.clone(),
            attempt: s.attempts,
            commit,
            start: s.start_commit.clone(),
        })?;
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
            base: false,
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

    /// Takes a slot and sends the slice gates the base commit.
    fn check_base(&mut self) -> crate::Result<()> {
        let gates: Vec<crate::gate::GateSpec> = self
            .state
            .settings
            .gates
            .iter()
            .filter(|g| g.scope.judges_slices())
            .cloned()
            .collect();
        let worktree = self.pool.acquire(&self.repo, false)?;
        self.slots.insert(BASE.to_string(), worktree.clone());
        let mut job = self.gate_job(
            None,
            worktree,
            self.state.base_commit.clone(),
            self.state.settings.base_tree.clone(),
            None,
            gates,
            self.goal.logs().join(BASE),
        )?;
        job.base = true;
        self.gates
            .send_message(GateMsg::Run(Box::new(job)))
            .map_err(|_| crate::Error::ActorGone("gate actor"))
    }

    /// Sends the integration gates a candidate commit, in the slot the
    /// integration holds for the whole goal.
    fn integrate(&mut self, commit: String, tree: String) -> crate::Result<EventBody> {
        let gates = self.state.integration_gates();
        let worktree = match self.slots.get(crate::plan::INTEGRATION) {
            Some(slot) => slot.clone(),
            None => {
                let slot = self.pool.acquire(&self.repo, false)?;
                self.slots
                    .insert(crate::plan::INTEGRATION.to_string(), slot.clone());
                slot
            }
        };
        let job = self.gate_job(
            None,
            worktree.clone(),
            commit.clone(),
            tree.clone(),
            None,
            gates,
            // One folder per candidate: a failed run's log is what its
            // culprit is shown, whatever runs after it.
            self.goal
                .logs()
                .join(crate::plan::INTEGRATION)
                .join(commit.get(..12).unwrap_or(&commit)),
        )?;
        self.gates
            .send_message(GateMsg::Run(Box::new(job)))
            .map_err(|_| crate::Error::ActorGone("gate actor"))?;
        Ok(EventBody::IntegrationStarted {
            commit,
            tree,
            worktree,
        })
    }

    /// Starts the next attempt of slice `id`: a slot, a task, a slice actor.
    async fn start_slice(
        &mut self,
        id: &str,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<Vec<EventBody>, ActorProcessingErr> {
        let (Some(s), Some(spec)) = (self.state.slice(id).cloned(), self.state.spec(id).cloned())
        else {
            return Ok(vec![]);
        };
        let attempt = s.attempts + 1;
        // A feedback attempt after a failed gate or a refused commit goes on
        // from that commit and is judged against the same start; dependent
        // slices and other retries build on what is merged so far: the
        // candidate's tip (the branch, and merges its gates have yet to judge).
        let start_commit = match (&s.work_from, &s.start_commit) {
            (Some(_), Some(start)) => start.clone(),
            _ if attempt == 1 && s.depends_on.is_empty() => self.state.base_commit.clone(),
            _ => self.state.integration.tip().to_string(),
        };
        let work_from = s.work_from.clone().filter(|_| s.start_commit.is_some());
        let limits = &self.state.settings.limits;
        let sparse = limits
            .sparse
            .as_ref()
            .and_then(|include| crate::plan::cone(&spec.write_scope, include));
        let worktree = self.pool.acquire(&self.repo, sparse.is_some())?;
        self.slots.insert(id.to_string(), worktree.clone());
        let caches = crate::pool::Pool::caches(&worktree, &self.state.settings.limits.slot_cache)?;
        let started = EventBody::SliceStarted {
            slice: id.to_string(),
            attempt,
            start_commit: start_commit.clone(),
            branch: s.branch.clone(),
            worktree: worktree.clone(),
            conflict_paths: vec![],
            resume_session: s.resume_session.clone(),
            sparse: sparse.clone(),
            work_from: work_from.clone(),
        };
        // What went wrong last time, in a file the agent can read.
        let logs = self.attempt_logs(id, attempt);
        let feedback_file = match &s.feedback {
            Some(text) => {
                let path = logs.join("feedback.md");
                std::fs::create_dir_all(&logs)
                    .and_then(|_| std::fs::write(&path, text))
                    .map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))?;
                Some(path)
            }
            None => None,
        };
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
            prompt: {
                let prompt = slice::prompt(
                    &self.state.goal,
                    &spec,
                    &others,
                    &gate_names,
                    s.feedback.as_deref(),
                );
                match (&s.resume_session, &s.feedback) {
                    // The agent remembers its work; its worktree does not.
                    (Some(_), None) => format!(
                        "omk was interrupted while you worked on this, and your worktree was reset to its start. \
                         Check the files and redo whatever is missing.\n\n{prompt}"
                    ),
                    _ => prompt,
                }
            },
            feedback: feedback_file,
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
                [
                    worktree_for_policy.clone(),
                    worktree_for_policy.with_extension("tmp"),
                ]
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
            work_from,
            commit_message: crate::git::conventions::slice_message(
                &self.state.goal_id,
                id,
                &spec.title,
                attempt,
            ),
            cancel: self.agent_cancel.clone(),
            limiter: self.limiter.clone(),
            pool: self.pool.clone(),
        };
        // The actor's reports wait in the mailbox until `started` is recorded.
        match Actor::spawn_linked(None, SliceActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.slices
                    .insert(actor.get_id(), (id.to_string(), attempt, actor));
                Ok(vec![started])
            }
            Err(e) => Ok(vec![
                started,
                EventBody::SliceFailed {
                    slice: id.to_string(),
                    attempt,
                    status: SliceStatus::Failed,
                    reason: format!("could not start the slice actor: {e}"),
                    paths: vec![],
                },
            ]),
        }
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
