//! The gate actor: runs verification jobs, at most `concurrency` at a time.
//!
//! Gates are heavy (a `cargo test` each), so they are queued here rather than
//! run by whoever wants them. A job runs its gates in order and stops at the
//! first failure; every gate reports the tree it ran on.

use std::collections::VecDeque;
use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;

use super::{blocking, SupervisorMsg};
use crate::gate::{self, GateResult, GateSpec};
use crate::git::Repo;
use crate::store::events::EventBody;

/// Messages to the gate actor.
#[derive(Debug)]
pub enum GateMsg {
    /// Queue a verification job.
    Run(Box<GateJob>),
    /// A job finished; its slot is free (sent by the actor's own tasks).
    JobDone,
}

/// One tree to verify.
#[derive(Debug, Clone)]
pub struct GateJob {
    /// The goal, named in the gate's environment.
    pub goal_id: String,
    /// The slice it judges; `None` for the integration.
    pub slice: Option<String>,
    /// The checkout to run in.
    pub dir: PathBuf,
    /// When set, `dir` is first created as a detached worktree at this commit.
    pub checkout: Option<String>,
    /// The directories that checkout materializes; `None` for all.
    pub cone: Option<Vec<String>>,
    /// The tree id checked out in `dir`.
    pub tree: String,
    /// Variables set for the gates besides `OMK_*`: the slot's build caches.
    pub env: Vec<(String, String)>,
    /// The gates, in order.
    pub gates: Vec<GateSpec>,
    /// Where the gates' logs go.
    pub log_dir: PathBuf,
}

/// Startup arguments.
pub struct GateArgs {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub repo: Repo,
    /// The worktree pool, told when gates start writing in a slot.
    pub pool: std::sync::Arc<crate::pool::Pool>,
    pub concurrency: usize,
    pub cancel: CancellationToken,
    /// Passing results kept per repository.
    pub cache: gate::Cache,
}

/// The gate actor's state.
pub struct GateState {
    args: GateArgs,
    queue: VecDeque<GateJob>,
    running: usize,
}

/// The gate actor.
pub struct GateActor;

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
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<GateMsg>,
        message: GateMsg,
        state: &mut GateState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GateMsg::Run(job) => state.queue.push_back(*job),
            GateMsg::JobDone => state.running -= 1,
        }
        while state.running < state.args.concurrency {
            let Some(job) = state.queue.pop_front() else {
                break;
            };
            state.running += 1;
            let (supervisor, repo, cancel, cache) = (
                state.args.supervisor.clone(),
                state.args.repo.clone(),
                state.args.cancel.clone(),
                state.args.cache.clone(),
            );
            state.args.pool.unsettle(&job.dir);
            let me = myself.clone();
            tokio::spawn(async move {
                run_job(job, &supervisor, repo, &cancel, &cache).await;
                let _ = me.send_message(GateMsg::JobDone);
            });
        }
        Ok(())
    }
}

async fn run_job(
    job: GateJob,
    supervisor: &ActorRef<SupervisorMsg>,
    repo: Repo,
    cancel: &CancellationToken,
    cache: &gate::Cache,
) {
    let report = |body| {
        let _ = supervisor.send_message(SupervisorMsg::Report(body));
    };
    let mut passed = true;
    // The checkout is made only when a gate has to run: a tree every gate
    // already passed needs none.
    let mut prepared: Option<crate::Result<()>> = None;
    for spec in &job.gates {
        let result = match cache.get(spec, &job.tree) {
            Some(hit) => hit,
            None => {
                report(EventBody::GateStarted {
                    slice: job.slice.clone(),
                    gate: spec.name.clone(),
                    tree: job.tree.clone(),
                });
                if prepared.is_none() {
                    prepared = Some(match job.checkout.clone() {
                        Some(commit) => {
                            let (repo, dir, cone) =
                                (repo.clone(), job.dir.clone(), job.cone.clone());
                            blocking(move || {
                                repo.prepare_worktree(&dir, None, &commit, cone.as_deref())
                            })
                            .await
                        }
                        None => Ok(()),
                    });
                }
                let log = job.log_dir.join(format!("gate-{}.log", spec.name));
                let result = match &prepared {
                    Some(Ok(())) => {
                        gate::run(
                            spec,
                            &job.goal_id,
                            &job.dir,
                            &job.tree,
                            &job.env,
                            log.clone(),
                            cancel,
                        )
                        .await
                    }
                    Some(Err(e)) => {
                        Err(crate::Error::Actor(format!("preparing the checkout: {e}")))
                    }
                    None => unreachable!("prepared just above"),
                };
                let result = result.unwrap_or_else(|e| GateResult {
                    name: spec.name.clone(),
                    passed: false,
                    exit_code: None,
                    outcome: format!("could not run: {e}"),
                    duration_ms: 0,
                    tree: job.tree.clone(),
                    log,
                    cached: false,
                });
                cache.put(spec, &result);
                result
            }
        };
        let ok = result.passed;
        report(EventBody::GateFinished {
            slice: job.slice.clone(),
            result,
        });
        if !ok {
            passed = false;
            break;
        }
    }
    report(EventBody::Verified {
        slice: job.slice.clone(),
        passed,
    });
}
