//! Starting a slice's attempts: the slot, the task, what the agent is told
//! after a failure, the slice actor.

use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};

use super::decide::Redo;
use super::{SupervisorMsg, SupervisorState, FEEDBACK_BYTES, FEEDBACK_LINES};
use crate::actors::off_runtime;
use crate::actors::slice::{self, SliceArgs, SliceHandle};
use crate::agent::Task;
use crate::plan::SliceSpec;
use crate::state::{SliceState, SliceStatus};
use crate::store::events::{EventBody, RetryCause};

impl SupervisorState {
    /// What the next attempt of a failed slice is told, and where it starts.
    pub(super) fn retrying(
        &self,
        slice: &str,
        cause: RetryCause,
        redo: Redo,
    ) -> crate::Result<Option<EventBody>> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(None);
        };
        let spec = self.state.spec(slice);
        let work_from = match redo {
            Redo::OnTheIntegration => None,
            // The failed attempt's commit, which its branch holds.
            Redo::ItsCommit => match &s.commit {
                Some(c) => Some(c.clone()),
                None => self
                    .repo
                    .ref_target(&format!("refs/heads/{}", s.branch))?
                    .filter(|head| Some(head) != s.start_commit.as_ref()),
            },
        };
        let feedback = match &cause {
            RetryCause::Gate { gate } => {
                let result = s.gates.iter().find(|g| &g.name == gate);
                format!(
                    "Gate `{gate}` failed on your commit {}\n\nYour worktree holds that commit: fix what the gate reports, then finish.",
                    gate_output(result)
                )
            }
            RetryCause::Scope => format!(
                "Your commit was refused: {}.\nYou may change only paths matching: {}.\nYour worktree holds that commit: undo what is not allowed, keep the rest, then finish.",
                s.reason.as_deref().unwrap_or("it broke a rule"),
                spec.map(|p| p.write_scope.join(", ")).unwrap_or_default()
            ),
            RetryCause::Integration { gate, tree } => {
                let result = self.state.integration.last_failure(gate, tree);
                format!(
                    "Your commit passed its own gates, but merged with the work of the other slices the integration gate `{gate}` failed {}\n\nThe worktree now starts from the merged work of the others, without your change: redo your change on top of it so that the gate passes, then finish.",
                    gate_output(result)
                )
            }
            RetryCause::Conflict => format!(
                "Your previous attempt conflicted with work already merged in: {}. The worktree now starts from the merged result; redo your change on top of it.",
                s.paths.join(", ")
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

    pub(super) fn attempt_logs(&self, slice: &str, attempt: u32) -> std::path::PathBuf {
        self.goal
            .logs()
            .join(slice)
            .join(format!("attempt-{attempt}"))
    }

    /// What went wrong last time, in a file the agent can read.
    fn feedback_file(
        &self,
        slice: &str,
        attempt: u32,
        text: Option<&str>,
    ) -> crate::Result<Option<std::path::PathBuf>> {
        let Some(text) = text else {
            return Ok(None);
        };
        let logs = self.attempt_logs(slice, attempt);
        let path = logs.join("feedback.md");
        std::fs::create_dir_all(&logs)
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))?;
        Ok(Some(path))
    }

    /// The prompt of attempt `attempt` of slice `s`: its task among the
    /// others, and what went wrong, or that it was interrupted.
    fn prompt(&self, s: &SliceState, spec: &SliceSpec) -> String {
        let others: Vec<_> = self
            .state
            .settings
            .plan
            .iter()
            .flat_map(|p| &p.slices)
            .filter(|o| o.id != s.id)
            .collect();
        let gate_names: Vec<String> = self
            .state
            .slice_gates(&s.id)
            .into_iter()
            .map(|g| g.name)
            .collect();
        let prompt = slice::prompt(
            &self.state.goal,
            spec,
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
    }

    /// The agent's task for attempt `attempt` of slice `s` in the slot
    /// `bench` is placed in (its checkout, temp dir and build caches): what
    /// it is told, what it sees and what it may write.
    fn task(
        &self,
        s: &SliceState,
        spec: &SliceSpec,
        attempt: u32,
        bench: &crate::gate::Bench,
    ) -> crate::Result<Task> {
        let limits = &self.state.settings.limits;
        let (worktree, tmp, caches) = (bench.dir.clone(), bench.tmp.clone(), &bench.caches);
        let writable = [worktree.clone(), tmp.clone()]
            .into_iter()
            .chain(crate::sandbox::writable_dirs(
                self.agent.is_kimi(),
                &limits.sandbox_writable,
            ))
            .chain(caches.iter().map(|(_, dir)| dir.into()))
            .collect();
        let feedback = self.feedback_file(&s.id, attempt, s.feedback.as_deref())?;
        Ok(Task {
            goal_id: self.state.goal_id.clone(),
            slice_id: s.id.clone(),
            prompt: self.prompt(s, spec),
            // The feedback file is in omk's state, which the agent reads
            // nothing else of.
            feedback: feedback.clone(),
            policy: crate::agent::policy::Policy::new(&worktree, &limits.deny),
            worktree,
            write_scope: spec.write_scope.clone(),
            attempt,
            log: self.attempt_logs(&s.id, attempt).join("agent.log"),
            timeout: Duration::from_millis(limits.slice_timeout_ms),
            inactivity: Duration::from_millis(limits.inactivity_timeout_ms),
            answer: None,
            planning: false,
            resume_session: s.resume_session.clone(),
            inherit: bench.with_caches(crate::agent::allowed_env(&limits.sandbox_env)),
            confinement: crate::sandbox::Confinement::new(writable)
                .reading(crate::sandbox::readable_dirs(&limits.sandbox_readable))
                .reading(feedback)
                .on(self.agent.network(&limits.network)),
            tmp,
        })
    }

    /// Starts the next attempt of slice `id` from `start_commit` (and
    /// `work_from`, as the decider says): a slot, a task, a slice actor.
    pub(super) async fn start_slice(
        &mut self,
        id: &str,
        start_commit: String,
        work_from: Option<String>,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<Vec<EventBody>, ActorProcessingErr> {
        let (Some(s), Some(spec)) = (self.state.slice(id).cloned(), self.state.spec(id).cloned())
        else {
            return Ok(vec![]);
        };
        let attempt = s.attempts + 1;
        let limits = &self.state.settings.limits;
        let sparse = limits
            .sparse
            .as_ref()
            .and_then(|include| crate::plan::cone(&spec.write_scope, include));
        let worktree = off_runtime(|| self.pool.acquire(&self.repo, sparse.is_some()))?;
        self.slots.insert(id.to_string(), worktree.clone());
        let bench = self.bench(worktree.clone())?;
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
        let task = self.task(&s, &spec, attempt, &bench)?;
        let setups = self.setups().map(|setups| (bench, setups));
        let args = SliceArgs {
            supervisor: myself.clone(),
            repo: self.repo.clone(),
            agent: self.agent.clone(),
            task,
            branch: s.branch.clone(),
            cone: sparse,
            keep: self.state.settings.limits.slot_keep.clone(),
            caches: self.state.settings.limits.slot_cache.clone(),
            setups,
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
            remote: match &limits.executor {
                crate::executor::Executor::Local => None,
                crate::executor::Executor::Slurm(settings) => {
                    let gates = self.state.slice_gates(id);
                    let names: Vec<String> = limits
                        .sandbox_env
                        .iter()
                        .chain(gates.iter().flat_map(|g| &g.env))
                        .cloned()
                        .collect();
                    Some(crate::actors::slice::Remote {
                        settings: settings.clone(),
                        watcher: self
                            .slurm
                            .get_or_insert_with(crate::executor::slurm::Watcher::start)
                            .clone(),
                        cache: self.gate_cache.clone(),
                        bench: self.unplaced_bench(),
                        logs: self.goal.logs(),
                        base_commit: self.state.base_commit.clone(),
                        deny: limits.deny.clone(),
                        writable: limits.sandbox_writable.clone(),
                        readable: limits.sandbox_readable.clone(),
                        agent_network: crate::sandbox::NetworkSettings {
                            open: limits.network.open,
                            allow: limits.network.allow.with(&self.agent.model_hosts()),
                        },
                        network: limits.network.clone(),
                        env: crate::agent::allowed_env(&limits.sandbox_env),
                        // A review gate needs the driver's view of the goal:
                        // with one, every gate runs here.
                        gates: match gates.iter().any(|g| g.review.is_some()) {
                            true => vec![],
                            false => gates,
                        },
                        gate_env_names: limits.sandbox_env.clone(),
                        gate_env: crate::agent::gate_env(&names),
                        setups: limits.setups.clone(),
                    })
                }
            },
        };
        // The actor's reports wait in the mailbox until `started` is recorded.
        match SliceHandle::start(args).await {
            Ok(actor) => {
                self.slices
                    .insert(actor.id(), (id.to_string(), attempt, actor));
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
}

/// How a failed gate ended and an excerpt of its log (bounded: where the
/// failure begins, then the end), for a feedback attempt: `(exit 1). N
/// lines of its output: …`.
fn gate_output(result: Option<&crate::gate::GateResult>) -> String {
    let (outcome, log) = match result {
        Some(r) => (
            r.outcome.to_string(),
            crate::excerpt::of_log(&r.log, FEEDBACK_LINES, FEEDBACK_BYTES),
        ),
        None => ("failed".to_string(), String::new()),
    };
    format!(
        "({outcome}). {} lines of its output, from where it first fails to its end:\n\n```\n{}\n```",
        log.lines().count(),
        log.trim_end()
    )
}
