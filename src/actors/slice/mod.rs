//! The slice actor: one attempt of one slice, in its own worktree.
//!
//! It prepares the worktree (created on the first attempt, reset to the new
//! start commit on later ones), runs the agent, commits what the agent left,
//! checks the commit against the write scope, and reports the outcome. The
//! supervisor stops it once that final report is in.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;

use super::limiter::Limiter;
use super::{blocking, SupervisorMsg};
use crate::agent::{self, AgentExit, AgentSpec, Task};
use crate::git::Repo;
use crate::plan::{SliceSpec, WriteScope};
use crate::state::SliceStatus;
use crate::store::events::EventBody;

mod remote;
pub use remote::Remote;

/// Messages to a slice actor.
#[derive(Debug)]
enum SliceMsg {
    /// Run the attempt; sent by the actor to itself when it starts.
    Run,
}

/// A running attempt, as the supervisor sees it.
pub struct SliceHandle(ActorRef<SliceMsg>);

impl SliceHandle {
    /// Starts one attempt, linked to (supervised by) `args.supervisor`: it
    /// runs at once and reports as it goes.
    pub async fn start(args: SliceArgs) -> Result<SliceHandle, ractor::SpawnErr> {
        let cell = args.supervisor.get_cell();
        let (actor, _) = Actor::spawn_linked(None, SliceActor, args, cell).await?;
        Ok(SliceHandle(actor))
    }

    /// Which actor it is, to tell its end from others'.
    pub fn id(&self) -> ractor::ActorId {
        self.0.get_id()
    }

    /// Stops the attempt's actor (its agent and processes go with it).
    pub fn stop(&self) {
        self.0.stop(None);
    }
}

/// Everything one attempt needs.
pub struct SliceArgs {
    /// Where reports go.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The user's repository.
    pub repo: Repo,
    /// Which agent runs.
    pub agent: AgentSpec,
    /// The attempt as the agent sees it.
    pub task: Task,
    /// The slice's branch (short name).
    pub branch: String,
    /// The directories a sparse worktree materializes; `None` for all.
    pub cone: Option<Vec<String>>,
    /// Untracked paths the slot keeps when it is reset (`[pool] keep`).
    pub keep: Vec<String>,
    /// The names of the slot's build caches (`[pool] cache`).
    pub caches: Vec<String>,
    /// The setups, when there are any, and where they run: the agent
    /// starts with their outputs in place, so it can run the tests itself.
    pub setups: Option<(crate::gate::Bench, crate::setup::Setups)>,
    /// The commit the attempt is judged against: its changes are the diff
    /// from here, and the integrator merges from here.
    pub start_commit: String,
    /// Where the worktree starts when not at `start_commit`: the failed
    /// commit a feedback attempt goes on from.
    pub work_from: Option<String>,
    /// The message of the slice's commit.
    pub commit_message: String,
    /// Fired when the goal is cancelled or out of budget.
    pub cancel: CancellationToken,
    /// The goal's shared back-off for retryable agent failures.
    pub limiter: Arc<Limiter>,
    /// The repository's worktree pool (for the other slices' slots).
    pub pool: Arc<crate::pool::Pool>,
    /// Set when the attempt runs as a cluster job instead of here.
    pub remote: Option<Remote>,
}

impl SliceArgs {
    /// The commit the worktree starts from.
    fn work_from(&self) -> &str {
        self.work_from.as_deref().unwrap_or(&self.start_commit)
    }
}

/// How often a retryable agent failure is retried within one attempt.
const MAX_RETRIES: u32 = 4;

/// The slice actor.
struct SliceActor;

impl Actor for SliceActor {
    type Msg = SliceMsg;
    type State = SliceArgs;
    type Arguments = SliceArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SliceMsg>,
        args: SliceArgs,
    ) -> Result<SliceArgs, ActorProcessingErr> {
        myself.send_message(SliceMsg::Run)?;
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SliceMsg>,
        message: SliceMsg,
        args: &mut SliceArgs,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SliceMsg::Run => {
                // An agent program that is gone fails every attempt alike:
                // the goal stops, as when it was missing at the start.
                let lost = match args.remote {
                    None => args.agent.check_installed().err(),
                    Some(_) => None,
                };
                if let Some(e) = &lost {
                    args.supervisor
                        .send_message(SupervisorMsg::Unworkable(e.to_string()))?;
                }
                let outcome = match &lost {
                    Some(e) => fail(args, SliceStatus::Failed, e.to_string(), vec![]),
                    None => match attempt(args).await {
                        Ok(body) => body,
                        // Not the slice's failure: the goal stops, and the
                        // attempt is not spent (it runs again on resume).
                        Err(e) if e.disk_full() => {
                            let why = format!(
                                "the disk is full ({e}); free some space, then `omk goal resume`"
                            );
                            args.supervisor
                                .send_message(SupervisorMsg::Unworkable(why.clone()))?;
                            fail(args, SliceStatus::Cancelled, why, vec![])
                        }
                        Err(e) => fail(args, SliceStatus::Failed, e.to_string(), vec![]),
                    },
                };
                args.supervisor
                    .send_message(SupervisorMsg::Report(outcome))?;
            }
        }
        Ok(())
    }
}

fn fail(args: &SliceArgs, status: SliceStatus, reason: String, paths: Vec<String>) -> EventBody {
    EventBody::SliceFailed {
        slice: args.task.slice_id.clone(),
        attempt: args.task.attempt,
        status,
        reason,
        paths,
    }
}

/// Runs the attempt and returns its final event: the slot made ready, the
/// agent run, what it did judged, its work committed.
#[tracing::instrument(
    name = "attempt",
    skip_all,
    fields(goal = %args.task.goal_id, slice = %args.task.slice_id, attempt = args.task.attempt)
)]
async fn attempt(args: &SliceArgs) -> crate::Result<EventBody> {
    tracing::debug!(start = %args.start_commit, work_from = %args.work_from(), remote = args.remote.is_some(), "attempt starting");
    prepare(args).await?;
    if let Some(remote) = &args.remote {
        return remote::attempt(args, remote).await;
    }
    // Without Landlock, watch the user's repository instead. (Other slots
    // need no watch: none holds a tree waiting for its gates, which reset
    // their slot to the judged commit and check its tree.)
    let confined = crate::sandbox::support().landlock.is_some();
    let watch = match confined {
        false => {
            let repo = args.repo.clone();
            Some(blocking(move || repo.guard()).await?)
        }
        true => None,
    };
    let exit = run_reported(args).await?;
    if let Some(failed) = judge_run(args, watch, exit).await? {
        return Ok(failed);
    }
    crate::fault::point_for("slice.after_agent", &args.task.slice_id);
    commit(args).await
}

/// Makes the slot hold exactly where the attempt starts, with an empty
/// temp dir and the setups' outputs for that tree.
async fn prepare(args: &SliceArgs) -> crate::Result<()> {
    prepare_tree(args).await?;
    let Some((bench, setups)) = &args.setups else {
        return Ok(());
    };
    let task = &args.task;
    let from = args.work_from().to_string();
    let tree = {
        let (repo, from) = (args.repo.clone(), from.clone());
        blocking(move || repo.tree_of(&from)).await?
    };
    let logs = task.log.parent().unwrap_or(&task.worktree).to_path_buf();
    let readied = |done: crate::setup::Readied| {
        let _ = args
            .supervisor
            .send_message(SupervisorMsg::Report(EventBody::setup_ready(
                done,
                Some(task.slice_id.clone()),
                Some(task.attempt),
                &tree,
            )));
    };
    let ready = crate::setup::ensure_all(
        setups,
        &args.repo,
        bench,
        &from,
        &tree,
        &logs,
        &args.cancel,
        readied,
    )
    .await;
    // The agent starts without them; its gates will say what fails.
    if let Err(failed) = ready {
        tracing::warn!(setup = %failed.name, outcome = %failed.outcome, "setup failed before the agent");
    }
    Ok(())
}

/// Makes the slot hold exactly where the attempt starts, with an empty
/// temp dir.
async fn prepare_tree(args: &SliceArgs) -> crate::Result<()> {
    let task = &args.task;
    let (repo, path, branch, from, cone) = (
        args.repo.clone(),
        task.worktree.clone(),
        args.branch.clone(),
        args.work_from().to_string(),
        args.cone.clone(),
    );
    let (keep, caches, pool) = (args.keep.clone(), args.caches.clone(), args.pool.clone());
    blocking(move || {
        repo.prepare_worktree(&path, Some(&branch), &from, cone.as_deref(), &keep)?;
        // A new slot starts from the warm build state, not from nothing.
        pool.warm_up(&path, &keep, &caches)
    })
    .await?;
    // The slot's temp dir starts empty, like its tree.
    let _ = std::fs::remove_dir_all(&task.tmp);
    std::fs::create_dir_all(&task.tmp)
        .map_err(|e| crate::Error::io(format!("creating {}", task.tmp.display()), e))
}

/// Runs the agent, its updates and its report sent to the supervisor as
/// they come; returns how it exited.
async fn run_reported(args: &SliceArgs) -> crate::Result<AgentExit> {
    let task = &args.task;
    let (updates, mut updates_rx) = tokio::sync::mpsc::unbounded_channel();
    let forward = {
        let supervisor = args.supervisor.clone();
        let (slice, attempt) = (task.slice_id.clone(), task.attempt);
        tokio::spawn(async move {
            while let Some(update) = updates_rx.recv().await {
                let body = EventBody::AgentUpdate {
                    slice: slice.clone(),
                    attempt,
                    update,
                };
                if supervisor
                    .send_message(SupervisorMsg::Report(body))
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let report = run_agent(args, task, updates).await;
    let _ = forward.await;
    let report = report?;
    let exit = report.exit.clone();
    let finished = EventBody::AgentFinished {
        slice: task.slice_id.clone(),
        attempt: task.attempt,
        report,
    };
    args.supervisor
        .send_message(SupervisorMsg::Report(finished))
        .map_err(|_| crate::Error::ActorGone("supervisor"))?;
    Ok(exit)
}

/// What ends the attempt before its commit, if anything: an unconfined
/// agent that changed the user's repository, a forged `.git`, or an agent
/// that did not finish.
async fn judge_run(
    args: &SliceArgs,
    watch: Option<crate::git::Guard>,
    exit: AgentExit,
) -> crate::Result<Option<EventBody>> {
    let task = &args.task;
    if let Some(before) = watch {
        let repo = args.repo.clone();
        let now = blocking(move || repo.guard()).await?;
        let evidence = before.changes(&now);
        if !evidence.is_empty() {
            return Ok(Some(EventBody::CheckoutTouched {
                slice: task.slice_id.clone(),
                attempt: task.attempt,
                evidence,
            }));
        }
    }
    // The agent could rewrite its worktree's `.git` to send omk's git
    // elsewhere; omk's git never follows it (see `git::Slot`), and a slice
    // that tried is not merged.
    let (repo, path) = (args.repo.clone(), task.worktree.clone());
    let tampered =
        blocking(move || Ok(repo.slot(&path)?.and_then(|s| s.dotgit_tampered()))).await?;
    if let Some(what) = tampered {
        return Ok(Some(fail(
            args,
            SliceStatus::ScopeViolation,
            format!("changed its worktree's git link: {what}"),
            vec![".git".into()],
        )));
    }
    Ok(exit_failure(args, exit))
}

/// The end of an attempt whose agent did not finish, if it did not.
fn exit_failure(args: &SliceArgs, exit: AgentExit) -> Option<EventBody> {
    let task = &args.task;
    if exit != AgentExit::Ok {
        let status = match exit {
            AgentExit::Cancelled => SliceStatus::Cancelled,
            _ => SliceStatus::Failed,
        };
        let cancelled = exit == AgentExit::Cancelled;
        let reason = match exit {
            AgentExit::TimedOut => format!("agent timed out after {:?}", task.timeout),
            AgentExit::Inactive => format!("agent was inactive: silent for {:?}", task.inactivity),
            AgentExit::Cancelled => "agent stopped: the goal was cancelled".to_string(),
            other => format!("agent failed: {other}"),
        };
        // Refused connections come first: an agent that cannot reach its
        // model or an index fails for that, whatever it printed.
        let reason = match task.confinement.network_record().failure_hint() {
            Some(hint) if !cancelled => format!("{hint}; {reason}"),
            _ => reason,
        };
        return Some(fail(
            args,
            status,
            format!("{reason}; log: {}", task.log.display()),
            vec![],
        ));
    }
    None
}

/// Commits what the agent left and judges the commit against the slice's
/// write scope.
async fn commit(args: &SliceArgs) -> crate::Result<EventBody> {
    let task = &args.task;
    let (repo, path, branch, start, message) = (
        args.repo.clone(),
        task.worktree.clone(),
        args.branch.clone(),
        args.start_commit.clone(),
        args.commit_message.clone(),
    );
    let committed =
        blocking(move || repo.commit_worktree(&path, &branch, &start, &message)).await?;
    let Some(committed) = committed else {
        return Ok(fail(
            args,
            SliceStatus::Failed,
            "no changes: the agent exited 0 but left the worktree as it found it".into(),
            vec![],
        ));
    };
    let (repo, scope, commit, changed) = (
        args.repo.clone(),
        task.write_scope.clone(),
        committed.commit.clone(),
        committed.changed_files.clone(),
    );
    let rejected = blocking(move || judge_commit(&repo, &scope, &commit, &changed)).await?;
    if let Some(Rejected { reason, paths }) = rejected {
        return Ok(fail(args, SliceStatus::ScopeViolation, reason, paths));
    }
    Ok(EventBody::SliceCommitted {
        slice: task.slice_id.clone(),
        attempt: task.attempt,
        commit: committed.commit,
        tree: committed.tree,
        changed_files: committed.changed_files,
        gated: false,
    })
}

/// Why a slice's commit is not accepted: it changed paths outside its
/// write scope, or has a symlink that resolves outside the repository or
/// into `.git`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// One sentence.
    pub reason: String,
    /// The paths to blame.
    pub paths: Vec<String>,
}

/// Checks a slice's commit, which changed `changed`, against its write
/// scope and for unsafe symlinks: the one check every commit passes, made by
/// the agent's attempt or adopted on resume.
pub fn judge_commit(
    repo: &Repo,
    write_scope: &[String],
    commit: &str,
    changed: &[String],
) -> crate::Result<Option<Rejected>> {
    let scope = WriteScope::new(write_scope).map_err(crate::Error::Usage)?;
    let outside: Vec<String> = scope.violations(changed).into_iter().cloned().collect();
    if !outside.is_empty() {
        return Ok(Some(Rejected {
            reason: format!(
                "changed {} path{} outside its write scope: {}",
                outside.len(),
                if outside.len() == 1 { "" } else { "s" },
                outside.join(", ")
            ),
            paths: outside,
        }));
    }
    let links = repo.unsafe_links(commit, changed)?;
    if !links.is_empty() {
        let paths = links
            .iter()
            .map(|l| l.split(" -> ").next().unwrap_or_default().to_string())
            .collect();
        return Ok(Some(Rejected {
            reason: format!("added symlinks that are not safe: {}", links.join(", ")),
            paths,
        }));
    }
    Ok(None)
}

/// Runs the agent, retrying failures worth retrying after the goal's shared
/// back-off, each time from the attempt's start commit. The report sums the
/// tokens of every try.
async fn run_agent(
    args: &SliceArgs,
    task: &Task,
    updates: tokio::sync::mpsc::UnboundedSender<agent::Update>,
) -> crate::Result<agent::Report> {
    let mut spent = (None::<u64>, None::<u64>);
    let mut retry = 0;
    loop {
        args.limiter.wait().await;
        let mut report = agent::run(&args.agent, task, updates.clone(), &args.cancel).await?;
        spent = (
            crate::state::sum_known(report.tokens_in, spent.0),
            crate::state::sum_known(report.tokens_out, spent.1),
        );
        if report.retryable && retry < MAX_RETRIES && !args.cancel.is_cancelled() {
            retry += 1;
            report_retry(args, retry, report.exit.to_string());
            let (repo, path, from) = (
                args.repo.clone(),
                task.worktree.clone(),
                args.work_from().to_string(),
            );
            blocking(move || repo.reset_worktree(&path, &from)).await?;
            continue;
        }
        (report.tokens_in, report.tokens_out) = spent;
        return Ok(report);
    }
}

/// Records the `retry`th retry of the attempt, for `reason`, after the
/// goal's shared back-off (which [`Limiter::wait`] then waits out).
fn report_retry(args: &SliceArgs, retry: u32, reason: String) {
    let delay = args.limiter.back_off(retry);
    let body = EventBody::AgentRetry {
        slice: args.task.slice_id.clone(),
        attempt: args.task.attempt,
        retry,
        delay_ms: delay.as_millis() as u64,
        reason,
    };
    let _ = args.supervisor.send_message(SupervisorMsg::Report(body));
}

/// Panics when `OMK_FAULT` names this point and slice (`panic:<point>:<slice>`);
/// debug builds only, for tests of the supervisor's failure handling.
/// The prompt an agent gets for one attempt of `spec`.
pub fn prompt(
    goal: &str,
    spec: &SliceSpec,
    others: &[&SliceSpec],
    gates: &[String],
    feedback: Option<&str>,
) -> String {
    let mut p = format!("Goal: {goal}\n\nYour slice: {}", spec.id);
    if !spec.title.is_empty() {
        p += &format!(" — {}", spec.title);
    }
    p += &format!(
        "\n\n{}\n\nYou may change only paths matching: {}\n",
        spec.prompt.trim(),
        spec.write_scope.join(", ")
    );
    if !others.is_empty() {
        p += "\nOther slices work in parallel; do not do their work:\n";
        for o in others {
            let what = if o.title.is_empty() {
                o.prompt.lines().next().unwrap_or("")
            } else {
                &o.title
            };
            p += &format!("- {}: {what}\n", o.id);
        }
    }
    if !gates.is_empty() {
        p += &format!(
            "\nYour change is judged by these gates, which must pass on your commit: {}.\n",
            gates.join(", ")
        );
    }
    if let Some(feedback) = feedback {
        p += &format!(
            "\n## What went wrong in your last attempt\n\n{}\n",
            feedback.trim_end()
        );
    }
    p += "\nDo not commit or push; omk commits your changes when you finish.\n";
    p
}
