//! Sending work to the gate actor and the integrator.

use ractor::ActorProcessingErr;

use super::{SupervisorState, BASE};
use crate::actors::gate::{GateJob, GateMsg};
use crate::actors::integrator::IntegratorMsg;
use crate::git::Merge;
use crate::store::events::EventBody;

impl SupervisorState {
    /// Sends a committed slice to the gate actor, in the slot it committed
    /// in — unless it already conflicts with what is merged (then the
    /// conflict is what it gets) or with a slice `ahead` of it (then its
    /// gates wait for that one): either way its gates would be spent for
    /// nothing.
    pub(super) fn gate(
        &mut self,
        slice: &str,
        ahead: &[String],
    ) -> Result<Option<EventBody>, ActorProcessingErr> {
        let Some(s) = self.state.slice(slice).cloned() else {
            return Ok(None);
        };
        let (Some(commit), Some(tree), Some(slot)) = (s.commit, s.tree, s.worktree) else {
            return Ok(None);
        };
        // A resumed slice goes on in the slot it had (also while its gates wait).
        if !self.slots.contains_key(slice) && slot.starts_with(self.pool.dir()) {
            self.pool.hold(&slot)?;
            self.slots.insert(slice.to_string(), slot.clone());
        }
        let tip = self.state.integration.tip().to_string();
        if let Merge::Conflict(paths) =
            self.repo
                .merge_tree(&tip, &commit, s.start_commit.as_deref())?
        {
            return Ok(Some(EventBody::MergeConflict {
                slice: slice.to_string(),
                attempt: s.attempts,
                paths,
                onto: tip,
                before_gates: true,
            }));
        }
        for other in ahead {
            let Some(theirs) = self.state.slice(other).and_then(|o| o.commit.clone()) else {
                continue;
            };
            // Both commits as they are, from their common ancestor: a
            // conflict here is a conflict once `other` has merged.
            if let Merge::Conflict(paths) = self.repo.merge_tree(&theirs, &commit, None)? {
                return Ok(Some(EventBody::GatesDeferred {
                    slice: slice.to_string(),
                    attempt: s.attempts,
                    behind: other.clone(),
                    paths,
                }));
            }
        }
        let task = match self.state.spec(slice) {
            Some(spec) if !spec.title.is_empty() => format!("{}\n\n{}", spec.title, spec.prompt),
            Some(spec) => spec.prompt.clone(),
            None => String::new(),
        };
        let subject = crate::review::Subject {
            id: slice.to_string(),
            task,
            from: s
                .start_commit
                .clone()
                .unwrap_or_else(|| self.state.base_commit.clone()),
            commit: commit.clone(),
        };
        let mut job = self.gate_job(
            Some(slice),
            slot,
            commit,
            tree,
            s.sparse,
            self.state.slice_gates(slice),
            self.attempt_logs(slice, s.attempts),
        )?;
        job.subject = Some(subject);
        self.gates.send_message(GateMsg::Run(Box::new(job)))?;
        Ok(None)
    }

    /// Sends a verified slice to the integrator.
    pub(super) fn merge(&mut self, slice: &str) -> Result<(), ActorProcessingErr> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(());
        };
        let Some(commit) = s.commit.clone() else {
            return Ok(());
        };
        let (title, task) = self
            .state
            .spec(slice)
            .map(|p| (p.title.clone(), p.prompt.clone()))
            .unwrap_or_default();
        let message = crate::git::conventions::contributed_message(
            &self.state.goal_id,
            &s.id,
            &title,
            &task,
            s.attempts,
        );
        self.integrator.send_message(IntegratorMsg::Merge {
            slice: s.id.clone(),
            attempt: s.attempts,
            commit,
            start: s.start_commit.clone(),
            message,
            author: self.state.settings.limits.commit_author.clone(),
        })?;
        Ok(())
    }

    /// A gate job judging `commit` (whose tree is `tree`) in `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gate_job(
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
        // Slices others wait for go first, then the integration's candidate:
        // that keeps the critical path short.
        let priority = match slice {
            Some(id)
                if self
                    .state
                    .slices
                    .iter()
                    .any(|s| s.depends_on.iter().any(|d| d == id)) =>
            {
                0
            }
            Some(_) => 2,
            None => 1,
        };
        Ok(GateJob {
            priority,
            slice: slice.map(str::to_string),
            base: false,
            bench: crate::gate::Bench {
                goal_id: self.state.goal_id.clone(),
                caches: crate::pool::Pool::caches(&slot, &limits.slot_cache)?,
                tmp: slot.with_extension("tmp"),
                dir: slot,
                env: limits.sandbox_env.clone(),
                writable: limits.sandbox_writable.clone(),
                readable: limits.sandbox_readable.clone(),
                network: limits.network.clone(),
                inherit: None,
            },
            commit,
            cone,
            keep: limits.slot_keep.clone(),
            tree,
            gates,
            subject: None,
            log_dir,
        })
    }

    /// Takes a slot and sends the slice gates the base commit.
    pub(super) fn check_base(&mut self) -> crate::Result<()> {
        let gates: Vec<crate::gate::GateSpec> = self
            .state
            .settings
            .gates
            .iter()
            // A review has no change to read on the base.
            .filter(|g| g.scope.judges_slices() && g.review.is_none())
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
        job.priority = 0;
        self.gates
            .send_message(GateMsg::Run(Box::new(job)))
            .map_err(|_| crate::Error::ActorGone("gate actor"))
    }

    /// Sends the integration gates a candidate commit, in the slot the
    /// integration holds for the whole goal.
    pub(super) fn integrate(&mut self, commit: String, tree: String) -> crate::Result<EventBody> {
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
        // The integration's change is what the candidate's merges up to
        // `commit` add to the branch.
        let candidate = &self.state.integration.candidate;
        let upto = candidate
            .iter()
            .position(|l| l.commit == commit)
            .map_or(candidate.len(), |i| i + 1);
        let merged = candidate[..upto]
            .iter()
            .map(|l| {
                let title = self.state.slice(&l.slice).map_or("", |s| s.title.as_str());
                format!("- {}: {title}", l.slice)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let subject = crate::review::Subject {
            id: crate::plan::INTEGRATION.to_string(),
            task: format!(
                "{}\n\nThe change merges the work of these slices, each reviewed on its own:\n{merged}",
                self.state.goal
            ),
            from: self.state.integration.commit.clone(),
            commit: commit.clone(),
        };
        let mut job = self.gate_job(
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
        job.subject = Some(subject);
        self.gates
            .send_message(GateMsg::Run(Box::new(job)))
            .map_err(|_| crate::Error::ActorGone("gate actor"))?;
        Ok(EventBody::IntegrationStarted {
            commit,
            tree,
            worktree,
        })
    }
}
