//! The end of a goal: delivery, the last event, the slots given back.

use ractor::{ActorProcessingErr, ActorRef};

use super::{SupervisorMsg, SupervisorState};
use crate::state::{Deliver, GoalStatus};
use crate::store::events::EventBody;

impl SupervisorState {
    /// Delivers if asked, records the end, hands the state over, and stops.
    pub(super) fn finish(
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
    pub(super) fn deliver(&self) -> EventBody {
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
            if let Some(at) = self.repo.checked_out_at(&branch)? {
                return Ok(Err(format!(
                    "{} is checked out in {}; to deliver, run `git -C {} merge --ff-only {}` there",
                    branch.trim_start_matches("refs/heads/"),
                    at.display(),
                    at.display(),
                    s.integration.branch
                )));
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
