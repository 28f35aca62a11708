//! The integrator actor: merges finished slices into the integration branch.
//!
//! Merges happen one at a time, in the order the supervisor sends them (a
//! slice is sent only once its dependencies are merged), entirely in the
//! object database: nothing is checked out, least of all the user's
//! worktree. The branch is moved by compare-and-swap, so a concurrent change
//! to it is detected rather than overwritten.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{blocking, SupervisorMsg};
use crate::git::{Merge, Repo};
use crate::state::SliceStatus;
use crate::store::events::EventBody;

/// Messages to the integrator.
#[derive(Debug)]
pub enum IntegratorMsg {
    /// Merge a slice's verified commit.
    Merge {
        slice: String,
        attempt: u32,
        commit: String,
        /// The commit the attempt started from (see [`Repo::merge_tree`]).
        start: Option<String>,
    },
}

/// Startup arguments.
pub struct IntegratorArgs {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub repo: Repo,
    pub goal_id: String,
    /// The integration branch's full ref name.
    pub branch_ref: String,
    /// Where the branch points now.
    pub head: String,
}

/// The integrator actor.
pub struct IntegratorActor;

impl Actor for IntegratorActor {
    type Msg = IntegratorMsg;
    type State = IntegratorArgs;
    type Arguments = IntegratorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<IntegratorMsg>,
        args: IntegratorArgs,
    ) -> Result<IntegratorArgs, ActorProcessingErr> {
        // A controller that died while moving the branch may have left its lock.
        args.repo
            .clear_stale_ref_lock(args.branch_ref.trim_start_matches("refs/heads/"))?;
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<IntegratorMsg>,
        message: IntegratorMsg,
        state: &mut IntegratorArgs,
    ) -> Result<(), ActorProcessingErr> {
        let IntegratorMsg::Merge {
            slice,
            attempt,
            commit,
            start,
        } = message;
        let (repo, head, branch_ref) = (
            state.repo.clone(),
            state.head.clone(),
            state.branch_ref.clone(),
        );
        let message = format!(
            "omk: merge slice {slice} (attempt {attempt})\n\nOmk-Goal: {}\nOmk-Slice: {slice}\n",
            state.goal_id
        );
        let theirs = commit.clone();
        let merged = blocking(move || {
            Ok(match repo.merge_tree(&head, &theirs, start.as_deref())? {
                Merge::Clean(tree) => {
                    let new = repo.commit_tree(&tree, &[&head, &theirs], &message)?;
                    repo.update_ref(&branch_ref, &new, &head, "omk: integrate slice")?;
                    crate::fault::point("merge.ref_moved");
                    Ok((new, tree))
                }
                Merge::Conflict(paths) => Err(paths),
            })
        })
        .await;
        let body = match merged {
            Ok(Ok((new, tree))) => {
                state.head = new.clone();
                EventBody::SliceMerged {
                    slice,
                    attempt,
                    slice_commit: commit,
                    commit: new,
                    tree,
                }
            }
            Ok(Err(paths)) => EventBody::MergeConflict {
                slice,
                attempt,
                paths,
            },
            Err(e) => EventBody::SliceFailed {
                slice,
                attempt,
                status: SliceStatus::Failed,
                reason: format!("merging into the integration branch failed: {e}"),
                paths: vec![],
            },
        };
        state.supervisor.send_message(SupervisorMsg::Report(body))?;
        Ok(())
    }
}
