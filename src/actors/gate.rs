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

use super::{blocking, SupervisorMsg};
use crate::gate::{self, GateOutcome, GateResult, GateSpec};
use crate::git::Repo;
use crate::ids::{CommitId, TreeId};
use crate::store::events::EventBody;

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
    /// Where the gates run, with what they see and may write.
    pub bench: gate::Bench,
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
    /// The worktree pool, told when gates start writing in a slot.
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
        let (supervisor, repo, cancel, cache) = (
            self.args.supervisor.clone(),
            self.args.repo.clone(),
            self.args.cancel.clone(),
            self.args.cache.clone(),
        );
        self.args.pool.unsettle(&job.bench.dir);
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
                run_job(job, &to, repo, &cancel, &cache, &running).await;
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

#[tracing::instrument(
    name = "gate_job",
    skip_all,
    fields(goal = %job.bench.goal_id, judged = job.judged.name(), attempt = ?job.judged.attempt(), tree = %job.tree)
)]
async fn run_job(
    job: GateJob,
    supervisor: &ActorRef<SupervisorMsg>,
    repo: Repo,
    cancel: &CancellationToken,
    cache: &gate::Cache,
    running: &std::sync::Mutex<Option<String>>,
) {
    crate::fault::point_for("gate.job", job.judged.name());
    let (slice, attempt, base) = (
        job.judged.slice(),
        job.judged.attempt(),
        job.judged == Judged::Base,
    );
    let send = |body| {
        let _ = supervisor.send_message(SupervisorMsg::Report(body));
    };
    // A base check's gates are reported together, at its end.
    let report = |body: EventBody| {
        if !base {
            send(body);
        }
    };
    let mut results = Vec::new();
    let mut passed = true;
    // Whether the checkout is known to hold exactly `job.tree` now. It is
    // made so only when a gate has to run: a tree every gate already passed
    // needs none.
    let mut ready = false;
    for spec in &job.gates {
        if let Ok(mut at) = running.lock() {
            *at = Some(spec.name.clone());
        }
        let hit = (!job.fresh)
            .then(|| cache.get(spec, &job.bench, &job.tree))
            .flatten();
        let result = match hit {
            Some(hit) => {
                tracing::debug!(gate = %spec.name, from_goal = ?hit.from_goal, "cached pass reused");
                hit
            }
            None => {
                tracing::debug!(gate = %spec.name, "running");
                report(EventBody::GateStarted {
                    slice: slice.clone(),
                    attempt,
                    gate: spec.name.clone(),
                    tree: job.tree.to_string(),
                });
                let result = run_gate(spec, &job, &repo, cancel, &results, &mut ready, &send).await;
                cache.put(spec, &job.bench, &result);
                result
            }
        };
        // A gate stopped by a cancel judged nothing: no result, no verdict.
        if !result.passed && cancel.is_cancelled() {
            report(EventBody::Verified {
                slice: slice.clone(),
                attempt,
                passed: false,
                interrupted: true,
            });
            return;
        }
        let ok = result.passed;
        tracing::debug!(gate = %result.name, passed = ok, outcome = %result.outcome, "gate ended");
        results.push(result.clone());
        report(EventBody::GateFinished {
            slice: slice.clone(),
            attempt,
            result,
        });
        if !ok {
            passed = false;
            break;
        }
    }
    report(EventBody::Verified {
        slice,
        attempt,
        passed,
        interrupted: false,
    });
    if base {
        send(EventBody::BaseChecked {
            passed,
            gates: results,
        });
    }
}

/// Runs one gate of `job` that has no cached pass, on the job's checkout
/// (reset first unless `ready` says it holds the tree), and says whether
/// the checkout still holds it after: a gate that could not run, or
/// panicked, is a failed result.
async fn run_gate(
    spec: &GateSpec,
    job: &GateJob,
    repo: &Repo,
    cancel: &CancellationToken,
    earlier: &[GateResult],
    ready: &mut bool,
    report: &(dyn Fn(EventBody) + Sync),
) -> GateResult {
    let log = job.log_dir.join(format!("gate-{}.log", spec.name));
    let not_run = |outcome: GateOutcome| GateResult {
        log: log.clone(),
        ..GateResult::not_run(spec.name.clone(), job.tree.to_string(), outcome)
    };
    let checked = match *ready {
        true => Ok(()),
        false => prepare(repo, job).await,
    };
    // A command gate gets the setups' outputs afresh: whatever ran in the
    // slot before (an agent, another gate) may have written in them.
    let mut setups = std::collections::BTreeMap::new();
    if checked.is_ok() && spec.review.is_none() {
        match set_up(job, repo, cancel, report).await {
            Ok(keys) => setups = keys,
            Err(failed) => return crate::setup::failed_gate(spec, failed),
        }
    }
    let ran = match (checked, &spec.review, &job.subject) {
        (Err(why), _, _) => Err(GateOutcome::NotRun(why)),
        (Ok(()), None, _) => {
            let (spec, bench, tree, log, cancel) = (
                spec.clone(),
                job.bench.clone(),
                job.tree.clone(),
                log.clone(),
                cancel.clone(),
            );
            contained(async move {
                crate::fault::point("gate.run");
                gate::run(&spec, &bench, &tree, log, &cancel)
                    .await
                    .map_err(|e| GateOutcome::CouldNotRun(e.to_string()))
            })
            .await
        }
        (Ok(()), Some(review), Some(subject)) => {
            let (spec, review, subject, repo, bench, tree, earlier, log, cancel) = (
                spec.clone(),
                review.clone(),
                subject.clone(),
                repo.clone(),
                job.bench.clone(),
                job.tree.clone(),
                earlier.to_vec(),
                log.clone(),
                cancel.clone(),
            );
            contained(async move {
                crate::fault::point("gate.run");
                crate::review::run(
                    &spec, &review, &subject, &repo, &bench, &tree, &earlier, log, &cancel,
                )
                .await
                .map_err(|e| GateOutcome::CouldNotRun(e.to_string()))
            })
            .await
        }
        (Ok(()), Some(_), None) => Err(GateOutcome::NotRun("there is no change to review".into())),
    };
    match ran {
        Ok(mut result) => {
            // Whatever the gate did to its tree, the next
            // gate gets the commit's again.
            *ready = files_tree(repo, job).await.is_ok_and(|t| t == job.tree);
            result.changed_tree = !*ready;
            result.setups = setups;
            // A reviewer may only read.
            if result.changed_tree && spec.review.is_some() {
                result.passed = false;
                result.outcome = GateOutcome::ReviewerWrote;
            }
            result
        }
        Err(why) => not_run(why),
    }
}

/// Makes the outputs of every setup of the job's bench in its checkout
/// those of their keys for the job's tree, reporting each, and returns the
/// keys by setup; or the result of the setup that failed (or could not run).
async fn set_up(
    job: &GateJob,
    repo: &Repo,
    cancel: &CancellationToken,
    report: &(dyn Fn(EventBody) + Sync),
) -> Result<std::collections::BTreeMap<String, String>, GateResult> {
    let Some(setups) = &job.setups else {
        return Ok(Default::default());
    };
    let (commit, tree) = (job.commit.to_string(), job.tree.to_string());
    crate::setup::ensure_all(
        setups,
        repo,
        &job.bench,
        &commit,
        &tree,
        &job.log_dir,
        cancel,
        |done| {
            report(EventBody::setup_ready(
                done,
                job.judged.slice(),
                job.judged.attempt(),
                &tree,
            ))
        },
    )
    .await
}

/// Runs one gate on a task of its own: a panic in it (a bug of omk's) ends
/// as a failed result carrying the panic's message, never as a verdict that
/// is not sent while the goal waits for it.
async fn contained(
    gate: impl std::future::Future<Output = Result<GateResult, GateOutcome>> + Send + 'static,
) -> Result<GateResult, GateOutcome> {
    tokio::spawn(gate)
        .await
        .unwrap_or_else(|e| Err(panicked(e)))
}

/// What a gate job's task that did not end says: its panic's message.
fn panicked(e: tokio::task::JoinError) -> GateOutcome {
    if !e.is_panic() {
        return GateOutcome::CouldNotRun(e.to_string());
    }
    let payload = e.into_panic();
    let said = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into());
    GateOutcome::CouldNotRun(format!("omk's gate job panicked: {said}"))
}

/// The events that end a job which could not judge its tree: `result`
/// failed, and so did the job.
fn failed_verdict(judged: Judged, result: GateResult) -> Vec<EventBody> {
    if judged == Judged::Base {
        return vec![EventBody::BaseChecked {
            passed: false,
            gates: vec![result],
        }];
    }
    let (slice, attempt) = (judged.slice(), judged.attempt());
    vec![
        EventBody::GateFinished {
            slice: slice.clone(),
            attempt,
            result,
        },
        EventBody::Verified {
            slice,
            attempt,
            passed: false,
            interrupted: false,
        },
    ]
}

/// Resets the job's checkout to exactly its commit, with an empty temp dir,
/// and checks that its files make the job's tree.
async fn prepare(repo: &Repo, job: &GateJob) -> Result<(), String> {
    // Something may have written in the checkout since it was reset (an
    // unconfined agent, without Landlock): reset it again, a few times.
    let mut held = String::new();
    for _ in 0..PREPARE_TRIES {
        let (r, dir, commit, cone, tmp, keep) = (
            repo.clone(),
            job.bench.dir.clone(),
            job.commit.clone(),
            job.cone.clone(),
            job.bench.tmp.clone(),
            job.keep.clone(),
        );
        blocking(move || {
            r.prepare_worktree(&dir, None, &commit, cone.as_deref(), &keep)?;
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)
                .map_err(|e| crate::Error::io(format!("creating {}", tmp.display()), e))
        })
        .await
        .map_err(|e| format!("preparing the checkout: {e}"))?;
        match files_tree(repo, job).await {
            Ok(tree) if tree == job.tree => return Ok(()),
            Ok(tree) => held = tree,
            Err(e) => return Err(format!("reading the checkout's tree: {e}")),
        }
    }
    Err(format!(
        "the checkout holds tree {held}, not the commit's {}, after {PREPARE_TRIES} resets: something keeps writing in it",
        job.tree
    ))
}

/// How often a checkout is reset before its gates give up on it.
const PREPARE_TRIES: usize = 3;

/// The tree the job's checkout holds now.
async fn files_tree(repo: &Repo, job: &GateJob) -> crate::Result<String> {
    let (repo, dir) = (repo.clone(), job.bench.dir.clone());
    blocking(move || {
        let slot = repo.slot(&dir)?.ok_or_else(|| {
            crate::Error::Worktree(format!("{} is not a worktree of omk's", dir.display()))
        })?;
        slot.files_tree()
    })
    .await
}
