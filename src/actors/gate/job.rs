//! One gate job, run on a task of its own: the slot it takes, the checkout
//! reset to its commit, each gate (or its cached pass) and its setups, and
//! the events that report them.

use std::path::PathBuf;

use ractor::ActorRef;
use tokio_util::sync::CancellationToken;

use super::{GateJob, Judged};
use crate::actors::{blocking, SupervisorMsg};
use crate::gate::{self, GateOutcome, GateResult, GateSpec};
use crate::git::Repo;
use crate::store::events::EventBody;

#[tracing::instrument(
    name = "gate_job",
    skip_all,
    fields(goal = %job.bench.goal_id, judged = job.judged.name(), attempt = ?job.judged.attempt(), tree = %job.tree)
)]
pub(super) async fn run_job(
    mut job: GateJob,
    mut slots: Slots,
    supervisor: &ActorRef<SupervisorMsg>,
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
    let gates = job.gates.clone();
    for spec in &gates {
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
                let result = match slots.place(&mut job).await {
                    Ok(()) => {
                        run_gate(spec, &job, &slots, cancel, &results, &mut ready, &send).await
                    }
                    Err(e) => GateResult {
                        log: job.log_dir.join(format!("gate-{}.log", spec.name)),
                        ..GateResult::not_run(
                            spec.name.clone(),
                            job.tree.to_string(),
                            GateOutcome::CouldNotRun(format!("taking a worktree slot: {e}")),
                        )
                    },
                };
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
    if !base {
        return;
    }
    let checked = EventBody::BaseChecked {
        passed,
        gates: results,
    };
    // The base's build is where slots without any start from.
    match slots.held.clone().filter(|_| passed) {
        None => send(checked),
        Some(slot) => {
            let (pool, keep, caches) = (
                slots.pool.clone(),
                job.keep.clone(),
                job.bench.cache_names(),
            );
            let to = supervisor.clone();
            let kept = blocking(move || {
                pool.keep_warm(&slot, &keep, &caches, || {
                    let _ = to.send_message(SupervisorMsg::Report(checked));
                })
            })
            .await;
            if let Err(e) = kept {
                tracing::warn!(error = %e, "could not keep the base's build for new slots");
            }
        }
    }
}

/// Runs one gate of `job` that has no cached pass, on the job's checkout
/// (reset first unless `ready` says it holds the tree), and says whether
/// the checkout still holds it after: a gate that could not run, or
/// panicked, is a failed result.
async fn run_gate(
    spec: &GateSpec,
    job: &GateJob,
    slots: &Slots,
    cancel: &CancellationToken,
    earlier: &[GateResult],
    ready: &mut bool,
    report: &(dyn Fn(EventBody) + Sync),
) -> GateResult {
    let repo = &slots.repo;
    let log = job.log_dir.join(format!("gate-{}.log", spec.name));
    let not_run = |outcome: GateOutcome| GateResult {
        log: log.clone(),
        ..GateResult::not_run(spec.name.clone(), job.tree.to_string(), outcome)
    };
    let checked = match *ready {
        true => Ok(()),
        false => prepare(slots, job).await,
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

/// The pool slot a gate job runs in: taken when its first gate has to run
/// (a job whose every gate passed before takes none), given back when the
/// job ends, however it ends.
pub(super) struct Slots {
    pub(super) pool: std::sync::Arc<crate::pool::Pool>,
    pub(super) repo: Repo,
    pub(super) held: Option<PathBuf>,
}

impl Slots {
    /// Puts `job` in a slot unless it is in one: `near` when it is free,
    /// else another (sparse like the job's cone), else a new one.
    async fn place(&mut self, job: &mut GateJob) -> crate::Result<()> {
        if self.held.is_some() {
            return Ok(());
        }
        let (pool, repo, sparse, near) = (
            self.pool.clone(),
            self.repo.clone(),
            job.cone.is_some(),
            job.near.clone(),
        );
        let slot = blocking(move || pool.acquire_near(&repo, sparse, near.as_deref())).await?;
        self.held = Some(slot.clone());
        job.bench = crate::pool::Pool::bench_in(slot, job.bench.clone())?;
        Ok(())
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if let Some(slot) = self.held.take() {
            self.pool.release(&slot);
        }
    }
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
pub(super) fn panicked(e: tokio::task::JoinError) -> GateOutcome {
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
pub(super) fn failed_verdict(judged: Judged, result: GateResult) -> Vec<EventBody> {
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
async fn prepare(slots: &Slots, job: &GateJob) -> Result<(), String> {
    let (repo, pool) = (&slots.repo, &slots.pool);
    // Something may have written in the checkout since it was reset (an
    // unconfined agent, without Landlock): reset it again, a few times.
    let mut held = String::new();
    for _ in 0..PREPARE_TRIES {
        let (r, dir, commit, cone, tmp, keep, pool, caches) = (
            repo.clone(),
            job.bench.dir.clone(),
            job.commit.clone(),
            job.cone.clone(),
            job.bench.tmp.clone(),
            job.keep.clone(),
            pool.clone(),
            job.bench.cache_names(),
        );
        blocking(move || {
            r.prepare_worktree(&dir, None, &commit, cone.as_deref(), &keep)?;
            // A new slot starts from the warm build state, not from nothing.
            pool.warm_up(&dir, &keep, &caches)?;
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
