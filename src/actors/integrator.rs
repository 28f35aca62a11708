//! The integrator actor: merges finished slices into the candidate, and
//! moves the integration branch forward to candidates the gates passed.
//!
//! Merges happen one at a time, in the order the supervisor sends them (a
//! slice is sent only once its dependencies are on the branch), entirely in
//! the object database: nothing is checked out, least of all the user's
//! worktree. Each merge goes onto the candidate's tip, which only this
//! actor knows between messages; the candidate's commits are referenced by
//! the event log alone. The branch only ever fast-forwards, by
//! compare-and-swap, so a concurrent change to it is detected rather than
//! overwritten.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{blocking, SupervisorMsg};
use crate::git::{Merged, Repo};
use crate::ids::{CommitId, TreeId};
use crate::store::events::EventBody;

/// Messages to the integrator: only its handle sends them.
#[derive(Debug)]
enum IntegratorMsg {
    Merge(Contribution),
    Advance { commit: CommitId, tree: TreeId },
    Rebuild { tip: CommitId },
}

/// A verified slice to merge: one attempt's commit, contributed as one
/// commit of its tree on the commit it started from.
#[derive(Debug)]
pub struct Contribution {
    /// The slice.
    pub slice: String,
    /// The attempt whose commit it is.
    pub attempt: u32,
    /// The attempt's commit.
    pub commit: CommitId,
    /// The commit the attempt started from (see [`Repo::merge_tree`]).
    pub start: Option<CommitId>,
    /// The message of the one commit the slice contributes.
    pub message: String,
    /// Who that commit is by (`Name <email>`), when not the repository's identity.
    pub author: Option<String>,
}

/// The integrator, as the supervisor sees it.
#[derive(Clone)]
pub struct IntegratorHandle(ActorRef<IntegratorMsg>);

impl IntegratorHandle {
    /// Starts the integrator, linked to (supervised by) `args.supervisor`.
    pub async fn spawn(args: IntegratorArgs) -> Result<IntegratorHandle, ractor::SpawnErr> {
        let cell = args.supervisor.get_cell();
        let (actor, _) = Actor::spawn_linked(None, IntegratorActor, args, cell).await?;
        Ok(IntegratorHandle(actor))
    }

    /// Merges a verified slice onto the candidate's tip; reports
    /// `slice_merged`, `merge_conflict` or `slice_failed`.
    pub fn merge(&self, contribution: Contribution) -> crate::Result<()> {
        self.send(IntegratorMsg::Merge(contribution))
    }

    /// Moves the integration branch forward to a candidate commit the
    /// integration gates passed; reports `integration_advanced`.
    pub fn advance(&self, commit: CommitId, tree: TreeId) -> crate::Result<()> {
        self.send(IntegratorMsg::Advance { commit, tree })
    }

    /// The candidate was cut back to `tip`: the next merge goes onto it.
    pub fn rebuild_on(&self, tip: CommitId) -> crate::Result<()> {
        self.send(IntegratorMsg::Rebuild { tip })
    }

    /// Which actor it is, to tell its end from others'.
    pub fn id(&self) -> ractor::ActorId {
        self.0.get_id()
    }

    fn send(&self, message: IntegratorMsg) -> crate::Result<()> {
        self.0
            .send_message(message)
            .map_err(|_| crate::Error::ActorGone("integrator"))
    }
}

/// Startup arguments.
pub struct IntegratorArgs {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub repo: Repo,
    pub goal_id: String,
    /// The integration branch's full ref name.
    pub branch_ref: String,
    /// Where the branch points now.
    pub green: String,
    /// The candidate's tip: where the next merge goes.
    pub tip: String,
}

/// The integrator actor.
struct IntegratorActor;

impl Actor for IntegratorActor {
    type Msg = IntegratorMsg;
    type State = IntegratorArgs;
    type Arguments = IntegratorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<IntegratorMsg>,
        args: IntegratorArgs,
    ) -> Result<IntegratorArgs, ActorProcessingErr> {
        // A controller that died while moving the branch, or the
        // candidate's hold, may have left their locks.
        args.repo
            .clear_stale_ref_lock(args.branch_ref.trim_start_matches("refs/heads/"))?;
        args.repo
            .clear_stale_hold(&crate::git::conventions::candidate_ref(&args.goal_id))?;
        let (repo, branch, green) = (
            args.repo.clone(),
            args.branch_ref.clone(),
            args.green.clone(),
        );
        blocking(move || ensure_branch(&repo, &branch, &green)).await?;
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<IntegratorMsg>,
        message: IntegratorMsg,
        state: &mut IntegratorArgs,
    ) -> Result<(), ActorProcessingErr> {
        let body = match message {
            IntegratorMsg::Merge(c) => {
                let slice = c.slice.clone();
                let merged = merge(
                    state,
                    c.slice,
                    c.attempt,
                    c.commit.into(),
                    c.start.map(String::from),
                    (c.message, c.author),
                )
                .await;
                match merged {
                    Ok(body) => body,
                    // No verdict on the slice: it stays verified, to be
                    // merged again when the goal is resumed.
                    Err(why) => {
                        state
                            .supervisor
                            .send_message(SupervisorMsg::MergeUnmade { slice, why })?;
                        return Ok(());
                    }
                }
            }
            // A branch that cannot be moved forward (someone else moved it)
            // stops the integrator, and so the goal: omk does not overwrite it.
            IntegratorMsg::Advance { commit, tree } => {
                advance(state, commit.into(), tree.into()).await?
            }
            // The held ref keeps pointing at the newest candidate, whose
            // history holds `tip`, until the next merge moves it.
            IntegratorMsg::Rebuild { tip } => {
                state.tip = tip.into();
                return Ok(());
            }
        };
        state.supervisor.send_message(SupervisorMsg::Report(body))?;
        Ok(())
    }
}

#[tracing::instrument(name = "merge", skip(state, commit, start, slice_message), fields(goal = %state.goal_id, onto = %state.tip))]
/// Merges one slice onto the candidate's tip: not the chain of its
/// attempts (a refused or red one among them), but one commit of its
/// accepted tree on the commit it started from.
async fn merge(
    state: &mut IntegratorArgs,
    slice: String,
    attempt: u32,
    commit: String,
    start: Option<String>,
    (slice_message, author): (String, Option<String>),
) -> Result<EventBody, String> {
    let (repo, onto) = (state.repo.clone(), state.tip.clone());
    let message = crate::git::conventions::merge_message(&state.goal_id, &slice, attempt);
    let (theirs, base) = (commit.clone(), onto.clone());
    let held = crate::git::conventions::candidate_ref(&state.goal_id);
    let merged = blocking(move || {
        let once = || -> crate::Result<(String, Merged)> {
            let contributed = match &start {
                Some(start) => repo.commit_tree_by(
                    &repo.tree_of(&theirs)?,
                    &[start],
                    &slice_message,
                    author.as_deref(),
                )?,
                // Logs from before starts were recorded: the attempt's own.
                None => theirs.clone(),
            };
            let merged = repo.merge_slice(&base, &contributed, start.as_deref(), &message)?;
            // The candidate is held by a ref until the goal ends: what its
            // gates judge stays in the repository whatever gc runs.
            if let Merged::Commit { commit, .. } = &merged {
                repo.hold(&held, commit, "omk: candidate")?;
                repo.check_whole(commit, &[&base, &theirs])?;
            }
            Ok((contributed, merged))
        };
        // Objects just written can be pruned before the ref holds them (a
        // `git gc --prune=now` meanwhile): made again.
        let merged = crate::git::again_after_gc(
            crate::git::OBJECT_TRIES,
            crate::Error::objects_vanished,
            |_| once(),
        );
        crate::fault::point("merge.made");
        Ok(merged)
    })
    .await
    .and_then(|r| r);
    tracing::debug!(merged = ?merged.as_ref().map(|(c, m)| (c, m)), "merge made");
    match merged {
        Ok((contributed, Merged::Commit { commit: new, tree })) => {
            state.tip = new.clone();
            Ok(EventBody::SliceMerged {
                slice,
                attempt,
                slice_commit: contributed,
                attempt_commit: Some(commit),
                commit: new,
                tree,
                onto,
            })
        }
        Ok((_, Merged::Conflict(paths))) => Ok(EventBody::MergeConflict {
            slice,
            attempt,
            paths,
            onto,
            before_gates: false,
        }),
        // A merge that conflicts is the slice's; one git could not make (a
        // lock, objects gone, a full disk) is the machine's.
        Err(e) => Err(format!(
            "merging slice `{slice}` into the integration failed ({e}); this is a failure of omk or of this machine, not of the slice: mend it, then `omk goal resume`"
        )),
    }
}

/// Fast-forwards the integration branch to a candidate commit that passed.
async fn advance(
    state: &mut IntegratorArgs,
    commit: String,
    tree: String,
) -> crate::Result<EventBody> {
    let (repo, branch, from, to) = (
        state.repo.clone(),
        state.branch_ref.clone(),
        state.green.clone(),
        commit.clone(),
    );
    let recreated = blocking(move || {
        let gone = ensure_branch(&repo, &branch, &to)?;
        if !gone {
            repo.update_ref_patiently(
                &branch,
                &to,
                &from,
                "omk: integration gates passed",
                REF_LOCK_PATIENCE,
            )?;
        }
        crate::fault::point("branch.moved");
        Ok(gone)
    })
    .await?;
    state.green = commit.clone();
    Ok(EventBody::IntegrationAdvanced {
        commit,
        tree,
        recreated,
    })
}

/// How long a lock on the integration branch is waited out before it is
/// taken for one a dead process left.
const REF_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Makes the integration branch again at `at` if someone deleted it (the
/// log knows where it was); says whether it had to. The one place the
/// branch is made again.
fn ensure_branch(repo: &Repo, branch: &str, at: &str) -> crate::Result<bool> {
    if repo.ref_target(branch)?.is_some() {
        return Ok(false);
    }
    repo.create_ref(branch, at, "omk: integration branch made again")?;
    Ok(true)
}
