//! A slice attempt run as a cluster job (see [`crate::executor`]): the
//! job is handed over and waited for, and what comes back is checked here
//! as a local attempt's commit is, before anything else sees it.

use super::{exit_failure, fail, judge_commit, report_retry, Rejected, SliceArgs, MAX_RETRIES};
use crate::actors::{blocking, SupervisorMsg};
use crate::agent::AgentExit;
use crate::executor::{slurm, worker};
use crate::state::SliceStatus;
use crate::store::events::EventBody;

/// What an attempt that runs on a cluster needs besides its task, whose
/// paths are this machine's.
pub struct Remote {
    pub settings: crate::executor::slurm::Settings,
    /// The goal's one watcher of its jobs.
    pub watcher: crate::executor::slurm::Watcher,
    /// The driver's gate cache, and what its gates see here: a job's
    /// passing results, once believed, are kept under the key a run here
    /// would have.
    pub cache: crate::gate::Cache,
    pub bench: crate::gate::Bench,
    /// The goal's log directory (where jobs are handed over, without a
    /// shared directory) and its base commit.
    pub logs: std::path::PathBuf,
    pub base_commit: String,
    /// The approval policy's deny list.
    pub deny: Vec<String>,
    /// Directories the agent may write besides its tree (`[sandbox] writable`).
    pub writable: Vec<String>,
    /// Paths agents and gates may read that the sandbox hides (`[sandbox] readable`).
    pub readable: Vec<String>,
    /// The agent's network (its model's hosts included), and the gates'.
    pub agent_network: crate::sandbox::NetworkSettings,
    pub network: crate::sandbox::NetworkSettings,
    /// The environment the agent may see (no slot caches: they are here).
    pub env: Vec<(String, String)>,
    /// The slice gates the job runs on its commit (none: they run here).
    pub gates: Vec<crate::gate::GateSpec>,
    /// The variables the gates may see, and the environment they come from.
    pub gate_env_names: Vec<String>,
    pub gate_env: Vec<(String, String)>,
    /// The goal's setups, which the job runs on its node.
    pub setups: Vec<crate::setup::SetupSpec>,
}

/// Runs the attempt as a cluster job: the agent runs and commits on a
/// node, the commit comes back into the attempt's ref, and is checked here
/// as a local one is — it must build on where the attempt started, stay in
/// its write scope and add no unsafe link — before it goes on the slice's
/// branch. A job lost without a report (killed, its node failed) is
/// submitted again, as a retryable agent failure is.
pub(super) async fn attempt(args: &SliceArgs, remote: &Remote) -> crate::Result<EventBody> {
    let task = &args.task;
    let root = slurm::goal_dir(&remote.settings, &task.goal_id, &remote.logs);
    let dir = worker::JobDir(slurm::job_dir(&root, &task.slice_id, task.attempt));
    let job = job_of(args, remote, &root);
    let (finished, report) = match reported(args, remote, &job, &dir).await? {
        Ok(done) => done,
        Err(failed) => return Ok(failed),
    };
    let mut agent = report.agent;
    agent.ran_on = Some(format!("slurm job {} on {}", finished.job_id, report.node));
    let exit = agent.exit.clone();
    let finished_event = EventBody::AgentFinished {
        slice: task.slice_id.clone(),
        attempt: task.attempt,
        report: agent,
    };
    args.supervisor
        .send_message(SupervisorMsg::Report(finished_event))
        .map_err(|_| crate::Error::ActorGone("supervisor"))?;
    if let Some(failed) = exit_failure(args, exit) {
        return Ok(failed);
    }
    let Some(commit) = report.commit else {
        return Ok(fail(
            args,
            SliceStatus::Failed,
            "no changes: the agent exited 0 but left the worktree as it found it".into(),
            vec![],
        ));
    };
    let (repo, result, branch, from, start) = (
        args.repo.clone(),
        dir.result(),
        args.branch.clone(),
        args.work_from().to_string(),
        args.start_commit.clone(),
    );
    let attempt_ref = crate::executor::attempt_ref(&task.goal_id, &task.slice_id, task.attempt);
    let imported = blocking(move || {
        repo.fetch_bundle(&result, &format!("refs/heads/{branch}:{attempt_ref}"))?;
        let got = repo.ref_target(&attempt_ref)?;
        if got.as_deref() != Some(commit.as_str()) {
            return Ok(Err(format!(
                "its job reported commit {commit}, but its bundle holds {}",
                got.unwrap_or_else(|| "nothing".into())
            )));
        }
        if !repo.is_ancestor(&from, &commit)? {
            return Ok(Err(format!(
                "its commit {commit} does not build on {from}, where the attempt started"
            )));
        }
        repo.update_ref(
            &format!("refs/heads/{branch}"),
            &commit,
            &from,
            "omk: a remote attempt's commit",
        )?;
        let changed = repo.changed_files(&start, &commit)?;
        let tree = repo.tree_of(&commit)?;
        Ok(Ok((commit, tree, changed)))
    })
    .await?;
    let (commit, tree, changed) = match imported {
        Ok(c) => c,
        Err(reason) => {
            return Ok(fail(args, SliceStatus::ScopeViolation, reason, vec![]));
        }
    };
    let (repo, scope, c, ch) = (
        args.repo.clone(),
        task.write_scope.clone(),
        commit.clone(),
        changed.clone(),
    );
    if let Some(Rejected { reason, paths }) =
        blocking(move || judge_commit(&repo, &scope, &c, &ch)).await?
    {
        return Ok(fail(args, SliceStatus::ScopeViolation, reason, paths));
    }
    record_gates(args, remote, report.gates, commit, tree, changed)
}

/// The job that runs attempt `args.task` on a node.
fn job_of(args: &SliceArgs, remote: &Remote, root: &std::path::Path) -> worker::Job {
    let task = &args.task;
    worker::Job {
        goal_id: task.goal_id.clone(),
        slice: task.slice_id.clone(),
        attempt: task.attempt,
        agent: args.agent.to_string(),
        prompt: task.prompt.clone(),
        write_scope: task.write_scope.clone(),
        branch: args.branch.clone(),
        start_commit: args.start_commit.clone(),
        work_from: args.work_from().to_string(),
        base_commit: remote.base_commit.clone(),
        base_bundle: slurm::base_bundle(root),
        commit_message: args.commit_message.clone(),
        timeout_ms: task.timeout.as_millis() as u64,
        inactivity_ms: task.inactivity.as_millis() as u64,
        deny: remote.deny.clone(),
        writable: remote.writable.clone(),
        readable: remote.readable.clone(),
        agent_network: remote.agent_network.clone(),
        network: remote.network.clone(),
        env: remote.env.clone(),
        feedback: task
            .feedback
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok()),
        resume_session: task.resume_session.clone(),
        gates: remote.gates.clone(),
        gate_env_names: remote.gate_env_names.clone(),
        gate_env: remote.gate_env.clone(),
        setups: remote.setups.clone(),
        report_key: worker::new_report_key(),
    }
}

/// Runs the job until its worker reports finished work: a job lost
/// without a report, or stopped by the scheduler, is submitted again (up
/// to the retries a lost agent gets); `Err` is the attempt's failure.
async fn reported(
    args: &SliceArgs,
    remote: &Remote,
    job: &worker::Job,
    dir: &worker::JobDir,
) -> crate::Result<Result<(slurm::Finished, worker::Report), EventBody>> {
    let mut retry = 0;
    let done = loop {
        let finished = slurm::run(
            &remote.settings,
            &remote.watcher,
            &args.repo,
            job,
            dir,
            &args.cancel,
        )
        .await?;
        // A job the scheduler stopped (scancel, preemption, its time limit)
        // while the goal went on is lost, whatever its report says: its
        // worker cancelled the agent, or the signal reached the agent first.
        let stopped = |r: &worker::Report| {
            !args.cancel.is_cancelled()
                && (r.agent.exit == AgentExit::Cancelled
                    || slurm::stopped_by_scheduler(&finished.state))
        };
        match finished.report.clone() {
            // A report the worker did not sign is nobody's word.
            Some(Err(why)) => {
                return Ok(Err(fail(
                    args,
                    SliceStatus::Failed,
                    format!("slurm job {}: {why}", finished.job_id),
                    vec![],
                )))
            }
            Some(Ok(report)) if !stopped(&report) => break (finished, report),
            _ if args.cancel.is_cancelled() => {
                return Ok(Err(fail(
                    args,
                    SliceStatus::Cancelled,
                    format!(
                        "agent stopped: the goal was cancelled (slurm job {})",
                        finished.job_id
                    ),
                    vec![],
                )))
            }
            _ if retry < MAX_RETRIES => {
                retry += 1;
                report_retry(
                    args,
                    retry,
                    format!(
                        "slurm job {} ended {} without a report of finished work",
                        finished.job_id, finished.state
                    ),
                );
                // What the stopped worker reported is not taken up again.
                let _ = std::fs::remove_file(dir.report());
                args.limiter.wait().await;
            }
            _ => {
                return Ok(Err(fail(
                    args,
                    SliceStatus::Failed,
                    format!(
                        "slurm job {} ended {} without a report, {retry} times; its output: {}",
                        finished.job_id,
                        finished.state,
                        dir.output().display()
                    ),
                    vec![],
                )))
            }
        }
    };
    Ok(Ok(done))
}

/// The attempt's commit, and the gates that ran with it on the job: they
/// are recorded as the gate actor records its own — after the commit, each
/// with the tree it ran on, then the verdict. A cancel that cut them short
/// is no verdict: they run again, here. So does a result on another tree
/// than the commit's.
fn record_gates(
    args: &SliceArgs,
    remote: &Remote,
    gates: Option<Vec<crate::gate::GateResult>>,
    commit: String,
    tree: String,
    changed: Vec<String>,
) -> crate::Result<EventBody> {
    let task = &args.task;
    let results = gates.filter(|results| {
        results.iter().all(|r| r.tree == tree)
            && !(args.cancel.is_cancelled() && results.iter().any(|r| !r.passed))
    });
    let slice = task.slice_id.clone();
    let committed = EventBody::SliceCommitted {
        slice: slice.clone(),
        attempt: task.attempt,
        commit,
        tree: tree.clone(),
        changed_files: changed,
        gated: results.is_some(),
    };
    let Some(results) = results else {
        return Ok(committed);
    };
    let passed = results.len() == remote.gates.len() && results.iter().all(|r| r.passed);
    let report = |body| {
        args.supervisor
            .send_message(SupervisorMsg::Report(body))
            .map_err(|_| crate::Error::ActorGone("supervisor"))
    };
    report(committed)?;
    for result in results {
        if let Some(spec) = remote.gates.iter().find(|g| g.name == result.name) {
            remote.cache.put(spec, &remote.bench, &result);
        }
        report(EventBody::GateStarted {
            slice: Some(slice.clone()),
            attempt: Some(task.attempt),
            gate: result.name.clone(),
            tree: tree.clone(),
        })?;
        report(EventBody::GateFinished {
            slice: Some(slice.clone()),
            attempt: Some(task.attempt),
            result,
        })?;
    }
    Ok(EventBody::Verified {
        slice: Some(slice),
        attempt: Some(task.attempt),
        passed,
        interrupted: false,
    })
}
