//! The gate actor: runs verification jobs packed onto the machine's cores.
//!
//! Gates are heavy (a `cargo test` each), so they are queued here rather than
//! run by whoever wants them. A job needs the cores its most demanding gate
//! declares (`cpus`; all of them when it declares none, so it runs alone);
//! jobs run side by side while their cores fit the budget and fewer than
//! `concurrency` run, the most urgent first (see [`GateJob::priority`]). A
//! job runs its gates in order and stops at the first failure; every gate
//! reports the tree it ran on.

use std::collections::VecDeque;
use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;

use super::SupervisorMsg;
use crate::gate::{self, GateResult, GateSpec};
use crate::git::Repo;
use crate::ids::{CommitId, TreeId};

mod job;

use job::{failed_verdict, panicked, run_job, Slots};

/// Messages to the gate actor: only its handle and its own tasks send them.
#[derive(Debug)]
pub(crate) enum GateMsg {
    /// Queue a verification job.
    Run(Box<GateJob>),
    /// A job finished; its cores are free (sent by the actor's own tasks).
    JobDone { cpus: usize },
}

/// The gate actor, as the supervisor sees it.
#[derive(Clone)]
pub struct GateHandle(ActorRef<GateMsg>);

impl GateHandle {
    /// Starts the gate actor, linked to (supervised by) `supervisor`.
    pub async fn spawn(args: GateArgs) -> Result<GateHandle, ractor::SpawnErr> {
        let cell = args.supervisor.get_cell();
        let (actor, _) = Actor::spawn_linked(None, GateActor, args, cell).await?;
        Ok(GateHandle(actor))
    }

    /// Queues a job: its gates run when the cores it needs are free, and
    /// report to the supervisor as they go.
    pub fn run(&self, job: GateJob) -> crate::Result<()> {
        self.0
            .send_message(GateMsg::Run(Box::new(job)))
            .map_err(|_| crate::Error::ActorGone("gate actor"))
    }

    /// Which actor it is, to tell its end from others'.
    pub fn id(&self) -> ractor::ActorId {
        self.0.get_id()
    }
}

/// What a gate job judges.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// The base commit, before any agent starts: the job reports one
    /// `base_checked` instead of each gate.
    Base,
    /// One attempt of a slice: its events carry the attempt, so a result
    /// for an attempt that is over is told from the current one's.
    Slice {
        /// The slice.
        id: String,
        /// The attempt.
        attempt: u32,
    },
    /// A candidate of the integration.
    Integration,
}

impl Judged {
    /// The slice judged, if it is one.
    pub fn slice(&self) -> Option<String> {
        match self {
            Judged::Slice { id, .. } => Some(id.clone()),
            _ => None,
        }
    }

    /// The attempt judged, if it is a slice's.
    pub fn attempt(&self) -> Option<u32> {
        match self {
            Judged::Slice { attempt, .. } => Some(*attempt),
            _ => None,
        }
    }

    /// How logs, traces and fault points name it.
    pub fn name(&self) -> &str {
        match self {
            Judged::Base => "base",
            Judged::Slice { id, .. } => id,
            Judged::Integration => crate::plan::INTEGRATION,
        }
    }
}

/// One tree to verify.
#[derive(Debug, Clone)]
pub struct GateJob {
    /// What it judges.
    pub judged: Judged,
    /// What the gates see and may write; where they run is the slot the
    /// job takes from the pool when its first gate has to run.
    pub bench: gate::Bench,
    /// The slot to take when it is free: the one that last held the tree
    /// (a slice's, where its agent committed).
    pub near: Option<PathBuf>,
    /// The commit whose tree is judged: the checkout is reset to exactly it
    /// (and checked) before the first gate runs.
    pub commit: CommitId,
    /// The directories that checkout materializes; `None` for all.
    pub cone: Option<Vec<String>>,
    /// Untracked paths the checkout keeps when it is reset (`[pool] keep`).
    pub keep: Vec<String>,
    /// The commit's tree id.
    pub tree: TreeId,
    /// The gates, in order.
    pub gates: Vec<GateSpec>,
    /// What review gates review: the change's task and where it started.
    pub subject: Option<crate::review::Subject>,
    /// Where the gates' logs go.
    pub log_dir: PathBuf,
    /// How urgent it is: the most urgent queued job that fits runs first.
    pub priority: Priority,
    /// Whether every gate runs even where the cache holds a pass: a check
    /// failed where the gate had passed, and is reproduced.
    pub fresh: bool,
    /// What installs the dependencies before each command gate.
    pub setups: Option<crate::setup::Setups>,
}

/// How urgent a gate job is, most urgent first. Which job gets which is
/// the decider's to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// The base check, and slices others wait for.
    Critical,
    /// The integration's candidate.
    Candidate,
    /// Every other slice.
    Other,
}

/// Startup arguments.
pub struct GateArgs {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub repo: Repo,
    /// The worktree pool, whose slots the jobs run in.
    pub pool: std::sync::Arc<crate::pool::Pool>,
    pub concurrency: usize,
    /// The cores the gates may keep busy together.
    pub cpus: usize,
    pub cancel: CancellationToken,
    /// Passing results kept per repository.
    pub cache: gate::Cache,
}

/// The gate actor's state.
pub struct GateState {
    args: GateArgs,
    queue: VecDeque<GateJob>,
    running: usize,
    /// The cores the running jobs take.
    busy: usize,
}

/// The gate actor.
struct GateActor;

impl Actor for GateActor {
    type Msg = GateMsg;
    type State = GateState;
    type Arguments = GateArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<GateMsg>,
        args: GateArgs,
    ) -> Result<GateState, ActorProcessingErr> {
        Ok(GateState {
            args,
            queue: VecDeque::new(),
            running: 0,
            busy: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<GateMsg>,
        message: GateMsg,
        state: &mut GateState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            // A job whose every gate already passed on its tree runs none:
            // its results are reported now, not after the queue.
            GateMsg::Run(job) if state.all_cached(&job) => state.dispatch(*job, 0, &myself),
            GateMsg::Run(job) => state.queue.push_back(*job),
            GateMsg::JobDone { cpus } => {
                state.running -= 1;
                state.busy -= cpus;
            }
        }
        while state.running < state.args.concurrency {
            let Some(job) = state.next_job() else {
                break;
            };
            let cpus = job.cpus(state.args.cpus);
            state.dispatch(job, cpus, &myself);
        }
        Ok(())
    }
}

impl GateState {
    /// Whether the cache holds a pass of every gate of `job` on its tree.
    fn all_cached(&self, job: &GateJob) -> bool {
        !job.gates.is_empty()
            && !job.fresh
            && job
                .gates
                .iter()
                .all(|g| self.args.cache.get(g, &job.bench, &job.tree).is_some())
    }

    /// Runs `job` on a task of its own, keeping `cpus` cores busy until it
    /// reports its end.
    fn dispatch(&mut self, job: GateJob, cpus: usize, myself: &ActorRef<GateMsg>) {
        self.running += 1;
        self.busy += cpus;
        let (supervisor, repo, cancel, cache, pool) = (
            self.args.supervisor.clone(),
            self.args.repo.clone(),
            self.args.cancel.clone(),
            self.args.cache.clone(),
            self.args.pool.clone(),
        );
        let me = myself.clone();
        tokio::spawn(async move {
            // The job runs on a task of its own: if it panics anywhere (a bug
            // of omk's), its verdict is still sent — a failed one, with the
            // panic's message — and the goal does not wait for it forever.
            let at = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
            let (judged, tree, log_dir, first) = (
                job.judged.clone(),
                job.tree.clone(),
                job.log_dir.clone(),
                job.gates.first().map(|g| g.name.clone()),
            );
            let (to, running) = (supervisor.clone(), at.clone());
            let ran = tokio::spawn(async move {
                let slots = Slots {
                    pool,
                    repo,
                    held: None,
                };
                run_job(job, slots, &to, &cancel, &cache, &running).await;
            })
            .await;
            if let Err(e) = ran {
                let gate = at.lock().ok().and_then(|g| g.clone()).or(first);
                let result = GateResult {
                    log: log_dir.join(format!("gate-{}.log", gate.as_deref().unwrap_or("job"))),
                    ..GateResult::not_run(gate.unwrap_or_default(), tree.into(), panicked(e))
                };
                for body in failed_verdict(judged, result) {
                    let _ = supervisor.send_message(SupervisorMsg::Report(body));
                }
            }
            let _ = me.send_message(GateMsg::JobDone { cpus });
        });
    }
}

impl GateJob {
    /// The cores the job keeps busy: its most demanding gate's, at most `budget`.
    fn cpus(&self, budget: usize) -> usize {
        self.gates
            .iter()
            .map(|g| g.cpus.unwrap_or(budget))
            .max()
            .unwrap_or(1)
            .clamp(1, budget.max(1))
    }
}

impl GateState {
    /// The most urgent queued job whose cores fit what is free (any job,
    /// when nothing runs), taken off the queue.
    fn next_job(&mut self) -> Option<GateJob> {
        let budget = self.args.cpus.max(1);
        let free = budget.saturating_sub(self.busy);
        let at = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, job)| self.running == 0 || job.cpus(budget) <= free)
            .min_by_key(|(i, job)| (job.priority, *i))
            .map(|(i, _)| i)?;
        self.queue.remove(at)
    }
}
